"""The queue's bookkeeping and the worker's own guards, without servers (quick).

The ledger's queries are plain SQL, so SQLite stands in for PostgreSQL here (its
session and advisory locks are PostgreSQL's own: tests/test_queue.py runs them for
real). Each test names the review that found what it pins."""
import base64
import json
import io
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

AID = "01_dataset"


def task(student="alice", run="r"):
    return {"run": run, "aid": AID, "student": student, "course": "x", "task_id": f"{run}/{student}",
            "files": {f"{AID}.ipynb": base64.b64encode(b"{}").decode()}}


@pytest.fixture
def ledger_url(tmp_path, monkeypatch):
    """An empty ledger in SQLite, as the gradebook's URL."""
    from sqlalchemy import create_engine, text

    from nopos.grading.distributed import ledger, settings

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = create_engine(url)
    with engine.begin() as db:
        db.execute(text(f"""CREATE TABLE {ledger.TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT,
            run TEXT NOT NULL, assignment TEXT NOT NULL, student TEXT NOT NULL,
            task_id TEXT NOT NULL, worker TEXT NOT NULL, pid INTEGER, event TEXT NOT NULL,
            reason TEXT, autograded TEXT, at TEXT DEFAULT CURRENT_TIMESTAMP)"""))
    engine.dispose()
    monkeypatch.setattr(settings, "gradebook_url", lambda: url)
    return url


def test_the_worker_knows_one_task_and_takes_no_remote_control(tmp_path, monkeypatch):
    """Celery's built-in tasks handled a copy of a signed message under their name with
    Celery's own expiry and eta (review h26d, Y1: a past expiry revoked two classmates'
    tasks; far etas held 14 MB copies in memory), and remote control is unsigned JSON on
    the broker (revoke, time limits, shutdown): the worker has neither."""
    from nopos.grading.distributed import settings, signing, worker

    signing.make_key(tmp_path, "grader")
    (tmp_path / "trusted").mkdir()
    shutil.copy(tmp_path / "grader.pem", tmp_path / "trusted" / "grader.pem")
    monkeypatch.setenv("NOPOS_BROKER_URL", "memory://")
    monkeypatch.setenv("NOPOS_QUEUE_KEYS", str(tmp_path))
    app = worker.make_worker_app("w", "grader")
    app.finalize()
    assert set(app.tasks) == {settings.TASK}
    assert app.conf.worker_enable_remote_control is False


def test_a_worker_without_the_assignment_hands_it_back(tmp_path, monkeypatch, ledger_url):
    """A worker of an older release that lacks the chapter is this host's fault, as a course
    that differs is (review h26d, Y2: a stale worker recorded 5 of 6 correct learners "not
    graded" in 16 s): handed back, said once, no outcome."""
    from nopos.grading import course
    from nopos.grading.distributed import ledger, worker

    older = tmp_path / "older-release"
    (older / "source").mkdir(parents=True)
    monkeypatch.setattr(course, "AUTOGRADER", older)
    for _ in range(2):
        with pytest.raises(worker.CourseDiffers, match="the assignment 01_dataset itself"):
            worker.grade(task(), "stale@host")
    lines = ledger.events(ledger_url, "r")
    assert [(s, e, w) for s, e, w, *_ in lines] == [("alice", "refused here", "stale@host")]


