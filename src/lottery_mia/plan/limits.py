"""What the data allows, known while the DAG is built: the same-class member/non-member
pairs of a dataset's membership split (the plan checks the attack sample sizes against
them; the config itself reads no data)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..datasets import dataset_source

if TYPE_CHECKING:  # annotations only
    from ..config.sections import Dataset


# --------------------------------------------------------------------------- data limits
def same_class_pairs_of(name: str, ds: Dataset, cache_dir=None) -> tuple[int, str] | None:
    """(same-class member/non-member pairs, where the number comes from) of dataset
    ``name``'s membership split, when it can be known while the DAG is built: for digits
    from its labels (the split drawn as the job will draw it, remembered in ``cache_dir``),
    for other sources from the membership table once it exists with the configured sizes;
    ``None`` otherwise (the data-check job checks it before any training)."""
    import hashlib
    import json
    from pathlib import Path

    from ..attack_samples import same_class_pairs
    from ..layout import membership

    if not dataset_source(ds.source).needs_root:  # its labels ship with a package
        p = ds.split_params()
        key = hashlib.sha256(json.dumps([ds.source, p], sort_keys=True).encode()).hexdigest()
        cache = Path(cache_dir) / "split-pairs.json" if cache_dir is not None else None
        try:
            known = json.loads(cache.read_text()) if cache else {}
        except (OSError, ValueError):
            known = {}
        if key not in known:
            from ..membership import make_membership_split

            table = make_membership_split(dataset_source(ds.source).pool_labels(None),
                                          ds.source,
                                          members=p["members"], nonmembers=p["nonmembers"],
                                          scored_members=p["scored_members"],
                                          seed=p["split_seed"])
            known[key] = same_class_pairs(table)
            if cache is not None:
                try:
                    from ..io import atomic_write_bytes

                    atomic_write_bytes(json.dumps(known).encode(), cache)
                except OSError:
                    pass
        return int(known[key]), f"from the labels of {ds.source}"
    path = Path(membership(name))
    if not path.exists():
        return None
    try:
        import pandas as pd

        table = pd.read_parquet(path, columns=["label", "member", "scored"])
    except Exception:  # noqa: BLE001 - unreadable: the jobs name it
        return None
    n_mem, n_scored, n_non = ds.sizes()
    if (int(table["member"].sum()), int((table["member"] & table["scored"]).sum()),
            int((~table["member"]).sum())) != (n_mem, n_scored, n_non):
        return None  # another split's table: it will be rebuilt
    return same_class_pairs(table), f"from {path}"
