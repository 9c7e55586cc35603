"""Mutation testing of the checks: does every plausible wrong version of a reference
answer lose its exercise's points?

    make mutants                      # every graded exercise, every mutant
    python tools/mutants.py --chapter 02 --sample 20 --seed 0

The exercises come from the chapter masters: each ``solution ... from=module:fn``
fence names the reference answers, and the next ``tests`` fence is the test cell
that grades them (visible and hidden checks together). Each mutant is one small
edit of the reference's syntax tree (the operators below: the standard ones and
the course's own mistake classes). It is graded by the real judge
(`nopos.grading.judge.judge_test_cell`), with the kernel replaced by
`transport.serve` on a namespace in this process: arguments, results and model
state cross as data exactly as they do from a notebook, without the cost of a
kernel per mutant. A mutant the judge fails is killed; one it passes survives,
unless `EQUIVALENT` lists it (it computes the same function; the reason is
written there and tests/test_mutants.py checks it on random inputs).

Mutants are enumerated in source order, so their names are stable; `--sample N`
draws N per exercise with `random.Random(seed)`, and the checks' fresh draws
(`nopos.checks.fresh_seed`) take the same seed: one seed, one report.
Rejected alternative: mutmut / cosmic-ray mutate whole files and judge by a test
command's exit status; here a mutant must be graded cell by cell through the
judge, and a process per mutant would cost minutes per chapter.
"""
import argparse
import ast
import contextlib
import copy
import importlib
import inspect
import io
import math
import os
import random
import signal
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.build_course import masters, parse_master  # noqa: E402

TIMEOUT_S = 30  # a mutant that loops for ever is killed, as the grader's kernel timeout would

