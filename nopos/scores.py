"""Scores that reward honest confidence, one function each.

A prediction says what you expect *and* how sure you are: for a choice, the
probability `p` you give your chosen option; for a number, a range you are 80%
sure holds the result. These are *proper* scores: on average you do best by
stating exactly what you believe, so inflating or hedging your confidence
costs you.
"""
import math

ALPHA = 0.2                      # an 80% range leaves 20% outside
RANGE_LEVEL = 1 - ALPHA
CBM_MARKS = {1: (1, 0), 2: (2, -2), 3: (3, -6)}   # certainty -> (right, wrong), Moodle's CBM
EXPLAIN = {
    "hit": "Hit: the right option, or a number within the question's tolerance.",
    "brier": "Brier score: (your confidence - outcome)^2, outcome 1 if right and 0 if wrong; "
             "0 is perfect, always saying 50% earns 0.25; lower is better.",
    "log": "Log score: ln(confidence) if right, ln(1 - confidence) if wrong; 0 is perfect, "
           "and being sure and wrong costs the most.",
    "interval": "Interval score: the width of your 80% range plus 10x how far outside it the "
                "result fell, divided by the result so questions compare; lower is better.",
    "cbm": "Certainty-based marking (Moodle): certainty 1 (below 67% sure) scores +1 right / 0 "
           "wrong, 2 (above 67%) +2 / -2, 3 (above 80%) +3 / -6.",
}


def hit(kind, guess, actual, tolerance):
    """The one hit rule: a choice is right when it is the answer; a number when it lies
    within `tolerance` (relative) of the result. Callers handle missing values."""
    if kind == "number":
        return abs(guess - actual) <= tolerance * max(abs(actual), 1e-12)
    return guess == actual


def brier(p, right):
    """(p - outcome)^2 for the chosen option: 0 best, 1 worst."""
    return (p - (1.0 if right else 0.0)) ** 2


def log_score(p, right, floor=1e-3):
    """ln of the probability you gave to what happened: 0 best, very negative worst."""
    q = p if right else 1.0 - p
    return math.log(min(max(q, floor), 1.0))


def interval_score(low, high, actual, alpha=ALPHA):
    """Gneiting and Raftery's interval score: width + (2/alpha) * distance outside the range."""
    miss = (low - actual if actual < low else 0.0) + (actual - high if actual > high else 0.0)
    return (high - low) + (2.0 / alpha) * miss


def certainty(p):
    """Moodle CBM's certainty level for a stated probability: 1, 2 or 3."""
    return 3 if p > 0.8 else 2 if p > 2 / 3 else 1


def cbm_mark(p, right):
    """+1/+2/+3 when right, 0/-2/-6 when wrong, by certainty."""
    gain, loss = CBM_MARKS[certainty(p)]
    return gain if right else loss


def reliability_bins(pairs, width=0.1):
    """[(bin low, bin high, count, mean stated, fraction right)] for (stated, right) pairs.

    Equal bins of `width`; a bin's upper edge belongs to the next one, except 1.0.
    Empty bins are left out.
    """
    n_bins = round(1 / width)
    bins = {}
    for p, right in pairs:
        i = min(int(p * n_bins + 1e-9), n_bins - 1)
        bins.setdefault(i, []).append((p, right))
    out = []
    for i in sorted(bins):
        members = bins[i]
        out.append((i / n_bins, (i + 1) / n_bins, len(members),
                    sum(p for p, _ in members) / len(members),
                    sum(bool(r) for _, r in members) / len(members)))
    return out


def calibration_verdict(pairs, min_count=5):
    """Over- or under-confident, in words, with the numbers behind it.

    The gap between how sure you said you were and how often you were right
    counts only when it is larger than chance alone would make it (two standard
    errors of the fraction right) and at least 5 points.
    """
    n = len(pairs)
    if n < min_count:
        return f"Too few predictions with a confidence to judge calibration yet ({n} of {min_count})."
    said = sum(p for p, _ in pairs) / n
    right = sum(bool(r) for _, r in pairs) / n
    noise = 2 * math.sqrt(sum(p * (1 - p) for p, _ in pairs)) / n
    gap = said - right
    facts = f"You said {said:.0%} on average and were right {right:.0%} of the time ({n} predictions)"
    if abs(gap) <= max(0.05, noise):
        return f"{facts}: well calibrated, within what chance allows."
    if gap > 0:
        return f"{facts}: overconfident. Say lower numbers, or widen your ranges."
    return f"{facts}: underconfident. You know more than you claim: say higher numbers."
