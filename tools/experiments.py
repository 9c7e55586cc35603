"""The claims registry's experiments that no notebook runs (maintainers').

Separating position from content (mean-code and content-only donors, split by
layer 1's q, k and v), mean ablation along one path, and chapter 6's untrained
and no-BOS measurements. They live here, not in `nopos_reference.causal`: that
module is published to learners with chapter 1, and these hold later chapters'
answers (exercise 6.5's position-only patch, 6.2's variance over the batch).
"""
import math

import torch

from nopos_reference.data import masked_loss, previous_token_targets

RESID0 = "blocks.0.hook_resid_post"


def _patched_at(bridge, tokens, q, edit, only=None, moved_to=None):
    """Run `tokens` with `edit(resid [batch, d_model]) -> resid` applied to the residual
    after MLP0 at position q, either everywhere downstream (only=None) or only through
    layer 1's `only` in "q", "k", "v" at q. Returns dict(clean: fraction still
    outputting the token at q-1, moved: fraction outputting the token at moved_to,
    pattern: layer 1's mean weights of query q)."""
    def shift(act, hook):
        act = act.clone()
        act[:, q] = edit(act[:, q])
        return act
    seen = {}

    def keep(pattern, hook):
        seen["pattern"] = pattern[:, 0, q].mean(0)
        return pattern
    with torch.no_grad():
        hooks = [(RESID0, shift)]
        if only is not None:
            name, store = f"blocks.1.attn.hook_{only}", {}

            def grab(act, hook):
                store["v"] = act[:, q].clone()
                return act
            bridge.run_with_hooks(tokens, fwd_hooks=[(RESID0, shift), (name, grab)])

            def put(act, hook):
                act = act.clone()
                act[:, q] = store["v"]
                return act
            hooks = [(name, put)]
        out = bridge.run_with_hooks(tokens, fwd_hooks=hooks + [("blocks.1.attn.hook_pattern", keep)])
    top = out[:, q].argmax(-1)
    moved = math.nan if moved_to is None else (top == tokens[:, moved_to]).float().mean().item()
    return dict(clean=(top == tokens[:, q - 1]).float().mean().item(), moved=moved, pattern=seen["pattern"])


def mean_code(bridge, tokens):
    """The residual after MLP0 averaged over sequences [pos, d_model]: each position's
    mean code, with everything particular to a sequence averaged out."""
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens, names_filter=lambda n: n == RESID0)
    return cache[RESID0].mean(0)


def position_only_patch(bridge, tokens, mean, q, q_source, only=None):
    """Move the code at q to position q_source and nothing else: add the mean code
    difference mean[q_source] - mean[q], keeping what layer 0 gathered about this
    sequence. The position-only donor."""
    return _patched_at(bridge, tokens, q, lambda x: x + mean[q_source] - mean[q], only, q_source - 1)


def content_only_patch(bridge, tokens, other, q, only=None):
    """Replace the code at q with another sequence's at the same position and with the
    same token there: position and token kept, only what layer 0 gathered about the
    sequence changes. The content-only donor."""
    donor = other.clone()
    donor[:, q] = tokens[:, q]
    with torch.no_grad():
        _, cache = bridge.run_with_cache(donor, names_filter=lambda n: n == RESID0)
    value = cache[RESID0][:, q]
    return _patched_at(bridge, tokens, q, lambda x: value, only)


