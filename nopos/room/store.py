"""The room on disk: who may write what, and the aggregate published at reveal.

Standard library only, so a participant's commit needs nothing but a file system.

    ROOMS/<CODE>/               facilitator, 0755: anyone may read room.json and revealed/
    ROOMS/<CODE>/room.json      facilitator, 0644: chapter, facilitator, opt-ins
    ROOMS/<CODE>/entries/       facilitator:<their private group>, 3733 (setgid + sticky,
                                rwx-wx-wx): anyone may create a file, nobody else may
                                list it; files created there take its group
    ROOMS/<CODE>/entries/<secret>-<key>.json
                                the participant, 0640: the facilitator reads it through the
                                group, other participants cannot (nor find its name)
    ROOMS/<CODE>/revealed/<key>.json
                                facilitator, 0644: the aggregate, readable by all

Two locks on each entry, so that one slip does not expose it: its name starts
with a secret only its writer knows (kept in ~/.nopos/rooms/<CODE>.secret, so a
kernel restart reuses it) and the directory cannot be listed; and its mode is
0640 with a group only the facilitator is in. Who wrote an entry is the file's
owner as the OS records it, never what the file claims, and a user counts once
per question (their newest file), so a lost secret or a forged file adds no vote.
A commit writes a temporary file and renames it over the old entry: atomic, so
the facilitator reads the old prediction or the new one, never half of either.
"""
import datetime as _dt
import grp
import json
import os
import pwd
import re
import secrets
import stat
import time
from pathlib import Path

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"   # no 0/O, 1/I/L: read off a projector
CODE_LENGTH = 4
KEY = re.compile(r"^[A-Za-z0-9_.]{1,120}\Z")
MAX_ENTRY_BYTES = 64 * 1024
JOINED = "_joined"                               # the key of a "I am here" marker
ROOM_MODE, ENTRIES_MODE, FILE_MODE, ENTRY_MODE = 0o755, 0o3733, 0o644, 0o640


class RoomError(Exception):
    """Something about a room a person can fix; the message says how."""


# where a class server keeps its rooms; the hub's settings take it from here (the
# notebooks' layer never imports the hub's)
DEFAULT_ROOMS = "/srv/nopos/rooms"


def rooms_root():
    """$NOPOS_ROOMS (a hub gives every server its own), else DEFAULT_ROOMS."""
    return Path(os.environ.get("NOPOS_ROOMS", DEFAULT_ROOMS))


def normalise_code(code):
    code = str(code).strip().upper()
    if len(code) != CODE_LENGTH or any(c not in ALPHABET for c in code):
        raise RoomError(f"{code!r} is not a room code: codes are {CODE_LENGTH} letters and "
                        "digits, as the facilitator's screen shows them (e.g. K7P2)")
    return code


def check_key(key):
    if not KEY.match(key or "") or key == JOINED:
        raise RoomError(f"{key!r} cannot name a question in a room (letters, digits, _ and .)")
    return key


def _now():
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _write_atomic(path, data, mode):
    """Write then rename: readers see the old file or the new one, whole."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # whatever the umask
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def private_group(uid=None):
    """The caller's primary group, and whether nobody else is in it."""
    uid = os.getuid() if uid is None else uid
    gid = pwd.getpwuid(uid).pw_gid
    group = grp.getgrgid(gid)
    others = [m for m in group.gr_mem if m != pwd.getpwuid(uid).pw_name]
    others += [p.pw_name for p in pwd.getpwall() if p.pw_gid == gid and p.pw_uid != uid]
    return gid, not others


