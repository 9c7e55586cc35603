"""The course's JupyterHub end to end, on loopback, with real OS users.

One hub for the module (`make hub`'s own start and stop, on free ports and test
folders under /srv/nopos-test): an instructor and four learners (`nph-` users)
made through the REST API; chapter 1 released, fetched, filled and submitted
with nbgrader's CLI run as each OS user; collected, autograded by the sandboxed
parallel batch, feedback generated, released and fetched. Eve, a hostile learner,
tries as her own OS user to game the class: reading the open chapter's answers
(import, inspect, files and bytecode under the hub's prefix, package metadata),
planting submissions under a classmate's name or with a link to the grader's
files, renaming or removing the exchange's folders; each attempt is recorded in
`flow["attempts"]` and must fail with her classmates' grades intact. Always torn
down, users included. Needs root, Linux, npm and /usr/bin/python3 >= 3.11; the hub's
environment is built once under /opt/nopos-hub-test and reused (seconds with
uv's warm cache, ~1 min cold).
"""
import json
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

from browser.conftest import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, _missing
from conftest import ROOT, filled_release, reference_answers, release_path
from wrong.ch01_dataset import CASES as WRONG

pytestmark = pytest.mark.slow
AID = "01_dataset"
TEST_ROOT = Path("/srv/nopos-test")
TEACHER, ADA, BOB, EVE, DAN = "nph-teach", "nph-ada", "nph-bob", "nph-eve", "nph-dan"
LEARNERS = [ADA, BOB, EVE, DAN]  # correct, a realistic mistake, hostile, not a notebook
MISTAKE = WRONG["targets_shifted_wrong_way"]
PASSWORD = "nopos-test-pw"  # the dummy authenticator's shared password (NOPOS_HUB_DUMMY_PASSWORD)


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in socks]
    for sock in socks:
        sock.close()
    return ports


def _can_run():
    if sys.platform != "linux" or os.geteuid() != 0:
        return "needs root on Linux (real OS users)"
    for tool in ("useradd", "userdel", "runuser", "npm"):
        if not shutil.which(tool):
            return f"needs {tool}"
    if not os.access("/usr/bin/python3", os.X_OK):
        return "needs /usr/bin/python3"
    return None


class Hub:
    def __init__(self, env):
        self.env = env
        self.prefix = Path(env["NOPOS_HUB_PREFIX"])
        self.exchange = Path(env["NOPOS_EXCHANGE"])
        self.course = Path(env["NOPOS_COURSE_ROOT"])
        self.url = f"http://127.0.0.1:{env['NOPOS_HUB_PORT']}"
        self.python = self.prefix / "env" / "bin" / "python"
        self.tokens = {}

    def admin_token(self):
        return json.loads((self.prefix / "state" / "tokens.json").read_text())["nopos-admin"]

    def request(self, method, path, body=None, token=None):
        """(status, parsed JSON or text) of a request to the hub, through the proxy."""
        req = urllib.request.Request(self.url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {token or self.admin_token()}"})
        try:
            with urllib.request.urlopen(req, timeout=30) as got:
                text = got.read().decode()
                status = got.status
        except urllib.error.HTTPError as error:
            text, status = error.read().decode(errors="replace"), error.code
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def api(self, method, path, body=None):
        status, got = self.request(method, "/hub/api" + path, body)
        assert status < 300, f"{method} {path}: {status} {got}"
        return got

    def module(self, module, *args, env=None):
        """`python -m MODULE ARGS` from the checkout, with the test hub's settings."""
        return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                              env={**os.environ, **self.env, **(env or {})},
                              capture_output=True, text=True, timeout=600)

    def as_user(self, user, *cmd, cwd=None):
        """A command run as OS user `user`, with a hub token, the way nbgrader's
        JupyterHubAuthPlugin expects it (as in the user's own server)."""
        home = pwd.getpwnam(user).pw_dir
        env = [f"HOME={home}", f"PATH={self.prefix}/env/bin:/usr/bin:/bin", "PYTHONWARNINGS=ignore",
               f"JUPYTERHUB_API_TOKEN={self.tokens[user]}", f"JUPYTERHUB_USER={user}",
               f"JUPYTERHUB_API_URL=http://127.0.0.1:{self.env['NOPOS_HUB_API_PORT']}/hub/api"]
        return subprocess.run(["runuser", "-u", user, "--", "env", "-i", *env, *map(str, cmd)],
                              cwd=cwd or home, capture_output=True, text=True, timeout=300)

    def nbgrader(self, user, *args):
        got = self.as_user(user, self.python, "-m", "nbgrader", *args, "--course", "nopos")
        assert got.returncode == 0, f"{user}: nbgrader {args}: {got.stdout}{got.stderr}"
        return got

    def can_read(self, user, path):
        return self.as_user(user, "cat", path).returncode == 0


