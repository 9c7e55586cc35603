"""Your predictions, scored: how often you were right, and how far off.

In a notebook (the last cell of a chapter):

    from nopos import scoreboard
    scoreboard.show("ch1")          # this chapter: a table and a calibration figure
    scoreboard.show()               # the whole course

From a terminal:

    python -m nopos.scoreboard                  # course-wide summary
    python -m nopos.scoreboard --chapter ch1    # one chapter
    python -m nopos.scoreboard --plot me.png    # save the calibration figure too
    python -m nopos.scoreboard --reset [--chapter ch1]

It reads the log that `nopos.predict` writes (`predict.log_path()`). Only your
latest committed prediction for each question counts, so redoing a chapter
replaces your old guesses instead of counting twice. A numeric guess is a hit
when it is within the question's relative tolerance of the result (10% unless
the question says otherwise); the hit is recomputed here from the logged
numbers, so the scoreboard and the reveal always agree on the maths.
"""
import argparse
import html
import json
import math
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from nopos import predict

DEFAULT_TOLERANCE = 0.1


# ---------------------------------------------------------------- reading the log
def read_log(path=None):
    """Every well-formed record of the log, in order. Missing log: []. Bad lines are skipped."""
    path = Path(path) if path else predict.log_path()
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if (isinstance(record, dict) and record.get("event") in ("commit", "reveal")
                and isinstance(record.get("key"), str) and record["key"]):
            records.append(record)
    return records


def chapter_tag(value):
    """'ch1.untrained_loss', 'ch1', '1', '01', '01_dataset' -> 'ch1' (None if no number)."""
    text = str(value).strip().lower()
    match = re.match(r"^(?:ch(?:apter)?[ _-]?)?0*(\d+)", text)
    return f"ch{int(match.group(1))}" if match else None


def chapter_of(key):
    return chapter_tag(key.split(".", 1)[0]) or key.split(".", 1)[0]


