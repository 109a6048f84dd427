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
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .layout import fmt_sparsity, sparsity_folder
from .recipe import Recipe
from .sources import max_split_sizes, source_info

ARCHITECTURE_NAMES = ("resnet18", "resnet50")
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
Arch = Literal["resnet18", "resnet50"]


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


# --------------------------------------------------------------------------- sections
class Threads(Section):
    """Torch threads of each job (how, not what: changing them reruns nothing)."""

    train: int = Field(1, ge=1, description="threads of each training and pruning job")
    confidences: int = Field(1, ge=1, description="threads of each scoring job")


class Runtime(Section):
    """How jobs use their device (how, not what: changing it reruns nothing)."""

    cuda_graphs: Literal["auto"] | bool = Field(
        "auto", description="replay the fixed-shape training step as a CUDA graph: auto (on "
        "with CUDA), true, false")
    gpu_slots: int = Field(1, ge=1, description="jobs per GPU at once; run with --resources "
                           "gpu=<GPUs x gpu_slots>")
    train_minutes: int = Field(2880, ge=1, description="SLURM time limit of a training job's "
                               "first attempt (retries ask for 2x, then 3x)")
    jpeg_decode: Literal["auto", "device", "cpu"] = Field(
        "auto", description="where ImageNet's JPEGs are decoded: auto (on the GPU with CUDA, "
        "else by the CPU loader workers), device, cpu")


# What a dataset's root must hold (README, "Datasets").
DATA_LAYOUT = {
    "cifar10": "cifar-10-batches-py/ (the python version of CIFAR-10)",
    "cifar100": "cifar-100-python/ (the python version of CIFAR-100)",
    "imagenet": "train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (ILSVRC-2012 in ImageFolder "
                "layout, the validation images sorted into class folders)",
}


class Dataset(Section):
    """One dataset of the grid and its membership split."""

    source: Literal["digits", "cifar10", "cifar100", "imagenet"] = Field(
        description="digits (bundled with scikit-learn), cifar10, cifar100 or imagenet")
    root: str | None = Field(None, description="folder of the dataset files (not read for "
                             "digits)")
    download: bool = Field(False, description="CIFAR only: let torchvision download into root")
    members: int | None = Field(None, ge=1, description="training-set size (null: half of "
                                "digits / all of the train split)")
    nonmembers: int | None = Field(None, ge=1, description="held-out set size (null: the rest "
                                   "of digits / all of the test split)")
    scored_members: int | None = Field(None, ge=1, description="members whose confidences "
                                       "are extracted (null: all)")
    split_seed: Seed = Field(0, description="seed of the membership split")
    attack_sample_sizes: list[SampleSize] | None = Field(
        None, description="this dataset's attack sample sizes (null: attack.sample_sizes)")

    def sizes(self) -> tuple[int, int, int]:
        """(members, scored members, non-members) the membership split will have, from the
        config and the standard sizes of the source (the split job checks the real files)."""
        max_mem, max_non = max_split_sizes(self.source)
        if self.source == "digits":  # one pool shared by both roles
            n_mem = self.members or max_mem // 2
            n_non = self.nonmembers or max_mem - n_mem
        else:
            n_mem = self.members or max_mem
            n_non = self.nonmembers or max_non
        return n_mem, self.scored_members or n_mem, n_non

    def split_params(self) -> dict:
        """The split's sizes in one canonical form: a size equal to what ``null`` resolves
        to is ``None``, so writing out the value a ``null`` stands for reruns nothing."""
        n_mem, n_scored, n_non = self.sizes()
        default_mem = Dataset(source=self.source).sizes()[0]
        default_non = Dataset(source=self.source, members=self.members).sizes()[2]
        return {"members": None if n_mem == default_mem else n_mem,
                "nonmembers": None if n_non == default_non else n_non,
                "scored_members": None if n_scored == n_mem else n_scored,
                "split_seed": self.split_seed}

    def check_dataset(self, name: str) -> None:
        key = f"datasets.{name}"
        n_mem, n_scored, n_non = self.sizes()
        max_mem, max_non = max_split_sizes(self.source)
        if self.download:
            _require(self.source in ("cifar10", "cifar100"), f"config key '{key}.download': "
                     f"only CIFAR can be downloaded, not {self.source!r}; set it to false and "
                     f"put the files under '{key}.root'")
            _require(self.root not in (None, ""), f"config key '{key}.download' is true but "
                     f"'{key}.root' is empty: set '{key}.root' to the folder to download into")
        if self.source == "digits":
            classes = source_info(self.source).num_classes
            for k in ("members", "nonmembers"):
                n = getattr(self, k)
                _require(n is None or n >= classes, f"config key '{key}.{k}': {n} is fewer "
                         f"than the {classes} classes of digits (the split is stratified, one "
                         f"sample of each class at least); raise it to {classes} or more")
            _require(n_mem + n_non <= max_mem, f"config keys '{key}.members' + "
                     f"'{key}.nonmembers' = {n_mem + n_non} exceed the {max_mem} digits "
                     "images")
        else:
            _require(n_mem <= max_mem, f"config key '{key}.members': {n_mem} exceeds the "
                     f"{max_mem} training images of {self.source}")
            _require(n_non <= max_non, f"config key '{key}.nonmembers': {n_non} exceeds the "
                     f"{max_non} held-out images of {self.source}")
        _require(n_scored <= n_mem, f"config key '{key}.scored_members': {n_scored} exceeds "
                 f"the {n_mem} members")
        if self.attack_sample_sizes is not None:
            _no_duplicates(f"{key}.attack_sample_sizes", self.attack_sample_sizes)


