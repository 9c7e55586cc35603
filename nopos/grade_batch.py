"""Autograde a class in parallel, on top of nbgrader, and survive bad submissions.

    python -m nopos.grade_batch COURSE_ROOT 01_dataset --workers 2

nbgrader autogrades one student after another in one process. Here every
student is graded by a real `nbgrader autograde <aid> --student=<s>` in a
private copy of the course (its config, the assignment's source, a snapshot of
the gradebook and only that student's submission), N at a time. The results
are then merged into the instructor's gradebook one student at a time through
nbgrader's Gradebook API, so the shared sqlite file only ever has one writer,
and the autograded notebooks are copied back where `nbgrader generate_feedback`
looks for them.

Before grading, `intake` repairs what a learner can break in a submission and
nbgrader cannot grade (see docs/grading.md): unreadable or empty files,
a wrong nbformat, huge outputs, duplicated grade ids, changed cell types,
deleted or reordered graded cells. What it cannot repair becomes a "rejected"
submission: every test scores 0 and its feedback says why.
"""
import argparse
import copy
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from nopos import grading
from nopos.threads import pick_threads

MAX_NOTEBOOK_MB = 20  # larger submissions lose their outputs (graded again from scratch anyway)
NOTE = "nopos_grading"


def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _release(root, aid):
    return nbformat.read(Path(root) / "release" / aid / f"{aid}.ipynb", as_version=4)


def rejected_notebook(root, aid, reason):
    """The release notebook, marked so that every test scores 0 saying `reason`."""
    nb = _release(root, aid)
    nb.metadata[NOTE] = {"rejected": reason}
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(
        f"**This submission was not graded:** {reason}"))
    return nb


def _load(path):
    """(notebook, notes) or (None, reason)."""
    size = path.stat().st_size
    if size == 0:
        return None, "the submitted file is empty"
    notes = []
    try:
        raw = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as error:
        return None, f"the submitted file is not valid notebook JSON ({str(error)[:120]})"
    if not isinstance(raw, dict) or not isinstance(raw.get("cells", []), list):
        return None, "the submitted file is JSON but not a notebook"
    if size > MAX_NOTEBOOK_MB * 2 ** 20:
        for cell in raw.get("cells", []):
            if isinstance(cell, dict) and cell.get("cell_type") == "code":
                cell["outputs"], cell["execution_count"] = [], None
        notes.append(f"the notebook was {size / 2 ** 20:.0f} MB; its outputs were removed before grading")
    version = raw.get("nbformat")
    if version not in (3, 4):
        return None, (f"the notebook has nbformat version {version!r}; this course reads version 4 "
                      f"(open and save it again in Jupyter)")
    try:
        nb = nbformat.reads(json.dumps(raw), as_version=4)
        nbformat.validate(nb)
    except Exception as error:  # nbformat raises many kinds
        return None, f"the notebook does not follow the notebook format ({str(error).splitlines()[0][:160]})"
    del raw
    return nb, notes


