"""The hub's rules that need no running hub (fast; root for the ownership cases):
which answers the learners' environment holds, whose submission collect takes,
the exchange's modes, the private checkout, the learners' JupyterLab settings.
The same rules end to end, with real OS users: tests/test_hub.py."""
import errno
import json
import os
import pwd
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import ROOT
from nopos.grading import course_view, ownership
from nopos.hub import answers, server

SOURCE = ROOT / "nopos_reference"
root_only = pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0,
                               reason="needs root on Linux (files owned by other users)")


def test_nothing_is_published_before_a_chapters_grades_close():
    assert answers.published_modules(SOURCE, []) == []
    # the training loop imports chapter 1's data (chapter 2's schedule only inside the
    # call that needs it): published with chapter 1, for chapter 2's notebook
    # (so are the causal experiments' plumbing, which chapters 4 and 5 import)
    assert answers.published_modules(SOURCE, ["01_dataset"]) == ["causal", "data", "train"]
    assert answers.published_modules(SOURCE, ["02_schedule"]) == ["schedule"]


def test_the_package_holds_answers_and_learners_helpers_only():
    every = answers.published_modules(SOURCE, list(answers.answer_modules(SOURCE).values()))
    on_disk = {p.stem for p in SOURCE.glob("*.py")} - {"__init__"}
    declared = set(answers.answer_modules(SOURCE)) | set(answers.helper_modules(SOURCE))
    assert set(every) == declared
    assert on_disk == declared, "a module that is neither an answer nor a learner's helper " \
                                f"belongs in tools/ (maintainers'): {on_disk - declared}"


def test_a_helper_holds_no_graded_answer():
    """Helpers are published once the answers they import are (maybe chapter 1's), while
    later chapters' grades are open: every graded exercise's reference must live in its
    own chapter's answer modules, and no helper may define a function of that name."""
    import ast
    from tools.build_course import masters, parse_master

    owners = answers.answer_modules(SOURCE)
    helpers = answers.helper_modules(SOURCE)
    defined = {h: {n.name for n in ast.walk(ast.parse((SOURCE / f"{h}.py").read_text()))
                   if isinstance(n, ast.FunctionDef)} for h in helpers}
    wrong = []
    for master in masters():
        meta, cells = parse_master(master)
        for cell in cells:
            spec = cell["attrs"].get("from")
            if not spec:
                continue
            module, _, fn = spec.partition(":")
            name = module.split(".")[-1]
            if owners.get(name) != meta["id"]:
                wrong.append(f"{meta['id']}: {spec} is not in that chapter's answer modules")
            wrong += [f"{meta['id']}: helper {h} defines {fn}" for h in helpers if fn in defined[h]]
    assert not wrong, wrong


