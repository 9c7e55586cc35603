"""Pause and predict: commit a guess, and how sure you are, before the notebook reveals the answer.

    q = predict.ask("ch1.untrained_loss", "What loss will the untrained model have?",
                    kind="number", unit="nats")
    ...                                   # compute the answer
    predict.reveal(q, actual=loss)        # shows it only once a guess is committed

Beside the guess, every question asks how sure you are: for a choice, the
probability you give your chosen option (a row of buttons, 50% preselected);
for a number, a range you are 80% sure holds the answer (it follows your best
guess until you edit it). Honest confidence is what the scoreboard rewards.

In a notebook opened by a person, `reveal` shows a polite "commit a prediction
first" until the Commit button is pressed, then the answer next to the guess
(it fills in by itself when you commit; no need to rerun the cell).
In runs without a person (nbgrader, CI, plain `jupyter nbconvert --execute`)
nothing waits: the question records "no prediction" and the reveal shows the
answer, and its plots, as ordinary cell output at once.

Every commit and reveal is appended to a JSON-lines log (`log_path()`), which
the scoreboard reads.

In a live room (`nopos.room.join(code)`, or $NOPOS_ROOM), Commit also sends the
prediction and its confidence to the room, and the facilitator's reveal cell
gives the room its answer; a room's trouble is said under the button and never
loses the commit.
"""
import html
import json
import os

import ipywidgets as widgets
from IPython.display import HTML, display

from nopos import room, scores, tally
from nopos.session import append_record, frontend, interactive, log_path  # noqa: F401 - part of this API

NO_PREDICTION = None
RANGE_LEVEL = 0.8          # numeric questions ask for an 80% range
_QUESTIONS = {}
REVEALS = {}


def _log(event, question, **fields):
    if os.environ.get("NBGRADER_EXECUTION"):
        return  # the grader is not the learner: keep its runs out of anyone's scoreboard
    record = {
        "event": event,
        "key": question.key,
        "text": question.text,
        "kind": question.kind,
        "tolerance": question.tolerance,
        "prediction": question.prediction,
        **question.confidence_fields(),
        **fields,
    }
    if question.kind == "choice":
        record["options"] = [str(o) for o in question.options]
    if os.environ.get("NOPOS_QUICK"):
        record["quick"] = True  # a shortened run: its results are not the real ones
    append_record(log_path(), record)


def _committed_before(key):
    """Does the log already hold a commit for `key` (nopos.learner.scoreboard counts the first)?"""
    try:
        with log_path().open(encoding="utf-8", errors="replace") as f:
            return any(_is_commit_of(line, key) for line in f)
    except OSError:
        return False


def _is_commit_of(line, key):
    """A log line is a commit of `key`, however it was written (the site's log is compact JSON)."""
    if key not in line:
        return False
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and record.get("event") == "commit" and record.get("key") == key


def confidence_levels(n_options):
    """The probabilities offered for a chosen option: from chance (1/n) to 99%."""
    chance = 1 / max(n_options, 1)
    return [round(chance, 2)] + [p for p in (0.5, 0.7, 0.9, 0.99) if p > chance + 0.01]


