"""Shared test set-up: no person at the keyboard, a private prediction log, one
scratch nbgrader course per test session."""
import os
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ["NOPOS_NONINTERACTIVE"] = "1"
os.environ.setdefault("PYTHONWARNINGS", "ignore")
# with `pytest -n N` the cores are shared out: every worker's torch, and the kernels
# and graders it starts, get their share (oversubscribed, torch slows manyfold)
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1 and "NOPOS_THREADS" not in os.environ:
    from nopos.threads import pick_threads, thread_env

    for _key, _value in thread_env(pick_threads(share=_WORKERS)).items():
        os.environ.setdefault(_key, _value)


@pytest.fixture(autouse=True)
def private_log(tmp_path, monkeypatch):
    """Every test writes predictions to its own log, never the learner's."""
    monkeypatch.setenv("NOPOS_HOME", str(tmp_path / "nopos-home"))
    return tmp_path / "nopos-home" / "predictions.jsonl"


def chapters():
    return sorted(p.stem for p in (ROOT / "chapters").glob("[0-9][0-9]_*.md"))


def reveal_cells(nb):
    """Indices of a notebook's reveal cells (collapsed answers of predictions). In a
    release they fail as a consequence when the exercise they build on is unwritten."""
    return {i for i, c in enumerate(nb.cells) if "reveal" in c.get("metadata", {}).get("tags", [])}


def release_path(aid):
    return ROOT / "course" / aid / f"{aid}.ipynb"


def source_path(aid):
    return ROOT / "autograder" / "source" / aid / f"{aid}.ipynb"


def reference_answers(aid):
    """grade_id -> the reference code of every answer cell (markers stripped)."""
    from tools.build_course import strip_markers

    nb = nbformat.read(source_path(aid), as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: strip_markers(c.source) for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


def filled_release(aid, overrides=None):
    """The release notebook as a learner would hand it in: the reference answers,
    with some answer cells replaced by `overrides` (grade_id -> code)."""
    answers = {**reference_answers(aid), **(overrides or {})}
    nb = nbformat.read(release_path(aid), as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in answers:
            cell.source = answers[grade_id]
    return nb


@pytest.fixture(scope="session")
def scratch_course(tmp_path_factory):
    """One nbgrader course for the whole session, every chapter generated once."""
    from nopos.grading import course

    root = tmp_path_factory.mktemp("nbgrader-course")
    course.make_course(root, chapters())
    return root
