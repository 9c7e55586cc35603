"""Checks for chapter 2: learning-rate schedules."""
import math
import time

from nopos.checks import Missing, agrees, call, diagnose, expect, fail, fresh_seed, passed


def _value(fn, *args, what):
    __tracebackhide__ = True
    value = call(fn, *args, what=what)
    expect(isinstance(value, (int, float)) and not isinstance(value, bool),
           f"{what}{args} should return a number (the multiplier), got {type(value).__name__}")
    return float(value)


def _fresh_lengths():
    """A warm-up and a run length the grader draws afresh (hidden tests)."""
    import random

    rng = random.Random(fresh_seed())
    w = rng.randint(2, 40)  # short: the whole curve is a few hundred calls into the kernel
    return w, w + rng.randint(2, 200)


def _first_difference(fn, want, steps, what):
    """The first step where `fn` leaves the expected curve `want(step)`: (step, got, want) or None."""
    __tracebackhide__ = True
    for s in steps:
        got, expected = _value(fn, *s, what=what), want(*s)
        if not math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-9):
            return s[0], got, expected
    return None


def _linear_warmup(step, w):
    return step / w if step < w else 1.0


def _cosine_after_warmup(step, w, t):
    if step < w:
        return step / w
    return 0.5 * (1 + math.cos(math.pi * min(step - w, t - w) / (t - w)))


def _warmup_slips(w):
    """Known wrong warm-ups, most specific first: (explains(curve), message) for `diagnose`."""
    def hard_coded(curve):  # a warm-up of its own length N, whatever warmup_steps says
        n = 1 / curve[1] if curve.get(1, 0) > 0 else None
        return (n is not None and abs(n - round(n)) < 1e-6 and round(n) != w
                and agrees(curve, lambda s: min(s / round(n), 1.0)))

    return [
        (lambda c: agrees(c, lambda s: max(s / w, 1.0)),
         f"this is the original bug: the multiplier is 1 at step 0 (no warm-up) and "
         f"{4 * w / w:g} at step {4 * w}, growing for ever: max() should be min()"),
        (lambda c: agrees(c, lambda s: s / w),
         f"after the warm-up the multiplier keeps growing ({4:g} at step {4 * w}): "
         f"it must stay at 1 once step >= warmup_steps"),
        (lambda c: agrees(c, lambda s: min((s + 1) / w, 1.0)),
         f"off by one: at step 0 your multiplier is {1 / w:g} and it reaches 1 at step "
         f"{w - 1}; the contract is step / warmup_steps, so 0 at step 0 and 1 at step {w}"),
        (lambda c: agrees(c, lambda s: min(s / (w + 1), 1.0)),
         f"off by one in the denominator: your multiplier is step / (warmup_steps + 1), so at "
         f"step {w} it is {w / (w + 1):g} and it reaches 1 one step late; divide by "
         f"warmup_steps itself"),
        (lambda c: w > 1 and agrees(c, lambda s: min(s / (w - 1), 1.0)),
         f"off by one in the denominator: your multiplier is step / (warmup_steps - 1), so it "
         f"reaches 1 at step {w - 1}, one step early; divide by warmup_steps itself"),
        (hard_coded,
         lambda c: f"your warm-up lasts {round(1 / c[1])} steps whatever warmup_steps is "
                   f"(called with warmup_steps={w}): the function ignores its warmup_steps "
                   f"argument; use it instead of a fixed number"),
        (lambda c: w >= 2 and all(c[s] == 0.0 for s in c if 0 < s < w),
         f"the multiplier is 0 all through the warm-up (step {w // 2} gives 0): integer "
         f"division? step // warmup_steps rounds down to 0; use step / warmup_steps"),
        (lambda c: agrees(c, lambda s: min(s / w, 1.0) ** 2),
         "the warm-up is not linear: your multiplier is (step / warmup_steps) ** 2; "
         "it should rise by the same amount every step"),
        (lambda c: not math.isclose(c[0], 0.0, abs_tol=1e-12),
         lambda c: f"at step 0 the multiplier should be 0 (warm-up starts from nothing), got "
                   f"{c[0]:g}"),
    ]


