"""Group tally for reading groups: how the room voted, shown next to the answer.

The facilitator asks the question, people vote (show of hands, or on paper),
and the facilitator types the counts:

    q = predict.ask("ch1.copy_accuracy", "...", options=[...])
    t = tally.group_tally(q)          # one box per option + a Record button
    ...
    tally.show_spread(t, actual)      # the room's spread, the right option highlighted

For a numeric question the facilitator types everyone's guesses instead
("5.7, 6, 4.5"), and the spread shows how many were within the tolerance.
`group_tally` also takes a plain list of options: `tally.group_tally(["a", "b"])`.

Recorded tallies are appended to `tallies.jsonl` beside the prediction log, so
a facilitator can look back at how past groups voted.
"""
import html
import re

import ipywidgets as widgets
from IPython.display import HTML, display

from nopos import scores
from nopos.session import append_record, interactive, log_path

TALLIES = {}  # question key -> the latest Tally made for it


def tally_log_path():
    return log_path().parent / "tallies.jsonl"


class Tally:
    """Counts per option, typed in by the facilitator, stored on Record."""

    def __init__(self, key, text, options=None, kind="choice", tolerance=None):
        if kind not in ("choice", "number"):
            raise ValueError("kind must be 'choice' or 'number'")
        if kind == "choice" and not options:
            raise ValueError("a choice tally needs options")
        self.key, self.text, self.kind = key, text, kind
        self.options = list(options or [])
        self.tolerance = 0.1 if tolerance is None else tolerance
        self.counts = None      # option -> people, once recorded (choice)
        self.guesses = None     # list of floats, once recorded (number)
        self._on_record = []
        if kind == "choice":
            self.boxes = {o: widgets.BoundedIntText(value=0, min=0, max=10_000,
                                                    description=str(o),
                                                    style={"description_width": "initial"},
                                                    layout=widgets.Layout(width="auto"))
                          for o in self.options}
            controls = list(self.boxes.values())
        else:
            self.boxes = {}
            self.guesses_box = widgets.Textarea(placeholder="everyone's guesses: 5.7, 6, 4.5 ...",
                                                layout=widgets.Layout(width="30em"))
            controls = [self.guesses_box]
        self.button = widgets.Button(description="Record", button_style="info", icon="users")
        self.status = widgets.HTML("")
        self.button.on_click(self._record_clicked)
        self.widget = widgets.VBox([widgets.HTML(f"<b>Group tally:</b> {html.escape(text)}"),
                                    *controls, self.button, self.status])

    @property
    def recorded(self):
        return self.counts is not None or self.guesses is not None

    @property
    def total(self):
        if self.counts is not None:
            return sum(self.counts.values())
        return len(self.guesses or [])

    def _record_clicked(self, _button=None):
        if self.kind == "choice":
            self.record({o: box.value for o, box in self.boxes.items()})
        else:
            try:
                guesses = parse_guesses(self.guesses_box.value)
            except ValueError as error:
                self.status.value = f"<span style='color:#b45309'>{html.escape(str(error))}</span>"
                return
            self.record(guesses)

    def record(self, votes):
        """Store the tally: {option: count} for a choice, a list of numbers for a number.

        Recording again replaces the earlier tally (a miscount fixed).
        """
        if self.kind == "choice":
            unknown = set(votes) - set(self.options)
            if unknown:
                raise ValueError(f"not options of this question: {sorted(map(str, unknown))}")
            counts = {o: int(votes.get(o, 0)) for o in self.options}
            if any(c < 0 for c in counts.values()):
                raise ValueError("counts cannot be negative")
            self.counts = counts
        else:
            self.guesses = [float(g) for g in votes]
        if self.total == 0:
            self.counts = self.guesses = None
            self.status.value = "<span style='color:#b45309'>Nobody counted yet: enter the votes.</span>"
            return
        self.status.value = f"Recorded {self.total} vote(s)."
        self._log()
        for callback in self._on_record:
            callback()

    def _log(self):
        append_record(tally_log_path(), {
            "key": self.key, "text": self.text, "kind": self.kind,
            "counts": self.counts, "guesses": self.guesses})


