"""What a room's reveal publishes: counts, the numbers, calibration; no names unless opted in.

Plain data in, plain JSON-able data out, so the facilitator's view, the command
line and the offline slides all draw the same thing.
"""
from nopos import scores

TOP = 3   # "who was closest" names at most this many


def _valid(entry, kind, options):
    """Drop what a participant's file cannot mean (it is their file, not ours)."""
    guess = entry.get("prediction")
    if entry.get("kind") != kind:
        return False
    if kind == "choice":
        return str(guess) in options
    return isinstance(guess, (int, float)) and not isinstance(guess, bool) and guess == guess


def aggregate(entries, actual, closest=False):
    """entries: {user: entry as predict sends it}. The question's text, kind, options and
    tolerance come from the entries themselves (the facilitator may never have run it)."""
    if not entries:
        return {"n": 0, "kind": None, "actual": actual}
    first = next(iter(entries.values()))
    kind = first.get("kind", "choice")
    options = [str(o) for o in first.get("options") or []]
    tolerance = first.get("tolerance") or (0.1 if kind == "number" else None)
    good = {u: e for u, e in entries.items() if _valid(e, kind, options)}
    out = {"text": first.get("text", ""), "kind": kind, "unit": first.get("unit", ""),
           "tolerance": tolerance, "actual": actual, "n": len(good),
           "dropped": len(entries) - len(good)}
    if kind == "choice":
        actual = str(actual)
        out["actual"] = actual
        out["options"] = options
        out["counts"] = {o: sum(e["prediction"] == o for e in good.values()) for o in options}
        out["right"] = out["counts"].get(actual, 0)
        pairs = [(float(e["confidence"]), e["prediction"] == actual) for e in good.values()
                 if isinstance(e.get("confidence"), (int, float))]
        out["calibration"] = _choice_calibration(pairs)
    else:
        try:
            actual = float(actual)
        except (TypeError, ValueError):
            raise ValueError(f"the answer {actual!r} is not a number, and this question "
                             "asks for one") from None
        out["actual"] = actual
        out["guesses"] = sorted(float(e["prediction"]) for e in good.values())
        out["right"] = sum(scores.hit(e["kind"], e["prediction"], actual, tolerance) for e in good.values())
        ranges = [(float(e["low"]), float(e["high"])) for e in good.values()
                  if isinstance(e.get("low"), (int, float)) and isinstance(e.get("high"), (int, float))]
        out["calibration"] = _range_calibration(ranges, actual)
    if closest:
        out["closest"] = _closest(good, kind, actual)
    return out


def _choice_calibration(pairs):
    if not pairs:
        return {"n": 0}
    n = len(pairs)
    said = sum(p for p, _ in pairs) / n
    right = sum(r for _, r in pairs) / n
    return {"n": n, "mean_confidence": said, "fraction_right": right,
            "brier": sum(scores.brier(p, r) for p, r in pairs) / n,
            "bins": [list(b) for b in scores.reliability_bins(pairs, width=0.25)],
            "verdict": _verdict(said, right, n)}


def _range_calibration(ranges, actual):
    if not ranges:
        return {"n": 0}
    n = len(ranges)
    held = sum(lo <= actual <= hi for lo, hi in ranges)
    scale = max(abs(actual), 1e-12)
    return {"n": n, "held": held, "fraction_held": held / n, "level": scores.RANGE_LEVEL,
            "interval_score": sum(scores.interval_score(lo, hi, actual) for lo, hi in ranges)
            / n / scale,
            "verdict": _verdict(scores.RANGE_LEVEL, held / n, n, ranges=True)}


def _verdict(said, right, n, ranges=False):
    """The room's calibration in words (a room is small: say so before judging)."""
    if ranges:
        facts = f"{right:.0%} of the room's 80% ranges held the answer"
    else:
        facts = f"The room said {said:.0%} on average and was right {right:.0%} of the time"
    if n < 5:
        return f"{facts} ({n} of them: too few to judge calibration)."
    gap = said - right
    noise = 2 * (said * (1 - said) / n) ** 0.5
    if abs(gap) <= max(0.05, noise):
        return f"{facts}: well calibrated, within what chance allows for {n} people."
    if gap > 0:
        return f"{facts}: overconfident" + (" (ranges too narrow)." if ranges else ".")
    return f"{facts}: underconfident" + (" (ranges wider than needed)." if ranges else ".")


def _closest(good, kind, actual):
    """Who was closest: the nearest numbers; for a choice, the right ones surest first."""
    if kind == "number":
        ranked = sorted(good.items(), key=lambda ue: abs(float(ue[1]["prediction"]) - actual))
        return [{"user": u, "prediction": e["prediction"],
                 "off_by": abs(float(e["prediction"]) - actual)} for u, e in ranked[:TOP]]
    right = [(u, e) for u, e in good.items() if e["prediction"] == actual]
    right.sort(key=lambda ue: -(ue[1].get("confidence") or 0))
    return [{"user": u, "prediction": e["prediction"], "confidence": e.get("confidence")}
            for u, e in right[:TOP]]
