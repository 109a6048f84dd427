"""Model checkpoints, masks' file format, resume states, and the lock a training job holds
on its output folder.

Nothing the pipeline reads back is unpickled. Checkpoints (model, init, rewind), masks and
resume states are safetensors files: the tensors, plus a JSON document in the file's header
metadata (architecture spec, epoch, sparsity; for a resume state the fingerprint, history,
next epoch and the optimizer's non-tensor state). Files written by earlier versions (zip
archives of ``torch.save``) are still read, with ``torch.load(..., weights_only=True)``:
tensors, numbers, strings, lists and dicts only. A planted pickle payload is refused, never
run. A file that cannot be read raises :class:`CorruptFileError`, whose message names the
file and what to do.

A resume state (``resume.pt``) carries a fingerprint of everything that shapes the training
it belongs to: the recipe, the seed, the start epoch, the job's key (which the entry points
extend with a content hash of the membership table's member rows and the data source and
root), the full starting state of the network (the init or rewind state, mask applied) and
the full mask. A state whose fingerprint differs, or that cannot be read, or whose tensors do
not fit the model, is discarded with a log line naming it; training then starts afresh.

Files are written to a temporary name unique to the writing process and then renamed, so a
killed job never leaves a half-written file under the final name, and two processes never
share a temporary file. A job holds an exclusive lock on its output folder
(:func:`lottery_mia.locks.output_lock`) while it runs, so two trainers can never share one
resume state.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .io import atomic_write_bytes, log
from .networks import build_model
from .datasets import source_info


class CorruptFileError(ValueError):
    """A file the pipeline reads back is corrupt, truncated or not what it should be."""


# --------------------------------------------------------------------------- files
def read_state(path, what: str, *, remedy: str | None = None):
    """``torch.load`` with ``weights_only=True``; any failure names the file and the fix."""
    path = Path(path)
    remedy = remedy or "delete it and rerun the rule that writes it"
    if not path.exists():
        raise CorruptFileError(f"{what} {path} does not exist; rerun the rule that writes it")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        raise CorruptFileError(f"{what} {path} cannot be read: it is not a PyTorch file "
                               f"(corrupt or truncated, {path.stat().st_size} bytes); {remedy}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - every failure becomes one clear message
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            reason = "it holds Python objects other than tensors (refused, not run)"
        raise CorruptFileError(f"{what} {path} cannot be read: {reason[:300]}; {remedy}") \
            from None


META_KEY = "lottery_mia"


def write_tensors(path, tensors: dict, meta: dict) -> None:
    """A safetensors file: ``tensors`` plus ``meta`` as JSON in the header metadata."""
    from safetensors.torch import save

    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                metadata={META_KEY: json.dumps(meta, sort_keys=True)})
    atomic_write_bytes(data, path, sync=True)


def _is_safetensors(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(9)
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 8 + n <= path.stat().st_size


def read_tensors(path, what: str, *, remedy: str | None = None) -> tuple[dict, dict] | None:
    """(tensors, meta) of a safetensors file written by :func:`write_tensors`; ``None`` for a
    file in the earlier ``torch.save`` format (read it with :func:`read_state`)."""
    path = Path(path)
    remedy = remedy or "delete it and rerun the rule that writes it"
    if not path.exists():
        raise CorruptFileError(f"{what} {path} does not exist; rerun the rule that writes it")
    if zipfile.is_zipfile(path):
        return None
    if not _is_safetensors(path):
        raise CorruptFileError(f"{what} {path} cannot be read: it is not a safetensors file "
                               f"(corrupt or truncated, {path.stat().st_size} bytes); {remedy}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = json.loads((f.metadata() or {})[META_KEY])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # noqa: BLE001 - every failure becomes one clear message
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        raise CorruptFileError(f"{what} {path} cannot be read ({type(err).__name__}: "
                               f"{first}); {remedy}") from None
    if not isinstance(meta, dict):
        raise CorruptFileError(f"{what} {path} has no lottery-mia metadata; {remedy}")
    return tensors, meta


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(path, model: nn.Module, spec: dict, **extra) -> None:
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    write_tensors(path, state, {"kind": "checkpoint", "model": dict(spec), **extra})


def load_checkpoint(path, device="cpu") -> tuple[nn.Module, dict]:
    got = read_tensors(path, "checkpoint")
    if got is not None:
        tensors, meta = got
        obj = {**meta, "state_dict": tensors}
    else:
        obj = read_state(path, "checkpoint")  # the earlier torch.save format
    if not isinstance(obj, dict) or not {"model", "state_dict"} <= set(obj):
        raise CorruptFileError(f"checkpoint {path} is not a lottery-mia checkpoint (no "
                               "'model' spec and 'state_dict'); delete it and rerun the rule "
                               "that writes it")
    try:
        model = build_model(**obj["model"])
        model.load_state_dict(obj["state_dict"])
    except Exception as err:  # noqa: BLE001
        raise CorruptFileError(f"checkpoint {path} does not match its own architecture spec "
                               f"{obj['model']}: {str(err).splitlines()[0][:300]}; delete it "
                               "and rerun the rule that writes it") from None
    return model.to(device), obj


def mask_digest(mask) -> str:
    """Content hash of a mask's 0/1 tensors (recorded in the network trained with it)."""
    return tensors_digest({k: (v != 0).to(torch.uint8) for k, v in mask.tensors.items()})


