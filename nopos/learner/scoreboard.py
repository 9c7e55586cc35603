"""Your predictions, scored: how often you were right, and how far off.

In a notebook (the last cell of a chapter):

    from nopos.learner import scoreboard
    scoreboard.show("ch1")          # this chapter: a table and a calibration figure
    scoreboard.show()               # the whole course

From a terminal:

    python -m nopos.learner.scoreboard                  # course-wide summary
    python -m nopos.learner.scoreboard --chapter ch1    # one chapter
    python -m nopos.learner.scoreboard --plot me.png    # save the calibration figure too
    python -m nopos.learner.scoreboard --reset [--chapter ch1]

    python -m nopos.learner.scoreboard --cbm            # add certainty-based marks (instructors)
    python -m nopos.learner.scoreboard --log other.jsonl

It reads the log that `nopos.predict` writes (`predict.log_path()`). Only your
first committed prediction for each question counts (a prediction is the first
commitment: a guess committed again once the answer is known, a redone chapter
or a second browser tab, would score what was seen, not what was predicted).
Records are taken in time order, so a log pieced together from several (the
site's download appended to the notebooks' log) counts the same, and a record
appended twice counts once. A numeric guess is a hit
when it is within the question's relative tolerance of the result (10% unless
the question says otherwise); the hit is recomputed here from the logged
numbers, so the scoreboard and the reveal always agree on the maths.

Beside hit/miss, predictions made with a confidence are scored by rules that
reward honesty (`nopos.scores`): the Brier and log scores for choices, the
interval score for 80% ranges; a reliability diagram compares how sure you
said you were with how often you were right, per bin, with a verdict in words
and the trend across chapters. Older logs without a confidence count as
hit/miss only. Certainty-based marking is off unless asked for (--cbm,
NOPOS_CBM=1) and never enters nbgrader's points.
"""
import argparse
import html
import json
import math
import os
import re
import statistics
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from nopos import predict, scores

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


def in_time_order(records):
    """`records` without repeats (a log appended twice), sorted by their time (stable: file
    order where times tie). A record whose time cannot be read goes after every timed one,
    in file order: it cannot tell when it was made, so it never comes before one that can
    (one blank time must not put a whole pieced-together log in file order)."""
    seen, unique = set(), []
    for record in records:
        mark = json.dumps(record, sort_keys=True, default=str)
        if mark not in seen:
            seen.add(mark)
            unique.append(record)
    timed = [(when, n, r) for n, r in enumerate(unique) if (when := _when(r.get("time"))) is not None]
    untimed = [r for r in unique if _when(r.get("time")) is None]
    return [r for _, _, r in sorted(timed, key=lambda x: x[:2])] + untimed


def _when(text):
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


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
        return scores.hit(kind, p, a, tol)
    return scores.hit(kind, prediction, actual, None)


def relative_error(prediction, actual):
    """(prediction - actual) / |actual|, or None."""
    p, a = _number(prediction), _number(actual)
    if p is None or a is None:
        return None
    return (p - a) / max(abs(a), 1e-12)


@dataclass
class Entry:
    """One question on the scoreboard: your latest prediction, how sure you were, its result."""
    key: str
    chapter: str
    text: str
    kind: str
    prediction: object
    actual: object = None
    tolerance: float = None
    time: str = ""
    confidence: float = None     # choice: the probability given to the chosen option
    low: float = None            # number: the 80% range
    high: float = None

    @property
    def hit(self):
        return judge(self.kind, self.prediction, self.actual, self.tolerance)

    @property
    def error(self):
        return relative_error(self.prediction, self.actual) if self.kind == "number" else None

    @property
    def pending(self):
        return self.prediction is not None and self.actual is None

    @property
    def in_range(self):
        """Did the 80% range hold the result? None without a range or a result."""
        a = _number(self.actual)
        if self.kind != "number" or self.low is None or a is None:
            return None
        return self.low <= a <= self.high

    @property
    def stated(self):
        """(how sure you said you were, whether that came true), or None (old logs, no result)."""
        if self.kind == "choice" and self.confidence is not None and self.hit is not None:
            return self.confidence, self.hit
        if self.in_range is not None:
            return scores.RANGE_LEVEL, self.in_range
        return None

    @property
    def brier(self):
        if self.kind == "choice" and self.stated:
            return scores.brier(*self.stated)
        return None

    @property
    def log_score(self):
        if self.kind == "choice" and self.stated:
            return scores.log_score(*self.stated)
        return None

    @property
    def interval_score(self):
        """The interval score divided by |result|, so that questions compare."""
        a = _number(self.actual)
        if self.in_range is None:
            return None
        return scores.interval_score(self.low, self.high, a) / max(abs(a), 1e-12)

    @property
    def cbm(self):
        """Certainty-based mark, for choices with a stated confidence."""
        if self.kind == "choice" and self.stated:
            return scores.cbm_mark(*self.stated)
        return None