def repair(nb, release):
    """Put back what nbgrader needs, in place; returns the notes of what changed."""
    notes = []
    want = {_grade_id(c): c for c in release.cells if _grade_id(c)}
    order = [_grade_id(c) for c in release.cells if _grade_id(c)]
    seen = set()
    for cell in nb.cells:  # a copied graded cell keeps its code but not its grade id
        gid = _grade_id(cell)
        if gid and (gid in seen or gid not in want):
            del cell.metadata["nbgrader"]
            notes.append(f"a second cell with grade id {gid!r} is graded as an ordinary cell")
        elif gid:
            seen.add(gid)
    for cell in nb.cells:  # a graded cell whose type was changed gets its type back
        gid = _grade_id(cell)
        if gid and cell.cell_type != want[gid].cell_type:
            notes.append(f"cell {gid!r} was turned into {cell.cell_type}; it is {want[gid].cell_type} again")
            source, metadata = cell.source, cell.metadata
            new = (nbformat.v4.new_code_cell if want[gid].cell_type == "code"
                   else nbformat.v4.new_markdown_cell)(source, metadata=metadata)
            cell.clear()
            cell.update(new)
    # graded cells in the release's order, each with the learner's cells that follow it
    groups, head, current = {}, [], None
    for cell in nb.cells:
        gid = _grade_id(cell)
        if gid:
            current = gid
            groups[gid] = [cell]
        elif current is None:
            head.append(cell)
        else:
            groups[current].append(cell)
    present = [g for g in [_grade_id(c) for c in nb.cells] if g]
    missing = [g for g in order if g not in groups]
    if missing or present != [g for g in order if g in groups]:
        if missing:
            notes.append(f"deleted graded cells were put back: {', '.join(missing)}")
        if present != [g for g in order if g in groups]:
            notes.append("graded cells were moved; they were put back in the assignment's order")
        cells = list(head)
        for gid in order:
            cells += groups.get(gid) or [copy.deepcopy(want[gid])]
        nb.cells = cells
    return notes


def intake(root, aid, student):
    """Check and repair submitted/<student>/<aid>/<aid>.ipynb in place (the original is
    kept in intake/<student>/<aid>.ipynb); returns the notes, also stored in the notebook."""
    root = Path(root)
    path = root / "submitted" / student / aid / f"{aid}.ipynb"
    if not path.exists():
        nb, notes = None, f"no {aid}.ipynb was submitted"
    else:
        nb, notes = _load(path)
    kept = root / "intake" / student / f"{aid}.ipynb"
    if isinstance(notes, str):  # rejected
        reason = notes
        if path.exists() and not kept.exists():
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, kept)
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(rejected_notebook(root, aid, reason), path)
        return [reason]
    if nb.metadata.get(NOTE, {}).get("rejected"):
        return [nb.metadata[NOTE]["rejected"]]
    notes += repair(nb, _release(root, aid))
    nb.metadata.pop(NOTE, None)
    if notes:
        if not kept.exists():
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, kept)
        nb.metadata[NOTE] = {"notes": notes}
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(
            "**Grading notes:** " + "; ".join(notes)))
        nbformat.write(nb, path)
    return notes


# ------------------------------------------------------------------ parallel
def _snapshot(db, target):
    """A consistent copy of an sqlite file, even while someone writes to it."""
    src, dst = sqlite3.connect(db), sqlite3.connect(target)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()


def _grade_private(root, aid, student, batch, snapshot, timeout, threads):
    """One real `nbgrader autograde --student` in a private copy of the course."""
    private = batch / student
    shutil.rmtree(private, ignore_errors=True)
    (private / "source").mkdir(parents=True)
    shutil.copy(root / "nbgrader_config.py", private / "nbgrader_config.py")
    shutil.copytree(root / "source" / aid, private / "source" / aid)
    shutil.copytree(root / "submitted" / student / aid, private / "submitted" / student / aid)
    shutil.copy(snapshot, private / "gradebook.db")
    start = time.monotonic()
    try:
        proc = grading.nbgrader(private, "autograde", aid, "--force", f"--student={student}",
                                check=False, timeout=timeout, hide=[root, batch], threads=threads)
        status = "ok" if proc.returncode == 0 else f"nbgrader failed: {proc.stderr[-2000:]}"
    except subprocess.TimeoutExpired:
        reason = (f"grading stopped: the notebook ran past the {timeout} s limit for a whole "
                  f"notebook")
        nbformat.write(rejected_notebook(root, aid, reason),
                       private / "submitted" / student / aid / f"{aid}.ipynb")
        proc = grading.nbgrader(private, "autograde", aid, "--force", f"--student={student}",
                                check=False, hide=[root, batch], threads=threads)
        status = "timeout"
    return student, status, time.monotonic() - start


