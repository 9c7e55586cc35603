"""Checks for chapter 6: measurements past the seed.

Designed inputs give each likely mistake a recognisable wrong value; the
`on_model` checks (hidden tests) hold an answer to what the shipped and the
untrained models give, with the expected numbers computed here by
independent means (loops, closed forms), never by the answer itself.
"""
import math
from functools import lru_cache

import torch

from nopos.checks import as_tensor, call, expect, experiment_result, fail, fresh_seed, passed, random_tokens



@lru_cache(maxsize=None)
def _models_run(n_ctx=100, batch=64, seed=61):
    """Logits of the reference model made longer (n_ctx positions), on a fixed batch."""
    from nopos.checkpoint import load_reference
    from nopos.variants import longer

    model = longer(load_reference()[0], n_ctx)
    tokens = random_tokens(batch, n_ctx, model.cfg.d_vocab, seed)
    with torch.no_grad():
        return model(tokens), tokens


@lru_cache(maxsize=None)
def _untrained_cache(batch=128, seed=62):
    from nopos.config import model_config
    from nopos.model import build_model, lens

    bridge = lens(build_model(model_config(), seed=0))
    tokens = random_tokens(batch, bridge.cfg.n_ctx, bridge.cfg.d_vocab, seed)
    with torch.no_grad():
        return bridge.run_with_cache(tokens)[1]


# ---------------------------------------------------------------- 6.1
def _designed_logits():
    """tokens [4, 5] (all different within a row) and logits [4, 5, 30] whose argmax
    is chosen per position: position 1 right in every row, 2 in rows 0-1, 3 predicts
    the *current* token everywhere, 4 right in rows 0-2."""
    tokens = torch.tensor([[0, 11, 12, 13, 14], [0, 21, 22, 23, 24],
                           [0, 5, 6, 7, 8], [0, 15, 16, 17, 18]])
    top = tokens.clone()
    top[:, 1] = tokens[:, 0]
    top[:, 2] = torch.where(torch.arange(4) < 2, tokens[:, 1], tokens[:, 2] + 1)
    top[:, 3] = tokens[:, 3]
    top[:, 4] = torch.where(torch.arange(4) < 3, tokens[:, 3], tokens[:, 2])
    logits = torch.zeros(4, 5, 30)
    logits.scatter_(2, top[..., None], 5.0)
    return logits, tokens, [1.0, 0.5, 0.0, 0.75]


def check_accuracy_by_position(accuracy_by_position, on_model=False, quiet=False):
    """Entry q: top logit at q == token at q - 1, averaged over the batch; entry 0 NaN."""
    __tracebackhide__ = True
    logits, tokens, want = _designed_logits()
    got = as_tensor(call(accuracy_by_position, logits.clone(), tokens.clone(),
                         what="accuracy_by_position"), "accuracy_by_position's result")
    if got.dim() == 0:
        fail("accuracy_by_position returned one number: average over the batch only, keeping "
             "one accuracy per position")
    if tuple(got.shape) == (4,):
        fail("the result has 4 entries for 5 positions: keep position 0 at index 0 (as NaN), so "
             "that entry q is position q")
    expect(tuple(got.shape) == (5,), f"the result should be [pos] = [5], got {list(got.shape)}")
    got = got.double()
    if not math.isnan(got[0].item()):
        fail(f"entry 0 should be NaN (position 0 has no previous token to predict), got "
             f"{got[0].item():.3f}")
    values = [round(v, 4) for v in got[1:].tolist()]
    if math.isclose(values[2], 1.0):
        fail("position 3 predicts its own token in every row, and you scored that as right: "
             "compare the top logit at q with the token at q - 1, not with the token at q")
    if values == [0.0, 0.0, 0.0, 0.0] or math.isclose(values[0], 0.0):
        fail(f"got {values} for positions 1..4: position 1 is right in every row; is the "
             f"shift the wrong way round (the token at q + 1)?")
    expect(values == want, f"accuracies at positions 1..4 should be {want}, got {values}: the "
                           f"fraction of rows whose argmax at q is the token at q - 1")
    if on_model:
        logits, tokens = _models_run()
        got = as_tensor(call(accuracy_by_position, logits.clone(), tokens.clone(),
                             what="accuracy_by_position"), "accuracy_by_position's result")
        expect(tuple(got.shape) == (tokens.shape[1],), "one entry per position on the model too")
        right = [sum(int(logits[b, q].argmax()) == int(tokens[b, q - 1]) for b in range(len(tokens)))
                 / len(tokens) for q in range(1, tokens.shape[1])]
        worst = max(abs(a - b) for a, b in zip(got[1:].tolist(), right))
        expect(worst < 1e-6, f"on the reference model at 100 positions your accuracies differ from "
                             f"a plain count by up to {worst:.3f}")
    if not quiet:
        passed("accuracy_by_position")


