"""Real nbgrader round trip: reference answers get full marks, the untouched
release gets zero, and every realistic wrong answer loses exactly the points it
should, with feedback that names the mistake."""
import nbformat
import pytest

from chapter_class import GRADED, packs
from conftest import chapters, filled_release, reveal_cells
from nopos.grading import course
from nopos.learner import selfgrade
from nopos.grading.judge import HIDDEN_FAILED

pytestmark = pytest.mark.slow


@pytest.fixture
def graded(graded_class):
    """graded(aid): the chapter's class, graded once per session with the other files
    that read it (tests/chapter_class.py); {wrong case name: Graded}."""
    return graded_class


def rows(root, aid, student):
    return {r.grade_id: r for r in course.results(root, aid, student)}


@pytest.mark.parametrize("aid", GRADED)
def test_reference_answers_get_full_marks(graded, scratch_course, aid):
    """Chapter 2's reference is graded on a busy CPU (tests/chapter_class.py, BUSY): its
    recipe check trains for real and must still score full marks."""
    graded(aid)
    got = rows(scratch_course, aid, "reference")
    lost = {k: (r.score, r.max_score, r.message) for k, r in got.items() if r.score != r.max_score}
    assert got and not lost, f"{aid}: the reference answers lost points: {lost}"


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
    # a mistake only a hidden check finds gets its one sentence (judge.HIDDEN_FAILED)
    says = g.case.says if g.case.says in messages else HIDDEN_FAILED
    assert says in messages, (f"{aid}/{case}: feedback should say {g.case.says!r}, "
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


# the first chapter with an answer graded by hand; in the id, so it runs with its class (conftest)
@pytest.mark.parametrize("aid", ["06_beyond"])
def test_the_research_task_is_graded_by_hand_through_the_gradebook(graded, scratch_course, aid):
    """Chapter 6's research cell: autograde leaves the written answer to a person (an
    untouched stub scores 0 on its own); a score entered through nbgrader's API, as
    formgrader's manual grading does, counts in the total."""
    from nbgrader.api import Gradebook

    graded(aid)
    with Gradebook(f"sqlite:///{scratch_course / 'gradebook.db'}") as gb:
        stub = gb.find_grade("research", aid, aid, "untouched")
        assert stub.auto_score == 0 and not stub.needs_manual_grade and stub.max_score == 4
        grade = gb.find_grade("research", aid, aid, "reference")
        assert grade.needs_manual_grade and grade.auto_score is None and grade.max_score == 4
        submission = gb.find_submission(aid, "reference")
        autograded = submission.score
        assert submission.needs_manual_grade
        assert autograded == submission.max_score - 4  # every test passed, the essay not yet scored
        grade.manual_score = 3
        grade.needs_manual_grade = False  # what formgrader sets when the grader saves a score
        gb.db.commit()
    with Gradebook(f"sqlite:///{scratch_course / 'gradebook.db'}") as gb:
        submission = gb.find_submission(aid, "reference")
        assert submission.score == autograded + 3
        assert not submission.needs_manual_grade
