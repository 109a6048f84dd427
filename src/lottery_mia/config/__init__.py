"""The typed config: every key with its type, range, default and meaning, in one place.

:func:`load_config` turns the config mapping Snakemake read (``config/config.yaml``, or a
``--configfile``) into a :class:`Config`, or raises :class:`ConfigError` with one line that
names the key at fault and what to do. The structure (types, ranges, defaults, unknown keys
with a did-you-mean) is pydantic's; the rules between keys sit beside the keys they concern,
as each section's ``check`` method, and run after the structure is valid. The rest of the
code reads typed values from a :class:`Config` and never repeats a default.

``workflow/schemas/config.schema.json`` is generated from :class:`Config`
(``python -m lottery_mia.config > workflow/schemas/config.schema.json``; a test keeps it in
step). No torch here: the Snakefile imports this module, and cluster jobs re-read the
Snakefile.
"""

from __future__ import annotations

import difflib
from types import SimpleNamespace
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from ..datasets import dataset_source
from ..layout import fmt_sparsity, sparsity_folder
from ..recipe import Augment, Recipe
from .base import (DEVICES, MAX_SEED, Arch, ConfigError, Section, Seed, Sparsity,
                   _no_duplicates, _require)
from .sections import (Attack, Confidences, Dataset, Pruning, References, Report, Runtime,
                       Threads, Transfer)


