"""Runs with nobody at the keyboard: plain `jupyter nbconvert --execute`.

No front end started the kernel and none of nbgrader's or CI's variables is
set. Every reveal must show its answer (not "Commit a prediction above first"),
its plots must be real outputs (not only widget state), and the reveals must be
logged so that the scoreboard works afterwards.
"""
import os
import subprocess
import sys

import nbformat
import pytest

from conftest import ROOT
from nopos.learner import scoreboard

pytestmark = pytest.mark.slow

NO_KEYBOARD = ("NOPOS_NONINTERACTIVE", "NOPOS_INTERACTIVE", "NBGRADER_EXECUTION", "CI",
               "JPY_SESSION_NAME", "VSCODE_PID", "VSCODE_CWD")


def nbconvert_execute(path, out_dir, home, quick=False):
    env = {k: v for k, v in os.environ.items() if k not in NO_KEYBOARD}
    env.update(NOPOS_HOME=str(home), PYTHONWARNINGS="ignore")
    if quick:
        env["NOPOS_QUICK"] = "1"
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--execute", "--to", "notebook",
                    "--output-dir", str(out_dir), str(path)],
                   check=True, env=env, cwd=ROOT, capture_output=True, timeout=600)
    return nbformat.read(out_dir / path.name, as_version=4)


def outputs(cell, mime):
    return [o["data"][mime] for o in cell.get("outputs", []) if mime in o.get("data", {})]


def test_chapter_1_reveals_its_answers_and_logs_them(tmp_path):
    nb = nbconvert_execute(ROOT / "solutions" / "01_dataset.ipynb", tmp_path, tmp_path / "home",
                           quick=True)
    reveal_cells = [c for c in nb.cells if "predict.reveal(" in c.source]
    assert len(reveal_cells) == 2
    for cell in reveal_cells:
        html = "".join(outputs(cell, "text/html"))
        assert "Result:</b> " in html and "Commit a prediction" not in html, html[:300]
        assert not outputs(cell, "application/vnd.jupyter.widget-view+json")
    rows = {e.key: e for e in scoreboard.entries(scoreboard.read_log(tmp_path / "home" /
                                                                     "predictions.jsonl"))}
    assert set(rows) == {"ch1.untrained_loss", "ch1.copy_accuracy"}
    assert 5.5 < rows["ch1.untrained_loss"].actual < 6.5
    assert rows["ch1.copy_accuracy"].actual == "about 0.3% (1 in 299)"
    assert all(e.prediction is None for e in rows.values())
    last = nb.cells[[i for i, c in enumerate(nb.cells) if "scoreboard.show" in c.source][-1]]
    assert not [o for o in last.outputs if o["output_type"] == "execute_result"], \
        "scoreboard.show() must not print a return value"
    assert "no prediction" in "".join(outputs(last, "text/html"))


def test_a_reveals_plot_is_a_real_output(tmp_path):
    """Chapter 2's key plots are drawn by reveals: headless they must be images."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import matplotlib.pyplot as plt\nfrom nopos import predict\n"
        "q = predict.ask('ch9.plot', 'Which?', options=['a', 'b'])"),
        nbformat.v4.new_code_cell(
        "def show():\n    plt.plot([1, 2, 3])\n    plt.show()\n"
        "predict.reveal(q, 'b', show=show)")]
    path = tmp_path / "plot.ipynb"
    nbformat.write(nb, path)
    out = nbconvert_execute(path, tmp_path / "out", tmp_path / "home")
    reveal_cell = out.cells[1]
    assert outputs(reveal_cell, "image/png"), "the plot must be an image, not widget state"
    assert not outputs(reveal_cell, "application/vnd.jupyter.widget-view+json")
    assert "Result:</b> b" in "".join(outputs(reveal_cell, "text/html"))
