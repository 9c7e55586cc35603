"""Make sample_predictions.jsonl: real results, and one scripted learner's predictions.

1. The results: every chapter's solution notebook run with plain
   `jupyter nbconvert --execute` (no front end, full size, NOPOS_HOME=<dir>),
   which logs one reveal per question (no prediction). Those lines are copied
   as they are.
2. A learner, scripted here, then commits through the real widget code
   (`predict.Question.commit`, `predict.reveal`), with a confidence for every
   choice and an 80% range for every number: first chapter 1 from an older
   course version (no confidence), then every chapter (chapter 1 redone).

    python tests/data/make_sample_log.py RECORDED.jsonl [RECORDED2.jsonl ...]
"""
import ast
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = Path(__file__).with_name("sample_predictions.jsonl")

# key -> (guess, confidence) for choices, (guess, low, high) for numbers
LEARNER = {
    "ch1.untrained_loss": (5.7, 5.5, 5.9),
    "ch1.copy_accuracy": ("about 0.3% (1 in 299)", 0.9),
    "ch2.spike_cause": ("bad luck: a few hard batches", 0.7),
    "ch2.fixed_vs_buggy": ("the fixed run (min)", 0.9),
    "ch2.best_lr": ("1e-3", 0.5),
    "ch3.final_accuracy": ("about 90%", 0.7),
    "ch3.hard_positions": ("late positions (40-49)", 0.5),
    "ch3.one_layer": (20.0, 5.0, 40.0),
    "ch4.bos_at_10": ("about 40%", 0.5),
    "ch4.bos_at_49": (0.1, 0.05, 0.2),
    "ch4.c_value": (6.7, 5.5, 8.0),
    "ch4.layer1_shape": ("a sharp previous-token head: more than 90% on the token one back", 0.7),
    "ch4.bidirectional_accuracy": ("near chance (below 2%)", 0.7),
    "ch5.neuron_count": ("a few dozen (20 to 100)", 0.5),
    "ch5.monotone": ("almost all", 0.7),
    "ch5.patch_position": ("the token at 29: the answer moves with the code", 0.6),
    "ch5.patch_control": ("more: the position code is what matters", 0.6),
    "ch5.attn1_path": ("only straight to the logits", 0.5),
    "ch5.probe_first": ("after layer-0 attention", 0.5),
    "ch5.ablation_worst": ("hook_embed", 0.7),
    "ch5.layer1_pattern": ("barely changes (stays below 0.01)", 0.7),
    "ch5.dla_top": ("mlp1", 0.5),
    "ch6.longer_nopos": ("never: it stays above 90% up to position 99", 0.5),
    "ch6.learned_longer": ("worse than the no-position model", 0.7),
    "ch6.untrained_variance": ("it stays about the same", 0.5),
    "ch6.untrained_probe": ("below 0.1", 0.5),
    "ch6.no_bos_learns": ("near chance (below 5%)", 0.5),
    "ch6.no_bos_attention": ("on the first token, a sink just like BOS", 0.7),
    "ch6.attn_only": ("above 99%", 0.5),
}
OLD_CH1 = {"ch1.untrained_loss": 2.0, "ch1.copy_accuracy": "about 2% (1 in 50)"}


def asked():
    """key -> keyword arguments of every predict.ask in the masters."""
    from tools.build_course import parse_master

    out = {}
    for master in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.md")):
        for cell in parse_master(master)[1]:
            if cell["type"] != "code":
                continue
            for node in ast.walk(ast.parse(cell["source"])):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "ask":
                    key, text = (ast.literal_eval(a) for a in node.args[:2])
                    out[key] = dict(text=text, **{k.arg: ast.literal_eval(k.value)
                                                   for k in node.keywords})
    return out


def main(recorded):
    lines = [line for path in recorded for line in Path(path).read_text().splitlines()]
    actual = {}
    for line in lines:
        record = json.loads(line)
        if record["event"] == "reveal" and not record.get("quick"):
            actual[record["key"]] = record["actual"]
    OUT.write_text("".join(line + "\n" for line in lines))
    os.environ.update(NOPOS_HOME=str(OUT.parent / ".sample-home"), NOPOS_INTERACTIVE="1")
    from nopos import predict

    questions = asked()
    plan = [(key, (guess,)) for key, guess in OLD_CH1.items()] + list(LEARNER.items())
    for key, answer in plan:
        q = predict.Question(key, **questions[key])
        guess, *sure = answer
        if q.kind == "choice":
            q.commit(guess, confidence=sure[0] if sure else None)
        else:
            q.commit(guess, *([None] + sure if sure else []))
        predict.Reveal(q, actual[key])._reveal()
    logged = predict.log_path().read_text()
    predict.log_path().unlink()
    predict.log_path().parent.rmdir()
    with OUT.open("a") as f:
        f.write(logged)
    print(f"{OUT}: {len(OUT.read_text().splitlines())} lines")


if __name__ == "__main__":
    main(sys.argv[1:])
