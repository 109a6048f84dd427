"""The pruning-method registry and its methods, on tiny networks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from lottery_mia.masks import Mask, prune_by_score
from lottery_mia.networks import build_model
from lottery_mia.pruning import (METHODS, PruningMethod, derived_seed, describe_methods,
                                 get_method, method_names, register_method)
from lottery_mia.pruning.grasp import gradient_and_hg, grasp_scores
from lottery_mia.pruning.snip import snip_scores
from conftest import magnitude_mask

SRC = Path(__file__).resolve().parents[1] / "src"


def tiny_resnet():
    torch.manual_seed(0)
    return build_model("resnet18", 10, width=4, in_channels=3, small_input=True)


def perturb_(model, mask, seed):
    """Emulate retraining: move every weight a little, keep the pruned ones at zero."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    mask.apply_(model)


def survivors_within(new: Mask, old: Mask) -> bool:
    return all(bool(torch.all(new.tensors[n] <= old.tensors[n])) for n in old.tensors)


# ---------------------------------------------------------------------- import, registry
def test_importing_the_package_does_not_import_torch():
    code = ("import lottery_mia.pruning, sys; "
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)"
            "; assert lottery_mia.pruning.method_names()")
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_every_method_round_trips_through_get_method():
    assert set(method_names()) == {"oneshot", "imp", "random_reinit", "random_mask", "snip",
                                   "grasp"}
    for name, cls in METHODS.items():
        method = get_method(name)
        assert type(method) is cls and method.name == name
        assert method.key == f"pruning.{name}"
        assert method.settings == cls.Settings()
    rows = {r["name"]: r for r in describe_methods()}
    assert rows["imp"]["iterative"] and rows["imp"]["kind"] == "ticket"
    assert rows["random_reinit"] == {**rows["random_reinit"], "kind": "control",
                                     "base_mask": "oneshot", "start": "reinit"}
    assert rows["snip"]["score_state"] == "init" and METHODS["grasp"].needs_data
    assert all(r["description"] for r in rows.values())


def test_unknown_method_and_unknown_setting_name_the_key_and_a_near_miss():
    with pytest.raises(ValueError, match=r"'pruning\.methods'.*'onshot'.*did you mean "
                                         r"'oneshot'.*choose from"):
        get_method("onshot")
    with pytest.raises(ValueError, match=r"config key 'pruning\.imp': unknown setting\(s\) "
                                         r"'fractoin' \(did you mean 'fraction'\?\); allowed: "
                                         r"\['fraction'\]"):
        get_method("imp", {"fractoin": 0.3})
    with pytest.raises(ValueError, match=r"'my\.key'.*'batchsize'.*'batch_size'"):
        get_method("snip", {"batchsize": 64}, key="my.key")
    with pytest.raises(ValueError, match="'pruning.oneshot': unknown setting"):
        get_method("oneshot", {"fraction": 0.2})


@pytest.mark.parametrize("name,settings,where", [
    ("imp", {"fraction": 0.0}, "pruning.imp.fraction"),
    ("imp", {"fraction": 1}, "pruning.imp.fraction"),
    ("imp", {"fraction": "0.2"}, "pruning.imp.fraction"),
    ("imp", {"fraction": True}, "pruning.imp.fraction"),
    ("snip", {"batches": 0}, "pruning.snip.batches"),
    ("snip", {"batch_size": 1.5}, "pruning.snip.batch_size"),
    ("grasp", {"batches": -1}, "pruning.grasp.batches"),
    ("imp", [0.2], "pruning.imp"),
])
def test_bad_settings_name_the_key(name, settings, where):
    with pytest.raises(ValueError, match=f"config key '{where}'"):
        get_method(name, settings)


def test_settings_are_parsed_into_the_dataclass():
    assert get_method("imp", {"fraction": 0.5}).settings.fraction == 0.5
    s = get_method("grasp", {"batches": 3, "batch_size": 16}).settings
    assert (s.batches, s.batch_size) == (3, 16)


def test_registering_a_name_twice_is_refused():
    class Again(PruningMethod):
        name = "oneshot"

    with pytest.raises(ValueError, match="twice"):
        register_method(Again)
    assert METHODS["oneshot"] is not Again


def test_derived_seed_is_deterministic_32_bit_and_distinct():
    a = derived_seed(1, "random_mask", 0.5)
    assert a == derived_seed(1, "random_mask", 0.5)
    assert 0 <= a < 2 ** 32
    others = {derived_seed(1, "random_mask", 0.8), derived_seed(1, "snip", 0.5),
              derived_seed(2, "random_mask", 0.5), derived_seed(1, "random_mask")}
    assert len(others | {a}) == 5


