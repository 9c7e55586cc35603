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


def test_the_recorded_spike_run_is_the_notebooks_recipe():
    run = recorded.load("ch2_spike_run")
    recipe = _assigned_dict("02_schedule", "SPIKE_RUN")
    recipe["betas"] = list(recipe["betas"])  # JSON has no tuples
    assert run["recipe"] == recipe, "re-record with `make record` after changing SPIKE_RUN"
    assert len(run["loss"]) == recipe["total_steps"] == len(run["lr"]) == len(run["running"])
