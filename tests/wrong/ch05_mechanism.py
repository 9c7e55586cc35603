from wrong import Case

_ABLATE = '''
def mean_ablation_losses(bridge, tokens, hook_names):
    targets, mask = previous_token_targets(tokens)
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens)
        losses = {}
        for name in hook_names:
%s
            logits = bridge.run_with_hooks(
                tokens, fwd_hooks=[(name, lambda act, hook, new=new: new.expand_as(act))])
            losses[name] = %s
    return losses
'''
_GUARD = '''            if name not in cache:
                raise KeyError(name)'''
_MEAN = "            new = cache[name].mean(dim=0, keepdim=True)"
_LOSS = "masked_loss(logits, targets, mask).item()"

_CODE = "blocks.0.hook_attn_out"
# patch_position_code with one design choice left open: the hook, the donor's value,
# the control's value, and an optional second hook patched the same way.
_PATCH = '''
def patch_position_code(bridge, tokens, filler, q, shift):
    hook_name = "%s"
    pick_donor = lambda shifted, other, clean: %s
    pick_control = lambda shifted, other, clean: %s
    names = [n for n in (hook_name, %s) if n]
    n = tokens.shape[1]
    donor = filler.clone()
    donor[:, 1:n - shift] = tokens[:, shift + 1:]
    results = {}
    with torch.no_grad():
        _, shifted_cache = bridge.run_with_cache(donor)
        _, other_cache = bridge.run_with_cache(filler)
        _, clean_cache = bridge.run_with_cache(tokens)

        def run(pick):
            def hook_for(name):
                shifted, other, clean = shifted_cache[name], other_cache[name], clean_cache[name]
                value = pick(shifted, other, clean)
                def patch(act, hook):
                    act = act.clone()
                    act[:, q] = value
                    return act
                return (name, patch)
            return bridge.run_with_hooks(tokens, fwd_hooks=[hook_for(m) for m in names])[:, q].argmax(-1)

        top = run(pick_donor)
        control = run(pick_control)
    return dict(clean=(top == tokens[:, q - 1]).float().mean().item(),
                moved=(top == tokens[:, q - shift - 1]).float().mean().item(),
                control=(control == tokens[:, q - 1]).float().mean().item())
'''

