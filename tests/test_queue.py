"""Grading past one machine (nopos.grading.distributed), end to end with real servers.

One class of chapter 1 (the cheapest to grade) goes through Redis to two workers,
each in a network namespace of its own, into PostgreSQL: the one-machine class of
tests/chapter_class.py (reference, wrong, the hostile fakes, untouched) under other
names, copies of the untouched release up to CLASS graded submissions, and one
submission whose grading process is killed whenever it starts (a poison: killed at
once, its task back in the queue at once, a reasoned row at its fourth start).
Before any worker runs, the broker crashes (SIGKILL) and restarts, and forged
tasks are queued; while the class is graded, worker w1 is killed, whole, in its
first submission, and w3 takes its place. All of it is one module fixture (its
servers are this file's only); each test reads one property of what happened. It
shares the one-machine batch it is compared with (`graded_class`) with
tests/test_fakes.py: the same xdist work unit (tests/conftest.py, CLASS_FILES).

The killed worker's task comes back after the broker's visibility timeout, which
is set from this machine's grading time as that batch measured it (3 gradings, at
least 30 s): the victim comes back while the class is still being graded, so its
wait costs nothing, and no grading outlasts it (a task handed out twice is written
once, by the ledger, but graded twice).

Its cost is the gradings: 21 real `nbgrader autograde` runs (the 20, and the
poison's last start, which grades it as not graded) and four starts stopped at
once (the victim's on w1, the poison's first three). A grading costs about the
same whatever the notebook (nbgrader's start, the sandboxed kernel's imports, the
out-of-kernel judge): about 230 s of CPU in all beyond the batch it shares, about
2 minutes on 2 free cores (measured: docs/grading-at-scale.md).

It runs as root with redis-server, postgresql and iproute2 installed (.ci/run
installs them); elsewhere it skips saying what is missing, and under CI=true it
fails instead. The queue's refusals (unsigned or forged tasks, strings that are not
plain) and its deployment files are also tested without servers
(test_queue_payload.py, test_queue_deploy.py).
"""
import base64
import os
import subprocess
import time

import nbformat
import pytest

from queue_cluster import LocalCluster, available, kill_tree

AID = "01_dataset"
CLASS = 20  # graded submissions (the poison besides): the battery, then copies of the untouched release
POISON = "q-poison"
BAD_HEADERS = [{"id": ["x"]}, {"timelimit": 5}, {"timelimit": [1, 2, 3]},
               {"stamped_headers": [["x"]]}, {"id": "missing"}]
pytestmark = pytest.mark.slow


def _env(values):
    mp = pytest.MonkeyPatch()
    for key, value in values.items():
        mp.setenv(key, value)
    return mp


@pytest.fixture(scope="module")
def run(scratch_course, graded_class, tmp_path_factory):
    why = available()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"the queue's servers cannot run here: {why}")
        pytest.skip(why)
    from nopos.grading import course
    from nopos.grading.distributed import ledger, settings, submit
    from nopos.grading.distributed.app import make_app
    from sqlalchemy import create_engine

    graded_class(AID)  # the one-machine batch of the same notebooks, graded once a session
    # a task unacknowledged this long goes to another worker: the killed worker's comes
    # back after it, so it is short; a grading must not outlast it (handed out twice), so
    # it is several times a grading as timed on this machine now, by that batch
    visibility = max(30, round(3 * graded_class.seconds[AID]))
    root = scratch_course
    # the one-machine class's students (tests/chapter_class.py), not other tests' ones
    originals = [s for s in course.submitted_students(root, AID)
                 if s in ("reference", "untouched") or s.startswith(("wrong", "fake-"))]
    names = {f"q-{s}": s for s in originals}
    # the copies and the poison: the untouched release (any notebook costs about the same)
    names.update({f"q-copy{k}": "untouched" for k in range(CLASS - len(originals))})
    names[POISON] = "untouched"
    for student, source in names.items():
        course.submit(root, AID, student, root / "submitted" / source / AID / f"{AID}.ipynb")
    seen = {"started": {}}
    with LocalCluster(workers=2, visibility_s=visibility) as cluster:
        mp = _env(cluster.producer_env())
        try:
            url = settings.gradebook_url()
            app = make_app("grader")
            ran, not_sent = submit.submit(root, AID, list(names), app=app)
            assert not_sent == {}
            forged = _forge(cluster, app)
            seen["queued before"] = int(cluster.redis_cli("LLEN", settings.QUEUE))
            cluster.restart_redis()  # a crash: no worker has taken anything yet
            seen["queued after"] = int(cluster.redis_cli("LLEN", settings.QUEUE))
            seen["listening"] = _listening(cluster)
            # the course copy is made before taking tasks, in the worker's main process: a
            # grading process killed (the poison) is replaced by a fork that has it
            cluster.start_worker(1, prepare=AID)
            cluster.start_worker(2, prepare=AID)
            # the bound, a safety net: three times the class at this machine's pace
            bound = max(600, 3 * (len(names) * graded_class.seconds[AID] / 2 + visibility))
            db = create_engine(url)  # one login for the watch's many looks
            try:
                seen.update(_watch(cluster, db, ran, len(names), bound))
                seen["events"] = ledger.events(db, ran)
            finally:
                db.dispose()  # before the database stops: it waits for its sessions
            seen["collected"] = submit.collect(root, AID, ran)
            seen["progress"] = ledger.progress(url, ran)[0]  # a later watch counts what was sent
            seen["forged"] = forged
            seen["visibility"] = visibility
            # a task handed out again (a worker slower than the visibility timeout) is
            # dropped by its next worker at once: the queue drains
            end = time.monotonic() + 60
            while int(cluster.redis_cli("LLEN", settings.QUEUE)) and time.monotonic() < end:
                time.sleep(1)
            seen["left in queue"] = int(cluster.redis_cli("LLEN", settings.QUEUE))
            seen["scores"] = _scores(url, names)
            seen["logs"] = {n: cluster.worker_log(n) for n in ("w1", "w2", "w3")}
            seen["export"] = _export(root, tmp_path_factory.mktemp("export"))
        finally:
            mp.undo()
    seen.update(names=names, batch={s: _batch_scores(root, s) for s in set(names.values())})
    return seen


