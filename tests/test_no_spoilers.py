"""Nothing a learner can read before committing a prediction gives its answer away.

For every `predict.ask` in every chapter master, "what the learner can read
first" is the README, docs/self-study.md, every earlier chapter, and this
chapter from its start up to the question's reveal cell: Markdown cells and
code cells whose source is shown (a `reveal` cell is collapsed in JupyterLab).
The answers are the results recorded by a real run of every chapter
(tests/data/sample_predictions.jsonl, see tests/data/README.md); the phrases
below are the explanations and findings that would give each one away.
"""
import ast
import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, chapters, release_path
from tools.build_course import REVEAL_FIRST_LINE, parse_master

# SPOILER_LOG: check against another recorded log (tests/data/README.md says how to make one)
SAMPLE_LOG = Path(os.environ.get("SPOILER_LOG", ROOT / "tests" / "data" / "sample_predictions.jsonl"))

# the findings that answer a question, in the words the course (or a learner) would use
GIVEAWAYS = {
    "ch1.untrained_loss": ["ln(300) ≈", "ln 300 ≈"],
    "ch1.copy_accuracy": ["1/299 ≈", "only by chance: 1 in 299"],
    "ch2.spike_cause": ["`max`/`min`", "max` where `min`", "never stops growing",
                        "buggy learning-rate", "learning-rate bug", 'schedule="buggy"'],
    "ch2.fixed_vs_buggy": ["accidental learning-rate ramp", "made the start of training *slower*"],
    "ch2.best_lr": ["two orders of magnitude above", "peak 1e-2", "peak learning rate 1e-2"],
    "ch3.final_accuracy": [">99", "99 %", "almost perfectly", "almost every time"],
    "ch3.hard_positions": ["late positions are the hard ones", "u-shaped"],
    "ch3.one_layer": ["1 time in t", "1/t", "1 / position", "it cannot: at position"],
    "ch4.bos_at_10": ["pays a special amount of attention to **bos**", "more than 90% of"],
    "ch4.bos_at_49": ["`c / (c + q)`;", "c/(c+q)` law"],
    "ch4.c_value": ["c ≈ 6", "`c` near 6"],
    "ch4.layer1_shape": ["recency kernel", "not a sharp previous-token head"],
    "ch4.bidirectional_accuracy": ["cannot beat chance", "impossible without the **causal mask**",
                                   "the model cannot output different", "it cannot beat"],
    "ch5.neuron_count": ["found 66", "66 that vary"],
    "ch5.monotone": ["almost all monotone", "all 66 monotone"],
    "ch5.probe_first": ["mlp0 straightens", "readable in the residual stream after layer 0",
                        "after mlp0 a linear probe"],
    "ch5.ablation_worst": ["the embedding carries the tokens themselves"],
    "ch5.layer1_pattern": ["mean pattern loses almost nothing", "pattern and keys** barely matter"],
    "ch5.dla_top": ["mlp1 writes the answer", "mlp1 writes most"],
    "ch5.attn1_path": ["far above\n  a uniform guess either way", "write the answer together"],
    "ch5.patch_control": ["the control\nbreaks even more", "damage is not about position alone"],
    "ch5.patch_position": ["in none of the shifts tried", "the simple story is falsified"],
    "ch6.longer_nopos": ["holds for a few positions past 50", "first below 90% at position 6"],
    "ch6.learned_longer": ["collapses the moment it leaves", "learned-position model collapses"],
    "ch6.untrained_variance": ["shrinks about tenfold", "shrinks tenfold", "times position 49's"],
    "ch6.untrained_probe": ["a *linear* probe reads only a little", "reads little of it"],
    "ch6.no_bos_learns": ["still learns, more slowly and less well", "learns partly"],
    "ch6.no_bos_attention": ["**even average**", "no attention sink formed"],
    "ch6.attn_only": ["mlp0 is not necessary", "without mlps"],
}


def normal(text):
    return re.sub(r"\s+", " ", text).lower()


def recorded_answers():
    answers = {}
    for line in SAMPLE_LOG.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["event"] == "reveal" and record.get("actual") is not None:
            answers[record["key"]] = record
    return answers


