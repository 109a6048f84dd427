"""The confidence table: what a model outputs for each member and non-member sample.

One Parquet file per model, one row per scored sample of the membership table. Schema (the
single definition; :func:`validate_confidences` enforces it):

==========  ==================================  ===========================================
column      type                                meaning
==========  ==================================  ===========================================
sample_id   int64                               id from the membership table
label       int64                               true class
member      bool                                True: in the model's training set
predicted   int64                               argmax of the softmax
loss        float32                             cross-entropy of the true class, -log p_y
softmax     fixed_size_list<float32>[classes]   P(y|x), the confidence vector
==========  ==================================  ===========================================

File metadata (``lottery_mia`` key, JSON): dataset, arch, sparsity, num_classes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_FIELDS = ["sample_id", "label", "member", "predicted", "loss", "softmax"]


def confidence_schema(num_classes: int, metadata: dict | None = None) -> pa.Schema:
    schema = pa.schema([
        ("sample_id", pa.int64()),
        ("label", pa.int64()),
        ("member", pa.bool_()),
        ("predicted", pa.int64()),
        ("loss", pa.float32()),
        ("softmax", pa.list_(pa.float32(), num_classes)),
    ])
    if metadata:
        schema = schema.with_metadata({"lottery_mia": json.dumps(metadata)})
    return schema


@dataclass
class ConfidenceTable:
    sample_id: np.ndarray
    label: np.ndarray
    member: np.ndarray
    predicted: np.ndarray
    loss: np.ndarray
    softmax: np.ndarray  # N x classes, float32
    metadata: dict

    def __len__(self) -> int:
        return len(self.sample_id)

    def rows(self, sample_ids: np.ndarray) -> "ConfidenceTable":
        """The rows of ``sample_ids``, in that order (every id must be present)."""
        pos = {int(s): i for i, s in enumerate(self.sample_id)}
        try:
            idx = np.fromiter((pos[int(s)] for s in sample_ids), dtype=np.int64,
                              count=len(sample_ids))
        except KeyError as e:
            raise KeyError(f"sample_id {e.args[0]} is not in this confidence table") from None
        return ConfidenceTable(self.sample_id[idx], self.label[idx], self.member[idx],
                               self.predicted[idx], self.loss[idx], self.softmax[idx],
                               self.metadata)


def validate_confidences(t: ConfidenceTable) -> None:
    n = len(t.sample_id)
    for name in ("label", "member", "predicted", "loss"):
        if len(getattr(t, name)) != n:
            raise ValueError(f"confidence table: column {name} has the wrong length")
    if t.softmax.ndim != 2 or t.softmax.shape[0] != n:
        raise ValueError("confidence table: softmax must be N x classes")
    if not np.allclose(t.softmax.sum(1), 1.0, atol=1e-3):
        raise ValueError("confidence table: softmax rows do not sum to 1")
    if len(np.unique(t.sample_id)) != n:
        raise ValueError("confidence table: duplicate sample_id")


def write_confidences(t: ConfidenceTable, path: str | Path) -> None:
    validate_confidences(t)
    c = t.softmax.shape[1]
    flat = pa.array(np.ascontiguousarray(t.softmax, dtype=np.float32).ravel(), pa.float32())
    table = pa.Table.from_arrays([
        pa.array(t.sample_id.astype(np.int64)), pa.array(t.label.astype(np.int64)),
        pa.array(t.member.astype(bool)), pa.array(t.predicted.astype(np.int64)),
        pa.array(t.loss.astype(np.float32)), pa.FixedSizeListArray.from_arrays(flat, c),
    ], schema=confidence_schema(c, t.metadata))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(path) + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def read_confidences(path: str | Path) -> ConfidenceTable:
    table = pq.read_table(path)
    missing = [f for f in SCHEMA_FIELDS if f not in table.column_names]
    if missing:
        raise ValueError(f"{path} is not a confidence table: missing columns {missing}")
    sm_col = table.column("softmax").combine_chunks()
    c = sm_col.type.list_size
    softmax = sm_col.flatten().to_numpy(zero_copy_only=False).reshape(-1, c)
    meta = json.loads((table.schema.metadata or {}).get(b"lottery_mia", b"{}"))
    t = ConfidenceTable(
        sample_id=table.column("sample_id").to_numpy(),
        label=table.column("label").to_numpy(),
        member=table.column("member").to_numpy(zero_copy_only=False).astype(bool),
        predicted=table.column("predicted").to_numpy(),
        loss=table.column("loss").to_numpy(),
        softmax=softmax,
        metadata=meta,
    )
    validate_confidences(t)
    return t


def predict_softmax(model, dataset, batch_size: int, device) -> tuple[np.ndarray, np.ndarray]:
    """Softmax outputs (float32, N x classes) and labels of ``dataset``, in its order."""
    import torch

    model.eval().to(device)
    use_amp = torch.device(device).type == "cuda"
    if use_amp:
        model.to(memory_format=torch.channels_last)
    probs, labels = [], []
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
        for xb, yb in dataset.eval_batches(batch_size):
            probs.append(torch.softmax(model(xb).float(), dim=1).cpu())
            labels.append(yb.cpu())
    return torch.cat(probs).numpy().astype(np.float32), torch.cat(labels).numpy()


def extract_confidences(*, data, model_path, dataset: str, arch: str, sparsity: float,
                        device: str, batch_size: int, output, threads: int | None = None,
                        num_workers: int = 4) -> ConfidenceTable:
    """Score every scored member and non-member of the membership table with one model."""
    import torch

    from .data import image_set
    from .devices import claim_device
    from .io import log
    from .membership import read_membership
    from .sources import source_info
    from .training import load_checkpoint

    if threads:
        torch.set_num_threads(int(threads))
    table = read_membership(data.membership)
    table = table[table["scored"]]
    info = source_info(data.source)
    parts = []
    with claim_device(device) as claim:
        dev = torch.device(claim.device)
        model, _ = load_checkpoint(model_path, dev)
        for member, pool in ((True, info.member_pool), (False, info.nonmember_pool)):
            rows = table[table["member"] == member]
            ds = image_set(data.source, data.root, pool, rows["pool_index"].to_numpy(),
                           key=data.key, device=dev, num_workers=num_workers,
                           channels_last=dev.type == "cuda")
            probs, labels = predict_softmax(model, ds, batch_size, dev)
            if not np.array_equal(labels, rows["label"].to_numpy()):
                raise ValueError(f"labels read from {pool} disagree with {data.membership}: "
                                 "the dataset files changed since the split was made")
            parts.append((rows["sample_id"].to_numpy(), labels, np.full(len(rows), member),
                          probs))
            log(f"scored {len(rows)} {'members' if member else 'non-members'} on {dev}")
    sid, lab, mem, sm = (np.concatenate(x) for x in zip(*parts))
    p_true = np.clip(sm[np.arange(len(lab)), lab], 1e-12, 1.0)
    t = ConfidenceTable(sid, lab, mem, sm.argmax(1), (-np.log(p_true)).astype(np.float32), sm,
                        {"dataset": dataset, "arch": arch, "sparsity": sparsity,
                         "num_classes": int(sm.shape[1])})
    write_confidences(t, output)
    acc_m = float((t.predicted[t.member] == t.label[t.member]).mean())
    acc_n = float((t.predicted[~t.member] == t.label[~t.member]).mean())
    log(f"wrote {output}: accuracy on members {acc_m:.4f}, on non-members {acc_n:.4f}")
    return t