def _forge(cluster, grader_app):
    """Three learners at the broker: no password; the password but no key (json); the
    password and a worker's key (a worker's key is not trusted to give tasks). (A copy of a
    signed task with options added at the broker is refused by the worker's own check:
    tests/test_queue_payload.py.)"""
    from nopos.grading.distributed import settings
    from nopos.grading.distributed.app import make_app

    task = {"run": "forged", "aid": AID, "student": "q-forged", "course": "x",
            "files": {f"{AID}.ipynb": base64.b64encode(b"{}").decode()}}
    ns = f"{cluster.prefix}w1"
    no_password = subprocess.run(
        ["ip", "netns", "exec", ns, "redis-cli", "-h", "10.231.1.1", "LPUSH", settings.QUEUE, "x"],
        capture_output=True, text=True).stdout
    from celery import Celery

    plain = Celery("forger", broker=os.environ["NOPOS_BROKER_URL"])
    plain.conf.update(task_serializer="json", accept_content=["json"])
    plain.send_task(settings.TASK, args=[task], queue=settings.QUEUE, task_id="forged/json")
    cluster.redis_cli("LPUSH", settings.QUEUE, "not json")  # with the password: dropped, no worker stops
    # with the password, copies of a grader's task whose headers Celery would choke on before
    # the task runs (review h31b: each stopped or stalled a worker, then the next)
    import json

    import redis

    broker = redis.Redis(unix_socket_path=str(cluster.redis_socket), password=cluster.redis_pw)
    genuine = json.loads(broker.lindex(settings.QUEUE, -1))  # the oldest: the grader's first task
    for change in BAD_HEADERS:
        copy = json.loads(json.dumps(genuine))
        copy["headers"].update(change)
        copy["headers"] = {k: v for k, v in copy["headers"].items() if v != "missing"}
        broker.lpush(settings.QUEUE, json.dumps(copy))
    broker.close()
    mp = _env({"NOPOS_QUEUE_KEYS": str(cluster.dir / "keys-w1")})
    try:
        worker_signed = make_app("worker")
        worker_signed.send_task(settings.TASK, args=[dict(task, student="q-forged-w")],
                                queue=settings.QUEUE, task_id="forged/worker-key")
    finally:
        mp.undo()
    return {"no password": no_password}


def _listening(cluster):
    def ports(*ns):
        out = subprocess.run([*ns, "ss", "-ltnH"], capture_output=True, text=True).stdout
        return sorted(line.split()[3] for line in out.splitlines())

    return {"servers": ports("ip", "netns", "exec", cluster.servers)}


def _watch(cluster, db, ran, total, timeout):
    """Until every submission has an outcome: kill the poison's grading process at each
    start; kill worker w1, whole, in the middle of its first other submission."""
    from nopos.grading.distributed import ledger, settings

    killed_poison, victim = set(), None
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        events = ledger.events(db, ran)
        final = {s for s, e, *_ in events if e in ledger.FINAL}
        for student, event, worker, pid, _ in events:
            if event != "started" or student in final:
                continue
            if student == POISON and pid not in killed_poison \
                    and len(killed_poison) < settings.MAX_ATTEMPTS:
                killed_poison.add(pid)  # what the OOM killer would do, every time
                kill_tree(pid)
            elif victim is None and worker.startswith("w1@") and student != POISON:
                victim = student
                cluster.kill_worker("w1")
                cluster.start_worker(1, "w3", prepare=AID)  # another worker on that host
        if len(final) >= total:
            counts, failed = ledger.progress(db, ran, total)
            return {"victim": victim, "poison kills": len(killed_poison), "counts": counts,
                    "failed": failed}
        if all(proc.poll() is not None for proc in cluster.workers.values()):  # not a long wait
            raise AssertionError("every worker has stopped:\n" + "\n".join(
                f"{n}: {cluster.worker_log(n)[-1500:]}" for n in cluster.workers))
        time.sleep(0.5)
    raise AssertionError(f"the class was not graded in {timeout:.0f} s: {ledger.progress(db, ran, total)}"
                         f"\n{cluster.worker_log('w2')[-3000:]}")