# ---------------------------------------------------------------- 6.2
def check_variance_by_position(variance_by_position, on_model=False, quiet=False):
    """Variance over the batch (divide by batch), averaged over features."""
    __tracebackhide__ = True
    # batch 3, pos 4, d 2: feature 0 takes (-a, 0, a), feature 1 (0, 0, 0) + a constant
    spread = torch.tensor([0.0, 1.0, 2.0, 3.0])
    x = torch.zeros(3, 4, 2)
    x[:, :, 0] = torch.tensor([-1.0, 0.0, 1.0])[:, None] * spread
    x[:, :, 1] = 7.0 + torch.arange(4.0)                       # varies along positions only
    want = (spread ** 2 * (2 / 3) / 2).double()                  # population variance, mean of 2
    got = as_tensor(call(variance_by_position, x.clone(), what="variance_by_position"),
                    "variance_by_position's result")
    if tuple(got.shape) == (4, 2):
        fail("the result is [pos, d]: average the variance over the features (last dimension)")
    if tuple(got.shape) == (3,) or tuple(got.shape) == (3, 2):
        fail(f"the result has shape {list(got.shape)}: take the variance over the batch "
             f"(dimension 0), one value per position, not over positions")
    expect(tuple(got.shape) == (4,), f"the result should be [pos] = [4], got {list(got.shape)}")
    got = got.double()
    if torch.allclose(got, want * 1.5, atol=1e-5) and not torch.allclose(got, want):
        fail("you used the unbiased variance (divide by batch - 1): use the population variance "
             "(unbiased=False / correction=0)")
    if torch.allclose(got, want.sqrt(), atol=1e-5):
        fail("that is the standard deviation: return the variance")
    if torch.allclose(got, (x.double() ** 2).mean(0).mean(-1), atol=1e-5):
        fail("that is the mean of x² over the batch (an uncentred second moment): subtract the "
             "batch mean at each position first, then average the squares")
    if got[0] > 1.0 and torch.allclose(got, x.double().var(-1, unbiased=False).mean(0), atol=1e-5):
        fail(f"position 0 has the same vector in every sequence, so its variance is 0; you got "
             f"{got[0].item():.2f}: take the variance across sequences (dimension 0), not across "
             f"the features of one vector")
    expect(torch.allclose(got, want.double(), atol=1e-5),
           f"expected {[round(v, 4) for v in want.tolist()]}, got {[round(v, 4) for v in got.tolist()]}")
    if on_model:
        out = _untrained_cache()["blocks.0.hook_attn_out"]
        got = as_tensor(call(variance_by_position, out.clone(), what="variance_by_position"),
                        "variance_by_position's result").double()
        direct = torch.stack([((out[:, q] - out[:, q].mean(0)) ** 2).mean() for q in range(out.shape[1])])
        expect(torch.allclose(got, direct.double(), rtol=1e-3, atol=1e-7),
               "on the untrained model your variances differ from the population variance over "
               "the batch, averaged over features")
    if not quiet:
        passed("variance_by_position")


