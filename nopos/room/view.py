"""The facilitator's screen: a live count per question, then the room's answers on reveal.

Big type for a projector. A background thread polls the entries folder every
`interval` seconds (listing a folder of a few hundred names costs well under a
millisecond) and updates the counts; nothing is pushed, so a participant's
commit needs no server and a restarted facilitator kernel just polls again.
"""
import html
import threading
import types

import ipywidgets as widgets
from IPython.display import display

from nopos import tally

INTERVAL = 0.5   # seconds between polls: the count lags a commit by at most this much
BIG = "font-size:1.4em;line-height:1.35"


# ---------------------------------------------------------------- HTML from an aggregate
def revealed_html(agg):
    """The room's distribution next to the answer, its calibration, and (opted in) who was
    closest, as self-contained HTML (the notebook, the command line and slides use it)."""
    if not agg.get("n"):
        return f"<div style='{BIG}'><i>Nobody in the room committed a prediction.</i></div>"
    if agg["kind"] == "choice":
        body = tally.spread_html(_as_tally(agg), agg["actual"]).replace(
            "How the group voted", f"How the room voted ({people(agg['n'])})")
    else:
        body = histogram_html(agg)
    parts = [body, calibration_html(agg)]
    if agg.get("unreadable"):
        parts.append(f"<div style='color:#b45309'>{agg['unreadable']} entries could not be read "
                     "(not a regular file, too large, or not JSON): not counted.</div>")
    if agg.get("closest"):
        parts.append(closest_html(agg))
    return f"<div class='nopos-room-reveal' style='{BIG}'>" + "".join(parts) + "</div>"


def people(n):
    return "1 person" if n == 1 else f"{n} people"


def _as_tally(agg):
    """The aggregate in the shape tally.spread_html draws (the manual tally's bars)."""
    return types.SimpleNamespace(kind="choice", recorded=True, counts=agg["counts"],
                                 guesses=None, total=agg["n"], tolerance=agg["tolerance"])


def histogram_html(agg, bins=8):
    """Bars of how many guessed in each range of numbers; the answer's bar marked."""
    guesses, actual, unit = agg["guesses"], float(agg["actual"]), agg.get("unit", "")
    lo, hi = min(guesses + [actual]), max(guesses + [actual])
    width = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for g in guesses:
        counts[min(int((g - lo) / width), bins - 1)] += 1
    home = min(int((actual - lo) / width), bins - 1)
    most = max(counts) or 1
    rows = []
    for i, c in enumerate(counts):
        a, b = lo + i * width, lo + (i + 1) * width
        mark = f" &#10004; answer {actual:.4g}" if i == home else ""
        colour = "#16a34a" if i == home else "#60a5fa"
        rows.append(
            f"<tr><td style='text-align:right;padding:1px 8px'>{a:.3g} to {b:.3g}</td>"
            f"<td style='width:16em;padding:1px 4px'><div style='background:{colour};"
            f"width:{100 * c / most:.0f}%;height:1em'></div></td>"
            f"<td style='padding:1px 8px'>{c}{mark}</td></tr>")
    verdict = (f"{agg['right']} of {agg['n']} guesses ({agg['right'] / agg['n']:.0%}) were within "
               f"{agg['tolerance']:.0%} of the answer, {actual:.4g} {html.escape(unit)}.")
    return (f"<div class='nopos-spread'><b>The room's guesses ({people(agg['n'])}):</b>"
            f"<table style='border-collapse:collapse'>{''.join(rows)}</table>"
            f"<div>{verdict}</div></div>")


def calibration_html(agg):
    cal = agg.get("calibration") or {}
    if not cal.get("n"):
        return "<div><i>No confidences stated, so no calibration.</i></div>"
    lines = [f"<b>Calibration:</b> {html.escape(cal['verdict'])}"]
    if agg["kind"] == "choice":
        lines.append(f"Mean Brier score {cal['brier']:.3f} (0 is perfect, always 50% earns 0.25).")
        for low, high, count, said, right in cal["bins"]:
            lines.append(f"&nbsp;&nbsp;said {low:.0%}-{high:.0%}: {count} people, "
                         f"average {said:.0%} sure, {right:.0%} right")
    else:
        lines.append(f"{cal['held']} of {cal['n']} ranges held it (an honest room: about 80%); "
                     f"mean interval score {cal['interval_score']:.2f} of the answer.")
    return "<div class='nopos-room-calibration'>" + "<br>".join(lines) + "</div>"


