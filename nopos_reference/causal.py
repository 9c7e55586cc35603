"""Causal tests of the mechanism that chapters 4 and 5 run (published with chapter 1).

Each function answers one question with an experiment that could have come out
the other way: the measured `c` and score gap that chapter 4's weights-only
prediction is held against; patching moves one position's code and watches
where layer 1 looks and what the model outputs; resampling one path at a time
says who writes the answer; resampling everything a hypothesis calls irrelevant
says how much of the loss it explains.

Resample ablation, not mean ablation: a mean keeps every position's own mean,
so it cannot test position; an activation taken from another sequence at the
*same* position keeps position and replaces only what is particular to the
sequence.
"""
import math

import torch

from nopos_reference.data import masked_loss, previous_token_targets


# ------------------------------------------------------------ layer 0's constant, measured
# (predicting it from the weights alone is exercise 4.3: nopos_reference.attention.c_from_weights)
def measured_c(pattern0, tokens, d_vocab):
    """Layer 0's `c` for every query token, measured: the geometric mean over its
    occurrences (positions >= 1) of q * w / (1 - w), w its weight on BOS.

    pattern0 [batch, query, key] (one head), tokens [batch, pos]. Returns
    [d_vocab], NaN for tokens that never occur.
    """
    q = torch.arange(tokens.shape[1], dtype=torch.float64)
    w = pattern0[:, 1:, 0].double()
    logs = (q[1:] * w / (1 - w)).log().flatten()
    ids = tokens[:, 1:].flatten()
    total = torch.zeros(d_vocab, dtype=torch.float64)
    count = torch.zeros_like(total)
    total.index_add_(0, ids, logs)
    count.index_add_(0, ids, torch.ones_like(logs))
    return (total / count).exp()


def bos_score_gap(q_act, k_act):
    """Per query position, how far BOS's score is above the ordinary keys' (in nats).

    q_act, k_act: layer 0's hook_q / hook_k [batch, pos, head, d_head] (head 0
    used). Entry q is BOS's score minus the log of the mean of exp(score) over
    keys 1..q, averaged over the batch: ln c when the gap is the same at every
    position. Entry 0 is NaN.
    """
    qv, kv = q_act[:, :, 0].double(), k_act[:, :, 0].double()
    scores = qv @ kv.transpose(1, 2) / math.sqrt(qv.shape[-1])
    gaps = [math.nan] + [(scores[:, p, 0] - torch.logsumexp(scores[:, p, 1:p + 1], -1)
                          + math.log(p)).mean().item() for p in range(1, scores.shape[1])]
    return torch.tensor(gaps)


def kernel_by_query(pattern, queries, max_offset):
    """Layer 1's kernel for a set of query positions only: [max_offset + 1], entry k
    the mean weight those queries put on the key k back (all queries must be >= max_offset)."""
    qs = torch.as_tensor(list(queries))
    return torch.stack([pattern[:, qs, qs - k].mean() for k in range(max_offset + 1)])


# ------------------------------------------------------------ patching the position code
def shifted_donor(tokens, filler, shift):
    """The same sequences with their first `shift` data tokens cut out (and `filler`'s
    tokens appended): the token at q sits at q - shift, with the same tokens before it
    back to position shift + 1. Only its position, and the tokens cut, differ."""
    donor = filler.clone()
    n = tokens.shape[1]
    donor[:, 1:n - shift] = tokens[:, shift + 1:]
    return donor


def patch_position(bridge, tokens, filler, q, shift, hook="blocks.0.hook_attn_out"):
    """Patch `hook` at position q with its value at q - shift in the shifted donor run.

    Returns dict(clean: fraction still outputting the token at q-1, moved: fraction
    outputting the token at q-shift-1, pattern: layer 1's mean weights of query q
    [pos]). hook_attn_out at q fixes MLP0's output there too (same token, same
    residual): it patches the whole position code.
    """
    donor = shifted_donor(tokens, filler, shift)
    with torch.no_grad():
        _, cache = bridge.run_with_cache(donor, names_filter=lambda name: name == hook)
        value = cache[hook][:, q - shift]
        seen = {}

        def patch(act, hook):
            act = act.clone()
            act[:, q] = value
            return act

        def keep(pattern, hook):
            seen["pattern"] = pattern[:, 0, q].mean(0)
            return pattern

        out = bridge.run_with_hooks(tokens, fwd_hooks=[(hook, patch), ("blocks.1.attn.hook_pattern", keep)])
    top = out[:, q].argmax(-1)
    return dict(clean=(top == tokens[:, q - 1]).float().mean().item(),
                moved=(top == tokens[:, q - shift - 1]).float().mean().item(),
                pattern=seen["pattern"])


# ------------------------------------------------------------ resampling
def resample_losses(bridge, tokens, other, hook_names):
    """{name: loss} with each activation replaced by its value on `other` (other
    sequences, same positions): a resample ablation."""
    targets, mask = previous_token_targets(tokens)
    with torch.no_grad():
        _, cache = bridge.run_with_cache(other, names_filter=lambda name: name in hook_names)
        return {name: masked_loss(bridge.run_with_hooks(
            tokens, fwd_hooks=[(name, lambda act, hook, v=cache[name]: v)]), targets, mask).item()
            for name in hook_names}


