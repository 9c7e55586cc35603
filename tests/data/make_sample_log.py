"""Make sample_predictions.jsonl: real results, and one scripted learner's predictions.

1. The results: every chapter's solution notebook run with plain
   `jupyter nbconvert --execute` (no front end, full size, NOPOS_HOME=<dir>),
   which logs one reveal per question (no prediction). Their results are what
   the learner's reveals show; the lines themselves are not copied (in the
   learner's log they would be answers shown before every commit).
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



def learner():
    """key -> the scripted learner's (guess, confidence) for a choice or (guess, low, high)
    for a number: the `sample` line of each question's ```prediction block in its master."""
    from tools.build_course import parse_master

    return {key: tuple(facts["sample"]) for master in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.md"))
            for key, facts in parse_master(master)[0].get("predictions", {}).items()}


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
    # the results only: a run that showed every answer before this learner committed would
    # make each commit a guess made with the answer known, which the scoreboard does not count
    OUT.write_text("")
    os.environ.update(NOPOS_HOME=str(OUT.parent / ".sample-home"), NOPOS_INTERACTIVE="1")
    from nopos import predict

    questions = asked()
    plan = [(key, (guess,)) for key, guess in OLD_CH1.items()] + list(learner().items())
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