def test_a_send_stopped_half_way_supersedes_only_what_it_sent(tmp_path, monkeypatch, ledger_url):
    """A student's `queued` line goes just before its task (review h26d, Y3: every line of a
    re-send written first, then Ctrl-C: the earlier run's 5 pending tasks were dropped as
    superseded by tasks never sent), and a send that fails takes its line back."""
    from nopos.grading import batch
    from nopos.grading.distributed import ledger, submit

    ledger.queued(ledger_url, "run1", AID, ["x1", "x2", "x3"])
    monkeypatch.setattr(submit, "prepare", lambda root, aid: None)
    monkeypatch.setattr(submit, "course_digest", lambda root, aid: "d")
    monkeypatch.setattr(submit, "payload", lambda root, aid, student: {})
    sent = []

    def intake(root, aid, student):
        if student == "x3":
            raise KeyboardInterrupt  # the instructor's Ctrl-C

    def send_task(*args, task_id, **kwargs):
        if task_id.endswith("/x2"):
            raise ConnectionError("the broker is gone")
        sent.append(task_id)

    monkeypatch.setattr(batch, "intake", intake)
    with pytest.raises(ConnectionError):
        submit.submit(tmp_path, AID, ["x1", "x2", "x3"], run="run2", app=SimpleNamespace(send_task=send_task))
    assert sent == ["run2/x1"]
    superseded = [s for s in ("x1", "x2", "x3")
                  if ledger.has_outcome(ledger_url, {"run": "run1", "aid": AID, "student": s})]
    assert superseded == ["x1"]
    assert ledger.progress(ledger_url, "run2")[0]["queued"] == 1


def test_an_older_runs_bar_ends_when_a_later_run_sent_the_rest_again(ledger_url):
    """An older run's tasks that a later run replaced are never graded by it: its bar counts
    them as sent again and ends (review h26c, L1: it waited for ever)."""
    from nopos.grading.distributed import ledger
    from nopos.grading.distributed.submit import bar, watch

    ledger.queued(ledger_url, "old", AID, ["x", "y"])
    ledger.queued(ledger_url, "new", AID, ["x"])
    counts = ledger.progress(ledger_url, "old")[0]
    assert counts == {"done": 0, "failed": 0, "replaced": 1, "grading": 0, "queued": 1}
    assert "1 sent again later" in bar(counts, 2)
    with pytest.raises(TimeoutError):
        watch("old", every=0.05, timeout=0.2, out=io.StringIO())  # y: still to grade
    assert ledger.progress(ledger_url, "new")[0]["queued"] == 1


def test_a_student_named_twice_is_sent_and_waited_for_once(tmp_path, monkeypatch, ledger_url):
    """`--student alice --student alice` (review h26d, Y5: graded once, waited for twice)."""
    from nopos.grading.distributed import ledger, submit

    sent = []

    def send(root, aid, students, run=None, app=None):
        sent.extend(students)
        ledger.queued(ledger_url, "run7", aid, students)
        return "run7", {}

    def graded(run, total=None):
        assert total == 1
        return {}

    monkeypatch.setattr(submit, "submit", send)
    monkeypatch.setattr(submit, "watch", graded)
    monkeypatch.setattr(submit, "collect", lambda *args: 0)
    assert submit.main([str(tmp_path), AID, "--student", "alice", "--student", "alice"]) == 0
    assert sent == ["alice"]


def test_a_worker_starts_under_tmp_whatever_its_pid(monkeypatch):
    """The socket-path check's sample had the worker's pid in its folder: a 7-digit pid
    (systemd's pid_max) gave 108 bytes under /tmp and no worker started (review h26d, Y4)."""
    import tempfile

    from nopos.grading.distributed import worker

    monkeypatch.setattr(tempfile, "tempdir", "/tmp")
    monkeypatch.setattr(worker, "_work", None)
    monkeypatch.setattr(os, "getpid", lambda: 4194303)
    try:
        assert len(os.fsencode(worker.socket_path_sample())) <= worker.SOCKET_PATH_MAX
    finally:
        shutil.rmtree(worker.work(), ignore_errors=True)


# a fifth review (h26e): what reaches a worker from the broker before the task's checks


