"""The config's sections, one class each, with the rules between their keys."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..datasets import DATASETS, dataset_source, max_split_sizes, source_info
from ..vocabulary import FEATURES
from .base import (DEFAULT_BASELINES, Arch, ConfigError, SampleSize, Section, Seed, Source,
                   Sparsity, _in_architectures, _in_sparsities, _no_duplicates, _require)

if TYPE_CHECKING:  # annotations only
    from . import Config


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


class Dataset(Section):
    """One dataset of the grid and its membership split."""

    source: Source = Field(description="a dataset source registered in lottery_mia.datasets: "
                           "digits (bundled with scikit-learn), cifar10, cifar100, svhn, "
                           "tinyimagenet, imagenet")
    root: str | None = Field(None, description="folder of the dataset files (not read for "
                             "digits)")
    download: bool = Field(False, description="CIFAR and SVHN only: let torchvision download "
                           "into root")
    members: int | None = Field(None, ge=1, description="training-set size (null: half of "
                                "digits / all of the train split)")
    nonmembers: int | None = Field(None, ge=1, description="held-out set size (null: the rest "
                                   "of digits / all of the test split)")
    scored_members: int | None = Field(None, ge=1, description="members whose confidences "
                                       "are extracted (null: all)")
    split_seed: Seed = Field(0, description="seed of the membership split")
    attack_sample_sizes: list[SampleSize] | None = Field(
        None, description="this dataset's attack sample sizes (null: attack.sample_sizes)")
    architectures: list[Arch] | None = Field(
        None, min_length=1, description="this dataset's architectures, a part of "
        "architectures (null: all of them); its recipes are needed for these only")

    def sizes(self) -> tuple[int, int, int]:
        """(members, scored members, non-members) the membership split will have, from the
        config and the standard sizes of the source (the split job checks the real files)."""
        max_mem, max_non = max_split_sizes(self.source)
        if dataset_source(self.source).one_pool:  # one pool shared by both roles
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
            _require(dataset_source(self.source).downloadable, f"config key "
                     f"'{key}.download': {self.source!r} cannot be downloaded (only "
                     f"{[n for n, d in DATASETS.items() if d.downloadable]}); set it to false "
                     f"and put the files under '{key}.root'")
            _require(self.root not in (None, ""), f"config key '{key}.download' is true but "
                     f"'{key}.root' is empty: set '{key}.root' to the folder to download into")
        if dataset_source(self.source).one_pool:
            classes = source_info(self.source).num_classes
            for k in ("members", "nonmembers"):
                n = getattr(self, k)
                _require(n is None or n >= classes, f"config key '{key}.{k}': {n} is fewer "
                         f"than the {classes} classes of {self.source} (the split is "
                         "stratified, one sample of each class at least); raise it to "
                         f"{classes} or more")
            _require(n_mem + n_non <= max_mem, f"config keys '{key}.members' + "
                     f"'{key}.nonmembers' = {n_mem + n_non} exceed the {max_mem} "
                     f"{self.source} images")
        else:
            _require(n_mem <= max_mem, f"config key '{key}.members': {n_mem} exceeds the "
                     f"{max_mem} training images of {self.source}")
            _require(n_non <= max_non, f"config key '{key}.nonmembers': {n_non} exceeds the "
                     f"{max_non} held-out images of {self.source}")
        _require(n_scored <= n_mem, f"config key '{key}.scored_members': {n_scored} exceeds "
                 f"the {n_mem} members")
        if self.attack_sample_sizes is not None:
            _no_duplicates(f"{key}.attack_sample_sizes", self.attack_sample_sizes)
        if self.architectures is not None:
            _no_duplicates(f"{key}.architectures", self.architectures)


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
        from ..pruning import METHODS, get_method

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
        from ..recipe import rewind_step_of, steps_per_epoch

        for ds, arch, rec in cfg.recipes():
            try:
                rewind_step_of(self.rewind_epoch, self.rewind_step,
                               steps_per_epoch(cfg.datasets[ds].sizes()[0], rec.batch_size),
                               rec.epochs, f"training.{ds}.{arch}")
            except ValueError as err:
                raise ConfigError(str(err)) from None


class Sensitivity(Section):
    """SAMIA's sensitivity features (Yuan & Zhang 2022), scored only on the models an attack
    that reads them runs on (``samia`` in references.attacks) and on their references."""

    draws: int = Field(10, ge=1, description="noisy forward passes per image (the paper: 10)")
    epsilon: float = Field(1e-3, gt=0, allow_inf_nan=False, description="scale of the "
                           "Gaussian input noise (the paper: 1e-3)")
    seed: Seed = Field(0, description="seed of the noise (the same for every model)")


class Confidences(Section):
    """How models are scored."""

    batch_size: int = Field(512, ge=1, description="inference batch size")
    augmentations: Literal[1, 2] = Field(1, description="1: score the image; 2: also its "
                                         "horizontal flip, for LiRA's scaled logit")
    logits_dtype: Literal["float32", "float16", "bfloat16"] = Field(
        "float32", description="how confidence tables store the logits: float32, or half "
        "the size as float16 / bfloat16 (scores are derived in float64 either way)")
    sensitivity: Sensitivity = Field(default_factory=Sensitivity, description="SAMIA's "
                                     "per-class sensitivity to input noise, where samia runs")


class Attack(BaseModel):
    """The attacks, their samples and intervals; ``attack.<name>`` holds an attack's settings
    (checked by the attack: scikit-learn's own validation for the classifier attacks)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    sample_sizes: list[SampleSize] = Field(min_length=1, description="attack sample sizes n "
                                           "(n/2 members + n/2 non-members)")
    test_fraction: float = Field(0.5, gt=0, lt=1, allow_inf_nan=False,
                                 description="share of each sample held out to evaluate")
    features: Literal[FEATURES] = Field(
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
        from ..attacks import ATTACKS, check_attack_config

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
        from ..attacks import ATTACKS, check_attack_config

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
        for n in names:  # each attack's own constraints on its settings and references
            why = ATTACKS[n].cannot_run(cfg.attack.settings(n), count)
            _require(why is None, f"config key 'attack.{n}' with references.count {count}: "
                     f"{why}")


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
        for a in self.architectures:
            _require(a in cfg.architectures_of(self.dataset), f"config key "
                     f"'transfer.architectures': {a!r} is not one of "
                     f"'datasets.{self.dataset}.architectures'")
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
    """Equivalence margins, one per verdict metric (docs/statistics.md, "Verdicts": each is the
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
