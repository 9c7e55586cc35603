"""Chapter 4's answers: looking at attention.

Every function is small and takes plain tensors, so that it can be checked on
designed inputs as well as on the shipped checkpoint. Tensors indexed by
position keep position 0 (BOS) at index 0: entry `q` is query position `q`.
"""
import torch


def bos_attention(pattern):
    """Mean attention to BOS at each query position.

    pattern: one head's attention pattern [batch, query, key]. Returns a float
    tensor [query]: entry q is the weight query position q puts on key
    position 0 (BOS), averaged over the batch.
    """
    return pattern[:, :, 0].mean(dim=0)


def fit_bos_curve(bos_weights):
    """Fit w(q) = c / (c + q) to BOS weights by least squares.

    bos_weights: [n_ctx], entry q the BOS weight at query position q. Entry 0
    is ignored (every c gives 1 there); the fit uses q = 1 .. n_ctx-1.
    Returns (c, r2) as Python floats, r2 = 1 - SS_res / SS_tot over q >= 1.
    """
    w = bos_weights[1:].double().cpu()
    q = torch.arange(1, len(bos_weights), dtype=torch.float64)
    cs = torch.logspace(-2, 3, 50001, dtype=torch.float64)  # candidate c, 0.01 .. 1000
    errors = ((cs[:, None] / (cs[:, None] + q) - w) ** 2).sum(dim=1)
    c = cs[errors.argmin()]
    residual = errors.min()
    total = ((w - w.mean()) ** 2).sum()
    return c.item(), (1 - residual / total).item()


def attention_by_offset(pattern, max_offset):
    """Mean attention by relative offset: the layer's average "kernel".

    pattern: [batch, query, key]. Returns a float tensor [max_offset + 1]:
    entry k is the weight a query at position q puts on key q - k (k = 0: the
    current token, 1: the previous one ...), averaged over the batch and over
    every query that has such a key (q >= k).
    """
    return torch.stack([pattern.diagonal(offset=-k, dim1=1, dim2=2).mean()
                        for k in range(max_offset + 1)])


def c_from_weights(bridge):
    """Layer 0's constant `c` for every query token, from the weights alone.

    bridge: a TransformerLens model (W_E, blocks[0].ln1, W_Q, b_Q, W_K, b_K).
    With no positional embedding, layer 0's input at any position is the
    token's embedding, so one table of scores [query token, key token] holds
    every score layer 0 can compute. A query among q random ordinary keys puts
    weight e^s_BOS / (e^s_BOS + q * mean e^s) on BOS, so c is
    e^s_BOS / mean e^s, the mean over the ordinary (non-BOS) keys.
    Returns a float tensor [d_vocab]; entry 0 (BOS as a query, which sees only
    itself) is not a c and may hold anything.
    """
    import math

    with torch.no_grad():
        # detached: the bridge's layer norm keeps a Parameter it is given as one of its own
        x = bridge.blocks[0].ln1(bridge.W_E.detach())              # [vocab, d_model]
        q = x @ bridge.W_Q[0, 0] + bridge.b_Q[0, 0]                # layer 0, head 0
        k = x @ bridge.W_K[0, 0] + bridge.b_K[0, 0]
        scores = (q @ k.T).double() / math.sqrt(bridge.cfg.d_head)  # [query, key]
        ordinary = torch.logsumexp(scores[:, 1:], dim=-1) - math.log(scores.shape[1] - 1)
        return (scores[:, 0] - ordinary).exp()