def test_a_helper_holds_only_what_learners_run():
    """A helper is published early, so each function in it must be one a chapter's notebook
    or the learner's package calls: an experiment only the claims registry runs may hold a
    later chapter's answer under another name, and belongs in tools/ (maintainers')."""
    import ast
    used = " ".join(p.read_text() for p in [*(ROOT / "chapters").glob("*.md"), *(ROOT / "nopos").rglob("*.py")])
    idle = []
    for helper in answers.helper_modules(SOURCE):
        tree = ast.parse((SOURCE / f"{helper}.py").read_text())
        public = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
        called_inside = {c.func.id for c in ast.walk(tree)
                         if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
        idle += [f"{helper}.{fn}" for fn in public
                 if fn not in called_inside and f"{helper}.{fn}" not in used and f"import {fn}" not in used
                 and not any(f"from nopos_reference.{helper} import" in line and fn in line
                             for line in used.split("\n"))]
    assert not idle, f"helpers no notebook calls (move them to tools/): {idle}"


def test_a_module_that_imports_an_answer_needs_that_chapter():
    # mechanism (chapter 5) imports chapter 1's data
    assert answers.chapters_needed(SOURCE, "mechanism") >= {"05_mechanism", "01_dataset"}


@root_only
def test_publish_lays_out_only_the_released(tmp_path):
    site = tmp_path / "env" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    answers.install_private(ROOT, answers_dir=tmp_path / "answers", env=tmp_path / "env")
    assert stat.S_IMODE((tmp_path / "answers").stat().st_mode) == 0o700
    assert (site / answers.PTH).read_text().startswith("import os, sys")
    record = tmp_path / "published.json"
    got = answers.publish([], answers_dir=tmp_path / "answers", env=tmp_path / "env", record=record)
    assert got == [] and sorted(p.name for p in (site / "nopos_reference").glob("*.py")) == ["__init__.py"]
    answers.publish(["01_dataset"], answers_dir=tmp_path / "answers", env=tmp_path / "env", record=record)
    assert (site / "nopos_reference" / "data.py").exists()
    assert not (site / "nopos_reference" / "schedule.py").exists()
    assert json.loads(record.read_text()) == ["01_dataset"]
    # a restart lays out what was recorded, no more
    assert answers.publish(None, answers_dir=tmp_path / "answers", env=tmp_path / "env",
                           record=record) == ["causal", "data", "train"]



def test_a_cluster_publishes_into_its_volume(tmp_path, capsys):
    """Kubernetes: the grader's pod lays the published answers into the volume learner
    pods mount read-only (hub/kubernetes/); the chapters add up across calls."""
    volume = tmp_path / "published"
    with pytest.raises(SystemExit, match="is not a folder"):
        answers.main(["--into", str(volume), "01_dataset"])
    volume.mkdir()
    with pytest.raises(SystemExit, match="no chapter 07_nothing"):
        answers.main(["--into", str(volume), "07_nothing"])
    answers.main(["--into", str(volume), "01_dataset"])
    answers.main(["--into", str(volume), "02_schedule"])
    assert "chapters 01_dataset, 02_schedule" in capsys.readouterr().out
    assert json.loads((volume / "published.json").read_text()) == ["01_dataset", "02_schedule"]
    assert sorted(p.stem for p in (volume / "nopos_reference").glob("*.py")) == \
        ["__init__", "causal", "data", "schedule", "train"]
    assert sorted(p.name for p in volume.iterdir()) == ["nopos_reference", "published.json"]
    answers.main(["--into", str(volume), "--closed"])  # for the grading kernels' view
    assert capsys.readouterr().out == "01_dataset,02_schedule\n"
    # a learner's python, with only the volume on its path, runs chapter 2's imports
    import subprocess
    code = "from nopos_reference.train import train; from nopos_reference.data import make_batch"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": f"{volume}{os.pathsep}{ROOT}",
                              "PYTHONNOUSERSITE": "1"}, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-500:]


def _submission(inbound, name, owner, files=None):
    folder = inbound / name
    folder.mkdir()
    for fname, content in ({"01_dataset.ipynb": "{}"} if files is None else files).items():
        (folder / fname).write_text(content)
    for path in [folder, *folder.iterdir()]:
        os.lchown(path, owner, -1)
    return folder


@root_only
def test_collect_sets_aside_what_its_learner_did_not_make(tmp_path):
    nobody = pwd.getpwnam("nobody").pw_uid
    inbound = tmp_path / "inbound"
    inbound.mkdir()
    own = _submission(inbound, "nobody+01_dataset+2026-01-01 10:00:00.000000 UTC+a", nobody)
    forged = _submission(inbound, "nobody+01_dataset+2026-01-02 10:00:00.000000 UTC+b", 0)
    mixed = _submission(inbound, "nobody+01_dataset+2026-01-03 10:00:00.000000 UTC+c", nobody)
    (mixed / "extra.txt").write_text("root's")  # a file someone else put in
    linked = _submission(inbound, "nobody+01_dataset+2026-01-04 10:00:00.000000 UTC+d", nobody, {})
    os.symlink("/etc/shadow", linked / "01_dataset.ipynb")
    os.lchown(linked / "01_dataset.ipynb", nobody, -1)
    ghost = _submission(inbound, "no-such-user-xyz+01_dataset+2026-01-01 10:00:00.000000 UTC+e", nobody)
    other = _submission(inbound, "nobody+02_schedule+2026-01-05 10:00:00.000000 UTC+f", 0)
    moved = ownership.screen(inbound, "01_dataset", tmp_path / "aside")
    reasons = {r["name"]: r["reason"] for r in moved}
    assert reasons == {forged.name: "names nobody but the folder was made by root",
                       mixed.name: "names nobody but extra.txt was made by root",
                       linked.name: "holds a link, 01_dataset.ipynb",
                       ghost.name: "names 'no-such-user-xyz', who has no account on this machine"}
    assert own.exists() and other.exists(), "a genuine submission, or another assignment's, was moved"
    assert sorted(p.name for p in inbound.iterdir()) == sorted([own.name, other.name])
    assert stat.S_IMODE((tmp_path / "aside").stat().st_mode) == 0o700
    assert len(ownership.set_aside_report(tmp_path / "aside", "01_dataset")) == 4
    assert ownership.set_aside_report(tmp_path / "aside", "02_schedule") == []


