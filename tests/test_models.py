import pytest
import torch
import torchvision

from lottery_mia.models import build_model


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_standard_width_matches_torchvision_parameter_for_parameter(arch):
    ours = build_model(arch, 1000, width=64, in_channels=3, small_input=False)
    ref = getattr(torchvision.models, arch)(weights=None)
    a, b = ours.state_dict(), ref.state_dict()
    assert a.keys() == b.keys()
    assert all(a[k].shape == b[k].shape for k in a)
    ours.load_state_dict(b)  # a plain state_dict round-trips


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
