"""Chapter 3's answers: the optimiser, the training step, accuracy per position."""
import torch

from nopos.model import trainable_parameters
from nopos_reference.data import masked_loss, previous_token_targets


def make_optimizer(model, lr, betas=(0.9, 0.98), weight_decay=0.1):
    """AdamW over the parameters that train: the frozen W_pos stays out."""
    return torch.optim.AdamW(trainable_parameters(model), lr=lr, betas=betas,
                             weight_decay=weight_decay)


def train_step(model, optimizer, scheduler, tokens, clip=1.0):
    """One optimiser step on a batch of tokens; returns the loss (a float).

    Forward, loss over the scored positions only, fresh gradients, clipping,
    one optimiser step and one scheduler step.
    """
    targets, mask = previous_token_targets(tokens)
    loss = masked_loss(model(tokens), targets, mask)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainable_parameters(model), clip)
    optimizer.step()
    scheduler.step()
    return loss.item()


@torch.no_grad()
def per_position_accuracy(model, tokens):
    """Accuracy at each position 1..n_ctx-1, averaged over the batch: a tensor [n_ctx - 1]."""
    targets, _ = previous_token_targets(tokens)
    correct = model(tokens).argmax(dim=-1) == targets
    return correct[:, 1:].float().mean(dim=0)
