"""Checks for chapter 5: proving the mechanism.

Designed inputs give each likely mistake a recognisable wrong value; the
`on_model` checks hold an answer to bands the shipped checkpoint satisfies,
with expected numbers computed here by independent means (plain loops,
closed forms, a clean forward pass), never by the answer itself.
"""
import math

import torch

from nopos.checks import call, expect, experiment_result, fail, fresh_seed, own_copy, passed, random_tokens, snapshot, unchanged
from nopos.checks.ch04 import reference_run


# ---------------------------------------------------------------- 5.1
def _designed_post():
    """[2, 10, 6] activations with known per-position means.

    neuron 0: constant; 1: rises by 2.0; 2: falls by 0.5 (below min_range 1);
    3: constant except a huge value at position 0 (BOS); 4: constant on average
    but +-3 between the two sequences; 5: falls by 3.0 in one step.
    """
    n_pos = 10
    p = torch.arange(n_pos, dtype=torch.float32)
    profile = torch.stack([
        torch.full((n_pos,), 1.0),
        2.0 * p / (n_pos - 1),
        0.5 - 0.5 * p / (n_pos - 1),
        torch.where(p == 0, torch.tensor(9.0), torch.tensor(0.5)),
        torch.full((n_pos,), 3.0),
        torch.where(p < 6, torch.tensor(3.0), torch.tensor(0.0)),
    ], dim=1)
    noise = torch.zeros(n_pos, 6)
    noise[:, 4] = 3.0
    noise[:, 0] = 0.2
    return torch.stack([profile + noise, profile - noise]), profile


