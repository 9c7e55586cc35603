"""Chapter 1: the dataset, its targets, and what we score."""
import torch
import torch.nn.functional as F

from nopos.config import BOS


def make_batch(batch_size, n_ctx, d_vocab, generator=None, device="cpu"):
    """A batch of random sequences, each starting with BOS.

    Returns a torch.long tensor [batch_size, n_ctx]: position 0 is BOS (token 0)
    and every other position is a token drawn uniformly from 1..d_vocab-1, so
    BOS never appears anywhere else. Draw with `generator` so a seed fixes the batch.
    """
    tokens = torch.randint(1, d_vocab, (batch_size, n_ctx), generator=generator)
    tokens[:, 0] = BOS
    return tokens.to(device)


def previous_token_targets(tokens):
    """What each position should predict, and which positions count.

    Returns (targets, mask), both shaped like `tokens`: targets[:, t] is the token
    at position t-1; mask[:, t] is True where position t is scored. Position 0
    (BOS) has no previous token: its target is a placeholder (BOS) and its mask
    is False.
    """
    targets = torch.full_like(tokens, BOS)
    targets[:, 1:] = tokens[:, :-1]
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[:, 0] = False
    return targets, mask


def masked_loss(logits, targets, mask):
    """Mean cross-entropy over the positions where mask is True.

    logits [batch, pos, d_vocab], targets and mask [batch, pos]. Returns a
    0-dimensional tensor you can call .backward() on.
    """
    return F.cross_entropy(logits[mask], targets[mask])


def masked_accuracy(logits, targets, mask):
    """Fraction of scored positions (mask True) where the top logit is the target."""
    correct = logits.argmax(dim=-1) == targets
    return correct[mask].float().mean().item()
