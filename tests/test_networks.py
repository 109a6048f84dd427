"""The architectures of lottery_mia.networks: ResNet-18/50 (torchvision's), VGG-16 with
BatchNorm (OpenLTH's CIFAR layout for small images, torchvision's vgg16_bn otherwise),
ResNet-20 (OpenLTH's CIFAR ResNet) and DenseNet-121 (torchvision's): their shapes and names,
one real training step each, exact masks, which layers ``prune_fc`` keeps dense, the
torch-free registry, and a config that trains them."""

import copy
import os
import subprocess
import sys

import pytest
import torch
import torchvision
from torch import nn

from conftest import ROOT, SRC, magnitude_mask, tiny_config
from lottery_mia.masks import Mask, model_sparsity, prunable_names
from lottery_mia.networks import ARCHITECTURES, build_model

NEW = ["vgg16_bn", "resnet20", "densenet121"]
# (arch, small_input) of every layout; resnet20 has one (it ignores small_input)
LAYOUTS = [("vgg16_bn", True), ("vgg16_bn", False), ("resnet20", True),
           ("densenet121", True), ("densenet121", False)]


def small(arch, small_input=True, in_channels=3, num_classes=10, width=4, seed=0):
    torch.manual_seed(seed)
    return build_model(arch, num_classes, width=width, in_channels=in_channels,
                       small_input=small_input)


# ---------------------------------------------------------------------- from test_models.py
@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_standard_width_matches_torchvision_parameter_for_parameter(arch):
    ours = build_model(arch, 1000, width=64, in_channels=3, small_input=False)
    ref = getattr(torchvision.models, arch)(weights=None)
    a, b = ours.state_dict(), ref.state_dict()
    assert a.keys() == b.keys()
    assert all(a[k].shape == b[k].shape for k in a)
    ours.load_state_dict(b)  # a plain state_dict round-trips


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_our_resnet_blocks_are_torchvisions_bit_for_bit(arch):
    """The blocks are written out (no torchvision import in a job): the same seed gives
    torchvision's initial weights, and forward and backward give its numbers exactly."""
    torch.manual_seed(3)
    ours = build_model(arch, 10, width=64, in_channels=3, small_input=False)
    torch.manual_seed(3)
    ref = getattr(torchvision.models, arch)(weights=None, num_classes=10)
    a, b = ours.state_dict(), ref.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)
    x = torch.randn(2, 3, 64, 64)
    out_a, out_b = ours(x), ref(x)
    assert torch.equal(out_a, out_b)
    out_a.square().sum().backward()
    out_b.square().sum().backward()
    grads = dict(ref.named_parameters())
    assert all(torch.equal(p.grad, grads[n].grad) for n, p in ours.named_parameters())


def test_small_input_stem_keeps_resolution_and_width_scales():
    m = build_model("resnet18", 10, width=8, in_channels=1, small_input=True)
    assert m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1)
    assert isinstance(m.maxpool, torch.nn.Identity)
    assert m.fc.in_features == 64
    out = m(torch.zeros(2, 1, 8, 8))
    assert out.shape == (2, 10)
    m50 = build_model("resnet50", 100, width=8, in_channels=3, small_input=True)
    assert m50.fc.in_features == 8 * 8 * 4
    assert m50(torch.zeros(2, 3, 32, 32)).shape == (2, 100)


def test_unknown_architecture():
    with pytest.raises(ValueError, match="resnet18"):
        build_model("vgg16", 10)


# ---------------------------------------------------------------------- names and shapes
def test_vgg16_bn_standard_layout_is_torchvisions_parameter_for_parameter():
    ours = build_model("vgg16_bn", 10, width=64, in_channels=3, small_input=False)
    ref = torchvision.models.vgg16_bn(num_classes=10)
    a, b = ours.state_dict(), ref.state_dict()
    assert a.keys() == b.keys()
    assert all(a[k].shape == b[k].shape for k in a)
    ours.load_state_dict(b)
    x = torch.randn(2, 3, 64, 64)
    ours.eval(), ref.eval()
    with torch.no_grad():
        assert torch.allclose(ours(x), ref(x), atol=1e-5)  # the same function, too


def test_densenet121_standard_layout_is_torchvisions_parameter_for_parameter():
    ours = build_model("densenet121", 10, width=32, in_channels=3, small_input=False)
    ref = torchvision.models.densenet121(num_classes=10)
    a, b = ours.state_dict(), ref.state_dict()
    assert a.keys() == b.keys()
    assert all(a[k].shape == b[k].shape for k in a)
    ours.load_state_dict(b)
    assert type(ours) is type(ref)  # torchvision's own class: the same forward


