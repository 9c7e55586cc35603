"""Every score against values worked out by hand."""
import math

import pytest

from nopos import scores


def test_brier_for_the_chosen_option():
    assert scores.brier(0.7, True) == pytest.approx(0.09)       # (0.7 - 1)^2
    assert scores.brier(0.7, False) == pytest.approx(0.49)      # (0.7 - 0)^2
    assert scores.brier(0.5, True) == scores.brier(0.5, False) == 0.25
    assert scores.brier(1.0, True) == 0.0


def test_log_score_and_its_floor():
    assert scores.log_score(0.9, True) == pytest.approx(-0.1053605)    # ln 0.9
    assert scores.log_score(0.9, False) == pytest.approx(-2.3025851)   # ln 0.1
    assert scores.log_score(1.0, False) == pytest.approx(math.log(1e-3))  # sure and wrong: floored


def test_interval_score_width_plus_ten_times_the_miss():
    assert scores.interval_score(4, 6, 5) == 2                  # inside: the width
    assert scores.interval_score(4, 6, 6) == 2                  # the edge counts as inside
    assert scores.interval_score(4, 6, 7) == pytest.approx(12)  # 2 + (2/0.2) * 1
    assert scores.interval_score(4, 6, 3.5) == pytest.approx(7)  # 2 + 10 * 0.5
    assert scores.interval_score(4, 6, 7, alpha=0.5) == pytest.approx(6)  # 2 + 4 * 1


def test_honesty_pays_on_average():
    """Proper: if you are right 70% of the time, saying 70% beats saying 90% or 50%."""
    def expected(said, truth=0.7):
        return truth * scores.brier(said, True) + (1 - truth) * scores.brier(said, False)
    assert expected(0.7) < expected(0.9) and expected(0.7) < expected(0.5)


def test_certainty_levels_and_marks_as_moodle():
    assert [scores.certainty(p) for p in (0.25, 0.5, 0.66, 0.67, 0.8, 0.81, 0.99)] == \
        [1, 1, 1, 2, 2, 3, 3]
    assert [scores.cbm_mark(p, True) for p in (0.5, 0.7, 0.9)] == [1, 2, 3]
    assert [scores.cbm_mark(p, False) for p in (0.5, 0.7, 0.9)] == [0, -2, -6]


def test_reliability_bins():
    pairs = [(0.7, True), (0.7, False), (0.75, True), (0.9, True), (0.99, False), (1.0, True),
             (0.33, False), (0.8, True)]
    bins = scores.reliability_bins(pairs)
    assert [(lo, hi, n) for lo, hi, n, _, _ in bins] == [
        (0.3, 0.4, 1), (0.7, 0.8, 3), (0.8, 0.9, 1), (0.9, 1.0, 3)]
    _, _, _, said, right = bins[1]
    assert said == pytest.approx((0.7 + 0.7 + 0.75) / 3) and right == pytest.approx(2 / 3)
    _, _, _, said, right = bins[3]
    assert said == pytest.approx((0.9 + 0.99 + 1.0) / 3) and right == pytest.approx(2 / 3)
    assert scores.reliability_bins([]) == []


def test_verdicts_in_words():
    assert "overconfident" in scores.calibration_verdict([(0.9, i < 5) for i in range(10)])
    assert "underconfident" in scores.calibration_verdict([(0.5, i < 9) for i in range(10)])
    assert "well calibrated" in scores.calibration_verdict([(0.7, i < 7) for i in range(10)])
    assert "Too few" in scores.calibration_verdict([(0.9, False)] * 4)
    # 10 at 90% with 8 right: a 10-point gap, but chance alone moves 10 answers that much
    # (two standard errors: 2 * sqrt(10 * 0.9 * 0.1) / 10 = 0.19); 6 right is beyond it
    assert "well calibrated" in scores.calibration_verdict([(0.9, i < 8) for i in range(10)])
    assert "overconfident" in scores.calibration_verdict([(0.9, i < 6) for i in range(10)])