def _add_user(name):
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True)
    os.chmod(pwd.getpwnam(name).pw_dir, 0o700)


def _remove_user(name):
    subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)  # by uid: this user only
    subprocess.run(["userdel", "-r", "-f", name], capture_output=True)


@pytest.fixture(scope="module")
def hub():
    why = _can_run()
    if why:
        pytest.skip(why)
    hub_port, api_port, service_port, proxy_port = _free_ports(4)
    env = {"NOPOS_HUB_PREFIX": "/opt/nopos-hub-test", "NOPOS_EXCHANGE": str(TEST_ROOT / "exchange"),
           "NOPOS_ROOMS": str(TEST_ROOT / "rooms"), "NOPOS_COURSE_ROOT": str(TEST_ROOT / "course"),
           "NOPOS_HUB_PORT": str(hub_port), "NOPOS_HUB_API_PORT": str(api_port),
           "NOPOS_SERVICE_PORT": str(service_port), "NOPOS_PROXY_API_PORT": str(proxy_port),
           "NOPOS_USER_MEMORY_MB": "2048", "NOPOS_USER_CPUS": "1", "NOPOS_HUB_DUMMY_PASSWORD": PASSWORD,
           # other tests (tests/test_room_users.py, maybe at the same time) import the course
           # from this checkout as other OS users: `make hub` must not close it here
           # (its closing is tested on a clone of its own: tests/test_hub_rules.py)
           "NOPOS_HUB_OPEN_CHECKOUT": "1"}
    hub = Hub(env)
    grader_existed = _exists("grader-nopos")
    made = []
    try:
        shutil.rmtree(TEST_ROOT, ignore_errors=True)
        # a run killed before its teardown leaves its hub, and its database with the users in it
        hub.module("nopos.hub.server", "stop")
        shutil.rmtree(hub.prefix / "state", ignore_errors=True)
        TEST_ROOT.mkdir(parents=True)
        os.chmod(TEST_ROOT, 0o755)
        for name in [TEACHER, *LEARNERS]:
            _remove_user(name)  # a previous run killed before its teardown
            _add_user(name)
            made.append(name)
        clock = time.monotonic()
        started = hub.module("nopos.hub.server", "start")
        assert started.returncode == 0, started.stdout + started.stderr + _log(hub)
        print(f"`make hub` (nopos.hub.server start) took {time.monotonic() - clock:.1f} s")
        hub.started = started
        yield hub
    finally:
        stopped = hub.module("nopos.hub.server", "stop")
        print(stopped.stdout, stopped.stderr)
        for name in made:
            _remove_user(name)
        if not grader_existed:
            _remove_user("grader-nopos")
        shutil.rmtree(TEST_ROOT, ignore_errors=True)
        shutil.rmtree(hub.prefix / "state", ignore_errors=True)


def _exists(user):
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


def _log(hub):
    log = hub.prefix / "state" / "jupyterhub.log"
    return log.read_text()[-4000:] if log.exists() else ""


def _hostile_answer(hub):
    """make_batch, after trying to read and vandalise what a learner must never reach."""
    return f"""import glob, os
for pattern in [{str(hub.course)!r} + "/gradebook.db", {str(hub.course)!r} + "/**/*.ipynb",
                {str(hub.exchange)!r} + "/nopos/inbound/*/*.ipynb", "/home/*/nopos/**/*.ipynb"]:
    for p in glob.glob(pattern, recursive=True):
        try:
            open(p, "rb").read(10)
            print("FOUND", p)
        except OSError:
            pass
try:
    os.remove({str(hub.course)!r} + "/gradebook.db")
    print("FOUND removed the gradebook")
except OSError:
    pass
""" + reference_answers(AID)["make_batch"]


# text only chapter 1's answer module holds (docstrings: in its source and its bytecode)
ANSWER_MARKERS = ["BOS never appears anywhere else", "its target is a placeholder (BOS)"]


