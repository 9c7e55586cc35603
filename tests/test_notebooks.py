"""Every notebook runs top to bottom from a fresh kernel, on CPU.

Solutions: no errors, every check passes, the same graded values every run.
Releases: every graded check fails, and the only errors are the learner's
unwritten exercises (NotImplementedError), never a crash of the course itself.
"""
import re
import time

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT, chapters, release_path

pytestmark = pytest.mark.slow
EXPECTED_IN_RELEASE = {"NotImplementedError", "CheckFailed"}


def execute(path, allow_errors=False):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="nopos", allow_errors=allow_errors,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    return nb, time.perf_counter() - start


def errors(nb):
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append((i, cell, out["ename"], out["evalue"]))
    return found


def promised_seconds(nb):
    match = re.search(r"Running every cell:\*\* under (\d+) (seconds|minutes?)", nb.cells[0].source)
    assert match, "the header must promise how long running every cell takes"
    return int(match.group(1)) * (60 if match.group(2).startswith("minute") else 1)


@pytest.mark.parametrize("aid", chapters())
def test_solution_runs_clean_with_every_check_passing(aid):
    nb, seconds = execute(ROOT / "solutions" / f"{aid}.ipynb")
    assert not errors(nb)
    text = "\n".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    checks = len(re.findall(r"check_\w+\(", "\n".join(c.source for c in nb.cells)))
    assert text.count("all checks passed") >= 1 and checks >= 1
    limit = promised_seconds(nb)
    print(f"{aid}: solution executed in {seconds:.1f} s (header promises under {limit} s)")
    # a loose bound: catches a notebook that trains for minutes, not machine noise
    assert seconds < 4 * limit, f"{aid} took {seconds:.0f} s; its header promises {limit} s"


@pytest.mark.parametrize("aid", chapters())
def test_release_fails_its_checks_and_nothing_else(aid, monkeypatch):
    monkeypatch.setenv("NOPOS_QUICK", "1")  # demonstrations run short; the solutions run in full
    nb, _ = execute(release_path(aid), allow_errors=True)
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    failing = [c for c in graded if any(o.get("output_type") == "error" for o in c.outputs)]
    assert len(failing) == len(graded), "every graded check must fail on the untouched release"
    unexpected = [(i, name, value[:200]) for i, _, name, value in errors(nb)
                  if name not in EXPECTED_IN_RELEASE]
    assert not unexpected, f"{aid}: cells fail for other reasons than unwritten exercises: {unexpected}"
