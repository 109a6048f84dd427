"""The training recipe of one (dataset, architecture) pair: the one definition of its keys.

``training.<dataset>.<arch>`` in the config is a :class:`Recipe`: every key with its type,
range, default and meaning lives here, and :mod:`lottery_mia.config` validates the config
against it. The same recipe trains the dense network and retrains its tickets. No torch:
the Snakefile reads it.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEDULES = ("cosine", "step", "constant")
HOW_FIELDS = ("num_workers", "gpus")  # how a job runs, not what it computes


class Augment(BaseModel):
    """Training-time augmentation (the batch producer draws it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    crop_padding: int = Field(0, ge=0, description="random crop after zero padding by this "
                              "many pixels (0: off)")
    hflip: bool = Field(False, description="random horizontal flips")

    @classmethod
    def from_dict(cls, d: dict | None) -> "Augment":
        return cls(**dict(d or {}))


class Recipe(BaseModel):
    """Training hyper-parameters of one (dataset, architecture) pair."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(ge=1, description="training epochs")
    batch_size: int = Field(ge=1, description="minibatch size (a last short batch is "
                            "dropped)")
    lr: float = Field(gt=0, allow_inf_nan=False, description="peak learning rate of SGD")
    momentum: float = Field(0.9, ge=0, le=1, allow_inf_nan=False, description="SGD momentum")
    weight_decay: float = Field(5e-4, ge=0, allow_inf_nan=False, description="L2 penalty")
    nesterov: bool = Field(False, description="Nesterov momentum")
    schedule: Literal["cosine", "step", "constant"] = Field(
        "cosine", description="learning-rate schedule: cosine | step (milestones, gamma) | "
        "constant")
    milestones: tuple[int, ...] = Field((), description="epochs at which the step schedule "
                                        "multiplies the rate by gamma")
    gamma: float = Field(0.1, gt=0, allow_inf_nan=False, description="step schedule factor")
    warmup_epochs: int = Field(0, ge=0, description="linear warm-up epochs")
    width: int = Field(64, ge=1, description="channels of the first stage (64: the standard "
                       "ResNet)")
    augment: Augment = Field(default_factory=Augment, description="training augmentation "
                             "(not set: the dataset's standard one, declared by its source "
                             "in lottery_mia.datasets)")
    eval_batch_size: int = Field(512, ge=1, description="batch size of evaluations")
    eval_every: int = Field(1, ge=0, description="epochs between test evaluations in the "
                            "log (0: at the end only)")
    num_workers: int = Field(4, ge=0, description="data-loader workers (ImageNet); how, not "
                             "what: changing it reruns nothing")
    gpus: int = Field(1, ge=1, description="GPUs of one node a training job uses "
                      "(DistributedDataParallel); how, not what")
    defence: dict | None = Field(None, description="a training-time defence against "
                                 "membership inference, {name: {settings}}, e.g. {ppb: "
                                 "{strength: 1.0}} (lottery_mia.defences); every network of "
                                 "the recipe trains with it")

    @field_validator("defence")
    @classmethod
    def _known_defence(cls, v):
        from .defences import check_defence

        return check_defence(v)

    @field_validator("milestones")
    @classmethod
    def _distinct_milestones(cls, v):
        if len(set(v)) != len(v):
            dup = sorted({m for m in v if v.count(m) > 1})
            raise ValueError(f"lists {dup[0]} more than once ({list(v)}); list each value "
                             "once")
        if any(m < 0 for m in v):
            raise ValueError("milestones are epochs (>= 0)")
        return v

    @classmethod
    def from_dict(cls, d: dict, key: str = "training") -> "Recipe":
        """The recipe of config key ``key`` (a ValueError naming the key when it is wrong)."""
        from pydantic import ValidationError

        try:
            return cls.model_validate(dict(d))
        except ValidationError as err:
            e = err.errors()[0]
            where = ".".join(str(p) for p in (key, *e["loc"]))
            raise ValueError(f"config key {where}: {e['msg']}") from None

    def lr_at(self, epoch_float: float) -> float:
        if self.warmup_epochs > 0 and epoch_float < self.warmup_epochs:
            return self.lr * (epoch_float + 1e-8) / self.warmup_epochs
        if self.schedule == "cosine":
            span = max(self.epochs - self.warmup_epochs, 1e-8)
            t = (epoch_float - self.warmup_epochs) / span
            return 0.5 * self.lr * (1.0 + math.cos(math.pi * min(max(t, 0.0), 1.0)))
        if self.schedule == "step":
            return self.lr * self.gamma ** sum(epoch_float >= m for m in self.milestones)
        return self.lr

    def as_dict(self) -> dict:
        """The recipe's keys; ``defence`` only when set, so a recipe without one keeps the
        identity (params, fingerprint) it had before defences existed."""
        d = self.model_dump(mode="json")
        if d.get("defence") is None:
            d.pop("defence", None)
        return d

    def __hash__(self) -> int:  # frozen, with a mapping among its fields
        return hash(self.fingerprint())

    def fingerprint(self) -> str:
        """What shapes the trained network (every field but how the job runs: the loader's
        worker count and the GPUs it trains on)."""
        fields = {k: v for k, v in self.as_dict().items() if k not in HOW_FIELDS}
        return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str)
                              .encode()).hexdigest()[:16]


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Training steps per epoch: full batches only (one short batch if n < batch_size)."""
    return max(n // batch_size, 1)


def rewind_step_of(rewind_epoch: int | None, rewind_step: int | None, n_steps: int,
                   epochs: int, recipe_key: str = "training") -> int:
    """The rewind point in optimizer steps: ``pruning.rewind_step``, or
    ``pruning.rewind_epoch`` x steps per epoch. Exactly one of the two is set, and the point
    lies before the last step (a ticket rewound to the end would never be retrained). The
    one statement of the rule: the config checks it while the DAG is built, the training
    jobs apply it."""
    if (rewind_epoch is None) == (rewind_step is None):
        raise ValueError("config keys pruning.rewind_epoch and pruning.rewind_step: set "
                         f"exactly one of them (got rewind_epoch={rewind_epoch!r}, "
                         f"rewind_step={rewind_step!r}); null the other")
    step = rewind_step if rewind_step is not None else rewind_epoch * n_steps
    key = "rewind_step" if rewind_step is not None else "rewind_epoch"
    value = rewind_step if rewind_step is not None else rewind_epoch
    if not 0 <= step < epochs * n_steps:
        raise ValueError(f"config key pruning.{key}={value} must be within [0, "
                         f"{epochs if key == 'rewind_epoch' else epochs * n_steps}) of "
                         f"{recipe_key} (epochs={epochs} x {n_steps} optimizer steps): a "
                         "ticket rewound to the last step would never be retrained; lower it "
                         "or raise the epochs")
    return step


def without_how(recipe: dict) -> dict:
    """A recipe's fields that shape the network (the job params Snakemake compares):
    every field but :data:`HOW_FIELDS`."""
    return {k: v for k, v in recipe.items() if k not in HOW_FIELDS}


def with_how(recipe: dict, **how) -> dict:
    """``recipe`` with how its job runs put back in (``num_workers``, ``gpus``; None: the
    recipe's own)."""
    unknown = set(how) - set(HOW_FIELDS)
    if unknown:
        raise ValueError(f"with_how: {sorted(unknown)} are not how a job runs {HOW_FIELDS}")
    return {**recipe, **{k: int(v) for k, v in how.items() if v is not None}}