def _read_answers_script(hub):
    """Python run as Eve: every route to chapter 1's answers she can think of; prints
    {route: what she got, or null when refused}."""
    prefix = str(hub.prefix)
    return f"""import importlib, importlib.metadata as md, importlib.util, inspect, json, os, subprocess, sys
got = {{}}
def attempt(route, fn):
    try:
        got[route] = fn() or None
    except Exception:
        got[route] = None
attempt("import", lambda: importlib.import_module("nopos_reference.data").__file__)
attempt("inspect", lambda: inspect.getsource(importlib.import_module("nopos_reference.data")))
attempt("metadata", lambda: [str(f) for f in md.files("nopos-course") if "nopos_reference" in str(f)])
# pip show -f (the machine's pip, pointed at the env: the env has none of its own)
site = os.path.dirname(os.path.dirname(importlib.util.find_spec("nopos").origin))
shown = subprocess.run(["/usr/bin/python3", "-m", "pip", "show", "-f", "nopos-course"], capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=site)).stdout.splitlines()
got["_pip_lists_nopos"] = any("nopos/__init__.py" in l for l in shown)
attempt("pip show -f", lambda: [l for l in shown if "nopos_reference" in l])
attempt("answers folder", lambda: open({prefix!r} + "/answers/nopos_reference/data.py").read())
attempt("sys.path", lambda: [p for p in sys.path if "answers" in p])
hits = []
for folder, dirs, files in os.walk({prefix!r}):
    for name in files:
        path = os.path.join(folder, name)
        try:
            if os.path.getsize(path) < 2_000_000:
                data = open(path, "rb").read()
                hits += [path] if any(m.encode() in data for m in {ANSWER_MARKERS!r}) else []
        except OSError:
            pass
got["files and bytecode under the prefix"] = hits or None
print(json.dumps(got))
"""


def _eve_python(hub, code):
    got = hub.as_user(EVE, hub.python, "-c", code)
    assert got.returncode == 0, got.stdout + got.stderr
    return json.loads(got.stdout.strip().splitlines()[-1])


def _forge(hub, folder_name, link_to=None, as_file=False):
    """As Eve: a submission in the inbound under `folder_name` (a notebook with no
    answers, or a link to `link_to`); True when the file system let her make it."""
    inbound = hub.exchange / "nopos" / "inbound"
    blank = json.dumps(nbformat.writes(nbformat.read(release_path(AID), as_version=4)))
    code = f"""import os, json
target = os.path.join({str(inbound)!r}, {folder_name!r})
if {as_file!r}:
    open(target, "w").write(json.loads({blank!r}))
else:
    os.mkdir(target)
    open(os.path.join(target, "timestamp.txt"), "w").write({folder_name.split("+")[2]!r})
    nb = os.path.join(target, "{AID}.ipynb")
    if {str(link_to) if link_to else ""!r}:
        os.symlink({str(link_to)!r}, nb)
    else:
        open(nb, "w").write(json.loads({blank!r}))
"""
    return hub.as_user(EVE, hub.python, "-c", code).returncode == 0


def _fetched(hub, user):
    return Path(pwd.getpwnam(user).pw_dir) / "nopos" / AID / f"{AID}.ipynb"


def _hand_in(hub, user, nb_or_text):
    path = _fetched(hub, user)
    if isinstance(nb_or_text, str):
        path.write_text(nb_or_text)
    else:
        nbformat.write(nb_or_text, path)
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    hub.nbgrader(user, "submit", AID)