def _fresh_post(seed, min_range=1.0):
    """Activations whose batch mean is exact, with spans that sit at BOS only, at the last
    position only, at position 1 only, exactly at min_range, or clearly above it, up or down.
    Returns (post, profile, expected neurons, {neuron: what it tests})."""
    g = _gen(seed)
    batch, n = int(torch.randint(3, 7, (1,), generator=g)), int(torch.randint(5, 13, (1,), generator=g))
    kinds = ["bos+", "bos-", "last+", "last-", "first+", "first-", "tie", "above+", "above-", "flat",
             "hump", "straddle"]
    order = torch.randperm(len(kinds), generator=g).tolist()
    profile = torch.randint(-2, 2, (n, len(kinds)), generator=g).double() * 0.125  # span < 0.5
    profile[:, :] = profile.mean(0, keepdim=True).round(decimals=3) + (profile - profile.mean(0)).clamp(-0.25, 0.25)
    profile = (profile * 8).round() / 8  # multiples of 1/8: exact in float
    chosen, what = [], {}
    for neuron, k in enumerate(order):
        kind, column = kinds[k], profile[:, neuron]
        column[:] = column[1:].mean().round() if kind == "tie" else column
        sign = 1.0 if kind.endswith("+") else -1.0
        if kind.startswith("bos"):
            column[0] = column[1:].mean() + sign * 3.0
        elif kind.startswith("last"):
            column[-1] = column[1:-1].mean() + sign * 3.0
        elif kind.startswith("first"):
            column[1] = column[2:].mean() + sign * 3.0
        elif kind == "tie":
            column[1:] = 0.0
            column[2] = min_range  # span exactly min_range: not *more* than it
        elif kind == "hump":  # up and back down: the ends agree, the span is 1.5
            column[1:] = 0.0
            column[n // 2] = 1.5
        elif kind == "straddle":  # position 1 in the middle: 0.75 from either extreme
            column[1:] = 0.0
            column[2], column[3] = 0.75, -0.75
        elif kind.startswith("above"):
            column[1:] = column[1:] + sign * torch.linspace(0, 2.0, n - 1, dtype=torch.float64)
        span = float(column[1:].max() - column[1:].min())
        if span > min_range:
            chosen.append(neuron)
        what[neuron] = kind
    noise = (torch.randint(-4, 5, (batch, n, len(kinds)), generator=g).double() / 8)
    noise -= noise.mean(0, keepdim=True)  # multiples of 1/8 with batch mean exactly 0
    noise[:, :, [i for i, k in what.items() if k == "tie"]] = 0.0
    return (profile + noise).float(), profile.float(), chosen, what


def _check_position_neurons_fresh(position_neurons, seed):
    __tracebackhide__ = True
    post, profile, want, what = _fresh_post(seed)
    got_profile, neurons = call(position_neurons, post.clone(), 1.0, what="position_neurons")
    expect(torch.allclose(got_profile.float(), profile, atol=1e-5),
           "the profile should be the activation averaged over the batch at each position")
    expect(neurons.dim() == 1, f"neurons should be a 1-d tensor of indices, got shape "
                               f"{list(neurons.shape)} (flatten torch.nonzero's [k, 1])")
    got = [int(n) for n in neurons]
    if got == want:
        return
    extra = [what[n] for n in sorted(set(got) - set(want))]
    lost = [what[n] for n in sorted(set(want) - set(got))]
    if any(k.startswith("bos") for k in extra):
        fail("you selected a neuron whose profile differs only at position 0 (BOS, another "
             "token): measure max - min over positions 1 .. n_ctx-1 only")
    if any(k.startswith("last") for k in lost):
        fail("you left out a neuron whose profile moves only at the last position: the span "
             "runs over positions 1 .. n_ctx-1, the last one included")
    if any(k.startswith("first") for k in lost):
        fail("you left out a neuron whose profile moves only at position 1: the span starts at "
             "position 1 (only position 0, BOS, is left out)")
    if "hump" in lost:
        fail("you left out a neuron whose profile rises by 1.5 and falls back: the span is "
             "max - min over positions 1 .., not the change from the first to the last position")
    if "straddle" in lost:
        fail("you left out a neuron whose profile goes 0.75 above and 0.75 below its value at "
             "position 1: the span is max - min over positions 1 .., not the largest distance "
             "from position 1")
    if "tie" in extra:
        fail("you selected a neuron whose span is exactly min_range: select spans *more* than "
             "min_range")
    fail(f"on activations the grader drew, the neurons spanning more than 1.0 over positions "
         f"1.. are {want}, you returned {got}")


def check_position_neurons(position_neurons, on_model=False, fresh=False, quiet=False):
    """Profile = batch mean; neurons = span over positions 1.. above min_range
    (`fresh`: activations the grader draws, with spans at the edges and at the limit)."""
    __tracebackhide__ = True
    post, profile = _designed_post()
    result = call(position_neurons, post.clone(), 1.0, what="position_neurons")
    expect(isinstance(result, tuple) and len(result) == 2,
           "position_neurons should return a pair (profile, neurons)")
    got_profile, neurons = result
    expect(isinstance(got_profile, torch.Tensor), "the profile should be a torch tensor")
    if got_profile.shape == (post.shape[0], post.shape[2]):
        fail(f"the profile has shape {list(got_profile.shape)} = [batch, d_mlp]: you averaged over "
             f"positions; average over the batch (dimension 0) to keep one value per position")
    expect(got_profile.shape == profile.shape,
           f"the profile should be [pos, d_mlp] = {list(profile.shape)}, got {list(got_profile.shape)}")
    expect(torch.allclose(got_profile.float(), profile, atol=1e-5),
           "the profile should be the activation averaged over the batch at each position")
    expect(isinstance(neurons, torch.Tensor), "neurons should be a torch tensor of neuron indices")
    if neurons.dtype == torch.bool:
        fail("neurons is a boolean mask; return the indices of the neurons (torch.nonzero(...) "
             "or torch.where(...)[0])")
    expect(neurons.dtype == torch.long, f"neurons should be torch.long indices, got {neurons.dtype}")
    chosen = sorted(int(n) for n in neurons.flatten())
    if 3 in chosen:
        fail("you selected neuron 3, which differs only at position 0: position 0 holds BOS, a "
             "different token, so measure the span over positions 1 .. n_ctx-1 only")
    if 4 in chosen:
        fail("you selected neuron 4, which is the same at every position on average but differs "
             "between sequences: measure the span of the batch *mean* across positions")
    if 1 not in chosen:
        fail("neuron 1 rises by 2.0 across positions (more than min_range = 1.0) but you left it "
             "out: use the span max - min over positions, not the standard deviation")
    if 2 in chosen or 0 in chosen:
        fail(f"you selected {chosen}: neurons 0 and 2 vary by at most 0.5 across positions, "
             f"below min_range = 1.0")
    expect(chosen == [1, 5], f"expected neurons [1, 5], got {chosen}")
    expect([int(n) for n in neurons.flatten()] == chosen, "return the neuron indices in "
                                                           "ascending order")
    _check_position_neurons_fresh(position_neurons, fresh_seed() if fresh else 0)
    if on_model:
        _, _, cache = reference_run()
        post = cache["blocks.0.mlp.hook_post"].clone()  # yours to change, not the cache
        result = call(position_neurons, post, 1.0, what="position_neurons")
        count = len(result[1])
        expect(45 <= count <= 75,
               f"on the trained model about 60 MLP0 neurons span more than 1.0 across positions "
               f"(between 45 and 75); you found {count}")
    if not quiet:
        passed("position_neurons")


# ---------------------------------------------------------------- 5.2
def _profile(values, bos=0.0):
    return torch.tensor([bos] + list(values), dtype=torch.float32)


def _threshold_by_loops(values, tol):
    """(direction, threshold) for a profile given from position 1 on: plain Python."""
    lo, hi = min(values), max(values)
    slack = tol * (hi - lo)
    steps = [b - a for a, b in zip(values, values[1:])]
    if values[-1] > values[0] and all(d >= -slack for d in steps):
        direction = 1
    elif values[-1] < values[0] and all(d <= slack for d in steps):
        direction = -1
    else:
        return 0, None
    middle = (hi + lo) / 2
    return direction, next(i + 1 for i, v in enumerate(values) if (v > middle if direction == 1
                                                                   else v < middle))


def _random_profiles(seed, count=60):
    """Short profiles of whole numbers far from 0: ties with the midpoint, ends that meet,
    wiggles just inside and just outside the slack."""
    g = _gen(seed)
    found = []
    for _ in range(count):
        n = int(torch.randint(3, 10, (1,), generator=g))
        steps = torch.randint(-1, 4, (n - 1,), generator=g) * (1 if torch.rand(1, generator=g) < 0.5 else -1)
        values = (torch.cat([torch.zeros(1), steps.cumsum(0).float()]) + float(torch.randint(-20, 21, (1,),
                                                                                              generator=g))).tolist()
        found.append((values, [0.05, 0.1, 0.25, 0.5][int(torch.randint(0, 4, (1,), generator=g))]))
    return found


# edges the random profiles rarely reach: flat, ends that meet, a step exactly at the slack
EDGE_PROFILES = [([2.0, 2.0, 2.0, 2.0], 0.05), ([1.0, 0.0, 1.0], 1.0), ([2.0, 0.0, 1.0, 0.0], 0.5),
                 ([0.0, 2.0, 1.0, 2.0], 0.5), ([0.0, 1.0, 0.0], 1.0), ([0.0, 1.0, 2.0], 0.05),
                 ([3.0, 2.0, 1.0, 2.0, 0.0], 0.5)]


def _check_threshold_table(neuron_threshold, seed):
    __tracebackhide__ = True
    for values, tol in EDGE_PROFILES + _random_profiles(seed):
        want = _threshold_by_loops(values, tol)
        got = call(neuron_threshold, _profile(values, bos=float(values[-1]) * 3 - 7), tol,
                   what="neuron_threshold")
        got = tuple(got) if isinstance(got, (tuple, list)) else got
        if got != want:
            fail(f"for the profile {values} (from position 1 on) and tol = {tol}, expected "
                 f"(direction, threshold) = {want}, got {got}: direction needs the last value "
                 f"above (below) the first and no step down (up) larger than tol * (max - min); "
                 f"the threshold is the first position strictly past (min + max) / 2")


def check_neuron_threshold(neuron_threshold, on_model=False, fresh=False, quiet=False):
    """Direction with tolerance, threshold as a position, BOS ignored."""
    __tracebackhide__ = True

    def ask(values, bos=0.0, tol=0.05):
        result = call(neuron_threshold, _profile(values, bos), tol, what="neuron_threshold")
        expect(isinstance(result, tuple) and len(result) == 2,
               "neuron_threshold should return a pair (direction, threshold)")
        return result

    # on until position 7, off from position 8 (values listed from position 1)
    step_down = [3.0] * 7 + [0.0] * 8
    direction, threshold = ask(step_down, bos=-5.0)
    if direction == 1:
        fail("a profile that goes from 3 to 0 has direction -1 (falling), you said +1: the sign "
             "is flipped")
    if direction == 0:
        fail("a profile that steps down from 3 to 0 is monotone (falling); is position 0 (BOS, "
             "value -5 here) spoiling it? Ignore position 0")
    expect(direction == -1, f"direction should be -1, got {direction!r}")
    if threshold == 7:
        fail("the threshold of a neuron on at positions 1..7 and off from position 8 is 8; you "
             "said 7: report a position (profile index), not an index into profile[1:]")
    expect(threshold == 8, f"a neuron on at positions 1..7 and off from 8 switches at position 8, "
                           f"you said {threshold!r}")
    # rising with small wiggles (within tol of the range): still monotone
    wiggly = [0.0, 0.05, 0.0, 0.1, 1.2, 1.9, 2.0, 1.95, 2.0, 2.0]
    direction, threshold = ask(wiggly)
    if direction == 0:
        fail("a profile that rises from 0 to 2 with wiggles of 0.05 (within tol * range = 0.1) "
             "counts as rising: allow steps against the direction up to tol * (max - min)")
    expect(direction == 1, f"a rising profile has direction +1, got {direction!r}")
    expect(threshold == 5, f"the wiggly profile first exceeds its midpoint 1.0 at position 5, "
                           f"you said {threshold!r}")
    # a slow, steady fall: every step is smaller than tol * range, yet it falls
    slow = [2.0 - 0.05 * i for i in range(40)]
    direction, threshold = ask(slow)
    if direction == 1:
        fail("a profile that falls slowly from 2.0 to 0.05 (steps of 0.05, each within tol * "
             "range) came out as rising: small steps must not decide the direction; decide the "
             "direction from the overall change (last minus first), then allow small wiggles "
             "against it")
    expect(direction == -1 and threshold == 21,
           f"a profile falling steadily by 0.05 per position from 2.0 at position 1 has direction "
           f"-1 and first drops below its midpoint 1.025 at position 21; got "
           f"{(direction, threshold)!r}")
    # a bump is not monotone
    bump = [0.0, 1.0, 2.0, 3.0, 2.0, 1.0, 0.0]
    direction, threshold = ask(bump)
    expect(direction == 0, f"a profile that rises and then falls is not monotone: direction 0, "
                           f"got {direction!r}")
    expect(threshold is None, f"a neuron that is not monotone has no threshold (None), got "
                              f"{threshold!r}")
    # the tolerance is the caller's: a bigger tol forgives a bigger wiggle
    result = call(neuron_threshold, _profile([0.0, 1.0, 0.8, 2.0]), 0.2, what="neuron_threshold")
    expect(result[0] == 1, "with tol = 0.2 a dip of 0.2 on a range of 2.0 is allowed: use the "
                           "tol argument, not a fixed number")
    _check_threshold_table(neuron_threshold, fresh_seed() if fresh else 0)
    if on_model:
        _, _, cache = reference_run()
        mean = cache["blocks.0.mlp.hook_post"].mean(0)
        span = mean[1:].max(0).values - mean[1:].min(0).values
        strong = torch.nonzero(span > 1.0).flatten().tolist()
        results = [call(neuron_threshold, mean[:, n].clone(), 0.05, what="neuron_threshold")
                   for n in strong]
        monotone = sum(d != 0 for d, _ in results)
        expect(monotone >= 0.9 * len(strong),
               f"on the trained model nearly every strong position neuron ({len(strong)}) is "
               f"monotone; you found {monotone}")
        for d, t in results:
            expect(d == 0 or (isinstance(t, int) and 1 <= t < mean.shape[0]),
                   f"thresholds should be positions 1..{mean.shape[0] - 1} (int), got {t!r}")
    if not quiet:
        passed("neuron_threshold")


# ---------------------------------------------------------------- 5.3
def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _predictions(x_train, y_train, x_test, intercept=True):
    """Least-squares predictions on the test rows, in float64 (from the normal equations)."""
    def design(x):
        x = x.double()
        return torch.cat([x, torch.ones(len(x), 1, dtype=torch.float64)], 1) if intercept else x

    a = design(x_train)
    weights = torch.linalg.solve(a.T @ a, a.T @ y_train.double())
    return design(x_test) @ weights


def _r2_by_normal_equations(x_train, y_train, x_test, y_test, intercept=True):
    y = y_test.double()
    residual = ((y - _predictions(x_train, y_train, x_test, intercept)) ** 2).sum()
    return float(1 - residual / ((y - y.mean()) ** 2).sum())


def _small_noisy_probe(seed):
    """A few dozen rows, a few features, an offset and noise: R² well below 1, and a fit that is
    not the exact least-squares one (a solver that mishandles a column, a penalty) shows."""
    g = _gen(seed)
    n, d = int(torch.randint(20, 81, (1,), generator=g)), int(torch.randint(1, 9, (1,), generator=g))
    w, offset = torch.randn(d, generator=g), float(torch.empty(1).uniform_(-30, 30, generator=g))
    xs = [torch.randn(n, d, generator=g) for _ in range(2)]
    ys = [x @ w + offset + torch.randn(n, generator=g) for x in xs]
    return xs[0], ys[0], xs[1], ys[1]


def _offset_probe(seed):
    """400 rows of 8 features, each unit noise around 300, a linear target plus noise."""
    g = _gen(seed)
    w = torch.randn(8, generator=g)
    xs = [torch.randn(400, 8, generator=g) + 300 for _ in range(2)]
    ys = [x @ w + 0.5 * torch.randn(400, generator=g) for x in xs]
    return xs[0], ys[0], xs[1], ys[1]


def _r2_by_lstsq(x_train, y_train, x_test, y_test):
    """R² of the least-squares probe, solved by QR in float64 (no squared condition number)."""
    def design(x):
        return torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], 1)

    fit = torch.linalg.lstsq(design(x_train), y_train.double()[:, None], driver="gelsd").solution
    y = y_test.double()
    residual = ((y - (design(x_test) @ fit).squeeze(1)) ** 2).sum()
    return float(1 - residual / ((y - y.mean()) ** 2).sum())


