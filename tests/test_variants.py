"""Chapter 6's variant models: shipped, loadable, and made longer without changing them."""
import pytest
import torch

from nopos.checkpoint import load_checkpoint, load_reference
from nopos.variants import DATA, VARIANTS, load_variant, longer, without_bos
from nopos_reference.data import make_batch


def test_the_variants_are_the_files_the_package_test_expects():
    assert sorted(f for f, _ in VARIANTS.values()) == ["attention_only.pt", "learned_positions.pt",
                                                        "no_bos.pt", "seed_1.pt", "seed_2.pt", "seed_3.pt"]


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_loads_with_what_made_it(name):
    model, info = load_variant(name)
    from tools.variants import seed_of
    assert info["seed"] == seed_of(name) and info["command"].endswith(name) and info["eval_accuracy"] > 0.5
    assert len(info["running_loss"]) == 60  # every 10th of 600 steps
    assert bool(model.pos.weight.requires_grad) == VARIANTS[name][1]
    assert getattr(model.cfg, "attn_only", False) == (name == "attention_only")


def test_a_checkpoint_loads_only_as_what_it_is():
    with pytest.raises(ValueError, match="positions=True"):
        load_checkpoint(DATA / VARIANTS["learned_positions"][0])
    with pytest.raises(KeyError, match="known"):
        load_variant("no_such_model")


def test_longer_changes_nothing_on_the_trained_positions():
    tokens = make_batch(4, 50, 300, torch.Generator().manual_seed(0))
    for model in (load_reference()[0], load_variant("learned_positions")[0]):
        long = longer(model, 100)
        assert long.cfg.n_ctx == 100 and long.pos.weight.shape[0] == 100
        assert torch.equal(long.pos.weight[:50], model.pos.weight)
        with torch.no_grad():
            assert torch.allclose(long(tokens), model(tokens), atol=1e-5)
    learned = longer(load_variant("learned_positions")[0], 100)
    assert learned.pos.weight[50:].abs().max() > 0  # untrained rows: their random initialisation
    assert longer(load_reference()[0], 100).pos.weight.abs().max() == 0


def test_without_bos_replaces_only_the_first_token():
    tokens = make_batch(64, 10, 300, torch.Generator().manual_seed(0))
    plain = without_bos(tokens, 300, torch.Generator().manual_seed(1))
    assert torch.equal(plain[:, 1:], tokens[:, 1:]) and (plain[:, 0] >= 1).all()
    assert (plain[:, 0] < 300).all() and len(set(plain[:, 0].tolist())) > 10