# ---------------------------------------------------------------- 6.3
def check_attention_entropy(attention_entropy, on_model=False, quiet=False):
    """-sum p log p in nats per query, batch mean, 0 log 0 = 0."""
    __tracebackhide__ = True
    third = 1 / 3
    pattern = torch.tensor([
        [[1.0, 0, 0, 0], [0.5, 0.5, 0, 0], [third, third, third, 0], [1.0, 0, 0, 0]],
        [[1.0, 0, 0, 0], [0.5, 0.5, 0, 0], [1.0, 0, 0, 0], [0.25, 0.25, 0.25, 0.25]],
    ])
    want = torch.tensor([0.0, math.log(2), math.log(3) / 2, math.log(4) / 2], dtype=torch.float64)
    got = as_tensor(call(attention_entropy, pattern.clone(), what="attention_entropy"),
                    "attention_entropy's result")
    expect(tuple(got.shape) == (4,), f"the result should be [query] = [4] (averaged over the batch), "
                                     f"got {list(got.shape)}")
    got = got.double()
    if torch.isnan(got).any():
        fail("NaN: the keys a query cannot see have p = 0 and log 0 = -inf; count 0 log 0 as 0 "
             "(torch.where(p > 0, ...) or torch.xlogy)")
    if torch.allclose(got, -want, atol=1e-4):
        fail("the entropies are negative: entropy is -sum p log p")
    if torch.allclose(got, want / math.log(2), atol=1e-4):
        fail("those are bits (log base 2): use the natural log, nats")
    if math.isclose(got[1].item(), 1.0, abs_tol=1e-4):
        fail("query 1 spreads evenly over 2 keys and you report 1.0: do not divide by log(q + 1); "
             "return the entropy itself (log 2 = 0.693 here)")
    if math.isclose(got[1].item(), math.log(2) / 4, abs_tol=1e-4):
        fail("you averaged over the keys: sum -p log p over the keys, average over the batch only")
    expect(torch.allclose(got, want, atol=1e-4),
           f"expected {[round(v, 4) for v in want.tolist()]}, got {[round(v, 4) for v in got.tolist()]}")
    if on_model:
        pattern = _untrained_cache()["blocks.0.attn.hook_pattern"][:, 0]
        got = as_tensor(call(attention_entropy, pattern.clone(), what="attention_entropy"),
                        "attention_entropy's result").double()
        q = pattern.shape[1] - 1
        direct = sum(-sum(float(p) * math.log(p) for p in row[: q + 1] if p > 0) for row in pattern[:, q])
        direct /= pattern.shape[0]
        expect(abs(got[q].item() - direct) < 1e-3,
               f"on the untrained model the last query's entropy is {direct:.4f}, you got "
               f"{got[q].item():.4f}")
    if not quiet:
        passed("attention_entropy")


# ---------------------------------------------------------------- 6.4
def _least_squares_slope(x, y):
    """Slope of y on x with an intercept, from the normal equations in float64."""
    x, y = x.double(), y.double()
    dx = x - x.mean()
    return float((dx * (y - y.mean())).sum() / (dx * dx).sum())


def _curved_values(seed, n=40):
    """Positive values whose log-log curve bends and jitters, so that the least-squares slope
    differs from endpoints, consecutive slopes, the first points and weighted fits."""
    g = torch.Generator().manual_seed(seed)
    x = torch.log(torch.arange(n, dtype=torch.float64) + 1)
    bend = 0.05 + 0.1 * torch.rand(1, generator=g, dtype=torch.float64)
    log_v = 1.0 - 1.2 * x + bend * x ** 2 + 0.2 * torch.randn(n, generator=g, dtype=torch.float64)
    values = torch.exp(log_v)
    values[0] = 0.0
    return values


def _slope_mistakes(values, start):
    """{what went wrong: the slope it gives} for the mistakes the check can name."""
    q = torch.arange(start, len(values), dtype=torch.float64)
    x, y = torch.log(q + 1), torch.log(values[start:].double())
    return {
        "you regressed log(q + 1) on log(values): x and y are swapped (fit log v = a log(q + 1) + b)":
            1.0 / _least_squares_slope(x, y) if _least_squares_slope(x, y) != 0 else math.inf,
        "you fitted the values themselves, not their log, against log(q + 1) (a semi-log "
        "fit): take log(values) too":
            _least_squares_slope(x, values[start:].double()),
        "you fitted log(values) against q itself, not log(q + 1) (a semi-log fit)":
            _least_squares_slope(q + 1, y),
        "you fitted against log(q) (or counted q from 0 after slicing at `start`, the same slip "
        "here); position q sees q + 1 tokens, so fit against log(q + 1)":
            _least_squares_slope(torch.log(q.clamp_min(1e-300)), y) if start > 0 else math.nan,
        "you counted q from 0 after slicing at `start`: position q (from `start` on) sees q + 1 "
        "tokens, so fit against log(q + 1) for q = start, start + 1, ...":
            _least_squares_slope(torch.log(q - start + 1), y),
        "you fitted without an intercept (forced through the origin): add a column of ones":
            float((x * y).sum() / (x * x).sum()),
        "you took the slope between the two end points only: fit a least-squares line through "
        "every point from `start` on":
            float((y[-1] - y[0]) / (x[-1] - x[0])),
        "you took the slope of the first two points only: fit a least-squares line through every "
        "point from `start` on":
            float((y[1] - y[0]) / (x[1] - x[0])),
        "you averaged the slopes between consecutive points: that is not the least-squares "
        "slope; fit one line through every point from `start` on":
            float(((y[1:] - y[:-1]) / (x[1:] - x[:-1])).mean()),
    }