@pytest.fixture(scope="module")
def flow(hub):
    """The whole class: users and groups through the REST API, release, fetch, submit,
    collect, autograde, feedback. Returns what happened along the way."""
    seen = {"phases": {}}
    clock = time.monotonic()
    hub.api("POST", "/users", {"usernames": [TEACHER, *LEARNERS]})
    hub.api("POST", "/groups/nbgrader-nopos/users", {"users": LEARNERS})
    hub.api("POST", "/groups/formgrade-nopos/users", {"users": [TEACHER]})
    for user in [TEACHER, *LEARNERS]:
        hub.tokens[user] = hub.api("POST", f"/users/{user}/tokens", {"note": "test"})["token"]
    released = hub.module("nopos.hub.instructor", "release", AID)
    assert released.returncode == 0, released.stdout + released.stderr
    seen["phases"]["release"] = time.monotonic() - clock
    clock = time.monotonic()
    for user in LEARNERS:
        hub.nbgrader(user, "fetch_assignment", AID)
    seen["phases"]["fetch"] = time.monotonic() - clock
    clock = time.monotonic()
    _hand_in(hub, ADA, filled_release(AID))
    _hand_in(hub, BOB, filled_release(AID))  # a first, correct try ...
    time.sleep(1.1)  # nbgrader's timestamps: the second submission is the later one
    _hand_in(hub, BOB, filled_release(AID, MISTAKE.answers))  # ... then the one that counts
    _hand_in(hub, EVE, filled_release(AID, {"make_batch": _hostile_answer(hub)}))
    _hand_in(hub, DAN, "these are my answers, in a text file")
    seen["inbound"] = sorted((hub.exchange / "nopos" / "inbound").iterdir())
    seen["phases"]["submit"] = time.monotonic() - clock
    clock = time.monotonic()
    seen["attempts"] = _hostile_attempts(hub, seen["inbound"])
    seen["phases"]["hostile"] = time.monotonic() - clock
    print("phases so far (s):", {k: round(v, 1) for k, v in seen["phases"].items()})
    race = _race(hub)
    clock = time.monotonic()
    for step in ("collect", "autograde", "feedback"):
        got = hub.module("nopos.hub.instructor", step, AID, "--workers", "2")
        seen[step] = got
        if step == "collect":
            said = race.communicate(timeout=120)[0].strip().splitlines()
            seen["attempts"]["(e) swap her own notebook for a link to Bob's once collect began"] = \
                said[-1:] == ["swapped"]
            assert said[-1:] in (["swapped"], ["refused"]), said  # the race was run
        print(f"--- {step} ({time.monotonic() - clock:.0f} s)\n{got.stdout[-1500:]}{got.stderr[-1500:]}")
        assert step == "autograde" or got.returncode == 0, f"{step} failed"
        seen["phases"][step] = time.monotonic() - clock
        clock = time.monotonic()
    for user in LEARNERS:
        hub.nbgrader(user, "fetch_feedback", AID)
    seen["phases"]["fetch_feedback"] = time.monotonic() - clock
    # chapter 1's grades are closed: its answers are published, nothing else
    seen["published"] = _eve_python(hub, """import importlib, json
got = {}
for m in ("data", "schedule", "training", "train", "bench_hub", "claims", "record"):
    try:
        importlib.import_module("nopos_reference." + m)
        got[m] = True
    except ImportError:
        got[m] = False
print(json.dumps(got))""")
    print("phases (s):", {k: round(v, 1) for k, v in seen["phases"].items()})
    return seen


def _hostile_attempts(hub, inbound):
    """Eve's attacks, as her own OS user, before the instructor collects. Returns
    {attempt: True when the system let her}; the table in the report."""
    later = time.strftime("%Y-%m-%d %H:%M:%S.000000 UTC", time.gmtime(time.time() + 86400))
    exchange, course = hub.exchange, hub.exchange / "nopos"
    bobs = next(p for p in inbound if p.name.startswith(BOB + "+"))  # a name she might learn
    read = _eve_python(hub, _read_answers_script(hub))
    assert read.pop("_pip_lists_nopos"), "pip show -f did not work: the route tests nothing"
    attempts = {f"(a) read chapter 1's answers by {route}": bool(got) for route, got in read.items()}
    q = shlex.quote  # nbgrader's names hold spaces
    before = _snapshot(bobs)

    def sh(cmd):
        return hub.as_user(EVE, "sh", "-c", cmd).returncode == 0
    attempts.update({
        "(b) plant a later submission under Bob's name":
            _forge(hub, f"{BOB}+{AID}+{later}+forged"),
        "(b) plant a file (not a folder) under Ada's name":
            _forge(hub, f"{ADA}+{AID}+{later}+file", as_file=True),
        "(b) a folder named with a timestamp nbgrader cannot parse":
            _forge(hub, f"{EVE}+{AID}+not-a-time+x"),
        "(b') her own later submission, a link to the grader's source notebook":
            _forge(hub, f"{EVE}+{AID}+{later}+linked",
                   link_to=hub.course / "source" / AID / f"{AID}.ipynb"),
        "(c) rename the course's exchange folder": sh(f"mv {q(str(course))} {q(str(exchange))}/old"),
        "(c) replace the inbound": sh(f"mv {q(str(course))}/inbound {q(str(course))}/old"),
        "(c) add a folder beside the inbound": sh(f"mkdir {q(str(course))}/inbound2"),
        "(c) rename Bob's submission (its name known)": sh(f"mv {q(str(bobs))} {q(str(bobs) + '.x')}"),
        "(c) remove Bob's submission (its name known)": sh(f"rm -r {q(str(bobs))}"),
        "(c) delete a file in Bob's submission": sh(f"rm -f {q(str(bobs / (AID + '.ipynb')))}; "
                                                    f"test ! -e {q(str(bobs / (AID + '.ipynb')))}"),
        "(c) replace a file in Bob's submission": sh(f"echo {{}} > {q(str(bobs / (AID + '.ipynb')))}"),
        "(d) list the inbound": sh(f"ls {q(str(course))}/inbound"),
        "(d) read Bob's submission by a guessable name":
            sh(f"cat {q(str(course / 'inbound' / bobs.name.rsplit('+', 1)[0] / (AID + '.ipynb')))}"),
    })
    attempts["(c) any of the above changed Bob's submission"] = _snapshot(bobs) != before
    return attempts


