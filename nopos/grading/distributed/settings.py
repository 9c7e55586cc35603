"""The queue's settings, each named once: read from the environment, so that a
Kubernetes Secret, a SLURM job script or a test sets them the same way.

Secrets never go on a command line (another user of the machine reads those in
`ps`): the broker's password is part of NOPOS_BROKER_URL, the database's comes
from PGPASSWORD (libpq's own variable), both in the environment only.
"""
import os
from pathlib import Path

QUEUE = "nopos-grading"  # the broker's queue of submissions
TASK = "nopos.grade_submission"  # the one task a worker runs
MAX_ATTEMPTS = 3  # starts of one submission before it is recorded as not graded
MAX_PAYLOAD_MB = 32  # a submission larger than this (notebook + files, in base64) is not sent
# the largest message the broker takes (Redis's proto-max-bulk-len; the default is 512 MB):
# a task's JSON, signed and wrapped in base64 twice (x1.8), and its headers. A larger one
# is refused by the broker itself, before a worker reads it into memory
MAX_MESSAGE_MB = 2 * MAX_PAYLOAD_MB + 16
# the longest grading: the batch's wall limit for one student (batch._notebook_timeout:
# the notebook's budget and the hidden checks' own, 2 x 900 s, a cell's limit past the
# budget and its keep, 120 + 30 s, nbgrader's margin, 120 s)
LONGEST_GRADING_S = 2070
# a task not acknowledged this long is handed to another worker: it must exceed the
# longest grading
VISIBILITY_S = 2400


def broker_url():
    """redis://:PASSWORD@HOST:6379/0 (or redis+socket:///path?password=...)."""
    return _need("NOPOS_BROKER_URL")


def gradebook_url():
    """postgresql+psycopg://USER@HOST:5432/DB (password: PGPASSWORD); never a file URL:
    several hosts write it."""
    url = _need("NOPOS_GRADEBOOK_URL")
    if not url.startswith("postgresql"):
        raise SystemExit(f"NOPOS_GRADEBOOK_URL must be a PostgreSQL URL, not {url.split(':')[0]}: "
                         f"workers on several hosts write it")
    return url


def visibility_s():
    return int(os.environ.get("NOPOS_QUEUE_VISIBILITY_S", VISIBILITY_S))


def keys_dir():
    """KEY.key/KEY.pem: this process's own key; trusted/*.pem: the certificates of the
    graders whose tasks are accepted (only the grader's; a worker's cannot sign)."""
    return Path(_need("NOPOS_QUEUE_KEYS"))


def _need(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} is not set: see docs/grading-at-scale.md")
    return value
