"""Chapter 6's answers: measurements for the experiments past the seed.

Every function takes plain tensors, so that it can be checked on designed
inputs as well as on the shipped models. Tensors indexed by position keep
position 0 at index 0.
"""
import math

import torch


def accuracy_by_position(logits, tokens):
    """Previous-token accuracy at every position.

    logits [batch, pos, d_vocab], tokens [batch, pos]. Returns a float tensor
    [pos]: entry q (q >= 1) is the fraction of sequences whose top logit at
    position q is the token at position q - 1; entry 0 is NaN (position 0 has
    no previous token).
    """
    correct = (logits[:, 1:].argmax(dim=-1) == tokens[:, :-1]).float().mean(dim=0)
    return torch.cat([torch.tensor([math.nan], device=correct.device), correct])


def variance_by_position(x):
    """How much an activation varies between sequences, at each position.

    x [batch, pos, d]. Returns a float tensor [pos]: the variance over the
    batch (population variance: divide by batch, not batch - 1) of each of
    the d features, averaged over the features.
    """
    return x.double().var(dim=0, unbiased=False).mean(dim=-1).float()


def attention_entropy(pattern):
    """How spread out each query's attention is, in nats.

    pattern [batch, query, key] (rows sum to 1; keys after the query are 0).
    Returns a float tensor [query]: entry q is -sum_k p log p over the keys,
    averaged over the batch, with 0 log 0 = 0. Uniform attention over the
    q + 1 visible keys gives log(q + 1); all weight on one key gives 0.
    """
    p = pattern.double()
    terms = torch.where(p > 0, p * torch.log(p.clamp_min(1e-300)), torch.zeros_like(p))
    return (-terms.sum(dim=-1)).mean(dim=0).float()


def log_log_slope(values, start=1):
    """The exponent of a power law values[q] ~ a * (q + 1) ** slope.

    values [pos], positive from `start` on. Fits log(values[q]) = slope *
    log(q + 1) + b by least squares over q = start .. pos-1 (with the
    intercept b) and returns slope as a Python float. (q + 1: position q
    sees q + 1 tokens.)
    """
    q = torch.arange(start, len(values), dtype=torch.float64)
    y = torch.log(values[start:].double().cpu())
    X = torch.stack([torch.log(q + 1), torch.ones_like(q)], dim=1)
    return torch.linalg.lstsq(X, y[:, None]).solution[0, 0].item()


def position_only_patch(bridge, tokens, filler, q, q_code):
    """Give query q the position code of q_code and nothing else, with a control.

    The code is the residual stream after layer 0 (what layer 1 reads). A
    position-only patch adds, at query q only, the difference between the mean
    code at q_code and the mean code at q, both averaged over `filler`'s
    sequences: what layer 0 gathered about this sequence stays. The control
    keeps the position and changes the sequence: the residual at q is replaced
    by filler's at q.

    Returns dict(clean: fraction of sequences still outputting the token at
    q - 1, moved: fraction outputting the token at q_code - 1, control:
    fraction still right after the control), Python floats.
    """
    hook = "blocks.0.hook_resid_post"
    with torch.no_grad():
        _, cache = bridge.run_with_cache(filler, names_filter=hook)
        mean = cache[hook].mean(dim=0)

        def put(edit):
            def patch(act, hook):
                act = act.clone()
                act[:, q] = edit(act[:, q])
                return act
            return [(hook, patch)]

        top = bridge.run_with_hooks(tokens, fwd_hooks=put(lambda x: x + mean[q_code] - mean[q]))[:, q].argmax(-1)
        control = bridge.run_with_hooks(tokens, fwd_hooks=put(lambda x: cache[hook][:, q]))[:, q].argmax(-1)
    return dict(clean=(top == tokens[:, q - 1]).float().mean().item(),
                moved=(top == tokens[:, q_code - 1]).float().mean().item(),
                control=(control == tokens[:, q - 1]).float().mean().item())
