"""Training-time defences (:mod:`lottery_mia.defences`): the registry checks a recipe's
``defence`` at config time naming the key; PPB's loss is the cross-entropy plus strength x
KL between the sorted softmax vectors of a batch's two halves (Yuan & Zhang's definition),
invariant to which class is which; it narrows the members' posteriors as intended; a recipe
without a defence keeps its identity, and one with a defence trains through the pipeline's
own step."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lottery_mia.defences import DEFENCES, check_defence, training_loss
from lottery_mia.recipe import Recipe


def test_ppb_is_registered_and_checked_naming_the_key():
    assert "ppb" in DEFENCES
    assert check_defence({"ppb": None}) == {"ppb": {"strength": 1.0}}
    assert check_defence({"ppb": {"strength": 3}}) == {"ppb": {"strength": 3}}
    assert check_defence(None) is None
    for bad, match in (({"ppd": {}}, "ppb"), ({"ppb": {"strength": -1}}, "strength"),
                       ({"ppb": {"strength": True}}, "strength"),
                       ({"ppb": {"lambda": 1}}, "unknown setting"),
                       ({"ppb": {}, "other": {}}, "one defence"), ("ppb", "one defence")):
        with pytest.raises(ValueError, match=match):
            check_defence(bad, "training.digits.resnet18.defence")
    with pytest.raises(ValueError, match="defence"):
        Recipe(epochs=1, batch_size=8, lr=0.1, defence={"ppb": {"strength": -2}})


def test_a_recipe_without_a_defence_keeps_its_identity():
    plain = Recipe(epochs=1, batch_size=8, lr=0.1)
    assert "defence" not in plain.as_dict()  # params and fingerprint as before defences
    ppb = Recipe(epochs=1, batch_size=8, lr=0.1, defence={"ppb": {"strength": 2.0}})
    assert ppb.as_dict()["defence"] == {"ppb": {"strength": 2.0}}
    assert plain.fingerprint() != ppb.fingerprint()
    assert hash(ppb) == hash(Recipe(**ppb.as_dict()))


def test_ppb_loss_is_cross_entropy_plus_kl_of_sorted_posteriors():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(7, 5, generator=g)  # an odd batch: the last row is left out of the KL
    y = torch.randint(0, 5, (7,), generator=g)
    ce = F.cross_entropy(z, y)
    assert torch.equal(training_loss(None)(z, y), ce)
    assert torch.equal(training_loss({"ppb": {"strength": 0.0}})(z, y), ce)
    p = np.sort(torch.softmax(z, 1).numpy(), axis=1)[:, ::-1]  # sorted softmax
    a, b = p[:3], p[3:6]
    kl = float(np.mean(np.sum(b * (np.log(b) - np.log(a)), axis=1)))  # KL(b || a)
    got = training_loss({"ppb": {"strength": 2.5}})(z, y)
    assert float(got) == pytest.approx(float(ce) + 2.5 * kl, rel=1e-5)
    perm = torch.randperm(5, generator=g)  # which class is which does not matter
    ppb_only = float(got - ce)
    ppb_perm = float(training_loss({"ppb": {"strength": 2.5}})(z[:, perm], y) -
                     F.cross_entropy(z[:, perm], y))
    assert ppb_perm == pytest.approx(ppb_only, rel=1e-5)


def test_ppb_narrows_the_spread_of_training_posteriors():
    """The same linear model on 300 digits, trained alike with and without PPB: with it,
    the top softmax values of the training rows spread less (the balancing the defence is
    for), at a small cost in the training loss."""
    from lottery_mia.datasets.digits import digits_arrays

    images, labels = digits_arrays()
    x = torch.tensor(images[:300].reshape(300, -1) / 16.0, dtype=torch.float32)
    y = torch.tensor(labels[:300])

    def train(spec):
        torch.manual_seed(0)
        model = torch.nn.Linear(64, 10)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        loss_fn = training_loss(spec)
        order = torch.Generator().manual_seed(1)
        for _ in range(60):
            for idx in torch.randperm(300, generator=order).split(50):
                opt.zero_grad()
                loss_fn(model(x[idx]), y[idx]).backward()
                opt.step()
        with torch.no_grad():
            return torch.softmax(model(x), 1).max(1).values.std().item()

    plain, balanced = train(None), train({"ppb": {"strength": 5.0}})
    assert balanced < 0.8 * plain, (balanced, plain)  # measured: 0.097 against 0.147


def test_a_ppb_recipe_trains_through_the_pipelines_step(tmp_path):
    from lottery_mia.data import DataSpec
    from lottery_mia.jobs.split import build_membership_split
    from lottery_mia.jobs.train import train_dense

    build_membership_split("digits", None, key="datasets.digits.root", download=False,
                           members=200, nonmembers=200, scored_members=None, seed=0,
                           output=tmp_path / "membership.parquet")
    data = DataSpec("digits", "digits", None, str(tmp_path / "membership.parquet"))
    out = {}
    for name, defence in (("plain", None), ("ppb", {"ppb": {"strength": 5.0}})):
        recipe = dict(width=4, epochs=1, batch_size=50, lr=0.05, eval_every=1,
                      num_workers=0, defence=defence)
        d = tmp_path / name
        d.mkdir()
        train_dense(data=data, arch="resnet18", recipe=recipe, seed=0, rewind_epoch=0,
                    device="cpu", out_model=d / "model.pt", out_init=d / "init.pt",
                    out_rewind=d / "rewind.pt", out_metrics=d / "metrics.json", threads=1)
        out[name] = json.loads((d / "metrics.json").read_text())
    # the same start, data order and steps: only the loss differs
    assert out["plain"]["history"][0]["train_loss"] != out["ppb"]["history"][0]["train_loss"]


def test_the_plan_labels_each_datasets_defence_for_the_figures():
    from conftest import tiny_config
    from lottery_mia.config import load_config
    from lottery_mia.plan import Plan

    cfg = tiny_config()
    cfg["training"]["digits"]["resnet18"]["defence"] = {"ppb": {"strength": 2}}
    plan = Plan(load_config(cfg))
    assert plan.report_values()["defences"] == {"digits": "ppb (strength=2)"}
    assert plan.recipe_params("digits", "resnet18")["defence"] == {"ppb": {"strength": 2}}
    assert "defence" not in plan.recipe_params("digits", "resnet50")  # as before defences
    assert Plan(load_config(tiny_config())).report_values()["defences"] == {"digits": "none"}


def test_the_defences_config_puts_each_strength_in_the_grid():
    import yaml

    from conftest import ROOT
    from lottery_mia.config import load_config

    cfg = load_config(yaml.safe_load((ROOT / "config" / "defences.yaml").read_text()))
    strengths = sorted((r.defence or {}).get("ppb", {}).get("strength", 0.0)
                       for _, _, r in cfg.recipes() if "dpsgd" not in (r.defence or {}))
    assert strengths == [0.0, 0.1, 0.3, 1.0]
    epsilons = sorted(r.defence["dpsgd"]["target_epsilon"] for _, _, r in cfg.recipes()
                      if "dpsgd" in (r.defence or {}))
    assert epsilons == [1, 4, 8]
    assert {d.source for d in cfg.datasets.values()} == {"digits"}


def test_each_defended_entry_is_measured_against_the_entry_without_it_on_the_same_split():
    import yaml

    from conftest import ROOT
    from lottery_mia.config import load_config
    from lottery_mia.plan import Plan

    raw = yaml.safe_load((ROOT / "config" / "defences.yaml").read_text())
    assert Plan(load_config(raw)).defence_bases() == {
        "digits_ppb0_1": "digits", "digits_ppb0_3": "digits", "digits_ppb1": "digits",
        "digits_dp1": "digits", "digits_dp4": "digits", "digits_dp8": "digits"}
    raw["datasets"]["digits_ppb1"]["split_seed"] = 7  # another split: no undefended twin
    assert "digits_ppb1" not in Plan(load_config(raw)).defence_bases()


def test_the_frontier_orders_each_defence_from_weakest_to_strongest_and_labels_it_short():
    from lottery_mia.defences import defence_label, parse_label, short_label, strength_order

    dp = [defence_label({"dpsgd": {"target_epsilon": e, "delta": 1e-5, "max_grad_norm": 1.0}})
          for e in (8, 4, 1)]
    ppb = [defence_label({"ppb": {"strength": s}}) for s in (0.1, 0.3, 1.0)]
    for labels in (dp, ppb):  # each list from weakest to strongest
        order = [strength_order(lab) for lab in ["none"] + labels]
        assert order == sorted(order) and len(set(order)) == 4
    assert parse_label(dp[0]) == ("dpsgd", {"delta": 1e-5, "max_grad_norm": 1.0,
                                              "target_epsilon": 8.0})
    assert [short_label(lab) for lab in dp + ppb + ["none"]] == [
        "dpsgd ε=8", "dpsgd ε=4", "dpsgd ε=1", "ppb λ=0.1", "ppb λ=0.3", "ppb λ=1", "none"]
