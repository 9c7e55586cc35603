"""nopos: the helper library of the course "Position without positional embeddings".

It holds everything the notebooks need that is *not* the exercise: the
experiment's configuration, device choice and seeding, building the model,
checkpoints, plots, the prediction widget and the checks that explain what is
wrong with an answer. Reference answers live elsewhere (`nopos_reference`).
"""
from nopos.config import BOS, SEED_CONFIG, model_config
from nopos.env import pick_device, seed_everything, setup

__all__ = ["BOS", "SEED_CONFIG", "model_config", "pick_device", "seed_everything", "setup"]
