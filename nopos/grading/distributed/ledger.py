"""The ledger: one line per start and per outcome of a submission's grading, in the
gradebook's PostgreSQL next to nbgrader's tables.

It is what makes grading happen once. A start is committed at once (so a
worker killed a moment later still counted it: past MAX_ATTEMPTS starts the
submission is recorded as not graded). An outcome ("done" or "not graded") is
written in the same transaction as the grades, under an advisory lock on the
submission, and a unique index allows one outcome per submission and run: a task
delivered twice (its first worker died after writing, before acknowledging) finds
the outcome there and writes nothing. The instructor's progress bar reads it too.
"""
import contextlib
import hashlib
import json

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


def start(url, task, worker, pid):
    """Record a start; returns how many times this task has started (this one included)."""
    with _connected(url, begin=True) as db:
        db.execute(text(f"INSERT INTO {TABLE} (run, assignment, student, task_id, worker, pid, "
                        "event) VALUES (:run, :aid, :student, :tid, :worker, :pid, 'started')"),
                   dict(_key(task), tid=task["task_id"], worker=worker, pid=pid))
        return db.execute(text(f"SELECT count(*) FROM {TABLE} WHERE task_id = :tid AND "
                               "event = 'started'"), {"tid": task["task_id"]}).scalar()


def has_outcome(url, task):
    """Whether this submission of this run already has an outcome (a task delivered again)."""
    with _connected(url) as db:
        return db.execute(text(f"SELECT 1 FROM {TABLE} WHERE run = :run AND assignment = :aid "
                               "AND student = :student AND event IN ('done', 'not graded')"),
                          _key(task)).first() is not None


def outcome(gb, task, worker, event, results=None, reason=None, autograded=None):
    """Write the grades (if `results`) and the outcome in one transaction of nbgrader's
    Gradebook `gb`; False (and nothing written) if this submission has one already.
    `autograded`: {file name: base64} of the autograded folder, for the grader's
    feedback (`nbgrader generate_feedback` reads it)."""
    from nopos.grading.batch import write_results

    db = gb.db
    key = _key(task)
    lock = int.from_bytes(hashlib.sha256(repr(sorted(key.items())).encode()).digest()[:8],
                          "big", signed=True)
    db.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": lock})
    if db.execute(text(f"SELECT 1 FROM {TABLE} WHERE run = :run AND assignment = :aid AND "
                       "student = :student AND event IN ('done', 'not graded')"), key).first():
        db.rollback()
        return False
    if results is not None:
        write_results(gb, task["aid"], task["student"], results)
    db.execute(text(f"INSERT INTO {TABLE} (run, assignment, student, task_id, worker, event, "
                    "reason, autograded) VALUES (:run, :aid, :student, :tid, :worker, :event, "
                    ":reason, :autograded)"),
               dict(key, tid=task["task_id"], worker=worker, event=event, reason=reason,
                    autograded=json.dumps(autograded) if autograded else None))
    db.commit()
    return True


def progress(db, run, total):
    """{"done", "failed", "grading", "queued"} of a run of `total` submissions, and
    {student: reason} of those not graded. `db`: a URL or an Engine (`_connected`)."""
    with _connected(db) as connection:
        rows = connection.execute(text(f"SELECT student, event, reason FROM {TABLE} WHERE run = :run"),
                                  {"run": run}).all()
    final = {s: (e, r) for s, e, r in rows if e in FINAL}
    started = {s for s, e, _ in rows if e == "started"} - set(final)
    done = sum(e == "done" for e, _ in final.values())
    failed = {s: r for s, (e, r) in final.items() if e == "not graded"}
    return ({"done": done, "failed": len(failed), "grading": len(started),
             "queued": total - len(final) - len(started)}, failed)


def events(db, run):
    """Every line of a run, oldest first: [(student, event, worker, pid, reason)]. `db`: a
    URL or an Engine (`_connected`)."""
    with _connected(db) as connection:
        return [tuple(r) for r in connection.execute(text(
            f"SELECT student, event, worker, pid, reason FROM {TABLE} WHERE run = :run "
            "ORDER BY id"), {"run": run})]


def autograded(url, run):
    """{student: {file name: base64}} of a run's graded submissions."""
    with _connected(url) as db:
        rows = db.execute(text(f"SELECT student, autograded FROM {TABLE} WHERE run = :run AND "
                               "autograded IS NOT NULL"), {"run": run}).all()
    return {s: json.loads(a) for s, a in rows}


def _key(task):
    return {"run": task["run"], "aid": task["aid"], "student": task["student"]}
