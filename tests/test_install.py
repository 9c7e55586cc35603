"""Installing the course for real, in fresh virtual environments.

* Colab, imitated: a venv with what Colab has and the course does not (its own
  torch, ipywidgets 7.7.1, no nbgrader, no JupyterLab), a kernel that sees
  `google.colab` as Colab's does, and the course installed by the notebooks' own
  first cell (pointed at this checkout with NOPOS_INSTALL_FROM, instead of the
  network). Every chapter's solution runs top to bottom in it, and the
  prediction widget's tests pass under ipywidgets 7.
* `pip install` of the package into an empty venv: the shipped model loads and a
  circuitsvis view renders with no internet.

The venvs are built with uv when the course's .venv has it (its cache links
packages instead of unpacking them: seconds), else with pip. The notebooks'
install cell always uses pip, as on Colab.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT, chapters
from test_environment import pins

pytestmark = pytest.mark.slow
COLAB_WIDGETS = "7.7.1"
# Colab's classic notebook server and kernel (ipywidgets 7 needs the first; no JupyterLab)
COLAB_KERNEL = ["notebook==6.5.7", "ipykernel==6.17.1", "ipython==7.34.0"]


def uv():
    found = shutil.which("uv") or Path(sys.executable).parent / "uv"
    return str(found) if Path(found).exists() else None


def installer(python, compiled=False):
    """The command that installs packages into the venv of `python`; `compiled`: with
    .pyc files, as pip writes them (uv does not unless asked)."""
    if uv():
        from tools.install import pip_find_links  # the local CPU torch, as `make setup` finds it

        links = [a for link in pip_find_links(sys.executable) for a in ("--find-links", link)]
        return [uv(), "pip", "install", "--quiet", *(["--compile-bytecode"] if compiled else []),
                "--python", str(python), *links]
    return [str(python), "-m", "pip", "install", "--quiet"]


def new_venv(path):
    """A fresh venv with pip in it (Colab's cell runs pip)."""
    if uv():
        subprocess.run([uv(), "venv", "--quiet", "--seed", "--python", sys.executable, str(path)],
                       check=True)
    else:
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return path / "bin" / "python"


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """What installing "the course" reads: a copy of the checkout's package files
    (building in the checkout itself would leave build/ and *.egg-info there)."""
    from nopos.hub.server import package_source  # the copy `make hub` builds from

    return package_source(tmp_path_factory.mktemp("source"))


# ---------------------------------------------------------------- Colab, imitated
FAKE_COLAB = """\
import importlib.machinery, sys, types
colab = types.ModuleType("google.colab")
colab.__spec__ = importlib.machinery.ModuleSpec("google.colab", None)
sys.modules.setdefault("google.colab", colab)
"""


@pytest.fixture(scope="module")
def colab(tmp_path_factory, source):
    """A Colab-like venv and a kernelspec for it; returns (python, kernel name, jupyter dir)."""
    home = tmp_path_factory.mktemp("colab")
    python = new_venv(home / "venv")
    lock = pins(ROOT / "requirements.txt")
    test_lock = pins(ROOT / "requirements-test.txt")
    preinstalled = [f"torch=={lock['torch']}", f"ipywidgets=={COLAB_WIDGETS}",
                    *COLAB_KERNEL, f"numpy=={lock['numpy']}",
                    f"matplotlib=={lock['matplotlib']}", f"pytest=={test_lock['pytest']}"]
    # Colab's image is byte-compiled; every kernel below would compile torch otherwise (with
    # PYTHONDONTWRITEBYTECODE=1, as here and on CI, no import writes a cache)
    subprocess.run(installer(python, compiled=True) + preinstalled, check=True)
    startup = home / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text(FAKE_COLAB)  # Colab's kernel has imported google.colab
    spec = home / "jupyter" / "kernels" / "colab-like"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab-like", "language": "python",
        "env": {"IPYTHONDIR": str(home / "ipython"), "NOPOS_INSTALL_FROM": str(source),
                "NOPOS_NONINTERACTIVE": "1", "NOPOS_QUICK": "1", "PIP_QUIET": "1"}}))
    return python, "colab-like", home / "jupyter"


