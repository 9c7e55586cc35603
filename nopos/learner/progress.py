"""Where am I? Which chapters and exercises of *your* notebooks pass their checks.

    python -m nopos.learner.progress                       # every chapter in course/
    python -m nopos.learner.progress --chapter 01          # one chapter
    python -m nopos.learner.progress my/copy.ipynb         # any notebook of the course

Each notebook is run from a fresh kernel (a copy in memory: your file is not
touched), with no person at the keyboard (prediction questions do not wait),
and every graded check cell is reported as passed or failed, with the reason.
A chapter whose exercises are all still `raise NotImplementedError()` is
reported as "not started" without running it, which keeps this quick.
This is the same verdict `make grade` gives, without the nbgrader round trip
and without the hidden tests: grade yourself with `make grade` for the score.
"""
import argparse
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from nopos.threads import pick_threads, thread_env

REPO = Path(__file__).resolve().parents[2]
COURSE = REPO / "course"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
UNWRITTEN = "raise NotImplementedError"
PASS, FAIL, TODO = "pass", "fail", "todo"


@dataclass
class CheckResult:
    grade_id: str
    status: str          # pass / fail / todo (its exercise is not written yet)
    points: float = 0.0
    message: str = ""


@dataclass
class Progress:
    chapter: str
    notebook: Path
    results: list = field(default_factory=list)
    executed: bool = False
    seconds: float = 0.0
    error: str = ""      # the notebook could not be read or run at all

    @property
    def passed(self):
        return sum(r.status == PASS for r in self.results)

    @property
    def points(self):
        return sum(r.points for r in self.results if r.status == PASS)

    @property
    def max_points(self):
        return sum(r.points for r in self.results)

    @property
    def done(self):
        return bool(self.results) and self.passed == len(self.results)


def _graded(cell):
    meta = cell.metadata.get("nbgrader", {})
    return meta.get("grade") and meta.get("grade_id") and cell.cell_type == "code"


def _answers(nb):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")
            and c.cell_type == "code"]


def chapter_of(nb, path):
    return nb.metadata.get("nopos", {}).get("chapter") or Path(path).stem


def check_notebook(path, timeout=600, run_all=False, kernel_name="nopos"):
    """Run one notebook and say which graded checks pass."""
    path = Path(path)
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as error:  # noqa: BLE001 - a damaged file is a finding, not a crash
        return Progress(path.stem, path, error=f"cannot read the notebook: {error}")
    progress = Progress(chapter_of(nb, path), path)
    graded = [c for c in nb.cells if _graded(c)]
    if not graded:
        progress.error = "no graded checks in this notebook (is it a copy from course/?)"
        return progress
    answers = _answers(nb)
    if not run_all and answers and all(UNWRITTEN in c.source for c in answers):
        progress.results = [CheckResult(c.metadata["nbgrader"]["grade_id"], TODO,
                                        float(c.metadata["nbgrader"].get("points", 0)),
                                        "not started") for c in graded]
        return progress
    start = time.perf_counter()
    try:
        _execute(nb, path, timeout, kernel_name)
        progress.executed = True
    except Exception as error:  # noqa: BLE001 - a timeout or dead kernel: report it
        progress.error = f"the notebook stopped running: {type(error).__name__}: " \
                         f"{ANSI.sub('', str(error)).strip()[:300]}"
    progress.seconds = time.perf_counter() - start
    progress.results = [_result(c, progress.executed) for c in graded]
    return progress