def check_trained_network(path, meta: dict, model: nn.Module, expected: dict,
                          mask=None, mask_path=None) -> None:
    """Refuse a network that is not the one a job was asked for.

    ``meta`` is the checkpoint's metadata (its ``identity``: dataset, arch, seed, method,
    sparsity, imp_round, mask digest, written by the training job); ``expected`` the same
    keys as the rule that reads it sees them. With ``mask`` (the mask file of the model's
    folder), the network must carry that mask: its recorded digest, and every pruned
    weight exactly zero. A dense network copied into a ticket's folder, or a ticket of
    another sparsity, method or seed, is refused with a message naming the file."""
    fix = ("it is not the network of this folder (copied or moved by hand?); delete it and "
           "rerun the workflow to train it again")
    ident = meta.get("identity")
    if not isinstance(ident, dict):
        raise CorruptFileError(f"checkpoint {path} does not record which network it is "
                               f"(written by an earlier version); {fix}")
    for key, want in expected.items():
        got = ident.get(key)
        same = (got is None and want is None) or (
            got is not None and want is not None
            and (abs(float(got) - float(want)) < 1e-9 if key == "sparsity" else got == want))
        if not same:
            raise CorruptFileError(f"checkpoint {path} holds the network with {key}={got!r}, "
                                   f"but this job reads the one with {key}={want!r}: {fix}")
    if mask is None:
        if ident.get("mask_digest"):
            raise CorruptFileError(f"checkpoint {path} is a pruned network, but this job "
                                   f"reads a dense one: {fix}")
        return
    if ident.get("mask_digest") != mask_digest(mask):
        raise CorruptFileError(f"checkpoint {path} was not trained with the mask {mask_path} "
                               f"of its folder: {fix}")
    params = dict(model.named_parameters())
    for name, t in mask.tensors.items():
        if name not in params or torch.any(params[name].detach().cpu()[t == 0] != 0):
            raise CorruptFileError(f"checkpoint {path}: weights that the mask {mask_path} "
                                   f"prunes are not zero in {name}: {fix}")


def model_spec(arch: str, source: str, width: int, norm: str = "batch") -> dict:
    """The architecture of a network as its checkpoint records it (``build_model(**spec)``
    rebuilds it); ``norm`` is recorded only when it is not BatchNorm (specs as before)."""
    info = source_info(source)
    spec = {"arch": arch, "num_classes": info.num_classes, "width": width,
            "in_channels": info.channels, "small_input": info.small_images}
    if norm != "batch":
        spec["norm"] = norm
    return spec


