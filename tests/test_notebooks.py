"""Every notebook runs top to bottom from a fresh kernel, on CPU.

Solutions run here at full size: no errors, every check passes. (Releases run
under nbgrader in the round trip, untouched: only the unwritten exercises fail;
and in real JupyterLab in tests/browser.) How long each takes against its
header's promise is a benchmark, `make bench-notebooks`, not a timed test.
"""
import re

import pytest

from conftest import ROOT, chapters
from bench.notebooks import promised_seconds, run

pytestmark = pytest.mark.slow


def errors(nb):
    return [(i, out["ename"], out["evalue"]) for i, cell in enumerate(nb.cells)
            for out in cell.get("outputs", []) if out.get("output_type") == "error"]


@pytest.mark.parametrize("aid", chapters())
def test_solution_runs_clean_with_every_check_passing(aid):
    nb, seconds, _ = run(ROOT / "solutions" / f"{aid}.ipynb")  # the benchmark's runner
    assert not errors(nb)
    text = "\n".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    checks = len(re.findall(r"check_\w+\(", "\n".join(c.source for c in nb.cells)))
    assert text.count("all checks passed") >= 1 and checks >= 1
    assert promised_seconds(nb), "the header must promise how long running every cell takes"
    print(f"{aid}: solution executed in {seconds:.1f} s (a figure, not a verdict: "
          f"make bench-notebooks compares it with the header's promise)")