def _predicts(record):
    """Does a commit hold a prediction? Not without a value, nor with a number that is not
    finite (inf or NaN would count as the first commit and shut out a real one)."""
    value = record.get("prediction")
    if isinstance(value, float) or record.get("kind") == "number" and not isinstance(value, str):
        return _number(value) is not None
    return value is not None and str(value).strip() != ""


def _range(record):
    low, high = _number(record.get("low")), _number(record.get("high"))
    if low is None or high is None:
        return None, None
    return min(low, high), max(low, high)


def _confidence(record):
    p = _number(record.get("confidence"))
    return p if p is not None and 0.0 <= p <= 1.0 else None


def entries(records=None, chapter=None):
    """The scoreboard rows: one per question, its first commit (in time order) counts.

    A commit made after the question's answer was shown is no prediction, nor is one
    without a finite number or a choice. The result comes from the latest reveal of that
    question (results do not depend on the guess, so an earlier reveal still tells the answer); a
    shortened run's result (`quick`) counts only when there is no other.
    Questions revealed but never committed (a run with nobody at the keyboard)
    are rows with no prediction: their results show, nothing is scored.
    """
    records = in_time_order(read_log() if records is None else records)
    latest, revealed, actual, order, shown = {}, {}, {}, [], set()
    for record in records:
        key = record["key"]
        if key not in order:
            order.append(key)
        if record["event"] == "commit":
            # a commit once the answer was shown (a run with nobody at the keyboard, another
            # tab, the site after the notebook) is no prediction
            if _predicts(record) and key not in shown:
                latest.setdefault(key, record)
        else:
            revealed.setdefault(key, record)
            if not record.get("quick"):  # a progress check's run: nobody sees its outputs
                shown.add(key)
            if record.get("actual") is not None:
                quick = bool(record.get("quick"))
                if not quick or actual.get(key, (None, True))[1]:
                    actual[key] = (record["actual"], quick)
    want = chapter_tag(chapter) if chapter else None
    rows = []
    for key in order:
        record = latest.get(key) or revealed.get(key)
        if record is None:
            continue
        kind = record.get("kind") if record.get("kind") in ("choice", "number") else "choice"
        tolerance = _number(record.get("tolerance"))
        if kind == "number" and tolerance is None:
            tolerance = DEFAULT_TOLERANCE
        committed = key in latest
        low, high = _range(record) if committed and kind == "number" else (None, None)
        entry = Entry(key=key, chapter=chapter_of(key), text=str(record.get("text") or key),
                      kind=kind, prediction=record.get("prediction") if committed else None,
                      actual=actual.get(key, (None,))[0], tolerance=tolerance,
                      time=str(record.get("time") or ""),
                      confidence=_confidence(record) if committed and kind == "choice" else None,
                      low=low, high=high)
        if want is None or entry.chapter == want:
            rows.append(entry)
    return sorted(rows, key=lambda e: (_chapter_number(e.chapter), order.index(e.key)))


def _chapter_number(chapter):
    match = re.match(r"ch(\d+)$", chapter)
    return int(match.group(1)) if match else 10**6


# ---------------------------------------------------------------- summary maths
def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


@dataclass
class Summary:
    answered: int      # questions with a prediction and a result
    hits: int
    pending: int       # committed, but the reveal has not run yet
    numeric: int       # numeric questions answered
    median_abs_error: float = None   # of numeric guesses, relative
    bias: float = None               # median log(prediction/actual): > 0 means too high
    stated: list = None              # (confidence, came true) of every scored prediction
    brier: float = None              # mean Brier score of choices with a confidence
    log_score: float = None          # mean log score of the same
    interval_score: float = None     # mean relative interval score of ranges
    ranges_held: tuple = None        # (ranges that held the result, ranges)
    cbm: int = None                  # total certainty-based marks
    cbm_count: int = 0
    no_prediction: int = 0           # revealed, but nothing committed

    @property
    def rate(self):
        return self.hits / self.answered if self.answered else None