# name of a mutant -> why it computes the same function as the reference
# (tests/test_mutants.py runs each on RANDOM_INPUTS and compares it with the reference)
EQUIVALENT = {
    "nopos_reference.data:make_batch ignored L9: `device` -> `'cpu'`":
        "the grader has a CPU only: 'cpu' is the one device a check can ask for",
    "nopos_reference.data:previous_token_targets reorder L9: `targets[:, 1:] = tokens[:, :-1]`":
        "the targets and the mask are built independently: either order gives both",
    "nopos_reference.schedule:warmup_cosine_multiplier compare L3: `step < warmup_steps` -> "
    "`step <= warmup_steps`":
        "at step == warmup_steps both branches give 1 (warm-up's w/w, the cosine's cos 0)",
    "nopos_reference.schedule:warmup_cosine_multiplier compare L5: `step >= total_steps` -> "
    "`step > total_steps`":
        "at step == total_steps the cosine gives 0.5 * (1 + cos pi) = 0.0 exactly",
    "nopos_reference.schedule:warmup_cosine_multiplier reorder L3: `if step < warmup_steps:`":
        "the two early returns cover disjoint steps when warmup_steps < total_steps",
    "nopos_reference.schedule:warmup_cosine_multiplier reorder L5: `if step >= total_steps:`":
        "the last early return and the progress line are independent",
    "nopos_reference.training:train_step argument L8: `optimizer.zero_grad(set_to_none=True)` -> "
    "`optimizer.zero_grad()`":
        "set_to_none=True is zero_grad's default in this torch",
    "nopos_reference.training:train_step reorder L7: `loss = masked_loss(model(tokens), targets, mask)`":
        "zeroing the gradients before the forward pass or after it: backward() comes after both",
    # chapter 4: the fit's grid and precision (the same c to the grid's step, 2.3e-4)
    'nopos_reference.attention:fit_bos_curve drop L7: `bos_weights[1:].double().cpu()` -> `bos_weights[1:].double()`':
        ("the grader's tensors are on the CPU already", 1e-3),
    'nopos_reference.attention:fit_bos_curve argument L8: `torch.arange(1, len(bos_weights), dtype=torch.float64)` -> `torch.arange(1, len(bos_weights))`':
        ('integer positions are promoted to float64 by the float64 grid', 1e-3),
    'nopos_reference.attention:fit_bos_curve argument L9: `torch.logspace(-2, 3, 50001, dtype=torch.float64)` -> `torch.logspace(-2, 3, 50001)`':
        ('a float32 grid of the same points: c moves by less than a grid step', 1e-3),
    'nopos_reference.attention:fit_bos_curve constant L9: `-2` -> `-3`':
        ('a grid from 0.001: the same c to a grid step for the curves the course fits', 1e-3),
    'nopos_reference.attention:fit_bos_curve constant L9: `3` -> `4`':
        ('a grid to 10000: the same c to a grid step', 1e-3),
    'nopos_reference.attention:fit_bos_curve constant L9: `50001` -> `50000`':
        ('one grid point fewer: the same c to a grid step', 1e-3),
    'nopos_reference.attention:fit_bos_curve constant L9: `50001` -> `50002`':
        ('one grid point more: the same c to a grid step', 1e-3),
    'nopos_reference.attention:fit_bos_curve call L7: `bos_weights[1:].double` -> `bos_weights[1:].float`':
        ('the weights are promoted to float64 by the float64 grid', 1e-3),
    'nopos_reference.attention:fit_bos_curve reorder L7: `w = bos_weights[1:].double().cpu()`':
        ('independent lines', 1e-3),
    'nopos_reference.attention:fit_bos_curve reorder L8: `q = torch.arange(1, len(bos_weights), dtype=torch.float64)`':
        ('independent lines', 1e-3),
    'nopos_reference.attention:fit_bos_curve reorder L11: `c = cs[errors.argmin()]`':
        ('independent lines', 1e-3),
    'nopos_reference.attention:fit_bos_curve reorder L12: `residual = errors.min()`':
        ('independent lines', 1e-3),
    # chapter 4, c_from_weights: float32 queries and keys, so a cancelling bias cancels to ~1e-5
    'nopos_reference.attention:c_from_weights arith L18: `x @ bridge.W_K[0, 0] + bridge.b_K[0, 0]` -> `x @ bridge.W_K[0, 0] - bridge.b_K[0, 0]`':
        ("a key bias adds q.b_K to every key's score for a query: it cancels in c (a ratio of exponentials over keys), whatever its sign", 1e-3),
    'nopos_reference.attention:c_from_weights constant L18: `0` -> `-1`':
        ("b_K of layer 1 for layer 0's: a key bias cancels in c, whichever", 1e-3),
    'nopos_reference.attention:c_from_weights constant L18: `0` -> `1`':
        ("b_K of layer 1 for layer 0's: a key bias cancels in c, whichever", 1e-3),
    'nopos_reference.attention:c_from_weights constant L18: `0` -> `-1` #1':
        ('b_K[0, -1] is b_K[0, 0] with one head, and a key bias cancels in c anyway', 1e-3),
    'nopos_reference.attention:c_from_weights constant L17: `0` -> `-1` #1':
        ("b_Q[0, -1] is b_Q[0, 0]: the course's models have one head", 1e-3),
    'nopos_reference.attention:c_from_weights constant L17: `0` -> `-1` #3':
        ("W_Q[0, -1] is W_Q[0, 0]: the course's models have one head", 1e-3),
    'nopos_reference.attention:c_from_weights constant L18: `0` -> `-1` #3':
        ("W_K[0, -1] is W_K[0, 0]: the course's models have one head", 1e-3),
    'nopos_reference.attention:c_from_weights drop L16: `bridge.W_E.detach()` -> `bridge.W_E`':
        ('the same values under no_grad (detaching only keeps the layer norm from holding W_E as a Parameter)', 1e-3),
    'nopos_reference.attention:c_from_weights call L19: `(q @ k.T).double` -> `(q @ k.T).float`':
        ("scores in float32: c the same to the check's tolerance", 1e-3),
    'nopos_reference.attention:c_from_weights constant L20: `1` -> `0` #1':
        ('the score table is square (query token x key token): shape[0] == shape[1]', 1e-3),
    'nopos_reference.attention:c_from_weights reorder L17: `q = x @ bridge.W_Q[0, 0] + bridge.b_Q[0, 0]`':
        ('independent lines', 1e-3),
    # chapter 5
    'nopos_reference.mechanism:neuron_threshold call L11: `profile[1:].double` -> `profile[1:].float`':
        ('a float32 profile computed in float32: the same steps', 1e-6),
    'nopos_reference.mechanism:neuron_threshold reorder L12: `steps = p[1:] - p[:-1]`':
        ('independent lines', 1e-6),
    'nopos_reference.mechanism:neuron_threshold reorder L14: `if p[-1] > p[0] and bool((steps >= -slack).all()):`':
        ('the midpoint is computed whatever the branch', 1e-6),
    'nopos_reference.mechanism:probe_r2 call L12: `y_test.double` -> `y_test.float`':
        ('R² in float32 instead of float64: the same to 1e-6', 1e-6),
    'nopos_reference.mechanism:probe_r2 argument L9: `torch.ones(len(x), 1, dtype=x.dtype, device=x.device)` -> `torch.ones(len(x), 1, device=x.device)`':
        ("torch.cat promotes the float32 ones to x's float64", 1e-6),
    'nopos_reference.mechanism:probe_r2 argument L9: `torch.ones(len(x), 1, dtype=x.dtype, device=x.device)` -> `torch.ones(len(x), 1, dtype=x.dtype)`':
        ("the grader's tensors are on the CPU", 1e-6),
    'nopos_reference.mechanism:probe_r2 reorder L11: `w = torch.linalg.lstsq(with_bias(x_train), y_train.double()[`':
        ('independent lines', 1e-6),
    'nopos_reference.mechanism:probe_r2 reorder L12: `y = y_test.double()`':
        ('independent lines', 1e-6),
    'nopos_reference.mechanism:mean_ablation_losses argument L12: `bridge.run_with_cache(tokens, names_filter=lambda name: name` -> `bridge.run_with_cache(tokens)`':
        ('caching every hook point keeps the same values for the ones asked for', 1e-6),
    'nopos_reference.mechanism:mean_ablation_losses argument L17: `cache[name].mean(dim=0, keepdim=True)` -> `cache[name].mean(dim=0)`':
        ('expand_as broadcasts the mean over the batch either way', 1e-6),
    'nopos_reference.mechanism:mean_ablation_losses reorder L12: `_, cache = bridge.run_with_cache(tokens, names_filter=lambda`':
        ('independent lines', 1e-6),
    'nopos_reference.mechanism:mean_ablation_losses remove L15: `if name not in cache:`':
        ('cache[name] raises the same KeyError for a missing hook point', 1e-6),
    'nopos_reference.mechanism:mean_ablation_losses reorder L15: `if name not in cache:`':
        ('cache[name] raises the same KeyError for a missing hook point', 1e-6),
    "nopos_reference.mechanism:mean_ablation_losses remove L16: `raise KeyError(f'the model has no hook point {name!r}')`":
        ('cache[name] raises the same KeyError for a missing hook point', 1e-6),
    # chapter 6
    'nopos_reference.beyond:accuracy_by_position argument L9: `torch.tensor([math.nan], device=correct.device)` -> `torch.tensor([math.nan])`':
        ("the grader's tensors are on the CPU", 1e-12),
    'nopos_reference.beyond:variance_by_position drop L7: `x.double().var(dim=0, unbiased=False).mean(dim=-1).float()` -> `x.double().var(dim=0, unbiased=False).mean(dim=-1)`':
        ('a float64 tensor of the same variances (the contract asks for a float tensor)', 1e-06),
    'nopos_reference.beyond:variance_by_position call L7: `x.double` -> `x.float`':
        ('the variance in float32: the same to 1e-6', 1e-05),
    'nopos_reference.beyond:log_log_slope drop L9: `values[start:].double().cpu()` -> `values[start:].double()`':
        ("the grader's tensors are on the CPU", 1e-12),
    'nopos_reference.beyond:log_log_slope constant L11: `0` -> `-1` #1':
        ('the solution has one column: index -1 is index 0', 1e-12),
    'nopos_reference.beyond:log_log_slope reorder L8: `q = torch.arange(start, len(values), dtype=torch.float64)`':
        ('independent lines', 1e-12),
    'nopos_reference.beyond:log_log_slope reorder L9: `y = torch.log(values[start:].double().cpu())`':
        ('independent lines', 1e-12),
    'nopos_reference.beyond:attention_entropy drop L10: `(-terms.sum(dim=-1)).mean(dim=0).float()` -> `(-terms.sum(dim=-1)).mean(dim=0)`':
        ('a float64 tensor of the same entropies (the contract asks for a float tensor)', 1e-06),
    'nopos_reference.beyond:attention_entropy call L8: `pattern.double` -> `pattern.float`':
        ('the entropy in float32: the same to 1e-5', 1e-05),
    'nopos_reference.beyond:attention_entropy compare L9: `p > 0` -> `p >= 0`':
        ('where p = 0 the term p log p is 0 either way', 1e-12),
    'nopos_reference.beyond:attention_entropy constant L9: `0` -> `-1`':
        ('where p = 0 the term p log p is 0 either way', 1e-12),
    'nopos_reference.beyond:attention_entropy constant L9: `1e-300` -> `0.0`':
        ('the clamp only keeps log finite where torch.where discards the term', 1e-12),
    'nopos_reference.beyond:attention_entropy constant L9: `1e-300` -> `5e-301`':
        ('the clamp only keeps log finite where torch.where discards the term', 1e-12),
    'nopos_reference.beyond:attention_entropy constant L9: `1e-300` -> `2e-300`':
        ('the clamp only keeps log finite where torch.where discards the term', 1e-12),
}


