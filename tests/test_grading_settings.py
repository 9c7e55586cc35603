"""The grading limits the course ships are the ones docs/grading.md tells instructors.
(The slow tests grade with shorter limits of their own; the product's stay these.)"""
import ast
import re

from conftest import ROOT
from nopos.grading.sandbox import SandboxedExecute


def documented():
    """{setting: value} of the settings table of docs/grading.md."""
    text = (ROOT / "docs" / "grading.md").read_text()
    rows = re.findall(r"^\| `c\.(\w+\.\w+)` \| ([^|]+?) \|", text, re.M)
    return {name: ast.literal_eval(value) for name, value in rows}


def shipped():
    """{setting: value} set in autograder/nbgrader_config.py, else SandboxedExecute's default."""
    config = (ROOT / "autograder" / "nbgrader_config.py").read_text()
    defaults = SandboxedExecute()
    out = {f"SandboxedExecute.{name}": getattr(defaults, name)
           for name in SandboxedExecute.class_traits(config=True)}
    for name, value in re.findall(r"^c\.(\w+\.\w+) = ([^#\n]+)", config, re.M):
        try:
            out[name] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            pass  # an expression (a path, a list of names): not a limit
    return out


def test_documented_defaults_are_the_shipped_ones():
    docs, ours = documented(), shipped()
    assert {"Execute.timeout", "SandboxedExecute.notebook_timeout"} <= docs.keys(), docs
    assert docs["Execute.timeout"] == 120 and docs["SandboxedExecute.notebook_timeout"] == 900
    wrong = {k: (v, ours.get(k)) for k, v in docs.items() if ours.get(k) != v}
    assert not wrong, f"docs/grading.md says (docs, shipped): {wrong}"


def test_the_sandboxs_defaults_are_the_shipped_settings():
    """A batch run without the course's config (a script, a test) limits a kernel as the
    course's config does: the trait defaults and autograder/nbgrader_config.py agree."""
    config = (ROOT / "autograder" / "nbgrader_config.py").read_text()
    traits = SandboxedExecute.class_traits()
    differ = []
    for name, value in re.findall(r"^c\.SandboxedExecute\.(\w+) = ([^#\n]+)", config, re.M):
        default = traits[name].default()
        if ast.literal_eval(value.strip()) != default:
            differ.append(f"{name}: config {value.strip()}, default {default!r}")
    assert not differ, differ