def check_probe_r2(probe_r2, on_model=False, fresh=False, quiet=False):
    """Least squares with an intercept on train, R² on test (`fresh`: a small noisy problem the
    grader draws, besides the fixed one)."""
    __tracebackhide__ = True

    def r2_of(*args):
        value = call(probe_r2, *args, what="probe_r2")
        try:
            return float(value)
        except (TypeError, ValueError):
            fail(f"probe_r2 should return one number, got {type(value).__name__}")

    # exactly linear, with an offset: R² = 1, but only with an intercept
    w = torch.tensor([1.0, -2.0, 0.5, 3.0, 0.0])
    x_train, x_test = torch.randn(200, 5, generator=_gen(0)), torch.randn(200, 5, generator=_gen(1))
    r2 = r2_of(x_train, x_train @ w + 25.0, x_test, x_test @ w + 25.0)
    if r2 < 0.999:
        no_bias = _r2_by_normal_equations(x_train, x_train @ w + 25.0, x_test, x_test @ w + 25.0,
                                          intercept=False)
        if math.isclose(r2, no_bias, abs_tol=1e-3):
            fail(f"y = x @ w + 25 is exactly linear, so R² should be 1, got {r2:.4f}, what a fit "
                 f"without an intercept gives: add a bias column (an intercept); positions do not "
                 f"have mean 0")
        fail(f"y = x @ w + 25 is exactly linear, so an unpenalised least-squares fit with an "
             f"intercept gives R² = 1 on the test rows; you got {r2:.4f}. Something in the fit "
             f"or the prediction is off (a penalty? the intercept or centring applied to the "
             f"training rows only?)")
    # noise features: an honest test R² is near 0 or below, a training R² looks good
    x_train, x_test = torch.randn(60, 40, generator=_gen(2)), torch.randn(60, 40, generator=_gen(3))
    y_train, y_test = torch.randn(60, generator=_gen(4)), torch.randn(60, generator=_gen(5))
    r2 = r2_of(x_train, y_train, x_test, y_test)
    if r2 > 0.3:
        fail(f"with 40 features of pure noise and 60 training rows you report R² = {r2:.2f}: that "
             f"is the fit on the training rows; score the probe on the test rows")
    # signal + noise of equal variance: R² = 0.5 in expectation
    x_train, x_test = torch.randn(4000, 3, generator=_gen(6)), torch.randn(4000, 3, generator=_gen(7))
    w = torch.tensor([1.0, 0.0, 0.0])
    y_train = x_train @ w + torch.randn(4000, generator=_gen(8))
    y_test = x_test @ w + torch.randn(4000, generator=_gen(9))
    r2 = r2_of(x_train, y_train, x_test, y_test)
    if math.isclose(r2, math.sqrt(0.5), abs_tol=0.03):
        fail(f"signal and noise of equal variance should give R² near 0.5; your {r2:.3f} is "
             f"close to sqrt(0.5): that is a correlation r, not R² = 1 - SS_res / SS_tot")
    expect(abs(r2 - 0.5) < 0.04, f"signal and noise of equal variance should give R² near 0.5, "
                                 f"got {r2:.3f}; R² = 1 - SS_res / SS_tot on the test rows")
    # test rows whose mean differs from the training rows': SS_tot is about the test mean
    x_train = torch.randn(500, 3, generator=_gen(10))
    x_test = torch.randn(500, 3, generator=_gen(11)) + 1.5
    w = torch.tensor([1.0, -1.0, 2.0])
    y_train = x_train @ w + 5 + torch.randn(500, generator=_gen(12))
    y_test = x_test @ w + 5 + torch.randn(500, generator=_gen(13))
    fit = torch.linalg.lstsq(torch.cat([x_train, torch.ones(500, 1)], 1).double(),
                             y_train.double()[:, None]).solution
    residual = float(((y_test.double() - (torch.cat([x_test, torch.ones(500, 1)], 1).double() @ fit)
                       .squeeze(1)) ** 2).sum())
    want = 1 - residual / float(((y_test - y_test.mean()) ** 2).sum())
    with_train_mean = 1 - residual / float(((y_test - y_train.mean()) ** 2).sum())
    r2 = r2_of(x_train, y_train, x_test, y_test)
    if math.isclose(r2, with_train_mean, abs_tol=2e-3) and abs(want - with_train_mean) > 0.02:
        fail(f"R² {r2:.3f} measures SS_tot around the training rows' mean; R² on the test rows "
             f"compares with the test rows' own mean (expected {want:.3f})")
    expect(math.isclose(r2, want, abs_tol=2e-3), f"when the test rows' mean differs from the "
                                                  f"training rows', R² should be {want:.3f}, got {r2:.3f}")
    # a probe that transfers badly: biased and too steep on the test rows, so R² < 0 and
    # squared correlation, explained variance and a clip at 0 each give another number
    x_tr, x_te = torch.randn(300, 4, generator=_gen(14)), torch.randn(300, 4, generator=_gen(15))
    w = torch.tensor([1.0, 0.5, -1.0, 0.0])
    y_tr = x_tr @ w + 2.0 + 0.5 * torch.randn(300, generator=_gen(16))
    y_te = 0.4 * (x_te @ w) - 1.0 + 0.5 * torch.randn(300, generator=_gen(17))
    want = _r2_by_normal_equations(x_tr, y_tr, x_te, y_te)
    r2 = r2_of(x_tr, y_tr, x_te, y_te)
    if not math.isclose(r2, want, abs_tol=1e-4):
        pred = _predictions(x_tr, y_tr, x_te)
        y = y_te.double()
        corr2 = float(torch.corrcoef(torch.stack([pred, y]))[0, 1] ** 2)
        explained = float(1 - (y - pred).var() / y.var())
        for value, mistake in [
                (corr2, "that is the squared correlation of prediction and truth, which ignores "
                        "the probe's bias and scale; R² = 1 - SS_res / SS_tot"),
                (explained, "that is the explained variance (the residuals' mean removed), which "
                            "forgives a biased probe; R² = 1 - SS_res / SS_tot with the raw residuals"),
                (0.0, "R² can be negative (a probe worse than the test mean): do not clip it at 0")]:
            if math.isclose(r2, value, abs_tol=1e-4):
                fail(f"on test rows where the probe is biased, R² should be {want:.4f}, got "
                     f"{r2:.4f}: {mistake}")
        fail(f"on test rows where the probe is biased, R² = 1 - SS_res / SS_tot (SS_tot around "
             f"the test rows' mean) is {want:.4f}; you got {r2:.4f}")
    # small noisy problems, compared to 1e-6: the exact least-squares fit, not one close to it
    for seed in (18, fresh_seed()) if fresh else (18,):
        args = _small_noisy_probe(seed)
        want, r2 = _r2_by_normal_equations(*args), r2_of(*args)
        if not math.isclose(r2, want, abs_tol=1e-6):
            n, d = args[0].shape
            fail(f"with {n} training rows of {d} features plus an offset and noise, the "
                 f"least-squares fit with an intercept gives R² = {want:.6f} on the test rows; you "
                 f"got {r2:.6f}. The larger cases above agree, so something in the fit itself is "
                 f"off: it is not the exact least-squares solution (float32 arithmetic where the "
                 f"hint says float64, a penalty, an extra or duplicated column, an approximate "
                 f"solver?)")
    # features that share a large offset, as a residual stream's constant directions do:
    # cond(X) ~ 1e6, so normal equations in float32 (cond(X)² ~ 1e12) lose every digit
    args = _offset_probe(19)
    want, r2 = _r2_by_lstsq(*args), r2_of(*args)
    if not math.isclose(r2, want, abs_tol=1e-3):
        fail(f"on features that share a large offset (300 on unit spread, as a residual stream's "
             f"constant directions can), the least-squares R² is {want:.4f}; you got {r2:.4f}. "
             f"Such a design is ill-conditioned: the normal equations (X^T X) square its "
             f"condition number, and in float32 the fit is then lost; work in float64 "
             f"(x.double()) and solve with torch.linalg.lstsq rather than an inverse")
    raw = call(probe_r2, x_train, y_train, x_test, y_test, what="probe_r2")
    expect(isinstance(raw, float), f"R² is right, but return it as a Python float (.item()), not "
                                   f"a {type(raw).__name__}")
    if on_model:
        _, _, cache = reference_run()
        half = cache["blocks.0.hook_resid_pre"].shape[0] // 2
        y = torch.arange(1, cache["blocks.0.hook_resid_pre"].shape[1], dtype=torch.float32)

        def at(name):
            x = cache[name][:, 1:].clone()
            rows = lambda part: part.reshape(-1, x.shape[-1])
            return (rows(x[:half]), y.repeat(half), rows(x[half:]), y.repeat(x.shape[0] - half))

        before, after = r2_of(*at("blocks.0.hook_resid_pre")), r2_of(*at("blocks.0.hook_resid_post"))
        expect(before < 0.1, f"before layer 0 the residual holds only token embeddings: position "
                             f"should be unreadable (R² < 0.1), got {before:.3f}")
        expect(after > 0.98, f"after MLP0 position should be almost perfectly readable "
                             f"(R² > 0.98), got {after:.3f}")
    if not quiet:
        passed("probe_r2")


