"""Algorithm 1 on digits: dense training, global magnitude mask, rewind, masked retraining."""

import json

import torch

from lottery_mia.masks import Mask
from lottery_mia.training import (Recipe, load_checkpoint, prune_mask, rewound_ticket,
                                  train_ticket)


def test_dense_run_saves_w0_before_training_and_rewind_state(trained_digits):
    d = trained_digits["dir"]
    init, init_ck = load_checkpoint(d / "init.pt")
    final, _ = load_checkpoint(d / "model.pt")
    rewind, rewind_ck = load_checkpoint(d / "rewind.pt")
    assert init_ck["epoch"] == 0 and rewind_ck["epoch"] == 1
    # w0 is the seeded initialisation: the same seed builds the same network
    from lottery_mia.models import build_model
    from lottery_mia.training import model_spec

    torch.manual_seed(0)
    fresh = build_model(**model_spec("resnet18", "digits", 4))
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, init.state_dict()[k]), k
    changed = [k for k, v in final.state_dict().items()
               if v.is_floating_point() and not torch.equal(v, init.state_dict()[k])]
    assert changed, "training did not change the weights"
    assert not torch.equal(rewind.conv1.weight, init.conv1.weight)
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics["test_acc"] > 0.3  # 3 epochs on digits learn something real
    assert len(metrics["history"]) == 3


def test_rewound_survivors_equal_the_rewind_state_exactly(trained_digits, tmp_path):
    d = trained_digits["dir"]
    prune_mask(dense_model=d / "model.pt", sparsity=0.8, prune_fc=True,
               out_mask=tmp_path / "mask.pt", out_report=tmp_path / "mask.json")
    model, ckpt, mask = rewound_ticket(d / "rewind.pt", tmp_path / "mask.pt", rewind_epoch=1)
    rewind, _ = load_checkpoint(d / "rewind.pt")
    ref = rewind.state_dict()
    for k, v in model.state_dict().items():
        if k in mask.tensors:
            m = mask.tensors[k].bool()
            assert torch.equal(v[m], ref[k][m]), f"survivors of {k} differ from the rewind state"
            assert torch.all(v[~m] == 0)
        else:  # biases, BatchNorm affine and running statistics: the whole state is rewound
            assert torch.equal(v, ref[k]), k
    report = json.loads((tmp_path / "mask.json").read_text())
    assert abs(report["sparsity_prunable"] - 0.8) < 1e-6


def test_pruned_weights_stay_exactly_zero_after_every_optimizer_step(trained_digits, tmp_path):
    d = trained_digits["dir"]
    prune_mask(dense_model=d / "model.pt", sparsity=0.9, prune_fc=True,
               out_mask=tmp_path / "mask.pt", out_report=tmp_path / "mask.json")
    mask = Mask.load(tmp_path / "mask.pt")
    steps, leaks, tracked = [0], [], {}

    def check(optimizer, args, kwargs):  # runs after every optimizer.step()
        steps[0] += 1
        for name, (param, t) in tracked.items():
            if torch.any(param.detach()[t == 0] != 0):
                leaks.append(name)

    from lottery_mia import training

    original = training.run_training

    def spy(model, *a, **kw):  # remember the parameters being retrained
        params = dict(model.named_parameters())
        tracked.update({n: (params[n], t) for n, t in mask.tensors.items()})
        return original(model, *a, **kw)

    from torch.optim.optimizer import register_optimizer_step_post_hook

    handle = register_optimizer_step_post_hook(check)
    training.run_training = spy
    try:
        recipe = dict(trained_digits["recipe"], weight_decay=5e-3, momentum=0.9)
        train_ticket(data=trained_digits["data"], arch="resnet18", recipe=recipe, seed=0,
                     rewind_epoch=1, sparsity=0.9, device="cpu", mask_path=tmp_path / "mask.pt",
                     rewind_path=d / "rewind.pt", out_model=tmp_path / "ticket.pt",
                     out_metrics=tmp_path / "ticket.json", threads=1)
    finally:
        handle.remove()
        training.run_training = original
    assert steps[0] > 0 and not leaks, f"pruned weights revived in {sorted(set(leaks))}"
    saved, _ = load_checkpoint(tmp_path / "ticket.pt")
    params = dict(saved.named_parameters())
    for name, t in mask.tensors.items():
        assert torch.all(params[name].detach()[t == 0] == 0), name
    metrics = json.loads((tmp_path / "ticket.json").read_text())
    assert abs(metrics["measured_sparsity_prunable"] - 0.9) < 1e-4
    assert len(metrics["history"]) == 2  # retrained from the rewind epoch 1 to 3


