"""The Celery application the grader and the workers share: one queue, one task,
acknowledged only after grading, every message signed (`signing`)."""
import hashlib
from pathlib import Path

from nopos.grading.distributed import settings, signing


def make_app(key_name):
    """The app, signing with keys_dir()/key_name.key ("grader" for the producer)."""
    from celery import Celery

    app = Celery("nopos")
    app.conf.update(
        broker_url=settings.broker_url(),
        broker_connection_retry_on_startup=True,
        # a task leaves the broker only once graded: a worker that dies mid-grade hands it
        # on (its grading process killed: at once; the whole host: after the visibility
        # timeout, which must exceed the longest grading)
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # the broker looks for such tasks every 10 s (kombu's default: every 100 s)
        broker_transport_options={"visibility_timeout": settings.visibility_s(),
                                  "unacked_restore_interval": 10, "unacked_restore_throttle": 1},
        worker_prefetch_multiplier=1,  # a worker holds only the submission it grades
        task_default_queue=settings.QUEUE,
        task_ignore_result=True,  # results go to the gradebook; no result backend
    )
    signing.secure(app, settings.keys_dir(), key_name)
    return app


def course_digest(root, aid):
    """What must be equal on the grader and a worker: the course's nbgrader config and
    the assignment's source notebooks (hidden tests included)."""
    root = Path(root)
    digest = hashlib.sha256((root / "nbgrader_config.py").read_bytes())
    for path in sorted((root / "source" / aid).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
