"""Pause and predict: commit a guess before the notebook reveals the answer.

    q = predict.ask("ch1.untrained_loss", "What loss will the untrained model have?",
                    kind="number", unit="nats")
    ...                                   # compute the answer
    predict.reveal(q, actual=loss)        # shows it only once a guess is committed

In a notebook opened by a person, `reveal` shows a polite "commit a prediction
first" until the Commit button is pressed, then the answer next to the guess
(it fills in by itself when you commit; no need to rerun the cell).
In runs without a person (nbgrader, CI, `nbconvert --execute`) nothing waits:
the question records "no prediction" and the reveal shows the answer at once.

Every commit and reveal is appended to a JSON-lines log (`log_path()`), which
the scoreboard reads.
"""
import datetime as _dt
import html
import json
import os
from pathlib import Path

import ipywidgets as widgets
from IPython.display import HTML, display

NO_PREDICTION = None
_QUESTIONS = {}
REVEALS = {}


def interactive():
    """False when no person is watching: grading, CI, or NOPOS_NONINTERACTIVE=1."""
    if os.environ.get("NBGRADER_EXECUTION") or os.environ.get("NOPOS_NONINTERACTIVE"):
        return False
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return False
    return True


def log_path():
    """Where predictions are logged: $NOPOS_HOME/predictions.jsonl (default ~/.nopos)."""
    home = Path(os.environ.get("NOPOS_HOME", Path.home() / ".nopos"))
    return home / "predictions.jsonl"


