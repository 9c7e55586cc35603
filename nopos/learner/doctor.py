"""Session 0: check this machine is ready for the course, before the meeting.

    python -m nopos.learner.doctor          (or: make doctor)

One line per item, OK or MISSING, and for each MISSING how to fix it:
Python version, every pinned package at its pinned version, the `nopos`
Jupyter kernel, the device, the shipped reference checkpoint (loads and scores
a fresh batch), and circuitsvis drawing attention patterns with no internet.
Exit code 0 when everything is OK.
"""
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "requirements.txt"
MIN_PYTHON = (3, 11)
KERNEL = "nopos"
SETUP_HINT = "run `make setup` in the course folder"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    fix: str = ""

    def line(self):
        status = "OK     " if self.ok else "MISSING"
        text = f"{status}  {self.name}"
        if self.detail:
            text += f": {self.detail}"
        if not self.ok and self.fix:
            text += f"\n         fix: {self.fix}"
        return text


def check_python(version=None):
    version = version or sys.version_info
    found = ".".join(map(str, version[:3]))
    need = ".".join(map(str, MIN_PYTHON))
    return Check(f"Python >= {need}", tuple(version[:2]) >= MIN_PYTHON, found,
                 f"install Python {need} or newer, then {SETUP_HINT} "
                 f"(e.g. `make setup PYTHON=python3.11`)")


def pins(path=REQUIREMENTS):
    """[(name, version)] of the `name==version` lines of requirements.txt."""
    found = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.\-\[\]]+)\s*==\s*([^\s;#]+)", line)
        if match:
            found.append((re.sub(r"\[.*\]", "", match.group(1)), match.group(2)))
    return found


def check_package(name, version):
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        return Check(f"package {name}=={version}", False, "not installed",
                     f'{SETUP_HINT}, or: pip install "{name}=={version}"')
    local = installed.split("+")[0]  # torch 2.13.0+cpu is torch 2.13.0
    return Check(f"package {name}=={version}", local == version,
                 "" if local == version else f"found {installed}",
                 f'{SETUP_HINT}, or: pip install "{name}=={version}"')


def check_kernel():
    fix = ('make setup   (or: .venv/bin/python -m ipykernel install --sys-prefix --name nopos '
           '--display-name "Python (nopos course)" --env OMP_WAIT_POLICY PASSIVE)')
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    except ImportError:
        return Check("Jupyter kernel 'nopos'", False, "jupyter_client is not installed", fix)
    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        return Check("Jupyter kernel 'nopos'", False, "not registered", fix)
    python = spec.argv[0] if spec.argv else ""
    if python and "/" in python and not Path(python).exists():
        return Check("Jupyter kernel 'nopos'", False,
                     f"registered, but its Python {python} is gone", fix)
    return Check("Jupyter kernel 'nopos'", True, f"{spec.display_name} ({spec.resource_dir})")


def check_device():
    try:
        import torch

        from nopos.env import pick_device
        device = pick_device()
        x = torch.ones(4, 4, device=device)
        assert float((x @ x).sum()) == 64.0
    except Exception as error:  # noqa: BLE001 - anything here means "cannot compute"
        return Check("device", False, f"{type(error).__name__}: {error}",
                     "set NOPOS_DEVICE=cpu to fall back to the CPU (every chapter runs there)")
    detail = str(device)
    if device.type == "cuda":
        detail += f" ({torch.cuda.get_device_name(device)})"
    elif device.type == "cpu":
        from nopos.threads import available_cpus, pick_threads
        detail += (f" ({pick_threads()} threads of {available_cpus()} CPUs, as the load allows; "
                   f"NOPOS_THREADS overrides; every chapter is sized for a laptop CPU)")
    return Check("device", True, detail)


def check_checkpoint(batch=64, seed=2024):
    from nopos import checkpoint
    fix = ("the shipped checkpoint nopos/data/reference.pt is missing or damaged: restore it "
           "with `git checkout -- nopos/data/reference.pt`, or retrain with "
           "`make train ARGS=\"--out nopos/data/reference.pt\"`")
    name = "reference checkpoint"
    if not checkpoint.REFERENCE.exists():
        return Check(name, False, f"no file at {checkpoint.REFERENCE}", fix)
    try:
        from nopos_reference.train import eval_batch, evaluate
        model, _info = checkpoint.load_reference()
        cfg = {"n_ctx": model.cfg.n_ctx, "d_vocab": model.cfg.d_vocab}
        loss, accuracy = evaluate(model, eval_batch(cfg, size=batch, seed=seed))
    except Exception as error:  # noqa: BLE001
        return Check(name, False, f"does not load: {type(error).__name__}: {error}", fix)
    ok = accuracy > 0.95
    return Check(name, ok, f"loads; accuracy {accuracy:.2%} (loss {loss:.4f}) on "
                           f"{batch} fresh sequences", "" if ok else fix)


URL_ATTR = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def check_circuitsvis():
    name = "circuitsvis offline rendering"
    fix = f'{SETUP_HINT}, or: pip install "circuitsvis==1.43.3"'
    try:
        import torch
        from circuitsvis.attention import attention_patterns
        pattern = torch.tril(torch.ones(1, 3, 3))
        pattern = pattern / pattern.sum(-1, keepdim=True)
        html = attention_patterns(tokens=["<BOS>", "a", "b"], attention=pattern).local_src
    except Exception as error:  # noqa: BLE001
        return Check(name, False, f"{type(error).__name__}: {error}", fix)
    if URL_ATTR.search(html):
        return Check(name, False, "its offline form still loads code from the internet", fix)
    if len(html) < 10_000:
        return Check(name, False, f"its offline form is only {len(html)} characters: "
                                  f"the bundled JavaScript is missing", fix)
    return Check(name, True, f"self-contained HTML, {len(html) / 1e6:.1f} MB, no external URL")


def run_checks(echo=None):
    """Every check, in order; `echo(line)` is called as soon as each one is known."""
    checks = []

    def add(check):
        checks.append(check)
        if echo:
            echo(check.line())

    add(check_python())
    try:
        for name, version in pins():
            add(check_package(name, version))
    except OSError as error:
        add(Check("requirements.txt", False, str(error),
                  "run the doctor from a full copy of the course"))
    for step in (check_kernel, check_device, check_checkpoint, check_circuitsvis):
        try:
            add(step())
        except Exception as error:  # noqa: BLE001 - the doctor itself must never crash
            add(Check(step.__name__.replace("check_", ""), False,
                      f"{type(error).__name__}: {error}", SETUP_HINT))
    return checks


def main(argv=None):
    print("nopos doctor: is this machine ready for the course?", flush=True)
    checks = run_checks(echo=lambda line: print(line, flush=True))
    missing = [c for c in checks if not c.ok]
    if missing:
        print(f"\n{len(missing)} item(s) MISSING: fix them (see above), then run "
              f"`make doctor` again.")
        return 1
    print(f"\nAll {len(checks)} checks OK: you are ready.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