_BRIDGE = []


def _bridge_once(lens, load_reference):
    if not _BRIDGE:
        _BRIDGE.append(lens(load_reference()[0]))
    return _BRIDGE[0]


def equivalence(name):
    """(reason, relative tolerance) of a listed equivalent mutant."""
    entry = EQUIVALENT[name]
    return entry if isinstance(entry, tuple) else (entry, 1e-12)


def _random_inputs():
    """function -> rng -> (args, kwargs): valid random calls of each reference answer that
    has a listed equivalent mutant."""
    import torch

    def tokens(rng):
        g = torch.Generator().manual_seed(rng.randrange(2**31))
        t = torch.randint(1, rng.randint(3, 50), (rng.randint(1, 6), rng.randint(2, 30)), generator=g)
        t[:, 0] = 0
        return t

    def batch(rng):
        seed = rng.randrange(2**31)
        return (rng.randint(1, 6), rng.randint(1, 30), rng.randint(2, 50)), \
            {"generator": torch.Generator().manual_seed(seed)}

    def schedule(rng):
        w = rng.randint(1, 50)
        t = w + rng.randint(1, 300)
        return (rng.randint(0, 2 * t), w, t), {}

    def step(rng):
        from nopos.model import build_model, trainable_parameters

        cfg = dict(n_layers=1, d_model=8, n_heads=1, d_head=8, d_mlp=16, d_vocab=11, n_ctx=6,
                   act_fn="relu", normalization_type="LN")
        model = build_model(cfg, seed=rng.randrange(1000))
        opt = torch.optim.AdamW(trainable_parameters(model), lr=1e-2)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 3))
        g = torch.Generator().manual_seed(rng.randrange(2**31))
        toks = torch.randint(1, 11, (rng.randint(1, 5), 6), generator=g)
        toks[:, 0] = 0
        return (model, opt, sched, toks, rng.choice([1e-3, 0.1, 1.0, 10.0])), {}

    def curve(rng):
        n, c = rng.randint(10, 50), math.exp(rng.uniform(math.log(0.05), math.log(300)))
        w = torch.tensor([c / (c + q) for q in range(n)]) * (1 + rng.uniform(0, 0.2) * torch.randn(
            n, generator=torch.Generator().manual_seed(rng.randrange(2**31))))
        return (w.clamp(1e-3, 1.0),), {}

    def profile(rng):
        values = torch.tensor([rng.uniform(-3, 3) for _ in range(rng.randint(3, 15))]).cumsum(0)
        if rng.random() < 0.5:
            values = values.sort(descending=rng.random() < 0.5).values
        return (values.float(), rng.choice([0.05, 0.1, 0.5])), {}

    def probe(rng):
        g = torch.Generator().manual_seed(rng.randrange(2**31))
        d, n = rng.randint(1, 8), rng.randint(20, 80)
        w = torch.randn(d, generator=g)
        xs = [torch.randn(n, d, generator=g) for _ in range(2)]
        ys = [x @ w + rng.uniform(-3, 3) + torch.randn(n, generator=g) for x in xs]
        return (xs[0], ys[0], xs[1], ys[1]), {}

    def ablation(rng):
        from nopos.checkpoint import load_reference
        from nopos.model import lens

        bridge = _bridge_once(lens, load_reference)
        g = torch.Generator().manual_seed(rng.randrange(2**31))
        toks = torch.randint(1, bridge.cfg.d_vocab, (4, 12), generator=g)
        toks[:, 0] = 0
        names = rng.sample(["blocks.0.hook_mlp_out", "blocks.0.hook_attn_out", "blocks.1.hook_mlp_out",
                            "blocks.0.mlp.hook_post"], 2)
        return (bridge, toks, names + (["no.such.hook"] if rng.random() < 0.3 else [])), {}

    def weights(rng):  # c_from_weights reads the model's weights only: the shipped one
        from nopos.checkpoint import load_reference
        from nopos.model import lens

        return (_bridge_once(lens, load_reference),), {}

    def generator(rng):
        return torch.Generator().manual_seed(rng.randrange(2**31))

    def logits_tokens(rng):
        g, b, n, v = generator(rng), rng.randint(1, 6), rng.randint(2, 20), rng.randint(3, 30)
        toks = torch.randint(1, v, (b, n), generator=g)
        toks[:, 0] = 0
        return (torch.randn(b, n, v, generator=g), toks), {}

    def activations(rng):
        g = generator(rng)
        return (torch.randn(rng.randint(2, 8), rng.randint(2, 20), rng.randint(1, 10), generator=g),), {}

    def decaying(rng):
        n = rng.randint(6, 40)
        q = torch.arange(n, dtype=torch.float32)
        values = rng.uniform(0.5, 5) * (q + 1) ** -rng.uniform(0.2, 2) * (1 + 0.1 * torch.rand(n, generator=generator(rng)))
        return (values, rng.randint(1, 4)), {}

    def pattern(rng):
        g, b, n = generator(rng), rng.randint(1, 5), rng.randint(2, 15)
        scores = torch.randn(b, n, n, generator=g).masked_fill(torch.ones(n, n).triu(1).bool(), -math.inf)
        p = scores.softmax(-1)
        p[p < 0.05] = 0.0  # exact zeros, as a hard pattern has
        return (p / p.sum(-1, keepdim=True),), {}

    return {"nopos_reference.beyond:accuracy_by_position": logits_tokens,
            "nopos_reference.beyond:variance_by_position": activations,
            "nopos_reference.beyond:log_log_slope": decaying,
            "nopos_reference.beyond:attention_entropy": pattern,
            "nopos_reference.training:train_step": step,
            "nopos_reference.attention:fit_bos_curve": curve,
            "nopos_reference.mechanism:neuron_threshold": profile,
            "nopos_reference.mechanism:probe_r2": probe,
            "nopos_reference.mechanism:mean_ablation_losses": ablation,
            "nopos_reference.attention:c_from_weights": weights,
            "nopos_reference.data:make_batch": batch,
            "nopos_reference.data:previous_token_targets": lambda rng: ((tokens(rng),), {}),
            "nopos_reference.schedule:warmup_cosine_multiplier": schedule}


