"""The reference analyses of chapters 4-5 and their checks, without nbgrader.

Each reference function passes its check (on designed inputs and on the
shipped checkpoint); each realistic wrong answer of tests/wrong/ch04_*.py and
ch05_*.py fails the check of the exercise it breaks, with the message the
round trip expects.
"""
import importlib
import math

import pytest
import torch

from nopos.checks import CheckFailed, ch04, ch05
from nopos_reference import attention, mechanism
from nopos_reference.data import make_batch, masked_loss, previous_token_targets

CHECKS = {"bos_attention": ch04.check_bos_attention, "fit_bos_curve": ch04.check_fit_bos_curve,
          "attention_by_offset": ch04.check_attention_by_offset,
          "position_neurons": ch05.check_position_neurons,
          "neuron_threshold": ch05.check_neuron_threshold, "probe_r2": ch05.check_probe_r2,
          "mean_ablation_losses": ch05.check_mean_ablation_losses}


# ---------------------------------------------------------------- reference functions
def test_bos_attention_reads_key_column_and_averages_batch():
    pattern = torch.zeros(2, 3, 3)
    pattern[:, 0, 0] = 1
    pattern[0, 1] = torch.tensor([0.8, 0.2, 0])
    pattern[1, 1] = torch.tensor([0.4, 0.6, 0])
    pattern[:, 2] = torch.tensor([0.5, 0.25, 0.25])
    assert torch.allclose(attention.bos_attention(pattern), torch.tensor([1.0, 0.6, 0.5]))


@pytest.mark.parametrize("c_true", [0.5, 3.0, 8.05, 40.0])
def test_fit_bos_curve_recovers_c(c_true):
    q = torch.arange(50, dtype=torch.float64)
    c, r2 = attention.fit_bos_curve(c_true / (c_true + q))
    assert math.isclose(c, c_true, rel_tol=1e-3) and r2 > 0.99999


def test_attention_by_offset_on_a_pure_previous_token_head():
    n = 6
    pattern = torch.zeros(1, n, n)
    pattern[0, 0, 0] = 1
    for q in range(1, n):
        pattern[0, q, q - 1] = 1
    assert torch.allclose(attention.attention_by_offset(pattern, 2), torch.tensor([1 / n, 1.0, 0.0]))


def test_position_neurons_and_thresholds():
    p = torch.arange(10, dtype=torch.float32)
    post = torch.stack([(p >= 4).float() * 2, torch.ones(10), 3 - (p >= 7).float() * 3], dim=1)[None]
    profile, neurons = mechanism.position_neurons(post, 1.0)
    assert neurons.tolist() == [0, 2] and profile.shape == (10, 3)
    assert mechanism.neuron_threshold(profile[:, 0]) == (1, 4)
    assert mechanism.neuron_threshold(profile[:, 2]) == (-1, 7)
    assert mechanism.neuron_threshold(torch.tensor([0.0, 1, 3, 1])) == (0, None)


def test_probe_r2_perfect_and_useless():
    g = torch.Generator().manual_seed(0)
    x, x2 = torch.randn(100, 4, generator=g), torch.randn(100, 4, generator=g)
    w = torch.tensor([1.0, 2.0, -1.0, 0.5])
    assert mechanism.probe_r2(x, x @ w + 3, x2, x2 @ w + 3) == pytest.approx(1.0, abs=1e-9)
    assert mechanism.probe_r2(x, torch.randn(100, generator=g), x2, torch.randn(100, generator=g)) < 0.2


def test_mean_ablation_losses_on_the_checkpoint():
    bridge, tokens, _ = ch04.reference_run()
    tokens = tokens[:16]
    targets, mask = previous_token_targets(tokens)
    with torch.no_grad():
        clean = masked_loss(bridge(tokens), targets, mask).item()
    losses = mechanism.mean_ablation_losses(bridge, tokens, ["hook_pos_embed", "hook_embed"])
    assert list(losses) == ["hook_pos_embed", "hook_embed"]
    assert losses["hook_pos_embed"] == pytest.approx(clean, rel=1e-3)
    assert losses["hook_embed"] > 5
    with pytest.raises(KeyError, match="hook_nope"):
        mechanism.mean_ablation_losses(bridge, tokens, ["hook_nope"])


def test_reference_findings_hold_on_the_checkpoint():
    _, _, cache = ch04.reference_run()
    weights = attention.bos_attention(cache["blocks.0.attn.hook_pattern"][:, 0])
    c, r2 = attention.fit_bos_curve(weights)
    assert 5.5 < c < 7.2 and r2 > 0.999
    kernel = attention.attention_by_offset(cache["blocks.1.attn.hook_pattern"][:, 0], 2)
    assert kernel[0] > kernel[1] > kernel[2] and kernel[1] < 0.9   # soft, not a sharp head


# ---------------------------------------------------------------- checks
@pytest.mark.parametrize("name", list(CHECKS))
def test_reference_passes_its_check(name, capsys):
    CHECKS[name](getattr(attention, name, None) or getattr(mechanism, name))
    CHECKS[name](getattr(attention, name, None) or getattr(mechanism, name), on_model=True, quiet=True)
    assert "all checks passed" in capsys.readouterr().out


def _namespace():
    return {"torch": torch, "math": math, "make_batch": make_batch, "masked_loss": masked_loss,
            "previous_token_targets": previous_token_targets}


def _wrong_cases():
    for module in ("ch04_attention", "ch05_mechanism"):
        cases = importlib.import_module(f"wrong.{module}").CASES
        for case_name, case in cases.items():
            if set(case.answers) <= set(CHECKS):  # the designed experiments: tests/test_judge.py
                yield pytest.param(case, id=f"{module}-{case_name}")


@pytest.mark.parametrize("case", list(_wrong_cases()))
def test_wrong_answer_fails_its_check_with_the_right_message(case):
    for grade_id, code in case.answers.items():
        namespace = _namespace()
        exec(code, namespace)  # noqa: S102 - the course's own wrong answers
        check = CHECKS[grade_id]
        with pytest.raises(CheckFailed) as failure:
            check(namespace[grade_id], quiet=True)
            check(namespace[grade_id], on_model=True, quiet=True)
        assert case.says in str(failure.value)
        assert set(case.loses) == {f"test_{grade_id}"}


def test_checks_contain_no_reference_answers():
    """The checks never call the reference module (they would leak the answer)."""
    import inspect
    for module in (ch04, ch05):
        source = inspect.getsource(module)
        assert "nopos_reference.attention" not in source and "nopos_reference.mechanism" not in source