def _race(hub):
    """As Eve: her own genuine (earlier-dated, so never the one collected) submission,
    and a shell whose working directory stays inside it; once collect has taken the
    folder (its owner changes), she swaps her notebook for a link to Bob's collected
    work. Prints "swapped" or "refused"."""
    inbound = hub.exchange / "nopos" / "inbound"
    earlier = time.strftime("%Y-%m-%d %H:%M:%S.000000 UTC", time.gmtime(time.time() - 86400))
    name = f"{EVE}+{AID}+{earlier}+race"
    assert _forge(hub, name)
    bobs = hub.course / "submitted" / BOB / AID / f"{AID}.ipynb"
    code = f"""import os, time
os.chdir({str(inbound / name)!r})
here = os.open(".", os.O_RDONLY | os.O_DIRECTORY)  # fstat needs no permission on it
mine = os.fstat(here).st_uid
print("inside", flush=True)  # collect starts only now (a loaded machine starts her late)
deadline = time.time() + 300
while os.fstat(here).st_uid == mine and time.time() < deadline:
    time.sleep(0.05)
try:
    os.unlink("{AID}.ipynb")
    os.symlink({str(bobs)!r}, "{AID}.ipynb")
    print("swapped")
except OSError:
    print("refused")
"""
    home = pwd.getpwnam(EVE).pw_dir
    race = subprocess.Popen(["runuser", "-u", EVE, "--", "env", "-i", f"HOME={home}",
                             hub.python, "-c", code], stdout=subprocess.PIPE, text=True)
    assert race.stdout.readline() == "inside\n", "Eve's shell could not enter her folder"
    return race


def _snapshot(folder):
    """(name, owner, mode, content) of everything in a submission folder, and the folder's own."""
    return [(str(p.relative_to(folder)), p.lstat().st_uid, p.lstat().st_mode,
             p.read_bytes() if p.is_file() else b"") for p in [folder, *sorted(folder.rglob("*"))]]


def _scores(hub):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{hub.course / 'gradebook.db'}") as gb:
        return {s: (gb.find_submission(AID, s).score, gb.find_submission(AID, s).max_score)
                for s in LEARNERS}


def _feedback_html(user):
    found = sorted((Path(pwd.getpwnam(user).pw_dir) / "nopos" / AID / "feedback").glob("*/*.html"))
    assert found, f"{user} fetched no feedback"
    return found[-1].read_text()


def test_scores_full_partial_hostile_and_rejected(hub, flow):
    assert flow["autograde"].returncode in (0, 1), flow["autograde"].stdout + flow["autograde"].stderr
    scores = _scores(hub)
    full = scores[ADA][1]
    assert scores[ADA] == (full, full), scores
    # the later of Bob's two submissions counts: the one with the mistake
    assert scores[BOB][0] == full - sum(MISTAKE.loses.values()), scores
    assert scores[EVE][0] == full, f"the hostile notebook's answers are right: {scores}"
    assert scores[DAN][0] == 0, f"a text file handed in scores nothing: {scores}"


def test_hostile_learner_got_nothing_she_tried(hub, flow):
    """Every attempt of Eve's that the file system must refuse, refused; what it lets
    her make (files in the inbound) is set aside by collect, not graded."""
    attempts = flow["attempts"]
    print("\n".join(f"{'ALLOWED' if ok else 'refused':<8} {what}" for what, ok in attempts.items()))
    made = {k for k in attempts if k.startswith(("(b)", "(b')"))}
    assert all(attempts[k] for k in made), "the forgeries could not even be made: the test tests nothing"
    assert not any(ok for k, ok in attempts.items() if k not in made), attempts
    said = flow["collect"].stdout
    for who, why in [(BOB, "made by " + EVE), (ADA, "not a folder"), (EVE, "holds a link"),
                     (EVE, "timestamp nbgrader cannot read")]:
        assert any(line.startswith(f"SET ASIDE {who}+{AID}+") and why in line for line in said.splitlines()), said
    assert flow["autograde"].stdout.count("SET ASIDE") == 0 and "set aside: 4" in flow["autograde"].stdout


def test_answers_are_published_with_the_chapters_feedback(hub, flow):
    assert flow["published"] == {"data": True, "schedule": False, "training": False, "train": True,
                                 "bench_hub": False, "claims": False, "record": False}, flow["published"]