def _number(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def judge(kind, prediction, actual, tolerance=None):
    """True/False, or None when there is nothing to judge (no prediction or no result).

    Numbers: |prediction - actual| <= tolerance * |actual| (relative tolerance).
    """
    if prediction is None or actual is None:
        return None
    if kind == "number":
        p, a = _number(prediction), _number(actual)
        if p is None or a is None:
            return None
        tol = DEFAULT_TOLERANCE if _number(tolerance) is None else float(tolerance)
        return abs(p - a) <= tol * max(abs(a), 1e-12)
    return prediction == actual


def relative_error(prediction, actual):
    """(prediction - actual) / |actual|, or None."""
    p, a = _number(prediction), _number(actual)
    if p is None or a is None:
        return None
    return (p - a) / max(abs(a), 1e-12)


@dataclass
class Entry:
    """One question on the scoreboard: your latest prediction and its result."""
    key: str
    chapter: str
    text: str
    kind: str
    prediction: object
    actual: object = None
    tolerance: float = None
    time: str = ""

    @property
    def hit(self):
        return judge(self.kind, self.prediction, self.actual, self.tolerance)

    @property
    def error(self):
        return relative_error(self.prediction, self.actual) if self.kind == "number" else None

    @property
    def pending(self):
        return self.actual is None


def entries(records=None, chapter=None):
    """The scoreboard rows: one per question, the latest commit wins.

    The result comes from the latest reveal of that question (results do not
    depend on the guess, so an earlier reveal still tells the answer).
    """
    records = read_log() if records is None else records
    latest, actual, order = {}, {}, []
    for record in records:
        key = record["key"]
        if record["event"] == "commit":
            if record.get("prediction") is None:
                continue
            if key not in latest:
                order.append(key)
            latest[key] = record
        elif record.get("actual") is not None:
            actual[key] = record["actual"]
    want = chapter_tag(chapter) if chapter else None
    rows = []
    for key in order:
        record = latest[key]
        kind = record.get("kind") if record.get("kind") in ("choice", "number") else "choice"
        tolerance = _number(record.get("tolerance"))
        if kind == "number" and tolerance is None:
            tolerance = DEFAULT_TOLERANCE
        entry = Entry(key=key, chapter=chapter_of(key), text=str(record.get("text") or key),
                      kind=kind, prediction=record.get("prediction"), actual=actual.get(key),
                      tolerance=tolerance, time=str(record.get("time") or ""))
        if want is None or entry.chapter == want:
            rows.append(entry)
    return sorted(rows, key=lambda e: (_chapter_number(e.chapter), order.index(e.key)))


def _chapter_number(chapter):
    match = re.match(r"ch(\d+)$", chapter)
    return int(match.group(1)) if match else 10**6


# ---------------------------------------------------------------- summary maths
@dataclass
class Summary:
    answered: int      # questions with a prediction and a result
    hits: int
    pending: int       # committed, but the reveal has not run yet
    numeric: int       # numeric questions answered
    median_abs_error: float = None   # of numeric guesses, relative
    bias: float = None               # median log(prediction/actual): > 0 means too high

    @property
    def rate(self):
        return self.hits / self.answered if self.answered else None


def summarise(rows):
    judged = [e for e in rows if e.hit is not None]
    numeric = [e for e in judged if e.kind == "number" and e.error is not None]
    ratios = [math.log(_number(e.prediction) / _number(e.actual)) for e in numeric
              if _number(e.prediction) and _number(e.actual)
              and _number(e.prediction) / _number(e.actual) > 0]
    return Summary(answered=len(judged), hits=sum(bool(e.hit) for e in judged),
                   pending=sum(e.pending for e in rows), numeric=len(numeric),
                   median_abs_error=statistics.median(abs(e.error) for e in numeric)
                   if numeric else None,
                   bias=statistics.median(ratios) if ratios else None)


def by_chapter(rows):
    chapters = {}
    for e in rows:
        chapters.setdefault(e.chapter, []).append(e)
    return {ch: summarise(rs) for ch, rs in chapters.items()}


def calibration_note(summary):
    """One sentence about the numeric guesses, or ''."""
    if summary.bias is None or summary.numeric < 2:
        return ""
    factor = math.exp(abs(summary.bias))
    if factor < 1.05:
        return "Your numeric guesses are well centred: no systematic over- or under-estimate."
    way = "too high" if summary.bias > 0 else "too low"
    return (f"Your numeric guesses run {way}: typically by a factor of {factor:.2g}. "
            f"Next time, nudge your first instinct the other way.")


# ---------------------------------------------------------------- reset
def reset(chapter=None, path=None):
    """Forget predictions: all of them, or only one chapter's (e.g. 'ch1').

    Returns how many records were removed. Lines that cannot be read are kept
    when only one chapter is reset (they are someone else's problem) and go
    with everything else on a full reset.
    """
    path = Path(path) if path else predict.log_path()
    if not path.exists():
        return 0
    if chapter is None:
        removed = len(read_log(path))
        path.unlink()
        return removed
    want = chapter_tag(chapter)
    if want is None:
        raise ValueError(f"not a chapter: {chapter!r} (try 'ch1')")
    kept, removed = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
            key = record["key"] if isinstance(record, dict) else None
        except (ValueError, KeyError):
            key = None
        if isinstance(key, str) and chapter_of(key) == want:
            removed += 1
        else:
            kept.append(line)
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    return removed


# ---------------------------------------------------------------- showing it
def _fmt(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _verdict(entry):
    return {True: "\N{HEAVY CHECK MARK} hit", False: "\N{HEAVY BALLOT X} miss",
            None: "\N{HOURGLASS} not revealed yet"}[entry.hit]


def _how_far(entry):
    if entry.error is None:
        return ""
    return f"{entry.error:+.0%} (tolerance \N{PLUS-MINUS SIGN}{entry.tolerance:.0%})"


def text_report(rows, title="Prediction scoreboard"):
    lines = [title, "=" * len(title)]
    if not rows:
        lines.append("No predictions logged yet: commit a guess at a prediction point "
                     "in a chapter notebook, and it appears here.")
        return "\n".join(lines)
    chapter = None
    for e in rows:
        if e.chapter != chapter:
            chapter = e.chapter
            lines.append(f"\n{chapter}")
        lines.append(f"  {_verdict(e):<22} {e.key}")
        lines.append(f"      {e.text}")
        lines.append(f"      you: {_fmt(e.prediction)}   result: {_fmt(e.actual)}   {_how_far(e)}"
                     .rstrip())
    lines.append("")
    chapters = by_chapter(rows)
    if len(chapters) > 1:
        for ch, s in chapters.items():
            lines.append(f"  {ch}: {s.hits}/{s.answered} hits" + (
                f", {s.pending} pending" if s.pending else ""))
    lines.append(summary_line(summarise(rows)))
    note = calibration_note(summarise(rows))
    if note:
        lines.append(note)
    return "\n".join(lines)


def summary_line(s):
    if not s.answered:
        text = "No prediction revealed yet"
    else:
        text = f"Hits: {s.hits}/{s.answered} ({s.rate:.0%})"
    if s.numeric:
        text += f"; numeric guesses off by {s.median_abs_error:.0%} (median)"
    if s.pending:
        text += f"; {s.pending} waiting for their reveal"
    return text + "."


def html_table(rows, title="Your predictions"):
    esc = html.escape
    colours = {True: "#dcfce7", False: "#fee2e2", None: "#f3f4f6"}
    out = [f"<div class='nopos-scoreboard'><h4>{esc(title)}</h4>"]
    if not rows:
        out.append("<p><i>No predictions logged yet.</i></p></div>")
        return "".join(out)
    out.append("<table style='border-collapse:collapse'><tr>"
               + "".join(f"<th style='text-align:left;padding:2px 8px'>{h}</th>"
                         for h in ("Question", "You said", "Result", "", "How far off"))
               + "</tr>")
    for e in rows:
        out.append(f"<tr style='background:{colours[e.hit]}'>"
                   f"<td style='text-align:left;padding:2px 8px'>{esc(e.text)}"
                   f"<br><small><code>{esc(e.key)}</code></small></td>"
                   f"<td style='padding:2px 8px'>{esc(_fmt(e.prediction))}</td>"
                   f"<td style='padding:2px 8px'>{esc(_fmt(e.actual))}</td>"
                   f"<td style='padding:2px 8px'>{esc(_verdict(e))}</td>"
                   f"<td style='padding:2px 8px'>{esc(_how_far(e))}</td></tr>")
    out.append("</table>")
    s = summarise(rows)
    out.append(f"<p><b>{esc(summary_line(s))}</b>")
    note = calibration_note(s)
    if note:
        out.append(f"<br>{esc(note)}")
    out.append("</p></div>")
    return "".join(out)


def calibration_figure(rows):
    """Left: hits out of answered, per chapter. Right: how far off each numeric guess was.

    Returns a matplotlib Figure, or None when nothing has been revealed yet.
    """
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    chapters = {ch: s for ch, s in by_chapter(rows).items() if s.answered}
    numeric = [e for e in rows if e.error is not None]
    if not chapters:
        return None
    fig = Figure(figsize=(10, max(3.0, 0.45 * len(numeric) + 1.5)))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
    names = list(chapters)
    rates = [chapters[c].rate for c in names]
    bars = left.bar(names, rates, color="#4f46e5")
    for bar, c in zip(bars, names):
        left.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 0.02,
                  f"{chapters[c].hits}/{chapters[c].answered}", ha="center", va="bottom")
    left.set_ylim(0, 1.15)
    left.set_ylabel("fraction of predictions that hit")
    left.set_title("Hits per chapter")
    if numeric:
        # guess / result on a log axis: x2 too high and x0.5 too low look equally far off
        floor = 0.01
        ratios = [max(1 + e.error, floor) for e in numeric]
        y = list(range(len(numeric)))
        colours = ["#16a34a" if e.hit else "#dc2626" for e in numeric]
        for i, (e, r) in enumerate(zip(numeric, ratios)):  # each question's own tolerance
            right.fill_betweenx([i - 0.45, i + 0.45], max(1 - e.tolerance, floor), 1 + e.tolerance,
                                color="#9ca3af", alpha=0.35, linewidth=0)
        right.barh(y, [r - 1 for r in ratios], left=1, color=colours, height=0.6)
        right.set_xscale("log")
        low = min(ratios + [1 - max(e.tolerance for e in numeric), 0.5])
        high = max(ratios + [2.0])
        lo_lim, hi_lim = max(low / 1.5, floor / 1.5), high * 1.5
        right.set_xlim(lo_lim, hi_lim)
        right.set_xticks([t for t in (0.01, 0.1, 0.2, 0.5, 1, 2, 5, 10, 100, 1000)
                          if lo_lim <= t <= hi_lim])
        right.axvline(1, color="black", linewidth=0.8)
        right.set_yticks(y, [e.key for e in numeric])
        right.invert_yaxis()
        right.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"\N{MULTIPLICATION SIGN}{v:g}"))
        right.set_xlabel("your guess / the result   (grey: counts as a hit)")
        right.set_title("How far off were your numeric guesses?")
    else:
        right.axis("off")
        right.text(0.5, 0.5, "no numeric predictions revealed yet", ha="center", va="center")
    fig.tight_layout()
    return fig


