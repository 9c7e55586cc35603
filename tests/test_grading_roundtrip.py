"""Real nbgrader round trip: reference answers get full marks, the untouched
release gets zero, and every realistic wrong answer loses exactly the points it
should, with feedback that names the mistake."""
import contextlib
import importlib
import os
import subprocess
import sys
from dataclasses import dataclass

import nbformat
import pytest

from conftest import chapters, filled_release, release_path, reveal_cells
from nopos.grading import course
from nopos.learner import selfgrade
from nopos.grading.batch import grade_batch
from wrong import Case, pack

pytestmark = pytest.mark.slow

GRADED = [aid for aid in chapters() if importlib.util.find_spec(f"wrong.ch{aid}")]
# `make test` grades the first submission of each chapter: one mistake in every answer
# cell at once (each must cost only its own test). NOPOS_ROUNDTRIP=all grades every
# case through nbgrader; tests/test_judge.py checks every case's message without it.
EVERY_CASE = os.environ.get("NOPOS_ROUNDTRIP") == "all"


def packs(aid):
    """The wrong submissions of a chapter: [[case names]]."""
    cases = importlib.import_module(f"wrong.ch{aid}").CASES
    return pack(cases) if EVERY_CASE else pack(cases)[:1]


@dataclass
class Graded:
    case: Case
    student: str  # the submission that carried this mistake
    loses: dict  # what that whole submission must lose: grade_id -> points


@pytest.fixture(scope="module")
def graded(scratch_course, tmp_path_factory):
    """Autograde a chapter's submissions as one class batch, the first time a
    test asks for that chapter (so `-k 02` grades chapter 2 only). Mistakes in
    different cells share a submission (wrong.pack)."""
    work = tmp_path_factory.mktemp("submissions")
    done = {}

    def cases_of(aid):
        if aid not in done:
            cases = importlib.import_module(f"wrong.ch{aid}").CASES
            students = {"reference": filled_release(aid)}
            students["untouched"] = nbformat.read(release_path(aid), as_version=4)
            done[aid] = {}
            for i, names in enumerate(packs(aid)):
                student = f"wrong{i + 1}-" + "-".join(names)[:60]
                answers = {k: v for n in names for k, v in cases[n].answers.items()}
                loses = {k: v for n in names for k, v in cases[n].loses.items()}
                students[student] = filled_release(aid, answers)
                done[aid].update({n: Graded(cases[n], student, loses) for n in names})
            for student, nb in students.items():
                path = work / f"{aid}-{student}.ipynb"
                nbformat.write(nb, path)
                course.submit(scratch_course, aid, student, path)
            # the class batch of `make grade-class`: real nbgrader per student, 2 at a time
            # these students only: the session's course may hold other tests' submissions
            outcome = grade_batch(scratch_course, aid, list(students), workers=2)
            assert all(status == "ok" for status, _ in outcome.values()), outcome
        return done[aid]

    return cases_of


def rows(root, aid, student):
    return {r.grade_id: r for r in course.results(root, aid, student)}


@pytest.mark.parametrize("aid", GRADED)
def test_reference_answers_get_full_marks(graded, scratch_course, aid):
    graded(aid)
    got = rows(scratch_course, aid, "reference")
    lost = {k: (r.score, r.max_score, r.message) for k, r in got.items() if r.score != r.max_score}
    assert got and not lost, f"{aid}: the reference answers lost points: {lost}"


@contextlib.contextmanager
def busy_core():
    """This process and its children on one CPU, which another process keeps busy: a
    shared server's share, or a laptop doing something else. (One CPU, so that the
    other test worker keeps the rest of the machine.)"""
    allowed = os.sched_getaffinity(0)
    cpu = min(allowed)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    os.sched_setaffinity(spinner.pid, {cpu})
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)
        spinner.kill()
        spinner.wait()


def test_correct_chapter_2_scores_full_marks_on_a_busy_cpu(graded, scratch_course, tmp_path,
                                                           monkeypatch):
    """Chapter 2's recipe check trains for real: a correct notebook graded on a CPU that
    another process keeps busy still scores full marks."""
    aid = "02_schedule"
    monkeypatch.setenv("NOPOS_RECIPE_CACHE", str(tmp_path / "recipes"))  # train it here, loaded
    graded(aid)  # the class batch first: this student is graded on its own
    path = tmp_path / f"{aid}.ipynb"
    nbformat.write(filled_release(aid), path)
    course.submit(scratch_course, aid, "busy-reference", path)
    with busy_core():
        outcome = grade_batch(scratch_course, aid, ["busy-reference"], workers=1)
    assert outcome["busy-reference"][0] == "ok", outcome
    got = rows(scratch_course, aid, "busy-reference")
    lost = {k: (r.score, r.max_score, r.message) for k, r in got.items() if r.score != r.max_score}
    assert got and not lost, f"on a busy CPU, the reference answers lost points: {lost}"