CASES = {
    "neurons_span_includes_bos": Case(
        answers={"position_neurons": '''
def position_neurons(post, min_range):
    profile = post.mean(dim=0)
    span = profile.max(dim=0).values - profile.min(dim=0).values   # position 0 included
    return profile, torch.nonzero(span > min_range).flatten()
'''},
        loses={"test_position_neurons": 2},
        says="which differs only at position 0"),
    "neurons_std_not_span": Case(
        answers={"position_neurons": '''
def position_neurons(post, min_range):
    profile = post.mean(dim=0)
    return profile, torch.nonzero(profile[1:].std(dim=0) > min_range).flatten()
'''},
        loses={"test_position_neurons": 2},
        says="not the standard deviation"),
    "threshold_index_not_position": Case(
        answers={"neuron_threshold": '''
def neuron_threshold(profile, tol=0.05):
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
    return direction, int(past.nonzero()[0])          # an index into p, not a position
'''},
        loses={"test_neuron_threshold": 3},
        says="report a position (profile index), not an index into profile[1:]"),
    "threshold_no_tolerance": Case(
        answers={"neuron_threshold": '''
def neuron_threshold(profile, tol=0.05):
    p = profile[1:].double()
    steps = p[1:] - p[:-1]
    if bool((steps >= 0).all()):
        direction = 1
    elif bool((steps <= 0).all()):
        direction = -1
    else:
        return 0, None
    middle = (p.max() + p.min()) / 2
    past = p > middle if direction == 1 else p < middle
    return direction, int(past.nonzero()[0]) + 1
'''},
        loses={"test_neuron_threshold": 3},
        says="allow steps against the direction up to tol * (max - min)"),
    "threshold_direction_from_steps_only": Case(
        answers={"neuron_threshold": '''
def neuron_threshold(profile, tol=0.05):
    p = profile[1:].double()
    steps = p[1:] - p[:-1]
    slack = tol * (p.max() - p.min())
    if bool((steps >= -slack).all()):          # a slow fall passes this test too
        direction = 1
    elif bool((steps <= slack).all()):
        direction = -1
    else:
        return 0, None
    middle = (p.max() + p.min()) / 2
    past = p > middle if direction == 1 else p < middle
    return direction, int(past.nonzero()[0]) + 1
'''},
        loses={"test_neuron_threshold": 3},
        says="decide the direction from the overall change"),
    "probe_without_intercept": Case(
        answers={"probe_r2": '''
def probe_r2(x_train, y_train, x_test, y_test):
    w = torch.linalg.lstsq(x_train.double(), y_train.double()[:, None]).solution
    y = y_test.double()
    prediction = (x_test.double() @ w).squeeze(1)
    return (1 - ((y - prediction) ** 2).sum() / ((y - y.mean()) ** 2).sum()).item()
'''},
        loses={"test_probe_r2": 3},
        says="add a bias column (an intercept)"),
    "probe_scored_on_training_rows": Case(
        answers={"probe_r2": '''
def probe_r2(x_train, y_train, x_test, y_test):
    X = torch.cat([x_train.double(), torch.ones(len(x_train), 1, dtype=torch.float64)], dim=1)
    w = torch.linalg.lstsq(X, y_train.double()[:, None]).solution
    y = y_train.double()
    prediction = (X @ w).squeeze(1)
    return (1 - ((y - prediction) ** 2).sum() / ((y - y.mean()) ** 2).sum()).item()
'''},
        loses={"test_probe_r2": 3},
        says="score the probe on the test rows"),
    "ablation_with_zeros": Case(
        answers={"mean_ablation_losses": _ABLATE % (
            _GUARD + "\n            new = torch.zeros_like(cache[name][:1])", _LOSS)},
        loses={"test_mean_ablation_losses": 4},
        says="that is what *zeros* do"),
    "ablation_skips_unknown_hooks": Case(
        answers={"mean_ablation_losses": _ABLATE % (
            "            if name not in cache:\n                continue\n" + _MEAN, _LOSS)},
        loses={"test_mean_ablation_losses": 4},
        says="went through silently"),
    "ablation_scores_current_token": Case(
        answers={"mean_ablation_losses": _ABLATE % (
            _GUARD + "\n" + _MEAN, "masked_loss(logits, tokens, mask).item()")},
        loses={"test_mean_ablation_losses": 4},
        says="score the run with the previous-token targets and mask"),
    "ablation_mean_over_positions_too": Case(  # the exact mean ablation in the visible check
        answers={"mean_ablation_losses": _ABLATE % (
            _GUARD + "\n            new = cache[name].mean(dim=(0, 1), keepdim=True)", _LOSS)},
        loses={"test_mean_ablation_losses": 4},
        says="Something differs from a plain mean ablation"),
    "probe_r2_with_training_mean": Case(
        answers={"probe_r2": '''
def probe_r2(x_train, y_train, x_test, y_test):
    X = torch.cat([x_train.double(), torch.ones(len(x_train), 1, dtype=torch.float64)], dim=1)
    w = torch.linalg.lstsq(X, y_train.double()[:, None]).solution
    y = y_test.double()
    prediction = (torch.cat([x_test.double(), torch.ones(len(x_test), 1, dtype=torch.float64)], dim=1) @ w).squeeze(1)
    return (1 - ((y - prediction) ** 2).sum() / ((y - y_train.double().mean()) ** 2).sum()).item()
'''},
        loses={"test_probe_r2": 3},
        says="training rows' mean"),
    "ablation_hooks_bind_late": Case(
        answers={"mean_ablation_losses": '''
def mean_ablation_losses(bridge, tokens, hook_names):
    targets, mask = previous_token_targets(tokens)
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens)
        hooks = []
        for name in hook_names:
            if name not in cache:
                raise KeyError(name)
            mean = cache[name].mean(dim=0, keepdim=True)
            hooks.append((name, lambda act, hook: mean.expand_as(act)))
        losses = {}
        for name, hook in hooks:
            logits = bridge.run_with_hooks(tokens, fwd_hooks=[(name, hook)])
            losses[name] = masked_loss(logits, targets, mask).item()
    return losses
'''},
        loses={"test_mean_ablation_losses": 4},
        says="late binding"),
    # 5.5: the experiment's design. _PATCH fills in (hook, donor value, control value, extra hooks)
    "patch_embedding_not_code": Case(  # the token at q is the same in both runs: nothing changes
        answers={"patch_position_code": _PATCH % ("hook_embed", "shifted[:, q - shift]", "other[:, q]", "")},
        loses={"test_patch_position_code": 4}, says="did not reach what layer 1 reads"),
    "patch_donor_at_q_not_q_minus_shift": Case(
        answers={"patch_position_code": _PATCH % (_CODE, "shifted[:, q]", "other[:, q]", "")},
        loses={"test_patch_position_code": 4}, says="not from another sequence or from the donor's position q"),
    "patch_control_from_same_sequence": Case(
        answers={"patch_position_code": _PATCH % (_CODE, "shifted[:, q - shift]", "clean[:, q]", "")},
        loses={"test_patch_position_code": 4}, says="resampling from the same sequence"),
    "patch_mlp0_only": Case(
        answers={"patch_position_code": _PATCH % ("blocks.0.hook_mlp_out", "shifted[:, q - shift]",
                                                  "other[:, q]", "")},
        loses={"test_patch_position_code": 4}, says="patching only part of layer 0's output"),
    "patch_control_is_a_mean": Case(  # the same 0% as a resample on the first batch; a filler
        answers={"patch_position_code": _PATCH % (_CODE, "shifted[:, q - shift]",  # that keeps layer
                                                  "other[:, q].mean(0)", "")},  # 0's output shows it
        loses={"test_patch_position_code": 4}, says="the control patch changes nothing, so control should be"),
    "patch_control_scored_on_patched_run": Case(  # examiner's class: a value wrong controls also give
        answers={"patch_position_code": _PATCH.replace(
            "control=(control == tokens[:, q - 1])", "control=(top == tokens[:, q - 1])")
            % (_CODE, "shifted[:, q - shift]", "other[:, q]", "")},
        loses={"test_patch_position_code": 4}, says="is scored on the patched run's output"),
    "probe_float32_normal_equations": Case(  # examiner: right on well-conditioned inputs only
        answers={"probe_r2": '''
def probe_r2(x_train, y_train, x_test, y_test):
    X = torch.cat([x_train.float(), torch.ones(len(x_train), 1)], 1)
    w = torch.inverse(X.T @ X) @ X.T @ y_train.float()
    Xt = torch.cat([x_test.float(), torch.ones(len(x_test), 1)], 1)
    pred = Xt @ w
    y = y_test.float()
    return (1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()).item()
'''},
        loses={"test_probe_r2": 3}, says="ill-conditioned"),
    # correct alternatives: other hook points that hold layer 0's whole output at q
    "patch_resid_after_layer0": Case(
        answers={"patch_position_code": _PATCH % ("blocks.0.hook_resid_post", "shifted[:, q - shift]",
                                                  "other[:, q]", "")},
        loses={}),
    "patch_resid_pre_layer1": Case(
        answers={"patch_position_code": _PATCH % ("blocks.1.hook_resid_pre", "shifted[:, q - shift]",
                                                  "other[:, q]", "")},
        loses={}),
    "patch_attn0_and_mlp0": Case(
        answers={"patch_position_code": _PATCH % (_CODE, "shifted[:, q - shift]", "other[:, q]",
                                                  '"blocks.0.hook_mlp_out"')},
        loses={}),
    "probe_squared_correlation": Case(
        answers={"probe_r2": '''
def probe_r2(x_train, y_train, x_test, y_test):
    X = torch.cat([x_train.double(), torch.ones(len(x_train), 1, dtype=torch.float64)], 1)
    w = torch.linalg.lstsq(X, y_train.double()[:, None]).solution
    Xt = torch.cat([x_test.double(), torch.ones(len(x_test), 1, dtype=torch.float64)], 1)
    pred = (Xt @ w).squeeze(1)
    r = torch.corrcoef(torch.stack([pred, y_test.double()]))[0, 1]
    return (r * r).item()
'''},
        loses={"test_probe_r2": 3},
        says='squared correlation'),  # examiner: squared correlation of prediction and truth
    "probe_explained_variance": Case(
        answers={"probe_r2": '''
def probe_r2(x_train, y_train, x_test, y_test):
    X = torch.cat([x_train.double(), torch.ones(len(x_train), 1, dtype=torch.float64)], 1)
    w = torch.linalg.lstsq(X, y_train.double()[:, None]).solution
    Xt = torch.cat([x_test.double(), torch.ones(len(x_test), 1, dtype=torch.float64)], 1)
    res = y_test.double() - (Xt @ w).squeeze(1)
    return (1 - res.var() / y_test.double().var()).item()
'''},
        loses={"test_probe_r2": 3},
        says='explained variance'),  # examiner: explained variance (residual mean removed)
    "probe_clipped_at_zero": Case(
        answers={"probe_r2": '''
def probe_r2(x_train, y_train, x_test, y_test):
    X = torch.cat([x_train.double(), torch.ones(len(x_train), 1, dtype=torch.float64)], 1)
    w = torch.linalg.lstsq(X, y_train.double()[:, None]).solution
    Xt = torch.cat([x_test.double(), torch.ones(len(x_test), 1, dtype=torch.float64)], 1)
    y = y_test.double(); pred = (Xt @ w).squeeze(1)
    return max(0.0, (1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()).item())
'''},
        loses={"test_probe_r2": 3},
        says='do not clip it at 0'),  # examiner: clipped at 0 (max(0, R2))
    "probe_ridge": Case(
        answers={"probe_r2": '''
def probe_r2(x_train, y_train, x_test, y_test):
    X = torch.cat([x_train.double(), torch.ones(len(x_train), 1, dtype=torch.float64)], 1)
    w = torch.linalg.solve(X.T @ X + torch.eye(X.shape[1], dtype=torch.float64), X.T @ y_train.double())
    Xt = torch.cat([x_test.double(), torch.ones(len(x_test), 1, dtype=torch.float64)], 1)
    y = y_test.double(); pred = Xt @ w
    return (1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()).item()
'''},
        loses={"test_probe_r2": 3},
        says='Something in the fit or the prediction is off'),  # examiner: ridge lambda=1
    "probe_centred_train_only": Case(
        answers={"probe_r2": '''
def probe_r2(x_train, y_train, x_test, y_test):
    xm = x_train.mean(0); ym = y_train.mean()
    w = torch.linalg.lstsq(x_train - xm, (y_train - ym)[:, None]).solution.squeeze(1)
    pred = x_test @ w + ym
    return float(1 - ((y_test - pred) ** 2).sum() / ((y_test - y_test.mean()) ** 2).sum())
'''},
        loses={"test_probe_r2": 3},
        says='Something in the fit or the prediction is off'),  # examiner: float32 normal equations (no bias via centring train only)
    "neurons_end_to_end": Case(
        answers={"position_neurons": '''
def position_neurons(post, min_range):
    profile = post.mean(0)
    span = (profile[-1] - profile[1]).abs()
    return profile, torch.nonzero(span > min_range).flatten()
'''},
        loses={"test_position_neurons": 2},
        says='not the change from the first to the last position'),  # examiner: span = |last - first| (end-to-end change)
    "neurons_distance_from_position_1": Case(
        answers={"position_neurons": '''
def position_neurons(post, min_range):
    profile = post.mean(0)
    span = (profile[1:] - profile[1]).abs().max(0).values
    return profile, torch.nonzero(span > min_range).flatten()
'''},
        loses={"test_position_neurons": 2},
        says='not the largest distance from position 1'),  # examiner: span = max over positions 1.. minus value at position 1
    "ablation_mean_of_other_batch": Case(
        answers={"mean_ablation_losses": '''
def mean_ablation_losses(bridge, tokens, hook_names):
    targets, mask = previous_token_targets(tokens)
    losses = {}
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens)
        for name in hook_names:
            if name not in cache:
                raise KeyError(name)

            other = torch.randint(1, int(tokens.max()) + 1, tokens.shape, generator=torch.Generator().manual_seed(0))
            other[:, 0] = 0
            _, oc = bridge.run_with_cache(other, names_filter=lambda n, name=name: n == name)
            m = oc[name].mean(0, keepdim=True)
            logits = bridge.run_with_hooks(tokens, fwd_hooks=[(name, lambda act, hook, m=m: m.expand_as(act))])
            losses[name] = masked_loss(logits, targets, mask).item()

    return losses
'''},
        loses={"test_mean_ablation_losses": 4},
        says='Something differs from a plain mean ablation'),  # examiner: mean from a different (fresh) batch
    "ablation_median": Case(
        answers={"mean_ablation_losses": '''
def mean_ablation_losses(bridge, tokens, hook_names):
    targets, mask = previous_token_targets(tokens)
    losses = {}
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens)
        for name in hook_names:
            if name not in cache:
                raise KeyError(name)

            m = cache[name].median(dim=0, keepdim=True).values
            logits = bridge.run_with_hooks(tokens, fwd_hooks=[(name, lambda act, hook, m=m: m.expand_as(act))])
            losses[name] = masked_loss(logits, targets, mask).item()

    return losses
'''},
        loses={"test_mean_ablation_losses": 4},
        says='Something differs from a plain mean ablation'),  # examiner: median over batch
    "ablation_first_half": Case(
        answers={"mean_ablation_losses": '''
def mean_ablation_losses(bridge, tokens, hook_names):
    targets, mask = previous_token_targets(tokens)
    losses = {}
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens)
        for name in hook_names:
            if name not in cache:
                raise KeyError(name)

            m = cache[name][: len(tokens) // 2].mean(0, keepdim=True)
            logits = bridge.run_with_hooks(tokens, fwd_hooks=[(name, lambda act, hook, m=m: m.expand_as(act))])
            losses[name] = masked_loss(logits, targets, mask).item()

    return losses
'''},
        loses={"test_mean_ablation_losses": 4},
        says='Something differs from a plain mean ablation'),  # examiner: mean over the first half of the batch only
}



