"""The ResNet-20 module of :mod:`.resnet20` (torch is imported here, when one is built).

OpenLTH's ``cifar_resnet_20`` (``models/cifar_resnet.py``, He et al. 2016's CIFAR ResNet):
a 3x3 stem of ``width`` channels, three stages of three basic blocks of ``width``,
``2 * width``, ``4 * width`` channels (stride 2 at the first block of stages 2 and 3, a
1x1 conv + BatchNorm shortcut there, the identity elsewhere), a global average pool and
``fc``. Parameter names are OpenLTH's (``conv``, ``bn``, ``blocks.<i>.conv1`` ...,
``blocks.<i>.shortcut.0``, ``fc``), so a state dict of OpenLTH's model loads as is.

Initialised as OpenLTH's default (``model_init='kaiming_normal'``,
``batchnorm_init='uniform'``): Kaiming normal (fan_in) weights of every conv and linear
layer, BatchNorm weights uniform in [0, 1) and biases 0 (the ``fc`` bias keeps PyTorch's
default).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    """A basic residual block: conv3x3-BN-ReLU-conv3x3-BN + shortcut, ReLU."""

    def __init__(self, f_in: int, f_out: int, downsample: bool = False):
        super().__init__()
        stride = 2 if downsample else 1
        self.conv1 = nn.Conv2d(f_in, f_out, kernel_size=3, stride=stride, padding=1,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(f_out)
        self.conv2 = nn.Conv2d(f_out, f_out, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(f_out)
        if downsample or f_in != f_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(f_in, f_out, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(f_out))
        else:
            self.shortcut = nn.Sequential()  # no parameters (OpenLTH's identity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """OpenLTH's CIFAR ResNet of ``depth = 6 * blocks + 2`` layers (20: three per stage)."""

    def __init__(self, num_classes: int, width: int = 16, in_channels: int = 3,
                 blocks_per_stage: int = 3):
        super().__init__()
        plan = [(width, blocks_per_stage), (2 * width, blocks_per_stage),
                (4 * width, blocks_per_stage)]
        current = plan[0][0]
        self.conv = nn.Conv2d(in_channels, current, kernel_size=3, stride=1, padding=1,
                              bias=False)
        self.bn = nn.BatchNorm2d(current)
        blocks = []
        for stage, (filters, n) in enumerate(plan):
            for i in range(n):
                blocks.append(Block(current, filters, downsample=stage > 0 and i == 0))
                current = filters
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(current, num_classes)
        for m in self.modules():  # OpenLTH: kaiming_normal + batchnorm 'uniform'
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.uniform_(m.weight, 0.0, 1.0)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.conv(x)))
        out = self.blocks(out)
        out = F.adaptive_avg_pool2d(out, 1)  # OpenLTH: avg_pool2d over the (square) map
        return self.fc(torch.flatten(out, 1))
