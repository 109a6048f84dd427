"""VGG-16 with BatchNorm (``vgg16_bn``).

- ``small_input`` (digits, CIFAR): OpenLTH's CIFAR VGG-16 (``cifar_vgg_16``): 13 conv
  layers, four max-pools, a global average pool and one ``fc``; its max-pools round up
  (``ceil_mode``), so 8x8 digits work (8 -> 4 -> 2 -> 1 -> 1) and CIFAR sizes are unchanged.
- otherwise (ImageNet): torchvision's ``vgg16_bn`` (five max-pools, a 7x7 average pool and a
  three-layer ``classifier``); at ``width=64``, ``in_channels=3`` its parameter names and
  shapes are exactly torchvision's. It needs images of at least 32x32.
- ``width``: channels of the first stage (64 in VGG-16); every stage is scaled with it, and
  so are the 4096 hidden units of the standard classifier (``64 * width``).

The classifier that ``pruning.prune_fc: false`` keeps dense is the last layer only: ``fc``
of the small-input layout, ``classifier.6`` of the standard one (the declaration names
both; each layout has exactly one of them). The two hidden ``Linear`` layers of the
standard layout (``classifier.0``, ``classifier.3``) are always prunable.

The modules are in :mod:`._vgg_modules` (imported when a network is built, so the registry
stays torch-free).
"""

from __future__ import annotations

from .registry import register_architecture


@register_architecture("vgg16_bn", classifier=("fc", "classifier.6"), default_width=64,
                       width="channels of the first stage (64: VGG-16; every stage and the "
                             "4096 hidden units of the standard classifier scale with it)",
                       description="VGG-16 with BatchNorm (OpenLTH's CIFAR VGG-16 for small "
                                   "images, torchvision's vgg16_bn otherwise)")
def vgg16_bn(num_classes: int, width: int, in_channels: int, small_input: bool):
    from ._vgg_modules import VGG, CifarVGG

    if small_input:
        return CifarVGG(num_classes, width=width, in_channels=in_channels)
    return VGG(num_classes, width=width, in_channels=in_channels)