# ---------------------------------------------------------------- 5.4
def _clean_loss(bridge, tokens):
    """Previous-token loss of the unablated model, written out here independently."""
    with torch.no_grad():
        logits = bridge(tokens)
    logp = logits[:, 1:].log_softmax(-1)
    return float(-logp.gather(-1, tokens[:, :-1, None]).mean())


def _mean_ablated_loss(bridge, tokens, name):
    """The previous-token loss with `name` replaced by its mean over this batch, written out here."""
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens, names_filter=lambda n: n == name)
        mean = cache[name].mean(0, keepdim=True)
        logits = bridge.run_with_hooks(tokens, fwd_hooks=[(name, lambda act, hook: mean.expand_as(act))])
    logp = logits[:, 1:].double().log_softmax(-1)
    return float(-logp.gather(-1, tokens[:, :-1, None]).mean())


def _check_exact_losses(mean_ablation_losses, bridge, clean_bridge, tokens, names, where):
    """The answer's losses (on `bridge`) against the mean ablation computed here on the same tokens."""
    __tracebackhide__ = True
    losses = _ablate(mean_ablation_losses, bridge, tokens, names)
    for name in names:
        want = _mean_ablated_loss(clean_bridge, tokens, name)
        got = losses.get(name, math.nan) if isinstance(losses, dict) else math.nan
        if not math.isclose(got, want, rel_tol=1e-3, abs_tol=1e-5):
            fail(f"{where}, replacing {name} by its mean over that same batch (dimension 0) gives "
                 f"a previous-token loss of {want:.5f}; you got {got:.5f}. Something differs from a "
                 f"plain mean ablation: the mean over all the sequences you were given, from a "
                 f"clean run (no other hook attached), in place of that one activation, scored at "
                 f"positions 1.. against the previous token")


