"""Scoreboard maths: hits, tolerance, reset, no double counting, a damaged log."""
import json

import matplotlib
import pytest

from nopos import predict, scoreboard

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
          + attempt("ch1.loss", 5.8, 5.9)                          # redo: hit
          + attempt("ch1.copy", "a", "a", kind="choice"))
    rows = scoreboard.entries()
    assert [e.key for e in rows] == ["ch1.loss", "ch1.copy"]
    assert all(e.hit for e in rows)
    assert scoreboard.summarise(rows).answered == 2


def test_latest_commit_wins_even_before_its_reveal(private_log):
    write(private_log, attempt("ch1.loss", 5.8, 5.9) + [record("commit", "ch1.loss", 50.0)])
    [row] = scoreboard.entries()
    assert row.prediction == 50.0 and row.actual == 5.9 and row.hit is False


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


def test_calibration_figure_and_notebook_display(private_log):
    write(private_log, attempt("ch1.loss", 5.8, 5.9) + attempt("ch1.big", 100.0, 2.0)
          + attempt("ch2.c", "a", "b", kind="choice"))
    rows = scoreboard.entries()
    fig = scoreboard.calibration_figure(rows)
    assert len(fig.axes) == 2
    assert "1/2" in [t.get_text() for t in fig.axes[0].texts]
    html = scoreboard.html_table(rows)
    assert "hit" in html and "miss" in html and "ch1.big" in html
    assert "too high" in scoreboard.calibration_note(scoreboard.summarise(rows))
    shown = scoreboard.show("ch1")
    assert [e.key for e in shown] == ["ch1.loss", "ch1.big"]


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
