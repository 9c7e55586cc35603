from wrong import Case

_GRID = '''
    cs = torch.logspace(-2, 3, 50001, dtype=torch.float64)
    errors = ((cs[:, None] / (cs[:, None] + q) - w) ** 2).sum(dim=1)
    c = cs[errors.argmin()]
'''

_C = '''
def c_from_weights(bridge):
    with torch.no_grad():
        x = bridge.blocks[0].ln1(bridge.W_E.detach())
        q = x @ bridge.W_Q[0, 0] + bridge.b_Q[0, 0]
        k = x @ bridge.W_K[0, 0] + bridge.b_K[0, 0]
        scores = (q @ k.T).double() / math.sqrt(bridge.cfg.d_head)
        ordinary = torch.logsumexp(scores[:, 1:], dim=-1) - math.log(scores.shape[1] - 1)
        return (scores[:, 0] - ordinary).exp()
'''

CASES = {
    "bos_row_not_column": Case(
        answers={"bos_attention": '''
def bos_attention(pattern):
    return pattern[:, 0, :].mean(dim=0)      # what BOS looks at, not what looks at BOS
'''},
        loses={"test_bos_attention": 2},
        says="you read what BOS (query 0) attends to"),
    "bos_mean_over_keys": Case(
        answers={"bos_attention": '''
def bos_attention(pattern):
    return pattern.mean(dim=(0, 2))
'''},
        loses={"test_bos_attention": 2},
        says="you averaged over the key dimension"),
    "fit_includes_position_0": Case(
        answers={"fit_bos_curve": '''
def fit_bos_curve(bos_weights):
    w = bos_weights.double()
    q = torch.arange(len(bos_weights), dtype=torch.float64)   # position 0 included
''' + _GRID + '''
    return c.item(), (1 - errors.min() / ((w - w.mean()) ** 2).sum()).item()
'''},
        loses={"test_fit_bos_curve": 3},
        says="changing entry 0 (query position 0) changed your result"),
    "fit_positions_shifted": Case(
        answers={"fit_bos_curve": '''
def fit_bos_curve(bos_weights):
    w = bos_weights[1:].double()
    q = torch.arange(len(w), dtype=torch.float64)   # 0, 1, ... for positions 1, 2, ...
''' + _GRID + '''
    return c.item(), (1 - errors.min() / ((w - w.mean()) ** 2).sum()).item()
'''},
        loses={"test_fit_bos_curve": 3},
        says="your positions are shifted by one"),
    "fit_grid_stops_short": Case(  # right for moderate c; the extreme heads show it
        answers={"fit_bos_curve": '''
def fit_bos_curve(bos_weights):
    w = bos_weights[1:].double()
    q = torch.arange(1, len(bos_weights), dtype=torch.float64)
    cs = torch.linspace(0.1, 100, 1000, dtype=torch.float64)
    errors = ((cs[:, None] / (cs[:, None] + q) - w) ** 2).sum(dim=1)
    return cs[errors.argmin()].item(), (1 - errors.min() / ((w - w.mean()) ** 2).sum()).item()
'''},
        loses={"test_fit_bos_curve": 3},
        says="the search for c stops short"),
    "fit_grid_too_coarse": Case(
        answers={"fit_bos_curve": '''
def fit_bos_curve(bos_weights):
    w = bos_weights[1:].double()
    q = torch.arange(1, len(bos_weights), dtype=torch.float64)
    cs = torch.logspace(-2, 3, 60, dtype=torch.float64)
    errors = ((cs[:, None] / (cs[:, None] + q) - w) ** 2).sum(dim=1)
    return cs[errors.argmin()].item(), (1 - errors.min() / ((w - w.mean()) ** 2).sum()).item()
'''},
        loses={"test_fit_bos_curve": 3},
        says="the candidate values of c are too far apart"),
    "fit_returns_r2_first": Case(
        answers={"fit_bos_curve": '''
def fit_bos_curve(bos_weights):
    w = bos_weights[1:].double()
    q = torch.arange(1, len(bos_weights), dtype=torch.float64)
''' + _GRID + '''
    return (1 - errors.min() / ((w - w.mean()) ** 2).sum()).item(), c.item()
'''},
        loses={"test_fit_bos_curve": 3},
        says="the wrong way round"),
    "r2_uncentred": Case(
        answers={"fit_bos_curve": '''
def fit_bos_curve(bos_weights):
    w = bos_weights[1:].double()
    q = torch.arange(1, len(bos_weights), dtype=torch.float64)
''' + _GRID + '''
    return c.item(), (1 - errors.min() / (w ** 2).sum()).item()   # SS_tot not centred
'''},
        loses={"test_fit_bos_curve": 3},
        says="SS_tot the squared distance from the mean"),
    "offset_column_mean": Case(
        answers={"attention_by_offset": '''
def attention_by_offset(pattern, max_offset):
    return pattern.mean(dim=(0, 1))[:max_offset + 1]
'''},
        loses={"test_attention_by_offset": 3},
        says="you averaged each key *column*"),
    "offset_divides_by_n_ctx": Case(
        answers={"attention_by_offset": '''
def attention_by_offset(pattern, max_offset):
    n = pattern.shape[1]
    return torch.stack([pattern.diagonal(offset=-k, dim1=1, dim2=2).sum(-1).mean() / n
                        for k in range(max_offset + 1)])
'''},
        loses={"test_attention_by_offset": 3},
        says="you divided by all n_ctx queries"),
    "offset_above_diagonal": Case(
        answers={"attention_by_offset": '''
def attention_by_offset(pattern, max_offset):
    return torch.stack([pattern.diagonal(offset=k, dim1=1, dim2=2).mean()
                        for k in range(max_offset + 1)])
'''},
        loses={"test_attention_by_offset": 3},
        says="you read *above* the diagonal"),

    # 4.4: c per query token from the weights alone; slips, then correct alternatives
    "c_no_layer_norm": Case(
        answers={"c_from_weights": _C.replace("x = bridge.blocks[0].ln1(bridge.W_E.detach())",
                                              "x = bridge.W_E                     # no layer norm")},
        loses={"test_c_from_weights": 3}, says="through its layer norm first"),
    "c_no_scale": Case(
        answers={"c_from_weights": _C.replace(" / math.sqrt(bridge.cfg.d_head)", "")},
        loses={"test_c_from_weights": 3}, says="not divided by sqrt(d_head)"),
    "c_bos_among_ordinary": Case(
        answers={"c_from_weights": _C.replace("scores[:, 1:]", "scores").replace(
            "scores.shape[1] - 1", "scores.shape[1]")},
        loses={"test_c_from_weights": 3}, says="include BOS itself"),
    "c_geometric_mean": Case(
        answers={"c_from_weights": _C.replace(
            "torch.logsumexp(scores[:, 1:], dim=-1) - math.log(scores.shape[1] - 1)",
            "scores[:, 1:].mean(dim=-1)")},
        loses={"test_c_from_weights": 3}, says="arithmetic"),
    "c_transposed": Case(
        answers={"c_from_weights": _C.replace("scores = (q @ k.T)", "scores = (k @ q.T)")},
        loses={"test_c_from_weights": 3}, says="transposed"),
    "c_no_query_bias": Case(
        answers={"c_from_weights": _C.replace(" + bridge.b_Q[0, 0]", "")},
        loses={"test_c_from_weights": 3}, says="query bias b_Q"),
    "c_returns_gap": Case(
        answers={"c_from_weights": _C.replace("(scores[:, 0] - ordinary).exp()",
                                              "scores[:, 0] - ordinary")},
        loses={"test_c_from_weights": 3}, says="ln c, not c"),
    # not mistakes: the same c by other routes must keep full marks
    "c_scaled_by_sqrt_d_model": Case(  # equal to sqrt(d_head) on the checkpoint only
        answers={"c_from_weights": _C.replace("math.sqrt(bridge.cfg.d_head)", "math.sqrt(bridge.cfg.d_model)")},
        loses={"test_c_from_weights": 3}, says="you scaled the scores by sqrt(d_model)"),
    "c_layer_norm_by_hand_no_key_bias": Case(
        answers={"c_from_weights": '''
def c_from_weights(bridge):
    ln = bridge.blocks[0].ln1
    E = bridge.W_E.detach().double()
    centred = E - E.mean(-1, keepdim=True)
    x = centred / (centred.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt()
    x = x * ln.weight.detach().double() + ln.bias.detach().double()
    q = x @ bridge.W_Q[0, 0].detach().double() + bridge.b_Q[0, 0].detach().double()
    k = x @ bridge.W_K[0, 0].detach().double()        # b_K adds the same to every key: it cancels
    s = q @ k.T / bridge.cfg.d_head ** 0.5
    return s[:, 0].exp() / s[:, 1:].exp().mean(-1)
'''},
        loses={}),
    "c_through_the_hooks": Case(
        answers={"c_from_weights": '''
def c_from_weights(bridge):
    # no positions: a token's query and key are the same at any position, so read them
    # off the hooks of [BOS, t] sequences
    V = bridge.cfg.d_vocab
    toks = torch.zeros(V, 2, dtype=torch.long)
    toks[:, 1] = torch.arange(V)
    with torch.no_grad():
        _, cache = bridge.run_with_cache(toks)
    q = cache["blocks.0.attn.hook_q"][:, 1, 0].double()
    k = cache["blocks.0.attn.hook_k"][:, 1, 0].double()
    s = q @ k.T / math.sqrt(q.shape[-1])
    return torch.exp(s[:, 0] - torch.logsumexp(s[:, 1:], -1) + math.log(V - 1))
'''},
        loses={}),
    "c_via_softmax_weights": Case(
        answers={"c_from_weights": '''
def c_from_weights(bridge):
    with torch.no_grad():
        x = bridge.blocks[0].ln1(bridge.W_E)
        q = x @ bridge.W_Q[0, 0] + bridge.b_Q[0, 0]
        k = x @ bridge.W_K[0, 0] + bridge.b_K[0, 0]
        w = torch.softmax((q @ k.T).double() / math.sqrt(bridge.cfg.d_head), dim=-1)
    # a softmax over every key: w_BOS / mean(w_ordinary) is c
    return w[:, 0] / w[:, 1:].mean(-1)
'''},
        loses={}),
}


