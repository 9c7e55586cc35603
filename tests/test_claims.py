"""Claim tests: every figure or mechanism the chapters state in prose is recomputed
from the shipped checkpoint (or the runs `make record` recorded) and must hold.

Fast: no notebook runs; one forward pass per chapter on the reference model.
"""
import ast
import re

import pytest

from conftest import ROOT
from nopos import recorded
from tools import claims


def _words(text):
    return " ".join(text.split())


MASTERS = {p.stem: _words(p.read_text(encoding="utf-8")) for p in (ROOT / "chapters").glob("*.md")}
FACILITATOR = {f"facilitator/{p.stem}": _words(p.read_text(encoding="utf-8"))
               for p in (ROOT / "docs" / "facilitator").glob("*.md")}


@pytest.mark.parametrize("claim", claims.CLAIMS, ids=lambda c: f"{c.chapter}:{_words(c.text)[:40]}")
def test_the_text_states_the_claim(claim):
    where = "docs" if claim.chapter.startswith("facilitator/") else "chapters"
    assert _words(claim.text) in {**MASTERS, **FACILITATOR}[claim.chapter], (
        f"{where}/{claim.chapter}.md no longer says {claim.text!r}: update the claim in "
        f"tools/claims.py with the new sentence, and its check")


@pytest.mark.parametrize("claim", claims.CLAIMS, ids=lambda c: f"{c.chapter}:{_words(c.text)[:40]}")
def test_the_numbers_support_the_claim(claim):
    supported, measured = claim.check()
    assert supported, f"chapters/{claim.chapter}.md says {claim.text!r}, but measured: {measured}"


def test_the_claims_that_were_wrong_are_refuted_by_the_same_measurements():
    """Sentences the course used to print, each contradicted by its measurement."""
    assert claims.spike_run()["jump"] < 100, "'jumps back up by a factor of a hundred or more'"
    assert 1 / 48 > 5 * claims.CHANCE, "'the bidirectional model cannot beat chance'"
    curve = claims.one_layer_curve()
    assert claims._fit_error(curve, lambda t: 1 / t) > 2 * claims._fit_error(curve, lambda t: 1 / (t - 1)), \
        "'right about 1 time in t'"
    early = recorded.load("ch3_per_position")["stopped at 200 steps"]  # index i: position i + 1
    ends, middle = min(sum(early[1:6]), sum(early[44:49])) / 5, sum(early[19:30]) / 11
    assert ends < middle - 0.1, "'late positions are the hard ones': both ends are (a U)"
    assert claims.untrained_loss() > 6, "'a loss far above 6 means the logits are wrong'"
    dla = claims.chapter5()["dla"]["mlp0"]
    assert dla[2] > 0.9 * dla[1], "'MLP0 writes the answer directly'"
    for old in ("a factor of a hundred", "It cannot beat chance", "a factor of\nabout three apart",
                "MLP0 also writes the answer directly", "far above 6"):
        assert _words(old) not in " ".join(MASTERS.values()), f"the masters still say {old!r}"


def _assigned_dict(chapter, name):
    """The literal `NAME = dict(...)` of a chapter master's code, evaluated."""
    source = (ROOT / "chapters" / f"{chapter}.md").read_text(encoding="utf-8")
    match = re.search(rf"^{name} = (dict\(.*?\))\n", source, re.S | re.M)
    assert match, f"chapters/{chapter}.md defines no {name} = dict(...)"
    call = ast.parse(match.group(1), mode="eval").body
    return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}


@pytest.mark.parametrize("name", ["ch2_spike_run", "ch2_spike_fixed"])
def test_the_recorded_spike_runs_are_the_notebooks_recipe(name):
    run = recorded.load(name)
    recipe = _assigned_dict("02_schedule", "SPIKE_RUN")
    recipe["betas"] = list(recipe["betas"])  # JSON has no tuples
    assert run["recipe"] == recipe, "re-record with `make record` after changing SPIKE_RUN"
    assert len(run["loss"]) == recipe["total_steps"] == len(run["lr"]) == len(run["running"])
    flat = [lr / recipe["lr"] for lr in run["lr"][recipe["warmup_steps"]:]]
    assert (max(flat) > 10) == (name == "ch2_spike_run"), "the fix's run keeps the learning rate flat"


def test_the_recorded_comparison_at_the_original_rate_is_the_notebooks_recipe():
    runs = recorded.load("ch2_original_lr")
    recipe = _assigned_dict("02_schedule", "ORIGINAL_LR")
    assert len(runs) == 2 and all(len(run["loss"]) == recipe["total_steps"] for run in runs.values())
    assert [run["lr"][-1] / recipe["lr"] for run in runs.values()] == pytest.approx([7, 1], rel=0.02)


