"""A chapter's grading kernel gets the course packages without that chapter's answers."""
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
    for m in ANSWERS[aid]:
        assert not (ref / f"{m}.py").exists()
        assert not list(ref.rglob(f"{m}.*.pyc"))
    others = {m for a, ms in ANSWERS.items() if a != aid for m in ms}
    assert all((ref / f"{m}.py").exists() for m in others)
    assert not list((nopos / "checks").glob("ch*.py")) and (nopos / "checks" / "__init__.py").exists()
    assert (nopos / "data" / "reference.pt").exists() and set(copy) == {"nopos", "nopos_reference"}
    # in the copy, the chapter's answers cannot be imported, the earlier ones can
    # as in the kernel, where the copy is mounted over the real package: nothing but
    # the copy and the installed libraries (no .pth, so no editable-install finder)
    probe = ("import importlib, sys\n"
             f"sys.path.insert(0, {str(tmp_path)!r}); sys.path.append({sysconfig.get_paths()['purelib']!r})\n"
             "import nopos_reference\n"
             f"assert nopos_reference.__file__.startswith({str(tmp_path)!r})\n"
             f"for m in {list(ANSWERS[aid])!r}:\n"
             "    try:\n        importlib.import_module('nopos_reference.' + m)\n"
             "    except ImportError:\n        pass\n"
             "    else:\n        raise SystemExit('reachable: ' + m)\n"
             "import nopos.model, nopos.grading.transport\n")  # what the kernel does need still imports
    result = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr + result.stdout