# ------------------------------------------------------------------ exercises
@dataclass
class Exercise:
    chapter: str
    grade_id: str
    functions: list  # [(module, function)]
    test_source: str
    points: int = 0
    extra: dict = field(default_factory=dict)


def exercises(chapter=None):
    """Every graded exercise whose answer is a reference function, from the masters."""
    found = []
    for path in masters():
        stem = path.stem
        if chapter and not stem.startswith(chapter):
            continue
        _, cells = parse_master(path)
        pending = None
        for cell in cells:
            attrs = cell["attrs"]
            if cell["type"] != "code":
                continue
            if attrs.get("solution") and "from" in attrs:
                pending = (attrs["id"], [tuple(s.split(":")) for s in attrs["from"].split(",")])
            elif attrs.get("tests") and pending:
                found.append(Exercise(stem, pending[0], pending[1], cell["source"],
                                      int(attrs.get("points", 0))))
                pending = None
    return found


# ------------------------------------------------------------------ operators
SWAP_BINOP = {ast.Add: [ast.Sub], ast.Sub: [ast.Add], ast.Mult: [ast.Div], ast.Div: [ast.Mult, ast.FloorDiv],
              ast.FloorDiv: [ast.Div], ast.Mod: [ast.FloorDiv], ast.Pow: [ast.Mult],
              ast.BitAnd: [ast.BitOr], ast.BitOr: [ast.BitAnd]}
