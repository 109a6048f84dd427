"""ResNet-20 (``resnet20``): OpenLTH's CIFAR ResNet-20 (``cifar_resnet_20``).

A 3x3 stride-1 stem of ``width`` channels, three stages of three basic blocks (``width``,
``2 * width``, ``4 * width`` channels; stride 2 entering stages 2 and 3), a global average
pool and ``fc``. Names and initialisation are OpenLTH's (see :mod:`._resnet20_modules`).

- ``width``: channels of the first stage (16 in ResNet-20).
- ``small_input`` is ignored: ResNet-20 is a CIFAR network and always has its 3x3 stem (on
  ImageNet-sized images it runs, at full resolution through stage 1).
- ``in_channels``: input channels of the stem.
"""

from __future__ import annotations

from .registry import register_architecture


@register_architecture("resnet20", classifier=("fc",), default_width=16,
                       width="channels of the first stage (16: OpenLTH's cifar_resnet_20)",
                       description="ResNet-20 (OpenLTH's CIFAR ResNet: 3 stages of 3 basic "
                                   "blocks, 3x3 stem)")
def resnet20(num_classes: int, width: int, in_channels: int, small_input: bool):
    from ._resnet20_modules import CifarResNet

    return CifarResNet(num_classes, width=width, in_channels=in_channels, blocks_per_stage=3)
