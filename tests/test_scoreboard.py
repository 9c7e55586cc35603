"""Scoreboard maths: hits, tolerance, reset, no double counting, a damaged log."""
import json
import math

import matplotlib
import pytest

from nopos import predict
from nopos.learner import scoreboard

matplotlib.use("Agg")


def record(event, key, prediction, actual=None, kind="number", tolerance=0.1, text=None):
    r = {"time": "2026-01-01T00:00:00+00:00", "event": event, "key": key,
         "text": text or f"question {key}?", "kind": kind,
         "tolerance": tolerance if kind == "number" else None, "prediction": prediction}
    if event == "reveal":
        r["actual"] = actual
    return r


def write(path, records, extra_lines=()):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r) for r in records] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n")


def attempt(key, prediction, actual, **kw):
    return [record("commit", key, prediction, **kw), record("reveal", key, prediction, actual, **kw)]


def test_hits_and_relative_tolerance(private_log):
    write(private_log, attempt("ch1.loss", 5.5, 5.9)              # 6.8% off: hit at 10%
          + attempt("ch1.tight", 5.5, 5.9, tolerance=0.05)         # miss at 5%
          + attempt("ch2.neg", -1.05, -1.0)                        # sign-safe: hit
          + attempt("ch1.copy", "a", "a", kind="choice")
          + attempt("ch2.which", "a", "b", kind="choice"))
    rows = {e.key: e for e in scoreboard.entries()}
    assert rows["ch1.loss"].hit is True
    assert rows["ch1.tight"].hit is False
    assert rows["ch2.neg"].hit is True
    assert rows["ch1.copy"].hit is True and rows["ch2.which"].hit is False
    assert rows["ch1.loss"].error == pytest.approx((5.5 - 5.9) / 5.9)
    s = scoreboard.summarise(list(rows.values()))
    assert (s.hits, s.answered, s.numeric) == (3, 5, 3)
    assert s.rate == pytest.approx(0.6)


def test_tolerance_edges_and_zero_actual():
    assert scoreboard.judge("number", 110.0, 100.0, 0.1)           # exactly on the edge
    assert not scoreboard.judge("number", 110.5, 100.0, 0.1)
    assert scoreboard.judge("number", 0.0, 0.0, 0.1)
    assert not scoreboard.judge("number", 1e-3, 0.0, 0.1)
    assert scoreboard.judge("number", 5.0, 5.2, None)               # default 10%
    assert scoreboard.judge("number", None, 5.0, 0.1) is None
    assert scoreboard.judge("choice", "x", None) is None


def test_scoreboard_agrees_with_the_widget():
    q = predict.Question("t.same", "Loss?", kind="number", tolerance=0.07)
    q.prediction = 5.0
    for actual in (4.6, 4.7, 5.3, 5.4, 5.38):
        assert scoreboard.judge("number", 5.0, actual, 0.07) == q.hit(actual)


def test_redoing_a_chapter_does_not_double_count(private_log):
    write(private_log, attempt("ch1.loss", 1.0, 5.9)              # first pass: miss
          + attempt("ch1.copy", "b", "a", kind="choice")
          + attempt("ch1.loss", 5.8, 5.9)                          # redo, the answer known
          + attempt("ch1.copy", "a", "a", kind="choice"))
    rows = scoreboard.entries()
    assert [e.key for e in rows] == ["ch1.loss", "ch1.copy"]
    assert [(e.prediction, e.hit) for e in rows] == [(1.0, False), ("b", False)]  # the first counts
    assert scoreboard.summarise(rows).answered == 2


def test_a_commit_after_the_answer_was_shown_does_not_count(private_log):
    """A second tab (or a rerun cell) committing the revealed answer scores nothing."""
    write(private_log, attempt("ch4.c", 1.0, 6.29) + [record("commit", "ch4.c", 6.29)])
    [row] = scoreboard.entries()
    assert row.prediction == 1.0 and row.actual == 6.29 and row.hit is False


def at(time, r):
    return {**r, "time": time}


