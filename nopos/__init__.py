"""nopos: the helper library of the course "Position without positional embeddings".

It holds everything the notebooks need that is *not* the exercise: the
experiment's configuration, device choice and seeding, building the model,
checkpoints, plots, the prediction widget and the checks that explain what is
wrong with an answer. Reference answers live elsewhere (`nopos_reference`).

Who each part is for, by folder (imports run down this list, never up):

- `nopos/` (these modules, `checks/`, `data/`): what the notebooks import;
- `nopos/learner/`: the learner's command-line tools (doctor, self-grading,
  progress, scoreboard);
- `nopos/grading/`: the instructor's grading (nbgrader, sandbox, verdicts);
- `nopos/hub/`: the instructor's server for a class or a reading group.

Importing the package loads nothing heavy: `nopos.setup` and friends import
torch on first use, so that `python -m nopos.learner.doctor` can report a missing torch
instead of crashing on it.
"""
import os

# Idle OpenMP threads sleep instead of spinning on cores other processes need
# (read once, when torch loads its OpenMP runtime: so before torch is imported).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from nopos.config import BOS, SEED_CONFIG, model_config  # noqa: E402 - plain data, no torch

__all__ = ["BOS", "SEED_CONFIG", "model_config", "pick_device", "seed_everything", "setup"]


def __getattr__(name):
    if name in ("pick_device", "seed_everything", "setup"):
        from nopos import env
        return getattr(env, name)
    raise AttributeError(f"module 'nopos' has no attribute {name!r}")