def _check_slope_on(slope, values, start, where):
    """Compare with the least-squares slope; name the mistake when one matches."""
    __tracebackhide__ = True
    want = _least_squares_slope(torch.log(torch.arange(start, len(values), dtype=torch.float64) + 1),
                                torch.log(values[start:].double()))
    got = slope(values, start)
    if math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-4):
        return
    for mistake, value in _slope_mistakes(values, start).items():
        if math.isfinite(value) and math.isclose(got, value, rel_tol=1e-4, abs_tol=1e-4):
            fail(f"{where}: from start = {start} the least-squares slope is {want:.4f}, you got "
                 f"{got:.4f}: {mistake}")
    fail(f"{where}: from start = {start} the least-squares slope of log(values) on log(q + 1), "
         f"with an intercept, is {want:.4f}; you got {got:.4f}. Something in the fit is off: "
         f"use every point from `start` on, unweighted")


def check_log_log_slope(log_log_slope, on_model=False, fresh=False, quiet=False):
    """Least squares of log v on log(q + 1), with an intercept, from `start`
    (`fresh`: a bent, noisy curve the grader draws)."""
    __tracebackhide__ = True

    def slope(values, start):
        value = call(log_log_slope, values.clone(), start, what="log_log_slope")
        try:
            return float(value)
        except (TypeError, ValueError):
            fail(f"log_log_slope should return one number, got {type(value).__name__}")

    q = torch.arange(20, dtype=torch.float64)
    values = 3.0 / (q + 1)
    values[0] = 0.0                    # position 0: nothing varies there
    got = slope(values, 1)
    if math.isnan(got) or math.isinf(got):
        fail("the slope is NaN or infinite: values[0] is 0 and log 0 = -inf; fit from `start` on")
    _check_slope_on(slope, values, 1, "values = 3 / (q + 1), whose slope is exactly -1")
    # a curve that changes law at q = 5: only the part from `start` counts
    bent = 2.0 * (q + 1) ** -0.5
    bent[:5] = 50.0
    got = slope(bent, 5)
    if math.isclose(got, _least_squares_slope(torch.log(q[1:] + 1), torch.log(bent[1:])), abs_tol=1e-4):
        fail(f"from start = 5 on, 2 * (q + 1) ** -0.5 has slope -0.5; you got {got:.4f}, the fit "
             f"from position 1: use the `start` argument (the values before it follow another law)")
    _check_slope_on(slope, bent, 5, "2 * (q + 1) ** -0.5 after a plateau up to q = 4")
    # bent and noisy: estimators that agree on an exact power law differ here
    _check_slope_on(slope, _curved_values(fresh_seed() if fresh else 6), 3,
                    "on a bent, noisy curve")
    raw = call(log_log_slope, bent.clone(), 5, what="log_log_slope")
    expect(isinstance(raw, float), f"the slope is right, but return it as a Python float (.item()), "
                                   f"not a {type(raw).__name__}")
    if on_model:
        out = _untrained_cache()["blocks.0.hook_attn_out"]
        var = out.double().var(0, unbiased=False).mean(-1)
        got = slope(var.float(), 1)
        expect(-1.1 < got < -0.5, f"the untrained model's attention-output variance falls roughly "
                                  f"like 1 / (q + 1) (slope between -1.1 and -0.5); you got {got:.3f}")
    if not quiet:
        passed("log_log_slope")


# ---------------------------------------------------------------- 6.5
_CODE = "blocks.0.hook_resid_post"   # the residual after layer 0: what layer 1 reads


@lru_cache(maxsize=None)
def _no_bos_model():
    from nopos.variants import load_variant

    return load_variant("no_bos")[0]


def _no_bos_bridge():
    """A fresh copy each call: an answer that edits the model cannot reach the next call."""
    import copy

    from nopos.model import lens

    return lens(copy.deepcopy(_no_bos_model()))


