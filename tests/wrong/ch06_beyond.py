from wrong import Case

_CODE = "blocks.0.hook_resid_post"
# position_only_patch with the design left open: the hook, the edit at the patched place,
# the places patched, the control's value and where the means come from.
_PATCH = '''
def position_only_patch(bridge, tokens, filler, q, q_code):
    hook = "%s"
    with torch.no_grad():
        _, cache = bridge.run_with_cache(filler)
        _, own = bridge.run_with_cache(tokens)
        mean = %s[hook].mean(0)
        edit = lambda x: %s
        control_value = lambda x: %s

        def run(edit, where):
            def patch(act, hook):
                act = act.clone()
                act[:, where] = edit(act[:, where])
                return act
            return bridge.run_with_hooks(tokens, fwd_hooks=[(hook, patch)])[:, q].argmax(-1)
        top, control = run(edit, %s), run(control_value, q)
    return dict(clean=(top == tokens[:, q - 1]).float().mean().item(),
                moved=(top == tokens[:, q_code - 1]).float().mean().item(),
                control=(control == tokens[:, q - 1]).float().mean().item())
'''
_ADD, _CONTROL = "x + mean[q_code] - mean[q]", "cache[hook][:, q]"


def _patch(hook=_CODE, means="cache", edit=_ADD, control=_CONTROL, where="q"):
    return {"position_only_patch": _PATCH % (hook, means, edit, control, where)}