def _fresh_bridge():
    from nopos.checkpoint import load_reference
    from nopos.model import lens

    return lens(load_reference()[0])


def _ablate(mean_ablation_losses, bridge, tokens, names):
    """Call the answer on its own copy of the tokens (an argument it changes is named, as
    `call` does); a shape error from a hook is named as the late-binding slip it usually is."""
    __tracebackhide__ = True
    tokens = own_copy(tokens)
    before = snapshot(mean_ablation_losses, [bridge, tokens, names], {})
    try:
        losses = mean_ablation_losses(bridge, tokens, names)
    except NotImplementedError:
        fail("mean_ablation_losses is not written yet (it still raises NotImplementedError)")
    except RuntimeError as error:
        if "size" in str(error) or "shape" in str(error):
            fail(f"a hook replaced an activation with a mean of another shape "
                 f"(RuntimeError: {str(error)[:150]}): a hook made in a loop sees the loop's "
                 f"*last* mean when it runs (late binding); bind each hook's own mean when you "
                 f"make it: lambda act, hook, mean=mean: mean.expand_as(act)")
        fail(f"mean_ablation_losses raised RuntimeError: {error}")
    except Exception as error:  # noqa: BLE001 - the learner's bug, in words
        if type(error).__name__ == "NotDefined":
            fail(str(error))
        fail(f"mean_ablation_losses raised {type(error).__name__}: {error}")
    unchanged("mean_ablation_losses", before)
    return losses