def show(chapter=None, records=None):
    """Display the scoreboard in a notebook: an HTML table and the calibration figure."""
    from IPython.display import HTML, display

    rows = entries(records, chapter=chapter)
    title = f"Your predictions, chapter {chapter_tag(chapter)[2:]}" if chapter and chapter_tag(
        chapter) else "Your predictions, whole course"
    display(HTML(html_table(rows, title)))
    fig = calibration_figure(rows)
    if fig is not None:
        display(fig)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description="Your prediction scoreboard.")
    parser.add_argument("--chapter", help="only this chapter, e.g. ch1")
    parser.add_argument("--reset", action="store_true",
                        help="forget your predictions (only --chapter's, if given)")
    parser.add_argument("--plot", metavar="PNG", help="also save the calibration figure here")
    args = parser.parse_args(argv)
    if args.chapter and chapter_tag(args.chapter) is None:
        parser.error(f"not a chapter: {args.chapter!r} (try ch1)")
    if args.reset:
        removed = reset(args.chapter)
        what = f"chapter {chapter_tag(args.chapter)}" if args.chapter else "all chapters"
        print(f"reset {what}: {removed} logged event(s) removed from {predict.log_path()}")
        return 0
    rows = entries(chapter=args.chapter)
    title = (f"Prediction scoreboard, {chapter_tag(args.chapter)}" if args.chapter
             else "Prediction scoreboard, whole course")
    print(text_report(rows, title))
    print(f"\n(log: {predict.log_path()})")
    if args.plot:
        fig = calibration_figure(rows)
        if fig is None:
            print("nothing to plot yet")
        else:
            fig.savefig(args.plot, dpi=100)
            print(f"calibration figure: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