# ---------------------------------------------------------------------- prune_by_score
def toy_mask():
    return Mask({"a": torch.tensor([[1., 0., 1.], [1., 1., 1.]]),
                 "b": torch.tensor([1., 1., 0., 1.])}, prune_fc=False)


def test_prune_by_score_ranks_globally_and_never_resurrects():
    mask = toy_mask()
    # the pruned weights score highest: they must stay pruned all the same
    scores = {"a": torch.tensor([[5., 100., 1.], [9., 3., 8.]]),
              "b": torch.tensor([2., 7., 100., 2.])}
    new = prune_by_score(scores, mask, 6)
    assert new.n_pruned() == 6 and new.prune_fc is False
    assert survivors_within(new, mask)
    # the 4 lowest survivors: 1 (a), 2 and 2 (b, tie: both), 3 (a)
    assert new.tensors["a"].tolist() == [[1., 0., 0.], [1., 0., 1.]]
    assert new.tensors["b"].tolist() == [0., 1., 0., 0.]
    # the input mask is left alone
    assert mask.n_pruned() == 2
    # ties broken by position: of two equal scores the first goes
    tie = prune_by_score({"a": torch.ones(2, 3), "b": torch.ones(4)}, mask, 3)
    assert tie.tensors["a"].tolist() == [[0., 0., 1.], [1., 1., 1.]]
    assert torch.equal(prune_by_score(scores, mask, 2).tensors["a"], mask.tensors["a"])


def test_prune_by_score_refuses_a_target_below_the_pruned_count():
    mask = toy_mask()
    scores = {"a": torch.rand(2, 3), "b": torch.rand(4)}
    with pytest.raises(ValueError, match="below"):
        prune_by_score(scores, mask, 1)
    with pytest.raises(ValueError, match="exceeds"):
        prune_by_score(scores, mask, 11)
    with pytest.raises(ValueError, match="shape"):
        prune_by_score({"a": torch.rand(3, 2), "b": torch.rand(4)}, mask, 3)


# ---------------------------------------------------------------------- oneshot and IMP
@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.9])
def test_oneshot_prunes_the_k_smallest_magnitudes_globally(sparsity):
    model = tiny_resnet()
    method = get_method("oneshot")
    ones = Mask.ones_like(model)
    target = method.target_pruned(ones, sparsity)
    got = method.prune(model, ones, target=target, seed=0)
    params = dict(model.named_parameters())
    flat = torch.cat([params[n].detach().abs().flatten() for n in ones.tensors])
    kept = torch.cat([got.tensors[n].flatten() for n in ones.tensors])
    assert int((kept == 0).sum()) == target == round(sparsity * flat.numel())
    if 0 < target < flat.numel():  # every pruned |w| is at most every kept one
        assert flat[kept == 0].max() <= flat[kept == 1].min()
    assert got.tensors.keys() == magnitude_mask(model, sparsity).tensors.keys()
    assert ones.n_pruned() == 0


def test_imp_rounds_are_nested_with_exact_counts():
    model = tiny_resnet()
    method = get_method("imp", {"fraction": 0.2})
    mask = Mask.ones_like(model, prune_fc=False)
    n = mask.n_total()
    for k in range(1, 4):
        p_prev = mask.n_pruned()
        target = method.target_pruned(mask, None)
        assert target == p_prev + round(0.2 * (n - p_prev))
        new = method.prune(model, mask, target=target, seed=k)
        assert new.n_pruned() == target and new.prune_fc is False
        assert survivors_within(new, mask)
        assert abs(new.sparsity() - method.round_sparsity(k)) < k / n
        mask = new
        mask.apply_(model)
        perturb_(model, mask, seed=k)  # the retrained ticket of round k
    # the final ticket's pruned weights are zero
    params = dict(model.named_parameters())
    assert all(bool(torch.all(params[name][t == 0] == 0)) for name, t in mask.tensors.items())


def test_imp_round_arithmetic():
    method = get_method("imp", {"fraction": 0.2})
    assert method.rounds_for(0.5) == 4
    assert method.round_sparsity(4) == pytest.approx(0.5904)
    assert method.round_sparsity(3) < 0.5
    assert method.rounds_for(0.2) == 1
    assert method.rounds_for(1 - 0.8 * 0.8) == 2  # 0.36 up to float error
    assert method.rounds_for(0.36) == 2
    assert method.rounds_for(0.0) == 1
    assert get_method("imp", {"fraction": 0.5}).rounds_for(0.75) == 2
    with pytest.raises(ValueError):
        method.rounds_for(1.0)
    with pytest.raises(ValueError, match="not iterative"):
        get_method("oneshot").rounds_for(0.5)


