"""The mutation report's instrument (tools/mutants.py): its equivalent mutants really are
equivalent, and a small sample of mutants is graded through the judge (the full run is
`make mutants`, docs/mutants.md)."""
import copy
import math
import random

import pytest
import torch

from tools import mutants


def _by_name():
    found = {}
    for exercise in mutants.exercises():
        for module, fn in exercise.functions:
            for m in mutants.mutants_of(module, fn):
                found[m.name] = m
    return found


def _same(a, b, tol=1e-12):
    if isinstance(a, BaseException):
        return type(a) is type(b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k], tol) for k in a)
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and (a.dtype == b.dtype or tol > 1e-12) \
            and torch.allclose(a.double(), b.double(), rtol=tol, atol=tol, equal_nan=True)
    if isinstance(a, torch.nn.Module):
        return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    if isinstance(a, torch.optim.lr_scheduler.LRScheduler):
        return a.last_epoch == b.last_epoch
    if isinstance(a, torch.optim.Optimizer):
        return True  # its parameters are compared through the model
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float):
        return isinstance(b, float) and math.isclose(a, b, rel_tol=tol, abs_tol=tol * 1e-3)
    return a == b


@pytest.mark.slow  # ~20 s: a model run for the ablation mutants, a 50001-point grid for the fit
def test_every_listed_equivalent_mutant_exists_and_agrees_with_the_reference():
    found, inputs = _by_name(), mutants._random_inputs()
    missing = sorted(set(mutants.EQUIVALENT) - set(found))
    assert not missing, f"listed as equivalent but no longer generated: {missing}"
    for name in mutants.EQUIVALENT:
        mutant = found[name]
        key = f"{mutant.module}:{mutant.function}"
        assert key in inputs, f"no random inputs for {key}: add them to mutants._random_inputs"
        reference = getattr(__import__(mutant.module, fromlist=[mutant.function]), mutant.function)
        built = mutant.build()
        rng, (_, tol) = random.Random(0), mutants.equivalence(name)
        on_model = "ablation" in key or "c_from_weights" in key
        for _ in range(2 if on_model else 8):  # a model run costs a second
            args, kwargs = inputs[key](rng)
            ours = (copy.copy(args), kwargs) if on_model else copy.deepcopy((args, kwargs))
            want, got = _outcome(reference, args, kwargs), _outcome(built, *ours)
            assert _same(want, got, tol), f"{name}: {want} != {got} on {args} {kwargs}"
            assert _same(args, ours[0]), f"{name}: leaves its inputs in another state"


def _outcome(fn, args, kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - the same error counts as the same outcome
        return error


def test_mutants_are_named_stably_and_uniquely():
    names = [m.name for e in mutants.exercises("02") for mod, fn in e.functions
             for m in mutants.mutants_of(mod, fn)]
    assert len(names) == len(set(names))
    assert names == [m.name for e in mutants.exercises("02") for mod, fn in e.functions
                     for m in mutants.mutants_of(mod, fn)]


@pytest.mark.slow
def test_a_sample_of_mutants_is_killed_through_the_judge(capsys):
    """Chapters 1 and 2 (the cheap ones), a seeded sample: every non-equivalent mutant is killed."""
    report = {}
    for chapter in ("01", "02"):
        report.update(mutants.run(chapter, sample=4, seed=1))
    survivors = [n for row in report.values() for n in row["survived"]]
    assert not survivors, survivors
    assert sum(row["generated"] for row in report.values()) >= 16
