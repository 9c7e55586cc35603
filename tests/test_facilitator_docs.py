"""Every chapter has a facilitator guide that knows its prediction points."""
import re

import pytest

from conftest import ROOT, chapters

GUIDES = ROOT / "docs" / "facilitator"
SECTIONS = ("Goals", "Timed plan", "Where to stop and predict", "Discussion questions",
            "Common wrong answers", "Short of time")


@pytest.mark.parametrize("aid", chapters())
def test_guide_exists_and_covers_every_prediction(aid):
    guide = GUIDES / f"{aid}.md"
    assert guide.exists(), f"write docs/facilitator/{aid}.md (see docs/facilitator/01_dataset.md)"
    text = guide.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert section in text, f"{guide.name} lacks a '{section}' section"
    master = (ROOT / "chapters" / f"{aid}.md").read_text(encoding="utf-8")
    keys = re.findall(r"""predict\.ask\(\s*["']([\w.]+)["']""", master)
    missing = [k for k in keys if k not in text]
    assert not missing, f"{guide.name} does not mention the prediction points {missing}"
    assert f"]({aid}.md)" in (GUIDES / "README.md").read_text(encoding="utf-8")
    stated = re.search(r"Exercises: (\d+)", text)
    exercises = len(re.findall(r"^### Exercise ", master, re.M))
    assert stated and int(stated.group(1)) == exercises, \
        f"{guide.name}'s header should say 'Exercises: {exercises}' (the master has {exercises})"


def test_self_study_path_lists_every_chapter_and_the_commands():
    text = (ROOT / "docs" / "self-study.md").read_text(encoding="utf-8")
    for aid in chapters():
        assert f"course/{aid}/" in text
    for needle in ("make grade NB=", "make progress", "make scoreboard",
                   "nopos/data/reference.pt", "make doctor", "Hint"):
        assert needle in text
