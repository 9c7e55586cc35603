"""Session 0: the install check reports OK on a set-up machine, and says how to fix what is not."""
import subprocess
import sys

from conftest import ROOT
from nopos.learner import doctor


def test_doctor_reports_everything_ok():
    proc = subprocess.run([sys.executable, "-m", "nopos.learner.doctor"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    items = [line for line in out.splitlines() if line.startswith(("OK", "MISSING"))]
    assert items and all(line.startswith("OK ") for line in items), out
    for needle in ("Python >= 3.11", "package torch==", "Jupyter kernel 'nopos'", "device:",
                   "reference checkpoint: loads", "circuitsvis offline rendering"):
        assert any(needle in line for line in items), f"no line for {needle!r}:\n{out}"
    assert len([l for l in items if "package " in l]) == len(doctor.pins())
    assert "All" in out and "ready" in out


def test_old_python_is_missing_with_a_fix():
    check = doctor.check_python((3, 10, 4))
    assert not check.ok and "3.10.4" in check.line() and "fix:" in check.line()


def test_wrong_or_absent_package_says_how_to_fix():
    absent = doctor.check_package("surely-not-installed-pkg", "1.0")
    assert not absent.ok and "not installed" in absent.detail
    assert 'pip install "surely-not-installed-pkg==1.0"' in absent.line()
    wrong = doctor.check_package("pytest", "0.0.1")
    assert not wrong.ok and "found" in wrong.detail


def test_pins_are_read_from_requirements(tmp_path):
    req = tmp_path / "r.txt"
    req.write_text("# comment\ntorch==2.13.0\nfoo[extra] == 1.2  # why\nbar>=3\n")
    assert doctor.pins(req) == [("torch", "2.13.0"), ("foo", "1.2")]


def test_missing_kernel_is_reported(monkeypatch):
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    def no_kernel(self, name):
        raise NoSuchKernel(name)

    monkeypatch.setattr(KernelSpecManager, "get_kernel_spec", no_kernel)
    check = doctor.check_kernel()
    assert not check.ok and "not registered" in check.detail and "ipykernel install" in check.fix


def test_missing_checkpoint_is_reported(monkeypatch, tmp_path):
    from nopos import checkpoint
    monkeypatch.setattr(checkpoint, "REFERENCE", tmp_path / "gone.pt")
    check = doctor.check_checkpoint()
    assert not check.ok and "git checkout" in check.fix


def test_doctor_without_torch_says_missing_instead_of_crashing():
    """A Python without the course's packages (no venv activated): MISSING lines, no traceback."""
    blocked = "import sys; sys.modules.update(torch=None, numpy=None, transformer_lens=None); "
    run = "import runpy; runpy.run_module('nopos.learner.doctor', run_name='__main__')"
    proc = subprocess.run([sys.executable, "-c", blocked + run], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "MISSING  device" in proc.stdout and "fix:" in proc.stdout, proc.stdout
