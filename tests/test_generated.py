"""Every generated notebook is exactly what its master builds."""
import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, chapters, release_path, source_path


def test_generated_files_match_masters():
    proc = subprocess.run([sys.executable, "tools/build_course.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_drift_is_detected(tmp_path, monkeypatch):
    """Hand-editing a generated notebook must make the check fail."""
    sys.path.insert(0, str(ROOT))
    from tools import build_course

    fake_root = tmp_path / "repo"
    for sub in ("autograder/source", "course", "solutions"):
        src = ROOT / sub
        (fake_root / sub).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-r", str(src), str(fake_root / sub)], check=True)
    edited = fake_root / "solutions" / f"{chapters()[0]}.ipynb"
    nb = json.loads(edited.read_text())
    nb["cells"][0]["source"] = "edited by hand"
    edited.write_text(json.dumps(nb))
    monkeypatch.setattr(build_course, "ROOT", fake_root)
    problems = build_course.check()
    assert any("differs from its master" in p and edited.name in p for p in problems), problems


def test_release_has_no_solutions_or_hidden_tests():
    for aid in chapters():
        text = release_path(aid).read_text()
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in text, f"{aid}: release contains {marker}"
        assert "solutions-only" not in text


def test_hidden_tests_exist_and_stay_out_of_course_and_solutions():
    import nbformat

    for aid in chapters():
        src = nbformat.read(source_path(aid), as_version=4)
        hidden = []
        for cell in src.cells:
            if "### BEGIN HIDDEN TESTS" in cell.source:
                body = cell.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
                hidden += [l.strip() for l in body.splitlines() if len(l.strip()) > 20]
        assert hidden, f"{aid} has no hidden tests"
        course_text = "\n".join(p.read_text() for p in (ROOT / "course").rglob("*.ipynb"))
        solution_text = (ROOT / "solutions" / f"{aid}.ipynb").read_text()
        for line in hidden:
            assert json.dumps(line)[1:-1] not in course_text, f"hidden test leaked into course/: {line}"
            assert json.dumps(line)[1:-1] not in solution_text, f"hidden test in solutions/: {line}"


def test_graded_cells_are_well_formed():
    import nbformat

    for aid in chapters():
        nb = nbformat.read(source_path(aid), as_version=4)
        ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
        assert len(ids) == len(set(ids)), f"{aid}: duplicate grade_id"
        points = [c.metadata["nbgrader"].get("points", 0) for c in nb.cells
                  if c.metadata.get("nbgrader", {}).get("grade")]
        header = nb.cells[0].source
        assert f"**Points:** {sum(points):g}" in header, (
            f"{aid}: the header must state the total points ({sum(points):g})")
        assert nb.metadata["kernelspec"]["name"] == "nopos"