class Room:
    """A room's folder, seen by whoever opened it (facilitator or participant)."""

    def __init__(self, code, root=None):
        self.code = normalise_code(code)
        self.root = Path(root) if root else rooms_root()
        self.path = self.root / self.code
        self.entries = self.path / "entries"
        self.revealed_dir = self.path / "revealed"

    # ---- reading what anyone may read
    @property
    def info(self):
        try:
            return json.loads((self.path / "room.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RoomError(f"no room {self.code} in {self.root}: check the code on the "
                            "facilitator's screen") from None
        except PermissionError:
            raise RoomError(f"room {self.code} in {self.root} cannot be read: ask the "
                            "hub's admin to make the rooms folder readable") from None

    def revealed(self, key):
        """The published aggregate of a question, or None before the reveal."""
        try:
            return json.loads((self.revealed_dir / f"{check_key(key)}.json").read_text("utf-8"))
        except FileNotFoundError:
            return None

    def is_facilitator(self):
        return self.path.stat().st_uid == os.getuid()

    # ---- the facilitator's side
    def entry_stats(self):
        """[(uid, key, mtime, path)] of every entry, newest per (uid, key); only the
        facilitator may list the folder."""
        newest = {}
        with os.scandir(self.entries) as it:
            for e in it:
                if e.name.startswith(".") or not e.name.endswith(".json") or "-" not in e.name:
                    continue
                key = e.name[:-5].split("-", 1)[1]
                st = e.stat(follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode):
                    continue
                best = newest.get((st.st_uid, key))
                if best is None or st.st_mtime_ns > best[2]:
                    newest[(st.st_uid, key)] = (st.st_uid, key, st.st_mtime_ns, Path(e.path))
        return list(newest.values())

    def counts(self):
        """({question key: how many people committed}, how many people joined), counting
        only entries that are what a participant's notebook writes (junk adds nobody)."""
        stats = self.entry_stats()
        per_key, people = {}, set()
        for uid, key, _, path in stats:
            if not _counts(key, _read_entry(path)):
                continue
            people.add(uid)
            if key != JOINED:
                per_key[key] = per_key.get(key, 0) + 1
        return per_key, len(people)

    def read_entries(self, key):
        """{user name: entry} for one question: every participant's newest commit.

        Refuses links and oversized or malformed files (a participant wrote them)."""
        check_key(key)
        out, self.unreadable = {}, 0
        for uid, k, _, path in self.entry_stats():
            if k != key:
                continue
            entry = _read_entry(path)
            if entry is None:
                self.unreadable += 1   # said in the aggregate: nothing is dropped silently
            else:
                out[_user_name(uid)] = entry
        return out

    def publish(self, key, actual, text=None):
        """Read every entry of `key`, publish the aggregate for all to read, return it.
        `text`: the question as the facilitator asked it (else the entries' own)."""
        from nopos.room.aggregate import aggregate  # noqa: PLC0415 - same package, plain data
        entries = self.read_entries(key)
        try:
            result = aggregate(entries, actual, closest=self.info.get("closest", False))
        except ValueError as error:
            raise RoomError(str(error)) from None
        result.update(code=self.code, chapter=self.info.get("chapter"), key=key,
                      revealed_at=_now(), unreadable=self.unreadable)
        if text:
            result["text"] = str(text)
        _write_atomic(self.revealed_dir / f"{key}.json",
                      json.dumps(result, indent=1).encode(), FILE_MODE)
        return result

    def close(self):
        """No more commits: participants lose the right to create files in entries/."""
        os.chmod(self.entries, 0o3700)


def _counts(key, entry):
    """An entry that counts in the live tally: a valid key, a JSON object, and for a
    question (not the join marker) a prediction in it."""
    if entry is None or not KEY.match(key):
        return False
    return key == JOINED or "prediction" in entry


def _user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _read_entry(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_ENTRY_BYTES:
            return None
        data = os.read(fd, MAX_ENTRY_BYTES + 1)
    finally:
        os.close(fd)
    try:
        entry = json.loads(data)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def create(chapter, root=None, closest=False, expected=None):
    """Make a new room with a fresh code; the caller becomes its facilitator."""
    root = Path(root) if root else rooms_root()
    if not root.is_dir():
        raise RoomError(f"the rooms folder {root} does not exist: on the hub the admin creates "
                        "it (root-owned, mode 1777); elsewhere set NOPOS_ROOMS to a folder "
                        "everyone in the room can reach")
    gid, private = private_group()
    for _ in range(50):
        code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        try:
            (root / code).mkdir(mode=0o700)  # mkdir is atomic: a taken code fails here
        except FileExistsError:
            continue
        except PermissionError:
            raise RoomError(f"cannot create a room in {root}: it must be writable by "
                            "facilitators (mode 1777 on the hub)") from None
        break
    else:
        raise RoomError(f"no free room code in {root}: remove old rooms")
    room = Room(code, root)
    for sub, mode in ((room.entries, ENTRIES_MODE), (room.revealed_dir, ROOM_MODE)):
        sub.mkdir()
        os.chown(sub, -1, gid)
        os.chmod(sub, mode)
    info = {"code": code, "chapter": chapter, "facilitator": _user_name(os.getuid()),
            "created": _now(), "closest": bool(closest), "expected": expected,
            "private_group": private}
    _write_atomic(room.path / "room.json", json.dumps(info, indent=1).encode(), FILE_MODE)
    os.chmod(room.path, ROOM_MODE)  # open the room only once it is complete
    return room


# ---------------------------------------------------------------- a participant's side
class Seat:
    """A participant's place in a room: their secret, and their commits."""

    def __init__(self, room, home=None):
        self.room = room
        home = Path(home or os.environ.get("NOPOS_HOME", Path.home() / ".nopos"))
        self.secret_path = home / "rooms" / f"{room.code}.secret"
        self.secret = self._secret()

    def _secret(self):
        try:
            return self.secret_path.read_text().strip()
        except FileNotFoundError:
            pass
        self.secret_path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.secret_path.parent, 0o700)
        secret = secrets.token_hex(16)
        _write_atomic(self.secret_path, secret.encode(), 0o600)
        return secret

    def entry_path(self, key):
        return self.room.entries / f"{self.secret}-{key}.json"

    def mark_joined(self):
        self._write(JOINED, {"joined": _now()})

    def commit(self, key, entry):
        """Send one prediction; a later commit of the same question replaces it."""
        check_key(key)
        if self.room.revealed(key) is not None:
            raise RoomError("the room has already revealed this question: your prediction "
                            "is kept in your own log only")
        self._write(key, {**entry, "key": key, "committed": _now(), "sent": time.time()})

    def _write(self, key, entry):
        path = self.entry_path(key)
        try:
            _write_atomic(path, json.dumps(entry).encode(), ENTRY_MODE)
            if path.stat().st_gid != self.room.entries.stat().st_gid:
                raise RoomError("the facilitator could not read your entry: this file system "
                                "ignores the rooms' setgid folders; tell the hub's admin")
        except PermissionError:
            raise RoomError(f"room {self.room.code} takes no more predictions (closed by "
                            "its facilitator)") from None
        except FileNotFoundError:
            raise RoomError(f"room {self.room.code} is gone from {self.room.root}") from None
