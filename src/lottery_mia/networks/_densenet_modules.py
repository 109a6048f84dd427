"""The DenseNet of :mod:`.densenet` (torch is imported here, when one is built).

torchvision's ``DenseNet`` itself (its dense blocks, transitions, forward and
initialisation), with two changes to its stem ``features.conv0`` / ``features.pool0``:

- ``in_channels`` other than 3: ``conv0`` takes that many input channels;
- ``small_input``: ``conv0`` is a 3x3 stride-1 conv (padding 1) and ``pool0`` the identity
  (the CIFAR convention), so the three transitions halve an 8x8 digit to 4, 2 and 1.

A replaced ``conv0`` is initialised as torchvision initialises its convolutions (Kaiming
normal, fan_in). With neither change the network is exactly torchvision's.
"""

from __future__ import annotations

from torch import nn
from torchvision.models.densenet import DenseNet


def densenet(num_classes: int, growth_rate: int, block_config: tuple[int, ...],
             num_init_features: int, bn_size: int = 4, in_channels: int = 3,
             small_input: bool = False) -> DenseNet:
    model = DenseNet(growth_rate=growth_rate, block_config=block_config,
                     num_init_features=num_init_features, bn_size=bn_size,
                     num_classes=num_classes)
    if small_input or in_channels != 3:
        if small_input:
            conv0 = nn.Conv2d(in_channels, num_init_features, kernel_size=3, stride=1,
                              padding=1, bias=False)
        else:
            conv0 = nn.Conv2d(in_channels, num_init_features, kernel_size=7, stride=2,
                              padding=3, bias=False)
        nn.init.kaiming_normal_(conv0.weight)
        model.features.conv0 = conv0
    if small_input:
        model.features.pool0 = nn.Identity()
    return model
