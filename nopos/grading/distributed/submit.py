"""The instructor's side: send a chapter's class to the workers, watch it graded.

    NOPOS_BROKER_URL=... NOPOS_GRADEBOOK_URL=... PGPASSWORD=... NOPOS_QUEUE_KEYS=DIR \\
        python -m nopos.grading.distributed.submit COURSE_ROOT 01_dataset

Every submission goes through the one-machine intake first (`batch.intake`:
repaired, originals kept), then becomes one signed task carrying the repaired
folder. The assignment is written into the shared gradebook by nbgrader's own
`generate_assignment`, pointed at it. Then a bar shows done / failed / grading /
queued, read from the ledger, until every submission has an outcome; the
submissions not graded are listed with the reason. Ctrl-C stops watching, not
grading: `--watch RUN` looks again.
"""
import argparse
import base64
import os
import sys
import time
import uuid
from pathlib import Path

import nbformat

from nopos.grading import batch, course, course_view
from nopos.grading.distributed import ledger, settings
from nopos.grading.distributed.app import course_digest, make_app


def prepare(root, aid):
    """The assignment's cells in the shared gradebook; the ledger's table."""
    url = settings.gradebook_url()
    course.nbgrader(root, "generate_assignment", aid, "--force",
                    f"--CourseDirectory.db_url={url}")
    ledger.create(url)


def payload(root, aid, student):
    """{relative path: base64} of what intake made ready for nbgrader; None if too large."""
    ready = Path(root) / batch.READY / student / aid
    files, size = {}, 0
    for path in sorted(p for p in ready.rglob("*") if p.is_file() and not p.is_symlink()):
        name, data = path.relative_to(ready).as_posix(), base64.b64encode(path.read_bytes()).decode()
        size += len(name.encode("utf-8", "replace")) + len(data) + 8  # as the task's JSON has it
        if size > settings.MAX_PAYLOAD_MB * 2 ** 20:
            return None
        files[name] = data
    return files


def new_run(aid):
    return f"{aid}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"


def submit(root, aid, students=None, run=None, app=None):
    """Send every submission of `aid` (or `students`); returns (run, {student: why not sent})."""
    root = Path(root).resolve()
    students = list(dict.fromkeys(students or course.submitted_students(root, aid)))  # each once
    run = run or new_run(aid)
    prepare(root, aid)
    app = app or make_app("grader")
    digest = course_digest(root, aid)
    # which earlier chapters' answers a kernel may import: as the one-machine batch reads
    # them here (a hub sets them, nopos.hub.instructor), so each worker grades alike
    closed = course_view.closed_chapters()
    closed = None if closed is None else ",".join(closed)  # as the worker's check reads it
    url = settings.gradebook_url()
    not_sent = {s: why for s in students if (why := batch.check_student_id(s))}
    for student in students:
        if student in not_sent:
            continue
        batch.intake(root, aid, student)
        files = payload(root, aid, student)
        if files is None:
            files = {f"{aid}.ipynb": base64.b64encode(nbformat.writes(batch.rejected_notebook(
                root, aid, f"the submission is larger than {settings.MAX_PAYLOAD_MB} MB with its "
                           f"files: not graded")).encode()).decode()}
        task = {"run": run, "aid": aid, "student": student, "course": digest, "files": files,
                "closed": closed}
        # the student's line just before its task: a worker may take it at once, and a task
        # with no line is an older run's (`ledger.superseded`); a send that fails takes its
        # line back (a run stopped half way supersedes only what it sent)
        ledger.queued(url, run, aid, [student])
        try:
            app.send_task(settings.TASK, args=[task], queue=settings.QUEUE,
                          task_id=f"{run}/{student}")
        except BaseException:
            ledger.unqueued(url, run, aid, student)
            raise
    return run, not_sent


def collect(root, aid, run):
    """The run's autograded notebooks into root/autograded/, where `nbgrader
    generate_feedback` reads them; returns how many."""
    found = 0
    for student, files in ledger.autograded(settings.gradebook_url(), run):  # one at a time
        found += 1
        if batch.check_student_id(student) or not all(batch.plain_path(n) for n in files):
            continue
        target = Path(root) / "autograded" / student / aid
        for name, data in files.items():
            batch.write_atomic(target / name, base64.b64decode(data))
    return found


def bar(counts, total, width=30):
    finished = counts["done"] + counts["failed"] + counts.get("replaced", 0)
    filled = int(width * finished / max(total, 1))
    replaced = f"{counts['replaced']} sent again later  " if counts.get("replaced") else ""
    return (f"[{'#' * filled}{'.' * (width - filled)}] {counts['done']} done  "
            f"{counts['failed']} failed  {replaced}{counts['grading']} grading  "
            f"{counts['queued']} queued")


def watch(run, total=None, every=2.0, timeout=None, out=sys.stdout):
    """Print the bar until every submission has an outcome; returns {student: reason}
    of those not graded. `total`: by default, what the grader sent (the ledger's count)."""
    from sqlalchemy import create_engine

    db = create_engine(settings.gradebook_url())  # one login for the whole watch
    start, said = time.monotonic(), set()
    try:
        while True:
            for worker, reason in sorted(ledger.handed_back(db, run) - said):
                print(f"\r{worker} handed a submission back: {reason}", file=out, flush=True)
                said.add((worker, reason))
            counts, failed = ledger.progress(db, run, total)
            sent = sum(counts.values())
            print("\r" + bar(counts, sent), end="", file=out, flush=True)
            if counts["done"] + counts["failed"] + counts["replaced"] >= sent:
                print(file=out)
                return failed
            if timeout and time.monotonic() - start > timeout:
                print(file=out)
                raise TimeoutError(f"run {run}: {counts} after {timeout} s")
            time.sleep(every)
    finally:
        db.dispose()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="the course folder (where nbgrader_config.py is)")
    parser.add_argument("assignment")
    parser.add_argument("--student", action="append", help="only these students (repeatable)")
    parser.add_argument("--watch", metavar="RUN", help="only watch a run sent before")
    parser.add_argument("--total", type=int, help="with --watch: how many it sent")
    parser.add_argument("--no-wait", action="store_true", help="send, print the run, return")
    args = parser.parse_args(argv)
    if args.watch:
        total, run = args.total, args.watch  # by default, what the grader sent (the ledger)
    else:
        students = list(dict.fromkeys(args.student or course.submitted_students(args.root, args.assignment)))
        closed = course_view.closed_chapters()
        print("kernels may import the answers of " + (
            f"these closed chapters only: {', '.join(closed) or 'none'}" if closed is not None else
            f"every earlier chapter ({course_view.CHAPTERS_VAR} is not set: a class server sets "
            f"it to the chapters whose grades are closed)"), flush=True)
        run = new_run(args.assignment)
        print(f"run {run}: sending {len(students)} submissions (watch again: --watch {run})",
              flush=True)  # said first: a send stopped half way has a run to watch
        run, not_sent = submit(args.root, args.assignment, students, run=run)
        for student, reason in not_sent.items():
            print(f"not sent: {reason}")
        total = len(students) - len(not_sent)
        print(f"run {run}: {total} submissions sent")
        if args.no_wait:
            return 0
    failed = watch(run, total)
    print(f"{collect(args.root, args.assignment, run)} autograded notebooks copied back "
          f"(for nbgrader generate_feedback)")
    for student, reason in sorted(failed.items()):
        print(f"{student:<24} {reason}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