class Pruning(BaseModel):
    """How tickets are found: the methods (names in the pruning registry) and, under
    ``pruning.<method>``, each method's settings (checked by the method)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    prune_fc: bool = Field(True, description="prune the final classifier too (as OpenLTH "
                           "does for ResNets)")
    rewind_epoch: int | None = Field(0, ge=0, description="0: rewind to the initial weights "
                                     "w0 (Algorithm 1); k: to the state at epoch k")
    rewind_step: int | None = Field(None, ge=0, description="or rewind to the state after "
                                    "this many optimizer steps; set exactly one of the two")
    methods: list[str] = Field(["oneshot"], min_length=1, description="ticket methods and "
                               "controls to train at every sparsity > 0")

    def settings(self, method: str) -> dict:
        """``pruning.<method>`` (empty when not given)."""
        return dict((self.model_extra or {}).get(method) or {})

    def check(self, cfg: "Config") -> None:
        from .pruning import METHODS, get_method

        _no_duplicates("pruning.methods", self.methods)
        for name in self.methods:
            try:
                get_method(name, self.settings(name), key=f"pruning.{name}")
            except ValueError as err:
                raise ConfigError(str(err)) from None
            base = METHODS[name].base_mask
            _require(base is None or base in self.methods, f"config key 'pruning.methods': "
                     f"{name!r} builds on the {base!r} mask; add {base!r} to the list")
        known = list(type(self).model_fields)
        for key, value in (self.model_extra or {}).items():
            if key not in METHODS:
                m = difflib.get_close_matches(key, known + sorted(METHODS), n=1)
                hint = f" (did you mean {m[0]!r}?)" if m else ""
                raise ConfigError(f"config key 'pruning.{key}': unknown key{hint}; known keys: "
                                  f"{known} or the settings of a pruning method "
                                  f"{sorted(METHODS)}")
            _require(isinstance(value, dict), f"config key 'pruning.{key}': the settings of a "
                     "pruning method are a mapping")
            try:
                get_method(key, value, key=f"pruning.{key}")
            except ValueError as err:
                raise ConfigError(str(err)) from None
        epoch, step = self.rewind_epoch, self.rewind_step
        _require((epoch is None) != (step is None), "config keys 'pruning.rewind_epoch' and "
                 f"'pruning.rewind_step': set exactly one of them (got {epoch!r} and "
                 f"{step!r}); null the other")
        for ds, arch, rec in cfg.recipes():
            if epoch is not None:
                _require(epoch < rec.epochs, f"config key 'pruning.rewind_epoch': {epoch} is "
                         f"not below training.{ds}.{arch}.epochs={rec.epochs} (a ticket "
                         "rewound to the last epoch is never retrained); lower it or raise "
                         "the epochs")
            else:
                n_mem = cfg.datasets[ds].sizes()[0]
                per = max(n_mem // rec.batch_size, 1)
                total = rec.epochs * per
                _require(step < total, f"config key 'pruning.rewind_step': {step} is not "
                         f"within the {total} optimizer steps of training.{ds}.{arch} "
                         f"({rec.epochs} epochs x {per} steps of {rec.batch_size} of the "
                         f"{n_mem} members); lower it or raise the epochs")


class Confidences(Section):
    """How models are scored."""

    batch_size: int = Field(512, ge=1, description="inference batch size")
    augmentations: Literal[1, 2] = Field(1, description="1: score the image; 2: also its "
                                         "horizontal flip, for LiRA's scaled logit")
    logits_dtype: Literal["float32", "float16", "bfloat16"] = Field(
        "float32", description="how confidence tables store the logits: float32, or half "
        "the size as float16 / bfloat16 (scores are derived in float64 either way)")



class Attack(BaseModel):
    """The attacks, their samples and intervals; ``attack.<name>`` holds an attack's settings
    (checked by the attack: scikit-learn's own validation for the classifier attacks)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    sample_sizes: list[SampleSize] = Field(min_length=1, description="attack sample sizes n "
                                           "(n/2 members + n/2 non-members)")
    test_fraction: float = Field(0.5, gt=0, lt=1, allow_inf_nan=False,
                                 description="share of each sample held out to evaluate")
    features: Literal["softmax", "sorted", "softmax_label", "log_softmax"] = Field(
        "softmax", description="features of the classifier attacks (the paper: softmax)")
    seed: Seed = Field(0, description="seed of the attack samples, models and bootstrap")
    n_bootstrap: int = Field(1000, ge=200, description="bootstrap resamples behind every "
                             "attack interval")
    models: list[str] = Field(["mlp"], description="classifier attacks to run")
    baselines: list[str] = Field(list(DEFAULT_BASELINES), description="threshold attacks to run")

    @property
    def names(self) -> list[str]:
        """Every attack a fit-attack job runs: the models, then the baselines."""
        return list(self.models) + list(self.baselines)

    def settings(self, name: str) -> dict:
        """``attack.<name>`` (empty when not given)."""
        return dict((self.model_extra or {}).get(name) or {})

    def check(self, cfg: "Config") -> None:
        from .attacks import ATTACKS, check_attack_config

        _no_duplicates("attack.sample_sizes", self.sample_sizes)
        names = self.names
        dup = sorted({n for n in names if names.count(n) > 1})
        _require(not dup, f"config keys attack.models/attack.baselines list {dup} more than "
                 "once")
        for key, kind in (("models", "classifier"), ("baselines", "threshold")):
            for n in getattr(self, key):
                _require(n in ATTACKS and ATTACKS[n].kind == kind,
                         f"config key 'attack.{key}': {n!r} is not a {kind} attack; choose "
                         f"from {sorted(k for k, v in ATTACKS.items() if v.kind == kind)}")
        problems = check_attack_config(names, {n: self.settings(n) for n in names},
                                       cfg._cache_dir)
        _require(not problems, "; ".join(problems))
        for key, size in ([("attack.sample_sizes", n) for n in self.sample_sizes]
                          + [(f"datasets.{d}.attack_sample_sizes", n)
                             for d, ds in cfg.datasets.items()
                             for n in ds.attack_sample_sizes or []]):
            half = size // 2
            n_test = int(round(half * self.test_fraction))
            _require(0 < n_test < half, f"config key {key!r}: {size} is too small to split "
                     "into attack-train and attack-test halves at attack.test_fraction="
                     f"{self.test_fraction} (each needs a member and a non-member at least); "
                     "raise it")


