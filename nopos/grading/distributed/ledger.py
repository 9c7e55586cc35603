"""The ledger: one line per start and per outcome of a submission's grading, in the
gradebook's PostgreSQL next to nbgrader's tables.

It is what makes grading happen once. A submission is graded by one delivery
at a time (`grading`: a PostgreSQL session lock held for the grading, which the
server drops with the connection of a process that dies). A start is committed
at once; one that ends with neither an outcome nor a release (this host's own
fault, `release`) is a grading process that died, and past MAX_ATTEMPTS of them
the submission is recorded as not graded. Submissions are keyed by what the
grader signed (run, assignment, student), never by the message's own id, which
anyone at the broker can change. An outcome ("done" or "not graded") is
written in the same transaction as the grades, under an advisory lock on the
submission, and a unique index allows one outcome per submission and run: a task
delivered twice (its first worker died after writing, before acknowledging) finds
the outcome there and writes nothing. The instructor's progress bar reads it too.
"""
import contextlib
import hashlib
import json
import os
from collections import Counter

from sqlalchemy import create_engine, text

TABLE = "nopos_grading_ledger"
FINAL = ("done", "not graded")


@contextlib.contextmanager
def _connected(db, begin=False):
    """A connection through `db`: the gradebook's URL (an engine for this call alone) or
    an Engine the caller keeps, for one that reads every few seconds (a watch logs in
    once, not at every look: each login is a password exchange on both sides)."""
    engine = create_engine(db) if isinstance(db, str) else db
    try:
        with (engine.begin() if begin else engine.connect()) as connection:
            yield connection
    finally:
        if engine is not db:
            engine.dispose()


def create(url):
    """The ledger's table, once; after nbgrader has made its own tables (nbgrader
    stamps its schema version only in a database without tables)."""
    with _connected(url, begin=True) as db:
        db.execute(text(f"""CREATE TABLE IF NOT EXISTS {TABLE} (
            id BIGSERIAL PRIMARY KEY, run TEXT NOT NULL, assignment TEXT NOT NULL,
            student TEXT NOT NULL, task_id TEXT NOT NULL, worker TEXT NOT NULL,
            pid INTEGER, event TEXT NOT NULL, reason TEXT, autograded TEXT,
            at TIMESTAMPTZ NOT NULL DEFAULT now())"""))
        db.execute(text(f"""CREATE UNIQUE INDEX IF NOT EXISTS {TABLE}_one_outcome
            ON {TABLE} (run, assignment, student) WHERE event IN ('done', 'not graded')"""))
        # `superseded` and `progress` look for a student's runs: one lookup, not a scan
        db.execute(text(f"""CREATE INDEX IF NOT EXISTS {TABLE}_by_student
            ON {TABLE} (assignment, student) WHERE event = 'queued'"""))


@contextlib.contextmanager
def grading(url, task):
    """Hold this submission for one grading; yields whether this delivery holds it (False:
    another is grading it now). A dead grading process's connection, and its lock, go at
    once; a lost host's within about a minute (the server's keepalives, set here), well
    inside the broker's visibility timeout."""
    engine = create_engine(url, pool_size=1)
    lock = _lock("grading", task)
    try:
        with engine.connect() as db:
            for setting in ("tcp_keepalives_idle = 20", "tcp_keepalives_interval = 5",
                            "tcp_keepalives_count = 6"):
                db.execute(text(f"SET {setting}"))
            held = db.execute(text("SELECT pg_try_advisory_lock(:lock)"), {"lock": lock}).scalar()
            db.commit()  # a session lock outlives the transaction: the connection idles
            try:
                yield bool(held)
            finally:
                if held:
                    db.execute(text("SELECT pg_advisory_unlock(:lock)"), {"lock": lock})
                    db.commit()
    finally:
        engine.dispose()