def summarise(rows):
    judged = [e for e in rows if e.hit is not None]
    numeric = [e for e in judged if e.kind == "number" and e.error is not None]
    ratios = [math.log(_number(e.prediction) / _number(e.actual)) for e in numeric
              if _number(e.prediction) and _number(e.actual)
              and _number(e.prediction) / _number(e.actual) > 0]
    ranged = [e for e in rows if e.in_range is not None]
    marks = [e.cbm for e in rows if e.cbm is not None]
    return Summary(answered=len(judged), hits=sum(bool(e.hit) for e in judged),
                   pending=sum(e.pending for e in rows), numeric=len(numeric),
                   median_abs_error=statistics.median(abs(e.error) for e in numeric)
                   if numeric else None,
                   bias=statistics.median(ratios) if ratios else None,
                   stated=[e.stated for e in rows if e.stated is not None],
                   brier=_mean(e.brier for e in rows), log_score=_mean(e.log_score for e in rows),
                   interval_score=_mean(e.interval_score for e in rows),
                   ranges_held=(sum(e.in_range for e in ranged), len(ranged)) if ranged else None,
                   cbm=sum(marks) if marks else None, cbm_count=len(marks),
                   no_prediction=sum(e.prediction is None for e in rows))


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


def confidence_lines(summary, cbm=False):
    """The honesty scores, each with its one-line explanation, and the verdict."""
    lines = []
    if summary.brier is not None:
        lines.append(f"Brier {summary.brier:.3f}, log score {summary.log_score:.2f} "
                     f"(choices with a confidence).")
        lines += ["  " + scores.EXPLAIN["brier"], "  " + scores.EXPLAIN["log"]]
    if summary.interval_score is not None:
        held, n = summary.ranges_held
        lines.append(f"Interval score {summary.interval_score:.2f}; your 80% ranges held the "
                     f"result {held} of {n} times.")
        lines.append("  " + scores.EXPLAIN["interval"])
    if cbm and summary.cbm is not None:
        lines.append(f"Certainty-based marks: {summary.cbm:+d} over {summary.cbm_count} "
                     f"choice(s) (best possible {3 * summary.cbm_count:+d}).")
        lines.append("  " + scores.EXPLAIN["cbm"])
    if summary.stated:
        lines.append(scores.calibration_verdict(summary.stated))
    return lines


def trend_line(rows):
    """How calibration moved across chapters, or '' with fewer than two chapters."""
    parts = []
    for ch, s in by_chapter(rows).items():
        if s.stated:
            said = sum(p for p, _ in s.stated) / len(s.stated)
            right = sum(bool(r) for _, r in s.stated) / len(s.stated)
            parts.append((ch, said - right))
    if len(parts) < 2:
        return ""
    steps = ", ".join(f"{ch} {gap:+.0%}" for ch, gap in parts)
    first, last = abs(parts[0][1]), abs(parts[-1][1])
    word = ("closer to calibrated" if last < first - 0.05 else
            "further from calibrated" if last > first + 0.05 else "about as calibrated")
    return (f"Trend (said minus right, per chapter): {steps}; your last chapter is {word} "
            f"than your first.")


def cbm_enabled(cbm=None):
    """Certainty-based marking is an instructor's option: off unless asked (NOPOS_CBM=1)."""
    if cbm is not None:
        return bool(cbm)
    return os.environ.get("NOPOS_CBM", "").lower() in ("1", "true", "yes")


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
    if entry.prediction is None:
        return "\N{EN DASH} no prediction"
    return {True: "\N{HEAVY CHECK MARK} hit", False: "\N{HEAVY BALLOT X} miss",
            None: "\N{HOURGLASS} not revealed yet"}[entry.hit]


def _you_said(entry):
    text = _fmt(entry.prediction)
    if entry.confidence is not None:
        text += f" ({entry.confidence:.0%} sure)"
    if entry.low is not None:
        text += f" (80%: {entry.low:.4g} to {entry.high:.4g})"
    return text


def _how_far(entry):
    parts = []
    if entry.error is not None:
        parts.append(f"{entry.error:+.0%} (tolerance \N{PLUS-MINUS SIGN}{entry.tolerance:.0%})")
    if entry.in_range is not None:
        parts.append(f"range {'held' if entry.in_range else 'missed'}, interval score "
                     f"{entry.interval_score:.2f}")
    if entry.brier is not None:
        parts.append(f"Brier {entry.brier:.3f}")
    return "; ".join(parts)


