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
each file name a relative path of ordinary names (what the one-machine batch
grades: no '..', no control character); anything else is refused before a file is
written. Everything it writes is under a folder made fresh for it, readable by root
only (`work`): the course copies hold the hidden tests.

What is this host's fault is never the learner's: a worker whose course differs
from the grader's (an older release without the assignment too), or whose own set-up
fails (a full disk), hands the submission
back uncounted (`ledger.release`, which the instructor's bar shows); after three
faults of its own in a row it stops taking tasks. Only a grading process that dies
counts toward a submission's bounded tries. Celery's per-message options (a time limit,
an eta, an expiry) are not covered by the signature, and the grader sets none: a
task carrying one is refused unrun. Nothing else is reachable from the broker: no
other task, no remote control (`make_worker_app`).
"""
import argparse
import atexit
import base64
import contextlib
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nbformat
from celery.worker.request import Request

from nopos.grading import batch, course
from nopos.grading.distributed import ledger, settings
from nopos.grading.distributed.app import course_digest, make_app

PLAIN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")  # an assignment (fullmatch)
CLOSED = re.compile(r"(?:[A-Za-z0-9_-]{1,64}(?:,[A-Za-z0-9_-]{1,64}){0,63})?")  # chapters, comma-separated
_work = None
_templates = {}  # aid -> a private course made from this package's autograder/
_digests = {}  # aid -> that course's digest
_faults = []  # this process's own failures in a row (not the submissions')
FOLDER_SAID = "this worker's folder: "  # printed at its start


class Busy(Exception):
    """The submission is being graded by another delivery of its task right now."""


class CourseDiffers(Exception):
    """This worker's course is not the grader's: it cannot grade this run at all."""


def work():
    """This worker's own folder: made fresh (never one another user made first), root's
    only (0700), removed when the process that made it exits."""
    global _work
    if _work is None:
        # no pid in the name (mkdtemp's is unique): a kernel's socket path is short of bytes
        _work = folder = Path(tempfile.mkdtemp(prefix="nopos-worker-"))
        owner = os.getpid()  # not a forked grading process's exit: it shares the folder
        atexit.register(lambda: os.getpid() == owner and shutil.rmtree(folder, ignore_errors=True))
    return _work


SOCKET_PATH_MAX = 107  # a Unix socket's path, at most (the sample is the longest one)


def socket_path_sample():
    """The longest socket path a kernel of this worker gets (a task's private course, the
    batch's runtime folder, the sandbox's folder of one kernel start, a channel)."""
    from nopos.grading.sandbox import RUNTIME_PREFIX

    return (work() / f"t{'0' * 8}" / "batch" / "runtime" / f"{RUNTIME_PREFIX}{'9' * 7}-{'x' * 8}"
            / "r99" / "control")


def template(aid):
    """This worker's own course for `aid`: config, source, release, an empty gradebook."""
    if aid not in _templates:
        root = work() / f"template-{aid}"
        course.make_course(root, [aid])
        _templates[aid], _digests[aid] = root, course_digest(root, aid)
    return _templates[aid]


def _course_digest(aid):
    template(aid)
    return _digests[aid]


def check(task):
    """None, or why this worker refuses the task before touching a file."""
    aid, student = task.get("aid"), task.get("student")
    if not isinstance(aid, str) or not PLAIN.fullmatch(aid):
        return f"the assignment {aid!r} is not a plain name"
    reason = batch.check_student_id(student)
    if reason:
        return reason
    closed = task.get("closed")
    if closed is not None and not (isinstance(closed, str) and CLOSED.fullmatch(closed)):
        return f"the closed chapters {str(closed)[:80]!r} are not a list of plain names"
    files = task.get("files")
    if not isinstance(files, dict) or f"{aid}.ipynb" not in files:
        return "the task carries no notebook"
    for name in files:
        if not batch.plain_path(name):
            return f"the task carries a file whose name is not plain: {str(name)[:80]!r}"
    folders = {"/".join(name.split("/")[:i]) for name in files for i in range(1, name.count("/") + 1)}
    if folders & set(files):
        return f"the task carries a file and a folder of one name: {sorted(folders & set(files))[0][:80]!r}"
    return None


def unsigned_options(request, task):
    """What of this delivery is outside the signature and not as the grader sends it: Celery's
    options that change how it runs (a time limit, an eta, an expiry: the grader sets
    none), and its id (the grader's is `run/student`; a copy's could be anything, a NUL)."""
    found = {"timelimit": [t for t in (request.timelimit or ()) if t],
             "eta": request.eta, "expires": request.expires}
    if isinstance(task, dict) and request.id != f"{task.get('run')}/{task.get('student')}":
        found["id"] = repr(str(request.id)[:80])
    return {k: v for k, v in found.items() if v}


def grade(task, worker="worker"):
    """Grade one submission and record it; returns the ledger's outcome. Raises Busy (it
    is being graded now), CourseDiffers, or this host's own error: none of them is
    recorded against the submission."""
    url = settings.gradebook_url()
    from nbgrader.api import Gradebook

    refused = check(task)
    if refused:  # nothing of it is written but this line: no worker could grade it
        with Gradebook(url) as gb:
            ledger.outcome(gb, task, worker, "not graded", reason=f"refused by the worker: {refused}")
        return "refused"
    aid, student = task["aid"], task["student"]
    if ledger.has_outcome(url, task):  # delivered again after its outcome, or a later run's
        return "already recorded"
    known = (course.AUTOGRADER / "source" / aid).is_dir()
    if not known or _course_digest(aid) != task["course"]:
        # this host's version, not the submission's fault: another worker may have the grader's
        reason = ("this worker's course (grading settings, source notebooks, or the assignment "
                  f"{aid} itself) differs from the grader's: install the same version of the "
                  "course package")
        # said once per worker and submission (a task every worker hands back would add a
        # line at each turn); the task goes back for a worker whose course is the grader's
        if not ledger.handed_back_by(url, task, worker):
            ledger.release(url, task, worker, reason, started=False)
        raise CourseDiffers(reason)
    with ledger.grading(url, task) as mine:
        if not mine:
            raise Busy(f"{task['run']}/{student} is being graded by another delivery")
        if ledger.has_outcome(url, task):  # delivered again after its outcome was written
            return "already recorded"
        starts = ledger.start(url, task, worker, os.getpid())
        try:
            return _grade_started(url, task, worker, starts)
        except Exception as error:
            ledger.release(url, task, worker, f"{type(error).__name__}: {str(error)[:300]}")
            raise


def _grade_started(url, task, worker, starts):
    from nbgrader.api import Gradebook

    aid, student = task["aid"], task["student"]
    root = work() / f"t{uuid.uuid4().hex[:8]}"
    shutil.copytree(template(aid), root)
    try:
        ready = root / batch.READY / student / aid
        reason = None
        if starts > settings.MAX_ATTEMPTS:
            reason = (f"not graded: grading this submission stopped its worker {starts - 1} times "
                      f"(at most {settings.MAX_ATTEMPTS} tries)")
            ready.mkdir(parents=True)
            nb = batch.rejected_notebook(root, aid, reason)
            batch.write_atomic(ready / f"{aid}.ipynb", nbformat.writes(nb).encode("utf-8"))
        else:
            for name, data in task["files"].items():
                batch.write_atomic(ready / name, base64.b64decode(data))
        work_dir = root / "batch"
        with closed_chapters(task.get("closed")):
            _, status, _ = batch._grade_private(root, aid, student, work_dir, root / "gradebook.db",
                                                batch._notebook_timeout(root), None)
        private = work_dir / "students" / student
        graded = private / "autograded" / student / aid
        results, files = None, None
        if status != "ok":  # graded as rejected (the grading failed, or ran out of time): say so
            reason = reason or f"not graded: {status[:300]}"
        if graded.exists():
            results = batch.read_results(private, aid, student)
            files = {p.relative_to(graded).as_posix(): base64.b64encode(p.read_bytes()).decode()
                     for p in sorted(graded.rglob("*")) if p.is_file() and not p.is_symlink()}
        with Gradebook(url) as gb:
            event = "not graded" if reason else "done"
            wrote = ledger.outcome(gb, task, worker, event, results, reason, files)
        return event if wrote else "already recorded"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def closed_chapters(closed):
    """The grader's closed chapters (course_view.CHAPTERS_VAR, sent in the signed task) for
    one grading: its kernel imports the answers the one-machine batch's kernel would. A
    grading process takes task after task, so the variable is put back after each."""
    from nopos.grading.course_view import CHAPTERS_VAR

    before = os.environ.pop(CHAPTERS_VAR, None)
    if closed is not None:
        os.environ[CHAPTERS_VAR] = closed
    try:
        yield
    finally:
        os.environ.pop(CHAPTERS_VAR, None)
        if before is not None:
            os.environ[CHAPTERS_VAR] = before


class SignedOnly(Request):
    """Celery's own handling of a delivery's eta and expiry, switched off: both are outside
    the signature (a copy with a past expiry revoked the real task's id on the worker; one
    with a far eta held its message in memory). The task refuses a delivery carrying
    either (`unsigned_options`)."""

    @property
    def eta(self):
        return None

    @property
    def expires(self):
        return None

    @expires.setter
    def expires(self, value):
        pass


def make_worker_app(name, key):
    """The worker's app: its one task, and nothing else anyone at the broker could reach.
    Celery's built-in tasks (celery.chord_unlock, ...) took a copy of a signed message under
    their name with Celery's own handling of its expiry and eta (a past expiry revoked a
    classmate's task id), and remote control (unsigned JSON on the broker's control
    exchange) would let a broker login revoke tasks, set time limits or stop every worker."""
    app = make_app(key)
    app.conf.worker_enable_remote_control = False

    @app.task(name=settings.TASK, bind=True, Request=SignedOnly)
    def grade_submission(self, task):
        from celery.exceptions import Reject

        log = logging.getLogger(__name__)
        options = unsigned_options(self.request, task)
        if options:  # acknowledged unrun: only a copy made at the broker carries them
            log.error("refused %r: it carries options the grader never sets: %s",
                      self.request.id, options)
            return "refused"
        try:
            outcome = grade(dict(task, task_id=self.request.id), self.request.hostname or name)
            _faults.clear()
            return outcome
        except Busy as busy:
            # not acknowledged: the same signed message goes back to the queue (a retry would
            # be a new message signed by this worker, which others refuse)
            time.sleep(5)
            raise Reject(str(busy), requeue=True)
        except CourseDiffers as error:
            # the task's business (an old task copied at the broker must not stop every
            # worker): one line, and a pause before the next worker takes it back
            log.warning("%r handed back: %s", self.request.id, error)
            time.sleep(30)
            raise Reject(str(error)[:300], requeue=True)
        except Exception as error:
            log.exception("grading %r failed on this worker; back to the queue, uncounted",
                          self.request.id)
            _faults.append(error)  # three faults of this host in a row are its own
            if len(_faults) >= 3:
                log.error("this worker stops taking tasks: %s", error)
                os.kill(os.getppid(), signal.SIGTERM)  # Celery's warm shutdown, this task handed back
            time.sleep(5)  # a database or disk that is down is not hammered
            raise Reject(f"{type(error).__name__}: {str(error)[:300]}", requeue=True)

    for other in [t for t in app.tasks if t != settings.TASK]:  # a message for one is discarded
        app.tasks.unregister(other)
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
    from nopos.grading import sandbox_launcher

    if not sandbox_launcher.probed()["unshare"]:
        # without its namespaces a learner's kernel reads this process's environment (the
        # broker's and the gradebook's passwords) and reaches the network
        raise SystemExit("this host cannot build the grading sandbox's namespaces (root and a "
                         "working `unshare`): a worker refuses to run without them "
                         "(python -m nopos.grading.sandbox probe says what is missing)")
    wall = batch._notebook_timeout(course.AUTOGRADER)
    if settings.visibility_s() <= wall:
        # said, not refused (a test sets it short on purpose): a grading that outlasts it is
        # handed to another worker too, graded twice and written once (the ledger)
        print(f"the broker's visibility timeout ({settings.visibility_s()} s) is shorter than "
              f"the longest grading of this course ({wall} s): a grading that outlasts it is "
              f"also started on another worker; set NOPOS_QUEUE_VISIBILITY_S higher",
              file=sys.stderr, flush=True)
    longest = len(os.fsencode(socket_path_sample()))
    if longest > SOCKET_PATH_MAX:
        # a kernel that cannot start would grade a correct notebook as not graded: the
        # host's fault, said here before any submission pays for it
        raise SystemExit(f"the grading kernels' socket paths here would be up to {longest} bytes, "
                         f"past the {SOCKET_PATH_MAX} a Unix socket allows: set TMPDIR to a "
                         f"shorter folder (such as /tmp), not {tempfile.gettempdir()}")
    if not sandbox_launcher.probed()["cgroup"]:
        # cgroup v1's memory and pids controllers, writable: else each kernel process is
        # bounded alone (rlimits), not a kernel with its children (docs/grading.md)
        print("this host gives the grading kernels no cgroup (v1 memory and pids, writable): "
              "their memory is bounded per process only", file=sys.stderr, flush=True)
    print(f"{FOLDER_SAID}{work()}", file=sys.stderr, flush=True)  # a host killed leaves it
    from nopos.grading.distributed import guard

    guard.install()  # what it reads off the broker passes the gate first
    app = make_worker_app(args.name, args.key)
    for aid in args.prepare:  # the grading process is forked from this one: it inherits them
        template(aid)
    # Celery's own exit status (app.worker_main drops it): a worker stopped by an error must
    # not end as a success (a SLURM job COMPLETED, a pod not restarted as failed)
    return app.start(["worker", "--loglevel=INFO", "--concurrency=1", "--pool=prefork",
                      f"--hostname={args.name}@%h", f"--queues={settings.QUEUE}",
                      "--without-gossip", "--without-mingle", "--without-heartbeat"]) or 0


if __name__ == "__main__":
    sys.exit(main())
