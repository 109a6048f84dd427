"""The report's part of the plan: the score-file groups of the tables, the models of each
figure, the figure jobs' inputs and params, and the report's settings (mixed into
:class:`lottery_mia.plan.Plan`)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from .. import layout as L
from ..config import canonical
from ..defences import defence_label
from ..layout import DENSE, ModelKey


@dataclass(frozen=True)
class ScoreGroup:
    """The replicate score files of one model at one sample size (in replicate order)."""

    dataset: str
    arch: str
    method: str
    sparsity: float
    sample_size: int
    paths: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"dataset": self.dataset, "arch": self.arch, "method": self.method,
                "sparsity": self.sparsity, "sample_size": self.sample_size,
                "paths": list(self.paths)}


class ReportPlan:
    """The report's methods of :class:`lottery_mia.plan.Plan` (it provides ``cfg``,
    ``grids``, ``runs``, ``methods_at``, ``models`` and ``reference_attacks``)."""

    # ------------------------------------------------------------------ report
    def figure2_size(self, dataset: str) -> int:
        """Figure 2's sample size for a dataset, or its largest if it lacks that one."""
        g = self.grids[dataset]
        n = self.cfg.report.figure2_sample_size
        return n if n in g.sample_sizes else max(g.sample_sizes)

    def table1_models(self) -> list[tuple[str, float]]:
        """(method, sparsity) of Table 1's two models: the dense network and the ticket."""
        r = self.cfg.report
        return [(DENSE, 0.0), (r.table1_method, float(r.table1_sparsity))]

    def score_groups(self, sizes_of, models=None) -> list[ScoreGroup]:
        """Replicate score files per model and sample size of Table 1's architecture:
        Table 1's two models unless ``models`` lists (method, sparsity) pairs;
        ``sizes_of(dataset)``: the sample sizes."""
        arch = self.cfg.report.table1_arch
        out = []
        for ds in self.grids:
            for n in sizes_of(ds):
                for method, s in models or self.table1_models():
                    paths = tuple(ModelKey(ds, arch, r, method, s).attack_file(
                        n, "scores.parquet") for r in self.runs)
                    out.append(ScoreGroup(ds, arch, method, float(s), int(n), paths))
        return out

    def table1_groups(self) -> list[ScoreGroup]:
        return self.score_groups(lambda d: self.grids[d].sample_sizes)

    def slice_groups(self) -> list[ScoreGroup]:
        return self.score_groups(lambda d: [self.figure2_size(d)])

    def verdict_groups(self) -> list[ScoreGroup]:
        """Every model (the dense network and every method at every sparsity) of every
        architecture at every sample size: the ticket-vs-dense verdicts, the primary
        comparisons among them."""
        out = []
        for ds, g in self.grids.items():
            for arch in g.architectures:
                for n in g.sample_sizes:
                    for s in g.sparsities:
                        for method in self.methods_at(s):
                            paths = tuple(ModelKey(ds, arch, r, method, s).attack_file(
                                n, "scores.parquet") for r in self.runs)
                            out.append(ScoreGroup(ds, arch, method, float(s), int(n), paths))
        return out

    def method_groups(self) -> list[ScoreGroup]:
        """Every method at every sparsity (Table 1's arch, Figure 2's sample size): the
        ticket-vs-control verdicts."""
        pairs = [(m, float(s)) for s in self.cfg.sparsities for m in self.methods_at(s)]
        return self.score_groups(lambda d: [self.figure2_size(d)], models=pairs)

    def roc_models(self) -> list[dict]:
        """Figure 5: the first replicate's dense network and Table 1's method at every
        architecture and sparsity, at Figure 2's sample size."""
        n = self.cfg.report.figure2_sample_size
        return [{"dataset": m.dataset, "arch": m.arch, "method": m.method,
                 "sparsity": m.sparsity, "sample_size": n,
                 "path": m.attack_file(n, "scores.parquet")}
                for m in self.models(run=self.runs[0])
                if n in self.grids[m.dataset].sample_sizes
                and m.method in (DENSE, self.cfg.report.table1_method)]

    def table1_roc_models(self) -> list[dict]:
        """Figure 8: Table 1's two models (first replicate) at Figure 2's sample size."""
        arch = self.cfg.report.table1_arch
        out = []
        for ds in self.grids:
            n = self.figure2_size(ds)
            for method, s in self.table1_models():
                m = ModelKey(ds, arch, self.runs[0], method, s)
                out.append({"dataset": ds, "arch": arch, "method": method, "sparsity": s,
                            "sample_size": n, "path": m.attack_file(n, "scores.parquet")})
        return out

    def figure_of(self, stem: str):
        """The registered figure whose file is ``<stem>.png``."""
        from ..figures import FIGURES

        for spec in FIGURES.values():
            if spec.stem == stem:
                return spec
        raise ValueError(f"no registered figure writes {stem}.png")

    def figure_models(self, spec) -> list[dict]:
        """The models whose attack scores a figure reads (``spec.scores``)."""
        if spec.scores is None:
            return []
        if spec.scores == "roc":
            return self.roc_models()
        if spec.scores == "table1":
            return self.table1_roc_models()
        raise ValueError(f"figure {spec.name}: unknown scores {spec.scores!r} (roc, table1)")

    def figure_inputs(self, stem: str) -> dict:
        """What the figure writing ``<stem>.png`` reads: its summary tables by name, and
        ``scores``, the score files of its models."""
        spec = self.figure_of(stem)
        sources = {**L.SUMMARY_TABLES, "verdicts": L.REPORT_TABLES["verdicts"]}
        out = {name: sources[name] for name in spec.tables}
        out["scores"] = [m["path"] for m in self.figure_models(spec)]
        return out

    def figure_params(self, stem: str) -> dict:
        """A figure job's params: the figure, its models (in score-file order) and the
        report settings it takes."""
        spec = self.figure_of(stem)
        values = self.report_values()
        return canonical({"name": spec.name,
                          "models": [{k: v for k, v in m.items() if k != "path"}
                                     for m in self.figure_models(spec)],
                          "params": {k: values[k] for k in spec.params}})

    def figure_about(self, stem: str) -> SimpleNamespace:
        """A figure's title and caption, for Snakemake's report (its caption file reads
        them). Not a builtin type, so Snakemake does not compare it: rewording a caption
        redraws nothing."""
        spec = self.figure_of(stem)
        return SimpleNamespace(title=spec.title, caption=spec.caption)

    def figure_files(self) -> dict:
        """Every registered figure's file, by figure name, in figure order."""
        from ..figures import figure_specs

        return {f.name: L.report_file(f.file) for f in figure_specs()}

    def report_values(self) -> dict:
        """The report's settings, by the names figures and tables ask for."""
        r = self.cfg.report
        return {"attack": r.attack, "arch": r.table1_arch, "method": r.table1_method,
                "margins": r.equivalence_margin.as_dict(), "primary": r.primary.as_dict(),
                "table1_sparsity": float(r.table1_sparsity),
                "figure2_sample_size": r.figure2_sample_size,
                "figure3_sparsity": float(r.figure3_sparsity),
                "low_fpr_attacks": list(dict.fromkeys([r.attack, "loss"]
                                                      + self.reference_attacks)),
                "defences": {ds: defence_label(self.cfg.recipe(ds, r.table1_arch).defence)
                             for ds in self.cfg.datasets
                             if r.table1_arch in self.cfg.training.get(ds, {})},
                "defence_bases": self.defence_bases()}

    def defence_bases(self) -> dict:
        """Each dataset entry whose recipes carry a defence -> the entry without one on the
        same data and membership split (source, root, sizes and split seed equal), where
        there is one:
        the network the defence's protection is measured against."""
        arch = self.cfg.report.table1_arch
        plain_entries = [ds for ds in self.cfg.datasets
                         if arch in self.cfg.training.get(ds, {})
                         and not self.cfg.recipe(ds, arch).defence]
        def split_of(name):  # what decides the data and the membership split
            return self.cfg.datasets[name].model_dump(
                exclude={"architectures", "attack_sample_sizes", "download"})

        out = {}
        for ds in self.cfg.datasets:
            if arch not in self.cfg.training.get(ds, {}) or \
                    not self.cfg.recipe(ds, arch).defence:
                continue
            same = [b for b in plain_entries if split_of(b) == split_of(ds)]
            if same:
                out[ds] = same[0]
        return out