class Question:
    """One prediction point: a control, how sure you are, a Commit button and a status line."""

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
        self.confidence = None          # choice: probability given to the chosen option
        self.low = self.high = None     # number: the 80% range
        self.committed = False
        self._on_commit = []
        self._range_edited = False

        big = widgets.Layout(width="auto")
        if kind == "choice":
            self.control = widgets.RadioButtons(options=self.options, value=None, layout=big)
            levels = confidence_levels(len(self.options))
            self.sure = widgets.ToggleButtons(
                options=[(f"{p:.0%}", p) for p in levels],
                value=0.5 if 0.5 in levels else levels[0],
                tooltips=["a pure guess"] + ["" for _ in levels[1:]],
                style={"button_width": "4.5em"})
            sure_row = [widgets.HTML("<b>How sure?</b> the chance your pick is right:"), self.sure]
        else:
            self.control = widgets.FloatText(value=0.0, description=f"best guess {unit}".strip(),
                                             style={"description_width": "initial"},
                                             layout=widgets.Layout(width="16em"))
            self.low_box = widgets.FloatText(value=0.0, description="80% sure it is between",
                                             style={"description_width": "initial"},
                                             layout=widgets.Layout(width="22em"))
            self.high_box = widgets.FloatText(value=0.0, description="and",
                                              style={"description_width": "initial"},
                                              layout=widgets.Layout(width="10em"))
            self.control.observe(self._guess_changed, names="value")
            self.low_box.observe(self._range_changed, names="value")
            self.high_box.observe(self._range_changed, names="value")
            sure_row = [widgets.HBox([self.low_box, self.high_box,
                                      widgets.HTML(html.escape(unit))])]
        self.button = widgets.Button(description="Commit prediction", button_style="primary",
                                     icon="lock", layout=big)
        self.status = widgets.HTML("")
        self.button.on_click(self._commit_clicked)
        title = widgets.HTML(f"<div style='font-size:1.15em'><b>Predict:</b> "
                             f"{html.escape(text)}</div>")
        self.widget = widgets.VBox([title, self.control, *sure_row, self.button, self.status])
        if not interactive():
            self.status.value = "<i>no prediction (non-interactive run)</i>"
            self.button.disabled = True

    # ---- a numeric range follows the best guess until the learner edits it
    def default_range(self, guess):
        """guess ± twice the question's tolerance (relative), a sensible first range."""
        half = 2 * self.tolerance * abs(guess) or 1.0
        return guess - half, guess + half

    def _guess_changed(self, change):
        if not self._range_edited:
            low, high = self.default_range(float(change["new"]))
            self._setting = True
            self.low_box.value, self.high_box.value = low, high
            self._setting = False

    def _range_changed(self, _change):
        if not getattr(self, "_setting", False):
            self._range_edited = True

    # ---- committing
    def _commit_clicked(self, _button=None):
        if self.committed:
            return
        value = self.control.value
        if self.kind == "choice":
            if value is None:
                self.status.value = "<span style='color:#b45309'>Pick an option first.</span>"
                return
            self.commit(value, confidence=self.sure.value)
            return
        low, high = self.low_box.value, self.high_box.value
        if not self._range_edited and low == high == 0.0:
            low, high = self.default_range(float(value))
        if not low <= value <= high:
            self.status.value = ("<span style='color:#b45309'>Your range must hold your best "
                                 "guess: low &le; best guess &le; high.</span>")
            return
        self.commit(value, low=low, high=high)

    def commit(self, value, confidence=None, low=None, high=None):
        """Lock in a prediction (what the Commit button does), with how sure you are."""
        if self.kind == "choice":
            self.prediction = value
            self.confidence = None if confidence is None else float(confidence)
        else:
            self.prediction = float(value)
            self.low = None if low is None else float(low)
            self.high = None if high is None else float(high)
        self.committed = True
        for control in self._controls():
            control.disabled = True
        self.status.value = f"Committed: <b>{html.escape(self.describe())}</b>"
        if _committed_before(self.key):
            # the scoreboard counts a question's first commit: a redo knows the answer
            self.status.value += ("<br><i>You committed a prediction for this question before: "
                                  "your scoreboard counts that first one.</i>")
        _log("commit", self)
        note = _send_to_room(self)
        if note:
            self.status.value += f"<br><i>{html.escape(note)}</i>"
        for callback in self._on_commit:
            callback()

    def _controls(self):
        extra = [self.sure] if self.kind == "choice" else [self.low_box, self.high_box]
        return [self.control, self.button, *extra]

    def confidence_fields(self):
        if self.kind == "choice":
            return {"confidence": self.confidence}
        return {"low": self.low, "high": self.high,
                "level": RANGE_LEVEL if self.low is not None else None}

    def describe(self):
        """'5.7 nats (80% range 4.5 to 7)' or 'about 50% (you: 70% sure)'."""
        if self.prediction is NO_PREDICTION:
            return "no prediction"
        text = self.format(self.prediction)
        if self.kind == "choice" and self.confidence is not None:
            text += f" ({self.confidence:.0%} sure)"
        elif self.kind == "number" and self.low is not None:
            text += f" (80% range {self.low:.4g} to {self.high:.4g})"
        return text

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
        return scores.hit(self.kind, self.prediction, actual, self.tolerance)

    def in_range(self, actual):
        """Did the 80% range hold the result? None without a range."""
        if self.kind != "number" or self.low is None or actual is None:
            return None
        return self.low <= float(actual) <= self.high


