"""Record the course's slow demonstration runs, so that a notebook can show them
without paying for them, and the claim tests can check the text against them.

    make record          (= .venv/bin/python -m tools.record)

writes nopos/data/recorded_runs.json: chapter 2's 2000-step run of the original's
buggy schedule (every step) and the same run with the fix, its buggy-against-fixed runs at the original
learning rate and its learning-rate sweep (what chapter 2 shows where it cannot
train: while it is graded, so that the recipe a learner derives from the sweep is
the same, and on a class server before chapter 3's training step is published),
and chapter 3's per-position accuracy of the model
stopped at 200 steps and of the one-layer control. CPU, one thread, fixed
seeds: the same command gives the same file on the same machine (the last
digits can differ across machines and thread counts).
"""
import argparse
import json
import time

import torch

import nopos
from nopos.model import build_model
from nopos.recorded import RECORDED
from nopos_reference.schedule import warmup_cosine_multiplier
from nopos_reference.train import RECIPE, buggy_multiplier, eval_batch, evaluate, train
from nopos_reference.training import per_position_accuracy

# Chapter 2's spike run, exactly as the notebook's SPIKE_RUN, with the original's schedule.
SPIKE_RUN = dict(lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1, clip=1.0, batch_size=32,
                 warmup_steps=100, total_steps=2000)
# Chapter 2's buggy-against-fixed comparison at the original learning rate, as the notebook's.
ORIGINAL_LR = dict(lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1, clip=1.0, batch_size=32,
                   warmup_steps=100, total_steps=700)
ORIGINAL_LR_LABELS = ("buggy: max(step/100, 1)", "fixed: min(step/100, 1)")
# Chapter 2's sweep, exactly as the notebook's: peak learning rates, steps, warm-up.
SWEEP, SWEEP_STEPS, SWEEP_WARMUP = ["1e-4", "1e-3", "3e-3", "1e-2", "1e-1"], 300, 30


def _rounded(values, digits=6):
    return [float(f"{v:.{digits}g}") for v in values]


def spike_run():
    history = train(build_model(nopos.SEED_CONFIG, seed=0), SPIKE_RUN, seed=0, progress=False,
                    multiplier=buggy_multiplier)
    return {"recipe": SPIKE_RUN, "seconds": round(history["seconds"][-1], 1),
            **{key: _rounded(history[key]) for key in ("loss", "running", "lr")}}


def spike_fixed_run():
    """The spike run's recipe with the fix (`min`): does the fix alone remove the spikes?"""
    from nopos_reference.schedule import warmup_multiplier

    history = train(build_model(nopos.SEED_CONFIG, seed=0), SPIKE_RUN, seed=0, progress=False,
                    multiplier=lambda s: warmup_multiplier(s, SPIKE_RUN["warmup_steps"]))
    return {"recipe": SPIKE_RUN, **{key: _rounded(history[key]) for key in ("loss", "running", "lr")}}


def original_lr_runs():
    """{label: run} for the buggy and the fixed schedule at the original learning rate."""
    from nopos_reference.schedule import warmup_multiplier

    runs = {}
    for label, multiplier in zip(ORIGINAL_LR_LABELS,
                                 (buggy_multiplier, lambda s: warmup_multiplier(s, 100))):
        history = train(build_model(nopos.SEED_CONFIG, seed=0), ORIGINAL_LR, seed=0,
                        progress=False, multiplier=multiplier)
        runs[label] = {key: _rounded(history[key]) for key in ("loss", "running", "lr")}
    return runs


def sweep_runs():
    """{"lr 1e-4": {"loss", "running", "lr", "eval": [loss, accuracy]}, ...}"""
    evaluation, runs = eval_batch(nopos.SEED_CONFIG), {}
    for lr in SWEEP:
        recipe = dict(lr=float(lr), betas=(0.9, 0.98), weight_decay=0.1, clip=1.0, batch_size=32,
                      warmup_steps=SWEEP_WARMUP, total_steps=SWEEP_STEPS)
        model = build_model(nopos.SEED_CONFIG, seed=0)
        history = train(model, recipe, seed=0, progress=False,
                        multiplier=lambda s: warmup_cosine_multiplier(s, SWEEP_WARMUP, SWEEP_STEPS))
        runs[f"lr {lr}"] = {**{key: _rounded(history[key]) for key in ("loss", "running", "lr")},
                            "eval": _rounded(evaluate(model, evaluation))}
    return runs


def per_position_runs():
    evaluation = eval_batch(nopos.SEED_CONFIG)
    early = build_model(nopos.SEED_CONFIG, seed=0)
    train(early, dict(RECIPE, total_steps=200), seed=0, progress=False)
    one_layer = build_model(nopos.model_config(n_layers=1), seed=0)
    train(one_layer, RECIPE, seed=0, progress=False)
    return {"stopped at 200 steps": _rounded(per_position_accuracy(early, evaluation).tolist()),
            "1 layer, no positions": _rounded(per_position_accuracy(one_layer, evaluation).tolist())}


RUNS = {"ch2_spike_run": spike_run, "ch2_spike_fixed": spike_fixed_run, "ch2_original_lr": original_lr_runs, "ch2_sweep": sweep_runs,
        "ch3_per_position": per_position_runs}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(RECORDED))
    parser.add_argument("--only", choices=sorted(RUNS),
                        help="record this run alone, keeping the file's others")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    record = {"command": "make record", "threads": 1, "torch": torch.__version__}
    if args.only:
        record = json.loads(open(args.out, encoding="utf-8").read())
    for name, make in RUNS.items():
        if args.only in (None, name):
            nopos.seed_everything(0)
            record[name] = make()
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump(record, out, separators=(",", ":"))
        out.write("\n")
    print(f"wrote {args.out} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