CASES = {
    # 6.5: the experiment's design, one choice wrong at a time
    "position_patch_no_control": Case(answers=_patch(control="x"),
                                      loses={"test_position_only_patch": 4}, says="tests nothing"),
    "position_patch_control_same_sequence": Case(answers=_patch(control="own[hook][:, q]"),
                                                 loses={"test_position_only_patch": 4}, says="tests nothing"),
    "position_patch_embedding": Case(answers=_patch(hook="hook_embed"),
                                     loses={"test_position_only_patch": 4}, says="tests nothing"),
    "position_patch_before_mlp0": Case(answers=_patch(hook="blocks.0.hook_attn_out"),
                                       loses={"test_position_only_patch": 4}, says="Patched before MLP0"),
    "position_patch_after_layer1": Case(answers=_patch(hook="blocks.1.hook_resid_post"),
                                        loses={"test_position_only_patch": 4}, says="after layer 1 (too late)"),
    "position_patch_at_q_code": Case(answers=_patch(where="q_code"),
                                     loses={"test_position_only_patch": 4}, says="at position q_code instead of q"),
    "position_patch_every_position": Case(answers=_patch(where="slice(None)"),
                                          loses={"test_position_only_patch": 4}, says="patch every position"),
    "position_patch_reversed": Case(answers=_patch(edit="x + mean[q] - mean[q_code]"),
                                    loses={"test_position_only_patch": 4}, says="wrong way round"),
    "position_patch_replaced_by_mean": Case(answers=_patch(edit="mean[q_code].expand_as(x)"),
                                            loses={"test_position_only_patch": 4}, says="replaced the residual by the mean"),
    # correct alternatives: the same code at another name, or nearly all of it; means over the batch itself
    "position_patch_resid_pre_layer1": Case(answers=_patch(hook="blocks.1.hook_resid_pre"), loses={}),
    "position_patch_mlp0_out": Case(answers=_patch(hook="blocks.0.hook_mlp_out"), loses={},
                                    notes="the mean code's difference sits almost all in MLP0's output"),
    "position_patch_means_from_tokens": Case(answers=_patch(means="own"), loses={}),
    # the control on a filler whose code at q is the clean one (chapter 5's construction)
    "position_patch_control_is_a_mean": Case(answers=_patch(control="mean[q].expand_as(x)"),
                                             loses={"test_position_only_patch": 4},
                                             says="not a mean over sequences"),
    "position_patch_control_at_q_code": Case(answers=_patch(control="cache[hook][:, q_code]"),
                                             loses={"test_position_only_patch": 4},
                                             says="not at q_code"),
    "accuracy_against_current_token": Case(
        answers={"accuracy_by_position": '''
def accuracy_by_position(logits, tokens):
    correct = (logits.argmax(dim=-1) == tokens).float().mean(dim=0)   # the token at q, not q - 1
    correct[0] = math.nan
    return correct
'''},
        loses={"test_accuracy_by_position": 2},
        says="not with the token at q"),
    "accuracy_drops_position_zero": Case(
        answers={"accuracy_by_position": '''
def accuracy_by_position(logits, tokens):
    return (logits[:, 1:].argmax(dim=-1) == tokens[:, :-1]).float().mean(dim=0)
'''},
        loses={"test_accuracy_by_position": 2},
        says="keep position 0 at index 0"),
    "variance_unbiased": Case(
        answers={"variance_by_position": '''
def variance_by_position(x):
    return x.var(dim=0).mean(dim=-1)          # divides by batch - 1
'''},
        loses={"test_variance_by_position": 2},
        says="unbiased variance"),
    "variance_across_features": Case(
        answers={"variance_by_position": '''
def variance_by_position(x):
    return x.var(dim=-1, unbiased=False).mean(dim=0)   # the spread within one vector
'''},
        loses={"test_variance_by_position": 2},
        says="not across the features"),
    "slope_against_log_q": Case(
        answers={"log_log_slope": '''
def log_log_slope(values, start=1):
    q = torch.arange(start, len(values), dtype=torch.float64)
    X = torch.stack([torch.log(q), torch.ones_like(q)], dim=1)     # log q, not log(q + 1)
    y = torch.log(values[start:].double())
    return torch.linalg.lstsq(X, y[:, None]).solution[0, 0].item()
'''},
        loses={"test_log_log_slope": 2},
        says="fit against log(q + 1)"),
    "slope_ignores_start": Case(
        answers={"log_log_slope": '''
def log_log_slope(values, start=1):
    q = torch.arange(1, len(values), dtype=torch.float64)           # always from 1
    X = torch.stack([torch.log(q + 1), torch.ones_like(q)], dim=1)
    y = torch.log(values[1:].double())
    return torch.linalg.lstsq(X, y[:, None]).solution[0, 0].item()
'''},
        loses={"test_log_log_slope": 2},
        says="use the `start` argument"),
    "entropy_nan_from_zeros": Case(
        answers={"attention_entropy": '''
def attention_entropy(pattern):
    return -(pattern * pattern.log()).sum(dim=-1).mean(dim=0)     # 0 * log 0 = nan
'''},
        loses={"test_attention_entropy": 2},
        says="count 0 log 0 as 0"),
    "entropy_in_bits": Case(
        answers={"attention_entropy": '''
def attention_entropy(pattern):
    return -torch.xlogy(pattern, pattern).sum(dim=-1).mean(dim=0) / math.log(2)
'''},
        loses={"test_attention_entropy": 2},
        says="use the natural log"),
    "entropy_normalised": Case(
        answers={"attention_entropy": '''
def attention_entropy(pattern):
    h = -torch.xlogy(pattern, pattern).sum(dim=-1).mean(dim=0)
    return h / torch.log(torch.arange(1, pattern.shape[1] + 1, dtype=h.dtype)).clamp_min(1e-9)
'''},
        loses={"test_attention_entropy": 2},
        says="do not divide by log(q + 1)"),
    "slope_endpoints_only": Case(
        answers={"log_log_slope": '''
def log_log_slope(values, start=1):
    n = len(values)
    return (math.log(float(values[-1])) - math.log(float(values[start]))) / (math.log(n) - math.log(start + 1))
'''},
        loses={"test_log_log_slope": 2},
        says='two end points only'),  # examiner: endpoints only
    "slope_mean_of_consecutive": Case(
        answers={"log_log_slope": '''
def log_log_slope(values, start=1):
    v = torch.log(values[start:].double()); x = torch.log(torch.arange(start, len(values), dtype=torch.float64) + 1)
    return ((v[1:] - v[:-1]) / (x[1:] - x[:-1])).mean().item()
'''},
        loses={"test_log_log_slope": 2},
        says='averaged the slopes between consecutive points'),  # examiner: mean of consecutive log-log slopes
    "slope_first_two_points": Case(
        answers={"log_log_slope": '''
def log_log_slope(values, start=1):
    return (math.log(float(values[start + 1])) - math.log(float(values[start]))) / (math.log(start + 2) - math.log(start + 1))
'''},
        loses={"test_log_log_slope": 2},
        says='first two points only'),  # examiner: first two points only
    "slope_weighted": Case(
        answers={"log_log_slope": '''
def log_log_slope(values, start=1):
    q = torch.arange(start, len(values), dtype=torch.float64)
    x = torch.log(q + 1); y = torch.log(values[start:].double()); w = values[start:].double()
    xm = (w * x).sum() / w.sum(); ym = (w * y).sum() / w.sum()
    return float((w * (x - xm) * (y - ym)).sum() / (w * (x - xm) ** 2).sum())
'''},
        loses={"test_log_log_slope": 2},
        says='Something in the fit is off'),  # examiner: weighted fit (weights = values)
    "slope_x_y_swapped": Case(
        answers={"log_log_slope": '''
def log_log_slope(values, start=1):
    q = torch.arange(start, len(values), dtype=torch.float64)
    x = torch.log(values[start:].double()); y = torch.log(q + 1)
    X = torch.stack([x, torch.ones_like(x)], 1)
    return torch.linalg.lstsq(X, y[:, None]).solution[0, 0].item()
'''},
        loses={"test_log_log_slope": 2},
        says='x and y are swapped'),  # examiner: x and y swapped (regress log q on log v)
    "slope_semi_log": Case(
        answers={"log_log_slope": '''
def log_log_slope(values, start=1):
    q = torch.arange(start, len(values), dtype=torch.float64)
    X = torch.stack([torch.log(q + 1), torch.ones_like(q)], 1)
    return torch.linalg.lstsq(X, values[start:].double()[:, None]).solution[0, 0].item()
'''},
        loses={"test_log_log_slope": 2},
        says='take log(values) too'),  # examiner: fits values on log(q+1) (semi-log)
    "variance_uncentred": Case(
        answers={"variance_by_position": '''
def variance_by_position(x):
    return (x.double() ** 2).mean(0).mean(-1).float()
'''},
        loses={"test_variance_by_position": 2},
        says='uncentred second moment'),  # examiner: uncentred second moment
    "variance_centres_in_place": Case(  # examiner: the caller's activations are centred too
        answers={"variance_by_position": '''
def variance_by_position(x):
    x -= x.mean(dim=0, keepdim=True)
    return (x ** 2).mean(dim=0).mean(dim=-1)
'''},
        loses={"test_variance_by_position": 2}, says="variance_by_position changed `x` in place"),
}