class References(Section):
    """Reference models for the attacks that need them (LiRA, RMIA, shadow models)."""

    count: int = Field(0, ge=0, description="K reference models per (dataset, architecture); "
                       "0: off, else even and at least 2")
    seed: Seed = Field(1000, description="reference k trains with seed + k; the inclusion is "
                       "drawn from seed")
    datasets: list[str] | None = Field(None, description="datasets with references (null: "
                                       "every dataset)")
    architectures: list[Arch] = Field([], description="architectures with references")
    sparsities: list[Sparsity] = Field([], description="sparsities with references")
    methods: list[str] = Field(["oneshot"], description="ticket methods whose tickets get "
                               "reference tickets")
    attacks: list[str] = Field([], description="reference-model attacks to run")

    def check(self, cfg: "Config") -> None:
        from .attacks import ATTACKS, check_attack_config

        count = self.count
        _require(count == 0 or count >= 2, f"config key 'references.count': {count!r} must "
                 "be 0 (no reference attacks) or at least 2 (16+ for per-sample variances)")
        _require(count % 2 == 0, f"config key 'references.count': {count} is odd; every pool "
                 "sample is IN for exactly half of the references, so the count must be even "
                 f"(use {count - 1} or {count + 1})")
        if count == 0:
            return
        for d in self.datasets or []:
            _require(d in cfg.datasets, f"config key 'references.datasets': {d!r} is not "
                     "one of the configured datasets")
        _in_architectures("references.architectures", self.architectures, cfg)
        _in_sparsities("references.sparsities", self.sparsities, cfg)
        for m in self.methods:
            _require(m in cfg.pruning.methods, f"config key 'references.methods': {m!r} is "
                     f"not one of pruning.methods {cfg.pruning.methods}")
        names = list(self.attacks)
        _require(len(set(names)) == len(names), "config key 'references.attacks' lists an "
                 "attack twice")
        for n in names:
            _require(n in ATTACKS and ATTACKS[n].needs_references,
                     f"config key 'references.attacks': {n!r} is not an attack that uses "
                     "reference models; choose from "
                     f"{sorted(k for k, v in ATTACKS.items() if v.needs_references)}")
        _require(not set(names) & set(cfg.attack.names), "config keys "
                 "'references.attacks' and 'attack.models'/'attack.baselines' overlap")
        problems = check_attack_config(names, {n: cfg.attack.settings(n) for n in names})
        _require(not problems, "; ".join(problems))
        from .attacks.rmia import DEFAULTS as RMIA

        if "rmia" in names and {**RMIA, **cfg.attack.settings("rmia")}["a"] == "auto":
            _require(count >= 4, f"config key 'attack.rmia.a': auto tunes a on one of the "
                     f"references with the others as its references, which needs 4 or more "
                     f"(references.count is {count}); set attack.rmia.a to a number (0.3 is "
                     "the paper's CIFAR value) or raise references.count")


