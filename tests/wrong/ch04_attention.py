from wrong import Case

_GRID = '''
    cs = torch.logspace(-2, 3, 50001, dtype=torch.float64)
    errors = ((cs[:, None] / (cs[:, None] + q) - w) ** 2).sum(dim=1)
    c = cs[errors.argmin()]
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
        says="Positions shifted by one are the usual slip"),
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
}