def attn1_paths_mean(bridge, tokens):
    """Loss with attention 1's output mean-ablated (its per-position mean over the batch)
    along one path at a time: dict(clean, direct: only where the unembedding reads it,
    direct_zero: that path zeroed, into_mlp1: only where MLP1 reads it). A mean writes no
    wrong token, so unlike resampling it tests whether the path is needed at all."""
    targets, mask = previous_token_targets(tokens)
    attn, mlp = "blocks.1.hook_attn_out", "blocks.1.hook_mlp_out"
    with torch.no_grad():
        logits, cache = bridge.run_with_cache(tokens, names_filter=lambda n: n in (attn, mlp))
        mean = cache[attn].mean(0, keepdim=True).expand_as(cache[attn])
        seen = {}

        def grab(act, hook):
            seen["mlp"] = act.clone()
            return act
        bridge.run_with_hooks(tokens, fwd_hooks=[(attn, lambda a, hook: mean), (mlp, grab)])
        loss = lambda fwd: masked_loss(bridge.run_with_hooks(tokens, fwd_hooks=fwd), targets, mask).item()  # noqa: E731
        keep_mlp = (mlp, lambda a, hook: cache[mlp])
        return dict(clean=masked_loss(logits, targets, mask).item(),
                    direct=loss([(attn, lambda a, hook: mean), keep_mlp]),
                    direct_zero=loss([(attn, lambda a, hook: torch.zeros_like(a)), keep_mlp]),
                    into_mlp1=loss([(mlp, lambda a, hook: seen["mlp"])]))


def position_neuron_losses(bridge, tokens, profile, strong, neurons_post, shuffle):
    """Loss when MLP0's position neurons `strong` are set to: their own position's mean
    (own), another position's mean (other: position `shuffle[p]` at p), their own value
    moved by the other position's mean offset (offset); and the same offset applied to
    every other neuron instead (rest); and none (clean). profile [pos, d_mlp] is the batch mean; neurons_post
    the hook name of MLP0's activations."""
    targets, mask = previous_token_targets(tokens)
    rest = torch.tensor([i for i in range(profile.shape[-1]) if i not in set(strong.tolist())])
    offset = profile[shuffle] - profile

    def setter(fn):
        def hook(act, hook):
            act = act.clone()
            return fn(act)
        return hook

    def own(a):
        a[..., strong] = profile[None, :, strong].expand_as(a[..., strong])
        return a

    def other(a):
        a[..., strong] = profile[shuffle][None, :, strong].expand_as(a[..., strong])
        return a

    def moved(a):
        a[..., strong] += offset[None, :, strong]
        return a

    def moved_rest(a):
        a[..., rest] += offset[None, :, rest]
        return a
    with torch.no_grad():
        return {"clean": masked_loss(bridge(tokens), targets, mask).item()} | {name: masked_loss(bridge.run_with_hooks(tokens, fwd_hooks=[(neurons_post, setter(fn))]),
                                  targets, mask).item()
                for name, fn in (("own", own), ("other", other), ("offset", moved), ("rest", moved_rest))}


def attn0_output_variance(bridge, tokens, uniform=False):
    """Variance over sequences of layer 0's attention output at each position
    (mean over d_model) [pos]; with uniform=True layer 0's pattern is forced to an
    even average over the visible keys first (an intervention on the scores)."""
    n = tokens.shape[1]
    even = torch.tril(torch.ones(n, n)) / torch.arange(1, n + 1)[:, None]
    out = {}

    def grab(act, hook):
        out["a"] = act.clone()
        return act
    hooks = [("blocks.0.hook_attn_out", grab)]
    if uniform:
        hooks.insert(0, ("blocks.0.attn.hook_pattern", lambda p, hook: even.expand_as(p)))
    with torch.no_grad():
        bridge.run_with_hooks(tokens, fwd_hooks=hooks)
    return out["a"].double().var(0, unbiased=False).mean(-1)


def first_token_weight(bridge, tokens, layer, queries):
    """{q: mean weight layer `layer` puts on position 0 from query q}."""
    name = f"blocks.{layer}.attn.hook_pattern"
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens, names_filter=lambda n: n == name)
    return {q: cache[name][:, 0, q, 0].mean().item() for q in queries}


