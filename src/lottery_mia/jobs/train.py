"""The training jobs of the DAG: Algorithm 1's steps on files.

- :func:`train_dense` (rule ``train_dense``): steps 1-2, w0, dense training, the rewind state
  (after exactly ``pruning.rewind_step`` optimizer steps, or at the start of epoch
  ``pruning.rewind_epoch``), the trained network;
- :func:`train_ticket` (rule ``train_ticket``): steps 4-5 for any pruning method, the
  method's start state (:func:`ticket_start`: the rewind state, w0, or fresh random weights)
  with its mask applied, retrained with the mask held.

Every output is written at the end (a killed job leaves none that look valid); a job holds
a lock on its output folder while it runs and resumes from ``resume.pt`` when everything that
shapes training is unchanged. Each checkpoint records which network it holds
(:func:`network_identity`), checked before anything reads it.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import torch

from ..checkpoints import (CorruptFileError, data_identity, load_checkpoint, mask_digest,
                           members_digest, model_spec, save_checkpoint)
from ..data import DataSpec, member_and_test_sets, steps_per_epoch
from ..defences.dpsgd import dp_settings
from ..io import log, write_json
from ..locks import output_lock
from ..masks import load_fitting_mask, model_sparsity
from ..membership import read_membership
from ..networks import build_model
from ..pruning import derived_seed
from ..recipe import Recipe, rewind_step_of, with_how
from ..runtime import make_runtime
from ..training import run_training
from ..vocabulary import network_identity as vocabulary_identity

__all__ = ["train_dense", "train_ticket", "ticket_start", "rewound_ticket",
           "rewind_step_of", "network_identity"]


def _data_key(data: DataSpec) -> str:
    """What the resume fingerprint needs of the data: the source and root it is read from and
    a content hash of the membership table's member rows (the training set)."""
    members = members_digest(read_membership(data.membership))
    return f"{data_identity(data.source, data.root)}:{members}"


def network_identity(data: DataSpec, arch: str, seed: int, method: str, sparsity: float,
                     imp_round: int | None = None, mask: str | None = None) -> dict:
    """Which network a checkpoint holds, as its training job was asked for it (checked by
    :func:`lottery_mia.checkpoints.check_trained_network` before anything reads it)."""
    return {**vocabulary_identity(data.dataset, arch, seed, method, sparsity, imp_round),
            "mask_digest": mask}


def _recipe(recipe: dict, key: str, num_workers: int | None, gpus: int | None = None
            ) -> Recipe:
    """The recipe of a job, with how it runs (the loader's worker count, the GPUs it trains
    on; how, not what) put in."""
    return Recipe.from_dict(with_how(recipe, num_workers=num_workers, gpus=gpus), key)


def _setup(threads: int | None, seed: int) -> None:
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


