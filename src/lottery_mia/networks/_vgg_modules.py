"""The VGG module of :mod:`.vgg` (torch is imported here, when a VGG is built).

Two layouts of VGG-16 with BatchNorm, the same conv plan
``[64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512(, M)]``
(3x3 conv, padding 1, + BatchNorm2d + ReLU; ``M`` a 2x2 max-pool), every channel count
scaled by ``width / 64``:

- :class:`CifarVGG` (``small_input``): OpenLTH's ``cifar_vgg_16`` (``models/cifar_vgg.py``):
  four max-pools, an average pool to 1x1 and one ``fc = Linear(8 * width, num_classes)``;
  names ``layers.<i>.conv``, ``layers.<i>.bn``, ``fc`` as OpenLTH's. Two changes make it
  fit any small image: the max-pools use ``ceil_mode=True`` (identical on the even sides of
  CIFAR, 32 -> 16 -> 8 -> 4 -> 2; an 8x8 digit goes 8 -> 4 -> 2 -> 1 -> 1 instead of failing
  at the fourth pool), and the final pool is ``AdaptiveAvgPool2d(1)`` (OpenLTH's
  ``AvgPool2d(2)`` on the 2x2 map of a 32x32 input is the same thing).
- :class:`VGG` (standard stem): torchvision's ``vgg16_bn`` (``features``, ``avgpool``,
  ``classifier``); at ``width=64``, ``in_channels=3`` its parameter names and shapes are
  exactly torchvision's. The two hidden ``Linear`` layers have ``4096 * width / 64`` units.

Both are initialised as torchvision's VGG: Kaiming normal (fan_out) convolutions with zero
bias, BatchNorm weight 1 and bias 0, ``Linear`` weights normal(0, 0.01) with zero bias.
(OpenLTH's own default differs: Kaiming normal fan_in on every conv and linear weight and
BatchNorm weights uniform in [0, 1).)
"""

from __future__ import annotations

import torch
from torch import nn

# channel multiples of ``width`` (64 in VGG-16), "M" a max-pool; the standard layout adds a
# fifth max-pool at the end
PLAN = [1, 1, "M", 2, 2, "M", 4, 4, 4, "M", 8, 8, 8, "M", 8, 8, 8]


def _init_(model: nn.Module) -> None:
    """torchvision's VGG initialisation."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.constant_(m.bias, 0)


class ConvModule(nn.Module):
    """OpenLTH's VGG unit: 3x3 conv (padding 1) -> BatchNorm -> ReLU."""

    def __init__(self, in_filters: int, out_filters: int):
        super().__init__()
        self.conv = nn.Conv2d(in_filters, out_filters, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(out_filters)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class CifarVGG(nn.Module):
    """OpenLTH's CIFAR VGG-16 (BatchNorm), its pools made safe for images down to 8x8."""

    def __init__(self, num_classes: int, width: int = 64, in_channels: int = 3):
        super().__init__()
        layers, filters = [], in_channels
        for spec in PLAN:
            if spec == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
            else:
                layers.append(ConvModule(filters, spec * width))
                filters = spec * width
        self.layers = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(filters, num_classes)
        _init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.layers(x)), 1))


class VGG(nn.Module):
    """torchvision's ``vgg16_bn`` (names and shapes at ``width=64``), channels and hidden
    units scaled by ``width / 64``."""

    def __init__(self, num_classes: int, width: int = 64, in_channels: int = 3,
                 dropout: float = 0.5):
        super().__init__()
        layers, filters = [], in_channels
        for spec in PLAN + ["M"]:
            if spec == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(filters, spec * width, kernel_size=3, padding=1),
                           nn.BatchNorm2d(spec * width), nn.ReLU(inplace=True)]
                filters = spec * width
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        hidden = 64 * width  # 4096 at width 64
        self.classifier = nn.Sequential(
            nn.Linear(filters * 7 * 7, hidden), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )
        _init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))