def _scores(url, names):
    from nbgrader.api import Gradebook, MissingEntry

    found = {}
    with Gradebook(url) as gb:
        for student in [*names, "q-forged", "q-forged-w"]:
            try:
                sub = gb.find_submission_notebook(AID, AID, student)
            except MissingEntry:
                continue
            found[student] = {g.name: float(g.score or 0) for g in sub.grades if g.max_score}
    return found


def _batch_scores(root, student):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        sub = gb.find_submission_notebook(AID, AID, student)
        return {g.name: float(g.score or 0) for g in sub.grades if g.max_score}


def _export(root, out):
    from nopos.grading import export

    export.main([str(root), "--out", str(out)])
    return (out / "canvas.csv").read_text()


def test_every_submission_graded_as_on_one_machine(run):
    graded = {s: v for s, v in run["scores"].items() if s in run["names"] and s != POISON}
    assert len(graded) >= 20
    differ = {s: (v, run["batch"][run["names"][s]]) for s, v in graded.items()
              if v != run["batch"][run["names"][s]]}
    assert differ == {}, differ
    assert run["counts"]["done"] == len(run["names"]) - 1


def test_a_worker_killed_mid_grade_is_graded_once_by_another(run):
    victim = run["victim"]
    assert victim, "w1 never started a submission"
    lines = [(e, w) for s, e, w, *_ in run["events"] if s == victim]
    starts = [w for e, w in lines if e == "started"]
    assert starts[0].startswith("w1@") and len(starts) >= 2
    done = [w for e, w in lines if e == "done"]
    assert len(done) == 1 and not done[0].startswith("w1@"), lines
    # nobody graded twice: exactly one outcome per submission, whatever was delivered again
    outcomes = [s for s, e, *_ in run["events"] if e in ("done", "not graded")]
    assert sorted(outcomes) == sorted(run["names"])


def test_a_later_watch_counts_what_was_sent(run):
    counts = run["progress"]
    assert counts["done"] + counts["failed"] == len(run["names"]), counts
    assert counts["grading"] == counts["queued"] == 0, counts


def test_a_broker_crash_loses_no_queued_submission(run):
    # the class, the two forged tasks signed or serialized otherwise, one that is not JSON,
    # the copies with headers Celery chokes on
    assert run["queued before"] == run["queued after"] == len(run["names"]) + 3 + len(BAD_HEADERS)
    assert run["left in queue"] == 0


def test_a_poison_submission_is_tried_a_bounded_number_of_times(run):
    from nopos.grading.distributed.settings import MAX_ATTEMPTS

    starts = [s for s, e, *_ in run["events"] if s == POISON and e == "started"]
    # killed at each of its first MAX_ATTEMPTS starts; the next start records it (one more
    # start is possible if the machine is so slow that its grading outlived the visibility)
    assert run["poison kills"] == MAX_ATTEMPTS and MAX_ATTEMPTS < len(starts) <= MAX_ATTEMPTS + 2
    assert f"stopped its worker {MAX_ATTEMPTS} times" in run["failed"][POISON]
    assert set(run["failed"]) == {POISON}
    assert sum(run["scores"][POISON].values()) == 0  # a row saying why, scored 0


def test_forged_tasks_are_refused(run):
    assert "NOAUTH" in run["forged"]["no password"]
    assert not {"q-forged", "q-forged-w"} & set(run["scores"])
    assert not [e for e in run["events"] if e[0].startswith("q-forged")]
    logs = run["logs"]["w1"] + run["logs"]["w2"] + run["logs"]["w3"]
    # unsigned, or not even a message: dropped at the worker's gate (nopos.grading.distributed.guard)
    assert "dropped a message from the broker: not signed" in logs
    assert "dropped a message from the broker: not JSON" in logs
    assert logs.count("dropped a message from the broker: a header the grader never sends") \
        == len(BAD_HEADERS) - 1  # and the copy without an id:
    assert "dropped a message from the broker: headers that are not the grader's" in logs


def test_servers_listen_only_on_the_namespaces_addresses(run):
    # (the host's own listeners are not checked: other programs may use these ports there)
    assert run["listening"]["servers"] and all(
        a.startswith("10.231.") for a in run["listening"]["servers"]), run["listening"]


def test_autograded_notebooks_come_back_for_feedback(run, scratch_course):
    assert run["collected"] == len(run["names"])
    assert (scratch_course / "autograded" / "q-copy0" / AID / f"{AID}.ipynb").is_file()


def test_the_export_reads_the_shared_gradebook(run):
    rows = run["export"].splitlines()
    assert any("q-copy0" in r for r in rows) and any(POISON in r for r in rows)
