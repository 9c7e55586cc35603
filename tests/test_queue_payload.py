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
    (dict(student="gradebook.db"), "grader's own files"),
    (dict(aid="../source"), "not one of this worker's course"),
    (dict(aid="99_nothing"), "not one of this worker's course"),
    (dict(files={f"{AID}.ipynb": "", "../x.py": ""}), "not plain"),
    (dict(files={f"{AID}.ipynb": "", "/etc/passwd": ""}), "not plain"),
    (dict(files={f"{AID}.ipynb": "", ".bashrc": ""}), "not plain"),
    (dict(files={f"{AID}.ipynb": "", "a/../../b": ""}), "not plain"),
    (dict(files={"other.ipynb": ""}), "no notebook"),
], ids=["student path", "student reserved", "aid path", "aid unknown", "dotdot", "absolute",
        "hidden", "nested dotdot", "no notebook"])
def test_a_task_with_a_string_that_is_not_plain_is_refused(change, says):
    assert says in (check(task(**change)) or "")


def test_a_plain_task_is_accepted():
    assert check(task(files={f"{AID}.ipynb": "", "data/train.csv": ""})) is None


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
