"""The plan of the grid: from the typed config alone, every network to train, every model to
score and attack, what each depends on, and what each job is handed.

The rules ask the plan (``rules/common.smk`` builds one :class:`Plan`) and turn its keys into
paths with :mod:`lottery_mia.layout`; nothing here knows Snakemake, so the grid can be
checked without it (``tests/test_plan.py``, the paper grid's counts included).

Vocabulary:

- a **target** model is trained with a replicate seed (run ``seed-<r>``); a **reference**
  model (run ``ref-<k>``) trains on its half of the population pool for the attacks that
  need references;
- a **model** (:class:`~lottery_mia.layout.ModelKey`) is scored and attacked at a configured
  sparsity; the **step** (:class:`~lottery_mia.layout.StepKey`) behind it is the training
  job of its network: the dense run, a pruning step at that sparsity, or the IMP round that
  serves it (the first round at or above it);
- a pruning step scores a network (the trained dense network, w0, or the previous IMP
  round's ticket), starts from a mask (all ones, the previous round's, or the one-shot mask
  of its control) and retrains from the method's start state (rewind state, w0, or fresh
  weights).

No torch here: the Snakefile imports this module.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


from .. import layout as L
from ..config import Config, ConfigError, canonical
from ..datasets import dataset_source
from .limits import same_class_pairs_of
from .report import ReportPlan, ScoreGroup  # noqa: F401  (ScoreGroup: re-exported)
from ..layout import DENSE, ModelKey, StepKey, fmt_sparsity, run_name, split_run
from ..pruning import METHODS, PruningMethod, get_method
from ..recipe import without_how
from ..vocabulary import network_identity


@dataclass(frozen=True)
class Grid:
    """The experiment grid of one dataset."""

    dataset: str
    architectures: tuple[str, ...]
    sparsities: tuple[float, ...]
    sample_sizes: tuple[int, ...]


class Plan(ReportPlan):
    """Everything the workflow runs, from one :class:`~lottery_mia.config.Config`."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.grids = {ds: Grid(ds, cfg.architectures_of(ds),
                               tuple(float(s) for s in cfg.sparsities), cfg.sample_sizes(ds))
                      for ds in cfg.datasets}
        self.replicates = list(cfg.replicates)
        self.runs = [run_name(r) for r in self.replicates]
        self.method_names = list(cfg.pruning.methods)
        ref = cfg.references
        self.reference_runs = [f"ref-{k}" for k in range(ref.count)]
        self.reference_attacks = list(ref.attacks) if ref.count else []
        # datasets grouped by their list of attack sample sizes (one fit-attack rule each)
        groups: dict[tuple[int, ...], list[str]] = {}
        for ds, g in self.grids.items():
            groups.setdefault(g.sample_sizes, []).append(ds)
        self.size_groups = list(groups.items())
        self.check_data_limits()

    def check_data_limits(self) -> None:
        """Every attack sample size fits the same-class member/non-member pairs of its
        dataset's membership split, where they are known while the DAG is built (the folds
        are class-stratified); a :class:`ConfigError` naming the key otherwise."""
        for name, ds in self.cfg.datasets.items():
            known = same_class_pairs_of(name, ds, self.cfg._cache_dir)
            if known is None:
                continue
            pairs, where = known
            size_key = (f"datasets.{name}.attack_sample_sizes"
                        if ds.attack_sample_sizes is not None else "attack.sample_sizes")
            for n in self.cfg.sample_sizes(name):
                if n // 2 > pairs:
                    raise ConfigError(
                        f"config key '{size_key}': {n} needs {n // 2} member/non-member "
                        "pairs of the same class (the attack folds are class-stratified), but "
                        f"the membership split of dataset {name!r} has {pairs} ({where}); "
                        f"lower it to at most {2 * pairs} or raise "
                        f"'datasets.{name}.members'/'nonmembers'")
    # ------------------------------------------------------------------ methods
    @functools.lru_cache(maxsize=None)
    def method(self, name: str) -> PruningMethod:
        """The registered pruning method ``name`` with its settings (pruning.<name>)."""
        return get_method(name, self.cfg.pruning.settings(name), key=f"pruning.{name}")

    def methods_at(self, sparsity: float) -> list[str]:
        """The methods of a grid sparsity: the dense network at 0, every configured method
        above it."""
        return [DENSE] if float(sparsity) == 0 else list(self.method_names)

    def kind_of(self, method: str) -> str:
        return DENSE if method == DENSE else METHODS[method].kind

    def methods_described(self) -> list[dict]:
        """{name, kind, description} of the dense network and every configured method."""
        return [{"name": DENSE, "kind": DENSE, "description": "the dense network (sparsity 0)"}] \
            + [{"name": m, "kind": METHODS[m].kind, "description": METHODS[m].description}
               for m in self.method_names]

    # ------------------------------------------------------------------ runs
    def seed_of(self, run: str) -> int:
        """Training seed of a run: a target's replicate seed, or references.seed + k."""
        kind, num = split_run(run)
        return num if kind == "seed" else self.cfg.references.seed + num

    # ------------------------------------------------------------------ models
    def models(self, dataset: str | None = None, run: str | None = None) -> list[ModelKey]:
        """Every target model (dataset, arch, seed, method, sparsity), in grid order."""
        out = []
        for ds, g in self.grids.items():
            if dataset is not None and ds != dataset:
                continue
            for arch in g.architectures:
                for r in self.runs:
                    if run is not None and r != run:
                        continue
                    for s in g.sparsities:
                        out.extend(ModelKey(ds, arch, r, m, s) for m in self.methods_at(s))
        return out

    def in_reference_grid(self, model: ModelKey) -> bool:
        """Whether a target model gets the reference-model attacks."""
        ref = self.cfg.references
        return (ref.count > 0 and (model.is_dense or model.method in ref.methods)
                and model.dataset in (ref.datasets or list(self.cfg.datasets))
                and model.arch in ref.architectures
                and any(fmt_sparsity(s) == fmt_sparsity(model.sparsity)
                        for s in ref.sparsities))

    def references_of(self, model: ModelKey) -> list[ModelKey]:
        """The reference models of a target model (empty outside the reference grid)."""
        if not self.in_reference_grid(model):
            return []
        return [model.with_run(r) for r in self.reference_runs]

    def attacks_of(self, model: ModelKey) -> list[str]:
        """The attacks run on ``model``: attack.models and attack.baselines, the reference
        attacks in the reference grid; a pair attack (on a pruned network and its dense
        parent) only on a pruned one."""
        from ..attacks import ATTACKS

        names = self.cfg.attack.names + (self.reference_attacks
                                         if self.in_reference_grid(model) else [])
        return [n for n in names if not (model.is_dense and ATTACKS[n].needs_parent)]

    @staticmethod
    def parent_of(model: ModelKey) -> ModelKey:
        """The dense network a pruned ``model`` was pruned from (same data, arch, seed)."""
        return ModelKey(model.dataset, model.arch, model.run, DENSE, 0.0)

    # ------------------------------------------------------------------ steps
    def serving_step(self, model: ModelKey) -> StepKey:
        """The training job behind a model folder: its own step, or the IMP round serving
        its sparsity."""
        if model.is_dense:
            return StepKey.dense_of(model.dataset, model.arch, model.run)
        if METHODS[model.method].iterative:
            k = self.method(model.method).rounds_for(float(model.sparsity))
            return StepKey(model.dataset, model.arch, model.run, model.method, round=k)
        return StepKey(model.dataset, model.arch, model.run, model.method,
                       sparsity=float(model.sparsity))

    def step_sparsity(self, step: StepKey) -> float:
        """The sparsity a step aims at: the configured one, or an IMP round's nominal one."""
        if step.round is not None:
            return self.method(step.method).round_sparsity(step.round)
        return float(step.sparsity)

    def check_step(self, step: StepKey) -> None:
        """A step folder that does not fit its method (sparsity-<s> of an iterative method,
        round-<k> of another) is an error naming both."""
        if step.is_dense:
            return
        iterative = METHODS[step.method].iterative
        if step.round is not None and not iterative:
            raise ValueError(f"{step.method} is not iterative: it has no {step.point}")
        if step.round is None and iterative:
            raise ValueError(f"{step.method} is iterative: its networks live in round-<k> "
                             "folders")

    def steps(self) -> list[StepKey]:
        """Every network the workflow trains (targets and references), each once."""
        seen: dict[StepKey, None] = {}
        for model in self.models() + self.reference_models():
            step = self.serving_step(model)
            for s in self._chain(step):
                seen.setdefault(s, None)
        return list(seen)

    def _chain(self, step: StepKey) -> list[StepKey]:
        """A step and every step it needs (earlier IMP rounds, the mask it builds on)."""
        out = [step.dense]
        if step.is_dense:
            return out
        m = METHODS[step.method]
        if step.round is not None:
            out += [StepKey(step.dataset, step.arch, step.run, step.method, round=k)
                    for k in range(1, step.round + 1)]
            return out
        if m.base_mask:
            out += self._chain(StepKey(step.dataset, step.arch, step.run, m.base_mask,
                                       sparsity=step.sparsity))[1:]
        return out + [step]

    def reference_models(self) -> list[ModelKey]:
        """Every reference model some target's attacks read."""
        seen: dict[ModelKey, None] = {}
        for model in self.models():
            for ref in self.references_of(model):
                seen.setdefault(ref, None)
        return list(seen)

    # ------------------------------------------------------------------ job inputs
    def membership(self, run_of) -> str:
        """The membership table a run (a key with dataset and run) trains and is scored on."""
        return L.membership(run_of.dataset, run_of.run)

    def has_references(self, dataset: str) -> bool:
        ref = self.cfg.references
        return ref.count > 0 and dataset in (ref.datasets or list(self.cfg.datasets))

    def data_check_inputs(self, dataset: str) -> dict:
        """What the data-check job reads: the split, the attack samples and (with
        references) the inclusion table."""
        out = {"membership": L.membership(dataset),
               "samples": [L.attack_sample(dataset, n)
                           for n in self.grids[dataset].sample_sizes]}
        if self.has_references(dataset) and any(
                m.dataset == dataset for m in self.reference_models()):
            out["inclusion"] = L.inclusion(dataset)
        return out

    def mask_inputs(self, step: StepKey) -> dict:
        """What a pruning step reads: the network it scores, the mask it starts from, and
        (for data-driven methods) the membership table."""
        self.check_step(step)
        m = METHODS[step.method]
        dense = step.dense
        if step.round is not None and step.round > 1:  # a later round: the previous one
            prev = StepKey(step.dataset, step.arch, step.run, step.method,
                           round=step.round - 1)
            out = {"score_model": prev.file(L.MODEL_FILE), "base_mask": prev.file(L.MASK_FILE)}
        else:
            state = {"trained": L.MODEL_FILE, "init": L.INIT_FILE,
                     "rewind": L.REWIND_FILE}[m.score_state]
            out = {"score_model": dense.file(state)}
            if m.base_mask:
                base = StepKey(step.dataset, step.arch, step.run, m.base_mask,
                               sparsity=step.sparsity)
                out["base_mask"] = base.file(L.MASK_FILE)
        if m.needs_data:
            out["membership"] = self.membership(step)
        return out

    def ticket_inputs(self, step: StepKey) -> dict:
        """A pruned network's training inputs: its membership table, start state and mask."""
        self.check_step(step)
        state = L.REWIND_FILE if METHODS[step.method].start == "rewind" else L.INIT_FILE
        return {"membership": self.membership(step), "start": step.dense.file(state),
                "mask": step.file(L.MASK_FILE)}

    def scored_inputs(self, model: ModelKey) -> dict:
        """A scoring job's inputs: the membership table and the network behind the model."""
        step = self.serving_step(model)
        out = {"membership": self.membership(model), "model": step.file(L.MODEL_FILE),
               "metrics": step.file(L.METRICS_FILE)}
        if not model.is_dense:
            out["mask"] = step.file(L.MASK_FILE)
        return out

    def attack_inputs(self, model: ModelKey) -> dict:
        """A fit-attack job's inputs: the model's confidences, its dataset's attack samples
        and, in the reference grid, the references' confidences and the inclusion table."""
        out = {"confidences": model.confidences,
               "samples": [L.attack_sample(model.dataset, n)
                           for n in self.grids[model.dataset].sample_sizes]}
        refs = self.references_of(model)
        if refs:
            out["references"] = [r.confidences for r in refs]
            out["inclusion"] = L.inclusion(model.dataset)
        from ..attacks import ATTACKS

        if any(ATTACKS[n].needs_inputs for n in self.attacks_of(model)):
            out["input_features"] = L.input_features(model.dataset)
        pairs = [ATTACKS[n] for n in self.attacks_of(model) if ATTACKS[n].needs_parent]
        if pairs:  # the pair attacks: the dense parent, and the references' parents
            out["parent"] = self.parent_of(model).confidences
            if refs and any(a.needs_references for a in pairs):
                out["reference_parents"] = [self.parent_of(r).confidences for r in refs]
        return out

    # ------------------------------------------------------------------ job params
    def data_params(self, dataset: str) -> dict:
        """Which data a job reads: the dataset, its source and (for sources read from files)
        its root folder (digits ships with scikit-learn: its root is never read)."""
        ds = self.cfg.datasets[dataset]
        return {"dataset": dataset, "source": ds.source,
                "root": ds.root if dataset_source(ds.source).needs_root else None}

    def recipe_params(self, dataset: str, arch: str) -> dict:
        """The recipe of (dataset, arch): what shapes the trained network (its loader's
        workers and its GPUs are how, not what: they come with :meth:`how`)."""
        return without_how(self.cfg.recipe(dataset, arch).as_dict())

    def how(self, key) -> object:
        """How and where a job on ``key``'s dataset and arch runs (not compared by
        Snakemake: see :func:`lottery_mia.config.how_to_run`)."""
        return self.cfg.how_to_run(key.dataset, key.arch)

    def rewind(self) -> dict:
        return {"rewind_epoch": self.cfg.pruning.rewind_epoch,
                "rewind_step": self.cfg.pruning.rewind_step}

    def train_params(self, step: StepKey) -> dict:
        """What a training job reads from the config: data, recipe, seed, the rewind point
        and, for a pruned network, its method, start state and target sparsity."""
        out = {"data": self.data_params(step.dataset),
               "recipe": self.recipe_params(step.dataset, step.arch),
               "recipe_key": f"training.{step.dataset}.{step.arch}",
               "seed": self.seed_of(step.run), **self.rewind()}
        if not step.is_dense:
            self.check_step(step)
            out.update(method=step.method, start=METHODS[step.method].start,
                       sparsity=self.step_sparsity(step), imp_round=step.round)
        return canonical(out)

    def prune_params(self, step: StepKey) -> dict:
        """A pruning step: the method, its settings, the target, the seed (and, for methods
        that score minibatches, the data and recipe)."""
        self.check_step(step)
        data = METHODS[step.method].needs_data
        return canonical({
            "method": step.method, "settings": self.cfg.pruning.settings(step.method),
            "sparsity": step.sparsity, "imp_round": step.round,
            "seed": self.seed_of(step.run), "prune_fc": self.cfg.pruning.prune_fc,
            "data": self.data_params(step.dataset) if data else None,
            "recipe": self.recipe_params(step.dataset, step.arch) if data else None,
            "recipe_key": f"training.{step.dataset}.{step.arch}",
        })

    def network_identity(self, model: ModelKey) -> dict:
        """The network behind a model folder as its training job records it (the scoring
        job refuses any other checkpoint found there)."""
        step = self.serving_step(model)
        return network_identity(model.dataset, model.arch, self.seed_of(model.run),
                                model.method,
                                0.0 if model.is_dense else self.step_sparsity(step), step.round)

    def score_params(self, model: ModelKey) -> dict:
        """A scoring job: the data, the model's method and sparsity, its seed, the network
        it must find, and how it scores."""
        return canonical({
            "data": self.data_params(model.dataset), "method": model.method,
            "sparsity": float(model.sparsity), "replicate": self.seed_of(model.run),
            "expected": self.network_identity(model),
            "batch_size": self.cfg.confidences.batch_size,
            "augmentations": self.cfg.confidences.augmentations,
            # only when not the default, so the tables already scored keep their params
            **({"logits_dtype": self.cfg.confidences.logits_dtype}
               if self.cfg.confidences.logits_dtype != "float32" else {}),
            **({"sensitivity": self.cfg.confidences.sensitivity.model_dump()}
               if self.needs_sensitivity(model) else {}),
        })

    def needs_sensitivity(self, model: ModelKey) -> bool:
        """Whether ``model``'s table must hold SAMIA's sensitivity: an attack that reads it
        runs on the model, or on the targets it is a reference of (the same grid)."""
        from ..attacks import ATTACKS

        return self.in_reference_grid(model) and any(
            ATTACKS[n].needs_sensitivity for n in self.reference_attacks)

    def attack_params(self, model: ModelKey) -> dict:
        """A fit-attack job: the attacks it runs on this model, their settings, its seed,
        the model (and references) whose tables it must find."""
        names = self.attacks_of(model)
        a = self.cfg.attack
        return canonical({
            "attacks": names, "settings": {n: a.settings(n) for n in names},
            "replicate": self.seed_of(model.run),
            "expected": {"dataset": model.dataset, "arch": model.arch,
                         "method": model.method, "sparsity": float(model.sparsity),
                         "replicate": self.seed_of(model.run)},
            "reference_seeds": [self.seed_of(r.run) for r in self.references_of(model)],
            "sample_sizes": list(self.grids[model.dataset].sample_sizes),
            "features": a.features, "seed": a.seed, "n_bootstrap": a.n_bootstrap,
        })

    # ------------------------------------------------------------------ summaries
    def training_models(self) -> list[dict]:
        """Every target model with the metrics.json of the network behind it."""
        return [{"dataset": m.dataset, "arch": m.arch, "replicate": self.seed_of(m.run),
                 "method": m.method, "sparsity": float(m.sparsity),
                 "kind": self.kind_of(m.method),
                 "metrics": self.serving_step(m).file(L.METRICS_FILE)}
                for m in self.models()]

    def attack_results(self, name: str) -> list[str]:
        """``attack-n<N>/<name>`` of every target model and sample size."""
        return [m.attack_file(n, name) for m in self.models()
                for n in self.grids[m.dataset].sample_sizes]

    def attack_result_models(self) -> list[dict]:
        """Which model and sample size each of :meth:`attack_results` belongs to (in the
        same order): what the summary checks every result file against."""
        return [{"dataset": m.dataset, "arch": m.arch, "method": m.method,
                 "sparsity": float(m.sparsity), "replicate": self.seed_of(m.run),
                 "sample_size": int(n)}
                for m in self.models() for n in self.grids[m.dataset].sample_sizes]

    # ------------------------------------------------------------------ transfer
    @property
    def transfer_run(self) -> str:
        return self.runs[0]

    def transfer_models(self) -> list[ModelKey]:
        """Figure 4's models (first replicate): every transfer architecture x sparsity."""
        t = self.cfg.transfer
        return [ModelKey(t.dataset, a, self.transfer_run, DENSE if float(x) == 0 else t.method,
                         float(x)) for a in t.architectures for x in t.sparsities]

    def transfer_rows(self) -> list[str]:
        return [L.transfer_row(m, self.cfg.transfer.sample_size) for m in self.transfer_models()]

    def transfer_sources(self) -> list[dict]:
        """The source model of each of :meth:`transfer_rows` (in the same order)."""
        return [{"arch": m.arch, "method": m.method, "sparsity": float(m.sparsity)}
                for m in self.transfer_models()]

    def transfer_params(self) -> dict:
        a, t = self.cfg.attack, self.cfg.transfer
        return canonical({
            "targets": [{"arch": m.arch, "method": m.method, "sparsity": m.sparsity}
                        for m in self.transfer_models()],
            "attack": t.attack, "settings": a.settings(t.attack), "features": a.features,
            "seed": a.seed, "n_bootstrap": a.n_bootstrap})

    def transfer_targets(self, source: ModelKey) -> list[str]:
        """The confidence tables a transfer job evaluates the source's attack on."""
        return [ModelKey(source.dataset, m.arch, source.run, m.method, m.sparsity).confidences
                for m in self.transfer_models()]