def _as_learner_inside(folder, uid, command):
    """A learner's process whose working directory is inside `folder` (entered before
    collect starts); on a word from the pipe it runs `command` (a function, as that
    learner) and reports the errno it met (0: it worked)."""
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the learner
        try:
            os.chdir(folder)
            os.setgid(pwd.getpwuid(uid).pw_gid)
            os.setgroups([])
            os.setuid(uid)
            os.read(go_r, 1)
            try:
                command()
                code = 0
            except OSError as err:
                code = err.errno
            os.write(out_w, str(code).encode())
        finally:
            os._exit(0)

    def go():
        os.write(go_w, b"x")
        code = int(os.read(out_r, 16) or b"-1")
        os.waitpid(pid, 0)
        return code
    return go


def _swap_for_a_link():
    """The attack: her own notebook replaced by a link to a classmate's."""
    os.unlink("01_dataset.ipynb")
    os.symlink("/etc/shadow", "01_dataset.ipynb")


@root_only
def test_a_frozen_submission_cannot_be_swapped_for_a_link(tmp_path):
    nobody = pwd.getpwnam("nobody").pw_uid
    inbound = tmp_path / "inbound"
    inbound.mkdir()
    os.chmod(tmp_path, 0o755)
    own = _submission(inbound, "nobody+01_dataset+2026-01-01 10:00:00.000000 UTC+a", nobody,
                      {"01_dataset.ipynb": "her own work"})
    # the control: while the folder is hers, the swap works
    spare = _submission(inbound, "nobody+02_schedule+2026-01-01 10:00:00.000000 UTC+a", nobody,
                        {"01_dataset.ipynb": "x"})
    assert _as_learner_inside(spare, nobody, _swap_for_a_link)() == 0
    # the race: her shell sits inside her folder; she swaps between screening and copying
    swap = _as_learner_inside(own, nobody, _swap_for_a_link)
    assert ownership.screen(inbound, "01_dataset", tmp_path / "aside") == []
    assert swap() == errno.EACCES, "the learner changed a folder after it was screened"
    copy = tmp_path / "submitted"
    shutil.copytree(own, copy)  # what nbgrader's collect does next
    assert (copy / "01_dataset.ipynb").read_text() == "her own work"
    assert own.stat().st_uid == 0 and stat.S_IMODE(own.stat().st_mode) == 0o750
    # a later collect keeps the owners it recorded: still hers, not set aside as root's
    assert ownership.screen(inbound, "01_dataset", tmp_path / "aside") == []


@root_only
def test_a_folder_nbgrader_cannot_parse_or_read_is_set_aside_not_fatal(tmp_path):
    nobody = pwd.getpwnam("nobody").pw_uid
    grader_gid = 12345
    inbound = tmp_path / "inbound"
    inbound.mkdir()
    bad_time = _submission(inbound, "nobody+01_dataset+not-a-time+x", nobody)
    closed = _submission(inbound, "nobody+01_dataset+2026-01-02 10:00:00.000000 UTC+b", nobody)
    for path in [closed, *closed.iterdir()]:
        os.chmod(path, 0o700 if path.is_dir() else 0o600)  # the grader could not read it
    moved = ownership.screen(inbound, "01_dataset", tmp_path / "aside", gid=grader_gid)
    assert [r["name"] for r in moved] == [bad_time.name]
    assert "timestamp nbgrader cannot read, 'not-a-time'" in moved[0]["reason"]
    # the closed one is now root's, and the grader's group reads it
    for path in [closed, *closed.iterdir()]:
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (0, grader_gid)
        assert stat.S_IMODE(st.st_mode) == (0o750 if path.is_dir() else 0o640)
    # what is left is what nbgrader's collect parses
    from nbgrader.exchange.default.collect import ExchangeCollect
    for path in inbound.iterdir():
        ExchangeCollect._path_to_record(None, str(path))


