"""The package's ranges and the locks agree; Colab, Binder and README point at the
right places. (Installing for real: tests/test_install.py.)"""
import json
import os
import re
import subprocess
import sys
import tomllib

import pytest
from packaging.requirements import Requirement

from conftest import ROOT, chapters
from test_environment import pins
from tools import build_course

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def ranges(*groups, core=True):
    """{name: Requirement} of the core dependencies (if `core`) and the named extras."""
    reqs = list(PYPROJECT["dependencies"]) if core else []
    for group in groups:
        reqs += PYPROJECT["optional-dependencies"][group]
    return {Requirement(r).name.lower(): Requirement(r) for r in reqs}


def lock_problems(declared, locked):
    """What is wrong between ranges and exact pins, in words (empty: they agree)."""
    problems = [f"{name} is declared ({req.specifier}) but not pinned in the lock"
                for name, req in declared.items() if name not in locked]
    problems += [f"{name}=={locked[name]} is outside the declared range {req.specifier}"
                 for name, req in declared.items()
                 if name in locked and not req.specifier.contains(locked[name], prereleases=True)]
    problems += [f"{name}=={version} is pinned but pyproject.toml does not declare it"
                 for name, version in locked.items() if name not in declared]
    return problems


def test_course_lock_satisfies_the_ranges():
    assert lock_problems(ranges("lab"), pins(ROOT / "requirements.txt")) == []


def test_test_lock_satisfies_the_test_extra():
    assert lock_problems(ranges("test", core=False), pins(ROOT / "requirements-test.txt")) == []


def test_lock_check_catches_wrong_pins():
    declared = ranges("lab")
    locked = dict(pins(ROOT / "requirements.txt"), ipywidgets="6.0.0", pandas="2.0.0")
    del locked["circuitsvis"]
    problems = lock_problems(declared, locked)
    assert any("ipywidgets==6.0.0 is outside" in p for p in problems)
    assert any("pandas==2.0.0 is pinned but" in p for p in problems)
    assert any("circuitsvis is declared" in p for p in problems)


def test_colab_keeps_its_own_widgets_and_torch():
    """The core ranges admit Colab's ipywidgets 7.7.1 and leave its IPython alone."""
    core = ranges()
    assert core["ipywidgets"].specifier.contains("7.7.1")
    assert core["torch"].specifier.contains("2.13.0") and core["torch"].specifier.contains("2.8.0")
    assert not {"ipython", "nbgrader", "jupyterlab", "notebook"} & set(core)
    assert "playwright" not in pins(ROOT / "requirements.txt")


def test_checkpoint_ships_in_the_package():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "data/*" in data["nopos"] and (ROOT / "nopos/data/reference.pt").is_file()
    # chapter 6's variants (nopos/variants.py; tests/test_variants.py loads them): same glob
    for file in ("learned_positions.pt", "no_bos.pt", "attention_only.pt", "seed_1.pt", "seed_2.pt", "seed_3.pt"):
        path = ROOT / "nopos" / "data" / file
        assert path.is_file() and path.stat().st_size < 1_000_000, f"{file}: shipped, and small"


# ---------------------------------------------------------------- Colab links
def colab_cells(path):
    nb = json.loads(path.read_text())
    return [c for c in nb["cells"] if "colab" in c["metadata"].get("tags", [])], nb["cells"]


@pytest.mark.parametrize("aid", chapters())
def test_every_notebook_links_to_itself_on_colab_and_installs_first(aid):
    repo, branch = build_course.repository()
    for rel in (f"course/{aid}/{aid}.ipynb", f"solutions/{aid}.ipynb"):
        tagged, cells = colab_cells(ROOT / rel)
        assert [c["cell_type"] for c in tagged] == ["markdown", "code"], rel
        note, install = ("".join(c["source"]) for c in tagged)
        assert f"https://colab.research.google.com/github/{repo}/blob/{branch}/{rel})" in note
        assert "make grade" in note and "cannot read" in note
        first_code = next(c for c in cells if c["cell_type"] == "code")
        assert first_code is tagged[1], f"{rel}: the install cell must be the first code cell"
        assert f"https://github.com/{repo}/archive/refs/heads/{branch}.zip" in install
        assert '"google.colab" in sys.modules' in install and "NOPOS_INSTALL_FROM" in install