def text_report(rows, title="Prediction scoreboard", cbm=None):
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
        lines.append(f"      you: {_you_said(e)}   result: {_fmt(e.actual)}   {_how_far(e)}"
                     .rstrip())
    lines.append("")
    chapters = by_chapter(rows)
    if len(chapters) > 1:
        for ch, s in chapters.items():
            lines.append(f"  {ch}: {s.hits}/{s.answered} hits" + (
                f", {s.pending} pending" if s.pending else ""))
    summary = summarise(rows)
    lines.append(summary_line(summary))
    lines.append(scores.EXPLAIN["hit"])
    note = calibration_note(summary)
    if note:
        lines.append(note)
    lines += confidence_lines(summary, cbm=cbm_enabled(cbm))
    trend = trend_line(rows)
    if trend:
        lines.append(trend)
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
    if s.no_prediction:
        text += f"; {s.no_prediction} revealed without a prediction"
    return text + "."


def html_table(rows, title="Your predictions", cbm=None):
    esc = html.escape
    colours = {True: "#dcfce7", False: "#fee2e2", None: "#f3f4f6"}
    out = [f"<div class='nopos-scoreboard'><h4>{esc(title)}</h4>"]
    if not rows:
        out.append("<p><i>No predictions logged yet.</i></p></div>")
        return "".join(out)
    out.append("<table style='border-collapse:collapse'><tr>"
               + "".join(f"<th style='text-align:left;padding:2px 8px'>{h}</th>"
                         for h in ("Question", "You said", "Result", "", "Scores"))
               + "</tr>")
    for e in rows:
        out.append(f"<tr style='background:{colours[e.hit]}'>"
                   f"<td style='text-align:left;padding:2px 8px'>{esc(e.text)}"
                   f"<br><small><code>{esc(e.key)}</code></small></td>"
                   f"<td style='padding:2px 8px'>{esc(_you_said(e))}</td>"
                   f"<td style='padding:2px 8px'>{esc(_fmt(e.actual))}</td>"
                   f"<td style='padding:2px 8px'>{esc(_verdict(e))}</td>"
                   f"<td style='padding:2px 8px'>{esc(_how_far(e))}</td></tr>")
    out.append("</table>")
    s = summarise(rows)
    out.append(f"<p><b>{esc(summary_line(s))}</b><br>{esc(scores.EXPLAIN['hit'])}")
    for line in [calibration_note(s), *confidence_lines(s, cbm=cbm_enabled(cbm)), trend_line(rows)]:
        if line:
            out.append(f"<br>{esc(line)}")
    out.append("</p></div>")
    return "".join(out)


def calibration_figure(rows):
    """Reliability diagram, the trend across chapters, and how far off each numeric guess was.

    Returns a matplotlib Figure, or None when nothing has been revealed yet.
    """
    from matplotlib.figure import Figure

    judged = [e for e in rows if e.hit is not None]
    if not judged:
        return None
    numeric = [e for e in rows if e.error is not None]
    fig = Figure(figsize=(15, max(3.6, 0.45 * len(numeric) + 1.6)))
    reliability, trend, far = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.5]})
    _plot_reliability(reliability, [e.stated for e in rows if e.stated is not None])
    _plot_trend(trend, rows)
    _plot_numeric(far, numeric)
    fig.tight_layout()
    return fig


def _plot_reliability(ax, pairs):
    ax.plot([0, 1], [0, 1], color="#9ca3af", linestyle="--", linewidth=1)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.12)
    ax.set_xlabel("how sure you said you were")
    ax.set_ylabel("fraction right")
    ax.set_title("Reliability (on the dashed line: calibrated)")
    if not pairs:
        ax.text(0.5, 0.5, "no predictions with a confidence yet", ha="center", va="center")
        return
    for _lo, _hi, count, said, right in scores.reliability_bins(pairs):
        ax.scatter([said], [right], s=40 + 25 * count, color="#4f46e5", zorder=3)
        ax.annotate(f"n={count}", (said, right), textcoords="offset points", xytext=(8, 6))


def _plot_trend(ax, rows):
    chapters = [(ch, s) for ch, s in by_chapter(rows).items() if s.answered]
    names = [ch for ch, _ in chapters]
    rates = [s.rate for _, s in chapters]
    ax.plot(names, rates, marker="o", color="#16a34a", label="fraction right")
    said = [(ch, sum(p for p, _ in s.stated) / len(s.stated)) for ch, s in chapters if s.stated]
    if said:
        ax.plot([c for c, _ in said], [v for _, v in said], marker="s", color="#4f46e5",
                label="how sure you said you were")
    for ch, s in chapters:
        ax.annotate(f"{s.hits}/{s.answered}", (ch, s.rate), textcoords="offset points",
                    xytext=(0, 8), ha="center")
    ax.set_ylim(0, 1.15)
    ax.set_title("Across chapters")
    ax.legend(loc="lower right", fontsize="small")