def test_a_chapter_one_grading_kernel_sees_no_later_answer(tmp_path):
    """Chapter 1's feedback is released while chapter 2 is graded: chapter 1's kernel
    must not read chapter 2's answers (or any other), published or not."""
    every = list(answers.answer_modules(SOURCE).values())
    course_view.kernel_packages("01_dataset", tmp_path, closed=every)
    held = {p.stem for p in (tmp_path / "nopos_reference").glob("*.py")}
    assert not held & set(answers.answer_modules(SOURCE)), held
    # chapter 3, with chapter 1 closed and chapter 2 still open: chapter 1's answers only
    course_view.kernel_packages("03_training", tmp_path / "c3", closed=["01_dataset"])
    held = {p.stem for p in (tmp_path / "c3" / "nopos_reference").glob("*.py")}
    assert held & set(answers.answer_modules(SOURCE)) == {"data"}


@root_only
def test_exchange_modes_made_checked_and_refused_with_the_fix(tmp_path):
    root = tmp_path / "exchange"
    server.lay_out_exchange(root, "c1", user="nobody")
    nobody = pwd.getpwnam("nobody").pw_uid
    assert (stat.S_IMODE(root.stat().st_mode), root.stat().st_uid) == (0o1777, 0)
    for sub, mode in server.EXCHANGE_COURSE:
        st = (root / "c1" / sub).stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (mode, nobody)
    server.lay_out_exchange(root, "c1", user="nobody")  # as made: accepted
    os.chmod(root / "c1" / "inbound", 0o2733)  # nbgrader's default: no sticky bit
    with pytest.raises(server.SetupError, match=r"chmod 3733 .*inbound"):
        server.lay_out_exchange(root, "c1", user="nobody")
    squatted = tmp_path / "exchange2"
    squatted.mkdir(mode=0o1777)
    os.chmod(squatted, 0o1777)
    (squatted / "c1").mkdir()
    os.chown(squatted / "c1", 65533 if nobody != 65533 else 65532, -1)  # made by a learner
    with pytest.raises(server.SetupError, match=r"look at what is in it, then `rm -r"):
        server.lay_out_exchange(squatted, "c1", user="nobody")


@root_only
def test_a_checkout_others_can_enter_is_closed(capsys, monkeypatch):
    monkeypatch.delenv("NOPOS_HUB_OPEN_CHECKOUT", raising=False)
    top = Path(tempfile.mkdtemp(dir="/tmp"))  # /tmp: every user may enter it
    try:
        repo = top / "clone"
        repo.mkdir()
        for path in (top, repo):
            os.chmod(path, 0o755)
        assert server.private_checkout(repo) is True
        assert stat.S_IMODE(repo.stat().st_mode) == 0o750
        assert "solutions" in capsys.readouterr().err
        os.chmod(top, 0o750)  # a private folder on the way: nothing to change
        os.chmod(repo, 0o755)
        assert server.private_checkout(repo) is False and stat.S_IMODE(repo.stat().st_mode) == 0o755
    finally:
        shutil.rmtree(top)


def test_learners_lab_hides_the_graders_tools_and_the_news(tmp_path):
    folder = server.write_learner_config(tmp_path / "learner")
    page = json.loads((folder / "labconfig" / "page_config.json").read_text())["disabledExtensions"]
    assert page["@jupyter/nbgrader:formgrader"] and page["@jupyter/nbgrader:create-assignment"]
    assert page["@jupyterlab/apputils-extension:announcements"]
    assert "@jupyter/nbgrader:assignment-list" not in page
    ext = json.loads((folder / "jupyter_server_config.json").read_text())["ServerApp"]["jpserver_extensions"]
    assert ext == {"nbgrader.server_extensions.formgrader": False,
                   "nbgrader.server_extensions.course_list": False}