def bos_gap_per_query(q_act, k_act):
    """Per (sequence, query) pair, not averaged: dict(mean, sd) of BOS's score minus the
    log of the mean of exp(score) over keys 1..q (queries 1..), and the smallest margin
    of BOS's score over the best ordinary key (queries 2..). Inputs as bos_score_gap."""
    qv, kv = q_act[:, :, 0].double(), k_act[:, :, 0].double()
    scores = qv @ kv.transpose(1, 2) / math.sqrt(qv.shape[-1])
    gaps = torch.cat([scores[:, p, 0] - torch.logsumexp(scores[:, p, 1:p + 1], -1) + math.log(p)
                      for p in range(1, scores.shape[1])])
    margin = min((scores[:, p, 0] - scores[:, p, 1:p + 1].max(-1).values).min().item()
                 for p in range(2, scores.shape[1]))
    return dict(mean=gaps.mean().item(), sd=gaps.std().item(), margin=margin)


def flatten_bos_hook(flat):
    """A hook on layer 0's pattern that sets every query's BOS weight to `flat` and
    rescales the other keys to keep each row's sum (chapter 5's flatten control)."""
    def flatten(pattern, hook):
        bos = torch.full_like(pattern[..., :1], flat)
        bos[:, :, 0] = 1.0
        rest = pattern[..., 1:]
        return torch.cat([bos, rest / rest.sum(-1, keepdim=True).clamp_min(1e-9) * (1 - bos)], -1)
    return flatten


def neuron_span_flat_bos(bridge, tokens, profile, strong):
    """How much MLP0's neurons vary with position, clean and with layer 0's BOS weight
    flattened: dict({strong, rest}: (clean, flattened)), each the mean over those neurons
    of max - min over positions 1.. of the batch-mean activation. profile [pos, d_mlp] is
    the clean batch mean; strong the position neurons' indices."""
    pattern, post = "blocks.0.attn.hook_pattern", "blocks.0.mlp.hook_post"
    seen = {}

    def grab(act, hook):
        seen["post"] = act.mean(0)
        return act
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens, names_filter=lambda n: n == pattern)
        flat = cache[pattern][:, 0, 1:, 0].mean().item()
        bridge.run_with_hooks(tokens, fwd_hooks=[(pattern, flatten_bos_hook(flat)), (post, grab)])
    span = lambda p: p[1:].max(0).values - p[1:].min(0).values  # noqa: E731
    rest = torch.tensor([i for i in range(profile.shape[-1]) if i not in set(strong.tolist())])
    return {name: (span(profile)[idx].mean().item(), span(seen["post"])[idx].mean().item())
            for name, idx in (("strong", strong), ("rest", rest))}


def clean_token_logits(bridge, tokens, first=6):
    """dict(previous, current): the mean centred logit of the previous and of the current
    token, queries from `first` on (as causal.key_term_replaced reports them)."""
    with torch.no_grad():
        logits = bridge(tokens)
    centred = logits - logits.mean(-1, keepdim=True)
    late = torch.arange(first, tokens.shape[1])
    return dict(previous=centred[:, late].gather(-1, tokens[:, late - 1, None]).mean().item(),
                current=centred[:, late].gather(-1, tokens[:, late, None]).mean().item())


def scaled_position_patch(bridge, tokens, filler, q, q_code, scale):
    """Exercise 6.5's position-only patch with the mean-code difference multiplied by
    `scale` (means over filler's sequences). Returns dict(clean, size): the fraction still
    right at q, and the patch's length over the spread between filler's sequences at q
    (root mean square distance from the mean code)."""
    with torch.no_grad():
        _, cache = bridge.run_with_cache(filler, names_filter=lambda n: n == RESID0)
    codes = cache[RESID0]
    mean = codes.mean(0)
    step = scale * (mean[q_code] - mean[q])
    spread = (codes[:, q] - mean[q]).pow(2).sum(-1).mean().sqrt().item()
    result = _patched_at(bridge, tokens, q, lambda x: x + step)
    return dict(clean=result["clean"], size=step.norm().item() / spread)
