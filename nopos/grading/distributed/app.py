"""The Celery application the grader and the workers share: one queue, one task,
acknowledged only after grading, every message signed (`signing`)."""
import hashlib
import json
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


# A course's config also says where its own folders, exchange, login and feedback
# templates are: each host's business (a hub's course adds them), never a grade's
HOST_SECTIONS = {"CourseDirectory", "Exchange", "ExchangeFactory", "Authenticator",
                 "JupyterHubAuthPlugin", "HTMLExporter", "GenerateFeedback", "NbGrader",
                 "FormgradeExtension", "Application", "JupyterApp"}


def grading_settings(root):
    """The settings of the course's nbgrader config that decide a grade: every section but
    HOST_SECTIONS, as loaded (so a comment, the order or a host's own lines change nothing)."""
    from nopos.grading.course import config as course_config

    config = course_config(root)
    return {name: config[name] for name in sorted(config) if name not in HOST_SECTIONS}


def course_digest(root, aid):
    """What must be equal on the grader and a worker: the settings that decide a grade
    (`grading_settings`), the assignment's source notebooks (hidden tests included) and
    the code that grades (the checks, the judge, the sandbox, the reference answers: this
    package's files; a worker one release behind graded the same notebook otherwise)."""
    import nopos
    import nopos_reference

    root = Path(root)
    settings_text = json.dumps(grading_settings(root), sort_keys=True, default=repr)
    digest = hashlib.sha256(settings_text.encode())
    folders = [(root / "source" / aid, root)] + [
        (Path(package.__file__).parent, Path(package.__file__).parent.parent)
        for package in (nopos, nopos_reference)]
    for folder, top in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(path.relative_to(top).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
