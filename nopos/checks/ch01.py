"""Checks for chapter 1: the dataset."""
import math

import torch

from nopos.checks import as_tensor, call, expect, fail, fresh_seed, passed
from nopos.config import BOS


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _fresh_sizes(low_vocab=3):
    """Sizes and a seed the grader draws afresh (hidden tests): (seed, batch, n_ctx, d_vocab)."""
    seed = fresh_seed()
    g = _gen(seed)
    batch, n_ctx = (int(torch.randint(lo, hi, (1,), generator=g)) for lo, hi in ((2, 10), (2, 41)))
    return seed, batch, n_ctx, int(torch.randint(low_vocab, 400, (1,), generator=g))


def check_make_batch(make_batch, batch_size=8, n_ctx=12, d_vocab=10, fresh=False, quiet=False):
    """Shape, dtype, BOS at position 0, token range, uniformity and seeding
    (`fresh`: sizes and seeds drawn afresh by the grader)."""
    __tracebackhide__ = True
    seed = 0
    if fresh:
        seed, batch_size, n_ctx, d_vocab = _fresh_sizes()
    tokens = call(make_batch, batch_size, n_ctx, d_vocab, generator=_gen(seed), what="make_batch")
    expect(isinstance(tokens, torch.Tensor),
           f"make_batch should return a torch tensor, got {type(tokens).__name__}")
    if tokens.shape == (batch_size, n_ctx + 1):
        fail(f"make_batch({batch_size}, {n_ctx}, ...) has one position too many "
             f"{tuple(tokens.shape)}: n_ctx counts the BOS position too")
    expect(tokens.shape == (batch_size, n_ctx),
           f"expected shape [batch_size, n_ctx] = [{batch_size}, {n_ctx}], got {list(tokens.shape)}")
    expect(tokens.dtype == torch.long,
           f"tokens must be integer ids of dtype torch.long (embeddings and cross_entropy index "
           f"with them), got {tokens.dtype}")
    first = tokens[:, 0]
    if not bool((first == BOS).all()):
        bad = int((first != BOS).nonzero()[0])
        fail(f"position 0 must be BOS (token {BOS}) in every sequence; sequence {bad} starts "
             f"with token {int(first[bad])}")
    rest = tokens[:, 1:]
    if bool((rest == BOS).any()):
        b, p = (rest == BOS).nonzero()[0].tolist()
        fail(f"token {BOS} (BOS) appears at position {p + 1} of sequence {b}: data tokens must "
             f"come from 1..d_vocab-1 so that BOS only ever marks position 0")
    expect(int(tokens.min()) >= 0, f"negative token id {int(tokens.min())}")
    if int(rest.max()) >= d_vocab:
        fail(f"token {int(rest.max())} is out of range for d_vocab={d_vocab}: ids go up to "
             f"d_vocab-1 (torch.randint's `high` is exclusive)")
    # uniform over 1..d_vocab-1: every id appears, none dominates
    wide = _gen(seed + 1)
    many = call(make_batch, 400, 50, d_vocab, generator=wide, what="make_batch")[:, 1:]
    counts = torch.bincount(many.flatten().cpu(), minlength=d_vocab)[1:].float()
    missing = [i + 1 for i, c in enumerate(counts.tolist()) if c == 0]
    if missing:
        fail(f"with d_vocab={d_vocab} the tokens {missing} never appear in 400 sequences: draw "
             f"uniformly from 1..d_vocab-1 (torch.randint(1, d_vocab, ...))")
    expected = counts.sum() / len(counts)
    worst = float(((counts - expected).abs() / expected).max())
    allowed = max(0.15, 5 / float(expected) ** 0.5)  # five standard deviations of a fair count
    expect(worst < allowed, f"token frequencies are far from uniform (one id is off by "
                         f"{worst:.0%}); every id in 1..d_vocab-1 should be equally likely")
    expect(bool((many != many[:1]).any()), "every sequence is identical: draw fresh random tokens "
                                           "for each sequence")
    # the generator decides the batch
    again = call(make_batch, batch_size, n_ctx, d_vocab, generator=_gen(seed), what="make_batch")
    expect(torch.equal(tokens.cpu(), again.cpu()),
           "the same seed gave two different batches: draw the tokens with the `generator` "
           "argument (torch.randint(..., generator=generator))")
    other = call(make_batch, batch_size, n_ctx, d_vocab, generator=_gen(seed + 1), what="make_batch")
    expect(not torch.equal(tokens.cpu(), other.cpu()),
           "different seeds gave the same batch: use the generator you are given")
    # the generator moves on: a training loop passes one generator at every step (on 400
    # sequences, where two honest draws are never equal)
    expect(not torch.equal(wide.get_state(), _gen(seed + 1).get_state()),
           "make_batch did not move the generator on: draw from the `generator` you are given, "
           "not from a copy of it or a seed read from it (a training loop passes one generator "
           "at every step and would train on the same batch for ever)")
    more = call(make_batch, 400, 50, d_vocab, generator=wide, what="make_batch")[:, 1:]
    expect(not torch.equal(many.cpu(), more.cpu()),
           "two calls with the same generator gave the same batch: a training loop passes one "
           "generator at every step and would train on the same batch for ever")
    if not quiet:
        passed("make_batch")


