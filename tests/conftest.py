"""Shared test set-up: no person at the keyboard, a private prediction log, one
scratch nbgrader course per test session."""
import os
from collections import Counter
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


@pytest.fixture(scope="session")
def graded_class(scratch_course, tmp_path_factory):
    """graded_class(aid): that chapter's class, graded once per session (tests/chapter_class.py)."""
    from chapter_class import Classes

    return Classes(scratch_course, tmp_path_factory.mktemp("classes"))


# files whose tests share no fixture: each test is a group of its own (a whole notebook
# each, minutes apiece: one file on one worker would be the suite's longest job)
ONE_BY_ONE = {"tests/test_notebooks.py"}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """`make test` runs `--dist loadgroup`: a test without an xdist_group mark is grouped
    with its file (as `--dist loadfile` did: module fixtures are built once), and a
    chapter's graded class is one group across files (tests/chapter_class.py). Groups
    holding the most slow tests are queued first, so the longest start first and quick
    files fill the gaps at the end (with --no-loadscope-reorder, xdist keeps this order)."""
    def group_of(item):
        return item.get_closest_marker("xdist_group").args[0]

    for item in items:
        if not item.get_closest_marker("xdist_group"):
            path = item.nodeid.split("::")[0]
            item.add_marker(pytest.mark.xdist_group(item.nodeid if path in ONE_BY_ONE else path))
    slow = Counter(group_of(i) for i in items if i.get_closest_marker("slow") or i.get_closest_marker("browser"))
    # the most slow tests first (a rough measure of a group's minutes); stable: a file's order is kept
    items.sort(key=lambda item: -slow.get(group_of(item), 0))
