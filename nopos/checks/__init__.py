"""Checks that say what is wrong with an answer, in words.

Each chapter has a module (`nopos.checks.ch01` ...). A check calls the
learner's function on inputs built so that each likely mistake gives a
recognisable wrong value, and raises `CheckFailed` with a sentence that names
the mistake. They test behaviour, not code, and contain no answers.
"""
import torch


class CheckFailed(AssertionError):
    """An answer is wrong; the message says how."""


class NotDefined(NameError):
    """The notebook never defined a name a check needs (raised when grading)."""


def fail(message):
    __tracebackhide__ = True
    raise CheckFailed(message)


def expect(condition, message):
    __tracebackhide__ = True
    if not condition:
        raise CheckFailed(message)


def diagnose(observed, hypotheses, otherwise):
    """Fail with the message of the first known mistake that explains what a function computed,
    or with `otherwise` when none does.

    observed: {input: value the learner's function gave}; hypotheses: [(explains(observed) ->
    bool, message or message(observed))], most specific first. Each hypothesis is tested against every observed value,
    so a message names a cause only when that cause reproduces the answer; `otherwise` says
    honestly what differs (an input, the value, the value expected) without guessing why.
    Rejected: a chain of `expect`s, each on one sampled point, whose first failure names a cause
    that another mistake (one step aside) also trips.
    """
    __tracebackhide__ = True
    for explains, message in hypotheses:
        if explains(observed):
            fail(message(observed) if callable(message) else message)
    fail(otherwise)


def agrees(observed, predict, rel_tol=1e-9, abs_tol=1e-12):
    """Does `predict(input)` give every observed value? (a hypothesis for `diagnose`)"""
    import math

    return all(math.isclose(value, predict(*key) if isinstance(key, tuple) else predict(key),
                            rel_tol=rel_tol, abs_tol=abs_tol) for key, value in observed.items())


SEED_VARIABLE = "NOPOS_CHECK_SEED"  # fixes the grader's fresh draws (tools/mutants.py sets it)


def fresh_seed():
    """A seed for a hidden test's inputs, drawn afresh each time it grades: a learner who read
    a check's source still cannot know them. The environment variable fixes it for a report."""
    import os
    import secrets

    fixed = os.environ.get(SEED_VARIABLE)
    return int(fixed) if fixed else secrets.randbelow(2**31)


def random_tokens(batch, n_ctx, d_vocab, seed):
    """A batch like chapter 1's make_batch draws (the same stream for a seed), written out here:
    checks must not import chapter answers, which a class server keeps from learners."""
    from nopos.config import BOS

    tokens = torch.randint(1, d_vocab, (batch, n_ctx), generator=torch.Generator().manual_seed(seed))
    tokens[:, 0] = BOS
    return tokens


def passed(what):
    print(f"\N{HEAVY CHECK MARK} {what}: all checks passed")


def as_tensor(value, what):
    """Accept a tensor (or a float for scalar results) and say so clearly otherwise."""
    __tracebackhide__ = True
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (int, float)):
        return torch.tensor(float(value))
    fail(f"{what} should be a torch tensor, got {type(value).__name__}")


def own_copy(value):
    """The learner's own copy of a check's tensor (in lists, tuples and dicts too): what
    the function does to it in place never reaches what the check compares against."""
    if isinstance(value, torch.Tensor):
        copy = value.detach().clone()
        return copy.requires_grad_(True) if value.requires_grad else copy
    if type(value) in (list, tuple):
        return type(value)(own_copy(v) for v in value)
    if type(value) is dict:
        return {k: own_copy(v) for k, v in value.items()}
    return value  # a model, an optimiser, a generator: changing them is the function's job


def call(fn, *args, what=None, left=None, changes=(), **kwargs):
    """Call a learner's function on copies of the check's tensors (`own_copy`); an exception
    becomes a readable failure, and so does an argument the call changed (`unchanged`):
    a tensor's values, a model's weights or train/eval mode. `changes` names the positions
    (or keywords) of the arguments the function is meant to change (train_step's model).
    A check that judges what the function did to its tensor arguments passes a list as
    `left`: it gets the positional arguments as the function left them."""
    __tracebackhide__ = True
    name = what or getattr(fn, "__name__", "your function")
    args, kwargs = [own_copy(a) for a in args], {k: own_copy(v) for k, v in kwargs.items()}
    if left is not None:
        left.extend(args)
    before = snapshot(fn, args, kwargs, changes)
    try:
        result = fn(*args, **kwargs)
    except NotImplementedError:
        fail(f"{name} is not written yet (it still raises NotImplementedError)")
    except NotDefined as error:
        fail(str(error))
    except CheckFailed:
        raise
    except Exception as error:  # the learner's bug, reported in words
        fail(f"{name} raised {type(error).__name__}" + (f": {error}" if str(error) else ""))
    unchanged(name, before)
    return result


