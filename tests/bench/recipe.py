"""Benchmark: the original recipe against the course's, side by side in one run.

    python -m tests.bench.recipe            # make bench
    python -m tests.bench.recipe --device cuda

Both train the seed config (d_vocab 300, n_ctx 50) from the same initial
weights on the same device and threads. For each it prints the wall seconds
and steps until the running loss first reaches 0.1 and 0.01, and the final
eval loss and accuracy on a fresh seeded batch. The course's recipe runs
before *and* after the original, so that a machine that slows down during the
run shows up as two different course times; the ratio uses their mean.
"""
import argparse
import platform

import torch

from nopos.config import model_config
from nopos.env import pick_device
from nopos.model import build_model
from nopos_reference.train import ORIGINAL, RECIPE, eval_batch, evaluate, train


def first_step_below(history, threshold, key="running"):
    """(step, seconds) when `history[key]` first drops to `threshold`, or (None, None)."""
    for step, value, seconds in zip(history["step"], history[key], history["seconds"]):
        if value <= threshold:
            return step, seconds
    return None, None


def run(label, recipe, device, seed, max_steps=None):
    steps = min(recipe["total_steps"], max_steps or recipe["total_steps"])
    model = build_model(model_config(), seed=seed, device=device)
    history = train(model, recipe, seed=seed, steps=steps, progress=False,
                    stop_below=0.01 if recipe is ORIGINAL else None)
    if device.type == "cuda":
        torch.cuda.synchronize()
    loss, accuracy = evaluate(model, eval_batch(model_config(), device))
    row = {"label": label, "steps": len(history["step"]), "seconds": history["seconds"][-1],
           "eval_loss": loss, "eval_accuracy": accuracy}
    for threshold in (0.1, 0.01):
        row[threshold] = first_step_below(history, threshold)
    return row


def show(row):
    def at(threshold):
        step, seconds = row[threshold]
        return "not reached" if step is None else f"step {step:5d} / {seconds:6.1f} s"
    print(f"{row['label']:34s} running loss <= 0.1: {at(0.1)}; <= 0.01: {at(0.01)}; "
          f"{row['steps']} steps in {row['seconds']:.1f} s; eval loss {row['eval_loss']:.4f}, "
          f"accuracy {row['eval_accuracy']:.2%}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=None, help="cap every run (smoke test)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    print(f"device {device} ({name}), {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"original recipe: {ORIGINAL}")
    print(f"course recipe:   {RECIPE}")
    rows = [run("course recipe (first)", RECIPE, device, args.seed, args.max_steps),
            run("original recipe (buggy max, lr 1e-4)", ORIGINAL, device, args.seed, args.max_steps),
            run("course recipe (again)", RECIPE, device, args.seed, args.max_steps)]
    for row in rows:
        show(row)
    course = [r[0.01][1] for r in (rows[0], rows[2])]
    original = rows[1][0.01][1]
    if original is None or None in course:
        print("ratio original/course time-to-0.01: n/a (a run did not reach 0.01)")
        return 0
    print(f"ratio original/course time-to-0.01: {original / (sum(course) / 2):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