class Transfer(Section):
    """Figure 4: every ordered pair of these models, diagonal included (first replicate)."""

    dataset: str = Field(description="the dataset of the transferred models")
    attack: str = Field("mlp", description="the transferred attack (one of attack.models)")
    method: str = Field("oneshot", description="the pruning method of the tickets")
    sample_size: SampleSize = Field(description="the attack sample size")
    architectures: list[Arch] = Field(min_length=1, description="architectures")
    sparsities: list[Sparsity] = Field(min_length=1, description="sparsities (0: dense)")

    def check(self, cfg: "Config") -> None:
        _no_duplicates("transfer.architectures", self.architectures)
        _no_duplicates("transfer.sparsities", self.sparsities, float)
        _require(self.dataset in cfg.datasets, f"config key 'transfer.dataset': "
                 f"{self.dataset!r} is not one of the configured datasets")
        _in_architectures("transfer.architectures", self.architectures, cfg)
        _in_sparsities("transfer.sparsities", self.sparsities, cfg)
        _require(self.sample_size in cfg.sample_sizes(self.dataset), f"config key "
                 f"'transfer.sample_size': {self.sample_size} is not in 'attack.sample_sizes'")
        _require(self.attack in cfg.attack.models, f"config key 'transfer.attack': "
                 f"{self.attack!r} is not one of attack.models")
        _require(self.method in cfg.pruning.methods, f"config key 'transfer.method': "
                 f"{self.method!r} is not one of pruning.methods {cfg.pruning.methods}")


