"""The queue's worker refuses what the grader did not send (no servers: quick).

A task must be signed by a trusted certificate (the grader's), and even a signed
task's strings are checked before a byte is written: the student id, the
assignment and every file name must be plain (tests/test_queue.py runs the same
through real servers)."""
import base64

import pytest

from nopos.grading.distributed import signing
from nopos.grading.distributed.worker import check

AID = "01_dataset"


def task(**change):
    base = {"run": "r", "aid": AID, "student": "alice", "course": "x",
            "files": {f"{AID}.ipynb": base64.b64encode(b"{}").decode()}}
    return {**base, **change}


@pytest.mark.parametrize("change, says", [
    (dict(student="../../etc"), "not a plain name"),
    (dict(student=".hidden"), "not a plain name"),
    (dict(aid="../source"), "not one of this worker's course"),
    (dict(aid="99_nothing"), "not one of this worker's course"),
    (dict(files={f"{AID}.ipynb": "", "../x.py": ""}), "not plain"),
    (dict(files={f"{AID}.ipynb": "", "/etc/passwd": ""}), "not plain"),
    (dict(files={f"{AID}.ipynb": "", ".bashrc": ""}), "not plain"),
    (dict(files={f"{AID}.ipynb": "", "a/../../b": ""}), "not plain"),
    (dict(files={"other.ipynb": ""}), "no notebook"),
], ids=["student path", "student dotfile", "aid path", "aid unknown", "dotdot", "absolute",
        "hidden", "nested dotdot", "no notebook"])
def test_a_task_with_a_string_that_is_not_plain_is_refused(change, says):
    assert says in (check(task(**change)) or "")


def test_a_plain_task_is_accepted():
    assert check(task(files={f"{AID}.ipynb": "", "data/train.csv": ""})) is None
    # a plain id that looks like one of the grader's files collides with nothing (ids
    # name folders inside folders of student folders only: docs/grading.md)
    assert check(task(student="gradebook.db")) is None


def test_only_the_graders_signature_is_accepted(tmp_path):
    from celery.security.certificate import Certificate, FSCertStore
    from celery.security.key import PrivateKey
    from celery.security.serialization import SecureSerializer
    from celery.exceptions import SecurityError

    grader_key, grader_pem = signing.make_key(tmp_path / "g", "grader")
    worker_key, worker_pem = signing.make_key(tmp_path / "w", "worker")
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    (trusted / "grader.pem").write_bytes(grader_pem.read_bytes())
    store = FSCertStore(str(trusted / "*.pem"))

    def signed(key, pem):
        return SecureSerializer(PrivateKey(key.read_text()), Certificate(pem.read_text()), store,
                                "sha256", "json").serialize(task())

    reader = SecureSerializer(PrivateKey(worker_key.read_text()), Certificate(worker_pem.read_text()),
                              store, "sha256", "json")
    assert reader.deserialize(signed(grader_key, grader_pem))["student"] == "alice"
    with pytest.raises(SecurityError):
        reader.deserialize(signed(worker_key, worker_pem))
    raw = base64.b64decode(signed(grader_key, grader_pem))
    assert b"alice" in raw
    forged = base64.b64encode(raw.replace(b"alice", b"mallo"))  # the grader's signature kept
    with pytest.raises(SecurityError):
        reader.deserialize(forged)


@pytest.mark.slow  # two nbgrader commands, a few seconds
def test_nbgraders_own_commands_read_the_shared_gradebook(tmp_path, monkeypatch):
    """With NOPOS_GRADEBOOK_URL set, the instructor's `nbgrader` (export, formgrader)
    reads the shared gradebook, as `make export-grades` does; the package's own nbgrader
    runs keep the gradebook they name (a worker's private course stays private)."""
    import os
    import subprocess
    import sys

    from nbgrader.api import Gradebook

    from nopos.grading import course

    root = tmp_path / "course"
    root.mkdir()
    (root / "nbgrader_config.py").write_bytes((course.AUTOGRADER / "nbgrader_config.py").read_bytes())
    shared = f"sqlite:///{tmp_path / 'shared.db'}"  # any URL: PostgreSQL's is tests/test_queue.py's
    monkeypatch.setenv("NOPOS_GRADEBOOK_URL", shared)
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]])  # its alembic
    subprocess.run([sys.executable, "-m", "nbgrader", "db", "student", "add", "alice"],
                   cwd=root, check=True, capture_output=True, env=dict(os.environ, PATH=path))
    course.nbgrader(root, "db", "student", "add", "bob")
    with Gradebook(shared) as gb:
        assert [s.id for s in gb.students] == ["alice"]
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        assert [s.id for s in gb.students] == ["bob"]