def test_autograde_prints_every_learners_score_and_a_regrade_touches_one(hub, flow):
    before = _scores(hub)
    table = flow["autograde"].stdout
    for user in LEARNERS:
        score, full = before[user]
        assert any(line.split()[:2] == [user, f"{score:g}/{full:g}"] for line in table.splitlines()), table
    # Dan's (a text file: the cheapest to grade) alone, the class untouched
    again = hub.module("nopos.hub.instructor", "autograde", AID, "--student", DAN, "--workers", "1")
    print(f"--- regrade {DAN}\n{again.stdout}")
    assert again.returncode in (0, 1), again.stdout + again.stderr
    graded = [line.split()[0] for line in again.stdout.splitlines() if line.startswith("nph-") and " s  " in line]
    assert graded == [DAN], again.stdout
    assert _scores(hub) == before
    assert f"{BOB}+{AID}+" in again.stdout, "the report names what was set aside"


def test_exchange_and_course_have_the_modes_that_hold(hub, flow):
    from nopos.hub.server import EXCHANGE_COURSE

    grader = pwd.getpwnam("grader-nopos").pw_uid
    root = hub.exchange.stat()
    assert (root.st_mode & 0o7777, root.st_uid) == (0o1777, 0)
    for sub, mode in EXCHANGE_COURSE:
        st = (hub.exchange / "nopos" / sub).stat()
        assert (st.st_mode & 0o7777, st.st_uid) == (mode, grader), sub
    assert hub.course.stat().st_mode & 0o077 == 0


def test_hostile_code_reached_nothing_while_graded(hub, flow):
    graded = nbformat.read(hub.course / "autograded" / EVE / AID / f"{AID}.ipynb", as_version=4)
    printed = json.dumps([c.get("outputs", []) for c in graded.cells])
    assert "FOUND" not in printed, "the hostile notebook reached the gradebook or another's work"
    assert (hub.course / "gradebook.db").exists()


def test_feedback_names_the_mistake_and_holds_no_hidden_test(hub, flow):
    html = _feedback_html(BOB)
    assert MISTAKE.says.split(":")[0] in html
    assert "HIDDEN TESTS" not in html and "quiet=True" not in html
    assert "not valid notebook JSON" in _feedback_html(DAN), "the text file's feedback says why it scored 0"


def test_no_learner_reads_another_or_the_course(hub, flow):
    inbound = hub.exchange / "nopos" / "inbound"
    assert hub.as_user(EVE, "ls", inbound).returncode != 0, "inbound must not be listable"
    # nbgrader's protection: inbound/ cannot be listed and each submission's name ends
    # in a random suffix; what Eve can name (no suffix) or glob is not there for her
    bobs = next(p for p in flow["inbound"] if p.name.startswith(BOB + "+"))
    guess = inbound / bobs.name.rsplit("+", 1)[0] / f"{AID}.ipynb"
    assert not hub.can_read(EVE, guess), "Eve read Bob's submission by its guessable name"
    globbed = hub.as_user(EVE, "sh", "-c", f"cat {inbound}/{BOB}*/*.ipynb")
    assert globbed.returncode != 0 and "cells" not in globbed.stdout
    assert not hub.can_read(EVE, hub.course / "submitted" / BOB / AID / f"{AID}.ipynb")
    assert not hub.can_read(EVE, hub.course / "gradebook.db")
    assert not hub.can_read(EVE, hub.course / "source" / AID / f"{AID}.ipynb")
    assert not hub.can_read(EVE, _fetched(hub, ADA)), "Eve read Ada's notebook in Ada's home"


def test_formgrader_through_the_hub_for_the_instructor_only(hub, flow):
    status, page = hub.request("GET", "/services/nopos/formgrader", token=hub.tokens[TEACHER])
    assert status == 200 and "formgrader" in str(page).lower(), (status, str(page)[:300])
    status, _ = hub.request("GET", "/services/nopos/formgrader", token=hub.tokens[ADA])
    assert status == 403, f"a learner opened the formgrader: {status}"


