"""The training recipe (lottery_mia.recipe): every key typed, a bad one named."""

from __future__ import annotations

from lottery_mia.recipe import Recipe


def test_recipe_names_the_bad_key():
    import pytest

    with pytest.raises(ValueError, match="training.digits.resnet18.*lr_max"):
        Recipe.from_dict({"epochs": 1, "batch_size": 2, "lr": 0.1, "lr_max": 3},
                         "training.digits.resnet18")
    r = Recipe.from_dict({"epochs": 10, "batch_size": 2, "lr": 0.1, "schedule": "step",
                          "milestones": [5], "gamma": 0.1})
    assert r.lr_at(4.9) == 0.1 and abs(r.lr_at(5.0) - 0.01) < 1e-12
    c = Recipe.from_dict({"epochs": 10, "batch_size": 2, "lr": 0.1, "warmup_epochs": 2})
    assert c.lr_at(1.0) < c.lr_at(2.0) and c.lr_at(10.0) < 1e-9
