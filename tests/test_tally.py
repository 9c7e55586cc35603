"""The reading-group tally, driven with Button.click() as a facilitator would."""
import json

import pytest

from nopos import predict, tally

OPTIONS = ["about 0.3% (1 in 299)", "about 2% (1 in 50)", "about 50%", "about 100%"]


@pytest.fixture
def person(monkeypatch):
    for var in ("NOPOS_NONINTERACTIVE", "NBGRADER_EXECUTION", "CI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NOPOS_INTERACTIVE", "1")  # as if JupyterLab had started the kernel


def test_enter_counts_and_record(person, private_log):
    q = predict.ask("ch1.copy_accuracy", "Copy accuracy?", options=OPTIONS)
    t = tally.group_tally(q)
    assert tally.TALLIES["ch1.copy_accuracy"] is t and not t.recorded
    assert list(t.boxes) == OPTIONS
    for option, n in zip(OPTIONS, [3, 4, 1, 0]):
        t.boxes[option].value = n
    t.button.click()
    assert t.recorded and t.counts == dict(zip(OPTIONS, [3, 4, 1, 0])) and t.total == 8
    assert "Recorded 8" in t.status.value
    [logged] = [json.loads(l) for l in (private_log.parent / "tallies.jsonl").read_text().splitlines()]
    assert logged["key"] == "ch1.copy_accuracy" and logged["counts"][OPTIONS[0]] == 3


def test_spread_highlights_the_right_option(person):
    t = tally.group_tally(["left", "right"], text="Which way?")
    t.boxes["left"].value, t.boxes["right"].value = 1, 3
    t.button.click()
    html = tally.show_spread(t, "right").widget.value
    assert "1 of 4 (25%)" not in html and "3 of 4 (75%) chose the right answer" in html
    right_row = html.split("<tr>")[2]
    assert "right &#10004;" in right_row and "#16a34a" in right_row
    assert "&#10004;" not in html.split("<tr>")[1]


def test_spread_waits_for_the_tally_then_fills_in(person):
    q = predict.ask("t.wait", "Which?", options=["a", "b", "c"])
    t = tally.group_tally(q)
    spread = tally.show_spread("t.wait", "c")
    assert "No group tally recorded yet" in spread.widget.value
    t.boxes["c"].value = 2
    t.button.click()
    assert "2 of 2 (100%)" in spread.widget.value


def test_empty_tally_is_not_recorded(person):
    t = tally.group_tally(["a", "b"])
    t.button.click()
    assert not t.recorded and "Nobody counted" in t.status.value


def test_recording_again_replaces_a_miscount(person):
    t = tally.group_tally(["a", "b"])
    t.boxes["a"].value = 5
    t.button.click()
    t.boxes["a"].value = 4
    t.boxes["b"].value = 1
    t.button.click()
    assert t.counts == {"a": 4, "b": 1}
    with pytest.raises(ValueError):
        t.record({"zzz": 1})


def test_numeric_question_takes_everyones_guesses(person):
    q = predict.ask("ch1.untrained_loss", "Loss?", kind="number", tolerance=0.1)
    t = tally.group_tally(q)
    t.guesses_box.value = "5.7, 6; 4\n9 x"
    t.button.click()
    assert not t.recorded and "not a number: &#x27;x&#x27;" in t.status.value
    t.guesses_box.value = "5.7, 6; 4\n9"
    t.button.click()
    assert t.guesses == [5.7, 6.0, 4.0, 9.0]
    html = tally.show_spread(t, 5.8).widget.value
    assert "2 of 4 guesses (50%) were within 10%" in html


def test_non_interactive_run_shows_plain_html(monkeypatch):
    monkeypatch.setenv("NOPOS_NONINTERACTIVE", "1")
    t = tally.group_tally(["a", "b"], display_widget=False)
    t.record({"a": 2, "b": 2})
    assert "2 of 4 (50%)" in tally.show_spread(t, "a").widget.value