@pytest.mark.parametrize("aid", GRADED)
def test_untouched_release_gets_zero_and_nothing_else_fails(graded, scratch_course, aid):
    """Every test scores 0 with a reason; the course's own cells all run: the only
    errors are the learner's unwritten exercises and the checks that report them."""
    graded(aid)
    got = rows(scratch_course, aid, "untouched")
    assert got and all(r.score == 0 for r in got.values()), {k: r.score for k, r in got.items()}
    assert all(r.message for r in got.values()), {k: r.message for k, r in got.items()}
    nb = nbformat.read(scratch_course / "autograded" / "untouched" / aid / f"{aid}.ipynb",
                       as_version=4)
    reveals = reveal_cells(nb)
    unexpected = [(i, o["ename"], o["evalue"][:200]) for i, c in enumerate(nb.cells)
                  if not c.metadata.get("nbgrader", {}).get("grade") and i not in reveals
                  for o in c.get("outputs", []) if o.get("output_type") == "error"
                  # NameError: a name an unwritten exercise would have defined (the
                  # solutions run with no error at all: test_notebooks.py)
                  and o["ename"] not in ("NotImplementedError", "CheckFailed", "NameError")]
    assert not unexpected, f"{aid}: cells fail for other reasons than unwritten exercises: {unexpected}"


def wrong_cases():
    for aid in GRADED:
        for names in packs(aid):
            for name in names:
                yield aid, name


@pytest.mark.parametrize("aid,case", list(wrong_cases()))
def test_wrong_answer_loses_exactly_its_points(graded, scratch_course, aid, case):
    g = graded(aid)[case]
    got = rows(scratch_course, aid, g.student)
    assert got, f"{aid}/{case}: no grades for {g.student}"
    for grade_id, r in got.items():
        want = r.max_score - g.loses.get(grade_id, 0)
        assert r.score == want, (f"{aid}/{case} (in {g.student}): {grade_id} scored {r.score}, "
                                 f"expected {want} ({r.message})")
    messages = " ".join(got[k].message for k in g.case.loses)
    assert g.case.says in messages, (f"{aid}/{case}: feedback should say {g.case.says!r}, "
                                     f"got {messages!r}")


@pytest.mark.parametrize("aid", GRADED[:1])
def test_feedback_names_the_mistake_and_hides_hidden_tests(graded, scratch_course, aid):
    g = next(iter(graded(aid).values()))
    html_path = course.feedback(scratch_course, aid, g.student)
    html = html_path.read_text()
    assert g.case.says.split(":")[0] in html
    assert "HIDDEN TESTS" not in html and "quiet=True" not in html


def test_self_grade_command_reports_scores(tmp_path, capsys):
    aid = chapters()[0]
    path = tmp_path / "mine.ipynb"
    nbformat.write(filled_release(aid), path)
    rows_, html = selfgrade.grade_one(path, workdir=tmp_path / "grading")
    assert sum(r.score for r in rows_) == sum(r.max_score for r in rows_) > 0
    assert html.exists()
    with pytest.raises(SystemExit, match="not a readable notebook"):
        bad = tmp_path / "broken.ipynb"
        bad.write_text("{ not json")
        selfgrade.grade_one(bad, workdir=tmp_path / "g2")


MANUAL = "06_beyond"  # the first chapter with an answer graded by hand


def test_the_research_task_is_graded_by_hand_through_the_gradebook(graded, scratch_course):
    """Chapter 6's research cell: autograde leaves the written answer to a person (an
    untouched stub scores 0 on its own); a score entered through nbgrader's API, as
    formgrader's manual grading does, counts in the total."""
    from nbgrader.api import Gradebook

    graded(MANUAL)
    with Gradebook(f"sqlite:///{scratch_course / 'gradebook.db'}") as gb:
        stub = gb.find_grade("research", MANUAL, MANUAL, "untouched")
        assert stub.auto_score == 0 and not stub.needs_manual_grade and stub.max_score == 4
        grade = gb.find_grade("research", MANUAL, MANUAL, "reference")
        assert grade.needs_manual_grade and grade.auto_score is None and grade.max_score == 4
        submission = gb.find_submission(MANUAL, "reference")
        autograded = submission.score
        assert submission.needs_manual_grade
        assert autograded == submission.max_score - 4  # every test passed, the essay not yet scored
        grade.manual_score = 3
        grade.needs_manual_grade = False  # what formgrader sets when the grader saves a score
        gb.db.commit()
    with Gradebook(f"sqlite:///{scratch_course / 'gradebook.db'}") as gb:
        submission = gb.find_submission(MANUAL, "reference")
        assert submission.score == autograded + 3
        assert not submission.needs_manual_grade
