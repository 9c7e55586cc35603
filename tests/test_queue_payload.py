"""The queue's worker refuses what the grader did not send (no servers: quick).

A task must be signed by a trusted certificate (the grader's), and even a signed
task's strings are checked before a byte is written: the student id, the
assignment and every file name must be plain (tests/test_queue.py runs the same
through real servers)."""
import base64
import os

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
    (dict(aid="../source"), "not a plain name"),
    (dict(files={f"{AID}.ipynb": "", "../x.py": ""}), "not plain"),
    (dict(files={f"{AID}.ipynb": "", "/etc/passwd": ""}), "not plain"),
    (dict(files={f"{AID}.ipynb": "", "a/../../b": ""}), "not plain"),
    (dict(files={f"{AID}.ipynb": "", "notes\n": ""}), "not plain"),
    (dict(files={f"{AID}.ipynb": "", "a//b": ""}), "not plain"),
    (dict(files={f"{AID}.ipynb": "", "data": "", "data/x.csv": ""}), "a file and a folder"),
    (dict(student="alice\n"), "not a plain name"),
    (dict(aid=f"{AID}\n"), "not a plain name"),
    (dict(files={"other.ipynb": ""}), "no notebook"),
    (dict(closed="01_dataset,../02"), "closed chapters"),
    (dict(closed=["01_dataset"]), "closed chapters"),
], ids=["student path", "student dotfile", "aid path", "dotdot", "absolute",
        "nested dotdot", "control character", "empty part", "file and folder",
        "student newline", "aid newline", "no notebook", "closed path", "closed list"])
def test_a_task_with_a_string_that_is_not_plain_is_refused(change, says):
    assert says in (check(task(**change)) or "")


def test_a_plain_task_is_accepted():
    assert check(task(files={f"{AID}.ipynb": "", "data/train.csv": ""})) is None
    # what the one-machine batch grades is graded here too (review h26, M1)
    for name in (".DS_Store", "my notes.txt", "donn\u00e9es.csv", "data (1).csv",
                 ".ipynb_checkpoints/01_dataset-checkpoint.ipynb"):
        assert check(task(files={f"{AID}.ipynb": "", name: ""})) is None, name
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


def test_a_hub_course_or_a_host_setting_keeps_the_digest(tmp_path):
    """Only what decides a grade is compared between the grader and a worker: a hub's
    course (its exchange, login, templates) grades on workers made from the package;
    a changed limit does not (review h26, H1: every hub task was recorded 0)."""
    from nopos.grading import course
    from nopos.grading.distributed.app import course_digest
    from nopos.hub import server

    package = course_digest(course.AUTOGRADER, AID)
    hub = server.lay_out_course(tmp_path / "hub", user="root")
    assert course_digest(hub, AID) == package
    edited = course.make_course(tmp_path / "edited", [AID])
    config = edited / "nbgrader_config.py"
    config.write_text(config.read_text() + "\n# a comment\nc.CourseDirectory.course_id = 'other'\n")
    assert course_digest(edited, AID) == package
    config.write_text(config.read_text() + "c.Execute.timeout = 180\n")
    assert course_digest(edited, AID) != package


def test_options_outside_the_signature_are_refused():
    """A time limit, an eta, an expiry or another id set at the broker (review h26, H4: three
    copies of a signed task with a 6 s limit spent a classmate's tries; h26b, N2: an id
    with a NUL stopped workers) make a delivery refused unrun."""
    from types import SimpleNamespace

    from nopos.grading.distributed.worker import unsigned_options

    body = task()

    def request(**change):
        return SimpleNamespace(**{"timelimit": (None, None), "eta": None, "expires": None,
                                  "id": "r/alice", **change})

    assert unsigned_options(request(), body) == {}
    assert unsigned_options(request(timelimit=(None, 6)), body)
    assert unsigned_options(request(eta="2026-12-07T00:00:00"), body)
    assert unsigned_options(request(expires="2026-12-07T00:00:00"), body)
    assert unsigned_options(request(id="r/alice\0"), body)
    assert unsigned_options(request(id="other"), body)


def test_a_workers_folder_is_fresh_and_its_own(tmp_path, monkeypatch):
    """Made by the worker, root's only, never one that existed (review h26, H3: a guessable
    /tmp/nopos-worker-PID, 0755, adopted when another user made it first)."""
    import os
    import stat
    import tempfile

    from nopos.grading.distributed import worker

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(worker, "_work", None)
    planted = tmp_path / f"nopos-worker-{os.getpid()}"
    planted.mkdir()
    folder = worker.work()
    assert folder != planted and folder.parent == tmp_path
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and folder.stat().st_uid == os.geteuid()


def test_a_slurm_job_ends_its_grading_before_slurm_kills_it():
    import re

    from conftest import ROOT
    from nopos.grading.distributed import settings

    text = (ROOT / "hub" / "slurm" / "grading-worker.sbatch").read_text()
    warning = int(re.search(r"--signal=\S*TERM@(\d+)", text).group(1))
    assert warning >= settings.LONGEST_GRADING_S


def test_a_worker_starts_with_the_usual_temporary_folder_and_refuses_a_long_one(monkeypatch, tmp_path):
    """Its kernels' socket paths fit a Unix socket's 107 bytes under /tmp (a first check at
    100 stopped every worker), and a SLURM job's long TMPDIR is refused before a submission
    pays for it (review h26b, N4: a correct notebook recorded not graded)."""
    import os
    import shutil
    import tempfile

    from nopos.grading.distributed import worker

    for folder, fits in (("/tmp", True), (str(tmp_path / ("slurm-job-12345678-" + "x" * 30)), False)):
        os.makedirs(folder, exist_ok=True)
        monkeypatch.setattr(tempfile, "tempdir", folder)
        monkeypatch.setattr(worker, "_work", None)
        try:
            assert (len(os.fsencode(worker.socket_path_sample())) <= worker.SOCKET_PATH_MAX) == fits, folder
        finally:
            shutil.rmtree(worker.work(), ignore_errors=True)


def test_each_grading_sees_the_graders_closed_chapters(monkeypatch):
    """The task's closed chapters are the grading's, then the worker's own again: one
    grading process takes task after task."""
    from nopos.grading.course_view import CHAPTERS_VAR
    from nopos.grading.distributed.worker import closed_chapters

    assert check(task(closed="")) is None and check(task(closed="01_dataset,02_schedule")) is None
    monkeypatch.delenv(CHAPTERS_VAR, raising=False)
    with closed_chapters("01_dataset"):
        assert os.environ[CHAPTERS_VAR] == "01_dataset"
    assert CHAPTERS_VAR not in os.environ
    monkeypatch.setenv(CHAPTERS_VAR, "01_dataset")
    with closed_chapters(None):  # the grader set none: every earlier chapter, as its batch
        assert CHAPTERS_VAR not in os.environ
    assert os.environ[CHAPTERS_VAR] == "01_dataset"
    # as a shell may write it (review h31d, M2: a trailing comma refused the whole class)
    from nopos.grading import course_view

    for written in (" 01_dataset, 02_schedule ,", "01_dataset;02_schedule", "01_dataset 02_schedule"):
        monkeypatch.setenv(CHAPTERS_VAR, written)  # (h31f, M1: ';' and ' ' split the paths)
        assert course_view.closed_chapters() == ["01_dataset", "02_schedule"], written
    assert check(task(closed=",".join(course_view.closed_chapters()))) is None