MarginValue = Annotated[float, Field(gt=0, lt=0.5, allow_inf_nan=False)]
MARGIN_METRICS = ("auc", "balanced_accuracy", "tpr_at_fpr_0.1", "tpr_at_fpr_0.01",
                  "tpr_at_fpr_0.001")


class MetricMargins(Section):
    """Equivalence margins, one per verdict metric (README.md, "Verdicts": each is the
    change in attack success that moves the privacy loss an auditor can certify from the
    attack, epsilon >= log(TPR/FPR), by at most 0.1 near chance)."""

    auc: MarginValue = Field(0.03, description="attack AUC")
    balanced_accuracy: MarginValue = Field(0.02, description="balanced attack accuracy")
    tpr_at_fpr_0_1: MarginValue = Field(0.01, alias="tpr_at_fpr_0.1",
                                         description="TPR at 10% FPR")
    tpr_at_fpr_0_01: MarginValue = Field(0.001, alias="tpr_at_fpr_0.01",
                                          description="TPR at 1% FPR")
    tpr_at_fpr_0_001: MarginValue = Field(0.0001, alias="tpr_at_fpr_0.001",
                                           description="TPR at 0.1% FPR")

    def as_dict(self) -> dict:
        return {m: float(getattr(self, m.replace(".", "_"))) for m in MARGIN_METRICS}


class Margins(MetricMargins):
    """report.equivalence_margin: the margins, and per-dataset overrides (by_dataset:
    dataset -> the same keys)."""

    by_dataset: dict[str, MetricMargins] = Field(default_factory=dict, description=(
        "per-dataset margins (dataset -> metric -> margin); unset metrics keep the above"))

    def as_dict(self) -> dict:
        out = super().as_dict()
        out["by_dataset"] = {d: {k: v for k, v in m.as_dict().items()
                                 if k.replace(".", "_") in m.model_fields_set
                                 or k in m.model_fields_set}
                             for d, m in self.by_dataset.items()}
        return out


class Primary(Section):
    """The one comparison per (dataset, architecture, method, sparsity) the verdicts are
    confirmatory for (Holm-adjusted among themselves); every other is exploratory."""

    attack: str = Field("auto", description="the attack; auto: the first of lira_online, "
                        "rmia, lira_offline, shadow_mlp, loss run on both models")
    metric: Literal["auc", "balanced_accuracy", "tpr_at_fpr_0.1", "tpr_at_fpr_0.01",
                    "tpr_at_fpr_0.001"] = Field("auc", description="the metric")
    sample_size: int | None = Field(None, ge=2, description="the attack sample size (null: "
                                    "each dataset's largest)")

    def as_dict(self) -> dict:
        return {"attack": self.attack, "metric": self.metric,
                "sample_size": self.sample_size}