def _example_tokens():
    return torch.tensor([[BOS, 5, 7, 2, 9, 4, 4, 1], [BOS, 3, 3, 8, 6, 2, 5, 9]])


def _random_tokens(seed, shape=(6, 20), high=50):
    tokens = torch.randint(1, high, shape, generator=_gen(seed))
    tokens[:, 0] = BOS
    return tokens


def _mask(shape, unscored):
    """A scoring mask that leaves out the positions `unscored` (BOS's 0 among them)."""
    mask = torch.ones(shape, dtype=torch.bool)
    mask[:, list(unscored)] = False
    return mask


def check_previous_token_targets(previous_token_targets, seed=None, fresh=False, quiet=False):
    """targets[:, t] == tokens[:, t-1]; mask leaves out position 0 only."""
    __tracebackhide__ = True
    if fresh:
        seed, batch, n_ctx, high = _fresh_sizes()
        tokens = _random_tokens(seed, (batch, n_ctx), high)
    else:
        tokens = _example_tokens() if seed is None else _random_tokens(seed)
    result = call(previous_token_targets, tokens, what="previous_token_targets")
    expect(isinstance(result, tuple) and len(result) == 2,
           "previous_token_targets should return a pair (targets, mask)")
    targets, mask = result
    expect(isinstance(targets, torch.Tensor) and targets.shape == tokens.shape,
           f"targets should have the same shape as tokens {list(tokens.shape)}, got "
           f"{list(getattr(targets, 'shape', []))}")
    expect(targets.dtype == torch.long, f"targets must be torch.long ids, got {targets.dtype}")
    expect(isinstance(mask, torch.Tensor) and mask.shape == tokens.shape,
           f"mask should have the same shape as tokens {list(tokens.shape)}")
    expect(mask.dtype == torch.bool, f"mask should be a boolean tensor, got {mask.dtype}")
    row = 0
    for t in range(1, tokens.shape[1]):
        want, got = int(tokens[row, t - 1]), int(targets[row, t])
        if got == want:
            continue
        if t + 1 < tokens.shape[1] and got == int(tokens[row, t + 1]):
            fail(f"targets are shifted the wrong way: position {t} should predict token {want} "
                 f"(the token at position {t - 1}), got token {got} (the token at position {t + 1})")
        if got == int(tokens[row, t]):
            fail(f"position {t} should predict the previous token {want}, got {got}: that is "
                 f"the token at position {t} itself, not the one before it")
        fail(f"position {t} should predict token {want} (the token at position {t - 1}), got {got}")
    expect(torch.equal(targets[:, 1:], tokens[:, :-1]),
           "targets[:, t] must equal tokens[:, t-1] in every sequence, not just the first")
    if bool(mask[:, 0].any()):
        fail("mask includes position 0 (BOS): nothing comes before BOS, so position 0 has no "
             "previous token to predict and must not be scored")
    if not bool(mask[:, 1:].all()):
        t = int((~mask[0, 1:]).nonzero()[0]) + 1
        fail(f"mask leaves out position {t}: every position after BOS has a previous token "
             f"and must be scored")
    if not quiet:
        passed("previous_token_targets")


def _designed_logits(targets, mask, d_vocab, good=4.0, bad=-4.0):
    """Logits whose loss is known: `good` on the target where scored, `bad` elsewhere."""
    logits = torch.zeros(*targets.shape, d_vocab)
    value = torch.where(mask, torch.tensor(good), torch.tensor(bad))
    logits.scatter_(-1, targets.unsqueeze(-1), value.unsqueeze(-1))
    return logits


def _ce(target_logit, d_vocab):
    """Cross-entropy when the target's logit is `target_logit` and the rest are 0."""
    return math.log(math.exp(target_logit) + d_vocab - 1) - target_logit


