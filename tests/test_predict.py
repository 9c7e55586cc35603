"""The prediction widget, driven with Button.click() as a person would."""
import json

import pytest

from nopos import predict


@pytest.fixture
def person(monkeypatch):
    """Pretend a person is at the keyboard."""
    for var in ("NOPOS_NONINTERACTIVE", "NBGRADER_EXECUTION", "CI"):
        monkeypatch.delenv(var, raising=False)


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