class Report(Section):
    """What the report shows."""

    table1_arch: Arch = Field(description="the architecture of Table 1 (the paper: ResNet18)")
    table1_sparsity: float = Field(gt=0, lt=1, allow_inf_nan=False,
                                   description="the lottery ticket of Table 1")
    table1_method: str = Field("oneshot", description="its pruning method (Table 1, Figures "
                               "3, 5, 8, 9)")
    figure2_sample_size: int = Field(ge=2, description="Figures 2, 5, 6, 7 at this sample size")
    figure3_sparsity: Sparsity = Field(description="Figure 3 at this sparsity")
    attack: str = Field("mlp", description="the attack of Table 1 and Figures 2-5, 7")
    slice_attacks: list[str] | None = Field(None, description="attacks sliced per class and "
                                            "correctness (null: report.attack and loss)")
    verdict_attacks: list[str] | None = Field(None, description="attacks of the exploratory "
                                              "pruned-vs-dense verdicts (null: report.attack, "
                                              "loss and references.attacks)")
    primary: Primary = Field(default_factory=Primary)
    equivalence_margin: Margins = Field(
        default_factory=Margins,
        description="per metric, the largest difference between two models that counts as "
        "the same: 'equivalent' when the 90% interval of the difference lies within "
        "+-margin (two one-sided tests)")

    @property
    def slices(self) -> list[str]:
        return list(self.slice_attacks) if self.slice_attacks is not None \
            else [self.attack, "loss"]

    def verdicts(self, reference_attacks: list[str]) -> list[str]:
        """report.attack, then verdict_attacks (default: loss and the reference attacks),
        each once."""
        more = self.verdict_attacks if self.verdict_attacks is not None else \
            ["loss"] + list(reference_attacks)
        return list(dict.fromkeys([self.attack] + list(more)))

    def check(self, cfg: "Config") -> None:
        _in_architectures("report.table1_arch", [self.table1_arch], cfg)
        for k in ("table1_sparsity", "figure3_sparsity"):
            _in_sparsities(f"report.{k}", [getattr(self, k)], cfg)
        _require(any(self.figure2_sample_size in cfg.sample_sizes(d) for d in cfg.datasets),
                 f"config key 'report.figure2_sample_size': {self.figure2_sample_size} is not "
                 "an attack sample size of any dataset")
        _require(self.table1_method in cfg.pruning.methods, f"config key "
                 f"'report.table1_method': {self.table1_method!r} is not one of "
                 f"pruning.methods {cfg.pruning.methods}")
        names = cfg.attack.names
        refs = list(cfg.references.attacks) if cfg.references.count else []
        _require(self.attack in names, f"config key 'report.attack': {self.attack!r} is not "
                 "one of attack.models/attack.baselines")
        for n in self.slice_attacks or []:
            _require(n in names, f"config key 'report.slice_attacks': {n!r} is not one of "
                     "attack.models/attack.baselines")
        for n in self.verdict_attacks or []:
            _require(n in names + refs, f"config key 'report.verdict_attacks': {n!r} is not "
                     "one of attack.models/attack.baselines/references.attacks "
                     f"{names + refs}")
        p = self.primary
        _require(p.attack == "auto" or p.attack in names + refs, f"config key "
                 f"'report.primary.attack': {p.attack!r} is not auto or one of "
                 f"attack.models/attack.baselines/references.attacks {names + refs}")
        if p.sample_size is not None:
            _require(all(p.sample_size in cfg.sample_sizes(d) for d in cfg.datasets),
                     f"config key 'report.primary.sample_size': {p.sample_size} is not an "
                     "attack sample size of every dataset (null: each dataset's largest)")
        for d in self.equivalence_margin.by_dataset:
            _require(d in cfg.datasets, f"config key 'report.equivalence_margin.by_dataset':"
                     f" {d!r} is not one of the configured datasets")