def _execute(nb, path, timeout, kernel_name):
    from nbclient import NotebookClient

    # the kernel inherits these: no prediction waits, the short demonstrations
    # of grading (NOPOS_QUICK, as `make grade` runs them), threads the free CPUs allow
    kernel_env = dict(thread_env(pick_threads()), NOPOS_NONINTERACTIVE="1", NOPOS_QUICK="1")
    saved = {k: os.environ.get(k) for k in [*kernel_env, "PYTHONWARNINGS"]}
    os.environ.update(kernel_env)
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    try:
        NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, allow_errors=True,
                       resources={"metadata": {"path": str(Path(path).parent.resolve())}}
                       ).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _result(cell, executed):
    meta = cell.metadata["nbgrader"]
    grade_id, points = meta["grade_id"], float(meta.get("points", 0))
    outputs = cell.get("outputs", [])
    if executed and cell.get("execution_count") is None and not outputs:
        return CheckResult(grade_id, FAIL, points, "did not run")
    for out in outputs:
        if out.get("output_type") == "error":
            message = ANSI.sub("", f"{out['ename']}: {out['evalue']}").strip()
            status = TODO if out["ename"] == "NotImplementedError" else FAIL
            if status == TODO:
                message = "its exercise is not written yet (NotImplementedError)"
            return CheckResult(grade_id, status, points, message)
    for out in outputs:
        if out.get("name") == "stderr":  # nbgrader gives 0 points for this too
            return CheckResult(grade_id, FAIL, points,
                               "the cell wrote to stderr: " + out["text"].strip()[:200])
    if not executed:
        return CheckResult(grade_id, FAIL, points, "not reached")
    return CheckResult(grade_id, PASS, points)


def find_notebooks(course=COURSE, chapter=None):
    """The learner's notebooks: course/<id>/<id>.ipynb, in chapter order."""
    found = sorted(p for p in Path(course).glob("*/*.ipynb")
                   if p.stem == p.parent.name and ".ipynb_checkpoints" not in p.parts)
    if chapter:
        match = re.match(r"^(?:ch)?0*(\d+)", str(chapter).lower())
        found = [p for p in found if (match and re.match(r"^0*(\d+)", p.stem)
                                      and int(re.match(r"^0*(\d+)", p.stem).group(1))
                                      == int(match.group(1))) or p.stem == chapter]
    return found


MARKS = {PASS: "\N{HEAVY CHECK MARK}", FAIL: "\N{HEAVY BALLOT X}", TODO: "\N{WHITE CIRCLE}"}


def report(progress):
    lines = []
    p = progress
    if p.error and not p.results:
        return f"{p.chapter}: {p.error}"
    head = f"{p.chapter}: {p.passed}/{len(p.results)} checks pass ({p.points:g}/{p.max_points:g} points)"
    if p.done:
        head += "  \N{HEAVY CHECK MARK} chapter done"
    elif not p.executed and all(r.status == TODO for r in p.results):
        head += "  (not started)"
    lines.append(head + (f"  [{p.seconds:.0f} s]" if p.executed else ""))
    for r in p.results:
        lines.append(f"   {MARKS[r.status]} {r.grade_id}")
        if r.status != PASS and r.message and r.message != "not started":
            lines.append(f"       {r.message}")
    if p.error:
        lines.append(f"   ! {p.error}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Which of your exercises pass their checks.")
    parser.add_argument("notebooks", nargs="*", help="notebooks to check (default: course/*/)")
    parser.add_argument("--chapter", help="only this chapter, e.g. 01 or 01_dataset")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--run-all", action="store_true",
                        help="also run notebooks whose exercises are all unwritten")
    args = parser.parse_args(argv)
    paths = [Path(p) for p in args.notebooks] or find_notebooks(chapter=args.chapter)
    if not paths:
        print("no notebooks found" + (f" for chapter {args.chapter}" if args.chapter else ""))
        return 1
    print("checking your notebooks (each runs from a fresh kernel; no file is changed) ...\n",
          flush=True)
    results = []
    for path in paths:
        progress = check_notebook(path, timeout=args.timeout, run_all=args.run_all)
        results.append(progress)
        print(report(progress) + "\n", flush=True)
    done = sum(p.done for p in results)
    passed = sum(p.passed for p in results)
    total = sum(len(p.results) for p in results)
    print(f"overall: {done}/{len(results)} chapter(s) done, {passed}/{total} checks pass. "
          f"For your score (hidden tests too): make grade NB=<notebook>")
    return 0


if __name__ == "__main__":
    sys.exit(main())
