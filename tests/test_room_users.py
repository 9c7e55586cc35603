"""The live room with real OS users on one file system, as on a hub with LocalProcessSpawner.

A facilitator (npr-fac) and participants (npr-p01...) are created with `useradd -m`
and always removed, with their homes, when the module ends, even when a test
fails. Every participant runs in their own process as their own user
(`runuser -u`), so what is refused is refused by the kernel, not by our code.
Needs root (to create users); skipped otherwise.

The participants' Python: the course's venv interpreter is often a link into a
folder other users cannot enter (here /root/.pyenv, under /root, mode 0700: see
`namei -l .venv/bin/python`). Such a venv is not usable by them, so these tests
run the system's interpreter of the same minor version, with the repository and
the venv's site-packages (both world-readable under /work) on PYTHONPATH; they
skip, saying which path is closed, when no interpreter works for another user.
"""
import json
import os
import pwd
import shutil
import site
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "npr-"
BURST = 30
FACILITATOR = f"{PREFIX}fac"
PEOPLE = [f"{PREFIX}p{i:02d}" for i in range(1, BURST + 1)]
OPTIONS = ["head 0.0", "head 0.1", "head 1.0"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="creating OS users needs root"),
    pytest.mark.skipif(not (shutil.which("useradd") and shutil.which("runuser")),
                       reason="needs useradd and runuser"),
]


def _remove_users(names):
    for name in names:
        subprocess.run(["userdel", "-r", "-f", name], capture_output=True)


@pytest.fixture(scope="module")
def users():
    _remove_users([p.pw_name for p in pwd.getpwall() if p.pw_name.startswith(PREFIX)])
    made = []
    try:
        for name in [FACILITATOR, *PEOPLE]:
            subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True,
                           capture_output=True)
            made.append(name)
        yield made
    finally:
        _remove_users(made)


@pytest.fixture(scope="module")
def shared_dirs():
    """The rooms root as the hub makes it (root, 1777), and a barrier folder for the burst."""
    dirs = [Path(tempfile.mkdtemp(prefix=f"{PREFIX}{what}-", dir="/tmp")) for what in ("rooms", "sync")]
    for d in dirs:
        os.chmod(d, 0o1777)
    try:
        yield dirs
    finally:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def _env(user, rooms):
    home = pwd.getpwnam(user).pw_dir
    paths = [str(ROOT), *site.getsitepackages()]
    return ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={home}", f"USER={user}",
            f"PYTHONPATH={os.pathsep.join(paths)}", "PYTHONDONTWRITEBYTECODE=1",
            f"NOPOS_ROOMS={rooms}", f"NOPOS_HOME={home}/.nopos", "NOPOS_INTERACTIVE=1",
            "NOPOS_THREADS=1", "OMP_NUM_THREADS=1"]


