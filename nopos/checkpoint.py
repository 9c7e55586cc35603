"""Save and load trained models, with what made them."""
import hashlib
from pathlib import Path

import torch

from nopos.model import build_model

REFERENCE = Path(__file__).resolve().parent / "data" / "reference.pt"


def save_checkpoint(model, path, **info):
    """Weights, the model's config and anything else worth remembering (recipe, seed ...)."""
    cfg = model.cfg
    config = dict(n_layers=cfg.n_layers, d_model=cfg.d_model, n_heads=cfg.n_heads,
                  d_head=cfg.d_head, d_mlp=cfg.d_mlp, d_vocab=cfg.d_vocab, n_ctx=cfg.n_ctx,
                  act_fn=cfg.act_fn, normalization_type=cfg.normalization_type)
    if getattr(cfg, "attn_only", False):
        config["attn_only"] = True
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    info = dict(info, torch_version=torch.__version__.split("+")[0])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": config, "state_dict": state, "info": info}, path)


def load_checkpoint(path=REFERENCE, device="cpu", positions=False):
    """(model, info) from a checkpoint; W_pos stays zero and frozen unless positions=True
    (chapter 6's learned-position control, whose checkpoint says so in its info)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}; train one with "
                                f"`make train ARGS=\"--out {path}\"`")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if positions != bool(blob["info"].get("positions", False)):
        raise ValueError(f"{path} is a model {'with' if not positions else 'without'} learned "
                         f"positions: load it with positions={not positions}")
    model = build_model(blob["config"], device="cpu", positions=positions)
    model.load_state_dict(blob["state_dict"])
    if not positions and model.pos.weight.abs().max() != 0:
        raise ValueError(f"{path} has a non-zero positional embedding: not a no-position model")
    return model.to(device).eval(), blob["info"]


def load_reference(device="cpu"):
    """The course's shipped reference model (trained by the course's own recipe)."""
    return load_checkpoint(REFERENCE, device)


def weights_digest(model):
    """A short fingerprint of the weights, to show two trainings gave the same model."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