HARMLESS = {
    "variance_second_moment_minus_mean_squared": {"variance_by_position": '''
def variance_by_position(x):
    x = x.double()
    return ((x ** 2).mean(0) - x.mean(0) ** 2).mean(-1)
'''},
    "slope_covariance_log10": {"log_log_slope": '''
def log_log_slope(values, start=1):
    q = torch.arange(start, len(values), dtype=torch.float64)
    x = torch.log10(q + 1); y = torch.log10(values[start:].double())
    return float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())
'''},  # examiner: CORRECT: covariance formula, log10
    "slope_numpy_polyfit": {"log_log_slope": '''
def log_log_slope(values, start=1):
    q = np.arange(start, len(values))
    return float(np.polyfit(np.log(q + 1), np.log(values[start:].double().numpy()), 1)[0])
'''},
    "slope_normal_equations": {"log_log_slope": '''
def log_log_slope(values, start=1):
    x = torch.log(torch.arange(start + 1, len(values) + 1, dtype=torch.float64))
    y = values[start:].double().log()
    X = torch.stack([x, torch.ones_like(x)], dim=1)
    return torch.linalg.solve(X.T @ X, X.T @ y)[0].item()
'''},
    "accuracy_by_loop": {"accuracy_by_position": '''
def accuracy_by_position(logits, tokens):
    predicted = logits.argmax(dim=-1)
    out = [float("nan")]
    for q in range(1, tokens.shape[1]):
        out.append((predicted[:, q] == tokens[:, q - 1]).float().mean().item())
    return torch.tensor(out)
'''},
    "accuracy_filled_with_nan": {"accuracy_by_position": '''
def accuracy_by_position(logits, tokens):
    accuracy = torch.full((tokens.shape[1],), float("nan"))
    accuracy[1:] = (logits[:, 1:].argmax(-1) == tokens[:, :-1]).float().mean(0)
    return accuracy
'''},
    "accuracy_numpy": {"accuracy_by_position": '''
def accuracy_by_position(logits, tokens):
    hits = (logits.argmax(-1)[:, 1:] == tokens[:, :-1]).numpy()
    return torch.tensor(np.concatenate([[np.nan], hits.mean(axis=0)]), dtype=torch.float32)
'''},
    "variance_centred_by_hand": {"variance_by_position": '''
def variance_by_position(x):
    x = x.double()
    return ((x - x.mean(dim=0)) ** 2).mean(dim=0).mean(dim=-1).float()
'''},
    "variance_var_mean_correction_0": {"variance_by_position": '''
def variance_by_position(x):
    variance, _ = torch.var_mean(x.double(), dim=0, correction=0)
    return variance.mean(-1).float()
'''},
    "variance_moments": {"variance_by_position": '''
def variance_by_position(x):
    x = x.double()
    return ((x ** 2).mean(0) - x.mean(0) ** 2).mean(-1).float()
'''},
    "entropy_special_entr": {"attention_entropy": '''
def attention_entropy(pattern):
    return torch.special.entr(pattern.double()).sum(dim=-1).mean(dim=0).float()
'''},
    "entropy_nan_to_num": {"attention_entropy": '''
def attention_entropy(pattern):
    p = pattern.double()
    return (-(p * p.log()).nan_to_num(0.0).sum(-1)).mean(0).float()
'''},
    "entropy_xlogy": {"attention_entropy": '''
def attention_entropy(pattern):
    return -torch.special.xlogy(pattern, pattern).sum(-1).mean(0)
'''},
}
