"""Checks for chapter 4: looking at attention.

Designed patterns make each likely mistake give a recognisable wrong value;
the `on_model` checks hold an answer to bands that the shipped checkpoint
satisfies (computed here by plain loops, never by the answer itself).
"""
import functools
import math

import torch

from nopos.checks import as_tensor, call, diagnose, expect, fail, fresh_seed, passed, random_tokens

CHECK_SEED, CHECK_BATCH = 4321, 64


@functools.lru_cache(maxsize=2)
def reference_run(batch=CHECK_BATCH, seed=CHECK_SEED):
    """(bridge, tokens, cache) for the shipped checkpoint on a fixed batch (cached)."""
    from nopos.checkpoint import load_reference
    from nopos.model import lens

    model, _ = load_reference()
    bridge = lens(model)
    cfg = bridge.cfg
    tokens = random_tokens(batch, cfg.n_ctx, cfg.d_vocab, seed)
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens)
    return bridge, tokens, cache


def _causal_pattern(weights_by_query):
    """Square causal pattern from a list of per-query weight lists (row q has q+1 entries)."""
    n = len(weights_by_query)
    pattern = torch.zeros(n, n)
    for q, row in enumerate(weights_by_query):
        pattern[q, :q + 1] = torch.tensor(row) / sum(row)
    return pattern


def _bos_batch(cs, n_ctx):
    """Patterns whose BOS weight is c/(c+q) exactly, the rest uniform: one per c."""
    rows = []
    for c in cs:
        rows.append(_causal_pattern([[c] + [1.0] * q for q in range(n_ctx)]))
    return torch.stack(rows)


# ---------------------------------------------------------------- 4.1
def check_bos_attention(bos_attention, on_model=False, quiet=False):
    """Entry q = mean over the batch of the weight query q puts on key 0."""
    __tracebackhide__ = True
    cs, n_ctx = [2.0, 5.0, 20.0], 9
    pattern = _bos_batch(cs, n_ctx)
    want = torch.tensor([sum(c / (c + q) for c in cs) / len(cs) for q in range(n_ctx)])
    got = as_tensor(call(bos_attention, pattern.clone(), what="bos_attention"), "bos_attention's result")
    if got.shape == (len(cs), n_ctx):
        fail(f"bos_attention returned one curve per sequence {list(got.shape)}: average over the "
             f"batch (dimension 0) to get one number per query position")
    if got.shape == (len(cs),):
        fail("bos_attention returned one number per sequence: average over the batch, and keep "
             "the query dimension")
    expect(got.shape == (n_ctx,), f"expected one number per query position, shape [{n_ctx}], got "
                                  f"{list(got.shape)}")
    got = got.detach().float().cpu()
    if torch.allclose(got, pattern[:, 0, :].mean(0), atol=1e-5):
        fail("you read what BOS (query 0) attends to, the first *row*; the weight *on* BOS is the "
             "first key column: pattern[:, :, 0]")
    if torch.allclose(got, pattern.mean(dim=(0, 2)), atol=1e-5):
        fail("you averaged over the key dimension (every row sums to 1, so that is just "
             "1/n_ctx); take the weight on key 0 (BOS) and average over the batch")
    if torch.allclose(got, pattern[0, :, 0], atol=1e-5):
        fail("you used only the first sequence: average over the whole batch")
    if not torch.allclose(got, want, atol=1e-5):
        fail(f"expected the BOS weights {[round(v, 3) for v in want.tolist()]}, got "
             f"{[round(v, 3) for v in got.tolist()]}; entry q is the mean of pattern[:, q, 0]")
    if on_model:
        _, _, cache = reference_run()
        real = cache["blocks.0.attn.hook_pattern"][:, 0].clone()  # yours to change, not the cache
        got = as_tensor(call(bos_attention, real, what="bos_attention"), "bos_attention's result")
        bands = {1: (0.80, 0.93), 10: (0.33, 0.45), 49: (0.08, 0.15)}
        for q, (lo, hi) in bands.items():
            expect(lo <= float(got[q]) <= hi,
                   f"on the trained model, the BOS weight at query {q} should be in "
                   f"[{lo}, {hi}], got {float(got[q]):.3f}")
    if not quiet:
        passed("bos_attention")