HARMLESS = {
    "probe_qr_float64": {"probe_r2": '''
def probe_r2(x_train, y_train, x_test, y_test):
    X = torch.cat([x_train.double(), torch.ones(len(x_train), 1, dtype=torch.float64)], 1)
    Q, R = torch.linalg.qr(X)
    w = torch.linalg.solve_triangular(R, Q.T @ y_train.double()[:, None], upper=True).squeeze(1)
    Xt = torch.cat([x_test.double(), torch.ones(len(x_test), 1, dtype=torch.float64)], 1)
    r = y_test.double() - Xt @ w
    yc = y_test.double() - y_test.double().mean()
    return float(1 - r.pow(2).sum() / yc.pow(2).sum())
'''},
    "probe_pinv_normal_equations": {"probe_r2": '''
def probe_r2(x_train, y_train, x_test, y_test):
    X = torch.nn.functional.pad(x_train.double(), (0, 1), value=1.0)
    w = torch.linalg.pinv(X.T @ X) @ (X.T @ y_train.double())
    pred = torch.nn.functional.pad(x_test.double(), (0, 1), value=1.0) @ w
    y = y_test.double()
    return float(1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum())
'''},  # examiner: CORRECT: normal equations via solve
    "probe_centred_pinv": {"probe_r2": '''
def probe_r2(x_train, y_train, x_test, y_test):
    xm, ym = x_train.double().mean(0), y_train.double().mean()
    w = torch.linalg.pinv(x_train.double() - xm) @ (y_train.double() - ym)
    pred = (x_test.double() - xm) @ w + ym
    y = y_test.double()
    return float(1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum())
'''},  # examiner: CORRECT: centred data + pinv
    "neurons_aminmax": {"position_neurons": '''
def position_neurons(post, min_range):
    profile = post.mean(dim=0)
    lo, hi = torch.aminmax(profile[1:], dim=0)
    return profile, torch.where(hi - lo > min_range)[0]
'''},  # examiner: CORRECT: aminmax + where
    "ablation_in_place_hook": {"mean_ablation_losses": '''
def mean_ablation_losses(bridge, tokens, hook_names):
    targets, mask = previous_token_targets(tokens)
    losses = {}
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens)
        for name in hook_names:
            if name not in cache:
                raise KeyError(name)

            m = cache[name].mean(0)
            def hook(act, hook, m=m):
                act[:] = m
            logits = bridge.run_with_hooks(tokens, fwd_hooks=[(name, hook)])
            losses[name] = float(masked_loss(logits, targets, mask))

    return losses
'''},  # examiner: CORRECT: in-place act[:] = mean, hook returns None
    "neurons_amax_amin_nonzero": {"position_neurons": '''
def position_neurons(post, min_range):
    profile = post.mean(dim=0)
    span = profile[1:].amax(dim=0) - profile[1:].amin(dim=0)
    return profile, (span > min_range).nonzero().squeeze(1)
'''},
    "neurons_by_loop": {"position_neurons": '''
def position_neurons(post, min_range):
    profile = post.sum(dim=0) / post.shape[0]
    keep = []
    for i in range(profile.shape[1]):
        column = profile[1:, i]
        if float(column.max() - column.min()) > min_range:
            keep.append(i)
    return profile, torch.tensor(keep, dtype=torch.long)
'''},
    "threshold_plain_python": {"neuron_threshold": '''
def neuron_threshold(profile, tol=0.05):
    p = [float(v) for v in profile[1:].double()]
    lo, hi = min(p), max(p)
    slack = tol * (hi - lo)
    steps = [b - a for a, b in zip(p, p[1:])]
    if p[-1] > p[0] and all(s >= -slack for s in steps):
        direction = 1
    elif p[-1] < p[0] and all(s <= slack for s in steps):
        direction = -1
    else:
        return 0, None
    middle = (lo + hi) / 2
    for i, v in enumerate(p):
        if (v > middle) if direction == 1 else (v < middle):
            return direction, i + 1
'''},
    "threshold_falling_as_negated_rising": {"neuron_threshold": '''
def neuron_threshold(profile, tol=0.05):
    p = profile[1:].double()
    slack = tol * (p.max() - p.min())
    for direction, v in ((1, p), (-1, -p)):
        if v[-1] > v[0] and bool((torch.diff(v) >= -slack).all()):
            middle = (v.max() + v.min()) / 2
            return direction, int(torch.argmax((v > middle).int())) + 1
    return 0, None
'''},
    "threshold_min_max_of_steps": {"neuron_threshold": '''
def neuron_threshold(profile, tol=0.05):
    p = profile[1:].double()
    lo, hi = p.min(), p.max()
    slack = tol * (hi - lo)
    rising = p[-1] > p[0] and p.diff().min() >= -slack
    falling = p[-1] < p[0] and p.diff().max() <= slack
    if not (rising or falling):
        return 0, None
    past = p > (lo + hi) / 2 if rising else p < (lo + hi) / 2
    return (1 if rising else -1), past.tolist().index(True) + 1
'''},
    "probe_numpy_lstsq": {"probe_r2": '''
def probe_r2(x_train, y_train, x_test, y_test):
    def design(x):
        x = x.double().numpy()
        return np.hstack([x, np.ones((len(x), 1))])
    w, *_ = np.linalg.lstsq(design(x_train), y_train.double().numpy(), rcond=None)
    y = y_test.double().numpy()
    residual = ((y - design(x_test) @ w) ** 2).sum()
    return float(1 - residual / ((y - y.mean()) ** 2).sum())
'''},
    "ablation_repeat_mean": {"mean_ablation_losses": '''
def mean_ablation_losses(bridge, tokens, hook_names):
    targets, mask = previous_token_targets(tokens)
    _, cache = bridge.run_with_cache(tokens)
    losses = {}
    for name in hook_names:
        activation = cache[name]
        mean = activation.sum(dim=0, keepdim=True) / activation.shape[0]

        def replace(act, hook, mean=mean):
            return mean.repeat(act.shape[0], *([1] * (act.dim() - 1)))

        with torch.no_grad():
            logits = bridge.run_with_hooks(tokens, fwd_hooks=[(name, replace)])
        losses[name] = masked_loss(logits, targets, mask).item()
    return losses
'''},
    "ablation_one_name_at_a_time": {"mean_ablation_losses": '''
def mean_ablation_losses(bridge, tokens, hook_names):
    targets, mask = previous_token_targets(tokens)
    losses = {}
    with torch.no_grad():
        for name in hook_names:
            _, cache = bridge.run_with_cache(tokens, names_filter=name)
            if name not in cache:
                raise KeyError(name)
            mean = cache[name].mean(dim=0)
            logits = bridge.run_with_hooks(
                tokens, fwd_hooks=[(name, lambda act, hook, mean=mean: mean.expand(act.shape).clone())])
            losses[name] = float(masked_loss(logits, targets, mask))
    return losses
'''},
}
