"""The hub's rules that need no running hub (fast; root for the ownership cases):
which answers the learners' environment holds, whose submission collect takes,
the exchange's modes, the private checkout, the learners' JupyterLab settings.
The same rules end to end, with real OS users: tests/test_hub.py."""
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
from nopos.grading import ownership
from nopos.hub import answers, server

SOURCE = ROOT / "nopos_reference"
root_only = pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0,
                               reason="needs root on Linux (files owned by other users)")


def test_nothing_is_published_before_a_chapters_grades_close():
    assert answers.published_modules(SOURCE, []) == []
    # the training loop imports chapter 1's data (chapter 2's schedule only inside the
    # call that needs it): published with chapter 1, for chapter 2's notebook
    assert answers.published_modules(SOURCE, ["01_dataset"]) == ["data", "train"]
    assert answers.published_modules(SOURCE, ["02_schedule"]) == ["schedule"]


def test_maintainers_modules_are_never_published():
    every = answers.published_modules(SOURCE, list(answers.answer_modules(SOURCE).values()))
    on_disk = {p.stem for p in SOURCE.glob("*.py")} - {"__init__"}
    assert set(every) == set(answers.answer_modules(SOURCE)) | set(answers.HELPERS)
    assert {"bench_hub", "claims", "record"} <= on_disk - set(every)


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
                           record=record) == ["data", "train"]


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
    assert ownership.why_not_theirs(own) is None
    moved = ownership.set_aside_foreign(inbound, "01_dataset", tmp_path / "aside")
    reasons = {r["name"]: r["reason"] for r in moved}
    assert reasons == {forged.name: "names nobody but was made by root",
                       mixed.name: "holds extra.txt, made by root, not nobody",
                       linked.name: "holds a link, 01_dataset.ipynb",
                       ghost.name: "names 'no-such-user-xyz', who has no account on this machine"}
    assert own.exists() and other.exists(), "a genuine submission, or another assignment's, was moved"
    assert sorted(p.name for p in inbound.iterdir()) == sorted([own.name, other.name])
    assert stat.S_IMODE((tmp_path / "aside").stat().st_mode) == 0o700
    assert len(ownership.set_aside_report(tmp_path / "aside", "01_dataset")) == 4
    assert ownership.set_aside_report(tmp_path / "aside", "02_schedule") == []


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
