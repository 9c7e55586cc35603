"""Whose submission is it: the file system says, not the folder's name.

nbgrader's exchange names a submission `<student>+<assignment>+<timestamp>+<random>`
in the course's inbound, a folder every learner may create entries in. nbgrader's
collect takes the name at its word (it only warns "cheating attempt?" when the
owner differs), so a learner could hand in a folder named after a classmate with a
later timestamp and replace the classmate's work. On a one-server hub the kernel
records who made each file. Collect is one trusted step with no window between
looking and copying (`screen`):

1. freeze: each candidate folder, and everything in it, is made root's (group: the
   grader, who copies it; modes 750/640) before anything is judged, walking by file
   descriptor with O_NOFOLLOW, folder before contents. From then on its learner can
   change nothing in it: not with a shell whose working directory is inside it, not
   by swapping a file for a link to a classmate's work (a folder's write permission
   is checked at each unlink or rename, and she no longer has it). The owner each
   entry had is recorded first, and kept (settings' set-aside folder) for later
   collects, since the folder now says root;
2. verify: the name is one nbgrader's collect can read (`user+assignment+timestamp
   [+random]`, a timestamp nbgrader parses), the folder is a real folder, everything in
   it plain files and folders (no links: a link to the grader's files would be copied
   and come back in feedback), and every recorded owner is the learner the name gives;
3. whatever fails is moved, out of nbgrader's sight, to the set-aside folder with the
   reason, so the instructor's report names it and collect never fails for the class
   because of one learner's folder; then nbgrader's collect copies what is left, which
   no learner can change any more.

A learner's own earlier submissions stay in the inbound untouched: setting aside a
forgery never removes a genuine one.

Rejected: nbgrader's CollectApp.check_owner (a warning, after the fact); screening
then copying as two steps over a folder its learner still owns (a process with its
working directory inside swapped a file for a link between the two); and an exchange
service with its own authentication (nbgrader's ngshare: one more server and
database to run and secure, for what the kernel already records on one machine).
"""
import json
import os
import pwd
import shutil
import stat
import time
from pathlib import Path

LOG = "set-aside.jsonl"
FROZEN = "frozen.json"  # {folder name: {relative path: (original owner uid, kind)}}


def _owner_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _kind(mode):
    return "folder" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else \
        "link" if stat.S_ISLNK(mode) else "special file"


def _freeze_fd(fd, gid, rel, found):
    """Record then take the open folder `fd` and all below it (no link followed)."""
    st = os.fstat(fd)
    found[rel] = (st.st_uid, "folder")
    os.fchown(fd, 0, gid)
    os.fchmod(fd, 0o750)  # from here on nobody but root changes its entries
    for name in os.listdir(fd):
        inner = f"{rel}/{name}" if rel != "." else name
        st = os.lstat(name, dir_fd=fd)
        if stat.S_ISDIR(st.st_mode):
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            try:
                _freeze_fd(child, gid, inner, found)
            finally:
                os.close(child)
        elif stat.S_ISREG(st.st_mode):
            child = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
            try:
                st = os.fstat(child)
                found[inner] = (st.st_uid, _kind(st.st_mode))
                os.fchown(child, 0, gid)
                os.fchmod(child, 0o640)
            finally:
                os.close(child)
        else:  # a link or a special file: recorded as such (and refused), never followed
            found[inner] = (st.st_uid, _kind(st.st_mode))
            os.chown(name, 0, gid, dir_fd=fd, follow_symlinks=False)


def freeze(path, gid=0):
    """Make the submission folder `path` root's, unchangeable by its learner, readable by
    group `gid`; returns {relative path: (original owner uid, kind)}."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:  # a link, or not a folder
        st = os.lstat(path)
        os.chown(path, 0, gid, follow_symlinks=False)
        return {".": (st.st_uid, _kind(st.st_mode))}
    try:
        found = {}
        _freeze_fd(fd, gid, ".", found)
        return found
    finally:
        os.close(fd)


def parse_name(name):
    """(student, assignment, timestamp) as nbgrader's collect reads a folder's name, or a
    ValueError saying why it cannot."""
    from nbgrader.utils import parse_utc

    parts = name.rsplit("+", 3)  # as nbgrader's ExchangeCollect._path_to_record
    if len(parts) < 3:
        raise ValueError(f"is not named learner+assignment+timestamp")
    try:
        parse_utc(parts[2])
    except Exception as err:  # dateutil's ParserError, OverflowError, ...
        raise ValueError(f"has a timestamp nbgrader cannot read, {parts[2]!r} ({err})") from None
    return parts[0], parts[1], parts[2]


def why_not_theirs(name, assignment, owners):
    """None when the folder `name`, whose entries had the `owners` freeze recorded,
    belongs to the learner its name gives; else the reason, in words."""
    try:
        student, aid, _ = parse_name(name)
    except ValueError as err:
        return str(err)
    if aid != assignment:
        return f"is not named learner+{assignment}+timestamp[+random]"
    try:
        uid = pwd.getpwnam(student).pw_uid
    except KeyError:
        return f"names {student!r}, who has no account on this machine"
    for rel, (owner, kind) in sorted(owners.items()):
        where = "the folder" if rel == "." else rel
        if rel == "." and kind != "folder":
            return f"is not a folder but a {kind}"
        if kind not in ("folder", "file"):
            return f"holds a {kind}, {rel}"
        if owner != uid:
            return f"names {student} but {where} was made by {_owner_name(owner)}"
    return None


def screen(inbound, assignment, aside, gid=0):
    """Freeze every submission of `assignment` in `inbound`, verify it, and move every one
    that is not its named learner's own (or that nbgrader could not read) into `aside`
    (a private folder); returns [{name, student, reason}] moved now. Run it with the
    inbound closed to learners, then let nbgrader's collect copy what is left."""
    inbound, aside = Path(inbound), Path(aside)
    aside.mkdir(parents=True, exist_ok=True)
    os.chmod(aside, 0o700)
    ledger = aside / FROZEN
    frozen = json.loads(ledger.read_text()) if ledger.exists() else {}
    moved = []
    for path in sorted(inbound.glob(f"*+{assignment}+*")):
        st = path.lstat()
        # frozen by an earlier collect (root's now): its owners were recorded then
        if not (path.name in frozen and st.st_uid == 0 and stat.S_ISDIR(st.st_mode)):
            frozen[path.name] = freeze(path, gid)
            ledger.write_text(json.dumps(frozen))
        reason = why_not_theirs(path.name, assignment, frozen[path.name])
        if reason is None:
            continue
        target = aside / path.name
        if target.exists() or target.is_symlink():
            target = aside / f"{path.name}.{time.time_ns()}"
        shutil.move(str(path), str(target))  # frozen: nobody but root changes it meanwhile
        frozen.pop(path.name)
        ledger.write_text(json.dumps(frozen))
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