def test_published_widths_and_parameter_counts():
    assert {a: ARCHITECTURES[a].default_width for a in NEW} == {
        "vgg16_bn": 64, "resnet20": 16, "densenet121": 32}
    with torch.device("meta"):  # shapes only, no memory, no init cost
        count = {(a, s): sum(p.numel() for p in build_model(a, 10, small_input=s).parameters())
                 for a, s in LAYOUTS}
    assert count[("resnet20", True)] == 272_474  # OpenLTH's cifar_resnet_20 (0.27M)
    assert count[("vgg16_bn", True)] == 14_728_266  # OpenLTH's cifar_vgg_16 (14.7M)
    assert count[("vgg16_bn", False)] == 134_309_962  # torchvision's vgg16_bn(num_classes=10)
    assert count[("densenet121", False)] == 6_964_106  # torchvision's densenet121(...=10)


def test_vgg16_bn_small_input_is_openlths_cifar_vgg_and_takes_digits():
    m = small("vgg16_bn", True, in_channels=1, width=8)
    convs = [mod for mod in m.modules() if isinstance(mod, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 8, 16, 16, 32, 32, 32] + [64] * 6
    assert convs[0].in_channels == 1
    assert sum(isinstance(mod, nn.MaxPool2d) for mod in m.modules()) == 4
    assert m.fc.in_features == 64 and set(m.classifier_layers) >= {"fc"}
    assert "layers.0.conv.weight" in dict(m.named_parameters())  # OpenLTH's names
    # the pools round up: 8x8 digits end at 1x1, CIFAR at OpenLTH's 2x2 before the avg pool
    assert m.layers(torch.zeros(2, 1, 8, 8)).shape[-2:] == (1, 1)
    assert m.layers(torch.zeros(2, 1, 32, 32)).shape[-2:] == (2, 2)
    assert m(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    big = small("vgg16_bn", False, width=8)
    assert [big.classifier[i].out_features for i in (0, 3, 6)] == [512, 512, 10]


def test_resnet20_is_openlths_cifar_resnet():
    m = small("resnet20", True, in_channels=1, width=8, num_classes=7)
    assert m.conv.kernel_size == (3, 3) and m.conv.stride == (1, 1) and m.conv.in_channels == 1
    assert len(m.blocks) == 9
    assert [b.conv2.out_channels for b in m.blocks] == [8] * 3 + [16] * 3 + [32] * 3
    assert [b.conv1.stride[0] for b in m.blocks] == [1, 1, 1, 2, 1, 1, 2, 1, 1]
    with_shortcut = [i for i, b in enumerate(m.blocks) if len(b.shortcut)]
    assert with_shortcut == [3, 6]
    assert m.fc.in_features == 32 and m.fc.out_features == 7
    assert m(torch.zeros(2, 1, 8, 8)).shape == (2, 7)
    # small_input is ignored: the same network either way
    a = small("resnet20", True).state_dict()
    b = small("resnet20", False).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_densenet121_small_input_stem_and_width():
    m = small("densenet121", True, in_channels=1, width=4)
    assert m.features.conv0.kernel_size == (3, 3) and m.features.conv0.stride == (1, 1)
    assert m.features.conv0.in_channels == 1 and m.features.conv0.out_channels == 8
    assert isinstance(m.features.pool0, nn.Identity)
    assert m(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    big = small("densenet121", False, in_channels=1, width=4)
    assert big.features.conv0.kernel_size == (7, 7) and big.features.conv0.in_channels == 1
    assert isinstance(big.features.pool0, nn.MaxPool2d)


# ---------------------------------------------------------------------- forward and training
# digits-like (1x8x8, the small-input layouts: the standard stems need 32x32 or more) and
# CIFAR-like (3x32x32, every layout)
STEPS = [(a, s, 1, 8) for a, s in LAYOUTS if s] + [(a, s, 3, 32) for a, s in LAYOUTS]


@pytest.mark.parametrize("arch, small_input, in_channels, side", STEPS)
def test_forward_and_one_training_step(arch, small_input, in_channels, side):
    model = small(arch, small_input, in_channels=in_channels, num_classes=10)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(8, in_channels, side, side, generator=gen)
    y = torch.randint(0, 10, (8,), generator=gen)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()

    def loss():
        torch.manual_seed(2)  # the same dropout masks before and after the step
        return nn.functional.cross_entropy(model(x), y)

    before = loss()
    assert model(x).shape == (8, 10) and torch.isfinite(before)
    opt.zero_grad()
    before.backward()
    params = dict(model.named_parameters())
    for name in prunable_names(model):  # the backward reaches every layer
        assert params[name].grad is not None and params[name].grad.abs().sum() > 0, name
    old = {n: p.detach().clone() for n, p in params.items()}
    opt.step()
    assert all(not torch.equal(old[n], params[n]) for n in prunable_names(model))
    with torch.no_grad():
        after = loss()
    assert torch.isfinite(after) and after.item() != before.item()
    assert after.item() < before.item()  # a step down the gradient of this batch


# ---------------------------------------------------------------------- masks
@pytest.mark.parametrize("arch, small_input", LAYOUTS)
@pytest.mark.parametrize("prune_fc", [True, False])
def test_masks_are_exact_and_applied(arch, small_input, prune_fc, tmp_path):
    model = small(arch, small_input, in_channels=3)
    names = prunable_names(model, prune_fc)
    params = dict(model.named_parameters())
    total = sum(params[n].numel() for n in names)
    for sparsity in (0.5, 0.8):
        mask = magnitude_mask(model, sparsity, prune_fc=prune_fc)
        assert list(mask.tensors) == names and mask.n_total() == total
        assert mask.n_pruned() == round(sparsity * total)
        pruned = copy.deepcopy(model)
        mask.apply_(pruned)
        after = dict(pruned.named_parameters())
        for n, t in mask.tensors.items():
            assert torch.all(after[n][t == 0] == 0), n
            assert torch.equal(after[n][t == 1], params[n][t == 1]), n  # survivors kept
        assert model_sparsity(pruned, prune_fc)["zeros_prunable"] == round(sparsity * total)
        # the mask survives its file
        mask.save(tmp_path / f"mask-{sparsity}.safetensors")
        loaded = Mask.load(tmp_path / f"mask-{sparsity}.safetensors")
        loaded.validate(model)
        assert all(torch.equal(loaded.tensors[n], mask.tensors[n]) for n in names)


# ---------------------------------------------------------------------- prune_fc
DECLARED = {("vgg16_bn", True): "fc.weight", ("vgg16_bn", False): "classifier.6.weight",
            ("resnet20", True): "fc.weight", ("densenet121", True): "classifier.weight",
            ("densenet121", False): "classifier.weight"}


@pytest.mark.parametrize("arch, small_input", LAYOUTS)
def test_prune_fc_keeps_only_the_declared_classifier_dense(arch, small_input):
    model = small(arch, small_input)
    every = [f"{n}.weight" for n, m in model.named_modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    head = DECLARED[(arch, small_input)]
    assert head in every
    assert prunable_names(model, prune_fc=True) == every
    assert prunable_names(model, prune_fc=False) == [n for n in every if n != head]
    assert head not in magnitude_mask(model, 0.5, prune_fc=False).tensors


def test_vgg16_bn_hidden_linear_layers_stay_prunable():
    model = small("vgg16_bn", False)
    kept = prunable_names(model, prune_fc=False)
    assert "classifier.0.weight" in kept and "classifier.3.weight" in kept
    assert "classifier.6.weight" not in kept
    assert "classifier.6.weight" in prunable_names(model, prune_fc=True)


# ---------------------------------------------------------------------- registry, config
def test_registry_has_all_five_and_stays_torch_free():
    assert set(ARCHITECTURES) == {"resnet18", "resnet50", "vgg16_bn", "resnet20",
                                  "densenet121"}
    for a in NEW:
        spec = ARCHITECTURES[a]
        assert spec.name == a and spec.width and spec.description and spec.classifier
    code = ("import sys, lottery_mia.networks as n; "
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)"
            "; assert {'vgg16_bn', 'resnet20', 'densenet121'} <= set(n.ARCHITECTURES)")
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_a_config_with_the_new_architectures_validates():
    import yaml

    from lottery_mia.config import load_config

    recipe = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())[
        "training"]["digits"]["resnet18"]
    cfg = tiny_config()
    cfg["architectures"] = list(NEW)
    cfg["training"]["digits"] = {a: copy.deepcopy(recipe) for a in NEW}
    cfg["transfer"]["architectures"] = list(NEW)
    cfg["references"]["architectures"] = ["resnet20"]
    cfg["report"]["table1_arch"] = "resnet20"
    typed = load_config(cfg)
    assert typed.architectures == NEW
    assert [(d, a) for d, a, _ in typed.recipes()] == [("digits", a) for a in NEW]
    assert typed.recipe("digits", "vgg16_bn").width == recipe["width"]