def check_mean_ablation_losses(mean_ablation_losses, on_model=False, fresh=False, quiet=False):
    """A dict of floats per hook, equal to a mean ablation written out here on the same batch;
    zero hooks change nothing; known bands on the checkpoint (`fresh`: a batch the grader draws)."""
    __tracebackhide__ = True
    clean_bridge, tokens, _ = reference_run()
    tokens = tokens[:16]
    bridge = _fresh_bridge()  # yours: a hook you leave on it cannot touch the check's own runs
    names = ["hook_pos_embed", "blocks.1.attn.hook_pattern"]
    losses = _ablate(mean_ablation_losses, bridge, tokens, names)
    expect(isinstance(losses, dict), f"mean_ablation_losses should return a dict {{hook name: "
                                     f"loss}}, got {type(losses).__name__}")
    expect(list(losses) == names, f"the dict should have one entry per hook name, in the order "
                                  f"given: {names}, got {list(losses)}")
    for name, value in losses.items():
        expect(isinstance(value, float), f"losses should be Python floats (use .item()), got "
                                         f"{type(value).__name__} for {name}")
    clean = _clean_loss(clean_bridge, tokens)
    got = losses["hook_pos_embed"]
    expect(math.isclose(got, clean, rel_tol=1e-3, abs_tol=1e-6),
           f"hook_pos_embed is zero in this model, so its mean is zero too and ablating it must "
           f"leave the clean loss {clean:.5f}; got {got:.5f}: score the run with the previous-"
           f"token targets and mask (previous_token_targets, masked_loss)")
    pattern1 = losses["blocks.1.attn.hook_pattern"]
    if pattern1 > 1.0:
        fail(f"replacing layer 1's pattern by its mean gave a loss of {pattern1:.2f}; that is what "
             f"*zeros* do. Replace the activation by its mean over the batch (dimension 0), "
             f"keeping the other dimensions")
    # hooks must not outlive their run
    again = _ablate(mean_ablation_losses, bridge, tokens, ["blocks.0.hook_mlp_out"])
    after = _ablate(mean_ablation_losses, bridge, tokens, ["hook_pos_embed"])
    expect(math.isclose(after["hook_pos_embed"], clean, rel_tol=0.02, abs_tol=1e-4),
           f"after ablating blocks.0.hook_mlp_out, a harmless ablation gave {after['hook_pos_embed']:.3f} "
           f"instead of {clean:.5f}: a hook from an earlier run is still attached; use "
           f"run_with_hooks (it removes its hooks) or bridge.reset_hooks()")
    expect(again["blocks.0.hook_mlp_out"] > 2.0,
           f"mean-ablating MLP0's output should wreck the model (loss > 2), got "
           f"{again['blocks.0.hook_mlp_out']:.3f}")
    _check_exact_losses(mean_ablation_losses, bridge, clean_bridge, tokens,
                        ["blocks.0.attn.hook_v", "blocks.0.hook_mlp_out"], "on these 16 sequences")
    try:
        mean_ablation_losses(bridge, own_copy(tokens), ["blocks.0.hook_no_such_thing"])
    except KeyError as error:
        # (in a hidden check the grader keeps an error's type only, never its text)
        expect("blocks.0.hook_no_such_thing" in str(error) or not error.args,
               "the KeyError for an unknown hook should name the hook")
    except NotImplementedError:
        fail("mean_ablation_losses is not written yet (it still raises NotImplementedError)")
    except Exception as error:  # noqa: BLE001 - any other failure is the learner's to fix
        fail(f"a hook name the model does not have should raise KeyError naming it, got "
             f"{type(error).__name__}: {error}")
    else:
        fail("a hook name the model does not have ('blocks.0.hook_no_such_thing') went through "
             "silently: check `name in cache` and raise KeyError naming it")
    if fresh:
        drawn = random_tokens(8, clean_bridge.cfg.n_ctx, clean_bridge.cfg.d_vocab, fresh_seed())
        _check_exact_losses(mean_ablation_losses, _fresh_bridge(), clean_bridge, drawn,
                            ["blocks.0.attn.hook_v", "blocks.0.attn.hook_pattern"],
                            "on a batch the grader drew")
    if on_model:
        full = ["hook_embed", "blocks.0.attn.hook_k", "blocks.0.attn.hook_v",
                "blocks.0.attn.hook_pattern", "blocks.1.attn.hook_v"]
        losses = _ablate(mean_ablation_losses, _fresh_bridge(), reference_run()[1], full)
        bands = {"hook_embed": (5.0, 20.0), "blocks.0.attn.hook_k": (0.0, 0.02),
                 "blocks.0.attn.hook_v": (0.3, 1.5), "blocks.0.attn.hook_pattern": (0.05, 0.5),
                 "blocks.1.attn.hook_v": (5.0, 20.0)}
        for name, (lo, hi) in bands.items():
            expect(lo <= losses[name] <= hi, f"on the trained model, mean-ablating {name} should "
                                             f"give a loss in [{lo}, {hi}], got {losses[name]:.4f}")
    if not quiet:
        passed("mean_ablation_losses")


