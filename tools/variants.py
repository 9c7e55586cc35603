"""Train and save chapter 6's variant models (the notebook loads them).

    make record-variants   (= .venv/bin/python -m tools.variants)

writes nopos/data/{learned_positions,no_bos,attention_only}.pt: the course's
recipe (RECIPE, 600 steps) and seed 0 for each, on the CPU with one thread,
with the running loss of every 10th step kept in the checkpoint's info (how
fast each learned). The same command gives the same files on the same machine.

- learned_positions: the seed model with a learned positional embedding;
- no_bos: no reserved first token: position 0 holds an ordinary random token;
- attention_only: two attention layers, no MLPs;
- seed_1, seed_2, seed_3: the reference model's own recipe and config with
  another seed (the reference is seed 0), to tell a mechanism from one run's
  constants.
"""
import argparse
import time

import torch

from nopos.checkpoint import save_checkpoint
from nopos.config import model_config
from nopos.model import build_model
from nopos.variants import DATA, VARIANTS, without_bos
from nopos_reference.train import RECIPE, eval_batch, evaluate, train

SEED = 0
SETTINGS = {  # name -> (model_config overrides, build_model positions=, drop BOS)
    "learned_positions": ({}, True, False),
    "no_bos": ({}, False, True),
    "attention_only": ({"attn_only": True}, False, False),
    "seed_1": ({}, False, False),
    "seed_2": ({}, False, False),
    "seed_3": ({}, False, False),
}


def seed_of(name):
    """The training seed of a variant: seed_N uses N, the others SEED."""
    return int(name.split("_")[1]) if name.startswith("seed_") else SEED


def train_variant(name, seed=None, steps=RECIPE["total_steps"]):
    """(model, history, eval loss, eval accuracy) of one variant, trained by the course's recipe."""
    overrides, positions, drop_bos = SETTINGS[name]
    seed = seed_of(name) if seed is None else seed
    cfg = model_config(**overrides)
    torch.manual_seed(seed)
    model = build_model(cfg, seed=seed, positions=positions)
    step_fn = None
    if drop_bos:
        from nopos_reference.training import train_step
        first = torch.Generator().manual_seed(seed + 1)

        def step_fn(model, optimizer, scheduler, tokens, clip):
            return train_step(model, optimizer, scheduler, without_bos(tokens, cfg["d_vocab"], first), clip)
    history = train(model, dict(RECIPE, total_steps=steps), seed=seed, progress=False, step_fn=step_fn)
    tokens = eval_batch(cfg)
    if drop_bos:
        tokens = without_bos(tokens, cfg["d_vocab"], torch.Generator().manual_seed(seed + 2))
    loss, accuracy = evaluate(model, tokens)
    return model, history, loss, accuracy


def record(names, out_dir=DATA):
    torch.set_num_threads(1)
    for name in names:
        start = time.perf_counter()
        model, history, loss, accuracy = train_variant(name)
        path = out_dir / VARIANTS[name][0]
        save_checkpoint(model, path, recipe=RECIPE, seed=seed_of(name), eval_loss=loss, eval_accuracy=accuracy,
                        positions=SETTINGS[name][1], no_bos=SETTINGS[name][2],
                        running_loss=[round(v, 5) for v in history["running"][::10]],
                        command="python -m tools.variants " + name)
        print(f"{name}: {len(history['step'])} steps in {time.perf_counter() - start:.1f} s; "
              f"eval loss {loss:.4f}, accuracy {accuracy:.2%} -> {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(SETTINGS), help="variants (default: all)")
    args = parser.parse_args(argv)
    record(args.names)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