def merge(root, aid, student, private):
    """Copy one student's autograde results from a private course into `root`."""
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    with Gradebook(f"sqlite:///{private / 'gradebook.db'}") as src:
        got = src.find_submission(aid, student)
        timestamp = got.timestamp
        rows = {}
        for nb in got.notebooks:
            rows[nb.name] = (
                {g.name: (g.auto_score, g.manual_score, g.extra_credit, g.needs_manual_grade)
                 for g in nb.grades},
                {c.name: c.auto_comment for c in nb.comments},
                nb.flagged, nb.late_submission_penalty)
    with Gradebook(f"sqlite:///{Path(root) / 'gradebook.db'}") as gb, warnings.catch_warnings():
        # nbgrader's API autoflushes mid-creation of a new student's submission and
        # SQLAlchemy warns about it; the rows are complete once committed below
        warnings.filterwarnings("ignore", message=".*not in session", category=SAWarning)
        gb.update_or_create_student(student)
        sub = gb.update_or_create_submission(aid, student, timestamp=timestamp)
        for nb in sub.notebooks:
            grades, comments, flagged, penalty = rows[nb.name]
            for g in nb.grades:
                g.auto_score, g.manual_score, g.extra_credit, g.needs_manual_grade = grades[g.name]
            for c in nb.comments:
                c.auto_comment = comments.get(c.name)
            nb.flagged, nb.late_submission_penalty = flagged, penalty
        gb.db.commit()
    target = Path(root) / "autograded" / student / aid
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(private / "autograded" / student / aid, target)


def grade_batch(root, aid, students=None, workers=2, notebook_timeout=None, keep=False):
    """Autograde `students` (default: every submission of `aid`) with `workers` nbgrader
    processes at a time; returns {student: (status, seconds)}."""
    root = Path(root).resolve()
    students = students or grading.submitted_students(root, aid)
    notebook_timeout = notebook_timeout or _notebook_timeout(root)
    for student in students:
        intake(root, aid, student)
    batch = Path(tempfile.mkdtemp(prefix=f"nopos-batch-{aid}-"))
    try:
        snapshot = batch / "gradebook.snapshot.db"
        _snapshot(root / "gradebook.db", snapshot)
        outcome = {}
        workers = max(1, min(workers, len(students)))
        threads = pick_threads(share=workers)  # the free cores, shared out
        with ThreadPoolExecutor(max_workers=workers) as pool:
            jobs = [pool.submit(_grade_private, root, aid, s, batch, snapshot, notebook_timeout,
                                threads) for s in students]
            for job in jobs:  # merge in a fixed order, one writer at a time
                student, status, seconds = job.result()
                if (batch / student / "autograded" / student / aid).exists():
                    merge(root, aid, student, batch / student)
                else:
                    status = f"not graded: {status}"
                outcome[student] = (status, seconds)
        return outcome
    finally:
        if not keep:
            shutil.rmtree(batch, ignore_errors=True)


def _notebook_timeout(root):
    """The wall limit of one student's whole autograde: the sandbox's notebook budget
    plus a margin for nbgrader's own start-up and the kernel restarts."""
    text = (Path(root) / "nbgrader_config.py").read_text()
    budget = 900
    for line in text.splitlines():
        if line.replace(" ", "").startswith("c.SandboxedExecute.notebook_timeout="):
            budget = int(line.split("=")[1].split("#")[0].strip())
    return budget + 120


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="the course folder (where nbgrader_config.py is)")
    parser.add_argument("assignment")
    parser.add_argument("--student", action="append", help="only these students (repeatable)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=int, help="seconds for one whole notebook")
    args = parser.parse_args(argv)
    start = time.monotonic()
    outcome = grade_batch(args.root, args.assignment, args.student, args.workers, args.timeout)
    for student, (status, seconds) in outcome.items():
        print(f"{student:<24} {seconds:6.1f} s  {status.splitlines()[0][:100]}")
    print(f"{len(outcome)} submissions in {time.monotonic() - start:.1f} s with {args.workers} workers")
    return 0 if all(s == "ok" for s, _ in outcome.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
