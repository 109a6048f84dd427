"""DenseNet-121 (``densenet121``): torchvision's DenseNet (growth rate 32, blocks
(6, 12, 24, 16), 64 initial features, bottleneck size 4).

With ``width=32``, ``in_channels=3`` and the standard stem, the parameter names and shapes are
exactly torchvision's ``densenet121`` (a plain ``state_dict`` round-trips between them).

- ``width``: the growth rate (32 in DenseNet-121); the stem has ``2 * width`` channels.
- ``small_input``: the CIFAR stem (3x3 stride-1 ``features.conv0``, no ``pool0``); the three
  transitions then halve an 8x8 digit to 1x1 and a 32x32 image to 4x4.
- ``in_channels``: input channels of ``features.conv0``.

The module is built in :mod:`._densenet_modules` (imported when a network is built, so the
registry stays torch-free).
"""

from __future__ import annotations

from .registry import register_architecture


@register_architecture("densenet121", classifier=("classifier",), default_width=32,
                       width="growth rate (32: torchvision's densenet121; the stem has "
                             "2 * width channels)",
                       description="DenseNet-121 (torchvision's DenseNet and names)")
def densenet121(num_classes: int, width: int, in_channels: int, small_input: bool):
    from ._densenet_modules import densenet

    return densenet(num_classes, growth_rate=width, block_config=(6, 12, 24, 16),
                    num_init_features=2 * width, bn_size=4, in_channels=in_channels,
                    small_input=small_input)
