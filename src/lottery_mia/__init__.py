"""lottery-mia: membership-inference attacks on lottery-ticket networks.

The package holds all logic of the pipeline; the Snakemake scripts in
``workflow/scripts`` only map ``snakemake.input/params/output`` onto one call
of this package. Modules:

- :mod:`lottery_mia.sources`     dataset sources (digits, CIFAR-10/100, ImageNet), no torch
- :mod:`lottery_mia.membership`  the membership split (the one source of truth)
- :mod:`lottery_mia.data`        image tensors / loaders for the pools of a source
- :mod:`lottery_mia.models`      ResNet18/50 from torchvision's blocks
- :mod:`lottery_mia.masks`       the pruning mask and global magnitude pruning
- :mod:`lottery_mia.training`    dense training and ticket retraining (Algorithm 1)
- :mod:`lottery_mia.confidences` the confidence table and its schema
- :mod:`lottery_mia.attacks`     balanced attack samples, MLP attacks, transfer
- :mod:`lottery_mia.metrics`     metric definitions (members are the positive class)
- :mod:`lottery_mia.figures`     the paper's Figures 1-4
- :mod:`lottery_mia.report`      Table 1 and the HTML report
- :mod:`lottery_mia.devices`     claiming a GPU when Snakemake runs several jobs
"""

__version__ = "0.1.0"