def test_logs_pieced_together_count_by_time_and_once(private_log):
    """The site's download appended (twice) after the notebooks' log: time, not file order,
    decides which commit is first, and a repeated record counts once."""
    notebook = [at("2026-01-02T10:00:00+00:00", r) for r in attempt("ch1.loss", 5.8, 5.9)]
    site = [at("2026-01-01T09:00:00.000+00:00", r) for r in attempt("ch1.loss", 1.0, 5.9)]
    site += [at("2026-01-01T09:05:00+00:00", r) for r in attempt("ch1.copy", "a", "a", kind="choice")]
    write(private_log, notebook + site + site)
    rows = scoreboard.entries()
    assert [(e.key, e.prediction) for e in rows] == [("ch1.loss", 1.0), ("ch1.copy", "a")]
    assert len(scoreboard.in_time_order(scoreboard.read_log())) == 6


def test_commit_without_reveal_is_pending(private_log):
    write(private_log, [record("commit", "ch3.later", 0.5)])
    [row] = scoreboard.entries()
    assert row.pending and row.hit is None
    s = scoreboard.summarise([row])
    assert s.answered == 0 and s.pending == 1 and s.rate is None


def test_missing_log_is_an_empty_scoreboard(private_log, capsys):
    assert not private_log.exists()
    assert scoreboard.entries() == []
    assert scoreboard.calibration_figure([]) is None
    assert scoreboard.main([]) == 0
    assert "No predictions logged yet" in capsys.readouterr().out


def test_corrupt_lines_are_skipped(private_log):
    junk = ["{not json", "", "[1, 2]", '"a string"', '{"event": "commit"}',
            '{"event": "other", "key": "ch1.x"}', "\x00\x01 binary", '{"key": 3, "event": "commit"}']
    write(private_log, attempt("ch1.loss", 5.8, 5.9), extra_lines=junk)
    with private_log.open("a") as f:
        f.write('{"event": "commit", "key": "ch1.cut"')  # a write cut short
    rows = scoreboard.entries()
    assert [e.key for e in rows] == ["ch1.loss"] and rows[0].hit


def test_odd_values_do_not_crash(private_log):
    write(private_log, attempt("ch1.nan", "abc", 5.0) + attempt("ch1.inf", 1.0, None)
          + [record("commit", "ch1.nokind", 1.0, kind="weird")])
    rows = scoreboard.entries()
    assert {e.key for e in rows} == {"ch1.nan", "ch1.inf", "ch1.nokind"}
    scoreboard.text_report(rows)
    scoreboard.html_table(rows)
    scoreboard.calibration_figure(rows)


def test_reset_everything(private_log):
    write(private_log, attempt("ch1.loss", 5.8, 5.9) + attempt("ch4.bos_at_10", 0.4, 0.45))
    assert scoreboard.reset() == 4
    assert scoreboard.entries() == [] and not private_log.exists()
    assert scoreboard.reset() == 0  # nothing left: no error


def test_reset_one_chapter_keeps_the_others(private_log):
    write(private_log, attempt("ch1.loss", 5.8, 5.9) + attempt("ch4.bos_at_10", 0.4, 0.45)
          + attempt("ch10.far", 1.0, 1.0), extra_lines=["garbage"])
    assert scoreboard.reset("ch1") == 2
    assert [e.key for e in scoreboard.entries()] == ["ch4.bos_at_10", "ch10.far"]
    assert "garbage" in private_log.read_text()
    assert scoreboard.reset("04_circuit") == 2  # a chapter id works as well
    assert [e.key for e in scoreboard.entries()] == ["ch10.far"]
    with pytest.raises(ValueError):
        scoreboard.reset("nonsense")


def test_chapter_filter_and_tags(private_log):
    write(private_log, attempt("ch1.loss", 5.8, 5.9) + attempt("ch12.x", 1.0, 2.0))
    assert [e.key for e in scoreboard.entries(chapter="ch1")] == ["ch1.loss"]
    assert [e.key for e in scoreboard.entries(chapter="01_dataset")] == ["ch1.loss"]
    assert [e.key for e in scoreboard.entries(chapter="12")] == ["ch12.x"]
    assert scoreboard.chapter_tag("ch4.bos_at_10") == "ch4"


