"""Grade your own notebook with real nbgrader commands in a scratch course directory.

    python -m nopos.learner.selfgrade course/01_dataset/01_dataset.ipynb   (or: make grade NB=...)

runs `nbgrader generate_assignment`, `autograde` and `generate_feedback` on a
copy of the course's nbgrader set-up, then prints the score of every graded
cell with the reason it lost points, and where the HTML feedback is. No
JupyterHub, no exchange: the same commands an instructor runs.
"""
import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import nbformat

from nopos.grading.batch import autograde
from nopos.grading.course import REPO, feedback, make_course, results, submit

ON_COLAB = """\
Self-grading does not work on Colab: nbgrader grades the notebook *file*, and a
Colab kernel cannot read the notebook it runs. Instead:
  1. File -> Download -> Download .ipynb
  2. in a clone of the course on your machine:  make grade NB=path/to/your_notebook.ipynb
The checks under each exercise work on Colab as they are."""


def on_colab():
    """True in a Colab kernel, and in commands it starts (`!python -m nopos.learner.selfgrade ...`)."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ



def report(rows):
    lines = []
    for r in rows:
        mark = "\N{HEAVY CHECK MARK}" if r.score == r.max_score else "\N{HEAVY BALLOT X}"
        lines.append(f"  {mark} {r.grade_id:<34} {r.score:g} / {r.max_score:g}")
        if r.message and r.score < r.max_score:
            lines.append(f"      {r.message}")
    total, possible = sum(r.score for r in rows), sum(r.max_score for r in rows)
    lines.append(f"  total: {total:g} / {possible:g}")
    return "\n".join(lines)


def graded_by_hand(notebook):
    """[(grade_id, points)] of the written answers a person grades (chapter 6's research task)."""
    cells = nbformat.read(notebook, as_version=4).cells
    return [(c.metadata["nbgrader"]["grade_id"], c.metadata["nbgrader"].get("points", 0))
            for c in cells if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade")]


def assignment_of(notebook):
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    return nb.get("metadata", {}).get("nopos", {}).get("chapter") or Path(notebook).stem


def grade_one(notebook, student="me", workdir=None):
    """Grade one notebook; returns (rows, feedback html path)."""
    if on_colab():
        raise SystemExit(ON_COLAB)
    notebook = Path(notebook).resolve()
    if not notebook.exists():
        raise SystemExit(f"no notebook at {notebook}")
    try:
        aid = assignment_of(notebook)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SystemExit(f"{notebook} is not a readable notebook ({error}); nothing was graded")
    cells = nbformat.read(notebook, as_version=4).cells
    if not any("nbgrader" in c.metadata for c in cells):
        raise SystemExit(f"{notebook} has no graded cells: grade your copy of the notebook in "
                         f"course/ (the notebooks in solutions/ are reference answers)")
    root = Path(workdir or REPO / ".grading" / aid)
    shutil.rmtree(root, ignore_errors=True)
    # your own code on your own machine: a root account without namespaces (a container)
    # still grades it, where a class's grading refuses to (nopos.grading.sandbox)
    make_course(root, [aid], {"SandboxedExecute.own_notebook": True})
    submit(root, aid, student, notebook)
    autograde(root, aid, student)
    html = feedback(root, aid, student)
    return results(root, aid, student), html


def main(argv=None):
    parser = argparse.ArgumentParser(description="Grade your own notebook with nbgrader.")
    parser.add_argument("notebook", help="e.g. course/01_dataset/01_dataset.ipynb")
    parser.add_argument("--student", default="me")
    args = parser.parse_args(argv)
    if on_colab():
        print(ON_COLAB)
        return 2
    print(f"grading {args.notebook} with nbgrader (takes about 20 s) ...", flush=True)
    rows, html = grade_one(args.notebook, args.student)
    print(report(rows))
    for grade_id, points in graded_by_hand(args.notebook):
        print(f"  \N{WRITING HAND} {grade_id:<34} graded by hand ({points:g} points), not in the total above")
    print(f"feedback: {html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