class Config(Section):
    """The whole config (``config/config.yaml``; docs/running.md, "Configuration")."""

    device: str = Field("auto", description="cpu | cuda | auto (cuda when available) | cuda:N")
    replicates: list[Seed] = Field(min_length=1, description="training seeds, one run of "
                                   "dense networks and tickets each")
    threads: Threads = Field(default_factory=Threads)
    runtime: Runtime = Field(default_factory=Runtime)
    datasets: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")], Dataset] = Field(
        min_length=1, description="the datasets, by the name results are filed under")
    architectures: list[Arch] = Field(min_length=1, description="architectures (registered "
                                      "in lottery_mia.networks)")
    sparsities: list[Sparsity] = Field(min_length=1, description="fractions of prunable "
                                       "weights removed; 0 is the dense network")
    training: dict[str, dict[Arch, Recipe]] = Field(description="the recipe of each dataset "
                                                    "and architecture")
    pruning: Pruning = Field(default_factory=Pruning)
    confidences: Confidences = Field(default_factory=Confidences)
    attack: Attack
    references: References = Field(default_factory=References)
    transfer: Transfer
    report: Report

    _cache_dir: Any = None  # where attack settings' checks are remembered (not a key)

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v not in DEVICES and not (v.startswith("cuda:") and v[5:].isdigit()):
            raise ValueError(f"{v!r} is not one of {DEVICES} (or cuda:N)")
        return v

    # ------------------------------------------------------------------ derived values
    def sample_sizes(self, dataset: str) -> tuple[int, ...]:
        """Attack sample sizes of a dataset: its own list, else ``attack.sample_sizes``."""
        own = self.datasets[dataset].attack_sample_sizes
        return tuple(own if own is not None else self.attack.sample_sizes)

    def architectures_of(self, dataset: str) -> tuple:
        """The architectures ``dataset`` trains: its own list (a part of ``architectures``)
        or, without one, every architecture."""
        own = self.datasets[dataset].architectures
        return tuple(own if own is not None else self.architectures)

    def recipe(self, dataset: str, arch: str) -> Recipe:
        return self.training[dataset][arch]

    def recipes(self):
        """(dataset, arch, recipe) of every configured dataset and architecture."""
        for ds in self.datasets:
            for arch in self.architectures_of(ds):
                if arch in self.training.get(ds, {}):
                    yield ds, arch, self.training[ds][arch]

    def how_to_run(self, dataset: str | None = None, arch: str | None = None,
                   **more) -> SimpleNamespace:
        """How and where a job runs (see :func:`how_to_run`)."""
        recipe = self.recipe(dataset, arch) if dataset and arch else None
        return how_to_run(device=self.device,
                          runtime={"cuda_graphs": self.runtime.cuda_graphs,
                                   "gpu_slots": self.runtime.gpu_slots,
                                   "jpeg_decode": self.runtime.jpeg_decode},
                          num_workers=recipe.num_workers if recipe else None,
                          gpus=recipe.gpus if recipe else None, **more)

    def as_dict(self) -> dict:
        """Every key with its value or default (plain types)."""
        return self.model_dump(mode="json")

    # ------------------------------------------------------------------ rules between keys
    def check(self, cfg: "Config" | None = None) -> None:
        _no_duplicates("architectures", self.architectures)
        _no_duplicates("sparsities", self.sparsities, float)
        names: dict[str, float] = {}
        for v in self.sparsities:
            other = names.setdefault(fmt_sparsity(v), float(v))
            _require(other == float(v), f"config key 'sparsities': {other} and {v} cannot be "
                     f"told apart in folder names (both become {sparsity_folder(v)!r}); "
                     "make them differ in the first 6 significant digits")
        _require(0.0 in self.sparsities, "config key 'sparsities' must include 0 (the dense "
                 "network)")
        _no_duplicates("replicates", self.replicates)
        for name, ds in self.datasets.items():
            ds.check_dataset(name)
            declared = dataset_source(ds.source).augment
            for arch, rec in list(self.training.get(name, {}).items()):
                if "augment" not in rec.model_fields_set and declared:
                    # a recipe that sets no augmentation gets its dataset's standard one
                    self.training[name][arch] = rec.model_copy(
                        update={"augment": Augment(**declared)})
            for a in ds.architectures or []:
                _require(a in self.architectures, f"config key 'datasets.{name}.architectures':"
                         f" {a!r} is not in 'architectures' {list(self.architectures)}")
            for a in self.architectures_of(name):
                _require(a in self.training.get(name, {}), f"config key 'training.{name}.{a}' "
                         "is missing: every dataset x architecture needs a training recipe")
            _, n_scored, n_non = ds.sizes()
            size_key = (f"datasets.{name}.attack_sample_sizes"
                        if ds.attack_sample_sizes is not None else "attack.sample_sizes")
            limit = 2 * min(n_scored, n_non)
            for n in self.sample_sizes(name):
                _require(n <= limit, f"config key '{size_key}': {n} is larger than dataset "
                         f"{name!r} allows ({n_scored} scored members and {n_non} "
                         f"non-members, so at most {limit}); lower it or raise "
                         f"'datasets.{name}.members'/'nonmembers'")
        for section in (self.attack, self.pruning, self.references, self.transfer,
                        self.report):
            section.check(self)

    def warnings(self) -> list[str]:
        """Every DAG-time warning: missing dataset roots, references smaller than their
        target."""
        from ..references import reference_size

        out = self.root_warnings()
        for name, ds in self.datasets.items():
            if dataset_source(ds.source).mirror_keeps_class:
                continue
            flips = [f"training.{name}.{a}.augment.hflip"
                     for a, rec in self.training.get(name, {}).items()
                     if a in self.architectures_of(name) and rec.augment.hflip]
            if self.confidences.augmentations == 2:
                flips.append("confidences.augmentations: 2")
            if flips:
                out.append(f"dataset {name!r} ({ds.source}): a mirrored image of it is not an "
                           f"image of its class, but {', '.join(flips)} flips them; set "
                           "hflip: false (and confidences.augmentations: 1) unless you mean it")
        ref = self.references
        for name in (ref.datasets or list(self.datasets)) if ref.count else []:
            n_mem, n_scored, n_non = self.datasets[name].sizes()
            r = reference_size(n_mem, n_scored + n_non)
            if r < n_mem:
                out.append(f"dataset {name!r}: the reference models train on {r} samples, the "
                           f"target on {n_mem}: the {n_scored + n_non} scored samples hold "
                           "fewer than twice the members, so references and target are not "
                           "same-size halves of one pool (Carlini et al.); score more "
                           f"samples or set 'datasets.{name}.members' to {r} to match")
        return out

    def root_warnings(self) -> list[str]:
        """DAG-time warnings: a dataset root that does not exist (the job fails naming it)."""
        from pathlib import Path

        out = []
        for name, ds in self.datasets.items():
            if not dataset_source(ds.source).needs_root:
                continue
            key = f"datasets.{name}.root"
            if ds.root in (None, ""):
                out.append(f"config key {key!r} is empty: dataset {name!r} ({ds.source}) needs "
                           "its files; the membership_split job will fail until it is set")
            elif not Path(ds.root).expanduser().exists() and not ds.download:
                what = dataset_source(ds.source).layout or f"the {ds.source} files"
                fetch = (f", or set 'datasets.{name}.download: true' to let torchvision "
                         "fetch it" if dataset_source(ds.source).downloadable else "")
                out.append(f"config key {key!r}: {ds.root} does not exist; put {what} "
                           f"there{fetch} before running the jobs that read it "
                           "(docs/datasets.md)")
        return out


