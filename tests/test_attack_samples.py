"""Attack samples (lottery_mia.attack_samples): class-stratified folds of n/2 members and
n/2 non-members."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lottery_mia.attack_samples import make_attack_sample


def membership(n_mem=600, n_non=600):
    return pd.DataFrame({
        "sample_id": np.arange(n_mem + n_non), "pool": "all",
        "pool_index": np.arange(n_mem + n_non), "label": np.arange(n_mem + n_non) % 10,
        "member": np.r_[np.ones(n_mem, bool), np.zeros(n_non, bool)], "scored": True,
    })


@pytest.mark.parametrize("n", [0, -4, 7, 1202])
def test_impossible_sample_sizes_are_refused(n):
    with pytest.raises(ValueError, match="sample size|attack.sample_sizes"):
        make_attack_sample(membership(), n, seed=0)