def test_each_learner_server_runs_bounded_as_its_user(hub, flow):
    hub.api("POST", f"/users/{ADA}/server")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        user = hub.api("GET", f"/users/{ADA}")
        if user["servers"].get("", {}).get("ready"):
            break
        time.sleep(1)
    else:
        pytest.fail("Ada's server did not start:\n" + _log(hub))
    from nopos.hub import limits

    groups = limits.groups(ADA)
    pids = limits.members(groups)
    assert pids, "Ada's server is in no cgroup of the hub"
    uids = {Path(f"/proc/{p}").stat().st_uid for p in pids if Path(f"/proc/{p}").exists()}
    assert uids == {pwd.getpwnam(ADA).pw_uid}
    environ = Path(f"/proc/{min(pids)}/environ").read_bytes().split(b"\0")
    assert b"NOPOS_THREADS=1" in environ and b"OMP_WAIT_POLICY=PASSIVE" in environ
    assert f"NOPOS_ROOMS={hub.env['NOPOS_ROOMS']}".encode() in environ  # live rooms find their folder
    limit = (groups[0] / ("memory.max" if limits.is_v2() else "memory.limit_in_bytes")).read_text()
    assert int(limit) == 2048 * 2 ** 20
    # learner tools only: no formgrader (server or lab), no create-assignment, no news
    status, _ = hub.request("GET", f"/user/{ADA}/formgrader", token=hub.tokens[ADA])
    assert status == 404, f"a learner's own server serves formgrader: {status}"
    status, page = hub.request("GET", f"/user/{ADA}/lab", token=hub.tokens[ADA])
    config = json.loads(str(page).split('id="jupyter-config-data" type="application/json">')[1]
                        .split("</script>")[0])
    off = {k for k, v in config["disabledExtensions"].items() if v} if isinstance(
        config["disabledExtensions"], dict) else set(config["disabledExtensions"])
    assert {"@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
            "@jupyterlab/apputils-extension:announcements"} <= off, config["disabledExtensions"]
    hub.api("DELETE", f"/users/{ADA}/server")


@pytest.fixture
def chromium_page():
    """A headless Chromium tab that reaches loopback only (a classroom without internet)."""
    if not Path(CHROMIUM).exists():
        _missing(f"Chromium not found at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the Python package playwright is not installed")

    def only_local(route):
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            route.abort("internetdisconnected")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.route("**/*", only_local)
        page.set_default_timeout(60_000)  # a busy 2-core machine: generous waits, no sleeps
        page.console_errors = []
        page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
        yield page
        browser.close()


@pytest.mark.browser
def test_learner_session_in_the_browser(hub, flow, chromium_page):
    """Bob, in Chromium: the hub's login page, his server's JupyterLab, the fetched
    chapter 1 run in the course kernel, nbgrader's Assignments tab listing it."""
    from playwright.sync_api import expect

    page, notebook = chromium_page, f"nopos/{AID}/{AID}.ipynb"
    lab = f"/user/{BOB}/lab/tree/{notebook}"
    try:
        page.goto(f"{hub.url}/hub/login")
        page.fill("#username_input", BOB)
        page.fill("#password_input", "not-the-password")
        page.click("#login_submit")
        page.get_by_text("Invalid username or password").wait_for()
        page.fill("#username_input", BOB)
        page.fill("#password_input", PASSWORD)
        page.click("#login_submit")
        # the hub spawns Bob's server (LocalProcessSpawner, as nph-bob) and sends him to
        # JupyterLab (Spawner.default_url); there he opens the chapter nbgrader fetched
        page.wait_for_url(lambda url: urlparse(url).path.startswith(f"/user/{BOB}/lab"),
                          timeout=180_000)
        page.goto(hub.url + lab)
        panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").first
        panel.wait_for(timeout=180_000)
        expect(panel.locator(".jp-Toolbar-kernelName")).to_have_text("Python (nopos course)",
                                                                     timeout=60_000)
        # a cell run before the kernel is connected is silently dropped: wait for it
        page.locator(".jp-StatusBar-Widget").get_by_text("Python (nopos course) | Idle").wait_for(
            timeout=120_000)
        # the import cell: torch and nopos from the course's environment, one printed line
        cell = panel.locator(".jp-Notebook .jp-CodeCell").filter(has_text="nopos.setup(seed=0)").first
        cell.locator(".jp-InputPrompt").click()
        page.keyboard.press("Shift+Enter")
        output = cell.locator(".jp-OutputArea-output")
        output.filter(has_text="device: cpu").wait_for(timeout=120_000)
        assert "Error" not in output.first.inner_text(), output.first.inner_text()
        expect(cell.locator(".jp-InputPrompt")).to_contain_text("[1]")
        # nbgrader's lab extension: Nbgrader > Assignment List, through the hub's groups
        page.locator(".lm-MenuBar-item", has_text="Nbgrader").click()
        page.locator(".lm-Menu-item:has(.lm-Menu-itemLabel:text-is('Assignment List'))").wait_for()
        offered = page.locator(".lm-Menu-item .lm-Menu-itemLabel >> visible=true").all_inner_texts()
        assert not [t for t in offered if "Formgrader" in t or "Create" in t or "Course" in t], offered
        assert page.get_by_text("official Jupyter news").count() == 0, "the news pop-up appeared"
        page.locator(".lm-Menu-item:has(.lm-Menu-itemLabel:text-is('Assignment List'))").click()
        fetched = page.locator("#fetched_assignments_list")
        fetched.get_by_text(AID).first.wait_for(timeout=60_000)
        page.locator("#submitted_assignments_list").get_by_text(AID).first.wait_for()
        csp = [m for m in page.console_errors if "Content Security Policy" in m]
        assert not csp, csp
    except BaseException:  # what the page showed at the failure
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "FAILED-hub-learner-session.png"), full_page=True)
        raise
    finally:
        print("console errors:", page.console_errors)
        hub.request("DELETE", f"/hub/api/users/{BOB}/server")


