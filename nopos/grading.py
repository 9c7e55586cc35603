"""Grade notebooks with real nbgrader commands in a scratch course directory.

    python -m nopos.grading course/01_dataset/01_dataset.ipynb

runs `nbgrader generate_assignment`, `autograde` and `generate_feedback` on a
copy of the course's nbgrader set-up, then prints the score of every graded
cell with the reason it lost points, and where the HTML feedback is. No
JupyterHub, no exchange: the same commands an instructor runs.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
AUTOGRADER = REPO / "autograder"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
ON_COLAB = """\
Self-grading does not work on Colab: nbgrader grades the notebook *file*, and a
Colab kernel cannot read the notebook it runs. Instead:
  1. File -> Download -> Download .ipynb
  2. in a clone of the course on your machine:  make grade NB=path/to/your_notebook.ipynb
The checks under each exercise work on Colab as they are."""


def on_colab():
    """True in a Colab kernel, and in commands it starts (`!python -m nopos.grading ...`)."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


@dataclass
class CellResult:
    grade_id: str
    score: float
    max_score: float
    message: str = ""


def nbgrader(root, *args, check=True, timeout=None, threads=None, runtime=None):
    """Run one nbgrader command in course directory `root`; returns the completed process.

    `timeout` (s) bounds the whole command: past it, nbgrader and its kernel are
    killed and subprocess.TimeoutExpired is raised. `threads`: CPU threads of the
    kernel's torch, by default `nopos.threads.pick_threads()` (several graders at
    once must share the cores: oversubscribed, torch's thread pools slow each other
    down manyfold). `runtime`: the folder of the kernels' connection files (removed
    by the caller, even if nbgrader is killed)."""
    from nopos.threads import pick_threads, thread_env

    env = dict(os.environ, NOPOS_NONINTERACTIVE="1", PYTHONWARNINGS="ignore")
    if runtime:
        Path(runtime).mkdir(parents=True, exist_ok=True)
        env["NOPOS_RUNTIME_DIR"] = str(runtime)
    env.update(thread_env(threads or pick_threads()))
    # nbgrader runs `alembic` (and kernels) by name: find this environment's first
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    cmd = [sys.executable, "-m", "nbgrader", *args]
    with subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, start_new_session=True) as popen:
        try:
            out, err = popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(popen.pid, 9)  # nbgrader; its kernel follows (setpriv --pdeathsig)
            try:
                popen.communicate(timeout=10)
            except subprocess.TimeoutExpired:  # something still holds the pipes: stop waiting
                popen.kill()
            raise
    proc = subprocess.CompletedProcess(cmd, popen.returncode, out, err)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`nbgrader {' '.join(args)}` failed ({proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def make_course(root, assignments=None, settings=None):
    """A scratch course: the course's config, its source notebooks, a fresh gradebook.

    `settings`: extra nbgrader config lines, e.g. {"Execute.timeout": 10}."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(AUTOGRADER / "nbgrader_config.py", root / "nbgrader_config.py")
    if settings:
        with open(root / "nbgrader_config.py", "a") as config:
            config.write("\n# settings of this scratch course\n")
            config.writelines(f"c.{k} = {v!r}\n" for k, v in settings.items())
    available = sorted(p.name for p in (AUTOGRADER / "source").iterdir() if p.is_dir())
    for aid in assignments or available:
        if aid not in available:
            raise SystemExit(f"no assignment {aid!r}; the course has {', '.join(available)}")
        shutil.copytree(AUTOGRADER / "source" / aid, root / "source" / aid, dirs_exist_ok=True)
        nbgrader(root, "generate_assignment", aid, "--force")
    return root


def submit(root, aid, student, notebook):
    """Place a learner's notebook where `nbgrader autograde` looks for it."""
    target = Path(root) / "submitted" / student / aid
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(notebook, target / f"{aid}.ipynb", follow_symlinks=False)
    return target


def autograde(root, aid, student=None, timeout=None, workers=None, check=True):
    """`nbgrader autograde`, after the intake check of every submission.

    Intake leaves submitted/ as it is and writes what is graded to intake/ready/;
    nbgrader grades that folder. A student nbgrader could not grade is graded again
    as rejected, so that everyone has a row. With `workers`, the parallel batch of
    nopos.grade_batch (one nbgrader per student in a private copy of the course,
    merged into this gradebook)."""
    from nopos.grade_batch import READY, check_student_id, grade_batch, intake, rejected_notebook

    if workers:
        return grade_batch(root, aid, [student] if student else None, workers=workers,
                           notebook_timeout=timeout)
    who = [student] if student else submitted_students(root, aid)
    for name in [w for w in who if check_student_id(w)]:
        print(f"not graded: {check_student_id(name)}", file=sys.stderr)
    who = [w for w in who if not check_student_id(w)]
    for name in who:
        intake(root, aid, name)
    args = ["autograde", aid, "--force", f"--CourseDirectory.submitted_directory={READY}"]
    proc = nbgrader(root, *args, *([f"--student={student}"] if student else []),
                    timeout=timeout, check=check)
    missing = [w for w in who if not (Path(root) / "autograded" / w / aid).exists()]
    for name in missing:  # nbgrader gave up on it: graded as rejected, saying why
        nbformat.write(rejected_notebook(root, aid, "nbgrader could not grade this submission"),
                       Path(root) / READY / name / aid / f"{aid}.ipynb")
        nbgrader(root, *args, f"--student={name}", check=check)
    return proc


def submitted_students(root, aid):
    return sorted(p.parent.name for p in (Path(root) / "submitted").glob(f"*/{aid}") if p.is_dir())


def feedback(root, aid, student=None):
    args = ["generate_feedback", aid, "--force"] + ([f"--student={student}"] if student else [])
    nbgrader(root, *args)
    return Path(root) / "feedback" / (student or "*") / aid / f"{aid}.html"


def results(root, aid, student):
    """Score and failure message of every graded cell, read from the gradebook."""
    from nbgrader.api import Gradebook

    root = Path(root)
    messages = _messages(root / "autograded" / student / aid / f"{aid}.ipynb")
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        submission = gb.find_submission_notebook(aid, aid, student)
        out = [CellResult(g.name, float(g.score or 0), float(g.max_score),
                          messages.get(g.name, "")) for g in submission.grades
               if g.max_score and g.cell_type == "code"]
    order = _cell_order(root / "source" / aid / f"{aid}.ipynb")
    return sorted(out, key=lambda r: order.get(r.grade_id, 1e9))


def _cell_order(path):
    nb = nbformat.read(path, as_version=4)
    return {c.metadata.get("nbgrader", {}).get("grade_id"): i for i, c in enumerate(nb.cells)}


def _messages(path):
    """Readable reason per failed test cell: the exception's message, or stderr."""
    if not path.exists():
        return {}
    nb = nbformat.read(path, as_version=4)
    found = {}
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if not grade_id or not cell.metadata["nbgrader"].get("grade"):
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found[grade_id] = ANSI.sub("", f"{output['ename']}: {output['evalue']}")
            elif output.get("name") == "stderr" and grade_id not in found:
                found[grade_id] = "the cell wrote to stderr: " + output["text"].strip()[:300]
    return found


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
    make_course(root, [aid])
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
    print(f"feedback: {html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
