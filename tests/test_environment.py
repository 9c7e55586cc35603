"""The pip route and the conda route install the same versions."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^\s*-?\s*([A-Za-z0-9_.\-]+)==([^\s#]+)")


def pins(path):
    found = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


LOCKS = ("requirements.txt", "requirements-test.txt", "requirements-site.txt")


def test_requirements_pin_every_dependency_exactly():
    for lock in LOCKS:
        lines = [l.split("#")[0].strip() for l in (ROOT / lock).read_text().splitlines()]
        loose = [d for d in lines if d and "==" not in d]
        assert not loose, f"{lock} has unpinned dependencies: {loose}"
    assert pins(ROOT / "requirements.txt")["torch"] == "2.13.0"
    for i, first in enumerate(LOCKS):
        for second in LOCKS[i + 1:]:
            both = set(pins(ROOT / first)) & set(pins(ROOT / second))
            assert not both, f"pinned in both {first} and {second}: {sorted(both)}"


def test_environment_yml_agrees_with_requirements():
    pip_pins = pins(ROOT / "requirements.txt")
    conda_pins = pins(ROOT / "environment.yml")
    assert "python=3.11" in (ROOT / "environment.yml").read_text()
    missing = sorted(set(pip_pins) - set(conda_pins))
    extra = sorted(set(conda_pins) - set(pip_pins))
    differ = {k: (pip_pins[k], conda_pins[k]) for k in set(pip_pins) & set(conda_pins)
              if pip_pins[k] != conda_pins[k]}
    assert not (missing or extra or differ), (
        f"environment.yml and requirements.txt disagree: missing in yml {missing}, only in yml "
        f"{extra}, different versions {differ}")


def test_installed_versions_are_the_pinned_ones():
    from importlib.metadata import version

    wrong = {}
    for name, pinned in {**pins(ROOT / LOCKS[0]), **pins(ROOT / LOCKS[1])}.items():
        got = version(name).split("+")[0]
        if got != pinned:
            wrong[name] = (pinned, got)
    assert not wrong, f"installed versions differ from the pins (pinned, installed): {wrong}"
