"""The roster: validated completely before anything changes, then synced into a hub
(a stand-in for JupyterHub's REST API on 127.0.0.1, tests/fakehub.py; and, marked
slow, a real JupyterHub with its proxy when one is installed) and into a real
nbgrader gradebook in tmp."""
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time

import pytest
from nbgrader.api import Gradebook

from conftest import ROOT
from fakehub import FakeHub
from gradebooks import course_with_gradebook
from nopos.hub import roster
from nopos.hub.settings import GRADER_USER, INSTRUCTORS_GROUP, LEARNERS_GROUP

EXAMPLE = ROOT / "hub" / "roster.example.csv"


@pytest.fixture
def hub():
    with FakeHub() as fake:
        yield fake


@pytest.fixture
def course(tmp_path, tmp_path_factory):
    """A course root with a new gradebook (a copy of one the roster's code made)."""
    return course_with_gradebook(tmp_path_factory, tmp_path / "course")


def students(course):
    db = course / "gradebook.db"
    if not db.exists():
        return None
    with Gradebook(roster.gradebook_url(course)) as gb:
        return {s.id: (s.first_name, s.last_name, s.email) for s in gb.students}


def write(tmp_path, text, name="roster.csv", raw=False):
    path = tmp_path / name
    path.write_bytes(text if raw else text.encode())
    return path


def run_sync(path, hub, course, **kw):
    out = []
    roster.sync(path, roster.Hub(hub.url, hub.token), course, out=out.append, **kw)
    return "\n".join(out)


def test_the_example_roster_syncs_into_hub_and_gradebook(hub, course):
    out = run_sync(EXAMPLE, hub, course)
    assert set(hub.users) == {"ada", "alan", "grace", "kathleen"}
    assert hub.groups == {LEARNERS_GROUP: {"ada", "alan", "grace"}, INSTRUCTORS_GROUP: {"kathleen"}}
    # learners only, names split for nbgrader ("Hopper, Grace" is last, first)
    assert students(course) == {"ada": ("Ada", "Lovelace", "ada@example.org"),
                                  "alan": ("Alan", "Turing", None),
                                  "grace": ("Grace", "Hopper", "grace@example.org")}
    assert "hub: add user kathleen (instructor)" in out
    assert "gradebook: add student grace (Hopper, Grace)" in out


def test_a_second_sync_changes_nothing(hub, course):
    run_sync(EXAMPLE, hub, course)
    before = len(hub.writes())
    out = run_sync(EXAMPLE, hub, course)
    assert "nothing to change" in out
    assert len(hub.writes()) == before


def test_dry_run_prints_the_changes_and_makes_none(hub, tmp_path):
    hub.users["ada"] = {"admin": False}
    out = run_sync(EXAMPLE, hub, tmp_path, dry_run=True)
    assert "would hub: add user alan (learner)" in out
    assert "would hub: add user ada" not in out  # already there
    assert f"would hub: create group {LEARNERS_GROUP}" in out
    assert "would gradebook: add student ada (Ada Lovelace)" in out
    assert hub.writes() == [] and hub.groups == {} and students(tmp_path) is None


def test_changed_roles_and_names_are_updated(hub, tmp_path, course):
    run_sync(EXAMPLE, hub, course)
    changed = EXAMPLE.read_text().replace("alan,Alan Turing,learner", "alan,Alan M. Turing,learner") \
        .replace("kathleen,Kathleen Booth,instructor", "kathleen,Kathleen Booth,learner")
    out = run_sync(write(tmp_path, changed), hub, course)
    assert hub.groups[LEARNERS_GROUP] == {"ada", "alan", "grace", "kathleen"}
    assert hub.groups[INSTRUCTORS_GROUP] == set()
    assert students(course)["alan"] == ("Alan M.", "Turing", None)
    assert "gradebook: update student alan (Alan Turing -> Alan M. Turing)" in out
    assert f"take kathleen out of group {INSTRUCTORS_GROUP} (role changed)" in out


def test_nobody_is_removed_without_remove_missing_and_grades_never_are(hub, tmp_path, course):
    run_sync(EXAMPLE, hub, course)
    with Gradebook(roster.gradebook_url(course)) as gb:  # grace has handed something in
        gb.add_assignment("01_dataset")
        gb.add_submission("01_dataset", "grace")
    hub.users["other"] = {"admin": False}  # a user of the hub outside the course
    hub.users[GRADER_USER] = {"admin": False}  # the formgrader's account, in no roster
    hub.groups[INSTRUCTORS_GROUP].add(GRADER_USER)
    fewer = "id,name,role\nada,Ada Lovelace,learner\n"
    run_sync(write(tmp_path, fewer), hub, course)
    assert set(hub.users) == {"ada", "alan", "grace", "kathleen", "other", GRADER_USER}
    assert set(students(course)) == {"ada", "alan", "grace"}

    out = run_sync(write(tmp_path, fewer), hub, course, remove_missing=True)
    assert set(hub.users) == {"ada", "other", GRADER_USER}
    assert hub.groups == {LEARNERS_GROUP: {"ada"}, INSTRUCTORS_GROUP: {GRADER_USER}}
    assert set(students(course)) == {"ada", "grace"}  # grace keeps her submission
    assert "keep student grace" in out and "nbgrader db student remove grace --force" in out