# ---------------------------------------------------------------- 4.2
def _curve(c, n_ctx, first=1.0):
    w = torch.tensor([c / (c + q) for q in range(n_ctx)], dtype=torch.float64)
    w[0] = first
    return w


def _pair(result, what="fit_bos_curve"):
    __tracebackhide__ = True
    expect(isinstance(result, tuple) and len(result) == 2, f"{what} should return a pair (c, r2)")
    c, r2 = result
    try:
        return float(c), float(r2)
    except (TypeError, ValueError):
        fail(f"{what} should return two numbers (c, r2), got {type(c).__name__} and "
             f"{type(r2).__name__}")


def _least_squares(w, first_q=1):
    """The check's own fit of c/(c+q) to w[1:]: a coarse grid, then golden sections on log c
    (`first_q`: the position paired with entry 1, to reproduce a fit whose positions are shifted)."""
    w = w[1:].double()
    q = torch.arange(first_q, len(w) + first_q, dtype=torch.float64)

    def sse(log_c):
        c = math.exp(log_c)
        return float(((c / (c + q) - w) ** 2).sum())

    grid = [math.log(0.01) + i * (math.log(1000) - math.log(0.01)) / 400 for i in range(401)]
    best = min(range(len(grid)), key=lambda i: sse(grid[i]))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(80):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        lo, hi = (lo, b) if sse(a) < sse(b) else (a, hi)
    c = math.exp((lo + hi) / 2)
    total = float(((w - w.mean()) ** 2).sum())
    return c, 1 - sse(math.log(c)) / total, total, float((w ** 2).sum())


def _noisy_curve(seed):
    g = torch.Generator().manual_seed(seed)
    n_ctx = int(torch.randint(25, 46, (1,), generator=g))
    c = math.exp(float(torch.empty(1).uniform_(0, math.log(30), generator=g)))
    w = _curve(c, n_ctx) * (1 + 0.15 * torch.randn(n_ctx, generator=g, dtype=torch.float64))
    w = w.clamp(1e-3, 1.0)
    w[0] = 1.0
    return w


def _check_noisy_fit(fit_bos_curve, seed):
    """A curve with noise: c and R² must be the least-squares ones (R² is not 1 here, so its
    definition shows)."""
    __tracebackhide__ = True
    w = _noisy_curve(seed)
    c, r2 = _pair(call(fit_bos_curve, w.float(), what="fit_bos_curve"))
    want_c, want_r2, total, squares = _least_squares(w.float())
    if not math.isclose(c, want_c, rel_tol=3e-3):
        fail(f"for a noisy BOS curve (n_ctx={len(w)}) the least-squares c is {want_c:.4f}, you "
             f"found {c:.4f}: minimise the squared error over q = 1 .. n_ctx-1")
    if math.isclose(r2, want_r2, abs_tol=2e-4):
        return
    residual = (1 - want_r2) * total
    if math.isclose(r2, 1 - residual / squares, abs_tol=2e-4):
        fail(f"your R² {r2:.4f} divides by the sum of squared weights, not by their squared "
             f"distances from the mean weight (SS_tot); expected {want_r2:.4f}")
    fail(f"for a noisy BOS curve you report R² = {r2:.4f}; with your c the least-squares fit "
         f"has R² = 1 - SS_res / SS_tot = {want_r2:.4f} (SS_tot: squared distances from the mean "
         f"weight, over q >= 1)")


EXACT_CURVES = [(4.0, 20), (12.0, 40), (0.05, 30), (300.0, 30)]  # (c, n_ctx)
_MODERATE = [c for c, _ in EXACT_CURVES if 1 <= c <= 100]  # where every plausible search finds c


def _close_on(fits, want, which=None, rel_tol=0.01):
    """Is every fitted c (of the curves `which`, default all) within rel_tol of want(c_true)?"""
    return all(math.isclose(fits[c_true][0], want(c_true), rel_tol=rel_tol)
               for c_true in (which or fits))


@functools.lru_cache(maxsize=None)  # the same few exact curves for every answer diagnosed
def _shifted_fit(c_true, first_q):
    """The least-squares c of the exact curve c_true/(c_true+q) with its positions shifted."""
    return _least_squares(_curve(c_true, dict(EXACT_CURVES)[c_true]).float(), first_q)[0]


