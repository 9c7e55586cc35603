"""Faking a pass means writing correct code: every trick of tests/hostile/fakes.py,
graded as one class with an honest learner, loses make_batch's points and only those."""
import nbformat
import pytest

from conftest import filled_release
from hostile.fakes import FAKES
from nopos.grading import course
from nopos.grading.batch import grade_batch

pytestmark = pytest.mark.slow
AID = "01_dataset"


@pytest.fixture(scope="module")
def graded(scratch_course, tmp_path_factory):
    work = tmp_path_factory.mktemp("fakes")
    students = {"honest": filled_release(AID)}
    students.update({f"fake-{name}": filled_release(AID, {"make_batch": code})
                     for name, (code, _) in FAKES.items()})
    for student, nb in students.items():
        path = work / f"{student}.ipynb"
        nbformat.write(nb, path)
        course.submit(scratch_course, AID, student, path)
    # these students only: the session's course may hold the round trip's chapter 1 too
    outcome = grade_batch(scratch_course, AID, list(students), workers=2)
    assert all(status == "ok" for status, _ in outcome.values()), outcome
    return scratch_course


def scores(root, student):
    return {r.grade_id: r for r in course.results(root, AID, student)}


def test_the_honest_learner_gets_full_marks(graded):
    rows = scores(graded, "honest")
    assert rows and all(r.score == r.max_score for r in rows.values()), \
        {k: (r.score, r.message) for k, r in rows.items()}


@pytest.mark.parametrize("name", list(FAKES))
def test_a_fake_loses_exactly_the_faked_exercise(graded, name):
    rows = scores(graded, f"fake-{name}")
    lost = {k: r.score for k, r in rows.items() if r.score != r.max_score}
    assert set(lost) == {"test_make_batch"} and lost["test_make_batch"] == 0, \
        {k: (r.score, r.message) for k, r in rows.items()}
    says = FAKES[name][1]
    assert says.lower() in rows["test_make_batch"].message.lower(), rows["test_make_batch"].message
