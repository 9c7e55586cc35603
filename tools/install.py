"""Install the course's locked packages into a virtual environment, fast.

    python tools/install.py .venv                 # the course: requirements.txt + the package
    python tools/install.py .venv --test          # + requirements-test.txt and -site.txt (make test)
    python tools/install.py .venv --site          # + requirements-site.txt (make site: Sphinx)
    python tools/install.py .venv --pip           # the slow route (or NOPOS_INSTALLER=pip)

`make setup` runs this. It uses uv (tens of times faster than pip, and with a
warm cache it links packages instead of unpacking them) and falls back to pip
when uv cannot be had: uv on the PATH, else uv in the venv, else bootstrapped
into the venv with pip (a 20 MB wheel from PyPI), else pip does everything.

uv reads no pip configuration. The one setting that matters is pip's
find-links: a folder of local wheels, which is where a machine keeps its CPU
build of torch (PyPI's torch for Linux is a CUDA build of several GB). The
same folders are handed to uv, so both routes install the same torch.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*cmd, **kw):
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def pip_find_links(python):
    """The local wheel folders pip looks in (its config and PIP_FIND_LINKS)."""
    links = os.environ.get("PIP_FIND_LINKS", "").split()
    got = subprocess.run([str(python), "-m", "pip", "config", "get", "global.find-links"],
                         capture_output=True, text=True)
    if got.returncode == 0:
        links += got.stdout.split()
    return [link for link in dict.fromkeys(links) if Path(link.removeprefix("file://")).is_dir()]


def find_uv(python):
    """A working uv, bootstrapping it into the venv with pip if need be; None if impossible."""
    in_venv = Path(python).parent / "uv"
    for candidate in (shutil.which("uv"), in_venv):
        if candidate and Path(candidate).exists():
            return str(candidate)
    bootstrap = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "uv"],
                               capture_output=True, text=True)
    if bootstrap.returncode == 0 and in_venv.exists():
        return str(in_venv)
    print("uv could not be installed; installing with pip instead (slower)", file=sys.stderr)
    return None


def locks(test, site=False):
    """The tests build the website too: --test brings the site's lock with it."""
    extra = ["requirements-test.txt", "requirements-site.txt"] if test else \
        ["requirements-site.txt"] if site else []
    return [ROOT / "requirements.txt"] + [ROOT / name for name in extra]


def install_with_uv(uv, python, test, site=False):
    links = [arg for link in pip_find_links(python) for arg in ("--find-links", link)]
    # --compile-bytecode: pip compiles at install time, uv does not; where Python may not
    # write __pycache__ (PYTHONDONTWRITEBYTECODE=1, as on CI; the graders' read-only
    # sandbox) every nbgrader and every kernel would compile IPython, nbgrader,
    # matplotlib... from source again: seconds of CPU per process, hundreds of them
    base = [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", python]
    run(*base, *links, *[arg for lock in locks(test, site) for arg in ("-r", lock)])
    install_package(base)


def install_with_pip(python, test, site=False):
    pip = [python, "-m", "pip", "install", "--quiet"]
    run(*pip, "--upgrade", "pip")
    run(*pip, *[arg for lock in locks(test, site) for arg in ("-r", lock)])
    install_package(pip)


def install_package(installer):
    """The course package, editable. With the venv's own setuptools when it has one
    (no download); Python 3.12+ venvs have none, so then in an isolated build."""
    try:
        run(*installer, "--no-deps", "--no-build-isolation", "-e", ROOT, stderr=subprocess.DEVNULL)
    except subprocess.CalledProcessError:
        run(*installer, "--no-deps", "-e", ROOT)


def install(venv, test=False, use_pip=False, site=False):
    """Install the locks and the course package (editable); returns the route taken."""
    python = Path(venv).absolute() / "bin" / "python"
    uv = None if use_pip else find_uv(python)
    if uv:
        install_with_uv(uv, python, test, site)
        return "uv"
    install_with_pip(python, test, site)
    return "pip"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("venv", help="an existing virtual environment, e.g. .venv")
    parser.add_argument("--test", action="store_true", help="also the test suite's lock")
    parser.add_argument("--site", action="store_true", help="also the website's lock (Sphinx)")
    parser.add_argument("--pip", action="store_true", help="pip only, never uv")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    use_pip = args.pip or os.environ.get("NOPOS_INSTALLER") == "pip"
    route = install(args.venv, args.test, use_pip, site=args.site)
    print(f"installed with {route} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