SWAP_CMP = {ast.Lt: [ast.LtE], ast.LtE: [ast.Lt], ast.Gt: [ast.GtE], ast.GtE: [ast.Gt],
            ast.Eq: [ast.NotEq], ast.NotEq: [ast.Eq], ast.Is: [ast.IsNot], ast.IsNot: [ast.Is],
            ast.In: [ast.NotIn], ast.NotIn: [ast.In]}
SWAP_NAME = {"min": "max", "max": "min", "mean": "sum", "sum": "mean", "argmax": "argmin",
             "argmin": "argmax", "amax": "amin", "amin": "amax", "any": "all", "all": "any",
             "var": "std", "std": "var", "floor": "ceil", "ceil": "floor", "cos": "sin",
             "log": "log2", "log2": "log", "softmax": "log_softmax", "log_softmax": "softmax",
             "triu": "tril", "tril": "triu", "float": "long", "long": "float", "double": "float",
             "cumsum": "cumprod", "abs": "neg", "exp": "log", "sqrt": "abs", "median": "mean",
             "nanmean": "mean", "pow": "mul", "mul": "add", "add": "sub", "sub": "add"}
DROP_CALLS = {"item", "float", "detach", "clone", "abs", "contiguous", "cpu", "squeeze",
              "unsqueeze", "mean", "sum", "t", "flatten", "sqrt", "exp", "log", "softmax"}
DROP_WRAPPERS = {"float", "int", "abs", "round", "sorted", "list", "tuple", "len"}