def test_calibration_figure_and_notebook_display(private_log, capsys):
    write(private_log, attempt("ch1.loss", 5.8, 5.9) + attempt("ch1.big", 100.0, 2.0)
          + attempt("ch2.c", "a", "b", kind="choice"))
    rows = scoreboard.entries()
    fig = scoreboard.calibration_figure(rows)
    reliability, trend, far = fig.axes
    assert [t.get_text() for t in trend.texts] == ["1/2", "0/1"]  # ch1, ch2 hits
    assert [t.get_text() for t in far.get_yticklabels()] == ["ch1.loss", "ch1.big"]
    html = scoreboard.html_table(rows)
    assert "hit" in html and "miss" in html and "ch1.big" in html
    assert "too high" in scoreboard.calibration_note(scoreboard.summarise(rows))


def test_show_draws_a_real_image_and_returns_nothing(private_log, monkeypatch):
    """Chapter 1 draws no figure before its scoreboard: the image must not depend on
    a plotting backend, and the cell must not print a return value after it."""
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objs, **kw: shown.extend(objs))
    write(private_log, attempt("ch1.loss", 5.8, 5.9))
    assert scoreboard.show("ch1") is None
    kinds = [type(o).__name__ for o in shown]
    assert kinds == ["HTML", "Image"], kinds
    assert shown[1].data[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_summary_reset_and_plot(private_log, tmp_path, capsys):
    write(private_log, attempt("ch1.loss", 5.8, 5.9) + attempt("ch2.c", "a", "b", kind="choice"))
    assert scoreboard.main(["--plot", str(tmp_path / "cal.png")]) == 0
    out = capsys.readouterr().out
    assert "Hits: 1/2 (50%)" in out and "ch1.loss" in out and "ch2.c" in out
    assert (tmp_path / "cal.png").stat().st_size > 1000
    assert scoreboard.main(["--chapter", "ch2"]) == 0
    out = capsys.readouterr().out
    assert "ch2.c" in out and "ch1.loss" not in out
    assert scoreboard.main(["--reset", "--chapter", "ch2"]) == 0
    assert [e.key for e in scoreboard.entries()] == ["ch1.loss"]


def test_real_widget_log_round_trip(private_log, monkeypatch):
    for var in ("NOPOS_NONINTERACTIVE", "NBGRADER_EXECUTION", "CI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NOPOS_INTERACTIVE", "1")  # as if JupyterLab had started the kernel
    q = predict.ask("ch1.untrained_loss", "Loss?", kind="number", tolerance=0.1)
    q.control.value = 5.0
    q.button.click()
    predict.reveal(q, 5.75)
    c = predict.ask("ch1.copy_accuracy", "Which?", options=["low", "high"])
    c.control.value = "low"
    c.button.click()
    predict.reveal(c, "low")
    rows = {e.key: e for e in scoreboard.entries()}
    assert rows["ch1.untrained_loss"].hit is False  # 13% off, tolerance 10%
    assert rows["ch1.copy_accuracy"].hit is True


# ---------------------------------------------------------------- confidence and honest scores
def sure(key, prediction, actual, p=None, low=None, high=None, kind="number", **kw):
    """A commit and its reveal, with a confidence (choice) or an 80% range (number)."""
    commit, reveal = attempt(key, prediction, actual, kind=kind, **kw)
    extra = {"confidence": p} if kind == "choice" else {"low": low, "high": high, "level": 0.8}
    commit.update(extra)
    reveal.update(extra)
    return [commit, reveal]


def test_scores_per_question_by_hand(private_log):
    write(private_log, sure("ch1.pick", "a", "a", p=0.7, kind="choice")
          + sure("ch1.wrong", "a", "b", p=0.9, kind="choice")
          + sure("ch2.n", 5.0, 7.0, low=4.0, high=6.0))
    rows = {e.key: e for e in scoreboard.entries()}
    assert rows["ch1.pick"].brier == pytest.approx(0.09)
    assert rows["ch1.wrong"].brier == pytest.approx(0.81)
    assert rows["ch1.wrong"].log_score == pytest.approx(math.log(0.1))
    assert rows["ch2.n"].in_range is False
    assert rows["ch2.n"].interval_score == pytest.approx(12 / 7)  # (2 + 10 x 1) / |7|
    s = scoreboard.summarise(list(rows.values()))
    assert s.brier == pytest.approx(0.45) and s.ranges_held == (0, 1)
    assert s.stated == [(0.7, True), (0.9, False), (0.8, False)]
    report = scoreboard.text_report(list(rows.values()))
    for line in ("Brier 0.450", "Interval score 1.71", "Brier score: (your confidence",
                 "Interval score: the width", "Hit: the right option"):
        assert line in report, line


def test_old_logs_without_confidence_count_as_hit_or_miss_only(private_log):
    write(private_log, attempt("ch1.loss", 5.8, 5.9) + attempt("ch1.c", "a", "b", kind="choice"))
    rows = scoreboard.entries()
    assert [e.hit for e in rows] == [True, False]
    assert all(e.stated is None and e.brier is None and e.interval_score is None for e in rows)
    s = scoreboard.summarise(rows)
    assert s.stated == [] and s.brier is None and s.interval_score is None
    report = scoreboard.text_report(rows)
    assert "Hits: 1/2" in report and "Brier" not in report.replace("Brier score", "")


def test_a_redone_chapter_counts_once_with_its_first_confidence(private_log):
    write(private_log, sure("ch1.c", "a", "b", p=0.9, kind="choice")
          + sure("ch1.c", "b", "b", p=0.7, kind="choice"))
    [row] = scoreboard.entries()
    assert (row.prediction, row.confidence, row.hit) == ("a", 0.9, False)
    assert scoreboard.summarise([row]).stated == [(0.9, False)]


def test_headless_reveals_show_results_without_scoring(private_log):
    reveal = record("reveal", "ch1.loss", None, 5.75)
    write(private_log, [reveal] + attempt("ch1.c", "a", "a", kind="choice"))
    rows = scoreboard.entries()
    assert [(e.key, e.prediction, e.actual) for e in rows] == [("ch1.loss", None, 5.75),
                                                                ("ch1.c", "a", "a")]
    s = scoreboard.summarise(rows)
    assert (s.answered, s.hits, s.no_prediction, s.pending) == (1, 1, 1, 0)
    assert "no prediction" in scoreboard.text_report(rows)


def test_a_quick_runs_result_never_replaces_a_real_one(private_log):
    real = record("reveal", "ch2.lr", None, "1e-2", kind="choice")
    quick = dict(record("reveal", "ch2.lr", None, "1e-4", kind="choice"), quick=True)
    write(private_log, [real, quick])
    assert scoreboard.entries()[0].actual == "1e-2"
    write(private_log, [quick])
    assert scoreboard.entries()[0].actual == "1e-4"  # the only result there is


def test_certainty_based_marking_is_off_unless_asked(private_log, monkeypatch):
    monkeypatch.delenv("NOPOS_CBM", raising=False)
    write(private_log, sure("ch1.a", "a", "a", p=0.9, kind="choice")
          + sure("ch1.b", "a", "b", p=0.7, kind="choice")
          + sure("ch1.c", "a", "b", p=0.5, kind="choice"))
    rows = scoreboard.entries()
    assert [e.cbm for e in rows] == [3, -2, 0]
    assert "Certainty-based" not in scoreboard.text_report(rows)
    assert "Certainty-based marks: +1 over 3 choice(s)" in scoreboard.text_report(rows, cbm=True)
    monkeypatch.setenv("NOPOS_CBM", "1")
    assert "Certainty-based marks: +1" in scoreboard.html_table(rows)


def test_verdict_and_trend_across_chapters(private_log):
    overconfident = [r for i in range(6) for r in sure(f"ch1.q{i}", "a", "a" if i < 2 else "b",
                                                        p=0.9, kind="choice")]
    honest = [r for i in range(6) for r in sure(f"ch2.q{i}", "a", "a" if i < 4 else "b",
                                                 p=0.7, kind="choice")]
    write(private_log, overconfident + honest)
    rows = scoreboard.entries()
    assert "overconfident" in scoreboard.text_report(scoreboard.entries(chapter="ch1"))
    trend = scoreboard.trend_line(rows)
    assert "ch1 +57%" in trend and "ch2 +3%" in trend and "closer to calibrated" in trend
    reliability = scoreboard.calibration_figure(rows).axes[0]
    assert sorted(t.get_text() for t in reliability.texts) == ["n=6", "n=6"]


def test_the_recorded_sample_log():
    """tests/data/sample_predictions.jsonl: real results, a scripted learner, chapter 1 redone."""
    from conftest import ROOT
    from tools.build_course import masters, parse_master

    records = scoreboard.read_log(ROOT / "tests" / "data" / "sample_predictions.jsonl")
    rows = scoreboard.entries(records)
    questions = sum(len(parse_master(m)[0].get("predictions", {})) for m in masters())
    assert len(rows) == questions and all(e.actual is not None for e in rows)
    ch1 = {e.key: e for e in rows if e.chapter == "ch1"}
    # the redone chapter 1 counts once, with its first commit (an older log: no confidence),
    # not the redo's, made with the answers known
    copy, loss = ch1["ch1.copy_accuracy"], ch1["ch1.untrained_loss"]
    assert (copy.prediction, copy.confidence, copy.hit) == ("about 2% (1 in 50)", None, False)
    assert (loss.prediction, loss.low, loss.high, loss.hit) == (2.0, None, None, False)
    s = scoreboard.summarise(rows)
    assert len(s.stated) == questions - 2 and s.no_prediction == 0
    bins = __import__("nopos.scores", fromlist=["x"]).reliability_bins(s.stated)
    assert sum(n for _, _, n, _, _ in bins) == questions - 2
    fig = scoreboard.calibration_figure(rows)
    assert len(fig.axes) == 3


def test_a_commit_after_the_answer_was_shown_is_no_prediction(private_log):
    """A run with nobody at the keyboard (nbconvert) shows and logs the answer; a commit
    made after it, here or on the site, predicts nothing. A progress check's quick run is
    seen by nobody: a commit after it still counts."""
    write(private_log, [
        at("2026-01-01T10:00:00+00:00", record("reveal", "ch1.loss", None, 6.0)),
        at("2026-01-01T11:00:00+00:00", record("commit", "ch1.loss", 6.0)),
        at("2026-01-01T10:00:00+00:00", {**record("reveal", "ch1.acc", None, 0.3), "quick": True}),
        at("2026-01-01T11:00:00+00:00", record("commit", "ch1.acc", 0.3)),
        at("2026-01-01T11:00:01+00:00", record("reveal", "ch1.acc", 0.3, 0.3))])
    rows = {e.key: e for e in scoreboard.entries()}
    assert rows["ch1.loss"].prediction is None and rows["ch1.loss"].actual == 6.0
    assert rows["ch1.acc"].prediction == 0.3 and rows["ch1.acc"].hit is True


def test_a_record_without_a_readable_time_does_not_reorder_the_log(private_log):
    """The site's commit (earlier) counts, however the logs were pieced together, and one
    record with a blank time goes last instead of putting everything in file order."""
    write(private_log, [
        at("2026-01-02T09:00:00+00:00", record("commit", "ch2.lr", 3.0)),    # notebook, later
        at("2026-01-01T09:00:00+00:00", record("commit", "ch2.lr", 1.0)),    # site, earlier
        at("", record("commit", "ch2.other", 5.0)),
        at("2026-01-02T09:00:01+00:00", record("reveal", "ch2.lr", None, 1.0))])
    rows = {e.key: e for e in scoreboard.entries()}
    assert rows["ch2.lr"].prediction == 1.0 and rows["ch2.other"].prediction == 5.0


def test_inf_or_nan_is_no_first_commit(private_log):
    write(private_log, [at("2026-01-01T09:00:00+00:00", {**record("commit", "ch1.loss", None), "prediction": float("inf")}),
                        at("2026-01-01T09:00:01+00:00", record("commit", "ch1.loss", 5.5)),
                        at("2026-01-01T09:00:02+00:00", record("reveal", "ch1.loss", None, 6.0))])
    assert scoreboard.entries()[0].prediction == 5.5