def test_install_cell_does_nothing_off_colab(tmp_path):
    _, install = (c["source"] for c in colab_cells(ROOT / "solutions/01_dataset.ipynb")[0])
    env = dict(os.environ, NOPOS_INSTALL_FROM=str(tmp_path / "nothing-here"))
    done = subprocess.run([sys.executable, "-c", "".join(install)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""


def test_repository_address_comes_from_the_readme(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n**Repository:** https://github.com/someone/fork, branch `dev`\n")
    assert build_course.repository(readme) == ("someone/fork", "dev")
    readme.write_text("no address here\n")
    with pytest.raises(SystemExit, match="Repository"):
        build_course.repository(readme)


def test_readme_badges_use_the_same_address():
    repo, branch = build_course.repository()
    text = (ROOT / "README.md").read_text()
    colab = re.findall(r"https://colab\.research\.google\.com/github/([^)\s]+)", text)
    binder = re.findall(r"https://mybinder\.org/v2/gh/([^)\s]+)", text)
    assert colab and binder
    for link in colab:
        path = link.removeprefix(f"{repo}/blob/{branch}/")
        assert path != link and (ROOT / path).is_file(), f"Colab link to a wrong place: {link}"
    assert binder == [f"{repo}/{branch}?urlpath=lab/tree/course"]


def test_slides_leave_the_colab_cells_out():
    from tools.build_slides import chapter_notebook, slide_cells

    _, nb = chapter_notebook(ROOT / "chapters/01_dataset.md")
    assert any("colab" in c.metadata.get("tags", []) for c in nb.cells)
    assert not any("colab" in c.metadata.get("tags", []) for c in slide_cells(nb).cells)


# ---------------------------------------------------------------- Binder
def test_binder_builds_from_the_lock_and_registers_the_kernel():
    """repo2docker reads environment.yml (pins: tests/test_environment.py), then runs postBuild."""
    post_build = ROOT / "postBuild"
    assert os.access(post_build, os.X_OK), "repo2docker runs postBuild only if it is executable"
    script = post_build.read_text()
    assert script.startswith("#!/bin/bash") and "set -e" in script
    assert re.search(r"pip install --no-deps (-e )?\.", script)
    kernel = build_course.KERNELSPEC
    assert f"--name {kernel['name']}" in script and f'"{kernel["display_name"]}"' in script
    assert not (ROOT / "binder").exists(), "a binder/ folder would make repo2docker ignore these"
    env = (ROOT / "environment.yml").read_text()
    assert "python=3.11" in env and "pytest" not in env and "playwright" not in env


# ---------------------------------------------------------------- grading on Colab
def test_self_grading_on_colab_explains_instead_of_failing(monkeypatch, capsys):
    from nopos.learner import selfgrade

    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    assert selfgrade.main(["course/01_dataset/01_dataset.ipynb"]) == 2
    out = capsys.readouterr().out
    assert "does not work on Colab" in out and "make grade NB=" in out
    with pytest.raises(SystemExit, match="Download .ipynb"):
        selfgrade.grade_one(ROOT / "course/01_dataset/01_dataset.ipynb")


def test_the_wheel_ships_no_benchmark_tool_or_test(tmp_path):
    """Built from a copy that holds every Python tree of the repository: pyproject.toml's
    package list alone decides what ships."""
    import shutil
    import zipfile

    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    for tree in ("nopos", "nopos_reference", "tools", "tests"):
        shutil.copytree(ROOT / tree, tmp_path / tree,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pt", "data"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(tmp_path)], check=True, capture_output=True)
    wheel, = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    code = [n for n in names if n.endswith(".py")]
    print(f"{wheel.name}: {len(names)} files, {len(code)} Python modules")
    assert {n.split("/")[0] for n in code} == {"nopos", "nopos_reference"}, sorted(code)
    maintainers = re.compile(r"(^|/)(bench\w*|claims|record|variants|mutants|conftest|test_\w+|wrong|"
                             r"hostile|queue_cluster)(/|\.py$)")
    leaks = [n for n in code if maintainers.search(n) and n != "nopos/variants.py"]
    assert not leaks, f"maintainers' or test code in the wheel: {leaks}"
