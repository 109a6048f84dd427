"""What every config section shares: the error, the value types (seeds, sparsities,
sample sizes, registered architectures and dataset sources) and the cross-key checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema


from ..datasets import DATASETS
from ..layout import fmt_sparsity
from ..networks import ARCHITECTURES

if TYPE_CHECKING:  # annotations only
    from . import Config


DEVICES = ("cpu", "cuda", "auto")
MAX_SEED = 2**32 - 1  # numpy and scikit-learn seeds are 32-bit
DEFAULT_BASELINES = ("loss", "confidence", "entropy", "modified_entropy")


class ConfigError(ValueError):
    """The config is wrong; the message names the key and what to do."""


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Sparsity = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
SampleSize = Annotated[int, Field(ge=2, multiple_of=2)]


def registered(registry, what: str):
    """The type of a config value that names an entry of ``registry`` (validated by the
    registry, whose error names the closest entry); in the JSON schema a plain string, not
    an enum: adding an entry is one new file and the schema stays as it is."""
    def check(name):
        if name not in registry:
            registry.get_entry(name)  # the ValueError names the closest registered one
        return name

    return Annotated[str, AfterValidator(check),
                     WithJsonSchema({"type": "string", "description": f"{what} (one file each)"})]


Arch = registered(ARCHITECTURES, "an architecture registered in lottery_mia.networks")
Source = registered(DATASETS, "a dataset source registered in lottery_mia.datasets")


class Section(BaseModel):
    """A config section: unknown keys are refused, values never coerced between types."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    def check(self, cfg: "Config") -> None:
        """Rules between this section's keys and the rest of the config."""


def _no_duplicates(key: str, values, norm=lambda v: v) -> None:
    seen, dup = set(), []
    for v in values:
        n = norm(v)
        if n in seen and n not in dup:
            dup.append(n)
        seen.add(n)
    _require(not dup, f"config key {key!r} lists {dup[0]!r} more than once "
             f"({list(values)}); list each value once" if dup else "")


def _in_architectures(key: str, values, cfg: "Config") -> None:
    """Every architecture of config key ``key`` is one of the top-level ``architectures``."""
    for a in values:
        _require(a in cfg.architectures, f"config key {key!r}: {a!r} is not in "
                 "'architectures'")


def _in_sparsities(key: str, values, cfg: "Config") -> None:
    """Every sparsity of config key ``key`` is one of the top-level ``sparsities``."""
    spars = {fmt_sparsity(x) for x in cfg.sparsities}
    for s in values:
        _require(fmt_sparsity(s) in spars, f"config key {key!r}: {s} is not in 'sparsities'")