@lru_cache(maxsize=None)
def _no_bos_batch(seed, batch):
    """Sequences with an ordinary random first token, as the no-BOS model was trained on."""
    from nopos.variants import without_bos

    tokens = random_tokens(batch, 50, 300, seed)
    return without_bos(tokens, 300, torch.Generator().manual_seed(seed + 1))


@lru_cache(maxsize=None)
def _recorded(seeds, batch, q, q_code):
    """The reference experiment on the check's fixed batches, computed once a session."""
    return _position_patch_written_out(_no_bos_bridge(), _no_bos_batch(seeds[0], batch),
                                       _no_bos_batch(seeds[1], batch), q, q_code)


def _position_patch_written_out(bridge, tokens, filler, q, q_code):
    """The reference experiment, written out here: at query q of the residual after layer 0,
    add mean[q_code] - mean[q] (means over filler); control: filler's residual at q."""
    with torch.no_grad():
        _, cache = bridge.run_with_cache(filler, names_filter=lambda name: name == _CODE)
        mean, other = cache[_CODE].mean(0), cache[_CODE][:, q]

        def run(edit):
            def patch(act, hook):
                act = act.clone()
                act[:, q] = edit(act[:, q])
                return act
            return bridge.run_with_hooks(tokens, fwd_hooks=[(_CODE, patch)])[:, q].argmax(-1)
        top, control = run(lambda x: x + mean[q_code] - mean[q]), run(lambda x: other)
        unpatched = bridge(tokens)[:, q].argmax(-1)
    right = lambda top: (top == tokens[:, q - 1]).float().mean().item()
    return dict(clean=right(top), moved=(top == tokens[:, q_code - 1]).float().mean().item(),
                control=right(control)), right(unpatched)


def _check_control_by_construction(position_only_patch, tokens, q, q_code):
    """The control on a `filler` built to leave layer 0's code at q as it was (chapter 5's
    construction): each sequence with its tokens 1..q-1 rotated by one place. With no
    positional embedding layer 0 reads the tokens before q as a bag, so filler's residual at
    q is the clean one and the right control keeps the unpatched answers; a control taken at
    another position, a mean, or scored on the patched run does not. (On random fillers all
    of those break about every answer alike.)"""
    __tracebackhide__ = True
    bag = tokens.clone()
    bag[:, 1:q] = tokens[:, 1:q].roll(1, dims=1)
    want, _ = _position_patch_written_out(_no_bos_bridge(), tokens, bag, q, q_code)
    got = _position_patch_result(position_only_patch, tokens, bag, q, q_code)
    if abs(got["control"] - want["control"]) <= 0.03:
        return
    if math.isclose(got["control"], got["clean"], abs_tol=1e-9) and abs(got["clean"] - want["control"]) > 0.1:
        fail(f"your control ({got['control']:.0%}) is scored on the patched run's output (it equals "
             f"clean): run the control patch (filler's residual at q) and score that run's output "
             f"at q against the token at q - 1")
    fail(f"with a `filler` whose code at q is the clean run's own (each sequence with its tokens "
         f"before q reordered: with no positions layer 0 reads them as a bag), the control changes "
         f"nothing, so control should be {want['control']:.0%}; you got {got['control']:.0%}. The "
         f"control keeps the position and changes the sequence: filler's residual after layer 0 at "
         f"q itself (not at q_code, not a mean over sequences), scored like clean")


def _position_patch_result(position_only_patch, tokens, filler, q, q_code):
    __tracebackhide__ = True
    return experiment_result(position_only_patch, _no_bos_bridge(), tokens.clone(), filler.clone(),
                             q, q_code, what="position_only_patch")


# Tolerance on a fraction of 128 (or 256) sequences: means taken over another batch of the
# same size move the reference's own numbers by up to about 0.1 where the curve is steep.
_PATCH_TOL = 0.12