# ---------------------------------------------------------------------- controls
def test_random_reinit_returns_the_same_mask():
    model = tiny_resnet()
    base = magnitude_mask(model, 0.6)
    method = get_method("random_reinit")
    got = method.prune(model, base, target=base.n_pruned(), seed=3)
    assert got is not base
    assert all(torch.equal(got.tensors[n], base.tensors[n]) for n in base.tensors)
    got.tensors["fc.weight"].zero_()
    assert base.tensors["fc.weight"].sum() > 0  # an independent copy
    with pytest.raises(ValueError, match="target"):
        method.prune(model, base, target=base.n_pruned() + 1, seed=3)


def test_random_mask_keeps_per_layer_counts_and_is_seeded():
    model = tiny_resnet()
    base = magnitude_mask(model, 0.7)
    method = get_method("random_mask")
    a = method.prune(model, base, target=base.n_pruned(), seed=11)
    again = method.prune(model, base, target=base.n_pruned(), seed=11)
    b = method.prune(model, base, target=base.n_pruned(), seed=12)
    for name, t in base.tensors.items():
        assert int((a.tensors[name] == 0).sum()) == int((t == 0).sum())
        assert int((b.tensors[name] == 0).sum()) == int((t == 0).sum())
    assert a.n_pruned() == base.n_pruned()
    assert all(torch.equal(a.tensors[n], again.tensors[n]) for n in base.tensors)
    assert not all(torch.equal(a.tensors[n], b.tensors[n]) for n in base.tensors)
    assert not all(torch.equal(a.tensors[n], base.tensors[n]) for n in base.tensors)
    with pytest.raises(ValueError, match="target"):
        method.prune(model, base, target=base.n_pruned() - 1, seed=11)


# ---------------------------------------------------------------------- SNIP and GraSP
def linear_net():
    net = nn.Sequential(nn.Linear(3, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[0.5, -1.0, 0.25], [0.1, 0.3, -0.7]]))
    return net


def fixed_batches():
    x1 = torch.tensor([[1.0, 2.0, -1.0], [0.5, -0.3, 0.8], [-1.2, 0.4, 0.1]])
    x2 = torch.tensor([[0.2, 0.2, 2.0], [1.5, -1.0, 0.0]])
    return [(x1, torch.tensor([0, 1, 1])), (x2, torch.tensor([1, 0]))]


def test_snip_scores_match_the_closed_form_gradient():
    net = linear_net()
    w = net[0].weight.detach().clone()
    batches = fixed_batches()
    grads = []
    for x, y in batches:  # dL/dW = mean_i (softmax(W x_i) - onehot(y_i)) x_i^T
        p = torch.softmax(x @ w.T, dim=1)
        grads.append((p - nn.functional.one_hot(y, 2).float()).T @ x / len(x))
    want = ((grads[0] + grads[1]) / 2 * w).abs()
    got = snip_scores(net, batches, ["0.weight"])["0.weight"]
    assert torch.allclose(got, want, atol=1e-6, rtol=0)

    mask = Mask.ones_like(net)
    new = get_method("snip").prune(net, mask, target=2, seed=0, batches=batches)
    assert new.n_pruned() == 2
    lowest = torch.sort(want.flatten(), stable=True).indices[:2]
    assert set(torch.nonzero(new.tensors["0.weight"].flatten() == 0).flatten().tolist()) \
        == set(lowest.tolist())
    with pytest.raises(ValueError, match="minibatches"):
        get_method("snip").prune(net, mask, target=2, seed=0, batches=None)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_scoring_leaves_the_callers_network_alone(mode):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2))
    net.train(mode == "train")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    batches = fixed_batches()
    mask = Mask.ones_like(net)
    for name in ("snip", "grasp"):
        new = get_method(name).prune(net, mask, target=7, seed=0, batches=batches)
        assert new.n_pruned() == 7
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # incl. BN running stats
    assert all(p.grad is None for p in net.parameters())
    assert all(m.training == (mode == "train") for m in net.modules())


def two_layer_net():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(3, 4, bias=False), nn.Tanh(), nn.Linear(4, 2, bias=False))


