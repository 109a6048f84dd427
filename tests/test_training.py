"""Algorithm 1 on digits: dense training, global magnitude mask, rewind, masked retraining."""

import json

import pytest
import torch

from lottery_mia.checkpoints import load_checkpoint
from lottery_mia.jobs.prune import prune_mask as prune_step
from lottery_mia.jobs.train import rewound_ticket, ticket_start, train_ticket
from lottery_mia.masks import Mask
from lottery_mia.recipe import Recipe

STEPS = 4  # the fixture's steps per epoch: 300 members // batch 64


def prune_mask(*, dense_model, sparsity, prune_fc, out_mask, out_report, method="oneshot",
               **kw):
    return prune_step(method=method, settings=kw.pop("settings", None),
                      score_model=dense_model, sparsity=sparsity, prune_fc=prune_fc,
                      out_mask=out_mask, out_report=out_report, **kw)


def test_dense_run_saves_w0_before_training_and_rewind_state(trained_digits):
    d = trained_digits["dir"]
    init, init_ck = load_checkpoint(d / "init.pt")
    final, _ = load_checkpoint(d / "model.pt")
    rewind, rewind_ck = load_checkpoint(d / "rewind.pt")
    assert init_ck["epoch"] == 0 and rewind_ck["epoch"] == 1
    assert init_ck["step"] == 0 and rewind_ck["step"] == STEPS
    # w0 is the seeded initialisation: the same seed builds the same network
    from lottery_mia.networks import build_model
    from lottery_mia.checkpoints import model_spec

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
    model, ckpt, mask = rewound_ticket(d / "rewind.pt", tmp_path / "mask.pt", rewind_step=STEPS)
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
                     start_path=d / "rewind.pt", out_model=tmp_path / "ticket.pt",
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
    from lottery_mia.data import member_and_test_sets
    from lottery_mia.training import run_training

    d = trained_digits["dir"]
    prune_mask(dense_model=d / "model.pt", sparsity=0.9, prune_fc=True,
               out_mask=tmp_path / "mask.pt", out_report=tmp_path / "mask.json")
    model, _, mask = rewound_ticket(d / "rewind.pt", tmp_path / "mask.pt", rewind_step=STEPS)
    rec = Recipe.from_dict(dict(trained_digits["recipe"], epochs=2))
    train_set, test_set = member_and_test_sets(trained_digits["data"], rec, "cpu")
    run_training(model, train_set, test_set, rec, seed=0, device=torch.device("cpu"),
                 start_epoch=1)  # no mask passed
    params = dict(model.named_parameters())
    assert any(torch.any(params[n].detach()[t == 0] != 0) for n, t in mask.tensors.items())



def test_an_interrupted_run_resumes_where_it_stopped_with_identical_results(trained_digits,
                                                                            tmp_path):
    """No lost results: a crash mid-training resumes from resume.pt, bit for bit."""
    import pytest

    from lottery_mia.data import TensorImageSet
    from lottery_mia.networks import build_model
    from lottery_mia.checkpoints import model_spec
    from lottery_mia.data import member_and_test_sets
    from lottery_mia.training import run_training

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


# --------------------------------------------------------------------------- rewinding to a step
def _fresh_run(trained_digits, epochs=2, **kw):
    from lottery_mia.checkpoints import model_spec
    from lottery_mia.networks import build_model
    from lottery_mia.data import member_and_test_sets
    from lottery_mia.training import run_training

    rec = Recipe.from_dict(dict(trained_digits["recipe"], epochs=epochs))
    train_set, test_set = member_and_test_sets(trained_digits["data"], rec, "cpu")
    torch.manual_seed(0)
    model = build_model(**model_spec("resnet18", "digits", rec.width))
    res = run_training(model, train_set, test_set, rec, seed=0, device=torch.device("cpu"),
                       **kw)
    return rec, train_set, res