def attn1_paths(bridge, tokens, other):
    """Loss with attention 1's output resampled (from `other`) along one path at a time:
    dict(both, into_mlp1: only where MLP1 reads it, direct: only where the unembedding
    reads it, clean)."""
    targets, mask = previous_token_targets(tokens)
    attn, mlp = "blocks.1.hook_attn_out", "blocks.1.hook_mlp_out"
    with torch.no_grad():
        clean_logits, clean = bridge.run_with_cache(tokens, names_filter=lambda n: n == mlp)
        _, resampled = bridge.run_with_cache(other, names_filter=lambda n: n == attn)
        swap = (attn, lambda act, hook: resampled[attn])
        seen = {}

        def grab(act, hook):
            seen["mlp"] = act.clone()
            return act
        both_logits = bridge.run_with_hooks(tokens, fwd_hooks=[swap, (mlp, grab)])
        into_mlp1 = bridge.run_with_hooks(tokens, fwd_hooks=[(mlp, lambda act, hook: seen["mlp"])])
        direct = bridge.run_with_hooks(tokens, fwd_hooks=[swap, (mlp, lambda act, hook: clean[mlp])])
    loss = lambda logits: masked_loss(logits, targets, mask).item()  # noqa: E731
    return dict(clean=loss(clean_logits), both=loss(both_logits), into_mlp1=loss(into_mlp1),
                direct=loss(direct))


def loss_recovered(clean, scrubbed, baseline):
    """Causal scrubbing's score: the share of the way from `baseline` (nothing explained)
    back to `clean` that the scrubbed model's loss goes."""
    return (baseline - scrubbed) / (baseline - clean)


# ------------------------------------------------------------ attention 1's OV circuit
def ov_copy_from_weights(bridge, layer=1):
    """Attention `layer`'s OV circuit from the weights alone, straight to the logits: each
    token's embedding, through the layer norm (centred, unit RMS, its weight and bias),
    W_V W_O and the final layer norm's weight, to W_U, logits centred over the vocabulary.
    Returns dict(own: mean logit of the token itself, others: mean of the rest, spread: their
    standard deviation, top: fraction of tokens ranking themselves first, rank: median rank),
    BOS left out. Layer 0's share of the residual and the final scale are left out."""
    with torch.no_grad():
        x = bridge.W_E - bridge.W_E.mean(-1, keepdim=True)
        x = x / x.pow(2).mean(-1, keepdim=True).sqrt()
        x = x * bridge.blocks[layer].ln1.w + bridge.blocks[layer].ln1.b
        out = x @ bridge.W_V[layer, 0] @ bridge.W_O[layer, 0]
        logit = ((out - out.mean(-1, keepdim=True)) * bridge.ln_final.w) @ bridge.W_U
        logit = (logit - logit.mean(-1, keepdim=True))[1:, 1:]
        own = logit.diagonal()
        rank = (logit > own[:, None]).sum(-1).float()
        others = (logit.sum(-1) - own) / (logit.shape[1] - 1)
    return dict(own=own.mean().item(), others=others.mean().item(), spread=logit.std().item(),
                top=(rank == 0).float().mean().item(), rank=rank.median().item())


def key_term_replaced(bridge, tokens, back, how="mean"):
    """Attention 1's output with one key's term (pattern weight x value) replaced at every
    query: the key `back` positions back (0: the current token). how="mean": its value's mean
    over the batch at that position (the position kept, the sequence's own part gone);
    "zero": removed. Returns dict(loss, accuracy, previous: mean centred logit of the
    previous token, current: of the current token; queries from 6 on for the logits)."""
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens, names_filter=lambda n: n in (
            "blocks.1.attn.hook_pattern", "blocks.1.attn.hook_v"))
        pattern, v = cache["blocks.1.attn.hook_pattern"][:, 0], cache["blocks.1.attn.hook_v"][:, :, 0]
        n = tokens.shape[1]
        q = torch.arange(back, n)
        weight = torch.zeros(pattern.shape[:2])
        weight[:, q] = pattern[:, q, q - back]
        value = torch.zeros_like(v)
        value[:, q] = v[:, q - back]
        new = value.mean(0, keepdim=True).expand_as(value) if how == "mean" else torch.zeros_like(value)

        def swap(z, hook):
            z = z.clone()
            z[:, :, 0] += weight[..., None] * (new - value)
            return z
        logits = bridge.run_with_hooks(tokens, fwd_hooks=[("blocks.1.attn.hook_z", swap)])
    targets, mask = previous_token_targets(tokens)
    centred = logits - logits.mean(-1, keepdim=True)
    late = torch.arange(6, n)
    return dict(loss=masked_loss(logits, targets, mask).item(),
                accuracy=(logits[:, 1:].argmax(-1) == tokens[:, :-1]).float().mean().item(),
                previous=centred[:, late].gather(-1, tokens[:, late - 1, None]).mean().item(),
                current=centred[:, late].gather(-1, tokens[:, late, None]).mean().item())