def test_start_refuses_an_exchange_with_wrong_modes(hub):
    bad = TEST_ROOT / "bad-exchange"
    bad.mkdir()
    os.chmod(bad, 0o755)
    got = hub.module("nopos.hub.server", "start", "--no-build",
                     env={"NOPOS_HUB_PREFIX": str(TEST_ROOT / "other-prefix"), "NOPOS_EXCHANGE": str(bad)})
    assert got.returncode != 0
    assert f"chmod 1777 {bad}" in got.stderr, got.stderr
    assert oct(bad.stat().st_mode & 0o7777) == "0o755", "start must not change it"


def test_test_login_says_loudly_that_anyone_gets_in(hub):
    assert "TEST LOGIN" in hub.started.stderr and "never for a class" in hub.started.stderr


def test_test_login_refuses_a_public_address(hub):
    got = hub.module("nopos.hub.server", "start", "--no-build",
                     env={"NOPOS_HUB_PREFIX": str(TEST_ROOT / "other-prefix"), "NOPOS_HUB_IP": "0.0.0.0"})
    assert got.returncode != 0 and "the test login lets anyone in" in got.stderr, got.stderr
    assert not (TEST_ROOT / "other-prefix").exists()


def test_a_live_room_among_the_hubs_users(hub, flow):
    """A live prediction room (nopos.room) on this hub: the instructor opens one in the
    rooms folder `make hub` made; three learners commit from the hub's environment as
    their OS users; before the reveal none can list the room's entries or read another's;
    the reveal counts every commit, a learner's second commit replacing the first."""
    rooms = Path(hub.env["NOPOS_ROOMS"])
    assert rooms.stat().st_mode & 0o7777 == 0o1777 and rooms.stat().st_uid == 0

    def python(user, code):
        got = hub.as_user(user, "env", f"NOPOS_ROOMS={rooms}", hub.python, "-c", code)
        assert got.returncode == 0, f"{user}: {got.stdout}{got.stderr}"
        return got.stdout.strip()

    code = python(TEACHER, "from nopos.room.store import create; print(create('01_dataset', expected=3).code)")
    commit = ("from nopos import room; room.join({code!r}); print(room.send('ch1.loss', "
              "{{'text': 'loss?', 'kind': 'choice', 'options': ['low', 'high'], "
              "'prediction': {choice!r}, 'confidence': 0.7}}))")
    for user, choice in [(ADA, "low"), (BOB, "high"), (EVE, "high"), (BOB, "low")]:
        assert "Sent to room" in python(user, commit.format(code=code, choice=choice))
    entries = rooms / code / "entries"
    ada = [p for p in entries.iterdir() if p.stat().st_uid == pwd.getpwnam(ADA).pw_uid
           and p.name.endswith("-ch1.loss.json")]
    assert len(ada) == 1
    assert hub.as_user(EVE, "ls", entries).returncode != 0, "a learner listed the room's entries"
    assert not hub.can_read(EVE, ada[0]), "a learner read another's prediction before the reveal"
    # junk in the entries (a learner may create files there) counts nobody
    assert hub.as_user(DAN, "sh", "-c", f"echo junk > {entries}/x-ch1.loss.json").returncode == 0
    cli = [hub.python, "-m", "nopos.room"]
    status = hub.as_user(TEACHER, "env", f"NOPOS_ROOMS={rooms}", *cli, "status", code)
    assert "ch1.loss: 3 of 3 committed" in status.stdout, status.stdout + status.stderr
    refused = hub.as_user(EVE, "env", f"NOPOS_ROOMS={rooms}", *cli, "status", code)
    assert refused.returncode == 2 and "only the facilitator" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    got = hub.as_user(TEACHER, "env", f"NOPOS_ROOMS={rooms}", *cli, "reveal", code, "ch1.loss",
                      "--actual", "low", "--text", "Will the loss be low?")
    assert got.returncode == 0, got.stderr
    revealed = json.loads((rooms / code / "revealed" / "ch1.loss.json").read_text())
    assert revealed["n"] == 3 and revealed["counts"] == {"low": 2, "high": 1}, revealed
    assert revealed["text"] == "Will the loss be low?"
    assert hub.can_read(EVE, rooms / code / "revealed" / "ch1.loss.json")