# ---------------------------------------------------------------- 5.5
# Recorded from the reference experiment (chapter 5's answer to exercise 5.5)
# on the check's batch: make_batch seeds 5 (tokens) and 55 (filler), 64 sequences, query 40. Every hook that holds layer 0's whole output at q gives these.
_PATCH_RECORDED = {10: dict(clean=0.203125, moved=0.0, control=0.0),
                   5: dict(clean=0.265625, moved=0.0, control=0.0)}


def _patch_batch(seed, filler_seed, batch=64):
    from nopos_reference.data import make_batch

    cfg = _fresh_bridge().cfg
    return (make_batch(batch, cfg.n_ctx, cfg.d_vocab, torch.Generator().manual_seed(seed)),
            make_batch(batch, cfg.n_ctx, cfg.d_vocab, torch.Generator().manual_seed(filler_seed)))


def _patch_result(patch_position_code, tokens, filler, q, shift):
    __tracebackhide__ = True
    return experiment_result(patch_position_code, _fresh_bridge(), tokens.clone(), filler.clone(),
                             q, shift, what="patch_position_code")


def check_patch_position_code(patch_position_code, on_model=False, quiet=False, seed=None):
    """Recorded results of the reference experiment; the named designs that miss them."""
    __tracebackhide__ = True
    tokens, filler = _patch_batch(5, 55)
    same = _patch_result(patch_position_code, tokens, filler, 40, 0)
    expect(same["clean"] == 1.0 and same["moved"] == 1.0,
           f"with shift 0 the donor is the sequence itself, so the patch must change nothing "
           f"(clean and moved 100%), got clean {same['clean']:.0%}, moved {same['moved']:.0%}: "
           f"take the donor's value at q - shift (its position of the same token), at query q only, "
           f"and build the donor as tokens shifted left by `shift`")
    _check_control_by_construction(patch_position_code, tokens, 40, 10)
    for shift, want in _PATCH_RECORDED.items():
        got = _patch_result(patch_position_code, tokens, filler, 40, shift)
        fmt = ", ".join(f"{k} {got[k]:.1%}" for k in want)
        if got["clean"] > 0.9:
            fail(f"shift {shift}: {got['clean']:.0%} of the answers survive the patch ({fmt}). The "
                 f"patch did not reach what layer 1 reads: the token embedding is the same in both "
                 f"runs, and after layer 1 the donor holds the same answer. Patch layer 0's whole "
                 f"output at q (a hook point between layer 0 and layer 1)")
        if got["control"] > 0.9:
            fail(f"your control kept {got['control']:.0%} of the answers: a control patched from the "
                 f"sequence itself (resampling from the same sequence) changes nothing and tests "
                 f"nothing. Take the control's value from `filler`'s run, at the same position q")
        if got["clean"] < want["clean"] - 0.05:
            fail(f"shift {shift}: fewer answers survive your patch than the reference experiment's "
                 f"({fmt}; expected clean {want['clean']:.1%}): the donor's value must come from the "
                 f"same sequence shifted left by `shift`, at q - shift where the same token sits, "
                 f"not from another sequence or from the donor's position q")
        if not all(math.isclose(got[k], want[k], abs_tol=0.02) for k in want):
            fail(f"shift {shift}: expected clean {want['clean']:.1%}, moved {want['moved']:.1%}, "
                 f"control {want['control']:.1%} on the check's batch (the reference experiment), got "
                 f"{fmt}. More answers surviving is what patching only part of layer 0's output "
                 f"gives (MLP0's output alone, or the residual before MLP0)")
    if on_model:
        import random

        from nopos_reference import causal  # the experiment's plumbing (no chapter's answer)

        rng = random.Random(seed)
        s1, s2 = rng.randrange(10**6), rng.randrange(10**6)
        tokens, filler = _patch_batch(s1, s2, batch=32)
        q, shift = rng.randrange(25, 49), rng.randrange(3, 16)
        got = _patch_result(patch_position_code, tokens, filler, q, shift)
        bridge = _fresh_bridge()
        ref = causal.patch_position(bridge, tokens, filler, q, shift)
        want = dict(clean=ref["clean"], moved=ref["moved"], control=_control(bridge, tokens, filler, q))
        expect(all(math.isclose(got[k], want[k], abs_tol=0.04) for k in want),
               f"on fresh sequences (query {q}, shift {shift}) the reference experiment gives "
               + ", ".join(f"{k} {want[k]:.1%}" for k in want) + "; yours "
               + ", ".join(f"{k} {got[k]:.1%}" for k in want))
    if not quiet:
        passed("patch_position_code")


