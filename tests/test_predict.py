"""The prediction widget, driven with Button.click() as a person would."""
import json

import pytest

from nopos import predict


@pytest.fixture
def person(monkeypatch):
    """Pretend a person is at the keyboard."""
    for var in ("NOPOS_NONINTERACTIVE", "NBGRADER_EXECUTION", "CI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NOPOS_INTERACTIVE", "1")  # as if JupyterLab had started the kernel


def log_lines(path):
    return [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []


def test_commit_locks_the_prediction_and_logs_it(person, private_log):
    q = predict.ask("t.number", "How big?", kind="number", unit="nats")
    q.control.value = 5.5
    q.button.click()
    assert q.committed and q.prediction == 5.5
    assert q.control.disabled and q.button.disabled
    q.control.value = 1.0
    q.button.click()  # a second click changes nothing
    assert q.prediction == 5.5
    [line] = log_lines(private_log)
    assert line["event"] == "commit" and line["key"] == "t.number" and line["prediction"] == 5.5


def test_a_rerun_question_says_the_first_commit_counts(person, private_log):
    """The scoreboard counts a question's first commit: a cell rerun with the answer known
    says so when it is committed again (and only then)."""
    first = predict.ask("t.again", "How big?", kind="number")
    first.control.value = 5.5
    first.button.click()
    assert "counts that first one" not in first.status.value
    again = predict.ask("t.again", "How big?", kind="number")
    again.control.value = 6.0
    again.button.click()
    assert "your scoreboard counts that first one" in again.status.value
    assert [r["prediction"] for r in log_lines(private_log)] == [5.5, 6.0]


def test_choice_needs_an_option_before_commit(person, private_log):
    q = predict.ask("t.choice", "Which?", options=["a", "b"])
    q.button.click()
    assert not q.committed and "Pick an option" in q.status.value
    q.control.value = "b"
    q.button.click()
    assert q.committed and q.prediction == "b"


def test_reveal_refuses_before_commit_then_shows_result(person, private_log):
    q = predict.ask("t.reveal", "Which?", options=["left", "right"])
    predict.reveal(q, "right", explain="because")
    shown = predict.REVEALS["t.reveal"]
    assert not shown.revealed
    assert "Commit a prediction" in shown.message.value
    q.control.value = "left"
    q.button.click()
    assert shown.revealed
    html = shown.message.value
    assert "left" in html and "right" in html and "not this time" in html
    events = [l["event"] for l in log_lines(private_log)]
    assert events == ["commit", "reveal"]
    assert log_lines(private_log)[-1]["hit"] is False


def test_numeric_hit_uses_relative_tolerance(person):
    q = predict.ask("t.tol", "Loss?", kind="number", tolerance=0.1)
    q.commit(5.0)
    assert q.hit(5.4) and not q.hit(5.7)


def test_non_interactive_run_never_waits(monkeypatch, private_log):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    q = predict.ask("t.ci", "Loss?", kind="number")
    assert q.prediction is predict.NO_PREDICTION and q.button.disabled
    predict.reveal(q, 5.7)
    shown = predict.REVEALS["t.ci"]
    assert shown.revealed
    assert "no prediction" in shown.summary_html() and "5.7" in shown.summary_html()
    assert log_lines(private_log) == []  # nothing to score, nothing logged


def test_log_failure_does_not_break_the_notebook(person, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("NOPOS_HOME", str(blocker))
    q = predict.ask("t.ro", "Loss?", kind="number")
    q.commit(1.0)
    assert q.committed


# ---------------------------------------------------------------- confidence
def test_choice_asks_how_sure_with_a_default_and_logs_it(person, private_log):
    q = predict.ask("t.sure", "Which?", options=["a", "b", "c", "d"])
    assert [v for _, v in q.sure.options] == [0.25, 0.5, 0.7, 0.9, 0.99]
    assert q.sure.value == 0.5  # the default: one click (the option) is enough
    q.control.value = "c"
    q.sure.value = 0.9
    q.button.click()
    assert q.committed and q.confidence == 0.9 and q.sure.disabled
    [line] = log_lines(private_log)
    assert line["confidence"] == 0.9 and line["options"] == ["a", "b", "c", "d"]
    assert "90% sure" in q.status.value


def test_confidence_levels_start_at_chance():
    assert predict.confidence_levels(2) == [0.5, 0.7, 0.9, 0.99]
    assert predict.confidence_levels(3) == [0.33, 0.5, 0.7, 0.9, 0.99]
    assert predict.confidence_levels(5)[0] == 0.2


def test_number_range_follows_the_guess_until_edited(person, private_log):
    q = predict.ask("t.range", "How big?", kind="number", tolerance=0.1)
    q.control.value = 5.0
    assert (q.low_box.value, q.high_box.value) == (4.0, 6.0)  # guess ± 2 x tolerance
    q.high_box.value = 8.0          # the learner widens it ...
    q.control.value = 5.5           # ... and a later guess no longer moves it
    assert (q.low_box.value, q.high_box.value) == (4.0, 8.0)
    q.button.click()
    assert (q.prediction, q.low, q.high) == (5.5, 4.0, 8.0)
    [line] = log_lines(private_log)
    assert (line["low"], line["high"], line["level"]) == (4.0, 8.0, 0.8)
    predict.reveal(q, 7.5)
    html = predict.REVEALS["t.range"].message.value
    assert "80% range 4 to 8" in html and "held it" in html and "not this time" in html


def test_a_range_that_misses_its_own_guess_is_refused(person, private_log):
    q = predict.ask("t.bad", "How big?", kind="number")
    q.control.value = 5.0
    q.low_box.value, q.high_box.value = 6.0, 9.0
    q.button.click()
    assert not q.committed and "must hold your best guess" in q.status.value
    q.low_box.value = 4.0
    q.button.click()
    assert q.committed and (q.low, q.high) == (4.0, 9.0)


def test_number_committed_without_touching_the_range_gets_the_default(person, private_log):
    q = predict.ask("t.default", "How big?", kind="number", tolerance=0.25)
    q.control.value = 2.0
    q.button.click()
    assert (q.low, q.high) == (1.0, 3.0)


# ---------------------------------------------------------------- runs with nobody at the keyboard
def test_a_kernel_without_a_front_end_is_not_interactive(monkeypatch):
    for var in ("NOPOS_NONINTERACTIVE", "NBGRADER_EXECUTION", "CI", "NOPOS_INTERACTIVE",
                "JPY_SESSION_NAME", "VSCODE_PID", "VSCODE_CWD"):
        monkeypatch.delenv(var, raising=False)
    assert not predict.interactive()              # plain `jupyter nbconvert --execute`
    monkeypatch.setenv("JPY_SESSION_NAME", "course/01_dataset/01_dataset.ipynb")
    assert predict.interactive()                  # JupyterLab started this kernel
    monkeypatch.setenv("CI", "true")
    assert not predict.interactive()


def test_headless_reveal_shows_the_answer_and_logs_it(monkeypatch, private_log):
    for var in ("NOPOS_NONINTERACTIVE", "NBGRADER_EXECUTION", "CI", "NOPOS_INTERACTIVE",
                "JPY_SESSION_NAME", "VSCODE_PID", "VSCODE_CWD", "NOPOS_QUICK"):
        monkeypatch.delenv(var, raising=False)
    drawn = []
    q = predict.ask("ch9.headless", "Which?", options=["x", "y"])
    predict.reveal(q, "y", explain="because", show=lambda: drawn.append("plot"))
    assert predict.REVEALS["ch9.headless"].revealed and drawn == ["plot"]
    [line] = log_lines(private_log)
    assert line["event"] == "reveal" and line["actual"] == "y" and line["prediction"] is None
    assert "quick" not in line
    monkeypatch.setenv("NOPOS_QUICK", "1")
    predict.reveal(q, "x")
    assert log_lines(private_log)[-1]["quick"] is True  # a shortened run's result is marked


def test_a_commit_from_the_site_is_seen_as_committed_before(private_log):
    """The site's download is compact JSON ("key":"…", no spaces): appended to the notebook's
    log, it still counts as an earlier commit of that question."""
    from nopos import predict

    private_log.parent.mkdir(parents=True, exist_ok=True)
    private_log.write_text('{"time":"2026-01-01T00:00:00+00:00","event":"commit","key":"ch1.loss",'
                           '"kind":"number","prediction":5}\n')
    assert predict._committed_before("ch1.loss") and not predict._committed_before("ch1.other")
