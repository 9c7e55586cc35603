"""The model: TransformerLens' own transformer, with position taken away.

We train TransformerLens' hook-free `NativeModel` (fast: no hooks on the
training path) and look inside it through a `TransformerBridge` that wraps a
copy of the same weights (all of TransformerLens' hooks, caches and weight
names). TransformerLens has no "no positional embedding" option, so we keep
the standard embedding, zero it and freeze it: every position then adds the
same zero vector, and the model gets no position information from it.
"""
import copy
import warnings
import weakref

import torch

from nopos.config import model_config

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from transformer_lens import TransformerBridgeConfig
    from transformer_lens.model_bridge.sources._bridge_builder import build_bridge_from_module
    from transformer_lens.model_bridge.sources.native.init import initialize_native_model
    from transformer_lens.model_bridge.sources.native.model import NativeModel


def bridge_config(cfg, seed=0):
    """TransformerLens' config object for one of our plain-dict configs."""
    cfg = dict(cfg)
    return TransformerBridgeConfig(d_vocab_out=cfg["d_vocab"], seed=seed, **cfg)


def remove_positions(model):
    """Zero the positional embedding and keep it zero: no gradient ever reaches it."""
    with torch.no_grad():
        model.pos.weight.zero_()
    model.pos.weight.requires_grad_(False)
    return model


def build_model(cfg=None, seed=0, device="cpu", positions=False):
    """A freshly initialised model; without positional embeddings unless positions=True."""
    cfg = model_config() if cfg is None else cfg
    model = NativeModel(bridge_config(cfg, seed))
    initialize_native_model(model, model.cfg)
    if not positions:
        remove_positions(model)
    return model.to(device)


def W_pos(model):
    """The positional embedding matrix [n_ctx, d_model] (zero in our models)."""
    return model.pos.weight


def trainable_parameters(model):
    """What an optimiser should update: everything that asks for a gradient."""
    return [p for p in model.parameters() if p.requires_grad]


def lens(model):
    """A TransformerLens `TransformerBridge` over a copy of `model`'s weights.

    The copy keeps `model` itself hook-free and fast to train; the bridge has
    `run_with_cache`, `run_with_hooks`, `W_E`, `W_pos`, `W_Q` ... and the hooks
    `blocks.{l}.attn.hook_pattern`, `blocks.{l}.mlp.hook_post` and so on.
    """
    native = copy.deepcopy(model)
    source = copy.deepcopy(model)  # the bridge rewires `native`; the grader sends these weights
    device = next(native.parameters()).device
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bridge = build_bridge_from_module(
            native, architecture="TransformerLensNative", tl_config=native.cfg, device=device
        )
    bridge.eval()
    _LENS_SOURCES[bridge] = source
    return bridge


_LENS_SOURCES = weakref.WeakKeyDictionary()


def lens_source(bridge):
    """The NativeModel whose weights a bridge made by `lens` wraps (None for anything else)."""
    try:
        return _LENS_SOURCES.get(bridge)
    except TypeError:  # not weak-referenceable: not one of ours
        return None
