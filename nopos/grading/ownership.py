"""Whose submission is it: the file system says, not the folder's name.

nbgrader's exchange names a submission `<student>+<assignment>+<timestamp>+<random>`
in the course's inbound, a folder every learner may create entries in. nbgrader's
collect takes the name at its word (it only warns "cheating attempt?" when the
owner differs), so a learner could hand in a folder named after a classmate with a
later timestamp and replace the classmate's work. On a one-server hub the kernel
records who made each file: a submission is accepted only when its folder and
everything in it belong to the OS user it names, are plain files and folders (no
links: a link to the grader's files would be copied by collect and come back in
feedback), and nothing else is set aside, out of nbgrader's sight, with the reason,
so the instructor's report can name it. A learner's own earlier submissions stay
in the inbound untouched: setting aside a forgery never removes a genuine one.

Rejected: nbgrader's CollectApp.check_owner (a warning, after the fact) and an
exchange service with its own authentication (nbgrader's ngshare: one more server
and database to run and secure, for what the kernel already records on one machine).
"""
import json
import os
import pwd
import shutil
import stat
import time
from pathlib import Path

LOG = "set-aside.jsonl"


def _owner_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def why_not_theirs(path):
    """None when the submission folder `path` belongs to the learner its name gives;
    else the reason, in words."""
    path = Path(path)
    student = path.name.split("+", 1)[0]
    try:
        uid = pwd.getpwnam(student).pw_uid
    except KeyError:
        return f"names {student!r}, who has no account on this machine"
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode):
        return "is not a folder"
    if st.st_uid != uid:
        return f"names {student} but was made by {_owner_name(st.st_uid)}"
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            inner = Path(folder) / name
            st = inner.lstat()
            rel = inner.relative_to(path)
            if stat.S_ISLNK(st.st_mode):
                return f"holds a link, {rel}"
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                return f"holds {rel}, which is not a plain file"
            if st.st_uid != uid:
                return f"holds {rel}, made by {_owner_name(st.st_uid)}, not {student}"
    return None


def set_aside_foreign(inbound, assignment, aside):
    """Move every submission of `assignment` in `inbound` that is not its named learner's
    own into `aside` (a private folder); returns [{name, student, reason}] moved now."""
    inbound, aside = Path(inbound), Path(aside)
    moved = []
    for path in sorted(inbound.glob(f"*+{assignment}+*")):
        reason = why_not_theirs(path)
        if reason is None:
            continue
        aside.mkdir(parents=True, exist_ok=True)
        os.chmod(aside, 0o700)
        target = aside / path.name
        if target.exists() or target.is_symlink():
            target = aside / f"{path.name}.{time.time_ns()}"
        shutil.move(str(path), str(target))
        record = {"name": path.name, "student": path.name.split("+", 1)[0],
                  "assignment": assignment, "reason": reason, "kept_at": str(target),
                  "at": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        with open(aside / LOG, "a") as log:
            log.write(json.dumps(record) + "\n")
        moved.append(record)
    return moved


def set_aside_report(aside, assignment):
    """Every submission of `assignment` ever set aside (the log in `aside`)."""
    log = Path(aside) / LOG
    if not log.exists():
        return []
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [r for r in records if r.get("assignment") == assignment]