def start(url, task, worker, pid):
    """Record a start; returns how many starts of this submission ended with neither an
    outcome nor a release (its grading process died), this one included."""
    with _connected(url, begin=True) as db:
        db.execute(text(f"INSERT INTO {TABLE} (run, assignment, student, task_id, worker, pid, "
                        "event) VALUES (:run, :aid, :student, :tid, :worker, :pid, 'started')"),
                   dict(_key(task), tid=task["task_id"], worker=worker, pid=pid))
        return db.execute(text(f"SELECT count(*) FILTER (WHERE event = 'started') - count(*) "
                               f"FILTER (WHERE event = 'released') FROM {TABLE} WHERE run = :run "
                               "AND assignment = :aid AND student = :student"), _key(task)).scalar()


def storable(text):
    """Text PostgreSQL stores (no NUL: it refuses the row, and the worker would take that
    for its own host's fault), or None."""
    return None if text is None else str(text).replace("\x00", "?")


def release(url, task, worker, reason, started=True):
    """The start just made ended by this host's own fault, not the submission's: uncounted
    (`started` False: refused before a start, said for the instructor's bar)."""
    with _connected(url, begin=True) as db:
        db.execute(text(f"INSERT INTO {TABLE} (run, assignment, student, task_id, worker, pid, "
                        "event, reason) VALUES (:run, :aid, :student, :tid, :worker, :pid, "
                        ":event, :reason)"),
                   dict(_key(task), tid=task["task_id"], worker=worker, pid=os.getpid(),
                        reason=storable(reason), event="released" if started else "refused here"))


def superseded(db, task):
    """Whether the grader has queued a later run of this student's assignment: a task of an
    older run (delivered late, or copied back at the broker) writes nothing."""
    mine = db.execute(text(f"SELECT max(id) FROM {TABLE} WHERE run = :run AND assignment = :aid "
                           "AND student = :student AND event = 'queued'"), _key(task)).scalar()
    later = db.execute(text(f"SELECT max(id) FROM {TABLE} WHERE run <> :run AND assignment = :aid "
                            "AND student = :student AND event = 'queued'"), _key(task)).scalar()
    return later is not None and (mine is None or later > mine)


def has_outcome(url, task):
    """Whether this submission of this run already has an outcome (a task delivered again),
    or a later run replaced it."""
    with _connected(url) as db:
        return db.execute(text(f"SELECT 1 FROM {TABLE} WHERE run = :run AND assignment = :aid "
                               "AND student = :student AND event IN ('done', 'not graded')"),
                          _key(task)).first() is not None or superseded(db, task)


def outcome(gb, task, worker, event, results=None, reason=None, autograded=None):
    """Write the grades (if `results`) and the outcome in one transaction of nbgrader's
    Gradebook `gb`; False (and nothing written) if this submission has one already.
    `autograded`: {file name: base64} of the autograded folder, for the grader's
    feedback (`nbgrader generate_feedback` reads it)."""
    from nopos.grading.batch import write_results

    db = gb.db
    key = _key(task)
    lock = _lock("outcome", task)
    db.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": lock})
    if db.execute(text(f"SELECT 1 FROM {TABLE} WHERE run = :run AND assignment = :aid AND "
                       "student = :student AND event IN ('done', 'not graded')"), key).first() \
            or superseded(db, task):
        db.rollback()
        return False
    if results is not None:
        write_results(gb, task["aid"], task["student"], results)
    db.execute(text(f"INSERT INTO {TABLE} (run, assignment, student, task_id, worker, event, "
                    "reason, autograded) VALUES (:run, :aid, :student, :tid, :worker, :event, "
                    ":reason, :autograded)"),
               dict(key, tid=task["task_id"], worker=worker, event=event, reason=storable(reason),
                    autograded=json.dumps(autograded) if autograded else None))
    db.commit()
    return True


def queued(url, run, aid, students):
    """What the grader sent in a run, one line a submission: a watch started later needs
    no count of its own (the submissions not sent are not waited for)."""
    with _connected(url, begin=True) as db:
        for student in students:
            db.execute(text(f"INSERT INTO {TABLE} (run, assignment, student, task_id, worker, "
                            "event) VALUES (:run, :aid, :student, :tid, 'grader', 'queued')"),
                       {"run": run, "aid": aid, "student": student, "tid": f"{run}/{student}"})