def closest_html(agg):
    def row(c):
        what = html.escape(str(c["prediction"]))
        if "off_by" in c:
            return f"{html.escape(c['user'])}: {what} (off by {c['off_by']:.3g})"
        sure = "" if c.get("confidence") is None else f", {c['confidence']:.0%} sure"
        return f"{html.escape(c['user'])}: {what}{sure}"
    return ("<div class='nopos-room-closest'><b>Closest:</b> "
            + "; ".join(row(c) for c in agg["closest"]) + "</div>")


# ---------------------------------------------------------------- the live panel
class QuestionRow:
    """One question: 'k of n committed', a Reveal button (once the answer is known)."""

    def __init__(self, panel, key):
        self.panel, self.key, self.actual = panel, key, None
        self.count = widgets.HTML("")
        self.button = widgets.Button(description="Reveal", icon="eye", button_style="success",
                                     disabled=True, tooltip="run the chapter's reveal cell first")
        self.button.on_click(lambda _b: self.panel.reveal(self.key))
        self.result = widgets.HTML("")
        self.widget = widgets.VBox([widgets.HBox([self.count, self.button]), self.result])

    def show_count(self, committed, people):
        self.count.value = (f"<div style='{BIG};min-width:22em'><code>{html.escape(self.key)}"
                            f"</code>: <b style='font-size:1.6em'>{committed}</b> of {people} "
                            f"committed</div>")


class Panel:
    """The facilitator's view of a room (`nopos.room.start` and `resume` return one)."""

    def __init__(self, room, interval=INTERVAL):
        self.room, self.interval = room, interval
        self.info = room.info
        self.rows = {}
        self.header = widgets.HTML(self._header())
        self.status = widgets.HTML("")
        self.box = widgets.VBox([])
        self.widget = widgets.VBox([self.header, self.box, self.status])
        self._stop = threading.Event()
        self._thread = None
        self.committed, self.people = {}, 0
        if not self.info.get("private_group", True):
            self.status.value = ("<span style='color:#b45309'>Your primary group has other "
                                 "members: they could read the entries. Ask the admin for a "
                                 "private group per user (useradd's default).</span>")
        for key in sorted(p.stem for p in room.revealed_dir.glob("*.json")):
            self._row(key).result.value = revealed_html(room.revealed(key))  # a resumed room
        self.refresh()

    def _header(self):
        info = self.info
        return (f"<div style='font-size:1.6em'>Room <b style='font-size:1.8em;letter-spacing:"
                f".15em'>{self.room.code}</b> &middot; {html.escape(str(info['chapter']))}</div>"
                f"<div style='{BIG}'>Join: run <code>nopos.room.join(\"{self.room.code}\")</code> "
                f"in your notebook, or start it with <code>NOPOS_ROOM={self.room.code}</code>."
                f"</div>")

    def _row(self, key):
        if key not in self.rows:
            self.rows[key] = QuestionRow(self, key)
            self.box.children = [r.widget for _, r in sorted(self.rows.items())]
        return self.rows[key]

    def refresh(self):
        """Poll the folder once and update every count."""
        try:
            self.committed, self.people = self.room.counts()
        except OSError as error:
            self.status.value = f"<span style='color:#b45309'>{html.escape(str(error))}</span>"
            return
        people = max(self.people, self.info.get("expected") or 0)
        for key in set(self.committed) | set(self.rows):
            self._row(key).show_count(self.committed.get(key, 0), people)

    # ---- polling in the background
    def start_polling(self):
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._poll, daemon=True, name="nopos-room")
            self._thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(self.interval):
            self.refresh()

    def stop_polling(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # ---- the answer and the reveal
    def answer(self, key, actual):
        """Make the answer known (predict.reveal does this): the Reveal button comes alive."""
        row = self._row(key)
        row.actual = actual
        row.button.disabled = False
        row.button.tooltip = "show the room's predictions and the answer"

    def reveal(self, key, actual=None):
        """Publish the room's aggregate for `key` and show it; returns the aggregate."""
        row = self._row(key)
        if actual is None:
            actual = row.actual
        if actual is None:
            self.status.value = ("<span style='color:#b45309'>No answer yet for "
                                 f"{html.escape(key)}: run its reveal cell first, or call "
                                 "panel.reveal(key, actual=...)</span>")
            return None
        agg = self.room.publish(key, actual)
        row.result.value = revealed_html(agg)
        return agg

    def show(self):
        display(self.widget)
        return self
