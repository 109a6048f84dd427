"""One registry mechanism for every pluggable kind (lottery_mia.registry): entries by name,
no name twice, an unknown name refused naming the config key and the closest name, and
every registry of the package loaded from its own folder."""

from __future__ import annotations

import pytest

from lottery_mia.registry import Registry


def test_entries_by_name_and_no_name_twice():
    reg = Registry("widget", "widgets")
    reg.register("alpha", 1)
    reg.register("beta", 2)
    assert dict(reg) == {"alpha": 1, "beta": 2} and len(reg) == 2
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("alpha", 3)
    with pytest.raises(ValueError, match="needs a name"):
        reg.register("", 4)


def test_an_unknown_name_names_the_key_and_the_closest_entry():
    reg = Registry("widget", "widgets")
    reg.register("resnet18", 1)
    with pytest.raises(ValueError, match=r"config key 'widgets'.*'resnet19'.*did you mean "
                                         r"'resnet18'"):
        reg.get_entry("resnet19")
    with pytest.raises(ValueError, match=r"config key 'architectures\[0\]'"):
        reg.get_entry("vgg", key="architectures[0]")


def test_every_registry_of_the_package_is_filled_from_its_folder():
    from lottery_mia.attacks import ATTACKS
    from lottery_mia.datasets import DATASETS
    from lottery_mia.figures import FIGURES
    from lottery_mia.networks import ARCHITECTURES
    from lottery_mia.pruning import METHODS

    assert {"digits", "cifar10", "cifar100", "imagenet", "svhn", "tinyimagenet"} <= set(DATASETS)
    assert {"resnet18", "resnet50", "resnet20", "vgg16_bn", "densenet121"} <= set(ARCHITECTURES)
    assert {"oneshot", "imp", "random_reinit", "random_mask", "snip", "grasp"} <= set(METHODS)
    assert {"mlp", "loss", "lira_online", "rmia", "shadow_mlp"} <= set(ATTACKS)
    assert {f"figure{i}" for i in range(1, 11)} <= set(FIGURES)