def check_warmup_multiplier(warmup_multiplier, warmup_steps=100, fresh=False, quiet=False):
    """0 at step 0, linear up to 1 at warmup_steps, 1 for ever after (`fresh`: the whole
    curve, every step, for a warm-up length the grader draws). A curve that differs is
    explained by the first known slip that reproduces it, or said to differ where it does."""
    __tracebackhide__ = True
    if fresh:
        warmup_steps, _ = _fresh_lengths()
    w = warmup_steps
    name = "warmup_multiplier"
    steps = range(3 * w + 2) if fresh else (0, 1, 2, w // 2, w - 1, w, w + 1, 2 * w)
    steps = sorted({s for s in (*steps, 4 * w, 10**6) if s >= 0})
    curve = {s: _value(warmup_multiplier, s, w, what=name) for s in steps}
    if not agrees(curve, lambda s: _linear_warmup(s, w), rel_tol=1e-6, abs_tol=1e-9):
        s = next(s for s in steps if not math.isclose(curve[s], _linear_warmup(s, w),
                                                      rel_tol=1e-6, abs_tol=1e-9))
        diagnose(curve, _warmup_slips(w),
                 f"with warmup_steps={w} the multiplier is {curve[s]:g} at step {s}, expected "
                 f"{_linear_warmup(s, w):g} (step / warmup_steps, capped at 1); this is none of "
                 f"the slips the check knows, so something else is off: compare your curve "
                 f"with that one, step by step")
    if not quiet:
        passed(name)


def check_warmup_cosine_multiplier(fn, warmup_steps=50, total_steps=600, fresh=False, quiet=False):
    """Linear warm-up to 1, cosine down to 0 at total_steps, 0 afterwards (`fresh`: the whole
    curve, every step, for lengths the grader draws)."""
    __tracebackhide__ = True
    if fresh:
        warmup_steps, total_steps = _fresh_lengths()
    w, t = warmup_steps, total_steps
    name = "warmup_cosine_multiplier"

    def at(step):
        return _value(fn, step, w, t, what=name)

    expect(math.isclose(at(0), 0.0, abs_tol=1e-12), f"at step 0 the multiplier should be 0, got {at(0):g}")
    expect(math.isclose(at(w // 2), (w // 2) / w, rel_tol=1e-9),
           f"during the warm-up the multiplier should rise linearly: step {w // 2} should give "
           f"{(w // 2) / w:g}, got {at(w // 2):g}")
    middle = w + (t - w) // 2
    want = 0.5 * (1 + math.cos(math.pi * (middle - w) / (t - w)))
    got = at(middle)
    # Name this likely slip before the generic end-of-warm-up check, which it also fails.
    if math.isclose(got, 0.5 * (1 + math.cos(math.pi * middle / t)), rel_tol=1e-6):
        fail(f"the cosine runs over all {t} steps, so it is not at 1 when the warm-up ends "
             f"(step {w} gives {at(w):g}); measure progress from the end of the warm-up: "
             f"(step - warmup_steps) / (total_steps - warmup_steps)")
    expect(math.isclose(at(w), 1.0, rel_tol=1e-9),
           f"at the end of the warm-up (step {w}) the multiplier should be 1, got {at(w):g}")
    expect(math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9),
           f"halfway through the decay (step {middle}) a cosine from 1 to 0 gives {want:.4f}, "
           f"got {got:.4f}")
    steps = list(range(w, t + 1, max(1, (t - w) // 20)))
    values = [at(s) for s in steps]
    rising = [(a, b) for a, b in zip(steps, steps[1:]) if at(b) > at(a) + 1e-12]
    expect(not rising, f"after the warm-up the multiplier must only fall, but it rises between "
                       f"steps {rising[0][0] if rising else ''} and {rising[0][1] if rising else ''}")
    expect(math.isclose(at(t), 0.0, abs_tol=1e-9),
           f"at total_steps ({t}) the multiplier should reach 0, got {at(t):g}")
    late = at(t + (t - w) // 2)
    if late > 1e-9:
        fail(f"after total_steps the multiplier comes back up ({late:.3f} at step "
             f"{t + (t - w) // 2}): a cosine rises again past pi; keep it at 0 after total_steps")
    expect(late >= 0, f"the multiplier must never be negative, got {late:g} after total_steps")
    expect(min(values) >= -1e-12, "the multiplier must never be negative")
    much_later = at(10**6)
    expect(abs(much_later) <= 1e-12, f"long after total_steps (step 1000000) the multiplier "
                                     f"should be 0, got {much_later:g}")
    if fresh:  # every step, not a few sampled ones
        off = _first_difference(fn, _cosine_after_warmup,
                                [(s, w, t) for s in range(t + w + 2)], name)
        if off:
            fail(f"with warmup_steps={w}, total_steps={t} the multiplier leaves the warm-up + "
                 f"cosine curve at step {off[0]}: got {off[1]:.6g}, expected {off[2]:.6g}")
    if not quiet:
        passed(name)


RECIPE_KEYS = {"lr", "warmup_steps", "total_steps", "batch_size"}
OPTIONAL_KEYS = {"betas": (0.9, 0.98), "weight_decay": 0.1, "clip": 1.0}


def _check_recipe_form(recipe, max_steps, max_batch):
    __tracebackhide__ = True
    expect(recipe is not None and not isinstance(recipe, Missing),
           "MY_RECIPE is not written yet: set it in the cell above")
    expect(isinstance(recipe, dict), f"MY_RECIPE should be a dict, got {type(recipe).__name__}")
    missing = sorted(RECIPE_KEYS - set(recipe))
    expect(not missing, f"MY_RECIPE is missing {missing}: write "
                        f"dict(lr=..., warmup_steps=..., total_steps=..., batch_size=...)")
    unknown = sorted(set(recipe) - RECIPE_KEYS - set(OPTIONAL_KEYS) - {"schedule"})
    expect(not unknown, f"MY_RECIPE has keys the recipe does not use: {unknown}; keep "
                        f"lr, warmup_steps, total_steps, batch_size (and optionally betas, "
                        f"weight_decay, clip)")
    for key in sorted(RECIPE_KEYS):
        value = recipe[key]
        expect(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
               f"MY_RECIPE['{key}'] should be a number, got {value!r}")
    for key in ("warmup_steps", "total_steps", "batch_size"):
        expect(float(recipe[key]).is_integer(), f"MY_RECIPE['{key}'] should be a whole number, "
                                                f"got {recipe[key]!r}")
    expect(0 < recipe["lr"] < 1, f"a learning rate of {recipe['lr']} is not sensible for AdamW")
    expect(0 < recipe["total_steps"] <= max_steps,
           f"the budget is {max_steps} steps; MY_RECIPE asks for {recipe['total_steps']}")
    expect(0 < recipe["batch_size"] <= max_batch,
           f"the budget is batch size {max_batch}; MY_RECIPE asks for {recipe['batch_size']}")
    expect(0 <= recipe["warmup_steps"] < recipe["total_steps"],
           "warmup_steps must be shorter than total_steps")


# The same recipe always trains to the same result: keep it, so that a class whose
# learners chose the same recipe trains it once, and checking it again is instant.
CACHE_VARIABLE = "NOPOS_RECIPE_CACHE"  # a folder; default ~/.cache/nopos/recipes
_TRAINING_CODE = ["nopos/config.py", "nopos/model.py", "nopos_reference/data.py",
                  "nopos/checks/ch02.py", "nopos_reference/train.py",
                  "nopos_reference/training.py"]


def _cache_file(recipe, seed):
    """Where the result of training `recipe` is kept: named by the recipe, the seed,
    torch's version and the training code, so any change trains afresh."""
    import hashlib
    import json
    import os
    from pathlib import Path

    import torch

    root = Path(__file__).resolve().parents[2]
    code = hashlib.sha256()
    for name in _TRAINING_CODE:
        try:
            code.update((root / name).read_bytes())
        except OSError:
            code.update(name.encode())
    key = json.dumps({"recipe": recipe, "seed": seed, "torch": torch.__version__,
                      "code": code.hexdigest()}, sort_keys=True, default=repr)
    folder = os.environ.get(CACHE_VARIABLE) or Path.home() / ".cache" / "nopos" / "recipes"
    return Path(folder) / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


def _cached(path):
    import json

    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
        return float(kept["eval_loss"]), dict(kept["history"], cached=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _keep(path, eval_loss, history):
    import json
    import os

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps({"eval_loss": eval_loss, "history": history}), encoding="utf-8")
        os.replace(partial, path)  # whole or not at all, with several graders at once
    except OSError:
        pass  # a read-only home: train again next time


def train_recipe(recipe, seed=0):
    """Train the full model on the CPU with `recipe` and the course's own warm-up +
    cosine schedule (so a mistake in your schedule costs only that exercise).
    Returns (eval loss, history); a recipe trained before is not trained again."""
    full = {**OPTIONAL_KEYS, **recipe}
    full.update({k: int(full[k]) for k in ("warmup_steps", "total_steps", "batch_size")})
    full["betas"] = [float(b) for b in full["betas"]]
    path = _cache_file(full, seed)
    kept = _cached(path)
    if kept is not None:
        return kept
    eval_loss, history = _train_recipe(dict(full, betas=tuple(full["betas"])), seed)
    _keep(path, eval_loss, history)
    return eval_loss, history


def _train_recipe(full, seed):
    from nopos.config import model_config
    from nopos.model import build_model
    from nopos_reference.train import eval_batch, evaluate, train

    w, t = full["warmup_steps"], full["total_steps"]
    cfg = model_config()
    model = build_model(cfg, seed=seed)
    wall, cpu = time.perf_counter(), time.process_time()
    history = train(model, full, seed=seed, progress=False, device="cpu",
                    multiplier=lambda s: _cosine_after_warmup(s, w, t))
    history["wall_s"], history["cpu_s"] = time.perf_counter() - wall, time.process_time() - cpu
    return evaluate(model, eval_batch(cfg))[0], history


def _load_note(history):
    """How long training took, and whether the machine was busy (CPU time far below wall time
    per thread means other work held the cores)."""
    import torch

    if history.get("cached"):
        return (f"  (this exact recipe was trained before, in {history['wall_s']:.1f} s: "
                f"the result is reused)")
    wall, cpu, threads = history["wall_s"], history["cpu_s"], torch.get_num_threads()
    note = f"  trained {len(history['loss'])} steps in {wall:.1f} s ({cpu:.1f} s of CPU, {threads} thread(s))"
    if wall > 5 and cpu < 0.5 * wall * threads:
        note += ": the machine was busy with other work, so this took longer than the recipe needs"
    return note


def check_recipe(recipe, max_steps=500, max_batch=64, limit=0.05, quiet=False):
    """The recipe is complete, inside the budget, and trains the model to the limit."""
    __tracebackhide__ = True
    _check_recipe_form(recipe, max_steps, max_batch)
    from nopos_reference.train import can_train

    if not can_train():  # a class server before chapter 3's grades close: the grader trains it
        print("your recipe is complete and inside the budget; this kernel cannot train it yet "
              "(the course's training step is chapter 3's exercise, published when its grades "
              "close), so how well it trains is checked when your notebook is graded")
        return
    eval_loss, history = train_recipe(recipe)
    losses = history["loss"]
    start = losses[0] if losses else float("nan")
    unsettled = not math.isfinite(eval_loss) or any(not math.isfinite(x) for x in losses) or (
        max(losses[len(losses) // 4:], default=0) > start + 0.5)
    if eval_loss > 3 or not math.isfinite(eval_loss):
        if unsettled or recipe["lr"] >= 0.05:
            fail(f"eval loss {eval_loss:.3f}: training did not settle (the loss rose above its "
                 f"starting value {start:.2f} or became infinite): the learning rate "
                 f"{recipe['lr']:g} is too large")
        if recipe["lr"] <= 1e-3:
            fail(f"eval loss {eval_loss:.3f}: the model hardly learned in your budget; the "
                 f"learning rate {recipe['lr']:g} is far too small (the original's 1e-4 needs "
                 f"thousands of steps)")
        fail(f"eval loss {eval_loss:.3f}: the model hardly learned in {recipe['total_steps']} "
             f"steps; use the sweep's best learning rate")
    expect(eval_loss <= limit, f"eval loss {eval_loss:.4f} is above {limit}: your recipe learns, "
                               f"but not well enough in its budget (raise the learning rate or "
                               f"decay it to 0 by the end)")
    if not quiet:
        passed(f"your recipe (eval loss {eval_loss:.4f})")
        print(_load_note(history))


def check_recipe_choice(recipe, quiet=False):
    """Choices the sweep supports: a peak learning rate from its good range, a short warm-up."""
    __tracebackhide__ = True
    _check_recipe_form(recipe, 10**9, 10**9)
    expect(1e-3 <= recipe["lr"] <= 0.1, f"choose the peak learning rate from the sweep's good "
                                        f"range (1e-3 to 1e-1), not {recipe['lr']:g}")
    expect(recipe["warmup_steps"] <= recipe["total_steps"] // 4,
           "a warm-up longer than a quarter of the run wastes the budget")
    if not quiet:
        passed("your recipe's choices")