def test_rewind_step_captures_the_state_after_exactly_that_many_steps(trained_digits):
    from lottery_mia import training
    from lottery_mia.checkpoints import model_spec
    from lottery_mia.data import steps_per_epoch
    from lottery_mia.networks import build_model
    from lottery_mia.runtime import make_runtime

    rec, train_set, res = _fresh_run(trained_digits, capture_step=3)  # mid-epoch 0
    captured = res["captured_state"]
    # the same 3 steps by hand: w0 of seed 0, the first 3 batches of epoch 0, the schedule
    torch.manual_seed(0)
    manual = build_model(**model_spec("resnet18", "digits", rec.width))
    rt = make_runtime(torch.device("cpu"))
    rt.prepare(manual)
    opt = rt.optimizer(manual.parameters(), lr=rec.lr, momentum=rec.momentum,
                       weight_decay=rec.weight_decay, nesterov=rec.nesterov)
    step = training._EagerStep(manual, opt, None, rt, training._Totals("cpu"))
    n = steps_per_epoch(len(train_set), rec.batch_size)
    manual.train()
    states = []
    for i, (xb, yb) in enumerate(train_set.train_batches(rec.batch_size, 0, rec.augment)):
        if i == 4:
            break
        step(xb, yb, rec.lr_at(i / n))
        states.append({k: v.detach().clone() for k, v in manual.state_dict().items()})
    after3, after2, after4 = states[2], states[1], states[3]
    assert int(captured["bn1.num_batches_tracked"]) == 3
    for k, v in captured.items():
        assert torch.equal(v, after3[k]), k
    assert not torch.equal(captured["conv1.weight"], after2["conv1.weight"])
    assert not torch.equal(captured["conv1.weight"], after4["conv1.weight"])


def test_training_from_a_mid_epoch_step_takes_exactly_the_remaining_steps(trained_digits):
    from torch.optim.optimizer import register_optimizer_step_post_hook

    steps = [0]
    handle = register_optimizer_step_post_hook(lambda *a: steps.__setitem__(0, steps[0] + 1))
    try:
        rec, _, res = _fresh_run(trained_digits, start_step=3)
    finally:
        handle.remove()
    assert steps[0] == 2 * STEPS - 3
    assert [h["epoch"] for h in res["history"]] == [1, 2]  # the partial epoch is logged


def test_rewind_step_reaches_the_ticket_and_rejects_a_mismatch(trained_digits, tmp_path):
    from lottery_mia.jobs.train import train_dense

    d = tmp_path / "dense"
    train_dense(data=trained_digits["data"], arch="resnet18", recipe=trained_digits["recipe"],
                seed=0, rewind_epoch=None, rewind_step=6, device="cpu",
                out_model=d / "model.pt", out_init=d / "init.pt", out_rewind=d / "rewind.pt",
                out_metrics=d / "metrics.json", threads=1)
    _, ck = load_checkpoint(d / "rewind.pt")
    assert ck["step"] == 6 and abs(ck["epoch"] - 6 / STEPS) < 1e-12
    prune_mask(dense_model=d / "model.pt", sparsity=0.5, prune_fc=True,
               out_mask=tmp_path / "mask.pt", out_report=tmp_path / "mask.json")
    metrics = train_ticket(data=trained_digits["data"], arch="resnet18",
                           recipe=trained_digits["recipe"], seed=0, rewind_epoch=None,
                           rewind_step=6, sparsity=0.5, device="cpu",
                           mask_path=tmp_path / "mask.pt", start_path=d / "rewind.pt",
                           out_model=tmp_path / "t.pt", out_metrics=tmp_path / "t.json",
                           threads=1)
    assert metrics["start_step"] == 6 and metrics["rewind_step"] == 6
    with pytest.raises(ValueError, match="step 6.*rewind to step 4"):
        rewound_ticket(d / "rewind.pt", tmp_path / "mask.pt", rewind_step=4)
    with pytest.raises(ValueError, match="exactly one"):
        train_ticket(data=trained_digits["data"], arch="resnet18",
                     recipe=trained_digits["recipe"], seed=0, rewind_epoch=1, rewind_step=6,
                     sparsity=0.5, device="cpu", mask_path=tmp_path / "mask.pt",
                     start_path=d / "rewind.pt", out_model=tmp_path / "u.pt",
                     out_metrics=tmp_path / "u.json", threads=1)