def _envelope(tmp_path, monkeypatch, **headers):
    """A grading task as it lies in Redis, sent as the grader sends it (its app, its signing
    serializer, kombu's publish) and read back, with `headers` changed as a copy at the
    broker could."""
    import json

    from nopos.grading.distributed import settings, signing
    from nopos.grading.distributed.app import make_app

    if not (tmp_path / "grader.key").exists():
        signing.make_key(tmp_path, "grader")
        (tmp_path / "trusted").mkdir()
        shutil.copy(tmp_path / "grader.pem", tmp_path / "trusted" / "grader.pem")
    monkeypatch.setenv("NOPOS_QUEUE_KEYS", str(tmp_path))
    monkeypatch.setenv("NOPOS_BROKER_URL", "memory://")
    app = make_app("grader")
    body = dict(task(), files={f"{AID}.ipynb": base64.b64encode(b"{}" * 100_000).decode()})
    app.send_task(settings.TASK, args=[body], queue=settings.QUEUE, task_id="r/alice")
    with app.connection_for_read() as connection:
        raw = connection.default_channel._get(settings.QUEUE)
    raw["headers"].update(headers)
    return json.loads(json.dumps(raw))


def test_only_messages_shaped_as_the_graders_reach_celery(tmp_path, monkeypatch):
    """One unsigned message stopped every worker for good (review h26e, Z1: not JSON; a list
    as the task's name, handed back to stop the next worker too), one of 79 bytes inflated to
    64 MB before any check (Z2: a `compression` header), and a newline in an id forged a line
    of the worker's log (Z5). The worker's transport drops each, saying why; the grader's
    own message passes."""
    from unittest.mock import MagicMock

    from nopos.grading.distributed import guard

    def envelope(**headers):
        return _envelope(tmp_path, monkeypatch, **headers)

    assert guard.refusal(envelope()) is None
    bad = {"not a message": "a text", "not the grading task": envelope(task=["x"]),
           "compressed": envelope(compression="application/x-bz2"),
           "a header that is not plain": envelope(id="r/alice\n[ERROR] forged"),
           "another name": envelope(shadow="nopos.grade_submission"),
           "a long id": envelope(id="r/" + "z" * 1000)}
    for what, raw in bad.items():
        assert guard.refusal(raw), what
    unsigned = envelope()
    unsigned["content-type"] = "application/json"
    assert guard.refusal(unsigned) == "not signed"
    for key, value in (("body_encoding", "rot13"), ("body_encoding", 7), ("delivery_tag", ["x"]),
                       ("delivery_info", None)):  # each stopped a worker (review h26f, H1)
        raw = envelope()
        raw["properties"][key] = value
        assert guard.refusal(raw), (key, value)
    # the gate: a refused envelope never reaches a consumer; one that is not JSON is dropped
    transport, taken = guard.Transport.__new__(guard.Transport), []
    transport._callbacks = {"q": taken.append}
    transport._deliver(envelope(task=["x"]), "q")
    transport._deliver(envelope(), "q")
    assert len(taken) == 1
    channel = guard.Channel.__new__(guard.Channel)  # never connected: one BRPOP reply read
    channel.client, channel.connection, channel._queue_cycle = MagicMock(), MagicMock(), MagicMock()
    channel.connection_errors, channel._flush_brpop_reauth = (), lambda: None
    for item in (b"not json", b"[" * 100_000 + b"]" * 100_000):  # (h26f, H2: RecursionError)
        channel.client.parse_response.return_value = (b"q", item)
        assert channel._brpop_read() is True and not channel.connection._deliver.called



def _mutations():
    """Each header and property of the grader's envelope given another type or value (as
    review h31b did: 8 of 19 such shapes passed a gate of 'plain' values, then stopped or
    stalled a worker), some dropped, one added."""
    other = {type(None): ["x", 0, [], {}], str: [["x"], {"a": 1}, 5, None, "a\nb"],
             int: ["0", 1.5, True, None, [0]], list: [5, "ab", [1, 2, 3], {"a": 1}, [[None]]],
             dict: [[], "x", {"a": 1}], bool: ["yes", 2]}
    for part, names in (("headers", ("lang", "task", "id", "root_id", "parent_id", "shadow", "eta",
                                     "expires", "group", "group_index", "retries", "timelimit",
                                     "argsrepr", "kwargsrepr", "origin", "ignore_result",
                                     "replaced_task_nesting", "stamped_headers", "stamps")),
                        ("properties", ("correlation_id", "reply_to", "delivery_mode",
                                        "delivery_info", "priority", "body_encoding", "delivery_tag"))):
        for name in names:
            yield part, name, "missing"
            for kind, values in other.items():
                for value in values:
                    yield part, name, value
        yield part, "extra", "x"