# Correct alternatives: another library call, loops, another search for c.
HARMLESS = {
    "bos_by_loop": {"bos_attention": '''
def bos_attention(pattern):
    return torch.stack([pattern[:, q, 0].mean() for q in range(pattern.shape[1])])
'''},
    "bos_sum_over_batch": {"bos_attention": '''
def bos_attention(pattern):
    return pattern[..., 0].sum(dim=0) / pattern.shape[0]
'''},
    "bos_mean_first": {"bos_attention": '''
def bos_attention(pattern):
    return pattern.mean(dim=0)[:, 0]
'''},
    "fit_numpy_geometric_grid": {"fit_bos_curve": '''
def fit_bos_curve(bos_weights):
    w = bos_weights[1:].double().numpy()
    q = np.arange(1, len(bos_weights), dtype=float)
    best_c, best_e = None, None
    for chunk in np.array_split(np.geomspace(0.01, 1000, 200001), 20):
        e = ((chunk[:, None] / (chunk[:, None] + q) - w) ** 2).sum(1)
        i = int(e.argmin())
        if best_e is None or e[i] < best_e:
            best_c, best_e = chunk[i], e[i]
    return float(best_c), float(1 - best_e / ((w - w.mean()) ** 2).sum())
'''},  # examiner: CORRECT: numpy geometric grid 200k points
    "fit_golden_section": {"fit_bos_curve": '''
def fit_bos_curve(bos_weights):
    w = bos_weights[1:].double()
    q = torch.arange(1, len(bos_weights), dtype=torch.float64)
    sse = lambda lc: float(((math.exp(lc) / (math.exp(lc) + q) - w) ** 2).sum())
    grid = [math.log(0.01) + i * (math.log(1000) - math.log(0.01)) / 1000 for i in range(1001)]
    i = min(range(len(grid)), key=lambda j: sse(grid[j]))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, 1000)]
    g = (math.sqrt(5) - 1) / 2
    for _ in range(100):
        c1, c2 = b - g * (b - a), a + g * (b - a)
        if sse(c1) < sse(c2):
            b = c2
        else:
            a = c1
    lc = (a + b) / 2
    return math.exp(lc), 1 - sse(lc) / float(((w - w.mean()) ** 2).sum())
'''},  # examiner: CORRECT: coarse grid + golden-section refinement
    "fit_coarse_then_fine_grid": {"fit_bos_curve": '''
def fit_bos_curve(bos_weights):
    w = bos_weights[1:].double()
    q = torch.arange(1, len(bos_weights), dtype=torch.float64)

    def errors(cs):
        return ((cs[:, None] / (cs[:, None] + q) - w) ** 2).sum(dim=1)

    coarse = torch.logspace(-2, 3, 501, dtype=torch.float64)
    best = coarse[errors(coarse).argmin()]
    fine = torch.linspace(best / 1.03, best * 1.03, 20001, dtype=torch.float64)
    e = errors(fine)
    c = fine[e.argmin()]
    return c.item(), (1 - e.min() / ((w - w.mean()) ** 2).sum()).item()
'''},
    "offset_by_loops": {"attention_by_offset": '''
def attention_by_offset(pattern, max_offset):
    n = pattern.shape[1]
    return torch.stack([torch.stack([pattern[:, q, q - k] for q in range(k, n)]).mean()
                        for k in range(max_offset + 1)])
'''},
    "offset_sum_over_count": {"attention_by_offset": '''
def attention_by_offset(pattern, max_offset):
    batch, n = pattern.shape[0], pattern.shape[1]
    return torch.stack([torch.diagonal(pattern, -k, 1, 2).sum() / (batch * (n - k))
                        for k in range(max_offset + 1)])
'''},
    "offset_fancy_indexing": {"attention_by_offset": '''
def attention_by_offset(pattern, max_offset):
    out = []
    for k in range(max_offset + 1):
        q = torch.arange(k, pattern.shape[1])
        out.append(pattern[:, q, q - k].mean())
    return torch.tensor(out)
'''},
}