def questions(source):
    """[(variable, key, options, tolerance)] of the predict.ask calls in a code cell."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) \
                and getattr(node.value.func, "attr", None) == "ask":
            call = node.value
            kw = {k.arg: k.value for k in call.keywords}
            options = ast.literal_eval(kw["options"]) if "options" in kw else []
            tolerance = ast.literal_eval(kw["tolerance"]) if "tolerance" in kw else 0.1
            found.append((node.targets[0].id, ast.literal_eval(call.args[0]), options, tolerance,
                          ast.literal_eval(call.args[1])))
    return found


def reveals(source):
    return {node.args[0].id for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "reveal"}


def prediction_points():
    """[(key, options, tolerance, text shown before its reveal, the prose part of it,
    this chapter's prose before it, the question)]."""
    shared = "\n".join((ROOT / p).read_text(encoding="utf-8")
                       for p in ("README.md", "docs/self-study.md"))
    earlier, earlier_prose, points = shared, shared, []
    for aid in chapters():
        _, cells = parse_master(ROOT / "chapters" / f"{aid}.md")
        cells = [c for c in cells if not c["attrs"].get("solutions-only")]
        shown = [c for c in cells if not c["attrs"].get("reveal")]
        for i, cell in enumerate(cells):
            if cell["type"] != "code":
                continue
            for var, key, options, tolerance, question in questions(cell["source"]):
                reveal_at = next(j for j in range(i, len(cells))
                                 if cells[j]["type"] == "code" and var in reveals(cells[j]["source"]))
                before = [c for c in cells[:reveal_at + 1] if c in shown and c is not cell]
                prose = "\n".join(c["source"] for c in before if c["type"] == "markdown")
                text = earlier + "\n" + "\n".join(c["source"] for c in before)
                points.append((key, options, tolerance, text, earlier_prose + "\n" + prose,
                               prose, question))
        earlier += "\n" + "\n".join(c["source"] for c in shown)
        earlier_prose += "\n" + "\n".join(c["source"] for c in shown if c["type"] == "markdown")
    return points


POINTS = prediction_points()


def test_every_prediction_has_a_recorded_answer_and_giveaways():
    answers = recorded_answers()
    keys = [p[0] for p in POINTS]
    assert len(keys) == len(set(keys)) and len(keys) >= 19
    assert not set(keys) - set(answers), "record these answers (tests/data/README.md)"
    assert not set(keys) - set(GIVEAWAYS), "say what would give these questions away"


@pytest.mark.parametrize("point", POINTS, ids=[p[0] for p in POINTS])
def test_nothing_shown_before_the_commit_gives_the_answer_away(point):
    key, options, tolerance, text, all_prose, prose, question = point
    actual = recorded_answers()[key]["actual"]
    seen, prose_seen = normal(text), normal(prose)
    found = [phrase for phrase in GIVEAWAYS[key] if normal(phrase) in seen + normal(question)]
    assert not found, f"{key}: readable before the commit: {found}"
    if options and len(actual.split()) > 1:
        # the answer option, word for word: in the prose, or in the code when it is
        # long enough not to be a label the code uses anyway ("after MLP0")
        where = seen if len(actual.split()) > 2 else normal(all_prose)
        assert normal(actual) not in where, f"{key}: the answer {actual!r} is readable first"
    if not options:
        # a number within the question's tolerance of the answer, stated in this chapter
        near = [n for n in re.findall(r"(?<![\w.])\d+\.\d+", prose_seen)
                if abs(float(n) - actual) <= tolerance * abs(actual)]
        assert not near, f"{key}: the prose states {near}, within the tolerance of {actual:.4g}"


@pytest.mark.parametrize("aid", chapters())
def test_the_cells_that_reveal_are_collapsed_in_the_release(aid):
    """Every predict.reveal call is in a cell JupyterLab shows collapsed; nbgrader keeps that."""
    nb = nbformat.read(release_path(aid), as_version=4)
    calls = [c for c in nb.cells if c.cell_type == "code" and "predict.reveal(" in c.source]
    assert calls
    for cell in calls:
        assert cell.metadata.get("jupyter", {}).get("source_hidden") is True, cell.source[:80]
        # JupyterLab still shows a collapsed cell's first line
        assert cell.source.splitlines()[0] == REVEAL_FIRST_LINE, cell.source[:80]


def test_the_check_finds_a_spoiler():
    """The test above fails on what the course used to show: an answer in plain sight."""
    key, options, tolerance, text, all_prose, prose, question = POINTS[1]
    assert key == "ch1.copy_accuracy"
    answer = recorded_answers()[key]["actual"]
    assert normal(answer) in normal(all_prose + f"\nThe answer: {answer}.")
    assert any(normal(p) in normal(text + "\nOnly by chance: 1 in 299.") for p in GIVEAWAYS[key])
    assert normal(answer) not in normal(all_prose)