def _fresh_scoring(seed):
    """Random logits, targets and a mask that differs row by row (as padding would)."""
    g = _gen(seed)
    batch, n, d_vocab = (int(torch.randint(lo, hi, (1,), generator=g)) for lo, hi in
                         ((3, 9), (4, 30), (3, 60)))
    logits = torch.randn(batch, n, d_vocab, generator=g) * 3
    targets = torch.randint(0, d_vocab, (batch, n), generator=g)
    mask = torch.rand(batch, n, generator=g) < 0.6
    mask[:, 0] = False
    mask[0, 1], mask[-1, 1:] = True, False  # rows differ: one scores nothing after BOS
    # a third of the rows' logits put the target on top, so accuracies are not all near chance
    right = torch.rand(batch, n, generator=g) < 0.4
    bump = torch.zeros_like(logits).scatter_(-1, targets.unsqueeze(-1), 20.0)
    logits = torch.where(right.unsqueeze(-1), logits + bump, logits)
    return logits, targets, mask


def _cross_entropy_each(logits, targets):
    """-log p(target) at each position (written out; the check's own yardstick)."""
    return torch.logsumexp(logits, -1) - logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def _check_masked_loss_fresh(masked_loss):
    __tracebackhide__ = True
    logits, targets, mask = _fresh_scoring(fresh_seed())
    loss = as_tensor(call(masked_loss, logits.clone().requires_grad_(True), targets.clone(),
                          mask.clone(), what="masked_loss"), "the loss")
    expect(loss.dim() == 0, f"the loss should be a single number (a 0-d tensor), got shape "
                            f"{list(loss.shape)}")
    value = float(loss.detach())
    each = _cross_entropy_each(logits, targets)
    want = float(each[mask].mean())
    after_bos = float(each[:, 1:].mean())
    if math.isclose(value, want, rel_tol=1e-4, abs_tol=1e-5):
        return
    if math.isclose(value, float(each.mean()), rel_tol=1e-4) or math.isclose(value, after_bos, rel_tol=1e-4):
        fail(f"with a mask that differs from row to row, your loss {value:.4f} averages over "
             f"positions the mask leaves out: average exactly where mask is True (expected {want:.4f})")
    if math.isclose(value, float(each[~mask].mean()), rel_tol=1e-4):
        fail(f"your loss {value:.4f} averages where the mask is False: the mask marks the "
             f"positions to score (expected {want:.4f})")
    if math.isclose(value, float(each[mask].sum()), rel_tol=1e-4):
        fail(f"your loss {value:.4f} is the sum over the scored positions: take the mean "
             f"(expected {want:.4f})")
    fail(f"on random logits and a mask that differs from row to row your loss is {value:.4f}; "
         f"the mean cross-entropy over the positions where mask is True is {want:.4f}")


def check_masked_loss(masked_loss, d_vocab=10, unscored=(0,), fresh=False, quiet=False):
    """Mean cross-entropy over scored positions only, differentiable
    (`fresh`: also random logits and row-by-row masks the grader draws)."""
    __tracebackhide__ = True
    if fresh:
        _check_masked_loss_fresh(masked_loss)
    tokens = _example_tokens()
    targets = torch.zeros_like(tokens)
    targets[:, 1:] = tokens[:, :-1]
    mask = _mask(tokens.shape, unscored)
    logits = _designed_logits(targets, mask, d_vocab).requires_grad_(True)
    loss = call(masked_loss, logits, targets, mask, what="masked_loss")
    loss = as_tensor(loss, "the loss")
    expect(loss.dim() == 0, f"the loss should be a single number (a 0-d tensor), got shape "
                            f"{list(loss.shape)}: average over the scored positions")
    expect(loss.requires_grad, "the loss is not differentiable: return the tensor itself "
                               "(no .item(), no torch.tensor(...) around it)")
    value = float(loss.detach())
    want = _ce(4.0, d_vocab)
    scored, total = int(mask.sum()), mask.numel()
    with_bos = (scored * _ce(4.0, d_vocab) + (total - scored) * _ce(-4.0, d_vocab)) / total
    if math.isclose(value, with_bos, rel_tol=1e-3):
        fail(f"your loss {value:.4f} includes the positions the mask leaves out (position 0, BOS): "
             f"average only where mask is True (expected {want:.4f})")
    after_bos = mask.clone()
    after_bos[:, 1:] = True
    n_after = int(after_bos[:, 1:].sum())
    slice_value = (scored * _ce(4.0, d_vocab) + (n_after - scored) * _ce(-4.0, d_vocab)) / n_after
    if n_after != scored and math.isclose(value, slice_value, rel_tol=1e-3):
        fail(f"your loss {value:.4f} ignores the mask: it averages over every position after BOS, "
             f"but this mask leaves out more positions; average exactly where mask is True "
             f"(expected {want:.4f})")
    if scored != total and math.isclose(value, want * scored / total, rel_tol=1e-3):
        fail(f"your loss {value:.4f} divides the scored positions' loss by every position "
             f"(mask.numel()), the left-out ones included: divide by the number of scored "
             f"positions, mask.sum() (expected {want:.4f})")
    if math.isclose(value, want * scored, rel_tol=1e-3):
        fail(f"your loss {value:.4f} is the sum over positions: take the mean (expected {want:.4f})")
    if not math.isclose(value, want, rel_tol=1e-3):
        fail(f"expected a mean cross-entropy of {want:.4f} over the scored positions, got "
             f"{value:.4f}; pass raw logits to F.cross_entropy (it applies log-softmax itself) "
             f"and average over exactly the positions where mask is True")
    if not quiet:
        passed("masked_loss")