# --------------------------------------------------------------- causal words need a claim
# Chapters 4-6 and their facilitator guides interpret the model. Every causal verb in their
# prose must sit inside a registered claim's quoted text (tools/claims.py: a sentence and the
# experiment that supports it) or in a sentence the rules below or the allow-list exempt.
CAUSAL = re.compile(r"\b(carries|carry|writes|write|uses|use|reads|is for|are for|causes|because|needs|need"
                    r"|relies|rely)\b", re.I)
LINTED = [f"chapters/{stem}.md" for stem in ("04_attention", "05_mechanism", "06_beyond")] + \
    [f"docs/facilitator/{stem}.md" for stem in ("04_attention", "05_mechanism", "06_beyond")]
# Not claims about the model: a question; an instruction to the learner (the sentence opens
# with the verb); what a code name does (`name` uses ...); what a probe reads (a measurement,
# registered as such); a sentence that says it is a hypothesis or untested.
HEDGES = ("hypothesis", "not tested", " may ", " might ", "is open")
# Sentences with a causal verb that state no finding about the model, each with why.
ALLOWED = {
    "what it carries about *this particular sequence* is gone": "defines mean-ablation (a method)",
    "the model did not need that information": "says how to read an ablation (a method)",
    "then `W_U` reads out logits": "architecture: the unembedding",
    "because softmax ignores a shift shared by all logits": "a property of softmax",
    "not what MLP1 reads": "names the blind spot of direct logit attribution (a method)",
    "to use TransformerLens hooks": "a learning objective",
    "needs manual grading": "nbgrader's label for a hand-graded cell",
    "needs a qualifier": "about the sentence, not the model",
    "who writes the answer": "the question that titles chapter 5, section 4",
    "write hypothesis and prediction in the room": "a classroom instruction",
    "thinks randomness carries no structure": "a learner's wrong belief, named as wrong",
    "a route that never reads a weight": "describes how a check computes, not the model",
    "a block reads the residual stream through its layer norm": "architecture: a pre-LN block's input",
}


def _prose(path):
    """The page's prose, whitespace collapsed: no front matter, code, prediction blocks or hints."""
    text = (ROOT / path).read_text(encoding="utf-8")
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)
    text = re.sub(r"^```.*?^```[^\n]*$", " ", text, flags=re.S | re.M)
    text = re.sub(r"<details>.*?</details>", " ", text, flags=re.S)
    text = re.sub(r"^\+\+\+$", " ", text, flags=re.M)
    return _words(text)


def _sentence(text, at):
    starts = [m.end() for m in re.finditer(r"[.!?:]\s|\|\s|\s-\s|\*\*\s", text[:at])]
    start = starts[-1] if starts else 0
    end = re.search(r"[.!?][*\"')]*(\s|$)|\|", text[at:])
    return text[start:at + (end.end() if end else len(text) - at)]


def _unbacked(path):
    text = _prose(path)
    stem = path.removeprefix("chapters/").removeprefix("docs/").removesuffix(".md")
    spans = []
    for claim in claims.CLAIMS:
        if claim.chapter == stem:
            quoted = _words(claim.text)
            spans += [(m.start(), m.start() + len(quoted)) for m in re.finditer(re.escape(quoted), text)]
    for match in CAUSAL.finditer(text):
        sentence = _sentence(text, match.start())
        before = sentence[:sentence.find(match.group(0))] if match.group(0) in sentence else ""
        if (any(a <= match.start() < b for a, b in spans) or sentence.rstrip(" *\"')").endswith("?")
                or not before.strip("*#> ") or before.rstrip().endswith("`") or "probe" in before
                or any(h in f" {sentence} " for h in HEDGES)
                or any(_words(a).lower() in sentence.lower() for a in ALLOWED)):
            continue
        yield f"{path}: {match.group(0)!r} in {sentence.strip()!r}"


@pytest.mark.parametrize("path", LINTED)
def test_every_causal_word_is_backed_by_a_registered_claim(path):
    unbacked = list(_unbacked(path))
    assert not unbacked, (
        "causal words with no registered claim (register the sentence and its experiment in "
        "tools/claims.py, reword it, or, if it states nothing about the model, allow it with a "
        "reason in ALLOWED):\n" + "\n".join(unbacked))


def test_the_allow_list_is_not_stale():
    prose = " ".join(_prose(path).lower() for path in LINTED)
    for allowed in ALLOWED:
        assert _words(allowed).lower() in prose, f"ALLOWED[{allowed!r}] is no longer in chapters 4-6: remove it"
        assert CAUSAL.search(allowed), f"ALLOWED[{allowed!r}] has no causal word: remove it"