def _stops_short(fits):
    """Right for the moderate curves, and pulled in towards them at an extreme: the search for
    c does not reach 0.05 or 300 (a grid from 0.1, or up to 100)."""
    extremes = [c for c in fits if c not in _MODERATE and not math.isclose(fits[c][0], c, rel_tol=0.01)]
    return (_close_on(fits, lambda c: c, _MODERATE) and extremes
            and all(min(c, 4.0) <= fits[c][0] <= max(c, 12.0) for c in extremes))


def _too_coarse(fits):
    """Near every c but not at it: the candidate c are too far apart."""
    return all(math.isclose(fits[c][0], c, rel_tol=0.25) for c in fits)


# Known wrong fits of the exact curves, most specific first (for `diagnose`).
_FIT_SLIPS = [
    (lambda fits: all(math.isclose(r2, c, rel_tol=0.01) and math.isclose(c_hat, 1.0, abs_tol=1e-3)
                      for c, (c_hat, r2) in fits.items()),
     "your function returns (R², c), the wrong way round: for an exact curve the first number "
     "is 1 and the second is c; return (c, r2), c first"),
    (lambda fits: _close_on(fits, lambda c: _shifted_fit(c, 2), _MODERATE),
     lambda fits: f"for the exact curve 4/(4+q) you found c = {fits[4.0][0]:.3f}, which is the fit "
                  f"with entry 1 paired with q = 2: entry q of bos_weights is query position q "
                  f"(entry 1 is q = 1); your positions are shifted by one"),
    (lambda fits: _close_on(fits, lambda c: _shifted_fit(c, 0), _MODERATE),
     lambda fits: f"for the exact curve 4/(4+q) you found c = {fits[4.0][0]:.3f}, which is the fit "
                  f"with entry 1 paired with q = 0: entry q of bos_weights is query position q "
                  f"(entry 1 is q = 1); your positions are shifted by one"),
    (_stops_short,
     lambda fits: "your fit is right for c = 4 and 12 but not at the extremes: "
                  + ", ".join(f"c = {c:g} gives {fits[c][0]:.4g}" for c in fits
                              if not math.isclose(fits[c][0], c, rel_tol=0.01))
                  + ": the search for c stops short; heads range from c near 0.01 to near 1000, "
                    "so search that whole range (a log-spaced grid, e.g. torch.logspace(-2, 3, ...))"),
    (_too_coarse,
     lambda fits: "your c is near the true c but not at it ("
                  + ", ".join(f"{fits[c][0]:.4g} for {c:g}" for c in fits
                              if not math.isclose(fits[c][0], c, rel_tol=0.01))
                  + "): the candidate values of c are too far apart; use a finer grid (log-spaced, "
                    "as c spans orders of magnitude) or refine around the best one"),
]


