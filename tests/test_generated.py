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


def test_a_markdown_task_becomes_a_manually_graded_answer_cell(tmp_path):
    """` ```markdown task id=X points=N ` -> a Markdown nbgrader cell with solution and grade
    set (graded by hand); the release shows nbgrader's stub, not the example answer."""
    import nbformat
    import pytest

    sys.path.insert(0, str(ROOT))
    from tools import build_course

    master = tmp_path / "99_demo.md"
    master.write_text("---\nid: 99_demo\ntitle: demo\n---\n# Demo\n\nWrite below.\n\n"
                      "```markdown task id=essay points=3\n**Hypothesis:** an example answer\n```\n\n"
                      "+++\nAfter.\n", encoding="utf-8")
    meta, cells = build_course.parse_master(master)
    nb = build_course.source_notebook(meta, cells)
    tasks = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "essay"]
    assert len(tasks) == 1 and tasks[0].cell_type == "markdown"
    assert tasks[0].metadata["nbgrader"] == {"grade": True, "solution": True, "locked": False,
                                             "points": 3.0, "grade_id": "essay", "schema_version": 3}
    assert "an example answer" in tasks[0].source
    assert "After." in nb.cells[-1].source and "```" not in "".join(c.source for c in nb.cells)
    master.write_text(master.read_text().replace(" points=3", ""), encoding="utf-8")
    with pytest.raises(SystemExit, match="points="):
        build_course.source_notebook(*build_course.parse_master(master))

    # chapter 6's research task in the generated files
    for path, example in ((source_path("06_beyond"), True), (release_path("06_beyond"), False)):
        research = [c for c in nbformat.read(path, as_version=4).cells
                    if c.metadata.get("nbgrader", {}).get("grade_id") == "research"]
        assert len(research) == 1 and research[0].cell_type == "markdown"
        meta = research[0].metadata["nbgrader"]
        assert meta["grade"] and meta["solution"] and meta["points"] == 4
        assert ("example answer" in research[0].source) == example
        assert example or research[0].source.strip() == "YOUR ANSWER HERE"


def test_self_grading_names_the_answers_graded_by_hand():
    from nopos.learner import selfgrade

    assert selfgrade.graded_by_hand(release_path("06_beyond")) == [("research", 4.0)]
    assert selfgrade.graded_by_hand(release_path(chapters()[0])) == []
