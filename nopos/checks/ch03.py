"""Checks for chapter 3: the optimiser and the training step."""
import copy

import torch

from nopos.checks import call, expect, fail, fresh_seed, passed, random_tokens
from nopos.config import BOS, model_config
from nopos.model import W_pos, build_model, trainable_parameters

TINY = dict(n_layers=2, d_model=16, n_heads=1, d_head=16, d_mlp=32, d_vocab=20, n_ctx=8,
            act_fn="relu", normalization_type="LN")


def _tiny_model(seed=0):
    return build_model(TINY, seed=seed)


_tokens = random_tokens  # chapter 1's batches, not imported from its answers

def _batch(seed=0, size=16):
    return _tokens(size, TINY["n_ctx"], TINY["d_vocab"], seed)


def _previous(tokens):
    """The previous-token targets (BOS as a placeholder at position 0)."""
    return torch.cat([torch.full_like(tokens[:, :1], BOS), tokens[:, :-1]], dim=1)


def _scored_loss(logits, tokens):
    """Mean cross-entropy over positions 1.. (the chapter's masked loss with BOS's mask)."""
    return torch.nn.functional.cross_entropy(logits[:, 1:].transpose(1, 2), tokens[:, :-1])


def _names(model, params):
    ids = {id(p) for p in params}
    return [n for n, p in model.named_parameters() if id(p) in ids]


def check_make_optimizer(make_optimizer, full_size=False, quiet=False):
    """AdamW over exactly the trainable parameters, with the learning rate asked for."""
    __tracebackhide__ = True
    model = _tiny_model()
    before = copy.deepcopy(model.state_dict())
    opt = call(make_optimizer, model, 3e-3, what="make_optimizer")
    changed = [n for n, v in model.state_dict().items() if not torch.equal(v, before[n])]
    expect(not changed, f"make_optimizer changed the model's weights ({changed[0] if changed else ''}): "
                        f"building an optimiser must leave the model as it is")
    expect(isinstance(opt, torch.optim.AdamW),
           f"make_optimizer should return torch.optim.AdamW, got {type(opt).__name__}")
    held = [p for group in opt.param_groups for p in group["params"]]
    if any(p is W_pos(model) for p in held):
        fail("your optimiser holds W_pos, the positional embedding: it must stay exactly zero, "
             "so keep it out of the optimiser (pass only parameters with requires_grad)")
    expect(not W_pos(model).requires_grad,
           "make_optimizer switched W_pos back to trainable: leave requires_grad=False alone")
    missing = _names(model, [p for p in trainable_parameters(model)
                             if not any(p is q for q in held)])
    expect(not missing, f"your optimiser misses {len(missing)} trainable parameter(s), e.g. "
                        f"{missing[0] if missing else ''}: they would never learn")
    lrs = {group["lr"] for group in opt.param_groups}
    expect(lrs == {3e-3}, f"make_optimizer(model, 3e-3) should use lr 3e-3, got {sorted(lrs)}")
    if full_size:
        model = build_model(model_config(), seed=5)
        opt = call(make_optimizer, model, 1e-2, what="make_optimizer")
        expect(isinstance(opt, torch.optim.AdamW),
               f"make_optimizer should return torch.optim.AdamW, got {type(opt).__name__}")
        expect(not any(p is W_pos(model) for g in opt.param_groups for p in g["params"]),
               "W_pos must stay out of the optimiser for the full-size model too")
    expect(all(g["weight_decay"] == 0.1 and tuple(g["betas"]) == (0.9, 0.98) for g in opt.param_groups),
           "use the course's AdamW settings: betas (0.9, 0.98) and weight decay 0.1")
    # the training loop passes a recipe's own betas and weight decay: they must be used
    opt = call(make_optimizer, _tiny_model(), 1e-3, (0.8, 0.9), 0.05, what="make_optimizer")
    groups = getattr(opt, "param_groups", [])
    ignored = [name for name, want in (("betas", (0.8, 0.9)), ("weight_decay", 0.05))
               if any((tuple(g[name]) if name == "betas" else g[name]) != want for g in groups)]
    expect(not ignored, f"make_optimizer(model, 1e-3, betas=(0.8, 0.9), weight_decay=0.05) did not "
                        f"use the {' and '.join(ignored)} it was given: pass the arguments on to "
                        f"AdamW (their defaults are the course's settings)")
    if not quiet:
        passed("make_optimizer")


def _sgd(lr):
    """The tiny model with plain SGD (no momentum, no decay) and a flat schedule."""
    model = _tiny_model()
    opt = torch.optim.SGD(trainable_parameters(model), lr=lr)
    return model, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)


def _weights(model):
    return [p.detach().clone() for p in trainable_parameters(model)]


def _gradient(model, tokens):
    """The gradient of the masked loss at the model's weights, on the check's own copy."""
    twin = copy.deepcopy(model)
    params = trainable_parameters(twin)
    return [g.detach() for g in torch.autograd.grad(_scored_loss(twin(tokens), tokens), params)]


def _norm(tensors):
    return float(torch.linalg.vector_norm(torch.stack([t.norm() for t in tensors])))