def ask(key, text, kind="choice", options=None, unit="", tolerance=None):
    """Show a prediction question; returns it for `reveal`.

    Asking the same key again (rerunning the cell) starts a fresh question.
    """
    question = Question(key, text, kind=kind, options=options, unit=unit, tolerance=tolerance)
    _QUESTIONS[key] = question
    if os.environ.get("NOPOS_GROUP"):  # reading-group mode: a tally box under each question
        tally.group_tally(question)
    if os.environ.get("NOPOS_ROOM") and interactive():  # a live room: say "I am here" early
        try:
            room.current()
        except (room.RoomError, OSError) as error:
            question.status.value = f"<i>{html.escape(str(error))}</i>"
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
            self.revealed = True  # reveal() shows it as plain output
        elif question.committed:
            self._reveal()
        else:
            question._on_commit.append(self._reveal)

    def _reveal(self):
        if self.revealed:
            return
        self.revealed = True
        self.message.value = self.summary_html()
        if self.show is not None:
            with self.output:
                self.show()
        _show_group_spread(self.question, self.actual, self.output)
        self.log()

    def log(self):
        q = self.question
        _log("reveal", q, actual=_jsonable(self.actual), hit=q.hit(self.actual))

    def summary_html(self):
        q = self.question
        verdict = {True: " &#10004; right", False: " &#10008; not this time", None: ""}[
            q.hit(self.actual)]
        actual = "" if self.actual is None else q.format(self.actual)
        parts = [f"<b>Your prediction:</b> {html.escape(q.describe())}",
                 f"<b>Result:</b> {html.escape(actual)}{verdict}"]
        inside = q.in_range(self.actual)
        if inside is not None:
            parts.append("Your 80% range " + ("held it." if inside else "missed it."))
        if self.explain:
            parts.append(html.escape(self.explain))
        return "<div class='nopos-reveal'>" + "<br>".join(parts) + "</div>"


def reveal(question, actual, explain="", show=None):
    """Show `actual` next to the committed prediction (waits for a commit if needed).

    `show`, if given, is called to draw extra output (a plot) at reveal time.
    Without a person at the keyboard the answer and the plot are shown at once,
    as ordinary output, and the result is logged for the scoreboard.
    The Reveal is kept in `predict.REVEALS[key]` (handy for tests).
    """
    result = Reveal(question, actual, explain=explain, show=show)
    REVEALS[question.key] = result
    if room.PANELS:  # the facilitator's kernel: the room's Reveal button may now show it
        room.answer(question.key, _jsonable(actual))
    if not interactive():
        display(HTML(result.summary_html()))
        if show is not None:
            show()
        _show_group_spread(question, actual)
        result.log()
    else:
        display(result.widget)


def _show_group_spread(question, actual, output=None):
    """In a reading group, the room's spread of answers next to the result."""
    if question.key not in tally.TALLIES:
        return
    if output is None:
        tally.show_spread(tally.TALLIES[question.key], actual)
    else:
        with output:
            tally.show_spread(tally.TALLIES[question.key], actual)


def _send_to_room(question):
    """The committed prediction to the joined live room, if any (`nopos.room`)."""
    if os.environ.get("NBGRADER_EXECUTION"):
        return None
    entry = {"text": question.text, "kind": question.kind, "unit": question.unit,
             "tolerance": question.tolerance, "prediction": question.prediction,
             **question.confidence_fields()}
    if question.kind == "choice":
        entry["options"] = [str(o) for o in question.options]
        entry["prediction"] = str(question.prediction)
    return room.send(question.key, entry)


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except TypeError:
        return float(value)