def parse_guesses(text):
    """'5.7, 6; 4.5\\n7' -> [5.7, 6.0, 4.5, 7.0]"""
    words = [w for w in re.split(r"[\s,;]+", text.strip()) if w]
    try:
        return [float(w) for w in words]
    except ValueError:
        bad = next(w for w in words if not _is_number(w))
        raise ValueError(f"not a number: {bad!r}; separate guesses with commas") from None


def _is_number(word):
    try:
        float(word)
        return True
    except ValueError:
        return False


def group_tally(question, text=None, display_widget=True):
    """Show a tally widget for `question` (a predict.Question, or a list of options)."""
    if isinstance(question, (list, tuple)):
        t = Tally(key=text or "group", text=text or "How did the group vote?", options=question)
    else:
        t = Tally(key=question.key, text=question.text, options=question.options,
                  kind=question.kind, tolerance=question.tolerance)
    TALLIES[t.key] = t
    if display_widget:
        display(t.widget)
    return t


# ---------------------------------------------------------------- the spread
def spread_html(t, actual):
    """HTML bars of the group's votes, the correct option (or the hits) highlighted."""
    esc = html.escape
    if not t.recorded:
        return ("<div class='nopos-spread'><i>No group tally recorded yet: enter the votes "
                "above and press Record.</i></div>")
    rows = []
    if t.kind == "choice":
        right = t.counts.get(actual, 0)
        most = max(t.counts.values()) or 1
        for option, count in t.counts.items():
            correct = option == actual
            colour = "#16a34a" if correct else "#9ca3af"
            width = 100 * count / most
            mark = " &#10004;" if correct else ""
            weight = "bold" if correct else "normal"
            rows.append(
                f"<tr><td style='text-align:left;padding:1px 8px;font-weight:{weight}'>"
                f"{esc(str(option))}{mark}</td>"
                f"<td style='width:16em;padding:1px 4px'><div style='background:{colour};"
                f"width:{width:.0f}%;height:1em'></div></td>"
                f"<td style='text-align:right;padding:1px 8px'>{count} "
                f"({count / t.total:.0%})</td></tr>")
        verdict = f"{right} of {t.total} ({right / t.total:.0%}) chose the right answer."
    else:
        hits = [g for g in t.guesses if scores.hit("number", g, actual, t.tolerance)]
        lo, hi = min(t.guesses + [actual]), max(t.guesses + [actual])
        span = (hi - lo) or 1.0
        for g in sorted(t.guesses):
            colour = "#16a34a" if g in hits else "#9ca3af"
            left = 100 * (g - lo) / span
            rows.append(
                f"<tr><td style='text-align:right;padding:1px 8px'>{g:.4g}</td>"
                f"<td style='width:16em;padding:1px 4px;position:relative'>"
                f"<div style='margin-left:{left:.0f}%;width:0.6em;height:0.8em;"
                f"background:{colour}'></div></td></tr>")
        where = 100 * (actual - lo) / span
        rows.append(f"<tr><td style='text-align:right;padding:1px 8px;font-weight:bold'>"
                    f"{actual:.4g} &#10004;</td><td style='padding:1px 4px'><div style="
                    f"'margin-left:{where:.0f}%;width:0.6em;height:0.8em;background:#16a34a;"
                    f"outline:2px solid black'></div></td></tr>")
        verdict = (f"{len(hits)} of {t.total} guesses ({len(hits) / t.total:.0%}) were within "
                   f"{t.tolerance:.0%} of the result.")
    return (f"<div class='nopos-spread'><b>How the group voted:</b>"
            f"<table style='border-collapse:collapse'>{''.join(rows)}</table>"
            f"<div>{esc(verdict)}</div></div>")


class Spread:
    """The group's spread next to the answer; fills in when the tally is recorded."""

    def __init__(self, t, actual):
        self.tally, self.actual = t, actual
        self.widget = widgets.HTML(spread_html(t, actual))
        t._on_record.append(self.update)

    def update(self):
        self.widget.value = spread_html(self.tally, self.actual)


def show_spread(t, actual, display_widget=True):
    """Show the group's spread next to `actual`. `t`: a Tally, or a question key."""
    if isinstance(t, str):
        t = TALLIES[t]
    spread = Spread(t, actual)
    if display_widget:
        if interactive():
            display(spread.widget)
        else:
            display(HTML(spread.widget.value))
    return spread
