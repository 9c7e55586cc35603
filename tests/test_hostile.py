"""Bad and hostile submissions through real `nbgrader autograde`, and the sandbox.

One scratch course grades a whole class in one nbgrader run: the reference
answers, a realistic wrong answer, and every case of tests/hostile/cases.py.
Each case must lose exactly the tests it names, with a readable reason, while
the rest of its notebook and every other student are graded normally; the
gradebook keeps one complete submission per student; re-grading (in parallel,
through nopos.grade_batch) gives the same scores.
"""
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, filled_release, source_path
from hostile.cases import AID, TESTS, cases
from nopos import grading, sandbox_launcher
from nopos.grade_batch import grade_batch
from nopos.sandbox import SandboxedExecute



# short limits: the battery must fit a CI budget on 2 cores; 20 s a cell leaves room
# for the imports cell while another test worker shares the cores
SETTINGS = {"Execute.timeout": 20, "SandboxedExecute.notebook_timeout": 120,
            "SandboxedExecute.memory_mb": 1024, "SandboxedExecute.address_space_mb": 4096,
            "SandboxedExecute.cpu_seconds": 120, "SandboxedExecute.max_procs": 48}
CASES = cases()
WRONG = "bos_in_loss"  # a realistic wrong answer: loses test_masked_loss, 2 points
NEEDS_ROOT = pytest.mark.skipif(not sandbox_launcher.probed()["unshare"],
                                reason="namespaces need root and a working unshare")
PROTECTED = [ROOT / "nopos" / "checks" / "ch01.py", ROOT / "autograder" / "nbgrader_config.py"]


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    import importlib

    root = grading.make_course(tmp_path_factory.mktemp("hostile-course"), [AID], SETTINGS)
    work = tmp_path_factory.mktemp("hostile-submissions")
    wrong = importlib.import_module("wrong.ch01_dataset").CASES[WRONG]
    plain = {"reference": filled_release(AID), "wrong": filled_release(AID, wrong.answers)}
    for name, nb in plain.items():
        nbformat.write(nb, work / f"{name}.ipynb")
        grading.submit(root, AID, name, work / f"{name}.ipynb")
    for name, case in CASES.items():
        path = work / f"{name}.ipynb"
        case.build(root, path)
        grading.submit(root, AID, name, path)
    before = {p: _digest(p) for p in PROTECTED}
    proc = grading.autograde(root, AID, check=False, timeout=1200)
    return {"root": root, "proc": proc, "before": before,
            "students": sorted(["reference", "wrong", *CASES])}


def scores(root, student):
    return {r.grade_id: r for r in grading.results(root, AID, student)}


FULL = {"test_make_batch": 3, "test_previous_token_targets": 3, "test_masked_loss": 2,
        "test_masked_accuracy": 2}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_hostile_case(battery, case):
    """Named tests score 0 with a readable reason; the rest of the notebook keeps its points."""
    spec = CASES[case]
    got = scores(battery["root"], case)
    assert set(got) == set(TESTS), f"{case}: graded cells {sorted(got)}"
    for gid, row in got.items():
        if gid in spec.loses:
            assert row.score == 0, f"{case}: {gid} scored {row.score}, expected 0 ({row.message})"
            assert row.message, f"{case}: {gid} lost its points without a reason"
            assert spec.loses[gid].lower() in row.message.lower(), (
                f"{case}: {gid}: reason should mention {spec.loses[gid]!r}, got {row.message!r}")
        else:
            assert row.score == FULL[gid], (f"{case}: {gid} scored {row.score}/{FULL[gid]} "
                                            f"({row.message}): the rest of the notebook must be "
                                            f"graded normally")


@pytest.mark.slow
def test_other_students_unaffected(battery):
    root = battery["root"]
    assert {g: r.score for g, r in scores(root, "reference").items()} == FULL
    wrong = {g: r.score for g, r in scores(root, "wrong").items()}
    assert wrong == {**FULL, "test_masked_loss": 0}, wrong


@pytest.mark.slow
def test_gradebook_consistent(battery):
    """One submission per student, a grade row for every test cell, nothing lost."""
    from nbgrader.api import Gradebook

    root = battery["root"]
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        subs = {s.student.id: s for s in gb.assignment_submissions(AID)}
        assert sorted(subs) == battery["students"]
        for student, sub in subs.items():
            grades = [g for nb in sub.notebooks for g in nb.grades if g.cell_type == "code"]
            assert sorted(g.name for g in grades) == sorted(TESTS), student
            assert all(g.score is not None for g in grades), student
    assert (root / "submitted" / "reference" / AID / f"{AID}.ipynb").exists()


@pytest.mark.slow
def test_vandal_changed_nothing(battery):
    for path, digest in battery["before"].items():
        assert _digest(path) == digest, f"a learner's notebook changed {path}"
    out = _outputs(battery["root"], "vandal")
    assert "done" not in out.split("found")[0] or "blocked" in out
    assert "done rm" not in out and "done rmtree" not in out and "done write" not in out, out


