"""The course's training loop, one you can hold in your head (not an exercise).

    python -m nopos_reference.train --steps 600 --seed 0 --out my_model.pt

trains the course's model with the course's recipe and prints the final loss
and accuracy; `--device cuda` (or mps, cpu) overrides the automatic choice.
"""
import argparse
import importlib.util
import math
import time

import torch

from nopos.checkpoint import save_checkpoint
from nopos.config import model_config
from nopos.env import pick_device
from nopos.model import build_model
from nopos_reference.data import make_batch, masked_accuracy, masked_loss, previous_token_targets

# The course's recipe: found by a small sweep (chapter 2), ~10 s on a 2-core CPU.
RECIPE = dict(lr=1e-2, betas=(0.9, 0.98), weight_decay=0.1, clip=1.0, batch_size=32,
              warmup_steps=50, total_steps=600, schedule="cosine")
# The original notebook's recipe, bug included.
ORIGINAL = dict(lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1, clip=1.0, batch_size=256,
                warmup_steps=100, total_steps=4000, schedule="buggy")
EVAL_SEED, EVAL_BATCH = 999, 2000


def buggy_multiplier(step, warmup_steps=100):
    """The original notebook's schedule: `max` where `min` was meant.

    No warm-up at all (the multiplier is 1 until warmup_steps), and after that
    it grows without bound: 40x by step 4000.
    """
    return max(step / warmup_steps, 1.0)


def make_scheduler(optimizer, recipe):
    """A LambdaLR for the recipe's schedule: 'cosine', 'constant' (warm-up then flat) or 'buggy'."""
    warmup, total = recipe["warmup_steps"], recipe["total_steps"]
    if recipe["schedule"] == "buggy":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: buggy_multiplier(step, warmup))
    # chapter 2's answers, imported only when needed: grading chapter 2 hides them
    from nopos_reference.schedule import warmup_cosine_multiplier, warmup_multiplier

    multiplier = {
        "cosine": lambda step: warmup_cosine_multiplier(step, warmup, total),
        "constant": lambda step: warmup_multiplier(step, warmup),
    }[recipe["schedule"]]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)


def eval_batch(cfg, device="cpu", size=EVAL_BATCH, seed=EVAL_SEED):
    """A fixed evaluation batch the model never trains on."""
    return make_batch(size, cfg["n_ctx"], cfg["d_vocab"], torch.Generator().manual_seed(seed), device)


@torch.no_grad()
def evaluate(model, tokens):
    """(loss, accuracy) over the scored positions of a batch."""
    targets, mask = previous_token_targets(tokens)
    logits = model(tokens)
    return masked_loss(logits, targets, mask).item(), masked_accuracy(logits, targets, mask)


def can_train():
    """Whether this kernel holds the course's training step, chapter 3's answer. It does
    not while chapters 1-3 are graded (a chapter's kernel sees earlier chapters' answers
    only), nor on a class server before chapter 3's grades close (nopos/hub/answers.py):
    chapter 2 then shows its runs as `make record` recorded them."""
    return importlib.util.find_spec("nopos_reference.training") is not None


def course_step():
    """The module with the course's `train_step` and `make_optimizer` (chapter 3's answers)."""
    if not can_train():
        raise ImportError(
            "train() without step_fn= and make_optimizer= uses the course's training step, "
            "which is chapter 3's exercise and is not in this kernel (a chapter before 3 is "
            "being graded, or chapter 3's grades are still open on your class server): pass "
            "your own step_fn and make_optimizer, or load the recorded run (nopos.recorded)")
    from nopos_reference import training

    return training


def train(model, recipe=RECIPE, seed=0, steps=None, device=None, progress=True,
          log_every=25, stop_below=None, step_fn=None, multiplier=None, make_optimizer=None):
    """Train `model` in place with `recipe`; returns the history of the run.

    A fresh random batch every step, drawn on the CPU from one seeded generator
    (the same batches on every device). `stop_below` ends the run once the
    running loss (an exponential moving average) falls below it. `step_fn`
    replaces `train_step` and `make_optimizer` the course's (the notebooks pass the
    learner's own), and `multiplier(step)` replaces the recipe's schedule.
    """
    device = torch.device(device) if device else next(model.parameters()).device
    cfg = {"n_ctx": model.cfg.n_ctx, "d_vocab": model.cfg.d_vocab}
    steps = steps or recipe["total_steps"]
    if step_fn is None or make_optimizer is None:
        training = course_step()
    step_fn = step_fn or training.train_step
    make_optimizer = make_optimizer or training.make_optimizer
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
                        f"--steps {args.steps} --seed {args.seed} --device {device}"
                        + (f" --threads {args.threads}" if args.threads else ""))
        print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
