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