def _check_masked_accuracy_fresh(masked_accuracy):
    __tracebackhide__ = True
    logits, targets, mask = _fresh_scoring(fresh_seed())
    returned = call(masked_accuracy, logits.clone(), targets.clone(), mask.clone(), what="masked_accuracy")
    if isinstance(returned, torch.Tensor) and returned.numel() == 1:
        returned = float(returned)
    expect(isinstance(returned, (int, float)) and not isinstance(returned, bool),
           f"masked_accuracy should return one number, got {type(returned).__name__}")
    right = logits.argmax(-1) == targets
    want = float(right[mask].float().mean())
    if math.isclose(returned, want, abs_tol=1e-6):
        return
    if math.isclose(returned, float(right[:, 1:].float().mean()), abs_tol=1e-6) or \
            math.isclose(returned, float(right.float().mean()), abs_tol=1e-6):
        fail(f"with a mask that differs from row to row, your accuracy {returned:.4f} counts "
             f"positions the mask leaves out: average exactly where mask is True (expected {want:.4f})")
    if math.isclose(returned, float(right[~mask].float().mean()), abs_tol=1e-6):
        fail(f"your accuracy {returned:.4f} is over the positions where mask is False: the mask "
             f"marks the positions to score (expected {want:.4f})")
    fail(f"on random logits and a mask that differs from row to row your accuracy is "
         f"{returned:.4f}; the fraction of positions where mask is True and the top logit is the "
         f"target is {want:.4f}")


def check_masked_accuracy(masked_accuracy, unscored=(0,), fresh=False, quiet=False):
    """Fraction of scored positions predicted right
    (`fresh`: also random logits and row-by-row masks the grader draws)."""
    __tracebackhide__ = True
    if fresh:
        _check_masked_accuracy_fresh(masked_accuracy)
    tokens = _example_tokens()
    targets = torch.zeros_like(tokens)
    targets[:, 1:] = tokens[:, :-1]
    mask = _mask(tokens.shape, unscored)
    d_vocab = 10
    # right at positions 1..5, wrong at 6.. and at BOS
    logits = torch.zeros(*tokens.shape, d_vocab)
    right = torch.zeros_like(mask)
    right[:, 1:6] = True
    guess = torch.where(right, targets, (targets + 1) % d_vocab)
    logits.scatter_(-1, guess.unsqueeze(-1), 1.0)
    returned = call(masked_accuracy, logits, targets, mask, what="masked_accuracy")
    if isinstance(returned, torch.Tensor) and returned.numel() == 1:
        value = float(returned.detach())
    elif isinstance(returned, (int, float)) and not isinstance(returned, bool):
        value = float(returned)
    else:
        fail(f"masked_accuracy should return one number, got {type(returned).__name__} "
             f"{list(getattr(returned, 'shape', []))}")
    want = float(right[mask].float().mean())
    everywhere = float(right.float().mean())
    if math.isclose(value, everywhere, abs_tol=1e-6) and not math.isclose(want, everywhere):
        fail(f"accuracy {value:.3f} is averaged over every position, BOS included: average over "
             f"the scored positions only (mask True), expected {want:.3f}")
    if math.isclose(value, want * 100, rel_tol=1e-6):
        fail(f"accuracy should be a fraction between 0 and 1, got {value:.1f} (a percentage?)")
    if math.isclose(value, float(right[mask].sum()), abs_tol=1e-6):
        fail(f"you returned the number of right predictions ({value:.0f}); divide by the number "
             f"of scored positions")
    if not math.isclose(value, want, abs_tol=1e-6):
        fail(f"expected accuracy {want:.3f} (right at {int(right[mask].sum())} of "
             f"{int(mask.sum())} scored positions), got {value:.3f}; compare logits.argmax(-1) "
             f"with the targets where mask is True")
    expect(isinstance(returned, float),
           f"the accuracy {value:.3f} is right, but return it as a Python float (.item()), not "
           f"a {type(returned).__name__}: a float prints, compares and logs as a plain number")
    if not quiet:
        passed("masked_accuracy")