# --------------------------------------------------------------------------- loading
def load_config(raw: dict, cache_dir=None) -> Config:
    """The typed config of the mapping ``raw``; :class:`ConfigError` naming the key at fault.

    ``cache_dir``: where the attack estimators' checks of their settings are remembered
    between DAG builds (importing scikit-learn costs about a second)."""
    raw = _plain(raw)
    _require(isinstance(raw, dict), "the config must be a mapping of keys to values")
    _unknown_section_keys(raw)
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(describe_errors(err, raw)) from None
    _no_booleans_as_numbers(cfg, raw, "")
    cfg._cache_dir = cache_dir
    cfg.check()
    return cfg


def _no_booleans_as_numbers(value, raw, key: str) -> None:
    """Refuse a boolean where the config takes a number (pydantic reads ``true`` as 1:
    ``epochs: true`` would train one epoch, ``replicates: [true, false]`` seeds 1 and 0),
    by walking the validated config beside the raw one."""
    if isinstance(raw, bool):
        if not isinstance(value, bool) and isinstance(value, (int, float)):
            raise ConfigError(f"config key {key!r}: {str(raw).lower()} is a boolean, not a "
                              f"number; write the number you mean")
        return
    if isinstance(raw, dict):
        for k, v in raw.items():
            if isinstance(value, BaseModel):
                field = next((n for n, f in type(value).model_fields.items()
                              if n == k or f.alias == k), None)
                if field is None:
                    continue
                sub = getattr(value, field)
            elif isinstance(value, dict) and k in value:
                sub = value[k]
            else:
                continue
            _no_booleans_as_numbers(sub, v, f"{key}.{k}" if key else str(k))
    elif isinstance(raw, list) and isinstance(value, (list, tuple)) and len(raw) == len(value):
        for i, (v, r) in enumerate(zip(value, raw)):
            _no_booleans_as_numbers(v, r, f"{key}[{i}]")


def _plain(obj):
    """Snakemake's config mapping types as plain dicts and lists."""
    if isinstance(obj, dict) or (hasattr(obj, "items") and not isinstance(obj, (str, bytes))):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _unknown_section_keys(raw: dict) -> None:
    """In ``attack`` and ``pruning``, where a mapping-valued key holds the settings of a
    registered attack or method, a key that is neither a setting nor a mapping is a typo."""
    for section, cls in (("attack", Attack), ("pruning", Pruning)):
        body = raw.get(section)
        if not isinstance(body, dict):
            continue
        known = list(cls.model_fields)
        for key, value in body.items():
            if key in known:
                continue
            if not isinstance(value, dict):
                m = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean {m[0]!r}?)" if m else ""
                raise ConfigError(f"config key '{section}.{key}': unknown key {key!r}{hint}; "
                                  f"known keys: {known}, or mapping-valued settings of a "
                                  f"registered {'attack' if section == 'attack' else 'pruning method'}")
            if section == "attack":
                from ..attacks import ATTACKS

                _require(key in ATTACKS, f"config key 'attack.{key}': no attack is called "
                         f"{key!r}; attack settings go under the name of a registered attack: "
                         f"{sorted(ATTACKS)}")


def _loc(loc) -> str:
    return ".".join(str(p) for p in loc)


