"""Dataset sources: a registry (:mod:`.registry`), one module per source, each registering
itself when imported (adding a dataset is one new file)."""

from __future__ import annotations

from .registry import (DATASETS, DataNotFoundError, DatasetSource, SourceInfo, check_root,
                       dataset_source, max_split_sizes, register_dataset, source_info)

DATASETS.load(__name__, skip=("registry",))  # every other module registers its sources

__all__ = ["DATASETS", "DataNotFoundError", "DatasetSource", "SourceInfo", "check_root",
           "dataset_source", "max_split_sizes", "register_dataset", "source_info"]
