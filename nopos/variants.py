"""Chapter 6's model variants: the shipped checkpoints, longer contexts, no BOS.

`tools/variants.py` trains and saves them (`make record-variants`);
this module only loads and adapts them, so that the notebook needs no training.
"""
from pathlib import Path

import torch

from nopos.checkpoint import load_checkpoint
from nopos.config import model_config
from nopos.model import build_model

DATA = Path(__file__).resolve().parent / "data"
# name -> (checkpoint file, has learned positions)
VARIANTS = {
    "learned_positions": ("learned_positions.pt", True),
    "no_bos": ("no_bos.pt", False),
    "attention_only": ("attention_only.pt", False),
    "seed_1": ("seed_1.pt", False),
    "seed_2": ("seed_2.pt", False),
    "seed_3": ("seed_3.pt", False),
}


def load_variant(name, device="cpu"):
    """(model, info) of one of chapter 6's shipped variant models."""
    if name not in VARIANTS:
        raise KeyError(f"no variant {name!r}; known: {sorted(VARIANTS)}")
    file, positions = VARIANTS[name]
    return load_checkpoint(DATA / file, device, positions=positions)


def longer(model, n_ctx, seed=0):
    """A copy of `model` that accepts `n_ctx` positions.

    Without positions nothing changes but the size of the (zero) positional
    table. With learned positions the rows past the trained ones keep their
    fresh initialisation (seed `seed`): they never saw a gradient, as in a model
    trained on short sequences and then shown long ones.
    """
    cfg = model.cfg
    positions = bool(model.pos.weight.requires_grad)
    keep = dict(n_layers=cfg.n_layers, d_model=cfg.d_model, n_heads=cfg.n_heads, d_head=cfg.d_head,
                d_mlp=cfg.d_mlp, d_vocab=cfg.d_vocab, act_fn=cfg.act_fn,
                normalization_type=cfg.normalization_type)
    if getattr(cfg, "attn_only", False):
        keep["attn_only"] = True
    new = build_model(model_config(**keep, n_ctx=n_ctx), seed=seed, positions=positions)
    state = dict(model.state_dict())
    pos = new.pos.weight.detach().clone()
    pos[: cfg.n_ctx] = state["pos.weight"]
    state["pos.weight"] = pos
    new.load_state_dict(state)
    return new.to(next(model.parameters()).device).eval()


def without_bos(tokens, d_vocab, generator=None):
    """`tokens` with position 0 replaced by an ordinary random token (1..d_vocab-1, as
    everywhere else): sequences with no reserved first token."""
    out = tokens.clone()
    out[:, 0] = torch.randint(1, d_vocab, (tokens.shape[0],), generator=generator).to(out.device)
    return out