class Config(Section):
    """The whole config (``config/config.yaml``; README.md, "Configuration")."""

    device: str = Field("auto", description="cpu | cuda | auto (cuda when available) | cuda:N")
    replicates: list[Seed] = Field(min_length=1, description="training seeds, one run of "
                                   "dense networks and tickets each")
    threads: Threads = Field(default_factory=Threads)
    runtime: Runtime = Field(default_factory=Runtime)
    datasets: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")], Dataset] = Field(
        min_length=1, description="the datasets, by the name results are filed under")
    architectures: list[Arch] = Field(min_length=1, description="resnet18 and/or resnet50")
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

    def recipe(self, dataset: str, arch: str) -> Recipe:
        return self.training[dataset][arch]

    def recipes(self):
        """(dataset, arch, recipe) of every configured dataset and architecture."""
        for ds in self.datasets:
            for arch in self.architectures:
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
            for a in self.architectures:
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
            known = same_class_pairs_of(name, ds, self._cache_dir)
            if known is not None:
                pairs, where = known
                for n in self.sample_sizes(name):
                    _require(n // 2 <= pairs, f"config key '{size_key}': {n} needs {n // 2} "
                             f"member/non-member pairs of the same class (the attack folds "
                             f"are class-stratified), but the membership split of dataset "
                             f"{name!r} has {pairs} ({where}); lower it to at most "
                             f"{2 * pairs} or raise 'datasets.{name}.members'/'nonmembers'")
        for section in (self.attack, self.pruning, self.references, self.transfer,
                        self.report):
            section.check(self)

    def warnings(self) -> list[str]:
        """Every DAG-time warning: missing dataset roots, references smaller than their
        target."""
        from .references import reference_size

        out = self.root_warnings()
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
            if ds.source == "digits":
                continue
            key = f"datasets.{name}.root"
            if ds.root in (None, ""):
                out.append(f"config key {key!r} is empty: dataset {name!r} ({ds.source}) needs "
                           "its files; the membership_split job will fail until it is set")
            elif not Path(ds.root).expanduser().exists() and not ds.download:
                what = DATA_LAYOUT.get(ds.source, f"the {ds.source} files")
                fetch = (f", or set 'datasets.{name}.download: true' to let torchvision "
                         "fetch it" if ds.source in ("cifar10", "cifar100") else "")
                out.append(f"config key {key!r}: {ds.root} does not exist; put {what} "
                           f"there{fetch} before running the jobs that read it "
                           "(README, Datasets)")
        return out


# --------------------------------------------------------------------------- data limits
def same_class_pairs_of(name: str, ds: Dataset, cache_dir=None) -> tuple[int, str] | None:
    """(same-class member/non-member pairs, where the number comes from) of dataset
    ``name``'s membership split, when it can be known while the DAG is built: for digits
    from its labels (the split drawn as the job will draw it, remembered in ``cache_dir``),
    for other sources from the membership table once it exists with the configured sizes;
    ``None`` otherwise (the data-check job checks it before any training)."""
    import hashlib
    import json
    from pathlib import Path

    from .attack_samples import same_class_pairs
    from .layout import membership

    if ds.source == "digits":
        p = ds.split_params()
        key = hashlib.sha256(json.dumps(["digits", p], sort_keys=True).encode()).hexdigest()
        cache = Path(cache_dir) / "split-pairs.json" if cache_dir is not None else None
        try:
            known = json.loads(cache.read_text()) if cache else {}
        except (OSError, ValueError):
            known = {}
        if key not in known:
            from .data import digits_arrays
            from .membership import make_membership_split

            table = make_membership_split({"all": digits_arrays()[1]}, "digits",
                                          members=p["members"], nonmembers=p["nonmembers"],
                                          scored_members=p["scored_members"],
                                          seed=p["split_seed"])
            known[key] = same_class_pairs(table)
            if cache is not None:
                try:
                    from .io import atomic_write_bytes

                    atomic_write_bytes(json.dumps(known).encode(), cache)
                except OSError:
                    pass
        return int(known[key]), "from the labels of digits"
    path = Path(membership(name))
    if not path.exists():
        return None
    try:
        import pandas as pd

        table = pd.read_parquet(path, columns=["label", "member", "scored"])
    except Exception:  # noqa: BLE001 - unreadable: the jobs name it
        return None
    n_mem, n_scored, n_non = ds.sizes()
    if (int(table["member"].sum()), int((table["member"] & table["scored"]).sum()),
            int((~table["member"]).sum())) != (n_mem, n_scored, n_non):
        return None  # another split's table: it will be rebuilt
    return same_class_pairs(table), f"from {path}"


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
    cfg._cache_dir = cache_dir
    cfg.check()
    return cfg


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
                from .attacks import ATTACKS

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
                        "(python -m lottery_mia.config); see README.md, \"Configuration\"")
    return s


if __name__ == "__main__":  # python -m lottery_mia.config > workflow/schemas/config.schema.json
    import json

    print(json.dumps(schema(), indent=1, sort_keys=True))

__all__ = ["Config", "ConfigError", "load_config", "canonical", "how_to_run", "schema",
           "MAX_SEED"]
