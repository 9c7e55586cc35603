"""Shared test set-up: no person at the keyboard, a private prediction log, one
scratch nbgrader course per test session."""
import os
import re
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


def message_executor(cells=2, **caps):
    """A SandboxedExecute ready to handle a kernel's messages for a notebook of `cells`
    cells, with no kernel: the output budgets and display ids, tested message by message."""
    from collections import defaultdict

    from nbclient.client import NotebookClient

    from nopos.grading.sandbox import SandboxedExecute

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"cell {i}") for i in range(cells)])
    ex = SandboxedExecute(**caps)
    NotebookClient.__init__(ex, nb, None)
    ex.reset_execution_trackers()
    ex.clear_before_next_output = False
    ex._output_used, ex._output_noted = defaultdict(int), set()
    return ex, nb


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


# What `make test` (`--dist loadgroup`) hands one worker at once, read from test ids:
# a file (as `--dist loadfile`: its module fixtures are built once); a chapter's graded
# class, across the files that read it (tests/chapter_class.py: the chapter is the
# test's first parameter, or the file's own); or, in ONE_BY_ONE (files whose tests share
# no fixture, minutes apiece), each test alone. (xdist's own xdist_group marks cannot
# be used: with pytest 9 it no longer renames the tests it groups.)
CLASS_FILES = {"tests/test_grading_roundtrip.py": None, "tests/test_fakes.py": "01_dataset",
               "tests/test_queue.py": "01_dataset"}
ONE_BY_ONE = {"tests/test_notebooks.py"}


def work_unit(nodeid):
    path = nodeid.split("::")[0]
    if path in ONE_BY_ONE:
        return nodeid
    if path in CLASS_FILES:
        found = re.search(r"\[(\d\d_[a-z0-9_]+)", nodeid)
        aid = found.group(1) if found else CLASS_FILES[path]
        if aid:
            return f"class-{aid}"
    return path


@pytest.hookimpl(optionalhook=True)  # a run without xdist (the Colab-like venv) knows no such hook
def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnits(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return work_unit(nodeid)

    return WorkUnits(config, log)


def pytest_collection_modifyitems(config, items):
    """Work units holding the most slow tests are queued first, so the longest start
    first and quick files fill the gaps at the end (`--no-loadscope-reorder` keeps it)."""
    slow = Counter(work_unit(i.nodeid) for i in items
                   if i.get_closest_marker("slow") or i.get_closest_marker("browser"))
    # stable: a file's own order is kept
    items.sort(key=lambda item: -slow.get(work_unit(item.nodeid), 0))