BAD = {  # roster text -> what the message must say
    "duplicate id": ("id,name,role\nada,Ada,learner\nbob,Bob,learner\nada,Ada L,instructor\n",
                     ["line 4: duplicate id 'ada', already on line 2", "list each person once"]),
    "malformed id": ("id,name,role\nada,Ada,learner\nBob Smith,Bob,learner\n",
                     ["line 3: id 'Bob Smith' is not a valid user name", "lower-case letters"]),
    "upper-case id": ("id,name,role\nAda,Ada,learner\n", ["line 2:", "(perhaps 'ada')"]),
    "path in id": ("id,name,role\n../x,X,learner\n", ["line 2: id '../x' is not a valid user name"]),
    "system account": ("id,name,role\nroot,Root,instructor\n",
                       ["line 2: id 'root' is a system account", "choose another id"]),
    "unknown role": ("id,name,role\nada,Ada,student\n",
                     ["line 2: unknown role 'student'", "use `learner` or `instructor`",
                      "(for 'student', `learner`)"]),
    "missing column": ("id,name\nada,Ada\n",
                       ["line 1: the header has no column 'role'", "`id,name,role`"]),
    "empty file": ("", ["the file is empty", "`id,name,role`"]),
    "only a header": ("id,name,role\n", ["only a header, nobody listed"]),
    "short line": ("id,name,role\nada,Ada\n", ["line 2: 2 field(s) where the header has 3"]),
    "empty name": ("id,name,role\nada,,learner\n", ["line 2: empty name for 'ada'"]),
    "bad email": ("id,name,role,email\nada,Ada,learner,ada-at-home\n",
                  ["line 2: email 'ada-at-home' is not an address"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_roster_is_refused_with_its_line_and_changes_nothing(case, hub, tmp_path):
    hub.users["ada"] = {"admin": False}
    text, messages = BAD[case]
    path = write(tmp_path, text)
    with pytest.raises(roster.RosterError) as err:
        run_sync(path, hub, tmp_path)
    for message in messages:
        assert message in str(err.value)
    assert "nothing was changed" in str(err.value)
    assert hub.requests == []  # not even read: validation comes first
    assert students(tmp_path) is None and set(hub.users) == {"ada"}


def test_every_problem_is_listed_at_once(tmp_path):
    path = write(tmp_path, "id,name,role\nAda,Ada,learner\nbob,Bob,teacher\nbob,Bob,learner\n")
    with pytest.raises(roster.RosterError) as err:
        roster.read_roster(path)
    assert len(err.value.problems) == 3


def test_spreadsheet_bom_crlf_comments_and_quoted_commas_are_fine(hub, tmp_path, course):
    text = "\ufeff# exported from the registry\r\nID, Name ,Role\r\n\r\nada,\"Lovelace, Ada\",Learner\r\n"
    run_sync(write(tmp_path, text.encode("utf-8"), raw=True), hub, course)
    assert students(course) == {"ada": ("Ada", "Lovelace", None)}
    assert hub.groups[LEARNERS_GROUP] == {"ada"}


def test_many_users_are_read_page_by_page(hub, tmp_path):
    for i in range(7):  # the fake answers 3 per page
        hub.users[f"u{i}"] = {"admin": False}
    hub.users["ada"] = {"admin": False}
    run_sync(write(tmp_path, "id,name,role\nada,Ada L,learner\n"), hub, None)
    assert not any(r[:2] == ("POST", "/hub/api/users/ada") for r in hub.requests)
    assert sum(r[:2] == ("GET", "/hub/api/users") for r in hub.requests) >= 3


def test_a_token_without_the_scopes_gets_a_clear_error(hub, tmp_path):
    with pytest.raises(RuntimeError, match="403.*admin:users and admin:groups"):
        roster.sync(EXAMPLE, roster.Hub(hub.url, "wrong"), None, out=lambda _: None)


def test_the_command_line(hub, tmp_path, course, monkeypatch, capsys):
    monkeypatch.setenv("JUPYTERHUB_API_URL", hub.url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", hub.token)
    assert roster.main(["check", str(EXAMPLE)]) == 0
    assert roster.main(["sync", str(EXAMPLE), "--course-root", str(course)]) == 0
    assert "done:" in capsys.readouterr().out and len(hub.users) == 4
    bad = write(tmp_path, "id,name,role\nada,Ada,wizard\n", name="bad.csv")
    assert roster.main(["sync", str(bad), "--course-root", str(course)]) == 2
    assert "line 2: unknown role 'wizard'" in capsys.readouterr().err
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN")
    monkeypatch.setattr(roster, "TOKENS", str(tmp_path / "no-hub-here.json"))
    with pytest.raises(SystemExit):  # no token: argparse says what to pass
        roster.main(["sync", str(EXAMPLE), "--course-root", str(course)])
    assert "JUPYTERHUB_API_TOKEN or --token-file" in capsys.readouterr().err
    # on the hub's machine `make roster` needs nothing exported: the hub's admin-service token
    (tmp_path / "no-hub-here.json").write_text(json.dumps({"nopos-admin": hub.token, "nopos": "x"}))
    assert roster.main(["sync", str(EXAMPLE), "--course-root", str(course)]) == 0
    assert "nothing to change" in capsys.readouterr().out
    token = write(tmp_path, hub.token + "\n", name="token")
    assert roster.main(["sync", str(EXAMPLE), "--course-root", str(course),
                        "--token-file", str(token)]) == 0
    assert "nothing to change" in capsys.readouterr().out


# ----------------------------------------------------------------------------- a real hub
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _executable(env, name):
    found = os.environ.get(env) or shutil.which(name)
    return found if found and os.access(found, os.X_OK) else None


@pytest.fixture(scope="module")
def real_hub(tmp_path_factory):
    """A real JupyterHub (and its proxy) on 127.0.0.1 with a roster service token, for
    this module only; always stopped. Where they are: NOPOS_JUPYTERHUB and NOPOS_CHP
    (executables), else on PATH."""
    hub_bin, chp = _executable("NOPOS_JUPYTERHUB", "jupyterhub"), _executable("NOPOS_CHP", "configurable-http-proxy")
    if not hub_bin or not chp:
        pytest.skip("no jupyterhub / configurable-http-proxy (set NOPOS_JUPYTERHUB and NOPOS_CHP)")
    home = tmp_path_factory.mktemp("hub")
    token, port = secrets.token_hex(16), _free_port()
    (home / "jupyterhub_config.py").write_text(f"""
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{_free_port()}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{_free_port()}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.db_url = "sqlite:///{home}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{home}/cookie_secret"
c.JupyterHub.pid_file = "{home}/hub.pid"
c.JupyterHub.services = [{{"name": "roster", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "roster", "scopes": ["admin:users", "admin:groups"],
                             "services": ["roster"]}}]
""")
    log = open(home / "hub.log", "wb")
    proc = subprocess.Popen([hub_bin, "-f", str(home / "jupyterhub_config.py")], cwd=home,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/hub/api"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                roster.Hub(url, token).call("GET", "/")
                break
            except RuntimeError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the hub did not start:\n" + (home / "hub.log").read_text()[-3000:])
                time.sleep(0.5)
        yield roster.Hub(url, token)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the hub and its proxy
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.mark.slow
def test_the_roster_against_a_real_jupyterhub(real_hub, course, tmp_path):
    out = []
    roster.sync(EXAMPLE, real_hub, course, out=out.append)
    assert set(real_hub.group(LEARNERS_GROUP)["users"]) == {"ada", "alan", "grace"}
    assert real_hub.group(INSTRUCTORS_GROUP)["users"] == ["kathleen"]
    assert set(students(course)) == {"ada", "alan", "grace"}
    out.clear()
    roster.sync(EXAMPLE, real_hub, course, out=out.append)
    assert "nothing to change" in "\n".join(out)
    fewer = write(tmp_path, "id,name,role\nada,Ada Lovelace,learner\nkathleen,K B,instructor\n")
    roster.sync(fewer, real_hub, None, remove_missing=True, out=out.append)
    assert set(real_hub.users()) == {"ada", "kathleen"}
    assert real_hub.group(LEARNERS_GROUP)["users"] == ["ada"]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("useradd"), reason="needs root and useradd")
def test_os_accounts_are_created_with_private_homes_and_never_removed(hub, course, tmp_path):
    """Real OS users (one server: LocalProcessSpawner runs everyone as themselves);
    removed again by the test, even when it fails."""
    ids = [f"hubops-{secrets.token_hex(3)}" for _ in range(2)]
    other = f"hubops-{secrets.token_hex(3)}"  # the only one left on the second roster
    path = write(tmp_path, "id,name,role\n" + "".join(f"{i},Test {i},learner\n" for i in ids))
    try:
        out = run_sync(path, hub, course, os_users=True)
        for uid in ids:
            home = pwd.getpwnam(uid).pw_dir
            assert os.stat(home).st_mode & 0o777 == 0o700  # other learners cannot look in
            assert f"os: create account {uid}" in out
        assert "os: create" not in run_sync(path, hub, course, os_users=True)  # idempotent
        run_sync(write(tmp_path, f"id,name,role\n{other},Other,learner\n"), hub, course,
                 os_users=True, remove_missing=True)
        assert all(pwd.getpwnam(uid) for uid in ids)  # an account holds work: never removed
    finally:
        for uid in [*ids, other]:
            subprocess.run(["userdel", "--remove", uid], capture_output=True)