def _same_step(moved, gradient, lr):
    """Did an SGD step at `lr` move the weights by -lr x `gradient`?"""
    return all(torch.allclose(d, -lr * g, rtol=1e-3, atol=1e-7) for d, g in zip(moved, gradient))


def _fresh(seed=0):
    model = _tiny_model(seed)
    opt = torch.optim.AdamW(trainable_parameters(model), lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    return model, opt, sched


def _call_step(train_step, model, opt, sched, tokens, clip=1.0):
    __tracebackhide__ = True
    return call(train_step, model, opt, sched, tokens, clip, what="train_step", changes=(0,))


def check_train_step(train_step, full_size=False, quiet=False):
    """One call = one step: BOS-free loss, fresh clipped gradients, optimiser and scheduler once."""
    __tracebackhide__ = True
    tokens = _batch(0)
    targets = _previous(tokens)

    # the returned loss: a float, over the scored positions only
    model, opt, sched = _fresh()
    with torch.no_grad():
        logits = model(tokens)
        want = _scored_loss(logits, tokens).item()
        everything = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten()).item()
    before = copy.deepcopy(model.state_dict())
    got = _call_step(train_step, model, opt, sched, tokens)
    expect(isinstance(got, float), f"train_step should return the loss as a Python float "
                                   f"(loss.item()), got {type(got).__name__}")
    if abs(got - everything) < 1e-5 and abs(want - everything) > 1e-4:
        fail(f"the loss {got:.4f} includes position 0 (BOS), which has no previous token: score "
             f"only where the mask is True (expected {want:.4f})")
    expect(abs(got - want) < 1e-4, f"train_step returned loss {got:.4f}; the masked loss of the "
                                   f"batch before the update is {want:.4f}")

    # the optimiser stepped, the scheduler stepped once, W_pos untouched
    changed = [n for n, v in model.state_dict().items() if not torch.equal(v, before[n])]
    if not changed:
        grads = [p.grad for p in trainable_parameters(model)]
        if all(g is None or not bool(g.abs().sum() > 0) for g in grads):
            fail("no parameter changed, and the gradients are empty after the step: zero the "
                 "gradients before loss.backward(), not between backward() and optimizer.step()")
        fail("no parameter changed: call optimizer.step() after loss.backward()")
    expect(bool((W_pos(model) == 0).all()), "W_pos is no longer zero after a step: it must "
                                            "never be updated")
    steps = sched.last_epoch
    if steps == 0:
        fail("the learning-rate scheduler was not stepped: call scheduler.step() once per "
             "optimiser step (after optimizer.step())")
    expect(steps == 1, f"one call of train_step stepped the scheduler {steps} times; it must "
                       f"step exactly once per optimiser step")

    expect(W_pos(model).grad is None, "a gradient reached W_pos: it must stay frozen")

    # Which gradient each step used, read from what it did to the weights: plain SGD moves each
    # weight by exactly -lr x its (clipped) gradient. Judged by the step's effect, not by what it
    # leaves in .grad: zero_grad() after optimizer.step() is as right as before backward().
    model, opt, sched = _sgd(0.1)
    theta0, g0 = _weights(model), _gradient(model, tokens)
    _call_step(train_step, model, opt, sched, tokens, clip=1e9)
    theta1 = _weights(model)
    moved = [a - b for a, b in zip(theta1, theta0)]
    silent = _names(model, [p for p, d in zip(trainable_parameters(model), moved) if not bool(d.any())])
    expect(not silent, f"the step did not move {silent[:3]}: no gradient reached them (did the "
                       f"loss get detached, .item() or .detach() before backward?)")
    if not _same_step(moved, g0, 0.1):
        fail(f"with plain SGD at lr 0.1 the step should move the weights by -0.1 x the gradient of "
             f"the masked loss (norm {0.1 * _norm(g0):.4g}); yours moved them by {_norm(moved):.4g} "
             f"in another direction: something other than one backward() of that loss reached "
             f"the optimiser")
    g1 = _gradient(model, tokens)
    _call_step(train_step, model, opt, sched, tokens, clip=1e9)
    moved = [a - b for a, b in zip(_weights(model), theta1)]
    if _same_step(moved, [a + b for a, b in zip(g0, g1)], 0.1):
        fail("gradients pile up across steps (the second step used the first step's gradient "
             "plus its own): call optimizer.zero_grad() once per step, before loss.backward() "
             "(or after optimizer.step())")
    expect(_same_step(moved, g1, 0.1), "the second step on the same batch did not use that "
                                       "step's gradient alone: something is off between steps")

    # the step itself used the clipped gradient: plain SGD with lr 1 moves by exactly the gradient
    model, opt, sched = _sgd(1.0)
    before = _weights(model)
    _call_step(train_step, model, opt, sched, tokens, clip=1e-3)
    moved = _norm([a - b for a, b in zip(_weights(model), before)])
    if moved > 1e-3 * 1.01:
        left = [p.grad for p in trainable_parameters(model) if p.grad is not None]
        if left and _norm(left) <= 1e-3 * 1.01:  # clipped, but too late
            fail(f"the optimiser stepped with unclipped gradients (with clip=1e-3 and SGD at lr 1 "
                 f"the weights moved by {moved:.3g}): clip after backward() and before "
                 f"optimizer.step(), not after it")
        fail(f"gradients were not clipped: with clip=1e-3 and SGD at lr 1 the weights moved by "
             f"{moved:.3g}; use torch.nn.utils.clip_grad_norm_ between backward() and "
             f"optimizer.step()")

    # the optimiser steps before the scheduler: the first step uses the schedule's step 0
    model = _tiny_model()
    opt = torch.optim.SGD(trainable_parameters(model), lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.0 if s == 0 else 1.0)
    before = copy.deepcopy(model.state_dict())
    _call_step(train_step, model, opt, sched, tokens)
    if any(not torch.equal(v, before[n]) for n, v in model.state_dict().items()):
        fail("the first step used the schedule's second learning rate: step the scheduler after "
             "optimizer.step(), not before (a warm-up that starts at 0 must not move the weights "
             "on step 0)")

    # a few steps on one batch lower its loss
    model, opt, sched = _fresh()
    losses = [_call_step(train_step, model, opt, sched, tokens) for _ in range(5)]
    expect(losses[-1] < losses[0], f"five steps on the same batch did not lower its loss "
                                   f"({losses[0]:.3f} -> {losses[-1]:.3f})")
    if full_size:
        _check_full_size_steps(train_step)
    if not quiet:
        passed("train_step")