def run_in(colab, path, cells=None):
    python, kernel, jupyter = colab
    nb = nbformat.read(path, as_version=4)
    if cells is not None:
        nb.cells = nb.cells[:cells]
    saved = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(jupyter)
    try:
        NotebookClient(nb, timeout=900, kernel_name=kernel, allow_errors=True,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        os.environ.pop("JUPYTER_PATH") if saved is None else os.environ.update(JUPYTER_PATH=saved)
    return nb


def errors(nb):
    return [f"cell {i}: {o['ename']}: {o['evalue'][:300]}" for i, c in enumerate(nb.cells)
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def installed(python, name):
    code = f"import importlib.metadata as m; print(m.version({name!r}))"
    # -I: what the venv has installed, not a stray egg-info in the working directory
    got = subprocess.run([str(python), "-I", "-c", code], capture_output=True, text=True)
    return got.stdout.strip() if got.returncode == 0 else None


@pytest.fixture(scope="module")
def colab_course(colab):
    """The course installed in the Colab-like venv by chapter 1's own first cells."""
    python = colab[0]
    torch_before = installed(python, "torch")
    assert installed(python, "nopos-course") is None and installed(python, "jupyterlab") is None
    nb = run_in(colab, ROOT / "course/01_dataset/01_dataset.ipynb", cells=3)  # header, note, install
    assert not errors(nb), errors(nb)
    assert installed(python, "nopos-course") == "0.1.0", "the first cell did not install the course"
    assert installed(python, "torch") == torch_before, "the install replaced Colab's torch"
    assert installed(python, "ipywidgets") == COLAB_WIDGETS, "the install replaced Colab's ipywidgets"
    for pin in COLAB_KERNEL:
        name, version = pin.split("==")
        assert installed(python, name) == version, f"the install replaced Colab's {name}"
    for absent in ("nbgrader", "jupyterlab"):
        assert installed(python, absent) is None, f"{absent} is not on Colab and not needed there"
    return colab


# What differs on Colab is the environment (ipywidgets 7, Colab's torch, no nbgrader),
# not the chapter: chapter 1 (the install and the prediction widgets), 4 (circuitsvis,
# the lens) and 5 (hooks and patching) exercise all of it. Every solution runs in the
# course's own venv in tests/test_notebooks.py.
COLAB_CHAPTERS = [aid for aid in chapters() if aid[:2] in ("01", "04", "05")]


@pytest.mark.parametrize("aid", COLAB_CHAPTERS)
def test_solution_runs_on_colab_like_kernel(colab_course, aid):
    nb = run_in(colab_course, ROOT / "solutions" / f"{aid}.ipynb")
    assert not errors(nb), errors(nb)
    text = "\n".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "all checks passed" in text


def test_prediction_widget_tests_pass_under_ipywidgets_7(colab_course):
    python = colab_course[0]
    done = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/test_predict.py", "tests/test_tally.py"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert installed(python, "ipywidgets") == COLAB_WIDGETS


# ---------------------------------------------------------------- pip install
def test_package_installs_alone_and_works_offline(tmp_path, source):
    python = new_venv(tmp_path / "venv")
    subprocess.run(installer(python) + [str(source)], check=True)
    code = """
import nopos
from nopos.checkpoint import load_reference
from nopos import vis
model, info = load_reference()
import torch
pattern = torch.softmax(torch.randn(2, 5, 5), -1)
html = vis.attention_heads(pattern, list("abcde"))._repr_html_()
print(type(model).__name__, sum(p.numel() for p in model.parameters()), len(html))
"""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",  # no way out:
               http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9")
    done = subprocess.run([str(python), "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    name, parameters, size = done.stdout.split()
    assert int(parameters) == 141_696
    assert int(size) > 500_000, "the circuitsvis view must carry its bundle (offline)"
    assert installed(python, "nbgrader") is None and installed(python, "pytest") is None