def test_without_the_mask_the_same_training_would_revive_pruned_weights(trained_digits, tmp_path):
    """Guards the test above: momentum and weight decay do move zeroed weights."""
    from lottery_mia.training import member_and_test_sets, run_training

    d = trained_digits["dir"]
    prune_mask(dense_model=d / "model.pt", sparsity=0.9, prune_fc=True,
               out_mask=tmp_path / "mask.pt", out_report=tmp_path / "mask.json")
    model, _, mask = rewound_ticket(d / "rewind.pt", tmp_path / "mask.pt", rewind_epoch=1)
    rec = Recipe.from_dict(dict(trained_digits["recipe"], epochs=2))
    train_set, test_set = member_and_test_sets(trained_digits["data"], rec, "cpu")
    run_training(model, train_set, test_set, rec, seed=0, device=torch.device("cpu"),
                 start_epoch=1)  # no mask passed
    params = dict(model.named_parameters())
    assert any(torch.any(params[n].detach()[t == 0] != 0) for n, t in mask.tensors.items())


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


def test_an_interrupted_run_resumes_where_it_stopped_with_identical_results(trained_digits,
                                                                            tmp_path):
    """No lost results: a crash mid-training resumes from resume.pt, bit for bit."""
    import pytest

    from lottery_mia.data import TensorImageSet
    from lottery_mia.models import build_model
    from lottery_mia.training import member_and_test_sets, model_spec, run_training

    rec = Recipe.from_dict(dict(trained_digits["recipe"], epochs=3))
    train_set, test_set = member_and_test_sets(trained_digits["data"], rec, "cpu")
    spec = model_spec("resnet18", "digits", rec.width)

    def fresh():
        torch.manual_seed(0)
        return build_model(**spec)

    reference = fresh()
    run_training(reference, train_set, test_set, rec, seed=0, device=torch.device("cpu"))

    class Crash(RuntimeError):
        pass

    calls = [0]
    original = TensorImageSet.train_batches

    def crashing(self, *a, **kw):
        calls[0] += 1
        if calls[0] == 3:  # the third epoch dies
            raise Crash
        return original(self, *a, **kw)

    resume = tmp_path / "resume.pt"
    TensorImageSet.train_batches = crashing
    try:
        with pytest.raises(Crash):
            run_training(fresh(), train_set, test_set, rec, seed=0,
                         device=torch.device("cpu"), resume_path=resume, resume_key="k")
    finally:
        TensorImageSet.train_batches = original
    assert resume.exists()
    resumed = fresh()
    res = run_training(resumed, train_set, test_set, rec, seed=0, device=torch.device("cpu"),
                       resume_path=resume, resume_key="k")
    assert [h["epoch"] for h in res["history"]] == [1, 2, 3]
    assert not resume.exists()
    for k, v in reference.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    # a resume file of another recipe is ignored, not silently reused
    other = Recipe.from_dict(dict(trained_digits["recipe"], epochs=3, lr=0.01))
    torch.save({"fingerprint": "something else"}, resume)
    res = run_training(fresh(), train_set, test_set, other, seed=0, device=torch.device("cpu"),
                       resume_path=resume, resume_key="k")
    assert len(res["history"]) == 3