def _check_control_by_construction(patch_position_code, tokens, q, shift):
    """The control on a `filler` built to leave layer 0's output at q as it was: each sequence
    with its tokens 1..q-1 rotated by one place. With no positional embedding layer 0 sees the
    tokens before q as a bag, so the control patch puts back the same value and keeps the
    clean run's answers, while the filler's own run, the patched run and the moved token do not:
    on the check's first batch each of those gives the same ~0% as the right control."""
    __tracebackhide__ = True
    bag = tokens.clone()
    bag[:, 1:q] = tokens[:, 1:q].roll(1, dims=1)
    want = _control(_fresh_bridge(), tokens, bag, q)
    got = _patch_result(patch_position_code, tokens, bag, q, shift)
    if math.isclose(got["control"], want, abs_tol=0.03):
        return
    if math.isclose(got["control"], got["clean"], abs_tol=1e-9) and abs(got["clean"] - want) > 0.1:
        fail(f"your control ({got['control']:.0%}) is scored on the patched run's output (it equals "
             f"clean): run the control patch (the value from `filler`'s run at q) and score that "
             f"run's output at q against the token at q - 1")
    fail(f"with a `filler` whose layer-0 output at q is the clean run's own (each sequence with its "
         f"tokens before q reordered: with no positions layer 0 reads them as a bag), the control "
         f"patch changes nothing, so control should be {want:.0%}; you got {got['control']:.0%}. "
         f"The control is the clean tokens run with layer 0's output at q taken from `filler`'s "
         f"run at q, scored like clean: its output at q against the token at q - 1")


def _control(bridge, tokens, filler, q, hook="blocks.0.hook_attn_out"):
    """The control of exercise 5.5, written out here: `hook` at q taken from `filler`'s run
    at the same position; the fraction still outputting the token at q - 1."""
    with torch.no_grad():
        _, cache = bridge.run_with_cache(filler, names_filter=lambda name: name == hook)
        value = cache[hook][:, q]

        def patch(act, hook):
            act = act.clone()
            act[:, q] = value
            return act
        out = bridge.run_with_hooks(tokens, fwd_hooks=[(hook, patch)])
    return (out[:, q].argmax(-1) == tokens[:, q - 1]).float().mean().item()