def check_fit_bos_curve(fit_bos_curve, on_model=False, fresh=False, quiet=False):
    """Recovers c of an exact curve, ignores entry 0, and reports R² honestly
    (`fresh`: a noisy curve the grader draws)."""
    __tracebackhide__ = True
    # c from heads that hardly look at BOS to heads that almost only do
    fits = {}
    for c_true, n_ctx in EXACT_CURVES:
        result = call(fit_bos_curve, _curve(c_true, n_ctx).float(), what="fit_bos_curve")
        fits[c_true] = _pair(result)
    wrong = [c_true for c_true, (c, _) in fits.items() if not math.isclose(c, c_true, rel_tol=0.01)]
    if wrong:
        c_true, (c, _) = wrong[0], fits[wrong[0]]
        diagnose(fits, _FIT_SLIPS,
                 f"for weights that are exactly {c_true:g}/({c_true:g}+q) the fit should give "
                 f"c = {c_true:g}, got {c:.4g}; this is none of the slips the check knows "
                 f"(positions shifted by one, (r2, c) in the wrong order, a search for c that "
                 f"stops short or is too coarse), so something else is off: check that you "
                 f"minimise the squared error of c/(c+q) over q = 1 .. n_ctx-1")
    for c_true, (c, r2) in fits.items():
        expect(0.999 <= r2 <= 1 + 1e-9,
               f"an exact curve should be fitted perfectly (R² = 1), you report R² = {r2:.4f}")
    # entry 0 is ignored: whatever stands there, the answer is the same
    c, r2 = _pair(call(fit_bos_curve, _curve(4.0, 20, first=0.0).float(), what="fit_bos_curve"))
    if not math.isclose(c, 4.0, rel_tol=0.01) or r2 < 0.999:
        fail(f"changing entry 0 (query position 0) changed your result to c = {c:.3f}, "
             f"R² = {r2:.4f}: position 0 is BOS attending to itself, weight 1 for every c, so it "
             f"says nothing about c; fit and measure R² over q >= 1 only")
    # R² is measured against the mean, so a curve that is not of this shape scores low
    zigzag = torch.tensor([1.0] + [0.3 if q % 2 else 0.5 for q in range(1, 30)])
    c, r2 = _pair(call(fit_bos_curve, zigzag, what="fit_bos_curve"))
    if r2 > 0.3:
        fail(f"for a zig-zag 0.3, 0.5, 0.3 ... that no c/(c+q) follows you report R² = {r2:.3f}: "
             f"R² = 1 - SS_res / SS_tot, with SS_tot the squared distance from the mean of the "
             f"weights (over q >= 1)")
    _check_noisy_fit(fit_bos_curve, 0)
    if fresh:
        _check_noisy_fit(fit_bos_curve, fresh_seed())
    expect(all(isinstance(v, float) for v in result),
           f"c and R² are right, but return them as Python floats (.item()), not "
           f"{type(result[0]).__name__}")
    if on_model:
        _, _, cache = reference_run()
        pattern = cache["blocks.0.attn.hook_pattern"][:, 0]
        weights = torch.tensor([float(pattern[:, q, 0].mean()) for q in range(pattern.shape[1])])
        c, r2 = _pair(call(fit_bos_curve, weights, what="fit_bos_curve"))
        expect(5.5 <= c <= 7.2, f"on the trained model c should be in [5.5, 7.2], got {c:.3f}")
        expect(r2 >= 0.999, f"on the trained model the fit should be near-perfect "
                            f"(R² >= 0.999), got {r2:.5f}")
    if not quiet:
        passed("fit_bos_curve")


# ---------------------------------------------------------------- 4.4
def _offset_batch():
    """Two sequences, 7 positions: recency kernels of different shapes."""
    first = _causal_pattern([[1.0] * 0 + [0.2] * q + [1.0] for q in range(7)])
    second = _causal_pattern([[0.05] * max(q - 1, 0) + ([0.5] if q else []) + [0.4]
                              for q in range(7)])
    return torch.stack([first, second])


def _by_loops(pattern, max_offset):
    """Mean weight on key q-k over every (sequence, query q >= k): plain loops."""
    out = []
    for k in range(max_offset + 1):
        values = [float(pattern[b, q, q - k]) for b in range(pattern.shape[0])
                  for q in range(k, pattern.shape[1])]
        out.append(sum(values) / len(values))
    return torch.tensor(out)


