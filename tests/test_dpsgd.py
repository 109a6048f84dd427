"""DP-SGD (lottery_mia.defences.dpsgd, through Opacus): settings checked naming the key; the
recipe's networks are GroupNorm networks; the epsilon recorded is the one Opacus's own
PrivacyEngine reports for the same noise, sampling rate and steps; a ticket trained with
DP-SGD keeps its pruned weights exactly zero and composes its budget with its dense run's;
and DP-SGD does what it is for: members and non-members look alike to the loss."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lottery_mia.defences import check_defence
from lottery_mia.defences.dpsgd import (DPSGD, epsilon_of, noise_multiplier, run_budget,
                                        ticket_budget)



def test_dpsgd_settings_are_checked_naming_the_key():
    assert check_defence({"dpsgd": None}) == {"dpsgd": {"target_epsilon": 8.0, "delta": 1e-5,
                                                        "max_grad_norm": 1.0}}
    for bad, word in (({"target_epsilon": 0}, "target_epsilon"), ({"delta": 1.5}, "delta"),
                      ({"max_grad_norm": -1}, "max_grad_norm"), ({"noise": 1}, "unknown")):
        with pytest.raises(ValueError, match=word):
            check_defence({"dpsgd": bad}, "training.digits.resnet18.defence")


def test_the_noise_multiplier_spends_the_target_epsilon():
    dp = DPSGD({"target_epsilon": 4.0, "delta": 1e-5, "max_grad_norm": 1.0})
    b = run_budget(dp, n_members=250, batch_size=64, steps=240)
    assert b["sample_rate"] == pytest.approx(64 / 250)
    assert b["epsilon"] == pytest.approx(4.0, abs=0.05)
    assert b["noise_multiplier"] > run_budget(DPSGD({**vars(dp), "target_epsilon": 8.0}),
                                              250, 64, 240)["noise_multiplier"]
    # a ticket's retraining composed with its dense run spends more than either
    t = ticket_budget(dp, run_budget(dp, 250, 64, 240), dense_steps=240, method=None,
                      imp_round=None)
    assert 4.0 < t["epsilon_total"] < 8.0 and t["composed_runs"] == 2


def test_the_recorded_epsilon_is_the_one_opacus_reports(tmp_path):
    """Opacus's own PrivacyEngine, training a small model for the same steps at the same
    noise and sampling rate, reports the epsilon the pipeline's accountant computes."""
    from opacus import PrivacyEngine

    torch.manual_seed(0)
    n, batch, epochs = 200, 50, 3
    x, y = torch.randn(n, 6), torch.randint(0, 3, (n,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y),
                                         batch_size=batch)
    model = torch.nn.Linear(6, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sigma = noise_multiplier(2.0, 1e-5, batch / n, epochs * (n // batch))
    engine = PrivacyEngine(accountant="rdp")
    model, opt, loader = engine.make_private(module=model, optimizer=opt, data_loader=loader,
                                             noise_multiplier=sigma, max_grad_norm=1.0)
    for _ in range(epochs):
        for xb, yb in loader:
            if len(yb) == 0:
                continue
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
    ours = epsilon_of([(sigma, batch / n, epochs * (n // batch))], 1e-5)
    assert engine.get_epsilon(1e-5) == pytest.approx(ours, rel=1e-9)
    assert ours == pytest.approx(2.0, abs=0.05)


@pytest.fixture(scope="module")
def dp_networks(tmp_path_factory):
    """A dense network and its one-shot ticket trained with DP-SGD through the jobs."""
    from conftest import digits_data
    from lottery_mia.jobs.prune import prune_mask
    from lottery_mia.jobs.train import train_dense, train_ticket

    tmp = tmp_path_factory.mktemp("dp")
    data = digits_data(tmp, 200, 200)
    recipe = dict(width=4, epochs=2, batch_size=50, lr=0.05, eval_every=1, num_workers=0,
                  defence={"dpsgd": {"target_epsilon": 4.0, "delta": 1e-5,
                                     "max_grad_norm": 1.0}})
    train_dense(data=data, arch="resnet18", recipe=recipe, seed=0, rewind_epoch=0,
                device="cpu", out_model=tmp / "model.pt", out_init=tmp / "init.pt",
                out_rewind=tmp / "rewind.pt", out_metrics=tmp / "dense.json", threads=1)
    prune_mask(method="oneshot", settings=None, score_model=tmp / "model.pt",
               out_mask=tmp / "mask.pt", out_report=tmp / "mask.json", sparsity=0.8)
    train_ticket(data=data, arch="resnet18", recipe=recipe, seed=0, sparsity=0.8,
                 device="cpu", mask_path=tmp / "mask.pt", start_path=tmp / "rewind.pt",
                 out_model=tmp / "ticket.pt", out_metrics=tmp / "ticket.json", threads=1)
    return tmp


def test_dp_networks_use_groupnorm_and_the_ticket_keeps_pruned_weights_zero(dp_networks):
    from lottery_mia.checkpoints import load_checkpoint
    from lottery_mia.masks import Mask

    for name in ("model.pt", "rewind.pt", "ticket.pt"):
        model, ckpt = load_checkpoint(dp_networks / name)
        assert ckpt["model"]["norm"] == "group"
        kinds = {type(m).__name__ for m in model.modules()}
        assert "GroupNorm" in kinds and "BatchNorm2d" not in kinds
    ticket, _ = load_checkpoint(dp_networks / "ticket.pt")
    mask = Mask.load(dp_networks / "mask.pt")
    params = dict(ticket.named_parameters())
    for name, keep in mask.tensors.items():
        assert torch.count_nonzero(params[name].detach()[keep == 0]) == 0, name
        assert torch.count_nonzero(params[name].detach()[keep == 1]) > 0, name


def test_dp_metrics_record_each_runs_epsilon_and_the_tickets_composed_budget(dp_networks):
    dense = json.loads((dp_networks / "dense.json").read_text())["privacy"]
    ticket = json.loads((dp_networks / "ticket.json").read_text())["privacy"]
    assert dense["epsilon"] == pytest.approx(4.0, abs=0.05)
    assert dense["epsilon_total"] == dense["epsilon"]
    assert ticket["epsilon"] == pytest.approx(4.0, abs=0.05)
    assert ticket["epsilon_total"] == pytest.approx(
        epsilon_of([(dense["noise_multiplier"], dense["sample_rate"], dense["steps"]),
                    (ticket["noise_multiplier"], ticket["sample_rate"], ticket["steps"])],
                   1e-5))
    assert ticket["epsilon_total"] > ticket["epsilon"] and ticket["composed_runs"] == 2
    assert "Poisson" in ticket["guarantee"]


def test_a_ticket_whose_mask_reads_data_has_no_guarantee():
    from lottery_mia.pruning import METHODS

    dp = DPSGD({"target_epsilon": 4.0, "delta": 1e-5, "max_grad_norm": 1.0})
    t = ticket_budget(dp, run_budget(dp, 250, 64, 100), dense_steps=100,
                      method=METHODS["snip"], imp_round=None)
    assert math.isinf(t["epsilon_total"]) and t["guarantee"].startswith("none: snip")
    imp = ticket_budget(dp, run_budget(dp, 250, 64, 100), dense_steps=100,
                        method=METHODS["imp"], imp_round=3)
    assert imp["composed_runs"] == 4


def test_dpsgd_hides_membership_from_the_loss():
    """Known effect: at a small epsilon the members' loss is no lower than the non-members'
    (the train-test gap of the same recipe without DP-SGD is large)."""
    from sklearn.metrics import roc_auc_score

    from lottery_mia.defences import training_loss
    from lottery_mia.defences.dpsgd import PrivateStep, make_private
    from lottery_mia.networks import build_model
    from lottery_mia.runtime import make_runtime
    from lottery_mia.training import _Totals

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(120, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (120,), generator=g)  # random labels: only memorisation helps
    members = slice(0, 60)

    def loss_auc(dp_eps):
        torch.manual_seed(0)
        model = build_model("resnet18", 10, width=16, in_channels=1, small_input=True,
                            norm="group")
        rt = make_runtime("cpu", {"cuda_graphs": False})
        opt = rt.optimizer(model.parameters(), lr=0.05, momentum=0.9)
        totals = _Totals(rt.device)
        forward = model
        if dp_eps is not None:
            dp = DPSGD({"target_epsilon": dp_eps, "delta": 1e-5, "max_grad_norm": 1.0})
            budget = run_budget(dp, 60, 20, 150)
            forward, opt, _ = make_private(model, opt, dp, budget, 20)
            step = PrivateStep(model, opt, None, totals, forward, training_loss(None))
        else:
            from lottery_mia.training import _EagerStep
            step = _EagerStep(model, opt, None, rt, totals, loss_fn=training_loss(None))
        for i in range(150):
            idx = torch.arange(20) + 20 * (i % 3)
            step(x[members][idx], y[members][idx], 0.05)
        model.eval()
        with torch.no_grad():
            loss = torch.nn.functional.cross_entropy(model(x), y, reduction="none").numpy()
        member = np.r_[np.ones(60), np.zeros(60)]
        return roc_auc_score(member, -loss)

    plain, private = loss_auc(None), loss_auc(0.5)
    assert plain > 0.9, plain           # memorised (measured: 0.989)
    assert private < 0.6, private       # at epsilon 0.5: at chance (measured: 0.476)