def _num(node):
    """The value of a numeric literal (-1 parses as a unary minus on 1)."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _num(node.operand)
        return None if inner is None else -inner
    return None


def _const(value):
    return ast.Constant(value) if value >= 0 else ast.UnaryOp(ast.USub(), ast.Constant(-value))


def _sites(fn_node):
    """Every (description, edit) of the function's tree; edit(tree) mutates a copy in place."""
    sites = []
    nodes = [n for n in ast.walk(fn_node) if n is not fn_node]
    paths = {id(n): i for i, n in enumerate(nodes)}

    def at(node):
        i = paths[id(node)]
        return lambda tree: [n for n in ast.walk(tree) if n is not tree][i]

    def add(kind, node, new_text, edit):
        old = ast.unparse(node) if not isinstance(node, list) else "; ".join(map(ast.unparse, node))
        line = getattr(node if not isinstance(node, list) else node[0], "lineno", 0) - fn_node.lineno
        sites.append((f"{kind} L{line}: `{old[:60]}` -> `{new_text[:60]}`", edit))

    skip = set()  # the docstring and decorators stay
    body = fn_node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        skip.update(id(n) for n in ast.walk(body[0]))
    for d in fn_node.decorator_list:
        skip.update(id(n) for n in ast.walk(d))
    skip.update(id(n) for n in ast.walk(fn_node.args))

    for node in nodes:
        if id(node) in skip:
            continue
        get = at(node)
        if isinstance(node, ast.BinOp):
            for new in SWAP_BINOP.get(type(node.op), []):
                def edit(tree, get=get, new=new):
                    get(tree).op = new()
                text = ast.unparse(ast.BinOp(node.left, new(), node.right))
                add("arith", node, text, edit)
        elif isinstance(node, ast.AugAssign):
            for new in SWAP_BINOP.get(type(node.op), []):
                def edit(tree, get=get, new=new):
                    get(tree).op = new()
                add("arith", node, ast.unparse(ast.AugAssign(node.target, new(), node.value)), edit)
        elif isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                for new in SWAP_CMP.get(type(op), []):
                    def edit(tree, get=get, new=new, k=k):
                        get(tree).ops[k] = new()
                    ops = list(node.ops)
                    ops[k] = new()
                    add("compare", node, ast.unparse(ast.Compare(node.left, ops, node.comparators)), edit)
        elif isinstance(node, ast.BoolOp):
            new = ast.Or if isinstance(node.op, ast.And) else ast.And
            def edit(tree, get=get, new=new):
                get(tree).op = new()
            add("boolean", node, ast.unparse(ast.BoolOp(new(), node.values)), edit)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Invert, ast.Not)):
            sites.append(_replace_site("negation", fn_node, node, node.operand, nodes))
        if _num(node) is not None and not isinstance(node, ast.UnaryOp) or isinstance(node, ast.UnaryOp) \
                and _num(node) is not None:
            if isinstance(node, ast.Constant) and id(node) in {id(n.operand) for n in nodes
                                                                 if isinstance(n, ast.UnaryOp)}:
                continue  # the unary minus around it is the literal
            value = _num(node)
            if isinstance(value, bool):
                continue
            news = {value + 1, value - 1} if isinstance(value, int) else {value * 2, value / 2, 0.0}
            if isinstance(value, float) and value in (0.0,):
                news = {1.0}
            for new in sorted(news - {value}):
                sites.append(_replace_site("constant", fn_node, node, _const(new), nodes))
        if isinstance(node, ast.Slice):
            for part in ("lower", "upper"):
                bound = getattr(node, part)
                if bound is not None:
                    def edit(tree, get=get, part=part):
                        setattr(get(tree), part, None)
                    new = copy.deepcopy(node)
                    setattr(new, part, None)
                    add("slice", node, ast.unparse(new), edit)
                else:
                    for value in (1, -1):
                        def edit(tree, get=get, part=part, value=value):
                            setattr(get(tree), part, _const(value))
                        new = copy.deepcopy(node)
                        setattr(new, part, _const(value))
                        add("slice", node, ast.unparse(new), edit)
        if isinstance(node, ast.Subscript) and isinstance(node.slice, (ast.Name, ast.Tuple, ast.Slice)) \
                and isinstance(node.ctx, ast.Load):
            # the statistic over the wrong positions: all of them, or the complement of a mask
            sites.append(_replace_site("positions", fn_node, node, node.value, nodes))
            if isinstance(node.slice, ast.Name):
                new = copy.deepcopy(node)
                new.slice = ast.UnaryOp(ast.Invert(), new.slice)
                sites.append(_replace_site("positions", fn_node, node, new, nodes))
        if isinstance(node, ast.Attribute) and node.attr in SWAP_NAME:
            def edit(tree, get=get):
                get(tree).attr = SWAP_NAME[get(tree).attr]
            add("call", node, ast.unparse(node)[: -len(node.attr)] + SWAP_NAME[node.attr], edit)
        if isinstance(node, ast.Name) and node.id in SWAP_NAME and node.id in ("min", "max", "sum", "any",
                                                                                "all", "abs"):
            def edit(tree, get=get):
                get(tree).id = SWAP_NAME[get(tree).id]
            add("call", node, SWAP_NAME[node.id], edit)
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr in DROP_CALLS and not node.args \
                    and not node.keywords:
                sites.append(_replace_site("drop", fn_node, node, node.func.value, nodes))
            if isinstance(node.func, ast.Name) and node.func.id in DROP_WRAPPERS and len(node.args) == 1:
                sites.append(_replace_site("drop", fn_node, node, node.args[0], nodes))
            for k, kw in enumerate(node.keywords):
                if kw.arg is not None:  # a dropped argument: its default, or a forgotten generator
                    def edit(tree, get=get, k=k):
                        del get(tree).keywords[k]
                    new = copy.deepcopy(node)
                    del new.keywords[k]
                    add("argument", node, ast.unparse(new), edit)
    # statements: removed, or swapped with the next one
    for node in [fn_node] + nodes:
        for name in ("body", "orelse"):
            block = getattr(node, name, None)
            if not isinstance(block, list) or not block or not isinstance(block[0], ast.stmt):
                continue
            for k, stmt in enumerate(block):
                if id(stmt) in skip or isinstance(stmt, (ast.Return, ast.FunctionDef)):
                    continue
                sites.append(_statement_site("remove", fn_node, node, name, k, nodes))
                if k + 1 < len(block) and not isinstance(block[k + 1], ast.Return):
                    sites.append(_statement_site("reorder", fn_node, node, name, k, nodes))
    # an argument ignored: a parameter passed on as its default value (clip=1.0 whatever is asked)
    args = fn_node.args.args
    defaults = dict(zip([a.arg for a in args][len(args) - len(fn_node.args.defaults):],
                        fn_node.args.defaults))
    for node in nodes:
        if isinstance(node, ast.Call):
            for value in list(node.args) + [k.value for k in node.keywords]:
                if isinstance(value, ast.Name) and value.id in defaults and id(value) not in skip:
                    sites.append(_replace_site("ignored", fn_node, value, defaults[value.id], nodes))
    # an input changed in place before it is used (every tensor argument)
    params = [a.arg for a in fn_node.args.args]
    for p in params:
        def edit(tree, p=p):
            hook = ast.parse(f"__mutant_nudge__({p})").body[0]
            first = 1 if tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(
                tree.body[0].value, ast.Constant) else 0
            tree.body.insert(first, hook)
        sites.append((f"inplace L0: `{p}` changed in place before use", edit))
    return [s for s in sites if s is not None]


def _replace_site(kind, fn_node, node, replacement, nodes):
    """Replace `node` by `replacement` in its parent (found by position in the walk)."""
    parents = {}
    for parent in [fn_node] + nodes:
        for fname, value in ast.iter_fields(parent):
            if isinstance(value, list):
                for k, child in enumerate(value):
                    if child is node:
                        parents["where"] = (parent, fname, k)
            elif value is node:
                parents["where"] = (parent, fname, None)
    parent, fname, k = parents["where"]
    index = -1 if parent is fn_node else nodes.index(parent)
    repl = copy.deepcopy(replacement)

    def edit(tree):
        target = tree if index == -1 else [n for n in ast.walk(tree) if n is not tree][index]
        if k is None:
            setattr(target, fname, copy.deepcopy(repl))
        else:
            getattr(target, fname)[k] = copy.deepcopy(repl)
    line = getattr(node, "lineno", fn_node.lineno) - fn_node.lineno
    return f"{kind} L{line}: `{ast.unparse(node)[:60]}` -> `{ast.unparse(repl)[:60]}`", edit


