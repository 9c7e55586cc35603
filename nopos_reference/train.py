"""Chapter 3: training, as one loop you can hold in your head.

    python -m nopos_reference.train --steps 600 --seed 0 --out my_model.pt

trains the course's model with the course's recipe and prints the final loss
and accuracy; `--device cuda` (or mps, cpu) overrides the automatic choice.
"""
import argparse
import math
import time

import torch

from nopos.checkpoint import save_checkpoint
from nopos.config import model_config
from nopos.env import pick_device
from nopos.model import build_model, trainable_parameters
from nopos_reference.data import make_batch, masked_accuracy, masked_loss, previous_token_targets
from nopos_reference.schedule import buggy_multiplier, warmup_cosine_multiplier, warmup_multiplier

# The course's recipe: found by a small sweep (chapter 2), ~10 s on a 2-core CPU.
RECIPE = dict(lr=1e-2, betas=(0.9, 0.98), weight_decay=0.1, clip=1.0, batch_size=32,
              warmup_steps=50, total_steps=600, schedule="cosine")
# The original notebook's recipe, bug included.
ORIGINAL = dict(lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1, clip=1.0, batch_size=256,
                warmup_steps=100, total_steps=4000, schedule="buggy")
EVAL_SEED, EVAL_BATCH = 999, 2000


def make_optimizer(model, lr, betas=(0.9, 0.98), weight_decay=0.1):
    """AdamW over the parameters that train: the frozen W_pos stays out."""
    return torch.optim.AdamW(trainable_parameters(model), lr=lr, betas=betas,
                             weight_decay=weight_decay)


def make_scheduler(optimizer, recipe):
    """A LambdaLR for the recipe's schedule: 'cosine', 'constant' (warm-up then flat) or 'buggy'."""
    warmup, total = recipe["warmup_steps"], recipe["total_steps"]
    multiplier = {
        "cosine": lambda step: warmup_cosine_multiplier(step, warmup, total),
        "constant": lambda step: warmup_multiplier(step, warmup),
        "buggy": lambda step: buggy_multiplier(step, warmup),
    }[recipe["schedule"]]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)


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


def eval_batch(cfg, device="cpu", size=EVAL_BATCH, seed=EVAL_SEED):
    """A fixed evaluation batch the model never trains on."""
    return make_batch(size, cfg["n_ctx"], cfg["d_vocab"], torch.Generator().manual_seed(seed), device)


@torch.no_grad()
def evaluate(model, tokens):
    """(loss, accuracy) over the scored positions of a batch."""
    targets, mask = previous_token_targets(tokens)
    logits = model(tokens)
    return masked_loss(logits, targets, mask).item(), masked_accuracy(logits, targets, mask)


@torch.no_grad()
def per_position_accuracy(model, tokens):
    """Accuracy at each position 1..n_ctx-1, averaged over the batch: a tensor [n_ctx - 1]."""
    targets, _ = previous_token_targets(tokens)
    correct = model(tokens).argmax(dim=-1) == targets
    return correct[:, 1:].float().mean(dim=0)


def train(model, recipe=RECIPE, seed=0, steps=None, device=None, progress=True,
          log_every=25, stop_below=None, step_fn=None, multiplier=None):
    """Train `model` in place with `recipe`; returns the history of the run.

    A fresh random batch every step, drawn on the CPU from one seeded generator
    (the same batches on every device). `stop_below` ends the run once the
    running loss (an exponential moving average) falls below it. `step_fn`
    replaces `train_step` (the notebook passes the learner's own), and
    `multiplier(step)` replaces the recipe's schedule.
    """
    device = torch.device(device) if device else next(model.parameters()).device
    cfg = {"n_ctx": model.cfg.n_ctx, "d_vocab": model.cfg.d_vocab}
    steps = steps or recipe["total_steps"]
    step_fn = step_fn or train_step
    optimizer = make_optimizer(model, recipe["lr"], recipe["betas"], recipe["weight_decay"])
    scheduler = (torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier) if multiplier
                 else make_scheduler(optimizer, recipe))
    generator = torch.Generator().manual_seed(seed)
    history = {"step": [], "loss": [], "running": [], "lr": [], "seconds": []}
    running, start = None, time.perf_counter()
    bar = _progress(steps, progress)
    model.train()
    for step in range(steps):
        tokens = make_batch(recipe["batch_size"], cfg["n_ctx"], cfg["d_vocab"], generator).to(device)
        lr = optimizer.param_groups[0]["lr"]
        loss = step_fn(model, optimizer, scheduler, tokens, recipe["clip"])
        running = loss if running is None else 0.95 * running + 0.05 * loss
        for key, value in zip(history, (step, loss, running, lr, time.perf_counter() - start)):
            history[key].append(value)
        if bar is not None and (step % log_every == 0 or step == steps - 1):
            bar.set_postfix(loss=f"{running:.4f}", lr=f"{lr:.2e}", refresh=False)
            bar.update(step + 1 - bar.n)
        if stop_below is not None and running < stop_below:
            break
        if not math.isfinite(loss):
            break
    if bar is not None:
        bar.close()
    model.eval()
    return history


def _progress(total, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="training", unit="step", mininterval=0.5)


def first_step_below(history, threshold, key="running"):
    """(step, seconds) when `history[key]` first drops to `threshold`, or (None, None)."""
    for step, value, seconds in zip(history["step"], history[key], history["seconds"]):
        if value <= threshold:
            return step, seconds
    return None, None


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train the course's model without positions.")
    parser.add_argument("--steps", type=int, default=RECIPE["total_steps"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--out", default=None, help="where to save the checkpoint (.pt)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    recipe = dict(RECIPE, total_steps=args.steps)
    torch.manual_seed(args.seed)
    model = build_model(model_config(), seed=args.seed, device=device)
    print(f"training on {device} for {args.steps} steps (seed {args.seed}); recipe {recipe}")
    history = train(model, recipe, seed=args.seed, progress=not args.no_progress)
    loss, accuracy = evaluate(model, eval_batch(model_config(), device))
    seconds = history["seconds"][-1]
    print(f"trained {len(history['step'])} steps in {seconds:.1f} s; "
          f"final running loss {history['running'][-1]:.4f}")
    print(f"eval on {EVAL_BATCH} fresh sequences (seed {EVAL_SEED}): loss {loss:.4f}, "
          f"accuracy {accuracy:.2%}")
    if args.out:
        save_checkpoint(model, args.out, recipe=recipe, seed=args.seed, eval_loss=loss,
                        eval_accuracy=accuracy, command="python -m nopos_reference.train "
                        f"--steps {args.steps} --seed {args.seed} --device cpu --threads 2")
        print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