@pytest.mark.slow
def test_hidden_tests_and_solutions_unreadable_from_the_kernel(battery):
    """Course root, repository (masters, sources, solutions) and /tmp: nothing there.
    Only the Python installation stays readable (its packages ship a few sample
    notebooks, which a glob of /tmp finds when the venv lives there)."""
    out = _outputs(battery["root"], "read_hidden")
    assert "files" in out.split("found")[-1], f"the reader did not finish: {out[-2000:]}"
    python = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}
    leaked = [p for p in re.findall(r"^FOUND (.+)$", out, re.M)
              if not any(p.startswith(py + os.sep) for py in python)]
    assert not leaked, f"the kernel could read {leaked[:10]}"
    for line in _hidden_lines():
        assert line not in out


@pytest.mark.slow
def test_rejected_submission_keeps_the_original(battery):
    kept = battery["root"] / "intake" / "malformed_json" / f"{AID}.ipynb"
    assert kept.read_text().startswith('{"cells": [ this is not json')


@pytest.mark.slow
def test_feedback_hides_hidden_tests_and_is_offline(battery):
    """Feedback of failing hidden tests shows no hidden test, and loads nothing from the web."""
    root = battery["root"]
    for student in ("wrong", "os_exit", "read_hidden"):
        html = grading.feedback(root, AID, student).read_text()
        for line in _hidden_lines():
            assert line not in html, f"{student}: hidden test in feedback: {line}"
        assert "BEGIN HIDDEN TESTS" not in html
        remote = re.findall(r'<(?:script|link|img|iframe)[^>]+(?:src|href)\s*=\s*["\']?(?:https?:)?//',
                            html, re.I)
        assert not remote, f"{student}: feedback loads {remote}"
        assert "@import url(http" not in html


@pytest.mark.slow
def test_parallel_regrade_is_identical_and_idempotent(battery):
    """Re-grade part of the class with 2 parallel nbgrader workers: same scores, same rows."""
    root = battery["root"]
    some = ["reference", "wrong", "os_exit", "malformed_json"]
    before = {s: {g: r.score for g, r in scores(root, s).items()} for s in some}
    outcome = grade_batch(root, AID, some, workers=2)
    assert all(status == "ok" for status, _ in outcome.values()), outcome
    after = {s: {g: r.score for g, r in scores(root, s).items()} for s in some}
    assert after == before
    test_gradebook_consistent(battery)


@pytest.mark.slow
def test_whole_notebook_wall_limit(battery):
    """A student whose notebook outlasts the per-notebook wall limit is stopped, scored 0
    with the reason, and the batch goes on."""
    root = battery["root"]
    outcome = grade_batch(root, AID, ["uncatchable_loop"], workers=1, notebook_timeout=12)
    assert outcome["uncatchable_loop"][0] == "timeout", outcome
    got = scores(root, "uncatchable_loop")
    assert all(r.score == 0 and "limit for a whole notebook" in r.message for r in got.values())
    test_other_students_unaffected(battery)


def _outputs(root, student):
    nb = nbformat.read(root / "autograded" / student / AID / f"{AID}.ipynb", as_version=4)
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")


def _hidden_lines():
    src = nbformat.read(source_path(AID), as_version=4)
    lines = []
    for cell in src.cells:
        if "### BEGIN HIDDEN TESTS" in cell.source:
            body = cell.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
            lines += [l.strip() for l in body.splitlines() if len(l.strip()) > 20]
    return lines


# ---------------------------------------------- the launcher alone (fast, no nbgrader)
PROBE = r"""
import json, os, resource, socket
out = {"uid": os.getuid(), "pid": os.getpid()}
for name, path in {"course": COURSE, "autograder": AUTOGRADER, "tmp": "/tmp",
                   "repo": REPO, "chapters": REPO + "/chapters"}.items():
    out[name] = sorted(os.listdir(path)) if os.path.isdir(path) else None
try:
    import nopos.checks.ch01, nopos_reference.data; out["packages"] = "ok"
except ImportError as e:
    out["packages"] = repr(e)
try:
    bytearray(3 * 2**30); out["alloc"] = "ok"
except MemoryError:
    out["alloc"] = "MemoryError"
try:
    socket.create_connection(("1.1.1.1", 80), timeout=2); out["net"] = "open"
except OSError as e:
    out["net"] = type(e).__name__
try:
    open(GRADEBOOK).read(); out["gradebook"] = "read"
except OSError as e:
    out["gradebook"] = type(e).__name__
out["nproc"] = resource.getrlimit(resource.RLIMIT_NPROC)[0]
print(json.dumps(out))
"""