def describe_errors(err: ValidationError, raw: dict | None = None) -> str:
    """The most telling of pydantic's errors as one line naming the key: an unknown key
    first (a typo is the likeliest cause, and it also makes its right name 'missing')."""
    errors = err.errors(include_url=False)
    errors.sort(key=lambda e: e["type"] != "extra_forbidden")
    e = errors[0]
    loc = list(e["loc"])
    # unions report each branch (e.g. 'int' / 'none'); the key is the config path
    loc = [p for p in loc if not (isinstance(p, str) and p in (
        "int", "none", "bool", "str", "float", "list[int]", "literal['auto']",
        "list[constrained-int]", "constrained-int"))]
    key = _loc(loc)
    where = f"config key {key!r}" if key else "config"
    value, ctx, kind = e.get("input"), e.get("ctx") or {}, e["type"]
    if kind == "extra_forbidden":
        parent = loc[:-1]
        allowed = _allowed_keys(parent)
        name = str(loc[-1])
        m = difflib.get_close_matches(name, allowed, n=1)
        hint = f" (did you mean {m[0]!r}?)" if m else ""
        return f"{where}: unknown key {name!r}{hint}; allowed: {allowed}"
    if kind == "missing":
        return f"config key {key!r} is missing"
    if kind in ("literal_error", "enum"):
        return f"{where}: {value!r} is not one of {ctx.get('expected', '')}"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        return f"{where}: {value!r} is above the maximum {bound}" if kind == "less_than_equal" \
            else f"{where}: {value!r} must be below {bound}"
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        return f"{where}: {value!r} is below the minimum {bound}" if kind == \
            "greater_than_equal" else f"{where}: {value!r} must be above {bound}"
    if kind == "finite_number":
        return f"{where}: {value} is not a finite number; give a real value"
    if kind == "multiple_of":
        return f"{where}: {value!r} must be a multiple of {ctx.get('multiple_of')}"
    if kind in ("too_short", "too_long"):
        return f"{where}: {e['msg'].lower()}"
    if kind == "value_error":
        return f"{where}: {str(ctx.get('error', e['msg']))}"
    msg = e["msg"]
    return f"{where}: {msg} (got {value!r})" if len(repr(value)) < 200 else f"{where}: {msg}"


def _allowed_keys(parent: list) -> list[str]:
    """The declared keys of the section at ``parent`` (a loc path)."""
    model: Any = Config
    for part in parent:
        field = getattr(model, "model_fields", {}).get(part) if isinstance(part, str) else None
        if field is not None:
            model = _model_of(field.annotation)
            continue
        # a dict value: datasets.<name>, training.<ds>.<arch>
        model = _dict_value_model(model)
    return sorted(getattr(model, "model_fields", {}))


def _model_of(annotation):
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return annotation


def _dict_value_model(annotation):
    import typing

    args = typing.get_args(annotation)
    return _model_of(args[-1]) if args else annotation


# --------------------------------------------------------------------------- job params
def canonical(obj):
    """``obj`` with the keys of every mapping sorted, recursively.

    Snakemake decides whether a job's params changed by comparing their ``repr``, so a
    mapping whose keys merely come in another order would rerun every job that takes it."""
    if isinstance(obj, dict) or (hasattr(obj, "items") and not isinstance(obj, (str, bytes))):
        return {str(k): canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    return obj


def how_to_run(**settings) -> SimpleNamespace:
    """How and where a job runs, never what it computes: the device, the runtime block
    (CUDA graphs, GPU slots), data-loader workers, whether a dataset may be downloaded.

    A rule hands it to its job as a param like any other setting. It is deliberately not a
    builtin type: Snakemake compares the ``repr`` of builtin-typed params only when it
    decides what to rerun, so changing how or where jobs run (a faster device, more loader
    workers, a SLURM time limit) reruns nothing that is already computed
    (``tests/test_workflow.py`` checks this for every such key)."""
    return SimpleNamespace(**canonical(settings))


def schema() -> dict:
    """The JSON schema of the config (written to workflow/schemas/config.schema.json)."""
    s = Config.model_json_schema()
    s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    s["description"] = ("lottery-mia configuration, generated from lottery_mia.config.Config "
                        "(python -m lottery_mia.config); see docs/running.md, \"Configuration\"")
    return s


__all__ = ["Config", "ConfigError", "load_config", "canonical", "how_to_run", "schema",
           "MAX_SEED"]