def check_position_only_patch(position_only_patch, on_model=False, quiet=False, seed=None):
    """The no-BOS model's code moved to another position and nothing else, against the
    reference experiment written out here; the named designs that miss it."""
    __tracebackhide__ = True
    tokens, filler = _no_bos_batch(5, 128), _no_bos_batch(55, 128)
    same = _position_patch_result(position_only_patch, tokens, filler, 40, 40)
    _, unpatched = _recorded((5, 55), 128, 40, 40)
    if same["clean"] < 0.05:
        fail(f"with q_code = q the patch must change nothing, but only {same['clean']:.0%} of the "
             f"answers survive (unpatched {unpatched:.0%}): you replaced the residual by the mean "
             f"code, which also throws away what layer 0 gathered about the sequence. Add the "
             f"difference of the mean codes, mean[q_code] - mean[q], to each sequence's own")
    expect(abs(same["clean"] - unpatched) < 0.02,
           f"with q_code = q the patch must change nothing: {unpatched:.1%} of the answers are right "
           f"unpatched, {same['clean']:.1%} after your patch. Add mean[q_code] - mean[q] at query q "
           f"only, and score the output at q against the token at q - 1")
    for q_code in (15, 30, 45):
        got = _position_patch_result(position_only_patch, tokens, filler, 40, q_code)
        want, _ = _recorded((5, 55), 128, 40, q_code)
        fmt = ", ".join(f"{k} {got[k]:.1%}" for k in want)
        if got["control"] > unpatched - 0.1:
            fail(f"your control keeps {got['control']:.0%} of the answers right, as many as no patch "
                 f"at all ({unpatched:.0%}): a control that leaves the answer as it was tests nothing "
                 f"(no patch, a value from the sequence itself, or a hook where another sequence's "
                 f"value hardly matters, such as the token embedding at q). Keep the position and "
                 f"change the sequence: filler's residual after layer 0, at q")
        if q_code == 15 and got["clean"] > 0.4 and want["clean"] < 0.2:
            fail(f"code of {q_code} at query 40: {got['clean']:.0%} of the answers survive, the "
                 f"reference experiment {want['clean']:.0%}, unpatched {unpatched:.0%} ({fmt}). The "
                 f"patch did not move what layer 1 reads at q. Patched before MLP0 (attention 0's "
                 f"output, or the residual before MLP0)? MLP0 then reads a shifted average, not a "
                 f"shifted code. Before layer 0 (the token embedding's mean is the same at every "
                 f"position), after layer 1 (too late), or at position q_code instead of q? Patch "
                 f"the residual after layer 0, what layer 1 reads, at query q")
        if q_code == 15 and got["clean"] > want["clean"] + _PATCH_TOL:
            fail(f"code of {q_code} at query 40: {got['clean']:.0%} of the answers survive, the "
                 f"reference experiment {want['clean']:.0%} ({fmt}). Did you patch every position "
                 f"(or every position from q on)? Query q alone gets the new code; patching the "
                 f"keys too is another experiment")
        if q_code == 30 and got["clean"] < want["clean"] - _PATCH_TOL:
            fail(f"code of {q_code} at query 40: only {got['clean']:.0%} of the answers survive, "
                 f"the reference experiment {want['clean']:.0%} ({fmt}). Is the difference the "
                 f"wrong way round? mean[q_code] - mean[q] moves the code from q to q_code; "
                 f"mean[q] - mean[q_code] moves it the other way")
        if not all(abs(got[k] - want[k]) <= _PATCH_TOL for k in want):
            fail(f"code of {q_code} at query 40: the reference experiment gives "
                 + ", ".join(f"{k} {want[k]:.1%}" for k in want) + f"; yours {fmt}. Something in "
                 f"the design differs: the residual after layer 0, at query q only, plus mean[q_code] "
                 f"- mean[q] with the means over filler's sequences; control: filler's residual at q")
    _check_control_by_construction(position_only_patch, tokens, 40, 30)
    if on_model:
        import random

        rng = random.Random(fresh_seed() if seed is None else seed)
        tokens, filler = _no_bos_batch(rng.randrange(10**6), 256), _no_bos_batch(rng.randrange(10**6), 256)
        q = rng.randrange(30, 49)
        q_code = rng.choice([q - rng.randrange(8, 13), min(49, q + rng.randrange(3, 9))])
        got = _position_patch_result(position_only_patch, tokens, filler, q, q_code)
        want, _ = _position_patch_written_out(_no_bos_bridge(), tokens, filler, q, q_code)
        expect(all(abs(got[k] - want[k]) <= _PATCH_TOL for k in want),
               f"on fresh sequences (query {q}, code of {q_code}) the reference experiment gives "
               + ", ".join(f"{k} {want[k]:.1%}" for k in want) + "; yours "
               + ", ".join(f"{k} {got[k]:.1%}" for k in want))
    if not quiet:
        passed("position_only_patch")