# --------------------------------------------------------------------------- one or N ranks
def _run(body, job: dict, claim, threads: int | None, seed: int):
    """``body(ranks, device, job)`` in this process (``gpus`` 1: exactly the
    single-process run it always was) or on ``gpus`` ranks, one per claimed device
    (DistributedDataParallel, :mod:`lottery_mia.distributed`); the result of rank 0."""
    gpus = job["rec"].gpus
    if gpus == 1:
        return body(None, torch.device(claim.device), job)
    from ..distributed import spawn_ranks

    if job["rec"].batch_size % gpus:
        raise ValueError(f"config key {job['recipe_key']}.batch_size: "
                         f"{job['rec'].batch_size} does not split evenly over gpus={gpus} "
                         f"ranks; use a multiple of {gpus}")

    log(f"training on {gpus} ranks (DistributedDataParallel): {', '.join(claim.devices)}")
    # CPU threads per rank: the job's threads shared out, never more than the cores (ranks
    # whose OpenMP threads outnumber the cores spin-wait on each other: 40x slower here)
    cores = os.cpu_count() or 1
    per_rank = max(1, min(int(threads) if threads else cores, cores) // gpus)
    return spawn_ranks(_rank_job, gpus, claim.devices, (body, job, per_rank, seed))


def _rank_job(ranks, device, body, job: dict, threads: int, seed: int):
    """One rank of a distributed training job: the job's seeds and threads, then its body."""
    _setup(threads, seed)
    return body(ranks, device, job)


def _writes(ranks) -> bool:
    """Only rank 0 (or the single process) writes outputs."""
    return ranks is None or ranks.is_main


def train_dense(*, data: DataSpec, arch: str, recipe: dict, seed: int, device: str,
                out_model, out_init, out_rewind, out_metrics, rewind_epoch: int | None = 0,
                rewind_step: int | None = None, threads: int | None = None,
                recipe_key: str = "training", runtime: dict | None = None,
                num_workers: int | None = None, gpus: int | None = None) -> dict:
    """Steps 1-2 of Algorithm 1: w0, dense training, the rewind state (after exactly
    ``rewind_step`` optimizer steps, or at the start of epoch ``rewind_epoch``).
    ``num_workers`` (ImageNet loader processes) and ``gpus`` (GPUs the job trains on,
    DistributedDataParallel) override the recipe's."""
    from ..devices import claim_device

    rec = _recipe(recipe, recipe_key, num_workers, gpus)
    _setup(threads, seed)
    job = dict(data=data, arch=arch, rec=rec, seed=seed, out_model=out_model,
               out_init=out_init, out_rewind=out_rewind, out_metrics=out_metrics,
               rewind_epoch=rewind_epoch, rewind_step=rewind_step, recipe_key=recipe_key,
               runtime=runtime)
    with output_lock(Path(out_model).parent), \
            claim_device(device, slots=(runtime or {}).get("gpu_slots"),
                         count=rec.gpus) as claim:
        job["device_label"] = ",".join(claim.devices) if rec.gpus > 1 else claim.device
        metrics = _run(_dense_body, job, claim, threads, seed)
    log(f"done: test_acc={metrics['test_acc']:.4f} train_acc={metrics['train_acc']:.4f}")
    return metrics


def _dense_body(ranks, dev, job: dict) -> dict:
    data, arch, rec, seed = job["data"], job["arch"], job["rec"], job["seed"]
    log(f"dense {arch} on {data.dataset}: device {job['device_label']}, recipe "
        f"{rec.as_dict()}")
    dp = dp_settings(rec.defence)
    # DP-SGD needs per-sample gradients: its recipe's networks use GroupNorm (every job
    # rebuilds a network from the architecture its checkpoint records)
    spec = model_spec(arch, data.source, rec.width, norm="group" if dp else "batch")
    model = build_model(**spec)  # seeded: w0 is a function of the seed alone
    init_model = copy.deepcopy(model)  # w0, written with the other outputs (no RNG use)
    rt = make_runtime(dev, job["runtime"])
    train_set, test_set = member_and_test_sets(data, rec, dev, rt.jpeg_decode)
    n_steps = steps_per_epoch(len(train_set), rec.batch_size)
    capture = rewind_step_of(job["rewind_epoch"], job["rewind_step"], n_steps, rec.epochs,
                             job["recipe_key"])
    log(f"{len(train_set)} members (training set), {len(test_set)} non-members (test set); "
        f"rewind point: step {capture} ({capture / n_steps:g} epochs)")
    resume = Path(job["out_model"]).with_name("resume.pt")
    res = run_training(model, train_set, test_set, rec, seed=seed, device=dev,
                       capture_step=capture, resume_path=resume,
                       resume_key=f"dense:{arch}:{capture}:{_data_key(data)}",
                       runtime=rt, ranks=ranks)
    if not _writes(ranks):
        return {}
    rewind_model = build_model(**spec)
    rewind_model.load_state_dict(res["captured_state"])
    identity = network_identity(data, arch, seed, "dense", 0.0)
    # Every output is written at the end, so a killed job leaves none that look valid.
    save_checkpoint(job["out_init"], init_model, spec, epoch=0, step=0, sparsity=0.0,
                    identity={**identity, "state": "init"})
    save_checkpoint(job["out_rewind"], rewind_model, spec, epoch=capture / n_steps,
                    step=capture, sparsity=0.0, identity={**identity, "state": "rewind"})
    save_checkpoint(job["out_model"], model.cpu(), spec, epoch=rec.epochs,
                    step=rec.epochs * n_steps, sparsity=0.0, identity=identity)
    metrics = _metrics(arch, data, 0.0, rec, seed, capture, n_steps, res, job["device_label"])
    metrics["method"] = "dense"
    if "privacy" in res:
        from ..defences.dpsgd import SAMPLING_NOTE

        metrics["privacy"] = dict(res["privacy"], epsilon_total=res["privacy"]["epsilon"],
                                  composed_runs=1, guarantee=SAMPLING_NOTE)
    write_json(metrics, job["out_metrics"])
    return metrics


def train_ticket(*, data: DataSpec, arch: str, recipe: dict, seed: int, sparsity: float,
                 device: str, mask_path, start_path, out_model, out_metrics,
                 method: str = "oneshot", start: str = "rewind", rewind_epoch: int | None = 0,
                 rewind_step: int | None = None, imp_round: int | None = None,
                 threads: int | None = None, recipe_key: str = "training",
                 runtime: dict | None = None, num_workers: int | None = None,
                 gpus: int | None = None) -> dict:
    """Steps 4-5 of Algorithm 1 for any pruning method: the method's start state (the
    rewind state, w0, or fresh random weights), the mask applied, masked retraining.
    ``num_workers`` and ``gpus`` override the recipe's (how, not what)."""
    from ..devices import claim_device

    rec = _recipe(recipe, recipe_key, num_workers, gpus)
    _setup(threads, seed)
    job = dict(data=data, arch=arch, rec=rec, seed=seed, sparsity=sparsity,
               mask_path=mask_path, start_path=start_path, out_model=out_model,
               out_metrics=out_metrics, method=method, start=start,
               rewind_epoch=rewind_epoch, rewind_step=rewind_step, imp_round=imp_round,
               recipe_key=recipe_key, runtime=runtime)
    with output_lock(Path(out_model).parent), \
            claim_device(device, slots=(runtime or {}).get("gpu_slots"),
                         count=rec.gpus) as claim:
        job["device_label"] = ",".join(claim.devices) if rec.gpus > 1 else claim.device
        metrics = _run(_ticket_body, job, claim, threads, seed)
    log(f"done: test_acc={metrics['test_acc']:.4f} train_acc={metrics['train_acc']:.4f} "
        f"sparsity={metrics['measured_sparsity_prunable']:.4f}")
    return metrics


def _ticket_body(ranks, dev, job: dict) -> dict:
    data, arch, rec, seed = job["data"], job["arch"], job["rec"], job["seed"]
    method, start, sparsity = job["method"], job["start"], job["sparsity"]
    rt = make_runtime(dev, job["runtime"])
    train_set, test_set = member_and_test_sets(data, rec, dev, rt.jpeg_decode)
    n_steps = steps_per_epoch(len(train_set), rec.batch_size)
    rewind = rewind_step_of(job["rewind_epoch"], job["rewind_step"], n_steps, rec.epochs,
                            job["recipe_key"])
    model, spec, mask, start_step = ticket_start(start, job["start_path"], job["mask_path"],
                                                 rewind_step=rewind, seed=seed)
    log(f"{method} ticket {arch} on {data.dataset} at sparsity {sparsity} (mask: "
        f"{mask.sparsity():.4f} of prunable weights), starting from the {start} state at "
        f"step {start_step} ({start_step / n_steps:g} epochs), device {job['device_label']}")
    resume = Path(job["out_model"]).with_name("resume.pt")
    res = run_training(model, train_set, test_set, rec, seed=seed, device=dev, mask=mask,
                       start_step=start_step, resume_path=resume,
                       resume_key=f"ticket:{method}:{arch}:{sparsity}:{_data_key(data)}",
                       runtime=rt, ranks=ranks)
    if not _writes(ranks):
        return {}
    model = model.cpu()
    measured = model_sparsity(model, mask.prune_fc)
    for name, t in mask.tensors.items():
        p = dict(model.named_parameters())[name]
        if torch.any(p.detach()[t == 0] != 0):
            raise AssertionError(f"pruned weights of {name} are not zero after retraining")
    save_checkpoint(job["out_model"], model, spec, epoch=rec.epochs,
                    step=rec.epochs * n_steps, sparsity=sparsity,
                    identity=network_identity(data, arch, seed, method, sparsity,
                                              job["imp_round"], mask_digest(mask.to("cpu"))))
    metrics = _metrics(arch, data, sparsity, rec, seed, rewind, n_steps, res,
                       job["device_label"])
    metrics.update(method=method, start=start, start_step=start_step,
                   imp_round=job["imp_round"])
    if "privacy" in res:
        from ..defences.dpsgd import ticket_budget
        from ..pruning import METHODS

        metrics["privacy"] = ticket_budget(dp_settings(rec.defence), res["privacy"],
                                           dense_steps=rec.epochs * n_steps,
                                           method=METHODS[method], imp_round=job["imp_round"])
    metrics["mask"] = mask.report(model)
    metrics["measured_sparsity_prunable"] = measured["sparsity_prunable"]
    write_json(metrics, job["out_metrics"])
    return metrics


def _metrics(arch, data: DataSpec, sparsity, rec: Recipe, seed, rewind_step, n_steps, res,
             device):
    return {
        "dataset": data.dataset, "arch": arch, "sparsity": sparsity, "seed": seed,
        "rewind_step": rewind_step, "rewind_epoch": rewind_step / n_steps,
        "steps_per_epoch": n_steps, "device": device, "recipe": rec.as_dict(),
        "train_acc": res["train_acc"], "train_loss": res["train_loss"],
        "test_acc": res["test_acc"], "test_loss": res["test_loss"],
        "generalization_gap": res["train_acc"] - res["test_acc"],
        "train_seconds": res["train_seconds"], "history": res["history"],
        **({"distributed": res["distributed"]} if "distributed" in res else {}),
    }


def ticket_start(start: str, start_path, mask_path, *, rewind_step: int, seed: int):
    """The pruned network a method retrains, and the step it starts at.

    ``start``: ``rewind`` (the whole rewind state of the dense run, weights, biases and
    BatchNorm statistics, checked to be the configured rewind step), ``init`` (w0, step 0) or
    ``reinit`` (fresh random weights drawn with a seed derived from the run's, the
    architecture read from ``start_path``; it retrains from the rewind step like the ticket
    it controls). The mask is applied, so survivors equal the start state exactly.
    Returns (model, architecture spec, mask, start step).
    """
    model, ckpt = load_checkpoint(start_path)
    spec = ckpt["model"]
    if start == "rewind":
        step = ckpt.get("step")
        if step is None:  # a checkpoint of an earlier version: epochs only
            raise CorruptFileError(f"{start_path} does not record its step (written by an "
                                   "earlier version); delete it and rerun train_dense")
        if int(step) != rewind_step:
            raise ValueError(f"{start_path} holds the state after step {step}, the config asks "
                             f"to rewind to step {rewind_step} (pruning.rewind_epoch / "
                             "pruning.rewind_step); delete it and rerun train_dense")
        start_step = rewind_step
    elif start == "init":
        start_step = 0
    elif start == "reinit":
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(derived_seed(seed, "reinit"))
        model = build_model(**spec)
        torch.random.set_rng_state(generator_state)
        start_step = rewind_step
    else:
        raise ValueError(f"unknown start state {start!r}; expected rewind, init or reinit")
    mask = load_fitting_mask(mask_path, model, f"the start state {start_path}")
    mask.apply_(model)
    return model, spec, mask, start_step


def rewound_ticket(rewind_path, mask_path, rewind_step: int):
    """Step 4 of Algorithm 1: the whole rewind state with the mask applied."""
    model, spec, mask, _ = ticket_start("rewind", rewind_path, mask_path,
                                        rewind_step=rewind_step, seed=0)
    return model, spec, mask