LOAD_CONFIG = """
import json, pwd, sys, types
real = pwd.getpwnam
pwd.getpwnam = lambda n: real("root") if n.startswith("grader-") else real(n)
spawner = types.ModuleType("jupyterhub.spawner")
spawner.LocalProcessSpawner = type("LocalProcessSpawner", (), {})  # only subclassed here
sys.modules.update({"jupyterhub": types.ModuleType("jupyterhub"), "jupyterhub.spawner": spawner})
from traitlets.config.loader import PyFileConfigLoader
try:
    c = PyFileConfigLoader(sys.argv[1]).load_config()
except SystemExit as refused:
    print(json.dumps({"refused": str(refused)})); raise SystemExit(0)
out = {"class": c.JupyterHub.authenticator_class, "hook": "post_auth_hook" in c.Authenticator,
       "admins": sorted(c.Authenticator.admin_users), "memory": c.Spawner.mem_limit,
       "sections": {k: dict(v) for k, v in c.items() if k.endswith("Authenticator") and k != "Authenticator"},
       "extra": c.JupyterHub.get("extra_setting")}
print(json.dumps(out, default=sorted))
"""


@pytest.mark.parametrize("toml,expect", [
    ('[login]\nmethod = "pam"\nadmins = ["ada"]\n[limits]\nmemory_mb = 2048\n',
     {"class": "pam", "hook": False, "admins": ["ada"], "memory": "2048M"}),
    ('[login]\nmethod = "lti13"\n[login.options]\nissuer = "https://lms.example"\nclient_id = ["1", "2"]\n',
     {"class": "ltiauthenticator.lti13.auth.LTI13Authenticator", "hook": True,
      "sections": {"LTI13Authenticator": {"issuer": "https://lms.example", "client_id": ["1", "2"],
                                          "username_key": "email"}}}),
    ('[login]\nmethod = "oauth"\n[login.options]\nclient_id = "x"\nusername_claim = "sub"\n',
     {"class": "generic-oauth", "hook": True,  # the course fixes the claim that names an OS user
      "sections": {"GenericOAuthenticator": {"client_id": "x", "username_claim": "preferred_username",
                                             "allow_existing_users": True}}}),
    ('[login]\nmethod = "dummy"\n[login.options]\npassword = "s3cret"\n',
     {"class": "dummy", "sections": {"DummyAuthenticator": {"password": "s3cret"}}}),
    ('[login]\nmethod = "ldap"\n', {"refused": "login method 'ldap'"}),
])
def test_the_login_is_settings_an_instructor_edits(tmp_path, toml, expect):
    """hub/jupyterhub_config.py reads the method, its options, admins and limits from the
    instructor's hub.toml (no per-method code), then the instructor's own config files."""
    etc, state = tmp_path / "etc", tmp_path / "state"
    (etc / "jupyterhub_config.d").mkdir(parents=True)
    state.mkdir()
    (etc / "hub.toml").write_text(toml)
    (etc / "jupyterhub_config.d" / "50-mine.py").write_text("c.JupyterHub.extra_setting = 'kept'\n")
    (state / "tokens.json").write_text('{"nopos": "a", "nopos-admin": "b"}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOPOS_")}
    env.update(NOPOS_HUB_PREFIX=str(tmp_path), PYTHONPATH=str(ROOT))
    import subprocess
    done = subprocess.run([sys.executable, "-c", LOAD_CONFIG, str(ROOT / "hub" / "jupyterhub_config.py")],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    if "refused" in expect:
        assert expect["refused"] in got["refused"]
        return
    for key, value in expect.items():
        if key == "sections":
            for section, traits in value.items():
                assert got["sections"][section] == traits, got["sections"]
        else:
            assert got[key] == value, (key, got)
    assert got["extra"] == "kept", "the instructor's jupyterhub_config.d is read"


def test_a_notebook_with_a_timed_out_cell_is_flagged_for_a_regrade(tmp_path):
    from nopos.hub import instructor

    folder = tmp_path / "autograded" / "bob" / "01_dataset"
    folder.mkdir(parents=True)
    error = {"output_type": "error", "ename": "CellTimeoutError", "evalue": "ran past", "traceback": []}
    cells = [{"cell_type": "code", "outputs": []}, {"cell_type": "code", "outputs": [error]}]
    (folder / "01_dataset.ipynb").write_text(json.dumps({"cells": cells}))
    assert instructor.timed_out_cells("bob", "01_dataset", root=tmp_path) == [1]
    assert instructor.timed_out_cells("ada", "01_dataset", root=tmp_path) == []
