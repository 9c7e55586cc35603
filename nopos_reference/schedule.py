"""Chapter 2's answers: learning-rate schedules that fix the original's bug.

Each function returns the *multiplier* of the base learning rate at an
optimiser step, the form `torch.optim.lr_scheduler.LambdaLR` expects.
"""
import math


def warmup_multiplier(step, warmup_steps):
    """Linear warm-up from 0 at step 0 to 1 at `warmup_steps`, then flat at 1."""
    return min(step / warmup_steps, 1.0)


def warmup_cosine_multiplier(step, warmup_steps, total_steps):
    """Linear warm-up from 0 to 1 over `warmup_steps`, then a cosine from 1 down
    to 0 at `total_steps`, and 0 after that."""
    if step < warmup_steps:
        return step / warmup_steps
    if step >= total_steps:
        return 0.0
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * progress))