def append_record(path, record):
    """Add one timestamped JSON line to a log; a read-only home (a grading
    sandbox, say) must never break the notebook, so failures are ignored."""
    record = {"time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **record}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    except OSError:
        pass


def _log(event, question, **fields):
    record = {
        "event": event,
        "key": question.key,
        "text": question.text,
        "kind": question.kind,
        "tolerance": question.tolerance,
        "prediction": question.prediction,
        **fields,
    }
    append_record(log_path(), record)


class Question:
    """One prediction point: a control, a Commit button and a status line."""

    def __init__(self, key, text, kind="choice", options=None, unit="", tolerance=None):
        if kind not in ("choice", "number"):
            raise ValueError("kind must be 'choice' or 'number'")
        if kind == "choice" and not options:
            raise ValueError("a choice question needs options")
        self.key, self.text, self.kind, self.unit = key, text, kind, unit
        self.options = list(options or [])
        # numeric guesses count as a hit within this relative tolerance
        self.tolerance = tolerance if tolerance is not None else (0.1 if kind == "number" else None)
        self.prediction = NO_PREDICTION
        self.committed = False
        self._on_commit = []

        if kind == "choice":
            self.control = widgets.RadioButtons(options=self.options, value=None,
                                                layout=widgets.Layout(width="auto"))
        else:
            self.control = widgets.FloatText(value=0.0, description=unit or "",
                                             layout=widgets.Layout(width="14em"))
        self.button = widgets.Button(description="Commit prediction", button_style="primary",
                                     icon="lock", layout=widgets.Layout(width="auto"))
        self.status = widgets.HTML("")
        self.button.on_click(self._commit_clicked)
        self.widget = widgets.VBox([widgets.HTML(f"<b>Predict:</b> {html.escape(text)}"),
                                    self.control, self.button, self.status])
        if not interactive():
            self.status.value = "<i>no prediction (non-interactive run)</i>"
            self.button.disabled = True

    def _commit_clicked(self, _button=None):
        if self.committed:
            return
        value = self.control.value
        if self.kind == "choice" and value is None:
            self.status.value = "<span style='color:#b45309'>Pick an option first.</span>"
            return
        self.commit(value)

    def commit(self, value):
        """Lock in a prediction (what the Commit button does)."""
        self.prediction = value if self.kind == "choice" else float(value)
        self.committed = True
        self.control.disabled = True
        self.button.disabled = True
        self.status.value = f"Committed: <b>{html.escape(self.format(self.prediction))}</b>"
        _log("commit", self)
        for callback in self._on_commit:
            callback()

    def format(self, value):
        if isinstance(value, float):
            text = f"{value:.4g}"
        else:
            text = str(value)
        return f"{text} {self.unit}".strip()

    def hit(self, actual):
        """Was the committed prediction right? None when there is nothing to judge."""
        if self.prediction is NO_PREDICTION or actual is None:
            return None
        if self.kind == "choice":
            return self.prediction == actual
        return abs(self.prediction - actual) <= self.tolerance * max(abs(actual), 1e-12)



def ask(key, text, kind="choice", options=None, unit="", tolerance=None):
    """Show a prediction question; returns it for `reveal`.

    Asking the same key again (rerunning the cell) starts a fresh question.
    """
    question = Question(key, text, kind=kind, options=options, unit=unit, tolerance=tolerance)
    _QUESTIONS[key] = question
    if os.environ.get("NOPOS_GROUP"):  # reading-group mode: a tally box under each question
        from nopos import tally  # imported here: tally imports this module

        tally.group_tally(question)
    if interactive():
        display(question.widget)
    else:  # plain HTML survives export, nbgrader feedback and CI logs
        display(HTML(f"<div><b>Predict:</b> {html.escape(text)}<br>"
                     f"<i>no prediction (non-interactive run)</i></div>"))
    return question


class Reveal:
    """The answer to a question, held back until a prediction is committed."""

    WAITING = ("<div style='color:#b45309'>Commit a prediction above first: "
               "the answer appears here as soon as you do.</div>")

    def __init__(self, question, actual, explain="", show=None):
        self.question, self.actual, self.explain, self.show = question, actual, explain, show
        self.revealed = False
        self.message = widgets.HTML(self.WAITING)
        self.output = widgets.Output()  # what `show` draws (a plot)
        self.widget = widgets.VBox([self.message, self.output])
        if not interactive():
            self.revealed = True  # reveal() shows it as plain HTML
        elif question.committed:
            self._reveal()
        else:
            question._on_commit.append(self._reveal)

    def _reveal(self):
        if self.revealed:
            return
        self.revealed = True
        q = self.question
        self.message.value = self.summary_html()
        if self.show is not None:
            with self.output:
                self.show()
        _show_group_spread(q, self.actual, self.output)
        if q.committed:
            _log("reveal", q, actual=_jsonable(self.actual), hit=q.hit(self.actual))

    def summary_html(self):
        q = self.question
        guess = "no prediction" if q.prediction is NO_PREDICTION else q.format(q.prediction)
        verdict = {True: " &#10004; right", False: " &#10008; not this time", None: ""}[
            q.hit(self.actual)]
        actual = "" if self.actual is None else q.format(self.actual)
        parts = [f"<b>Your prediction:</b> {html.escape(guess)}",
                 f"<b>Result:</b> {html.escape(actual)}{verdict}"]
        if self.explain:
            parts.append(html.escape(self.explain))
        return "<div class='nopos-reveal'>" + "<br>".join(parts) + "</div>"


def reveal(question, actual, explain="", show=None):
    """Show `actual` next to the committed prediction (waits for a commit if needed).

    `show`, if given, is called to draw extra output (a plot) at reveal time.
    The Reveal is kept in `predict.REVEALS[key]` (handy for tests).
    """
    result = Reveal(question, actual, explain=explain, show=show)
    REVEALS[question.key] = result
    if not interactive():
        display(HTML(result.summary_html()))
        if show is not None:
            show()
        _show_group_spread(question, actual)
    else:
        display(result.widget)


def _show_group_spread(question, actual, output=None):
    """In a reading group, the room's spread of answers next to the result."""
    from nopos import tally

    if question.key not in tally.TALLIES:
        return
    if output is None:
        tally.show_spread(tally.TALLIES[question.key], actual)
    else:
        with output:
            tally.show_spread(tally.TALLIES[question.key], actual)


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except TypeError:
        return float(value)
