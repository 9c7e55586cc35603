"""A chapter's grading kernel gets the course packages without that chapter's answers
nor any later chapter's (whose grades may still be open)."""
import subprocess
import sys
import sysconfig

import pytest

from conftest import chapters
from nopos.grading import course_view
from nopos_reference import ANSWERS


def test_every_chapter_names_its_answer_modules():
    assert set(ANSWERS) == set(chapters())
    ref = course_view.package_dir("nopos_reference")
    for modules in ANSWERS.values():
        assert all((ref / f"{m}.py").is_file() for m in modules)


@pytest.mark.parametrize("aid", chapters())
def test_the_copy_leaves_out_the_chapters_answers_and_the_checks(tmp_path, aid):
    mounts = dict(course_view.kernel_packages(aid, tmp_path))
    copy = {src.rsplit("/", 1)[-1]: src for src in mounts}
    ref, nopos = tmp_path / "nopos_reference", tmp_path / "nopos"
    order = list(ANSWERS)
    unseen = [m for a in order[order.index(aid):] for m in ANSWERS[a]]
    for m in unseen:
        assert not (ref / f"{m}.py").exists()
        assert not list(ref.rglob(f"{m}.*.pyc"))
    earlier = {m for a in order[:order.index(aid)] for m in ANSWERS[a]}
    assert all((ref / f"{m}.py").exists() for m in earlier)
    assert not list((nopos / "checks").glob("ch*.py")) and (nopos / "checks" / "__init__.py").exists()
    assert (nopos / "data" / "reference.pt").exists() and set(copy) == {"nopos", "nopos_reference"}
    # in the copy, the chapter's answers cannot be imported, the earlier ones can
    # as in the kernel, where the copy is mounted over the real package: nothing but
    # the copy and the installed libraries (no .pth, so no editable-install finder)
    probe = ("import importlib, sys\n"
             f"sys.path.insert(0, {str(tmp_path)!r}); sys.path.append({sysconfig.get_paths()['purelib']!r})\n"
             "import nopos_reference\n"
             f"assert nopos_reference.__file__.startswith({str(tmp_path)!r})\n"
             f"for m in {unseen!r}:\n"
             "    try:\n        importlib.import_module('nopos_reference.' + m)\n"
             "    except ImportError:\n        pass\n"
             "    else:\n        raise SystemExit('reachable: ' + m)\n"
             # what the kernel does need still imports (the same files in every chapter's
             # copy: imported in one, 4 s of torch and TransformerLens)
             + ("import nopos.model, nopos.grading.transport\n" if aid == chapters()[0] else ""))
    result = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr + result.stdout


def test_chapter_one_sees_no_answer_and_no_helper_that_needs_one(tmp_path):
    course_view.kernel_packages("01_dataset", tmp_path)
    ref = tmp_path / "nopos_reference"
    held = {p.stem for p in ref.glob("*.py")} - {"__init__"}
    answers = {m for ms in ANSWERS.values() for m in ms}
    assert not held & answers, held & answers


def test_on_a_hub_only_closed_earlier_chapters_are_seen(tmp_path, monkeypatch):
    order = list(ANSWERS)
    # chapter 4 graded while chapter 2's grades are still open
    monkeypatch.setenv(course_view.CHAPTERS_VAR, order[0])
    assert course_view.visible_chapters(order[3]) == {order[0]}
    hidden = course_view.hidden_files(order[3])["nopos_reference"]
    assert {f"{m}.py" for m in ANSWERS[order[1]] + ANSWERS[order[2]]} <= hidden
    assert not {f"{m}.py" for m in ANSWERS[order[0]]} & hidden
    # a closed chapter later than the one graded stays hidden
    monkeypatch.setenv(course_view.CHAPTERS_VAR, ",".join(order))
    assert course_view.visible_chapters(order[0]) == set()


def test_before_chapter_3_closes_chapter_2_says_it_cannot_train(tmp_path):
    """A class server while chapter 2 is open: the learner's environment has the whole
    `nopos` and chapter 1's answers, not the training step (chapter 3's answer). The
    loop says why it cannot train, the notebook shows the recorded runs, and the recipe
    check checks the form and says that grading trains it (it used to fail on imports)."""
    course_view.kernel_packages("02_schedule", tmp_path, closed=["01_dataset"])
    (tmp_path / "nopos").rename(tmp_path / "unused")  # the hub installs all of nopos
    repo = course_view.package_dir("nopos").parent
    probe = ("import sys\n"
             f"sys.path[:0] = [{str(tmp_path)!r}, {str(repo)!r}]\n"
             f"sys.path.append({sysconfig.get_paths()['purelib']!r})\n"
             "import nopos\n"
             "from nopos.model import build_model\n"
             "from nopos.checks.ch02 import check_recipe\n"
             "from nopos_reference.train import can_train, train\n"
             "assert not can_train()\n"
             "try:\n    train(build_model(nopos.SEED_CONFIG, seed=0), steps=1, progress=False)\n"
             "except ImportError as error:\n    print(error)\n"
             "else:\n    raise SystemExit('trained without a step')\n"
             "check_recipe(dict(lr=1e-2, warmup_steps=40, total_steps=500, batch_size=32))\n")
    # -S: no editable-install finder that would find the real package first
    result = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "chapter 3's exercise" in result.stdout
    assert "checked when your notebook is graded" in result.stdout
