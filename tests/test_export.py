"""Grade exports, read from a real nbgrader gradebook built in tmp through nbgrader's API:
exact headers and cells for Canvas and Moodle, an empty cell (not 0) for a chapter a
learner has not handed in, and nbgrader's own `nbgrader export`."""
import csv
import shutil

import pytest
from nbgrader.api import Gradebook

from conftest import ROOT
from gradebooks import course_with_gradebook
from nopos.grading import export
from nopos.hub import roster

# chapter -> {cell: max score}; student -> {chapter: {cell: score}} (absent: not handed in)
CHAPTERS = {"01_dataset": {"batch": 6, "loss": 4}, "02_schedule": {"warmup": 5, "cosine": 3}}
SCORES = {"ada": {"01_dataset": {"batch": 6, "loss": 4}, "02_schedule": {"warmup": 5, "cosine": 3}},
          "alan": {"01_dataset": {"batch": 6, "loss": 1.5}, "02_schedule": {"warmup": 0, "cosine": 0}},
          "grace": {"01_dataset": {"batch": 2, "loss": 0}}}
PENALTY = {("ada", "02_schedule"): 1, ("alan", "02_schedule"): 2}  # handed in late
NAMES = {"ada": ("Ada", "Lovelace", "ada@example.org"), "alan": ("Alan", "Turing", None),
         "grace": ("Grace", "Hopper", "grace@example.org")}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course root whose gradebook holds two graded chapters and three learners."""
    root = course_with_gradebook(tmp_path_factory, tmp_path_factory.mktemp("course"))
    shutil.copy(ROOT / "autograder" / "nbgrader_config.py", root)
    with roster._opened(root) as gb:
        build(gb)
    return root


def build(gb: Gradebook):
    for aid, cells in CHAPTERS.items():
        gb.add_assignment(aid)
        gb.add_notebook(aid, aid)
        for cell, points in cells.items():
            gb.add_grade_cell(cell, aid, aid, max_score=points, cell_type="code")
    for sid, (first, last, email) in NAMES.items():
        gb.add_student(sid, first_name=first, last_name=last, email=email)
        for aid, cells in SCORES[sid].items():
            gb.add_submission(aid, sid)
            for cell, score in cells.items():
                gb.find_grade(cell, aid, aid, sid).auto_score = score
            gb.find_submission_notebook(aid, aid, sid).late_submission_penalty = \
                PENALTY.get((sid, aid), 0)
    gb.db.commit()


def read(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_canvas_csv_has_canvas_columns_points_and_empty_cells(course, tmp_path):
    rows = read(export.write_csv(export.canvas_rows(export.read_grades(course), "Lab A"),
                                 tmp_path / "canvas.csv"))
    assert rows == [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "01_dataset", "02_schedule"],
        ["    Points Possible", "", "", "", "", "10", "8"],
        ["Lovelace, Ada", "", "", "ada", "Lab A", "10", "7"],  # 8 less 1 for lateness
        ["Turing, Alan", "", "", "alan", "Lab A", "7.5", "0"],  # 0 less 2: still 0
        ["Hopper, Grace", "", "", "grace", "Lab A", "2", ""],  # not handed in: no grade, not 0
    ]


def test_moodle_csv_identifies_by_username_and_email(course, tmp_path):
    rows = read(export.write_csv(export.moodle_rows(export.read_grades(course)),
                                 tmp_path / "moodle.csv"))
    assert rows == [
        ["Username", "Email address", "First name", "Last name", "01_dataset", "02_schedule"],
        ["ada", "ada@example.org", "Ada", "Lovelace", "10", "7"],
        ["alan", "", "Alan", "Turing", "7.5", "0"],
        ["grace", "grace@example.org", "Grace", "Hopper", "2", ""],
    ]


def test_numbers_are_written_plainly():
    assert [export.number(x) for x in (8.0, 7.25, 7.333333, 0.0, None)] == ["8", "7.25", "7.33", "0", ""]


def test_no_gradebook_says_what_to_do(tmp_path):
    with pytest.raises(SystemExit, match="no gradebook at .*autograde a chapter first"):
        export.read_grades(tmp_path)


@pytest.mark.slow
def test_export_all_writes_nbgraders_csv_too(course, tmp_path, capsys):
    """`nbgrader export` for real: its columns, and 0 (its convention) where ours are empty."""
    written = export.export_all(course, tmp_path / "out")
    assert [p.name for p in written] == ["nbgrader.csv", "canvas.csv", "moodle.csv"]
    rows = read(tmp_path / "out" / "nbgrader.csv")
    assert rows[0] == ["assignment", "duedate", "timestamp", "student_id", "last_name",
                       "first_name", "email", "raw_score", "late_submission_penalty", "score",
                       "max_score"]
    by = {(r[0], r[3]): r for r in rows[1:]}
    assert by["02_schedule", "grace"][9] == "0.0" and by["01_dataset", "alan"][9] == "7.5"
    assert "3 student(s), 2 chapter(s), 5 graded submission(s)" in capsys.readouterr().out