def check_attention_by_offset(attention_by_offset, on_model=False, quiet=False):
    """Entry k = mean over sequences and queries q >= k of pattern[b, q, q-k]."""
    __tracebackhide__ = True
    pattern, max_offset = _offset_batch(), 3
    n = pattern.shape[1]
    want = _by_loops(pattern, max_offset)
    got = as_tensor(call(attention_by_offset, pattern.clone(), max_offset, what="attention_by_offset"),
                    "attention_by_offset's result")
    expect(got.shape == (max_offset + 1,),
           f"expected one number per offset 0..{max_offset}, shape [{max_offset + 1}], got "
           f"{list(got.shape)}")
    got = got.detach().float().cpu()
    if torch.allclose(got, pattern.mean(dim=(0, 1))[:max_offset + 1], atol=1e-5):
        fail("you averaged each key *column* (attention to absolute positions 0, 1, 2 ...), not "
             "each offset: average over queries at each offset, i.e. along the diagonals "
             "pattern[:, q, q - k]")
    if torch.allclose(got, pattern.mean(dim=(0, 2))[:max_offset + 1], atol=1e-5):
        fail("you averaged over the key dimension; average over queries at each offset "
             "(pattern[:, q, q - k] for every q >= k)")
    if torch.allclose(got[1:], torch.zeros(max_offset), atol=1e-6):
        fail("every offset after 0 came out 0: you read *above* the diagonal (keys after the "
             "query), where the causal mask puts zeros; offset k is key q - k, below the diagonal "
             "(diagonal(offset=-k))")
    scaled = want * torch.tensor([(n - k) / n for k in range(max_offset + 1)])
    if torch.allclose(got, scaled, atol=1e-5):
        fail("you divided by all n_ctx queries, but only queries q >= k have a key k positions "
             "back: average over those queries only")
    if torch.allclose(got, _by_loops(pattern[:1], max_offset), atol=1e-5):
        fail("you used only the first sequence: average over the batch too")
    if not torch.allclose(got, want, atol=1e-5):
        fail(f"expected {[round(v, 3) for v in want.tolist()]}, got "
             f"{[round(v, 3) for v in got.tolist()]}; entry k is the mean of pattern[b, q, q - k] "
             f"over every sequence b and query q >= k")
    if on_model:
        _, _, cache = reference_run()
        real = cache["blocks.1.attn.hook_pattern"][:, 0].clone()
        got = as_tensor(call(attention_by_offset, real, 4, what="attention_by_offset"),
                        "attention_by_offset's result")
        bands = [(0.60, 0.75), (0.20, 0.30), (0.04, 0.09), (0.005, 0.03), (0.0, 0.01)]
        for k, (lo, hi) in enumerate(bands):
            expect(lo <= float(got[k]) <= hi,
                   f"on the trained model's layer 1, offset {k} should carry a mean weight in "
                   f"[{lo}, {hi}], got {float(got[k]):.3f}")
    if not quiet:
        passed("attention_by_offset")


# ---------------------------------------------------------------- 4.4
def _scores_by_hooks(bridge):
    """Layer 0's score table [query token, key token], measured through the hooks on the
    two-token sequences [BOS, t]: with no positions, a token's query and key are the same
    wherever it stands, so this is a route to the table that never reads a weight."""
    vocab = bridge.cfg.d_vocab
    tokens = torch.stack([torch.zeros(vocab - 1, dtype=torch.long), torch.arange(1, vocab)], 1)
    names = ("blocks.0.attn.hook_q", "blocks.0.attn.hook_k")
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens, names_filter=lambda n: n in names)
    q, k = (cache[n][:, :, 0].double() for n in names)          # [vocab-1, 2, d_head]
    queries = torch.cat([q[:1, 0], q[:, 1]])                     # BOS, then tokens 1..
    keys = torch.cat([k[:1, 0], k[:, 1]])
    return queries @ keys.T / math.sqrt(q.shape[-1])


def _c_of(scores):
    ordinary = torch.logsumexp(scores[:, 1:], -1) - math.log(scores.shape[1] - 1)
    return (scores[:, 0] - ordinary).exp()


def _c_mistakes(bridge):
    """(values, message) for each likely slip, computed the slipped way from the weights."""
    with torch.no_grad():
        W_E, W_Q, W_K = bridge.W_E.detach(), bridge.W_Q[0, 0], bridge.W_K[0, 0]
        b_Q, b_K = bridge.b_Q[0, 0], bridge.b_K[0, 0]
        x = bridge.blocks[0].ln1(W_E)
        scale = math.sqrt(bridge.cfg.d_head)
        table = lambda x, bq=b_Q: ((x @ W_Q + bq) @ (x @ W_K + b_K).T).double()  # noqa: E731
        right = table(x) / scale
    mean_all = (right[:, 0] - torch.logsumexp(right, -1) + math.log(right.shape[1])).exp()
    return [
        (_c_of(table(W_E) / scale), "you fed W_E straight into W_Q and W_K: layer 0 reads the "
         "residual stream through its layer norm first (blocks[0].ln1), and with no positional "
         "embedding that is all that differs from the raw embedding"),
        (_c_of(table(x)), "your scores are not divided by sqrt(d_head): attention scores are "
         "q·k / sqrt(d_head), and without the scale every gap, and so every c, is far too large"),
        (_c_of(table(x) / math.sqrt(bridge.cfg.d_model)), "you scaled the scores by "
         "sqrt(d_model); attention divides q·k by sqrt(d_head), the width of one head's query "
         "and key (equal to d_model only in a one-head model as wide as its residual stream)"),
        (_c_of(table(x, torch.zeros_like(b_Q)) / scale), "you left out the query bias b_Q: a "
         "query is x @ W_Q + b_Q, and b_Q·k differs from key to key (b_K, by contrast, adds the "
         "same amount to every key's score, so it cancels)"),
        (mean_all, "your 'ordinary keys' include BOS itself: c compares BOS with the mean over "
         "the data tokens 1..d_vocab-1 only"),
        (_c_of(right.T.contiguous()), "your score table is transposed: row = query token, "
         "column = key token; you read how strongly each token as a *key* is looked at by BOS"),
        ((right[:, 0] - right[:, 1:].mean(-1)).exp(), "you averaged the scores and then "
         "exponentiated (a geometric mean of e^score); the softmax adds e^score, so c is e^s_BOS "
         "divided by the *arithmetic* mean of e^s over the ordinary keys (logsumexp - log n)"),
        ((right[:, 0] - right.diagonal()).exp(), "you compared BOS with the query token's score "
         "against itself only; in a sequence the other keys are random tokens, so average e^s "
         "over every ordinary key"),
        (right[:, 0] - torch.logsumexp(right[:, 1:], -1) + math.log(right.shape[1] - 1),
         "you returned the score gap ln c, not c itself: exponentiate it"),
    ]