def _launch(tmp_path, **settings):
    course = tmp_path / "course"
    cwd = course / "autograded" / "s" / AID
    cwd.mkdir(parents=True)
    (course / "gradebook.db").write_text("secret")
    (cwd / f"{AID}.ipynb").write_text("hidden tests here")
    os.environ["NOPOS_COURSE_ROOT"] = str(course)
    try:  # what the grader really hides and reveals
        real = SandboxedExecute().sandbox_settings()
    finally:
        del os.environ["NOPOS_COURSE_ROOT"]
    base = dict(memory_mb=1024, address_space_mb=2048, cpu_seconds=20, max_procs=32,
                file_size_mb=8, open_files=256, hide=real["hide"], reveal=real["reveal"])
    argv = sandbox_launcher.kernel_argv({**base, **settings}, kernel=[
        sys.executable, "-c", PROBE.replace("COURSE", repr(str(course)))
        .replace("AUTOGRADER", repr(str(ROOT / "autograder"))).replace("REPO", repr(str(ROOT)))
        .replace("GRADEBOOK", repr(str(course / "gradebook.db")))])
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@NEEDS_ROOT
def test_launcher_contains_the_kernel(tmp_path):
    out = _launch(tmp_path)
    assert out["uid"] != 0 and out["pid"] == 1
    assert out["course"] == ["autograded"]  # only the path down to its own folder
    assert out["autograder"] is None and out["chapters"] is None  # masters hold hidden tests
    assert ".git" not in out["repo"] and "solutions" not in out["repo"], out["repo"]
    assert out["packages"] == "ok"  # nopos and nopos_reference come back read-only
    assert out["gradebook"] in ("FileNotFoundError",)
    assert out["alloc"] == "MemoryError" and out["net"] != "open" and out["nproc"] == 32


def test_fallback_without_namespaces(tmp_path):
    """Where unshare is missing or refused: limits only, and the probe says so."""
    out = _launch(tmp_path, namespaces=False)
    assert out["pid"] != 1
    assert out["alloc"] == "MemoryError"  # the rlimits still hold
    # what the instructor loses (docs/grading.md): the course is visible
    assert out["gradebook"] == "read"


# ------------------------------------------------------------------ no leaks
def _solution_lines(aid):
    src = nbformat.read(source_path(aid), as_version=4)
    lines = []
    for cell in src.cells:
        inside = False
        for line in cell.source.splitlines():
            if "### BEGIN SOLUTION" in line:
                inside = True
            elif "### END SOLUTION" in line:
                inside = False
            elif inside and len(line.strip()) > 30 and not line.strip().startswith("#"):
                lines.append(line.strip())
    return lines


def _course_lines():
    """Every file a learner can open in course/, as its stripped lines (notebook cells and
    outputs read from their JSON)."""
    out = {}
    for p in (ROOT / "course").rglob("*"):
        if not p.is_file() or p.suffix not in (".ipynb", ".py", ".md", ".txt", ".json", ".html"):
            continue
        text = p.read_text(errors="replace")
        if p.suffix == ".ipynb":
            try:
                nb = json.loads(text)
                parts = []
                for cell in nb.get("cells", []):
                    parts.append("".join(cell.get("source", [])))
                    for o in cell.get("outputs", []):
                        parts.append("".join(o.get("text", [])))
                        parts += ["".join(v) if isinstance(v, list) else str(v)
                                  for v in o.get("data", {}).values()]
                text = "\n".join(parts)
            except ValueError:
                pass
        out[str(p.relative_to(ROOT))] = [l.strip() for l in text.splitlines()]
    return out


@pytest.mark.parametrize("aid", sorted(p.parent.name for p in (ROOT / "autograder" / "source").glob("*/*.ipynb")))
def test_no_solution_body_or_hidden_test_in_course(aid):
    """Nothing a learner can open in course/ contains a hidden test line, or two consecutive
    lines of a reference solution's body (one line may be a deliberate hint)."""
    files = _course_lines()
    pairs = {f: set(zip(lines, lines[1:])) for f, lines in files.items()}
    sets = {f: set(lines) for f, lines in files.items()}
    src = nbformat.read(source_path(aid), as_version=4)
    given = set()  # lines the course hands out anyway (outside every solution region)
    for path in (ROOT / "autograder" / "source").glob("*/*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            outside, inside = [], False
            for line in cell.source.splitlines():
                inside = (inside or "BEGIN SOLUTION" in line) and "END SOLUTION" not in line
                if not inside:
                    outside.append(line.strip())
            given.update(outside)
    for cell in src.cells:
        if "### BEGIN HIDDEN TESTS" in cell.source:
            body = cell.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
            for line in (l.strip() for l in body.splitlines() if len(l.strip()) > 20):
                leaks = [f for f, lines in sets.items() if line in lines]
                assert not leaks, f"{aid}: hidden test line {line!r} is in {leaks}"
        if "### BEGIN SOLUTION" in cell.source:
            for block in cell.source.split("### BEGIN SOLUTION")[1:]:
                lines = [l.strip() for l in block.split("### END SOLUTION")[0].splitlines()
                         if len(l.strip()) > 15 and not l.strip().startswith("#")]
                for pair in zip(lines, lines[1:]):
                    if set(pair) <= given:
                        continue
                    leaks = [f for f, got in pairs.items() if pair in got]
                    assert not leaks, f"{aid}: solution lines {pair} are in {leaks}"