def experiment_result(fn, *args, what):
    """A designed experiment's result (exercises 5.5 and 6.5): `fn(*args)` on copies, which
    must return a dict of the fractions clean, moved and control, each a Python float."""
    __tracebackhide__ = True
    result = call(fn, *args, what=what)
    expect(isinstance(result, dict) and set(result) == {"clean", "moved", "control"},
           f"{what} should return a dict with the keys clean, moved and control, got "
           f"{sorted(result) if isinstance(result, dict) else type(result).__name__}")
    for key, value in result.items():
        expect(isinstance(value, float) and 0.0 <= value <= 1.0,
               f"{key} should be a fraction of sequences, a Python float in [0, 1] (use .item()), "
               f"got {value!r}")
    return result


# --------------------------------------------------- what a call must leave alone
def _parameter_names(fn, args, kwargs):
    """The learner's own names for the arguments, where the function's signature says them
    (a notebook name seen from the grader carries its signature: nopos.grading.judge)."""
    import inspect

    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        bound = {}
    names = {}
    for position, value in enumerate(args):
        names[position] = next((n for n, v in bound.items() if v is value), None)
    for key in kwargs:
        names[key] = key
    return names


def _state(value):
    """A copy of what a call may not change in `value`, or None for what it may (a generator,
    an optimiser: changing them is the function's job)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, torch.nn.Module):
        return (value.training, {k: v.detach().clone() for k, v in value.state_dict().items()})
    if type(value) in (list, tuple):
        return [_state(v) for v in value]
    if type(value) is dict:
        return {k: _state(v) for k, v in value.items()}
    return None


def snapshot(fn, args, kwargs, changes=()):
    """[(argument's name, the argument, its state)] for every argument not in `changes`."""
    names = _parameter_names(fn, args, kwargs)
    where = {**dict(enumerate(args)), **kwargs}
    return [(names.get(key) or _ordinal(key), value, _state(value))
            for key, value in where.items() if key not in changes and _state(value) is not None]


def _ordinal(key):
    if isinstance(key, str):
        return key
    return f"{['first', 'second', 'third', 'fourth', 'fifth'][key] if key < 5 else f'#{key + 1}'} argument"


def _changed(value, state):
    """How `value` differs from its `state` before the call: a phrase, or None."""
    if isinstance(value, torch.Tensor):
        same = (isinstance(state, torch.Tensor) and value.shape == state.shape
                and value.dtype == state.dtype and torch.equal(value.detach(), state))
        return None if same else "values"
    if isinstance(value, torch.nn.Module):
        training, weights = state
        if value.training != training:
            return "train mode" if value.training else "eval mode"
        now = value.state_dict()
        # a key added on the way (a layer norm keeping a Parameter it was given) is no change
        if any(k not in now or not torch.equal(now[k].detach(), w) for k, w in weights.items()):
            return "weights"
        return None
    if type(value) in (list, tuple, dict):
        pairs = value.items() if type(value) is dict else enumerate(value)
        for key, v in pairs:
            inner = state.get(key) if type(state) is dict else state[key] if key < len(state) else None
            if inner is not None and _changed(v, inner):
                return "values"
        return None if len(value) == len(state) else "values"
    return None


def unchanged(name, before):
    """Fail if the call changed an argument it was not meant to: research code whose
    function edits its caller's activations or model in place corrupts every later
    measurement, so a right result does not make up for it."""
    __tracebackhide__ = True
    for arg, value, state in before:
        what = _changed(value, state)
        if what == "train mode":
            fail(f"{name} left the model (`{arg}`) in train mode; it was in eval mode when "
                 f"given: a function that measures must leave its caller's model as it found "
                 f"it (no model.train(), or restore the mode it had)")
        if what == "eval mode":
            fail(f"{name} left the model (`{arg}`) in eval mode; it was in train mode when "
                 f"given: restore the mode it had (was_training = model.training ... "
                 f"model.train(was_training))")
        if what == "weights":
            fail(f"{name} changed the weights of `{arg}` in place: a function that measures must "
                 f"leave its caller's model as it found it (edit a copy, or use a hook)")
        if what:
            fail(f"{name} changed `{arg}` in place: the caller still needs its argument as "
                 f"it was; work on a copy (x = x.clone()) or build new tensors")


# What a check may receive in place of a learner's value when grading (the
# kernel sends data, nopos/grading/transport.py): defined here so checks need
# nothing from the grader.
class Opaque:
    """Stands for a value the learner returned that does not cross as data."""

    def __init__(self, type_name, text=""):
        self.type_name, self.text = type_name, text

    def __repr__(self):
        return f"<{self.type_name}: {self.text}>" if self.text else f"<{self.type_name}>"


class Missing(Opaque):
    """A name the notebook never defined (its answer cell failed or was not run)."""