def _plot_numeric(ax, numeric):
    import matplotlib.ticker as ticker

    if not numeric:
        ax.axis("off")
        ax.text(0.5, 0.5, "no numeric predictions revealed yet", ha="center", va="center")
        return
    # guess / result on a log axis: x2 too high and x0.5 too low look equally far off
    floor = 0.01
    ratios = [max(1 + e.error, floor) for e in numeric]
    y = list(range(len(numeric)))
    colours = ["#16a34a" if e.hit else "#dc2626" for e in numeric]
    for i, e in enumerate(numeric):  # each question's own tolerance
        ax.fill_betweenx([i - 0.45, i + 0.45], max(1 - e.tolerance, floor), 1 + e.tolerance,
                         color="#9ca3af", alpha=0.35, linewidth=0)
    ax.barh(y, [r - 1 for r in ratios], left=1, color=colours, height=0.6)
    ends = []
    for i, e in enumerate(numeric):  # the 80% range, as a ratio to the result too
        a = _number(e.actual)
        if e.low is not None and a and a > 0 and e.high > 0:
            lo, hi = max(e.low / a, floor), max(e.high / a, floor)
            ax.plot([lo, hi], [i, i], color="black", linewidth=1.5, marker="|", markersize=12)
            ends += [lo, hi]
    ax.set_xscale("log")
    low = min(ratios + ends + [1 - max(e.tolerance for e in numeric), 0.5])
    high = max(ratios + ends + [2.0])
    lo_lim, hi_lim = max(low / 1.5, floor / 1.5), high * 1.5
    ax.set_xlim(lo_lim, hi_lim)
    ax.set_xticks([t for t in (0.01, 0.1, 0.2, 0.5, 1, 2, 5, 10, 100, 1000)
                   if lo_lim <= t <= hi_lim])
    ax.axvline(1, color="black", linewidth=0.8)
    ax.set_yticks(y, [e.key for e in numeric])
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"\N{MULTIPLICATION SIGN}{v:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xlabel("your guess / the result   (grey: a hit; black: your 80% range)")
    ax.set_title("How far off were your numeric guesses?")


def figure_png(fig, dpi=90):
    """The figure as PNG bytes: displays with no plotting backend set up."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def show(chapter=None, records=None, cbm=None):
    """Display the scoreboard in a notebook: an HTML table and the calibration figures.

    Returns nothing, so the cell does not print a value after the figure.
    """
    from IPython.display import HTML, Image, display

    rows = entries(records, chapter=chapter)
    title = f"Your predictions, chapter {chapter_tag(chapter)[2:]}" if chapter and chapter_tag(
        chapter) else "Your predictions, whole course"
    display(HTML(html_table(rows, title, cbm=cbm)))
    fig = calibration_figure(rows)
    if fig is not None:
        display(Image(data=figure_png(fig)))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Your prediction scoreboard.")
    parser.add_argument("--chapter", help="only this chapter, e.g. ch1")
    parser.add_argument("--reset", action="store_true",
                        help="forget your predictions (only --chapter's, if given)")
    parser.add_argument("--plot", metavar="PNG", help="also save the calibration figures here")
    parser.add_argument("--log", metavar="JSONL", help="read this log instead of yours")
    parser.add_argument("--cbm", action="store_true",
                        help="add certainty-based marks (an instructor's option; NOPOS_CBM=1 too)")
    args = parser.parse_args(argv)
    if args.chapter and chapter_tag(args.chapter) is None:
        parser.error(f"not a chapter: {args.chapter!r} (try ch1)")
    if args.reset:
        removed = reset(args.chapter)
        what = f"chapter {chapter_tag(args.chapter)}" if args.chapter else "all chapters"
        print(f"reset {what}: {removed} logged event(s) removed from {predict.log_path()}")
        return 0
    log = Path(args.log) if args.log else predict.log_path()
    rows = entries(read_log(log), chapter=args.chapter)
    title = (f"Prediction scoreboard, {chapter_tag(args.chapter)}" if args.chapter
             else "Prediction scoreboard, whole course")
    print(text_report(rows, title, cbm=args.cbm or None))
    print(f"\n(log: {log})")
    if args.plot:
        fig = calibration_figure(rows)
        if fig is None:
            print("nothing to plot yet")
        else:
            fig.savefig(args.plot, dpi=100)
            print(f"calibration figures: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
