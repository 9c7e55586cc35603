"""Faking a pass means writing correct code: every trick of tests/hostile/fakes.py,
graded as one class with an honest learner, loses make_batch's points and only those.

The fakes are graded with chapter 1's class (tests/chapter_class.py): its
"reference" student, the reference answers untouched, is the honest learner."""
import pytest

from chapter_class import EVERY_CASE
from hostile.fakes import BEYOND_CORE, FAKES
from nopos.grading import course

AID = "01_dataset"
pytestmark = pytest.mark.slow  # graded with chapter 1's class (tests/conftest.py, CLASS_FILES)


@pytest.fixture
def graded(graded_class, scratch_course):
    graded_class(AID)
    return scratch_course


def scores(root, student):
    return {r.grade_id: r for r in course.results(root, AID, student)}


def test_the_honest_learner_gets_full_marks(graded):
    rows = scores(graded, "reference")
    assert rows and all(r.score == r.max_score for r in rows.values()), \
        {k: (r.score, r.message) for k, r in rows.items()}


@pytest.mark.parametrize("name", [n for n in FAKES if EVERY_CASE or n not in BEYOND_CORE])
def test_a_fake_loses_exactly_the_faked_exercise(graded, name):
    rows = scores(graded, f"fake-{name}")
    lost = {k: r.score for k, r in rows.items() if r.score != r.max_score}
    assert set(lost) == {"test_make_batch"} and lost["test_make_batch"] == 0, \
        {k: (r.score, r.message) for k, r in rows.items()}
    says = FAKES[name][1]
    assert says.lower() in rows["test_make_batch"].message.lower(), rows["test_make_batch"].message
