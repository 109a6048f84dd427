"""ResNet18 / ResNet50 (``resnet18``, ``resnet50``) built from torchvision's ResNet blocks
(written out in :mod:`._resnet_modules`: no torchvision import).

With ``width=64``, ``in_channels=3`` and the standard stem, the parameter names and shapes are
exactly torchvision's ``resnet18``/``resnet50`` (a plain ``state_dict`` round-trips between
them). Two options make the same architectures fit other settings:

- ``small_input``: the CIFAR stem (3x3 stride-1 first conv, no max-pool) for small images;
- ``width``: channels of the first stage (64 in the paper); the CPU default uses fewer.

The module itself is in :mod:`._resnet_modules` (imported when a network is built, so the
registry stays torch-free).
"""

from __future__ import annotations

from .registry import register_architecture

LAYERS = {"resnet18": ("basic", (2, 2, 2, 2)), "resnet50": ("bottleneck", (3, 4, 6, 3))}


def _build(arch: str, num_classes: int, width: int, in_channels: int, small_input: bool):
    from ._resnet_modules import BasicBlock, Bottleneck, ResNet

    kind, layers = LAYERS[arch]
    block = BasicBlock if kind == "basic" else Bottleneck
    return ResNet(block, layers, num_classes, width=width, in_channels=in_channels,
                  small_input=small_input)


@register_architecture("resnet18", classifier=("fc",), default_width=64,
                       width="channels of the first stage (64: torchvision's resnet18)",
                       description="ResNet-18 (torchvision's blocks and names)")
def resnet18(num_classes: int, width: int, in_channels: int, small_input: bool):
    return _build("resnet18", num_classes, width, in_channels, small_input)


@register_architecture("resnet50", classifier=("fc",), default_width=64,
                       width="channels of the first stage (64: torchvision's resnet50)",
                       description="ResNet-50 (torchvision's blocks and names)")
def resnet50(num_classes: int, width: int, in_channels: int, small_input: bool):
    return _build("resnet50", num_classes, width, in_channels, small_input)