def _c_model(seed):
    """The shipped checkpoint (seed None), or a model no learner has seen: fresh weights
    with a random layer norm, query bias and sharper scores, so that every slip moves c
    far from the truth, and a head narrower than the residual stream (d_head 16, d_model 64:
    the checkpoint's are equal, so a scale by sqrt(d_model) cannot show there)."""
    from nopos.checkpoint import load_reference
    from nopos.config import model_config
    from nopos.model import build_model

    if seed is None:
        return load_reference()[0]
    model = build_model(model_config(d_head=16), seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        block = model.layers[0]
        block.ln1.weight.copy_(1 + 0.5 * torch.randn(block.ln1.weight.shape, generator=gen))
        block.ln1.bias.copy_(0.5 * torch.randn(block.ln1.bias.shape, generator=gen))
        block.attn.q.weight.mul_(2)
        block.attn.q.bias.copy_(0.5 * torch.randn(block.attn.q.bias.shape, generator=gen))
        model.tok_embed.weight[0].mul_(3)  # a BOS that stands out, as in a trained model
    return model.eval()


def check_c_from_weights(c_from_weights, seed=None, quiet=False):
    """c per query token, held against the score table measured through the hooks,
    on the shipped checkpoint (or on a model drawn from `seed`)."""
    __tracebackhide__ = True
    from nopos.model import lens

    model = _c_model(seed)
    bridge = lens(model)
    vocab = bridge.cfg.d_vocab
    want = _c_of(_scores_by_hooks(bridge))
    # the answer gets its own copy: what it does to its bridge stays there
    got = as_tensor(call(c_from_weights, lens(model), what="c_from_weights"),
                    "c_from_weights' result")
    expect(got.shape == (vocab,), f"expected one c per query token, shape [{vocab}], got "
                                  f"{list(got.shape)}")
    got = got.detach().double().cpu()[1:]
    expect(bool(torch.isfinite(got).all()), "some entries for tokens 1.. are not finite numbers: "
                                            "work in float64, and with logsumexp rather than a "
                                            "sum of exponentials")
    if torch.allclose(got, want[1:], rtol=1e-4):
        if not quiet:
            passed("c_from_weights")
        return
    for values, message in _c_mistakes(bridge):
        if torch.allclose(got, values[1:], rtol=1e-4):
            fail(message)
    error = ((got - want[1:]).abs() / want[1:]).max().item()
    fail(f"your c differs from the c of layer 0's score table by up to {error:.1%} (e.g. token 1: "
         f"expected {want[1]:.3f}, got {got[0]:.3f}); something is off: the score of query token t "
         f"against key token u is (ln1(W_E)[t] W_Q + b_Q)·(ln1(W_E)[u] W_K + b_K) / sqrt(d_head)"
         f", and c is e^(score against BOS) over the mean of e^score over the keys 1..d_vocab-1")