def test_only_the_graders_exact_envelope_passes_the_gate(tmp_path, monkeypatch):
    from nopos.grading.distributed import guard

    genuine = _envelope(tmp_path, monkeypatch)
    assert guard.refusal(genuine) is None
    # as kombu puts it back when a worker is lost or a task handed back (the end to end's
    # killed worker's task was dropped at first: never graded)
    back = json.loads(json.dumps(genuine))
    back["headers"]["redelivered"] = back["properties"]["delivery_info"]["redelivered"] = True
    assert guard.refusal(back) is None and guard.refusal(dict(back, redelivered=True)) is None
    # every letter of a student id (batch.STUDENT_ID: an e-mail login): review h31d, H2
    login = json.loads(json.dumps(genuine))
    login["headers"]["id"] = login["headers"]["root_id"] = "r/ana+ml@example.org"
    login["properties"]["correlation_id"] = "r/ana+ml@example.org"
    assert guard.refusal(login) is None
    passed = []
    for part, name, value in _mutations():
        raw = json.loads(json.dumps(genuine))
        if value == "missing":
            raw[part].pop(name, None)
        else:
            raw[part][name] = value
        if raw != genuine and guard.refusal(raw) is None:
            passed.append((part, name, value))
    # what still passes is what the grader itself may send there: another text where it
    # sends a text (an id, a repr), a None where it may send none, an optional field left out
    exact = {"lang", "task", "parent_id", "shadow", "eta", "expires", "group", "group_index",
             "retries", "timelimit", "replaced_task_nesting", "stamped_headers", "stamps",
             "body_encoding", "delivery_info"}
    for part, name, value in passed:
        original = genuine[part].get(name)
        if value == "missing":
            assert name not in guard.NEEDED[part], (part, name)
        else:
            assert name not in exact, (part, name, value)
            assert type(value) is type(original) or value is None and name in (
                "root_id", "reply_to", "ignore_result") or name == "ignore_result" \
                and isinstance(value, bool), (part, name, value)


def test_a_message_celery_cannot_take_is_dropped_not_handed_back(caplog):
    """Review h31b, H1: an error while kombu or Celery took a message (before the task ran)
    stopped the worker, and the message, handed back, stopped the next; or it stayed
    unacknowledged and the worker never took another. It is acknowledged and dropped."""
    from unittest.mock import MagicMock

    from nopos.grading.distributed import guard

    raw = {"body": "", "content-encoding": "utf-8", "content-type": guard.SIGNED,
           "headers": {"lang": "py", "task": "nopos.grade_submission", "id": "r/alice"},
           "properties": {"body_encoding": "base64", "delivery_tag": "t1",
                          "delivery_info": {"exchange": "", "routing_key": "q"}}}
    channel = MagicMock()
    channel.qos._delivered = {"t1": object()}
    transport = guard.Transport.__new__(guard.Transport)
    transport.channels = [channel]

    def celery_chokes(message):
        raise TypeError("unhashable type: 'list'")

    transport._callbacks = {"q": celery_chokes}
    assert transport._deliver(raw, "q") is None
    channel.qos.ack.assert_called_once_with("t1")
    assert "could not be taken (TypeError" in caplog.text


def test_a_worker_reads_every_redis_broker_through_the_gate(tmp_path, monkeypatch):
    """redis+socket:// makes kombu choose its transport by the URL's name, whatever the app
    says (review h26f, H3: a text that is not JSON stopped such a worker): the worker's
    process puts the gate into kombu's Redis transport itself."""
    from kombu import Connection
    from kombu.transport import redis

    from nopos.grading.distributed import guard

    monkeypatch.setattr(redis.Transport, "Channel", redis.Transport.Channel)
    monkeypatch.setattr(redis.Transport, "_deliver", redis.Transport._deliver)
    guard.install()
    for url in ("redis://:pw@127.0.0.1:9/0", "rediss://:pw@127.0.0.1:9/0", "redis+socket:///tmp/x.sock"):
        transport = Connection(url).transport
        assert transport.Channel is guard.Channel, url
        taken = []
        transport._callbacks = {"q": taken.append}  # (kombu's own delivery, past the gate)
        transport._deliver({"not": "a task"}, "q")
        transport._deliver(_envelope(tmp_path, monkeypatch), "q")
        assert len(taken) == 1, url