def _statement_site(kind, fn_node, parent, field_name, k, nodes):
    index = -1 if parent is fn_node else nodes.index(parent)
    stmt = getattr(parent, field_name)[k]

    def edit(tree):
        target = tree if index == -1 else [n for n in ast.walk(tree) if n is not tree][index]
        block = getattr(target, field_name)
        if kind == "remove":
            block[k] = ast.Pass()
        else:
            block[k], block[k + 1] = block[k + 1], block[k]
    line = stmt.lineno - fn_node.lineno
    return f"{kind} L{line}: `{ast.unparse(stmt).splitlines()[0][:60]}`", edit


NUDGED = []  # set when an in-place mutant really changed an input (a number cannot be)


def _nudge(value):
    """The in-place mistake: an input changed where the function can see it."""
    import torch

    if isinstance(value, (torch.Tensor, torch.nn.Module)):
        NUDGED.append(True)

    if isinstance(value, torch.Tensor) and value.numel() > 1 and value.dim() >= 1:
        with torch.no_grad():
            flat = value.reshape(-1) if value.is_contiguous() else None
            if flat is not None:
                flat[: flat.numel() // 2] = flat[flat.numel() // 2: 2 * (flat.numel() // 2)].clone()
    elif isinstance(value, torch.nn.Module):
        with torch.no_grad():
            for p in value.parameters():
                if p.requires_grad:
                    p.mul_(0.5)
                    break


# ------------------------------------------------------------------ mutants
@dataclass
class Mutant:
    name: str  # "<module>:<fn> <kind> L<line>: `old` -> `new`"
    module: str
    function: str
    source: str
    edit: object = None

    def build(self):
        """The mutant function, compiled in a copy of its module's globals."""
        module = importlib.import_module(self.module)
        scope = dict(vars(module))
        scope["__mutant_nudge__"] = _nudge
        exec(compile(self.source, f"<mutant {self.name}>", "exec"), scope)  # noqa: S102
        return scope[self.function]


def mutants_of(module_name, function):
    module = importlib.import_module(module_name)
    source = textwrap.dedent(inspect.getsource(getattr(module, function)))
    tree = ast.parse(source)
    fn_node = tree.body[0]
    reference = ast.unparse(tree)
    seen, found = {reference}, []
    for description, edit in _sites(fn_node):
        new_tree = copy.deepcopy(tree)
        try:
            edit(new_tree.body[0])
            ast.fix_missing_locations(new_tree)
            text = ast.unparse(new_tree)
            compile(text, "<mutant>", "exec")
        except (SyntaxError, ValueError, IndexError, TypeError, AttributeError):
            continue
        if text in seen:  # two edits that write the same code: one mutant
            continue
        seen.add(text)
        name = f"{module_name}:{function} {description}"
        taken = {m.name for m in found}
        name = next(f"{name} #{k}" if k else name for k in range(len(found) + 1)
                    if (f"{name} #{k}" if k else name) not in taken)
        found.append(Mutant(name, module_name, function, text))
    return found


# ------------------------------------------------------------------ grading
class _Timeout(BaseException):
    pass


def _alarm(*_):
    raise _Timeout()


def reference_namespace(exercise):
    """The names a solved notebook defines for this exercise's test cell."""
    space = {}
    for module_name, fn in exercise.functions:
        space[fn] = getattr(importlib.import_module(module_name), fn)
    return space


def _direct(source, namespace):
    """The test cell's checks called on the namespace's functions themselves, as the learner's
    own notebook runs them (no transport): the same verdict, without shipping model state."""
    from nopos.checks import CheckFailed
    from nopos.grading.judge import parse_test_cell

    try:
        for module, function, args, kwargs, *_ in parse_test_cell(source):
            check = getattr(importlib.import_module(module), function)
            value = (lambda a: namespace[a[1]] if a[0] == "name" else a[1])
            check(*map(value, args), **{k: value(v) for k, v in kwargs.items()})
    except CheckFailed as failure:
        return False, "", str(failure)
    except Exception as error:  # noqa: BLE001 - as the judge reports it
        return False, "", f"the check could not use your answer ({type(error).__name__}: {error})"
    return True, "", ""


def grade(exercise, namespace, timeout=TIMEOUT_S, direct=False):
    """The judge's verdict on `namespace` as the notebook: (passed, message).
    `direct`: the checks call the functions in-process without the judge's transport."""
    from nopos.grading import transport
    from nopos.grading.judge import judge_test_cell

    def ask(name, request):
        return transport.serve(namespace, name, request)

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            passed, _, message = (_direct(exercise.test_source, namespace) if direct else
                                  judge_test_cell(exercise.test_source, ask))
    except _Timeout:
        passed, message = False, f"timed out after {timeout} s"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return passed, message


def run(chapter=None, sample=None, seed=0, only=None, out=sys.stdout, verbose=False, direct=False):
    """Grade every mutant; returns {exercise grade_id: counts and survivors}."""
    os.environ["NOPOS_CHECK_SEED"] = str(seed)
    import torch

    torch.manual_seed(seed)
    rng = random.Random(seed)
    report = {}
    for exercise in exercises(chapter):
        if only and exercise.grade_id not in only:
            continue
        start = time.perf_counter()
        ok, message = grade(exercise, reference_namespace(exercise), timeout=600, direct=direct)
        if not ok:
            raise SystemExit(f"{exercise.grade_id}: the reference itself fails: {message}")
        reference_s = time.perf_counter() - start
        mutants = [m for module, fn in exercise.functions for m in mutants_of(module, fn)]
        if sample is not None and sample < len(mutants):
            mutants = sorted(rng.sample(mutants, sample), key=mutants.index)
        row = dict(chapter=exercise.chapter, generated=len(mutants), killed=0, survived=[],
                   equivalent=[], reference_s=reference_s, messages={})
        for mutant in mutants:
            if mutant.name in EQUIVALENT:
                row["equivalent"].append(mutant.name)
                continue
            namespace = reference_namespace(exercise)
            try:
                namespace[mutant.function] = mutant.build()
            except Exception:  # noqa: BLE001 - a mutant that cannot even be defined is caught at once
                row["killed"] += 1
                continue
            NUDGED.clear()
            passed, message = grade(exercise, namespace, timeout=max(TIMEOUT_S, int(10 * reference_s)),
                                    direct=direct)
            if " inplace " in mutant.name and not NUDGED:
                row["generated"] -= 1  # its input is a number: nothing to change in place
                continue
            if passed:
                row["survived"].append(mutant.name)
            else:
                row["killed"] += 1
                row["messages"][mutant.name] = message
            if verbose:
                print(("SURVIVED " if passed else "killed   ") + mutant.name, file=out, flush=True)
        row["seconds"] = time.perf_counter() - start
        report[exercise.grade_id] = row
        _print_row(exercise.grade_id, row, out)
    _print_chapters(report, out)
    return report


def _print_row(grade_id, row, out):
    killable = row["generated"] - len(row["equivalent"])
    score = f"{row['killed'] / killable:.0%}" if killable else "-"
    print(f"{row['chapter']:<14} {grade_id:<26} generated {row['generated']:>3}  killed "
          f"{row['killed']:>3}  survived {len(row['survived']):>3}  equivalent "
          f"{len(row['equivalent']):>2}  killed {score:>4}  ({row['seconds']:.1f} s)", file=out, flush=True)
    for name in row["survived"]:
        print(f"    survived: {name}", file=out, flush=True)


def by_chapter(report):
    chapters = {}
    for row in report.values():
        c = chapters.setdefault(row["chapter"], dict(generated=0, killed=0, survived=0, equivalent=0))
        c["generated"] += row["generated"]
        c["killed"] += row["killed"]
        c["survived"] += len(row["survived"])
        c["equivalent"] += len(row["equivalent"])
    return chapters


def _print_chapters(report, out):
    print("\nper chapter:", file=out)
    for chapter, c in sorted(by_chapter(report).items()):
        killable = c["generated"] - c["equivalent"]
        print(f"  {chapter:<14} generated {c['generated']:>4}  killed {c['killed']:>4}  survived "
              f"{c['survived']:>3}  equivalent {c['equivalent']:>2}  killed "
              f"{c['killed'] / killable if killable else 1:.1%} of non-equivalent", file=out, flush=True)


def grading_time(chapter=None, repeat=3, out=sys.stdout):
    """Seconds to judge every graded test cell of each chapter on the reference answers (warm,
    median of `repeat`): what the checks add to grading one correct notebook."""
    import statistics

    chapters = sorted({e.chapter for e in exercises(chapter)})
    for name in chapters:
        found = exercises(name[:2])
        for exercise in found:  # warm: imports, the checkpoint, TransformerLens
            grade(exercise, reference_namespace(exercise), timeout=600)
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            ok = all(grade(e, reference_namespace(e), timeout=600)[0] for e in found)
            runs.append(time.perf_counter() - start)
        print(f"{name:<14} {statistics.median(runs):6.2f} s  ({len(found)} graded exercises, "
              f"reference {'passes' if ok else 'FAILS'})", file=out, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapter", help="a chapter's number or stem, e.g. 02")
    parser.add_argument("--only", nargs="*", help="exercise ids, e.g. warmup_multiplier")
    parser.add_argument("--sample", type=int, help="mutants per exercise (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--list", action="store_true", help="print the mutants, grade nothing")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--direct", action="store_true",
                        help="call the checks in-process without the judge's transport (faster)")
    parser.add_argument("--grading-time", action="store_true",
                        help="time the checks on the reference answers, per chapter; no mutants")
    args = parser.parse_args(argv)
    if args.grading_time:
        os.environ.setdefault("NOPOS_CHECK_SEED", str(args.seed))
        grading_time(args.chapter)
        return 0
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    if args.list:
        for exercise in exercises(args.chapter):
            for module, fn in exercise.functions:
                for m in mutants_of(module, fn):
                    print(m.name)
        return 0
    report = run(args.chapter, args.sample, args.seed, args.only, verbose=args.verbose,
                 direct=args.direct)
    return 0 if all(not r["survived"] for r in report.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
