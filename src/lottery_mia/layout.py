"""Where every result lives: the one layout of ``results/`` and ``logs/``.

A trained network and a scored model are named by a key, and each key converts to and from
its folder and its Snakemake wildcards; nothing else builds a result path by formatting
strings, and nothing parses one with a regular expression.

- :class:`StepKey` a trained network (one training job): ``(dataset, arch, run, method,
  point)``, where ``point`` is ``sparsity-<s>`` or, for an iterative method, ``round-<k>``;
  the dense network is ``dense/sparsity-0`` and also holds w0 and the rewind state.
- :class:`ModelKey` a scored and attacked model: ``(dataset, arch, run, method, sparsity)``,
  always ``sparsity-<s>`` (an IMP round serving sparsity s is scored under ``sparsity-<s>``).

``run`` is ``seed-<r>`` for a target model trained with replicate seed r, or ``ref-<k>``
for reference model k. Folders::

    results/<dataset>/membership.parquet                      the membership split
    results/<dataset>/attack_samples/n<N>.parquet             attack samples
    results/<dataset>/references/inclusion.parquet            reference inclusion
    results/<dataset>/references/ref-<k>/membership.parquet   reference k's split
    results/<dataset>/<arch>/<run>/<method>/<point>/          a trained network
    results/<dataset>/<arch>/<run>/<method>/sparsity-<s>/     a scored model:
        confidences.parquet, attack-n<N>/{metrics.json,scores.parquet}
    results/<dataset>/transfer/<run>/n<N>/<arch>_<method>_sparsity-<s>.csv
    results/summary/*.csv, results/report/*, results/report.html
    results/benchmarks/<the job's folder>/<rule>.tsv, logs/<the job's folder>/<rule>.log

Pure standard library: the Snakefile imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from .vocabulary import DENSE, model_name

RESULTS = "results"
LOGS = "logs"
SUMMARY = f"{RESULTS}/summary"
REPORT_DIR = f"{RESULTS}/report"
REPORT = f"{RESULTS}/report.html"
BENCHMARKS = f"{RESULTS}/benchmarks"

# Files of a trained network's folder (dense/sparsity-0 also holds w0 and the rewind state)
MODEL_FILE, METRICS_FILE, MASK_FILE, MASK_REPORT = "model.pt", "metrics.json", "mask.pt", \
    "mask.json"
INIT_FILE, REWIND_FILE = "init.pt", "rewind.pt"
# Files of a scored model's folder
CONFIDENCES = "confidences.parquet"


def fmt_sparsity(s: float) -> str:
    """How a sparsity appears in folders and wildcards: 0 -> "0", 0.8 -> "0.8"."""
    s = float(s)
    if not 0.0 <= s < 1.0:
        raise ValueError(f"sparsity {s} is outside [0, 1)")
    return f"{s:.6g}"


def sparsity_folder(s: float) -> str:
    """The folder of a sparsity: ``sparsity-0.8``."""
    return f"sparsity-{fmt_sparsity(s)}"


# Snakemake wildcard constraints of every path below (the rules declare them).
WILDCARD_CONSTRAINTS = {
    "sparsity": r"0|0\.[0-9]+",
    "run": r"seed-[0-9]+|ref-[0-9]+",
    "point": r"sparsity-0\.[0-9]+|round-[0-9]+",
    "n": r"[0-9]+",
}


def run_name(replicate) -> str:
    """``seed-<r>`` for a replicate seed, or ``ref-<k>`` given as such."""
    text = str(replicate)
    return text if text.startswith(("ref-", "seed-")) else f"seed-{int(replicate)}"


def split_run(run: str) -> tuple[str, int]:
    """("seed", r) or ("ref", k) of a run name."""
    kind, _, num = run.partition("-")
    if kind not in ("seed", "ref") or not num.isdigit():
        raise ValueError(f"{run!r} is not a run folder (seed-<r> or ref-<k>)")
    return kind, int(num)


# --------------------------------------------------------------------------- keys
@dataclass(frozen=True, order=True)
class ModelKey:
    """A scored and attacked model."""

    dataset: str
    arch: str
    run: str
    method: str
    sparsity: float

    PATTERN = f"{RESULTS}/{{dataset}}/{{arch}}/{{run}}/{{method}}/sparsity-{{sparsity}}"

    @classmethod
    def pattern(cls, name: str | None = None) -> str:
        """The wildcard pattern of a model folder, or of file ``name`` in it."""
        return cls.PATTERN if name is None else f"{cls.PATTERN}/{name}"

    @classmethod
    def attack_pattern(cls, n, name: str) -> str:
        """The pattern of ``attack-n<N>/<name>`` of a model."""
        return f"{cls.PATTERN}/attack-n{int(n)}/{name}"

    @property
    def folder(self) -> str:
        return (f"{RESULTS}/{self.dataset}/{self.arch}/{self.run}/{self.method}/"
                f"{sparsity_folder(self.sparsity)}")

    def file(self, name: str) -> str:
        return f"{self.folder}/{name}"

    @property
    def confidences(self) -> str:
        return self.file(CONFIDENCES)

    def attack_file(self, n: int, name: str) -> str:
        """``attack-n<N>/<name>`` of the model (``metrics.json`` or ``scores.parquet``)."""
        return self.file(f"attack-n{int(n)}/{name}")

    @property
    def wildcards(self) -> dict:
        return {"dataset": self.dataset, "arch": self.arch, "run": self.run,
                "method": self.method, "sparsity": fmt_sparsity(self.sparsity)}

    @classmethod
    def from_wildcards(cls, w) -> "ModelKey":
        return cls(w.dataset, w.arch, w.run, w.method, float(w.sparsity))

    @property
    def is_dense(self) -> bool:
        return self.method == DENSE

    @property
    def is_reference(self) -> bool:
        return self.run.startswith("ref-")

    def with_run(self, run: str) -> "ModelKey":
        return replace(self, run=run)

    @property
    def dense(self) -> "ModelKey":
        """The dense model of the same run."""
        return replace(self, method=DENSE, sparsity=0.0)

    @property
    def name(self) -> str:
        """'resnet18 dense', 'resnet18 imp s=0.8' (for labels)."""
        return model_name(self.arch, self.method, self.sparsity)


@dataclass(frozen=True, order=True)
class StepKey:
    """A trained network: the dense run, a pruning step at a sparsity, or an IMP round."""

    dataset: str
    arch: str
    run: str
    method: str
    sparsity: float | None = None  # sparsity-<s> folders
    round: int | None = None  # round-<k> folders (iterative methods)

    PATTERN = f"{RESULTS}/{{dataset}}/{{arch}}/{{run}}/{{method}}/{{point}}"
    DENSE_PATTERN = f"{RESULTS}/{{dataset}}/{{arch}}/{{run}}/{DENSE}/sparsity-0"

    @classmethod
    def pattern(cls, name: str | None = None, dense: bool = False) -> str:
        """The wildcard pattern of a step folder (``dense``: the dense run's), or of file
        ``name`` in it."""
        base = cls.DENSE_PATTERN if dense else cls.PATTERN
        return base if name is None else f"{base}/{name}"

    def __post_init__(self):
        if (self.sparsity is None) == (self.round is None):
            raise ValueError(f"a step has a sparsity or a round, not both/neither: {self}")

    @property
    def point(self) -> str:
        if self.round is not None:
            return f"round-{self.round}"
        return sparsity_folder(self.sparsity)

    @property
    def folder(self) -> str:
        return f"{RESULTS}/{self.dataset}/{self.arch}/{self.run}/{self.method}/{self.point}"

    def file(self, name: str) -> str:
        return f"{self.folder}/{name}"

    @property
    def wildcards(self) -> dict:
        return {"dataset": self.dataset, "arch": self.arch, "run": self.run,
                "method": self.method, "point": self.point}

    @classmethod
    def from_wildcards(cls, w) -> "StepKey":
        point = getattr(w, "point", None) or "sparsity-0"
        method = getattr(w, "method", None) or DENSE
        return cls.at(w.dataset, w.arch, w.run, method, point)

    @classmethod
    def at(cls, dataset, arch, run, method, point: str) -> "StepKey":
        kind, _, value = point.partition("-")
        if kind == "round":
            return cls(dataset, arch, run, method, round=int(value))
        if kind == "sparsity":
            return cls(dataset, arch, run, method, sparsity=float(value))
        raise ValueError(f"{point!r} is not a step folder (sparsity-<s> or round-<k>)")

    @classmethod
    def dense_of(cls, dataset, arch, run) -> "StepKey":
        return cls(dataset, arch, run, DENSE, sparsity=0.0)

    @property
    def dense(self) -> "StepKey":
        return StepKey.dense_of(self.dataset, self.arch, self.run)

    @property
    def is_dense(self) -> bool:
        return self.method == DENSE


# --------------------------------------------------------------------------- dataset files
def membership(dataset: str, run: str | None = None) -> str:
    """The membership table a run trains and is scored on (a reference's own split)."""
    if run is not None and run.startswith("ref-"):
        return f"{RESULTS}/{dataset}/references/{run}/membership.parquet"
    return f"{RESULTS}/{dataset}/membership.parquet"


def data_checks(dataset: str) -> str:
    """The record that a dataset's data-only jobs passed (training waits for it)."""
    return f"{RESULTS}/{dataset}/data_checks.json"


def inclusion(dataset: str) -> str:
    return f"{RESULTS}/{dataset}/references/inclusion.parquet"


def input_features(dataset: str) -> str:
    """Every scored sample's thumbnail (the quantile attack's model-free input features)."""
    return f"{RESULTS}/{dataset}/input_features.parquet"


def attack_sample(dataset: str, n) -> str:
    return f"{RESULTS}/{dataset}/attack_samples/n{n}.parquet"


def transfer_row(source: ModelKey, n) -> str:
    """The transfer table of one source model (one row per target)."""
    return (f"{RESULTS}/{source.dataset}/transfer/{source.run}/n{n}/"
            f"{source.arch}_{source.method}_sparsity-{fmt_sparsity(source.sparsity)}.csv")


TRANSFER_PATTERN = (f"{RESULTS}/{{dataset}}/transfer/{{run}}/n{{n}}/"
                    f"{{arch}}_{{method}}_sparsity-{{sparsity}}.csv")


def summary(name: str) -> str:
    """``results/summary/<name>`` (training.csv, attacks.csv, ...)."""
    return f"{SUMMARY}/{name}"


# The summary tables by the names figures and the report ask for them.
SUMMARY_TABLES = {
    "training": summary("training.csv"),
    "attacks": summary("attacks.csv"),
    "transfer": summary("transfer.csv"),
    "slices": summary("slices.csv"),
    "benchmarks": summary("benchmarks.csv"),
    "gap_correlation": summary("gap_correlation.json"),
}

# The report's tables (results/report/).
REPORT_TABLES = {
    "table1_csv": f"{REPORT_DIR}/table1.csv",
    "table1_md": f"{REPORT_DIR}/table1.md",
    "verdicts": f"{REPORT_DIR}/verdicts.csv",
    "attack_models": f"{REPORT_DIR}/attack_models.csv",
    "method_verdicts": f"{REPORT_DIR}/method_verdicts.csv",
    "pair_verdicts": f"{REPORT_DIR}/pair_verdicts.csv",
    "defence_verdicts": f"{REPORT_DIR}/defence_verdicts.csv",
}


def report_file(name: str) -> str:
    """``results/report/<name>`` (table1.csv, figure files, ...)."""
    return f"{REPORT_DIR}/{name}"


# --------------------------------------------------------------------------- logs, records
def log_of(folder: str, rule: str) -> str:
    """The log of a job working in ``folder`` (a path under results/, or a bare name)."""
    rel = folder[len(RESULTS) + 1:] if folder.startswith(f"{RESULTS}/") else folder
    return f"{LOGS}/{rel}/{rule}.log"


def benchmark_of(folder: str, rule: str) -> str:
    """Snakemake's benchmark record of a job working in ``folder``."""
    rel = folder[len(RESULTS) + 1:] if folder.startswith(f"{RESULTS}/") else folder
    return f"{BENCHMARKS}/{rel}/{rule}.tsv"


def log_for(path: str) -> str:
    """The log of a job whose one output is the file ``path`` (its name, ``.log``)."""
    return log_of(path.rsplit(".", 1)[0], "").removesuffix("/.log") + ".log"


def benchmark_for(path: str) -> str:
    """The benchmark record of a job whose one output is the file ``path``."""
    return benchmark_of(path.rsplit(".", 1)[0], "").removesuffix("/.tsv") + ".tsv"


def describe_record(rel: str) -> dict:
    """Rule and wildcards of a benchmark record from its path under ``results/benchmarks``
    (the inverse of :func:`benchmark_of`): rule, dataset, arch, run, method, sparsity,
    imp_round, n (None where the path has none)."""
    parts = PurePosixPath(rel).parts
    row = {"rule": PurePosixPath(rel).stem, "dataset": None, "arch": None, "run": None,
           "method": None, "sparsity": None, "imp_round": None, "n": None}
    if len(parts) < 2:
        return row
    row["dataset"] = parts[0]
    if len(parts) == 5 and parts[1] == "transfer":  # <ds>/transfer/<run>/n<N>/<source>.tsv
        row["rule"] = "transfer_attack"
        row["run"], row["n"] = parts[2], int(parts[3][1:])
        head, _, sparsity = PurePosixPath(rel).stem.rpartition("_sparsity-")
        arch, _, method = head.partition("_")
        row.update(arch=arch, method=method or None, sparsity=float(sparsity))
        return row
    if len(parts) == 6:  # <ds>/<arch>/<run>/<method>/<point>/<rule>.tsv
        _, arch, run, method, point, _ = parts
        step = StepKey.at(parts[0], arch, run, method, point)
        row.update(arch=arch, run=run, method=method, sparsity=step.sparsity,
                   imp_round=step.round)
    return row