# --------------------------------------------------------------------------- fingerprints
def tensors_digest(tensors: dict) -> str:
    """Content hash of a name -> tensor mapping (names, dtypes, shapes and values)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def members_digest(table) -> str:
    """Content hash of the member rows of a membership table, in training order."""
    mem = table[table["member"]]
    h = hashlib.sha256()
    for col in ("pool", "pool_index", "sample_id", "label"):
        if col in mem.columns:
            h.update(col.encode())
            h.update(np.asarray(mem[col].astype(str)).astype("U").tobytes())
    return h.hexdigest()


def data_identity(source: str, root) -> str:
    """The data source and the resolved root folder it is read from."""
    return f"{source}:{Path(root).resolve() if root else '-'}"


def resume_fingerprint(*, recipe_fingerprint: str, seed: int, start_epoch: int, key: str,
                       model: nn.Module, mask=None) -> str:
    """Fingerprint of a training run: recipe, seed, start epoch, the job key, the full
    starting state of the network (init or rewind state) and the full mask."""
    parts = {
        "recipe": recipe_fingerprint, "seed": int(seed), "start_epoch": int(start_epoch),
        "key": key,
        "start_state": tensors_digest(model.state_dict()),
        "mask": tensors_digest(mask.tensors) if mask is not None else "-",
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------- resume states
def save_resume(path, *, fingerprint: str, model: nn.Module, optimizer, history: list,
                captured: dict | None, next_epoch: int) -> None:
    """The resume state as tensors (model, captured rewind state, optimizer state) + JSON."""
    tensors = {f"model/{k}": v.detach().cpu().clone() for k, v in model.state_dict().items()}
    for k, v in (captured or {}).items():
        tensors[f"captured/{k}"] = v.detach().cpu().clone()
    opt = optimizer.state_dict()
    other: dict = {}
    for idx, st in opt["state"].items():
        for name, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optimizer/{idx}/{name}"] = v.detach().cpu().clone()
            else:
                other.setdefault(str(idx), {})[name] = v
    meta = {"kind": "resume", "fingerprint": fingerprint, "history": history,
            "next_epoch": int(next_epoch), "has_captured": captured is not None,
            "optimizer": {"param_groups": opt["param_groups"], "state": other}}
    write_tensors(path, tensors, meta)


def _resume_from_tensors(tensors: dict, meta: dict) -> dict:
    """The resume state in memory, as :func:`load_resume` expects it."""
    model = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    captured = {k[len("captured/"):]: v for k, v in tensors.items()
                if k.startswith("captured/")} if meta.get("has_captured") else None
    state: dict = {}
    for idx, st in (meta.get("optimizer", {}).get("state") or {}).items():
        state.setdefault(int(idx), {}).update(st)
    for k, v in tensors.items():
        if k.startswith("optimizer/"):
            _, idx, name = k.split("/", 2)
            state.setdefault(int(idx), {})[name] = v
    return {"fingerprint": meta.get("fingerprint"), "model": model,
            "optimizer": {"state": state,
                          "param_groups": meta.get("optimizer", {}).get("param_groups", [])},
            "history": meta.get("history"), "captured": captured,
            "next_epoch": meta.get("next_epoch")}


def _discard(path: Path, why: str) -> None:
    log(f"discarding resume state {path}: {why}; training starts afresh")
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _match_parameter_layout(optimizer) -> None:
    """Give every per-parameter optimizer tensor (momentum buffers) its parameter's memory
    layout: a state read back from disk is standard-contiguous while channels_last weights
    are not, and CUDA's fused/foreach optimizers refuse tensors whose strides differ."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            st = optimizer.state.get(p)
            if not st:
                continue
            for k, v in st.items():
                if (torch.is_tensor(v) and v.shape == p.shape and v.dim() > 0
                        and v.stride() != p.stride()):
                    st[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def load_resume(path, *, fingerprint: str, model: nn.Module, optimizer,
                start_epoch: int, epochs: int) -> dict | None:
    """The resume state at ``path`` loaded into ``model`` and ``optimizer``, or ``None``.

    A missing state gives ``None``; a corrupt, foreign (fingerprint mismatch) or
    ill-fitting (shapes, epoch) state is discarded with a log line naming it, and ``None``
    is returned; the model and optimizer are then left untouched.
    """
    if path is None:
        return None
    path = Path(path)
    if not path.exists():
        return None
    try:
        got = read_tensors(path, "resume state")
        saved = (_resume_from_tensors(*got) if got is not None
                 else read_state(path, "resume state"))  # the earlier torch.save format
    except CorruptFileError as err:
        _discard(path, str(err).split(": ", 1)[-1].split("; delete")[0])
        return None
    required = {"fingerprint", "model", "optimizer", "history", "captured", "next_epoch"}
    if not isinstance(saved, dict) or not required <= set(saved):
        _discard(path, "it is not a resume state of this pipeline")
        return None
    if saved["fingerprint"] != fingerprint:
        _discard(path, "it belongs to another run (recipe, seed, membership table, data, "
                       "start state or mask differ)")
        return None
    nxt = saved["next_epoch"]
    if not isinstance(nxt, int) or not start_epoch < nxt < epochs:
        _discard(path, f"its next epoch {nxt!r} is outside ({start_epoch}, {epochs})")
        return None
    own = model.state_dict()
    state = saved["model"]
    bad = [k for k in own if k not in state or tuple(state[k].shape) != tuple(own[k].shape)]
    if bad or set(state) != set(own):
        _discard(path, f"its tensors do not fit the model (e.g. {(bad or sorted(set(state) ^ set(own)))[0]})")
        return None
    backup = {k: v.detach().clone() for k, v in own.items()}
    try:
        model.load_state_dict(state)
        optimizer.load_state_dict(saved["optimizer"])
        _match_parameter_layout(optimizer)
        for group in optimizer.state.values():
            for k, v in group.items():
                if torch.is_tensor(v) and not torch.isfinite(v).all():
                    raise ValueError(f"non-finite optimizer state {k}")
    except Exception as err:  # noqa: BLE001
        model.load_state_dict(backup)
        optimizer.state.clear()
        _discard(path, f"its optimizer state does not fit ({str(err).splitlines()[0][:200]})")
        return None
    log(f"resuming from {path} at epoch {nxt}")
    return {"history": list(saved["history"]), "captured": saved["captured"], "next_epoch": nxt}