class Runner:
    def __init__(self, python, rooms):
        self.python, self.rooms = python, rooms

    def argv(self, user, code, *args, env=()):
        return ["runuser", "-u", user, "--", *_env(user, self.rooms), *env,
                self.python, "-c", code, *args]

    def __call__(self, user, code, *args, env=()):
        """Run `code` as `user`; its last line of output, parsed as JSON."""
        done = subprocess.run(self.argv(user, code, *args, env=env), capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, f"{user}: {done.stderr[-2000:]}"
        return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def run(users, shared_dirs):
    """A Runner with a Python the test users can execute and that imports the course."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [os.path.realpath(sys.executable), f"/usr/bin/python{version}"]
    closed = []
    for python in candidates:
        runner = Runner(python, shared_dirs[0])
        probe = subprocess.run(runner.argv(FACILITATOR, "import nopos.predict, nopos.room"),
                               capture_output=True, text=True, timeout=120)
        if probe.returncode == 0:
            return runner
        closed.append(f"{python}: {probe.stderr.strip().splitlines()[-1:]}")
    pytest.skip("no Python that another user may run imports the course; "
                "check `namei -l` of each: " + "; ".join(closed))


START = """
import json, sys
from nopos.room.store import create
room = create("04_attention", expected=int(sys.argv[1]), closest=sys.argv[2] == "yes")
print(json.dumps(room.code))
"""

COMMIT = """
import json, sys
from nopos import predict
q = predict.ask("ch4.head", "Which head copies the previous token?", options=%r)
q.control.value = sys.argv[1]
q.sure.value = float(sys.argv[2])
q.button.click()
print(json.dumps(q.status.value))
""" % OPTIONS

PEEK = """
import json, os, sys
entries, other = sys.argv[1], sys.argv[2]
out = {}
for what, act in [("list", lambda: os.listdir(entries)), ("read", lambda: open(other).read()),
                  ("remove", lambda: os.unlink(other)),
                  ("overwrite", lambda: open(other, "w").write("{}"))]:
    try:
        act()
        out[what] = "allowed"
    except PermissionError:
        out[what] = "refused"
print(json.dumps(out))
"""

RESUME = """
import json, sys
import nopos.room as R
panel = R.resume(sys.argv[1], show=False)
panel.stop_polling()
print(json.dumps([panel.committed, panel.people]))
"""

REVEAL = """
import json, sys
from nopos.room.store import Room
print(json.dumps(Room(sys.argv[1]).publish(sys.argv[2], sys.argv[3])))
"""

READ_REVEALED = """
import json, sys
from nopos.room.store import Room
print(json.dumps(Room(sys.argv[1]).revealed(sys.argv[2])))
"""


def _entries_of(room_dir, user, key):
    uid = pwd.getpwnam(user).pw_uid
    return [p for p in (room_dir / "entries").iterdir()
            if p.name.endswith(f"-{key}.json") and p.stat().st_uid == uid]


def test_five_participants_privacy_restarts_and_an_exact_reveal(run, shared_dirs):
    rooms = shared_dirs[0]
    code = run(FACILITATOR, START, "5", "no")
    room_dir = rooms / code
    fac = pwd.getpwnam(FACILITATOR)
    entries = room_dir / "entries"
    assert entries.stat().st_uid == fac.pw_uid and entries.stat().st_gid == fac.pw_gid
    assert stat.S_IMODE(entries.stat().st_mode) == 0o3733

    picks = {"npr-p01": ("head 0.0", "0.5"), "npr-p02": ("head 1.0", "0.9"),
             "npr-p03": ("head 1.0", "0.7"), "npr-p04": ("head 0.1", "0.5"),
             "npr-p05": ("head 1.0", "0.99")}
    procs = {u: subprocess.Popen(run.argv(u, COMMIT, *pick, env=[f"NOPOS_ROOM={code}"]),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for u, pick in picks.items()}
    for user, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        assert f"Sent to room {code}" in out, out[-500:]

    [p01_entry] = _entries_of(room_dir, "npr-p01", "ch4.head")
    assert stat.S_IMODE(p01_entry.stat().st_mode) == 0o640 and p01_entry.stat().st_gid == fac.pw_gid
    peek = run("npr-p02", PEEK, str(entries), str(p01_entry))
    assert peek == {"list": "refused", "read": "refused", "remove": "refused",
                    "overwrite": "refused"}, "another participant got at npr-p01's entry"

    # npr-p01's kernel restarts (a new process) and commits again: replaced, not doubled
    status = run("npr-p01", COMMIT, "head 1.0", "0.7", env=[f"NOPOS_ROOM={code}"])
    assert f"Sent to room {code}" in status
    assert _entries_of(room_dir, "npr-p01", "ch4.head") == [p01_entry]

    # the facilitator's kernel restarts: a fresh process sees the whole room
    committed, people = run(FACILITATOR, RESUME, code)
    assert committed == {"ch4.head": 5} and people == 5

    agg = run(FACILITATOR, REVEAL, code, "ch4.head", "head 1.0")
    assert agg["counts"] == {"head 0.0": 0, "head 0.1": 1, "head 1.0": 4}
    assert agg["n"] == 5 and agg["right"] == 4 and "closest" not in agg  # not opted in
    assert agg["calibration"]["mean_confidence"] == pytest.approx((0.7 + 0.9 + 0.7 + 0.5 + 0.99) / 5)
    assert run("npr-p03", READ_REVEALED, code, "ch4.head")["counts"] == agg["counts"]
    assert run("npr-p03", PEEK, str(entries), str(p01_entry))["read"] == "refused"

    late = run("npr-p04", COMMIT, "head 1.0", "0.9", env=[f"NOPOS_ROOM={code}"])
    assert "Not sent to the room: the room has already revealed" in late
    assert agg["unreadable"] == 0

    run(FACILITATOR, "from nopos.room.store import Room; import sys; Room(sys.argv[1]).close(); "
        "print(1)", code)
    closed = run("npr-p05", COMMIT.replace("ch4.head", "ch4.other"), "head 0.0", "0.5",
                 env=[f"NOPOS_ROOM={code}"])
    assert "takes no more predictions (closed by its facilitator)" in closed


BURST_COMMIT = """
import json, os, sys, time
import nopos.room as R
code, sync, guess = sys.argv[1], sys.argv[2], float(sys.argv[3])
R.join(code)
open(os.path.join(sync, "ready-" + os.environ["USER"]), "w").close()
deadline = time.time() + 120
while not os.path.exists(os.path.join(sync, "go")) and time.time() < deadline:
    time.sleep(0.005)
sent = time.time()
note = R.send("ch4.loss", {"kind": "number", "text": "Loss?", "tolerance": 0.1, "unit": "",
                           "prediction": guess, "low": guess - 1, "high": guess + 1})
print(json.dumps([sent, time.time(), note]))
"""


def test_thirty_participants_committing_at_once_lose_nothing(run, shared_dirs):
    rooms, sync = shared_dirs
    code = run(FACILITATOR, START, str(BURST), "yes")
    procs = [subprocess.Popen(run.argv(u, BURST_COMMIT, code, str(sync), str(i)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, u in enumerate(PEOPLE, start=1)]
    deadline = time.monotonic() + 240
    while len(list(sync.glob("ready-*"))) < BURST and time.monotonic() < deadline:
        assert all(p.poll() in (None, 0) for p in procs), "a participant died before the burst"
        time.sleep(0.05)
    (sync / "go").touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert all("Sent to room" in note for _, _, note in results), results
    window = max(done for _, done, _ in results) - min(sent for sent, _, _ in results)
    print(f"\n30-burst: all {BURST} commits written within {window:.2f} s")
    assert window < 10

    committed, people = run(FACILITATOR, RESUME, code)
    assert committed == {"ch4.loss": BURST} and people == BURST
    agg = run(FACILITATOR, REVEAL, code, "ch4.loss", "15")
    assert agg["n"] == BURST and agg["guesses"] == [float(i) for i in range(1, BURST + 1)]
    assert agg["calibration"]["held"] == 3            # 14, 15, 16 have 15 in their range
    assert [c["user"] for c in agg["closest"]][0] == "npr-p15"   # the room opted in