def test_grasp_hessian_gradient_product_matches_autograd_hvp():
    net = two_layer_net()
    batches = fixed_batches()
    names = ["0.weight", "2.weight"]
    w0 = tuple(dict(net.named_parameters())[n].detach().clone().double() for n in names)
    dnet = two_layer_net().double()

    def loss(*ws):
        total = 0.0
        for x, y in batches:
            out = torch.func.functional_call(dnet, dict(zip(names, ws)), (x.double(),))
            total = total + nn.functional.cross_entropy(out, y)
        return total / len(batches)

    g = torch.func.grad(lambda ws: loss(*ws))(w0)
    _, hvp = torch.autograd.functional.hvp(loss, w0, tuple(g))
    g_got, hg_got = gradient_and_hg(net, batches, names)
    for n, gi, hi in zip(names, g, hvp):
        assert torch.allclose(g_got[n].double(), gi, atol=1e-6)
        assert torch.allclose(hg_got[n].double(), hi, atol=1e-6)
        assert hi.abs().max() > 1e-3  # not trivially zero
    # and against a finite difference of the gradient along g
    eps = 1e-4
    plus = torch.func.grad(lambda ws: loss(*ws))(tuple(w + eps * gi for w, gi in zip(w0, g)))
    minus = torch.func.grad(lambda ws: loss(*ws))(tuple(w - eps * gi for w, gi in zip(w0, g)))
    for n, a, b in zip(names, plus, minus):
        assert torch.allclose(hg_got[n].double(), (a - b) / (2 * eps), atol=1e-5)

    scores = grasp_scores(net, batches, names)
    for n, w, hi in zip(names, w0, hvp):
        assert torch.allclose(scores[n].double(), w * hi, atol=1e-6)

    mask = Mask.ones_like(net)
    method = get_method("grasp", {"temperature": 1.0})
    new = method.prune(net, mask, target=method.target_pruned(mask, 0.5), seed=0,
                       batches=batches)
    assert new.n_pruned() == round(0.5 * (12 + 8))
    # GraSP removes the highest -w*Hg, i.e. the lowest w*Hg
    flat = torch.cat([scores[n].flatten() for n in names])
    kept = torch.cat([new.tensors[n].flatten() for n in names])
    assert flat[kept == 0].max() <= flat[kept == 1].min()


def test_snip_and_grasp_on_a_tiny_resnet_give_exact_nested_counts():
    model = tiny_resnet()
    torch.manual_seed(2)
    batches = [(torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,)))]
    base = magnitude_mask(model, 0.3)
    for name in ("snip", "grasp"):
        method = get_method(name)
        target = method.target_pruned(base, 0.6)
        new = method.prune(model, base, target=target, seed=0, batches=batches)
        assert new.n_pruned() == target
        assert survivors_within(new, base)


def test_grasp_divides_the_logits_by_its_temperature():
    """The reference code's T = 200 (the default): Hg of the cross-entropy of logits / T."""
    net = two_layer_net()
    batches = fixed_batches()
    names = ["0.weight", "2.weight"]
    w0 = tuple(dict(net.named_parameters())[n].detach().clone().double() for n in names)
    dnet = two_layer_net().double()
    temperature = 3.0

    def loss(*ws):
        total = 0.0
        for x, y in batches:
            out = torch.func.functional_call(dnet, dict(zip(names, ws)), (x.double(),))
            total = total + nn.functional.cross_entropy(out / temperature, y)
        return total / len(batches)

    g = torch.func.grad(lambda ws: loss(*ws))(w0)
    _, hvp = torch.autograd.functional.hvp(loss, w0, tuple(g))
    _, hg = gradient_and_hg(net, batches, names, temperature=temperature)
    for n, hi in zip(names, hvp):
        assert torch.allclose(hg[n].double(), hi, atol=1e-7)
    assert get_method("grasp").settings.temperature == 200.0
    assert get_method("grasp").balanced_batches and not get_method("snip").balanced_batches


def test_grasp_scores_on_class_balanced_batches(trained_digits, tmp_path):
    """The pruning job draws GraSP's batches with as many members of every class."""
    from collections import Counter

    from lottery_mia.jobs.prune import _training_batches

    batches = _training_batches(trained_digits["data"], trained_digits["recipe"], "training",
                                2, 64, seed=3, balanced=True)
    assert len(batches) == 2
    for _, y in batches:
        counts = Counter(y.tolist())
        assert len(counts) == 10 and set(counts.values()) == {6}  # 64 // 10 per class