# --------------------------------------------------------------------------- controls
def test_random_reinit_keeps_the_mask_and_changes_every_surviving_weight(trained_digits,
                                                                         tmp_path):
    d = trained_digits["dir"]
    prune_mask(dense_model=d / "model.pt", sparsity=0.8, prune_fc=True,
               out_mask=tmp_path / "oneshot.pt", out_report=tmp_path / "oneshot.json")
    prune_mask(dense_model=d / "model.pt", sparsity=0.8, prune_fc=True, method="random_reinit",
               base_mask=tmp_path / "oneshot.pt", out_mask=tmp_path / "reinit.pt",
               out_report=tmp_path / "reinit.json")
    oneshot, reinit_mask = Mask.load(tmp_path / "oneshot.pt"), Mask.load(tmp_path / "reinit.pt")
    for k, t in oneshot.tensors.items():
        assert torch.equal(t, reinit_mask.tensors[k]), k
    model, _, mask, start = ticket_start("reinit", d / "init.pt", tmp_path / "reinit.pt",
                                         rewind_step=STEPS, seed=0)
    assert start == STEPS  # retrained over the same steps as the ticket it controls
    ticket, _, _ = rewound_ticket(d / "rewind.pt", tmp_path / "oneshot.pt", rewind_step=STEPS)
    init, _ = load_checkpoint(d / "init.pt")
    mine, theirs, w0 = (dict(m.named_parameters()) for m in (model, ticket, init))
    for k, t in mask.tensors.items():
        keep = t.bool()
        assert torch.all(mine[k].detach()[~keep] == 0), k
        assert torch.all(mine[k].detach()[keep] != theirs[k].detach()[keep]), k
        assert torch.all(mine[k].detach()[keep] != w0[k].detach()[keep]), k
    again, _, _, _ = ticket_start("reinit", d / "init.pt", tmp_path / "reinit.pt",
                                  rewind_step=STEPS, seed=0)
    other, _, _, _ = ticket_start("reinit", d / "init.pt", tmp_path / "reinit.pt",
                                  rewind_step=STEPS, seed=1)
    assert torch.equal(again.conv1.weight, model.conv1.weight)  # seeded: reproducible
    assert not torch.equal(other.conv1.weight, model.conv1.weight)


def test_random_mask_and_snip_jobs_write_exact_masks(trained_digits, tmp_path):
    d = trained_digits["dir"]
    prune_mask(dense_model=d / "model.pt", sparsity=0.8, prune_fc=True,
               out_mask=tmp_path / "oneshot.pt", out_report=tmp_path / "oneshot.json")
    report = prune_mask(dense_model=d / "model.pt", sparsity=0.8, prune_fc=True,
                        method="random_mask", base_mask=tmp_path / "oneshot.pt",
                        out_mask=tmp_path / "random.pt", out_report=tmp_path / "random.json")
    oneshot = json.loads((tmp_path / "oneshot.json").read_text())["per_layer"]
    for name, layer in report["per_layer"].items():
        assert layer["pruned"] == oneshot[name]["pruned"], name
    snip = prune_mask(dense_model=d / "init.pt", sparsity=0.8, prune_fc=True, method="snip",
                      settings={"batches": 2, "batch_size": 32}, data=trained_digits["data"],
                      recipe=trained_digits["recipe"], out_mask=tmp_path / "snip.pt",
                      out_report=tmp_path / "snip.json")
    assert snip["method"] == "snip"
    assert snip["pruned_weights"] == round(0.8 * snip["prunable_weights"])
    assert not torch.equal(Mask.load(tmp_path / "snip.pt").tensors["conv1.weight"],
                           Mask.load(tmp_path / "oneshot.pt").tensors["conv1.weight"])


def test_progress_lines_give_the_elapsed_time_and_an_eta():
    from lottery_mia.training import duration, progress

    assert duration(45) == "45s" and duration(185) == "3m05s" and duration(7620) == "2h07m"
    # 1 of 3 epochs in a minute: two more minutes to go
    assert progress(60.0, 1, 2) == "; elapsed 1m00s, ETA 2m00s"
    assert progress(0.0, 0, 5).endswith("ETA n/a")
