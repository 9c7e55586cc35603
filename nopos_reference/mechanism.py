"""Chapter 5's answers: proving the mechanism.

Every function is small and takes plain tensors (or the TransformerLens
bridge), so that it can be checked on designed inputs as well as on the
shipped checkpoint.
"""
import torch

from nopos_reference.data import masked_loss, previous_token_targets


def position_neurons(post, min_range):
    """Neurons whose average activation changes with position.

    post: MLP activations [batch, pos, d_mlp]. Returns (profile, neurons):
    profile [pos, d_mlp] is the activation averaged over the batch; neurons is
    a sorted torch.long tensor of the neurons whose profile, over positions
    1 .. n_ctx-1 (position 0 holds BOS, another token), spans more than
    `min_range` (max - min).
    """
    profile = post.mean(dim=0)
    span = profile[1:].max(dim=0).values - profile[1:].min(dim=0).values
    neurons = torch.nonzero(span > min_range).flatten()
    return profile, neurons


def neuron_threshold(profile, tol=0.05):
    """Is one neuron's position profile monotone, and where does it switch?

    profile: [pos], a neuron's mean activation at each position; position 0
    (BOS) is ignored. Returns (direction, threshold): over positions 1..,
    direction is +1 if the profile ends higher than it starts and never falls
    by more than tol * (max - min) from one position to the next, -1 if it ends
    lower and never rises by more than that, 0 otherwise. threshold is the
    first position >= 1 past the midpoint (min + max) / 2 (above it when
    rising, below it when falling), or None when the direction is 0.
    """
    p = profile[1:].double()
    steps = p[1:] - p[:-1]
    slack = tol * (p.max() - p.min())
    if p[-1] > p[0] and bool((steps >= -slack).all()):
        direction = 1
    elif p[-1] < p[0] and bool((steps <= slack).all()):
        direction = -1
    else:
        return 0, None
    middle = (p.max() + p.min()) / 2
    past = p > middle if direction == 1 else p < middle
    return direction, int(past.nonzero()[0]) + 1


def probe_r2(x_train, y_train, x_test, y_test):
    """How linearly readable is y (e.g. position) from x (a residual stream)?

    Fits y ~ x @ w + b by least squares on the training rows (x [n, d],
    y [n]) and returns R² = 1 - SS_res / SS_tot on the *test* rows, a Python
    float (1: perfectly readable; 0 or below: no better than the mean).
    """
    def with_bias(x):
        x = x.double()
        return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype, device=x.device)], dim=1)

    w = torch.linalg.lstsq(with_bias(x_train), y_train.double()[:, None]).solution
    y = y_test.double()
    prediction = (with_bias(x_test) @ w).squeeze(1)
    return (1 - ((y - prediction) ** 2).sum() / ((y - y.mean()) ** 2).sum()).item()


def mean_ablation_losses(bridge, tokens, hook_names):
    """Loss with each hook point replaced by its mean over the batch.

    bridge: a TransformerLens bridge; tokens [batch, pos]; hook_names: names
    like "blocks.0.attn.hook_pattern". For each name, runs the model with that
    activation replaced by its mean over the batch dimension (the mean keeps
    every other dimension: position, head, ...; taken from a clean run on the
    same tokens) and records the previous-token loss. Returns {name: loss} (floats,
    in the order given). A name the model does not produce raises KeyError.
    """
    targets, mask = previous_token_targets(tokens)
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens, names_filter=lambda name: name in hook_names)
        losses = {}
        for name in hook_names:
            if name not in cache:
                raise KeyError(f"the model has no hook point {name!r}")
            mean = cache[name].mean(dim=0, keepdim=True)
            logits = bridge.run_with_hooks(
                tokens, fwd_hooks=[(name, lambda act, hook, mean=mean: mean.expand_as(act))])
            losses[name] = masked_loss(logits, targets, mask).item()
    return losses


def patch_position_code(bridge, tokens, filler, q, shift):
    """Give query q the position code of q - shift, and a control that keeps the position.

    The donor is the same sequences with their first `shift` data tokens cut out
    (filler's tokens fill the end): the token at q sits at q - shift there, with
    the same tokens before it back to shift + 1. Layer 0's whole output at q
    (attention 0's output; MLP0 reads only that and the token, so its output
    follows) is replaced by the donor's at q - shift. The control replaces it
    by filler's at q: another sequence, the same position.

    Returns dict(clean: fraction of sequences still outputting the token at q-1,
    moved: fraction outputting the token at q-shift-1, control: fraction still
    right after the control patch), Python floats.
    """
    hook = "blocks.0.hook_attn_out"
    n = tokens.shape[1]
    donor = filler.clone()
    donor[:, 1:n - shift] = tokens[:, shift + 1:]
    with torch.no_grad():
        _, shifted = bridge.run_with_cache(donor, names_filter=hook)
        _, other = bridge.run_with_cache(filler, names_filter=hook)

        def put(value):
            def patch(act, hook):
                act = act.clone()
                act[:, q] = value
                return act
            return patch

        patched = bridge.run_with_hooks(tokens, fwd_hooks=[(hook, put(shifted[hook][:, q - shift]))])
        control = bridge.run_with_hooks(tokens, fwd_hooks=[(hook, put(other[hook][:, q]))])
    top, top_control = patched[:, q].argmax(-1), control[:, q].argmax(-1)
    return dict(clean=(top == tokens[:, q - 1]).float().mean().item(),
                moved=(top == tokens[:, q - shift - 1]).float().mean().item(),
                control=(top_control == tokens[:, q - 1]).float().mean().item())