def unqueued(url, run, aid, student):
    """Take back a `queued` line whose task was never sent."""
    with _connected(url, begin=True) as db:
        db.execute(text(f"DELETE FROM {TABLE} WHERE run = :run AND assignment = :aid AND "
                        "student = :student AND event = 'queued'"),
                   {"run": run, "aid": aid, "student": student})


def progress(db, run, total=None):
    """{"done", "failed", "replaced", "grading", "queued"} of a run of `total` submissions
    (by default as many as the grader sent), and {student: reason} of those not graded.
    "replaced": sent again in a later run before this one graded them (`superseded`: this
    run never will). `db`: a URL or an Engine (`_connected`)."""
    with _connected(db) as connection:
        rows = connection.execute(text(f"SELECT student, event, reason FROM {TABLE} WHERE run = :run"),
                                  {"run": run}).all()
        later = {s for s, in connection.execute(text(
            f"SELECT DISTINCT mine.student FROM {TABLE} mine JOIN {TABLE} other ON "
            "other.assignment = mine.assignment AND other.student = mine.student AND "
            "other.event = 'queued' AND other.run <> mine.run AND other.id > mine.id "
            "WHERE mine.run = :run AND mine.event = 'queued'"), {"run": run})}
    if total is None:
        total = len({s for s, e, _ in rows if e == "queued"})
    final = {s: (e, r) for s, e, r in rows if e in FINAL}
    replaced = later - set(final)
    ongoing = Counter(s for s, e, _ in rows if e == "started")
    ongoing.subtract(s for s, e, _ in rows if e == "released")  # back in the queue
    started = {s for s, n in ongoing.items() if n > 0} - set(final) - replaced
    done = sum(e == "done" for e, _ in final.values())
    failed = {s: r for s, (e, r) in final.items() if e == "not graded"}
    return ({"done": done, "failed": len(failed), "replaced": len(replaced),
             "grading": len(started),
             "queued": total - len(final) - len(replaced) - len(started)}, failed)


def handed_back_by(url, task, worker):
    """Whether `worker` has handed this submission back already (its course differs)."""
    with _connected(url) as db:
        return db.execute(text(f"SELECT 1 FROM {TABLE} WHERE run = :run AND assignment = :aid "
                               "AND student = :student AND worker = :worker AND event = "
                               "'refused here'"), dict(_key(task), worker=worker)).first() is not None


def handed_back(db, run):
    """{(worker, reason)} of the submissions a worker handed back for its own fault (its
    course differs, its disk...): what the instructor must fix, said by the bar."""
    with _connected(db) as connection:
        return set(map(tuple, connection.execute(text(
            f"SELECT DISTINCT worker, reason FROM {TABLE} WHERE run = :run AND event IN "
            "('released', 'refused here')"), {"run": run})))


def events(db, run):
    """Every line of a run, oldest first: [(student, event, worker, pid, reason)]. `db`: a
    URL or an Engine (`_connected`)."""
    with _connected(db) as connection:
        return [tuple(r) for r in connection.execute(text(
            f"SELECT student, event, worker, pid, reason FROM {TABLE} WHERE run = :run "
            "ORDER BY id"), {"run": run})]


def autograded(url, run):
    """(student, {file name: base64}) of a run's graded submissions, one row at a time (a
    class's notebooks at once would be the class's size, twice, in the caller's memory)."""
    with _connected(url) as db:
        rows = db.execution_options(stream_results=True, yield_per=1).execute(text(
            f"SELECT student, autograded FROM {TABLE} WHERE run = :run AND autograded IS NOT NULL"),
            {"run": run})
        for student, files in rows:
            yield student, json.loads(files)


def _key(task):
    return {"run": task["run"], "aid": task["aid"], "student": task["student"]}


def _lock(purpose, task):
    """A 64-bit advisory lock number for one submission of a run, one per purpose."""
    key = repr((purpose, sorted(_key(task).items()))).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big", signed=True)