def _check_full_size_steps(train_step):
    """Three steps of the full model with the course's schedule: scheduler and W_pos."""
    __tracebackhide__ = True
    cfg = model_config()
    model = build_model(cfg, seed=3)
    opt = torch.optim.AdamW(trainable_parameters(model), lr=1e-2)  # not the learner's optimiser
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50))
    tokens = _tokens(8, cfg["n_ctx"], cfg["d_vocab"], 11)
    for _ in range(3):
        _call_step(train_step, model, opt, sched, tokens)
    expect(sched.last_epoch == 3, f"3 calls should step the scheduler 3 times, not {sched.last_epoch}")
    expect(bool((W_pos(model) == 0).all()), "W_pos changed during training: it must never be updated")


class _Designed(torch.nn.Module):
    """A fake model whose accuracy at position t is known: right on the first k(t) sequences."""

    def __init__(self, d_vocab, right_counts):
        super().__init__()
        self.d_vocab, self.right = d_vocab, right_counts

    def forward(self, tokens):
        batch, n = tokens.shape
        targets = _previous(tokens)
        guess = (targets + 1) % self.d_vocab
        for t in range(1, n):
            guess[: self.right[t - 1], t] = targets[: self.right[t - 1], t]
        return torch.nn.functional.one_hot(guess, self.d_vocab).float()


def check_per_position_accuracy(per_position_accuracy, on_model=False, fresh=False, quiet=False):
    """Accuracy per position 1..n-1, averaged over the batch (`fresh`: a batch size, length and
    accuracy curve the grader draws)."""
    __tracebackhide__ = True
    batch, n, d_vocab, seed = 10, 6, 12, 3
    right = [10, 8, 6, 4, 2]  # accuracy 1.0, 0.8, ... at positions 1..5
    if fresh:
        seed = fresh_seed()
        g = torch.Generator().manual_seed(seed)
        batch, n = int(torch.randint(3, 12, (1,), generator=g)), int(torch.randint(3, 20, (1,), generator=g))
        batch += 2 if batch in (n - 1, n) else 0  # shapes that name the mistake stay apart
        right = torch.randint(0, batch + 1, (n - 1,), generator=g).tolist()
    tokens = _tokens(batch, n, d_vocab, seed)
    got = call(per_position_accuracy, _Designed(d_vocab, right).eval(), tokens,
               what="per_position_accuracy")
    expect(isinstance(got, torch.Tensor), f"return a tensor, got {type(got).__name__}")
    if got.shape == (batch,):
        fail(f"you returned one number per sequence (shape [{batch}]): average over the batch "
             f"at each position instead (dim 0), giving one number per position")
    if got.shape == (n,):
        fail(f"you returned {n} values: position 0 (BOS) has no target; return positions "
             f"1..{n - 1} only ({n - 1} values)")
    expect(got.shape == (n - 1,), f"expected shape [{n - 1}] (positions 1..{n - 1}), got {list(got.shape)}")
    want = torch.tensor([r / batch for r in right])
    expect(torch.allclose(got.float().cpu(), want), f"expected accuracies {want.tolist()} at "
                                                    f"positions 1..{n - 1}, got {got.tolist()}")
    if on_model:
        from nopos.checkpoint import load_reference

        model, _ = load_reference()
        tokens = _tokens(64, 50, 300, 4)
        acc = call(per_position_accuracy, model, tokens, what="per_position_accuracy")
        expect(isinstance(acc, torch.Tensor) and acc.shape == (49,) and float(acc.min()) > 0.95,
               "on the shipped model, per_position_accuracy should give 49 values, all above 0.95 "
               "(the reference model is right almost everywhere)")
    if not quiet:
        passed("per_position_accuracy")
