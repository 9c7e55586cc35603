"""The experiment as plain data: the seed configuration of the original notebook."""
import copy

BOS = 0  # token 0 is reserved for "beginning of sequence"; data tokens are 1..d_vocab-1

# The original experiment: 2 layers, one 64-wide head, a 256-wide ReLU MLP,
# LayerNorm, 300 tokens, 50 positions.
SEED_CONFIG = dict(
    n_layers=2,
    d_model=64,
    n_heads=1,
    d_head=64,
    d_mlp=256,
    d_vocab=300,
    n_ctx=50,
    act_fn="relu",
    normalization_type="LN",
)


def model_config(**overrides):
    """The seed configuration with some fields changed, e.g. model_config(n_layers=1)."""
    unknown = set(overrides) - set(SEED_CONFIG) - {"attention_dir", "attn_only"}
    if unknown:
        raise ValueError(f"unknown model setting(s) {sorted(unknown)}; known: {sorted(SEED_CONFIG)}")
    cfg = copy.deepcopy(SEED_CONFIG)
    cfg.update(overrides)
    return cfg
