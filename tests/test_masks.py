import pytest
import torch
from torch import nn

from lottery_mia.masks import Mask, model_sparsity, prunable_names
from lottery_mia.networks import build_model
from conftest import magnitude_mask


def small_model(arch="resnet18"):
    torch.manual_seed(0)
    return build_model(arch, 10, width=4, in_channels=3, small_input=True)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
@pytest.mark.parametrize("sparsity", [0.0, 0.2, 0.5, 0.8, 0.95, 0.99])
def test_global_magnitude_hits_the_exact_sparsity(arch, sparsity):
    model = small_model(arch)
    mask = magnitude_mask(model, sparsity)
    n = mask.n_total()
    assert mask.n_pruned() == round(sparsity * n)
    assert abs(mask.sparsity() - sparsity) <= 0.5 / n + 1e-12


def test_ties_still_give_the_exact_count():
    model = small_model()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.5)
    mask = magnitude_mask(model, 0.5)
    assert mask.n_pruned() == round(0.5 * mask.n_total())


def test_only_conv_and_linear_weights_are_prunable():
    model = small_model()
    names = prunable_names(model)
    modules = dict(model.named_modules())
    for name in names:
        assert name.endswith(".weight")
        assert isinstance(modules[name.rsplit(".", 1)[0]], (nn.Conv2d, nn.Linear))
    assert "fc.weight" in names and "fc.bias" not in names
    assert not any("bn" in n or "downsample.1" in n for n in names)
    assert "fc.weight" not in prunable_names(model, prune_fc=False)
    mask = magnitude_mask(model, 0.9, prune_fc=False)
    assert "fc.weight" not in mask.tensors


def test_the_smallest_magnitudes_are_pruned_globally():
    model = small_model()
    mask = magnitude_mask(model, 0.7)
    params = dict(model.named_parameters())
    pruned = torch.cat([params[n].detach().abs()[t == 0] for n, t in mask.tensors.items()])
    kept = torch.cat([params[n].detach().abs()[t == 1] for n, t in mask.tensors.items()])
    assert pruned.max() <= kept.min()
    # global, not per layer: layers end up with different sparsities
    per_layer = {v["sparsity"] for v in mask.report(model)["per_layer"].values()}
    assert len(per_layer) > 1


def test_apply_zeroes_the_pruned_weights_and_report_counts_all_parameters(tmp_path):
    model = small_model()
    mask = magnitude_mask(model, 0.6)
    mask.apply_(model)
    assert abs(model_sparsity(model)["sparsity_prunable"] - mask.sparsity()) < 1e-9
    rep = mask.report(model)
    assert rep["sparsity_all_parameters"] < rep["sparsity_prunable"]
    mask.save(tmp_path / "m.pt")
    back = Mask.load(tmp_path / "m.pt")
    assert back.tensors.keys() == mask.tensors.keys()
    assert all(torch.equal(back.tensors[k], mask.tensors[k]) for k in mask.tensors)


def test_mask_rejects_a_model_of_another_shape():
    mask = magnitude_mask(small_model("resnet18"), 0.5)
    with pytest.raises(ValueError, match="does not have|shape"):
        mask.validate(small_model("resnet50"))


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_sparsity_outside_unit_interval_is_refused(bad):
    with pytest.raises(ValueError, match="sparsity"):
        magnitude_mask(small_model(), bad)