def test_the_digest_covers_the_code_that_grades(tmp_path, monkeypatch):
    """A worker one release behind (the judge before review a21w's fixes) took the grader's
    tasks and graded them its way: 0.0 where the grader's code gives 8.0 (review h26e, Z3).
    The digest now covers the package's own files."""
    import nopos

    from nopos.grading import course
    from nopos.grading.distributed.app import course_digest

    here = course_digest(course.AUTOGRADER, AID)
    older = tmp_path / "nopos"
    shutil.copytree(Path(nopos.__file__).parent, older, ignore=shutil.ignore_patterns("__pycache__"))
    assert course_digest(course.AUTOGRADER, AID) == here
    monkeypatch.setattr(nopos, "__file__", str(older / "__init__.py"))
    assert course_digest(course.AUTOGRADER, AID) == here  # the same files, another folder
    judge = older / "grading" / "judge.py"
    judge.write_text(judge.read_text() + "\n# one release behind\n")
    assert course_digest(course.AUTOGRADER, AID) != here


def test_a_learner_file_a_worker_would_refuse_is_left_out_with_a_note(tmp_path):
    """A tab in an extra file's name, or a file nine folders deep: the worker refused the task
    and recorded a correct notebook "not graded" (review h26e, Z4), where the one-machine
    batch graded it. Intake leaves such files out, saying so, on both paths."""
    import nbformat

    from conftest import filled_release, release_path
    from nopos.grading import batch
    from nopos.grading.distributed import submit, worker

    root = tmp_path / "course"
    (root / "release" / AID).mkdir(parents=True)
    shutil.copy(release_path(AID), root / "release" / AID / f"{AID}.ipynb")
    folder = root / "submitted" / "alice" / AID
    folder.mkdir(parents=True)
    nbformat.write(filled_release(AID), folder / f"{AID}.ipynb")
    deep = "/".join(f"d{i}" for i in range(1, 9)) + "/x.txt"
    for name in ("notes\tv2.txt", deep, "data/kept.csv"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("the learner's own\n")
    notes = batch.intake(root, AID, "alice")
    assert sum("not a plain file name" in n for n in notes) == 2, notes
    files = submit.payload(root, AID, "alice")
    assert "data/kept.csv" in files
    assert worker.check({"run": "r", "aid": AID, "student": "alice", "course": "x", "files": files}) is None


def test_the_run_is_said_before_anything_is_sent(tmp_path, monkeypatch, capsys, ledger_url):
    """A send stopped half way (Ctrl-C, the broker gone) printed no run to watch (review h26e,
    Z6): the run is said first."""
    from nopos.grading import batch
    from nopos.grading.distributed import submit

    monkeypatch.setattr(submit, "prepare", lambda root, aid: None)
    monkeypatch.setattr(submit, "course_digest", lambda root, aid: "d")
    monkeypatch.setattr(submit, "payload", lambda root, aid, student: {})
    monkeypatch.setattr(submit, "make_app", lambda key: SimpleNamespace(send_task=lambda *a, **k: None))

    def intake(root, aid, student):
        if student == "b":
            raise KeyboardInterrupt

    monkeypatch.setattr(batch, "intake", intake)
    with pytest.raises(KeyboardInterrupt):
        submit.main([str(tmp_path), AID, "--student", "a", "--student", "b"])
    from nopos.grading.distributed import ledger

    [run] = {line.split()[1].rstrip(":") for line in capsys.readouterr().out.splitlines()
             if line.startswith("run ")}
    assert ledger.progress(ledger_url, run)[0]["queued"] == 1
