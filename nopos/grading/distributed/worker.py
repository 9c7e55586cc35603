"""A grading worker: takes one signed task at a time and grades that submission.

    NOPOS_BROKER_URL=redis://:PASSWORD@BROKER:6379/0 \\
    NOPOS_GRADEBOOK_URL=postgresql+psycopg://grader@DB:5432/gradebook PGPASSWORD=... \\
    NOPOS_QUEUE_KEYS=/etc/nopos/keys python -m nopos.grading.distributed.worker --name w1

(the keys folder: worker.key, worker.pem and trusted/grader.pem; `signing`)

Runs as root (the sandbox builds namespaces for each kernel), one submission at a
time: start more workers, or more hosts, for more throughput. The submission
comes in the task; the course (config and source notebooks) is this package's
own autograder/, made into a private nbgrader course once per assignment.

No string of the task becomes a command or a path unchecked: the student id must
be a plain name (`batch.check_student_id`), the assignment one of this course's,
each file name plain ([A-Za-z0-9._-], no leading dot); anything else is refused
before a file is written.
"""
import argparse
import base64
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import nbformat

from nopos.grading import batch, course
from nopos.grading.distributed import ledger, settings
from nopos.grading.distributed.app import course_digest, make_app

PLAIN = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
WORK = Path(tempfile.gettempdir()) / f"nopos-worker-{os.getpid()}"
_templates = {}  # aid -> a private course made from this package's autograder/


def template(aid):
    """This worker's own course for `aid`: config, source, release, an empty gradebook."""
    if aid not in _templates:
        root = WORK / f"template-{aid}-{uuid.uuid4().hex[:8]}"
        course.make_course(root, [aid])
        _templates[aid] = root
    return _templates[aid]


def plain_path(name):
    """Whether `name` is a relative path of plain names (no '..', no leading dot)."""
    parts = name.split("/") if isinstance(name, str) else [""]
    return len(parts) <= 8 and all(PLAIN.match(p) for p in parts)


def check(task):
    """None, or why this worker refuses the task before touching a file."""
    aid, student = task.get("aid"), task.get("student")
    if not isinstance(aid, str) or not PLAIN.match(aid) or not (course.AUTOGRADER / "source" / aid).is_dir():
        return f"the assignment {aid!r} is not one of this worker's course"
    reason = batch.check_student_id(student)
    if reason:
        return reason
    files = task.get("files")
    if not isinstance(files, dict) or f"{aid}.ipynb" not in files:
        return "the task carries no notebook"
    for name in files:
        if not plain_path(name):
            return f"the task carries a file whose name is not plain: {str(name)[:80]!r}"
    return None


def grade(task, worker="worker"):
    """Grade one submission and record it; returns the ledger's outcome."""
    url = settings.gradebook_url()
    from nbgrader.api import Gradebook

    refused = check(task)
    if refused:  # nothing of it is written but this line
        with Gradebook(url) as gb:
            ledger.outcome(gb, task, worker, "not graded", reason=f"refused by the worker: {refused}")
        return "refused"
    if ledger.has_outcome(url, task):  # delivered again after its outcome was written
        return "already recorded"
    starts = ledger.start(url, task, worker, os.getpid())
    aid, student = task["aid"], task["student"]
    root = WORK / f"task-{uuid.uuid4().hex[:12]}"
    shutil.copytree(template(aid), root)
    try:
        ready = root / batch.READY / student / aid
        reason = None
        if course_digest(root, aid) != task["course"]:
            reason = ("not graded: this worker's course (config or source notebooks) differs from "
                      "the grader's; install the same version of the course package")
        elif starts > settings.MAX_ATTEMPTS:
            reason = (f"not graded: grading this submission stopped its worker {starts - 1} times "
                      f"(at most {settings.MAX_ATTEMPTS} tries)")
        if reason:
            ready.mkdir(parents=True)
            nb = batch.rejected_notebook(root, aid, reason)
            batch.write_atomic(ready / f"{aid}.ipynb", nbformat.writes(nb).encode("utf-8"))
        else:
            for name, data in task["files"].items():
                batch.write_atomic(ready / name, base64.b64decode(data))
        work = root / "batch"
        _, status, _ = batch._grade_private(root, aid, student, work, root / "gradebook.db",
                                            batch._notebook_timeout(root), None)
        private = work / "students" / student
        graded = private / "autograded" / student / aid
        results, files = None, None
        if not graded.exists():
            reason = reason or f"not graded: {status[:300]}"
        else:
            results = batch.read_results(private, aid, student)
            files = {p.relative_to(graded).as_posix(): base64.b64encode(p.read_bytes()).decode()
                     for p in sorted(graded.rglob("*")) if p.is_file() and not p.is_symlink()}
        with Gradebook(url) as gb:
            event = "not graded" if reason else "done"
            wrote = ledger.outcome(gb, task, worker, event, results, reason, files)
        return event if wrote else "already recorded"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def make_worker_app(name, key):
    app = make_app(key)

    @app.task(name=settings.TASK, bind=True)
    def grade_submission(self, task):
        from celery.exceptions import Reject

        try:
            return grade(dict(task, task_id=self.request.id), self.request.hostname or name)
        except Exception as error:
            # not acknowledged as done: the same signed message goes back to the queue (a
            # retry would be a new message signed by this worker, which others refuse);
            # the ledger's count of starts bounds the tries
            logging.getLogger(__name__).exception("grading %s failed; back to the queue",
                                                  self.request.id)
            time.sleep(5)  # a database or disk that is down is not hammered
            raise Reject(f"{type(error).__name__}: {str(error)[:300]}", requeue=True)

    return app


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="worker", help="this worker's name in the ledger")
    parser.add_argument("--key", default="worker",
                        help="its key in NOPOS_QUEUE_KEYS: KEY.key and KEY.pem")
    parser.add_argument("--prepare", nargs="*", default=[], metavar="AID",
                        help="make the course copy of these assignments before taking tasks "
                             "(else at each one's first task)")
    args = parser.parse_args(argv)
    app = make_worker_app(args.name, args.key)
    for aid in args.prepare:  # the grading process is forked from this one: it inherits them
        template(aid)
    app.worker_main(["worker", "--loglevel=INFO", "--concurrency=1", "--pool=prefork",
                     f"--hostname={args.name}@%h", f"--queues={settings.QUEUE}",
                     "--without-gossip", "--without-mingle", "--without-heartbeat"])


if __name__ == "__main__":
    main()
