"""The figures with several ticket-finding methods: a line per method from the dense point
at the achieved sparsity (Fig. 1, 2), dense + one method (Fig. 3, 9), method labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lottery_mia.figures.attack_vs_sample_size import figure_attack_vs_sample_size
from lottery_mia.figures.attack_vs_sparsity import figure_attack_vs_sparsity
from lottery_mia.figures.gap import figure_gap
from lottery_mia.figures.leakage_at_gap import figure_leakage_at_gap
from lottery_mia.figures.low_fpr import figure_low_fpr_vs_sparsity
from lottery_mia.figures.roc import figure_roc
from lottery_mia.figures.test_accuracy import figure_test_accuracy
from lottery_mia.figures.transfer import figure_transfer

ARCHS = ("resnet18", "resnet50")
METHODS = {  # method -> {requested sparsity: achieved sparsity}
    "dense": {0.0: 0.0},
    "oneshot": {0.5: 0.5, 0.8: 0.8},
    "imp": {0.5: 0.52, 0.8: 0.832},
    "random_reinit": {0.5: 0.5, 0.8: 0.8},
}
SIZES = (100, 400)
ATTACKS = ("mlp", "loss")


def _training(archs=ARCHS) -> pd.DataFrame:
    rows = []
    for arch in archs:
        for method, sp in METHODS.items():
            for s, a in sp.items():
                for r in (0, 1):
                    acc = 0.95 - 0.1 * s - (0.05 if method == "random_reinit" else 0) + 0.01 * r
                    kind = {"dense": "dense", "random_reinit": "control"}.get(method, "ticket")
                    rows.append({"dataset": "digits", "arch": arch, "method": method,
                                 "method_kind": kind,
                                 "sparsity": s, "achieved_sparsity": a, "replicate": r,
                                 "test_acc": acc, "test_acc_ci_low": acc - 0.02,
                                 "test_acc_ci_high": acc + 0.02, "train_acc": 1.0,
                                 "generalization_gap": 1.0 - acc})
    return pd.DataFrame(rows)


def _attacks(archs=ARCHS) -> pd.DataFrame:
    rows = []
    for arch in archs:
        for method, sp in METHODS.items():
            for s, a in sp.items():
                for n in SIZES:
                    for attack in ATTACKS:
                        for rep in ("0", "1", "mean"):
                            v = 0.55 + 0.1 * s + (0.01 if rep == "1" else 0)
                            row = {"dataset": "digits", "arch": arch, "method": method,
                                   "sparsity": s, "achieved_sparsity": a, "replicate": rep,
                                   "sample_size": n, "attack": attack, "kind": "classifier",
                                   "n_eval_nonmembers": n // 4, "n_eval_members": n // 4,
                                   "verdict_auc": "above chance"}
                            for m in ("accuracy", "auc", "tpr_at_fpr_0.1"):
                                row[m] = v if m != "tpr_at_fpr_0.1" else v / 3
                                row[f"{m}_ci_low"] = row[m] - 0.02
                                row[f"{m}_ci_high"] = row[m] + 0.02
                            if n // 4 < 100:  # 10% of the non-members: fewer than 10
                                row["tpr_at_fpr_0.1"] = np.nan
                            for m in ("tpr_at_fpr_0.01", "tpr_at_fpr_0.001"):
                                row[m] = row[f"{m}_ci_low"] = row[f"{m}_ci_high"] = np.nan
                            rows.append(row)
    return pd.DataFrame(rows)


def _is_png(path) -> bool:
    return path.exists() and path.stat().st_size > 1000 and \
        path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _lines(ax) -> dict:
    """label -> x values of the errorbar lines of an Axes."""
    return {c.get_label(): np.asarray(c.lines[0].get_xdata(), dtype=float)
            for c in ax.containers}


def test_figure1_draws_a_line_per_method_from_the_dense_point(tmp_path):
    out = tmp_path / "fig1.png"
    fig = figure_test_accuracy(_training(), out)
    assert _is_png(out)
    assert len(fig.axes) == len(ARCHS)  # a panel per (dataset, arch)
    for ax in fig.axes:
        lines = _lines(ax)
        assert lines.pop("dense (mean of 2)") == pytest.approx([0.0])  # drawn once, on top
        assert {k.split(" ")[0] for k in lines} == {"oneshot", "imp", "random_reinit"}
        assert len(lines) == 3
        for label, xs in lines.items():
            assert xs[0] == 0.0 and len(xs) == 3  # the dense point, then both sparsities
        assert lines["imp (mean of 2)"] == pytest.approx([0.0, 52.0, 83.2])
        assert lines["oneshot (mean of 2)"] == pytest.approx([0.0, 50.0, 80.0])
        colors = {c.lines[0].get_color() for c in ax.containers}
        markers = {c.lines[0].get_marker() for c in ax.containers}
        assert len(colors) == 4 and len(markers) == 4
        assert {t.get_text() for t in ax.get_legend().get_texts()} >= set(lines)


def test_figure1_of_a_dense_only_run_draws_the_dense_point(tmp_path):
    tr = _training(("resnet18",))
    fig = figure_test_accuracy(tr[tr["method"] == "dense"], tmp_path / "f.png")
    assert list(_lines(fig.axes[0])) == ["dense (mean of 2)"]


def test_figure2_draws_a_line_per_arch_and_method(tmp_path):
    out = tmp_path / "fig2.png"
    fig = figure_attack_vs_sparsity(_attacks(), 400, out, "mlp")
    assert _is_png(out)
    assert len(fig.axes) == 2  # accuracy and auc of one dataset
    for ax in fig.axes:
        lines = _lines(ax)
        assert set(lines) == {f"{a} {m}" for a in ARCHS
                              for m in ("dense", "oneshot", "imp", "random_reinit")}
        assert lines["resnet18 dense"] == pytest.approx([0.0])
        assert lines["resnet50 imp"] == pytest.approx([0.0, 52.0, 83.2])
        styles = {c.get_label().split(" ")[0]: c.lines[0].get_linestyle()
                  for c in ax.containers if not c.get_label().endswith("dense")}
        assert styles["resnet18"] != styles["resnet50"]
        assert any(line.get_label() == "chance" for line in ax.get_lines())


def test_figure3_shows_dense_and_the_given_method_only(tmp_path):
    attacks = _attacks(("resnet18",))
    out = tmp_path / "fig3.png"
    fig = figure_attack_vs_sample_size(attacks, 0.8, out, "mlp", method="imp")
    assert _is_png(out)
    lines = _lines(fig.axes[0])
    assert set(lines) == {"dense", "imp"}
    assert list(lines["imp"]) == list(SIZES)
    with pytest.raises(ValueError, match="snip ticket"):
        figure_attack_vs_sample_size(attacks, 0.8, tmp_path / "x.png", "mlp", method="snip")
    fig = figure_attack_vs_sample_size(attacks, 0.0, tmp_path / "d.png", "mlp", method="imp")
    assert set(_lines(fig.axes[0])) == {"dense"}


def test_figure9_shows_dense_and_the_given_method_only(tmp_path):
    out = tmp_path / "fig9.png"
    fig = figure_low_fpr_vs_sparsity(_attacks(), "resnet18", 400, out, which=list(ATTACKS),
                                       method="imp")
    assert _is_png(out)
    lines = _lines(fig.axes[0])
    # at the lowest FPR every attack drawn can measure: 10% of 100 non-members
    assert set(lines) == {f"{a} (100 non-members)" for a in ATTACKS}
    assert fig.axes[0].get_ylabel() == "TPR at 10% FPR"
    for xs in lines.values():  # dense, imp at 0.5 and 0.8 (not oneshot nor the control)
        assert len(xs) == 3
        assert np.round(xs, -1).tolist() == [0.0, 50.0, 80.0]
        assert xs[2] > 82  # at imp's achieved sparsity (83.2%, +- a small offset)


def test_gap_roc_and_transfer_labels_carry_the_method(tmp_path):
    from lottery_mia.reporting.summaries import gap_correlation

    _, res = gap_correlation(_training(), _attacks(), 400, "mlp")
    figure_gap(_training(), _attacks(), 400, tmp_path / "gap.png", "mlp")
    # one point per model (archs x models), each the mean of its 2 seeds: seeds of one
    # model share w0's parent, data order and attack rows, so they are not independent
    assert res["models"] == 2 * 7 and res["seeds"] == 2
    rng = np.random.default_rng(0)
    member = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    curves = [{"dataset": "digits", "arch": "resnet18", "method": m, "sparsity": s,
               "sample_size": 100, "member": member, "score": rng.random(100)}
              for m, s in (("imp", 0.8), ("dense", 0.0), ("random_reinit", 0.8))]
    fig = figure_roc(curves, tmp_path / "roc.png", "mlp")
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels[:3] == ["resnet18 dense", "resnet18 imp s=0.8", "resnet18 random_reinit s=0.8"]
    transfer = pd.DataFrame([{"dataset": "digits", "source_arch": "resnet18",
                              "source_method": sm, "source_sparsity": ss,
                              "target_arch": "resnet18", "target_method": tm,
                              "target_sparsity": ts, "accuracy": 0.6, "accuracy_ci_low": 0.55,
                              "accuracy_ci_high": 0.65}
                             for sm, ss in (("dense", 0.0), ("imp", 0.8), ("oneshot", 0.8))
                             for tm, ts in (("dense", 0.0), ("imp", 0.8), ("oneshot", 0.8))])
    fig = figure_transfer(transfer, tmp_path / "transfer.png")
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks == ["resnet18 dense", "resnet18 imp s=0.8", "resnet18 oneshot s=0.8"]


def test_figure9_leaves_out_and_names_an_attack_that_cannot_measure_the_fpr(tmp_path):
    attacks = _attacks(("resnet18",))
    attacks.loc[attacks["attack"] == "loss", "tpr_at_fpr_0.1"] = np.nan
    fig = figure_low_fpr_vs_sparsity(attacks, "resnet18", 400, tmp_path / "f9.png",
                                     which=list(ATTACKS), method="imp")
    assert set(_lines(fig.axes[0])) == {"mlp (100 non-members)"}
    assert "not measurable at 10%: loss" in fig.axes[0].get_title()
    # nothing measurable at all: the panel says so instead of drawing an empty axis
    fig = figure_low_fpr_vs_sparsity(attacks, "resnet18", 100, tmp_path / "f9b.png",
                                     which=list(ATTACKS), method="imp")
    assert "n/a" in " ".join(t.get_text() for t in fig.axes[0].texts)


def test_figure4_colour_scale_is_fixed_and_centred_at_chance(tmp_path):
    from lottery_mia.figures.transfer import HALF_RANGE

    def transfer(value):
        return pd.DataFrame([{"dataset": "digits", "source_arch": "resnet18",
                              "source_method": sm, "source_sparsity": ss,
                              "target_arch": "resnet18", "target_method": tm,
                              "target_sparsity": ts, "accuracy": value + 0.01 * i,
                              "accuracy_ci_low": 0.45, "accuracy_ci_high": 0.56}
                             for i, (sm, ss, tm, ts) in enumerate(
                                 [("dense", 0.0, "dense", 0.0), ("dense", 0.0, "oneshot", 0.8),
                                  ("oneshot", 0.8, "dense", 0.0),
                                  ("oneshot", 0.8, "oneshot", 0.8)])])

    # noise around chance and a strong effect get the same scale: noise looks pale
    for value in (0.49, 0.7):
        fig = figure_transfer(transfer(value), tmp_path / f"t{value}.png")
        image = fig.axes[0].images[0]
        assert image.get_clim() == pytest.approx((0.5 - HALF_RANGE, 0.5 + HALF_RANGE))
    white = image.cmap(image.norm(0.5))
    assert all(c > 0.9 for c in white[:3])  # chance is the neutral colour


def test_figure8_has_a_row_per_kind_of_attack_with_at_most_six_distinct_lines(tmp_path):
    from lottery_mia.figures.roc_all_attacks import figure_roc_all_attacks

    rng = np.random.default_rng(0)
    member = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    kinds = {"mlp": "classifier", "svm": "classifier", "random_forest": "classifier",
             "logistic_regression": "classifier", "gradient_boosting": "classifier",
             "loss": "threshold", "confidence": "threshold", "entropy": "threshold",
             "modified_entropy": "threshold", "lira_online": "reference",
             "lira_offline": "reference", "rmia": "reference", "shadow_mlp": "reference"}
    curves = [{"label": label, "attack": a, "kind": k, "member": member,
               "score": rng.random(400) + 0.2 * member}
              for label in ("resnet18 dense", "resnet18 oneshot s=0.8")
              for a, k in kinds.items()]
    fig = figure_roc_all_attacks(curves, tmp_path / "f8.png")
    assert len(fig.axes) == 3 * 2
    for ax in fig.axes:
        lines = [ln for ln in ax.get_lines() if ln.get_label() != "chance"]
        assert 1 <= len(lines) <= 6
        looks = {(ln.get_color(), str(ln.get_linestyle())) for ln in lines}
        assert len(looks) == len(lines)  # no two lines drawn alike
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("classifier attacks") and titles[2].startswith("threshold")
    assert titles[4].startswith("reference-model attacks")


def test_legends_sit_outside_the_data(tmp_path):
    """Every legend of every figure lies right of its axes, never over the curves."""
    figs = [figure_test_accuracy(_training(), tmp_path / "1.png"),
            figure_attack_vs_sparsity(_attacks(), 400, tmp_path / "2.png", "mlp"),
            figure_attack_vs_sample_size(_attacks(("resnet18",)), 0.8, tmp_path / "3.png",
                                         "mlp", method="imp"),
            figure_low_fpr_vs_sparsity(_attacks(), "resnet18", 400, tmp_path / "9.png",
                                       which=list(ATTACKS), method="imp")]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    rng = np.random.default_rng(0)
    member = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    figs.append(figure_roc([{"dataset": "digits", "arch": "resnet18", "method": m,
                             "sparsity": sp, "sample_size": 100, "member": member,
                             "score": rng.random(100)} for m, sp in (("dense", 0.0),
                                                                     ("imp", 0.8))],
                           tmp_path / "5.png", "mlp"))
    seen = 0
    for fig in figs:
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        for ax in fig.axes:
            legend = ax.get_legend()
            if legend is None:
                continue
            seen += 1
            assert legend.get_window_extent(renderer).x0 >= \
                ax.get_window_extent(renderer).x1 - 1
    assert seen >= 5


def test_figure1_intervals_stay_inside_0_and_1(tmp_path):
    tr = _training(("resnet18",))
    tr.loc[tr["method"] == "oneshot", "test_acc"] = [0.99, 0.60, 0.98, 0.62]  # a wide t CI
    fig = figure_test_accuracy(tr, tmp_path / "f1.png")
    lo, hi = fig.axes[0].get_ylim()
    assert lo >= 0.0 - 0.06 and hi <= 1.0 + 0.06
    for c in fig.axes[0].containers:
        for seg in c.lines[2][0].get_segments():
            assert seg[:, 1].min() >= 0.0 and seg[:, 1].max() <= 1.0


def test_figure6_marks_slices_too_small_to_estimate(tmp_path):
    """A slice with fewer than 10 members or non-members has a point value but no interval:
    Figure 6 draws it outlined and marked '<10', one without members 'n/a', and the
    estimable ones as filled bars with their intervals."""
    from lottery_mia.figures.slices import figure_slices
    from lottery_mia.stats.resampling import slice_metrics

    rng = np.random.default_rng(0)
    rows = []
    for value, (n1, n0) in {"0": (40, 40), "1": (4, 40), "2": (0, 30)}.items():
        y = np.r_[np.ones(n1, bool), np.zeros(n0, bool)]
        s = rng.normal(size=n1 + n0) + y
        m = slice_metrics(y, s, 0.5, np.ones(len(y), bool), n_boot=200, seed=0)
        rows.append({"dataset": "digits", "arch": "resnet18", "method": "dense",
                     "sparsity": 0.0, "sample_size": 160, "attack": "mlp", "slice": "class",
                     "value": value, **m})
    slices = pd.DataFrame(rows)
    assert list(slices["estimable"]) == [True, False, False]
    fig = figure_slices(slices, tmp_path / "f6.png")
    auc = fig.axes[1]
    assert [t.get_text() for t in auc.texts] == ["<10", "n/a"]
    filled = [p for p in auc.patches if p.get_fill() and p.get_height() != 0]
    outlined = [p for p in auc.patches if not p.get_fill()]
    assert len(filled) == 1 and len(outlined) == 1
    assert (tmp_path / "f6.png").stat().st_size > 0


def test_figure3_marks_a_sample_size_where_the_estimator_changes(tmp_path):
    """An SVM exact up to n = 100 and approximated from n = 400: Figure 3 draws a dotted
    line between the two sizes and names both estimators; without a change, no line."""
    attacks = _attacks(("resnet18",))
    attacks["fit"] = np.where(attacks["sample_size"] == SIZES[0], "SVC",
                              "Nystroem(rbf, 1000 components)+LinearSVC")
    fig = figure_attack_vs_sample_size(attacks, 0.8, tmp_path / "f.png", "mlp", method="imp")
    def vertical(ax):  # dotted vertical lines (the chance line is horizontal)
        return [ln for ln in ax.get_lines() if ln.get_linestyle() == ":"
                and len(set(np.asarray(ln.get_xdata(), dtype=float))) == 1]

    ax = fig.axes[0]
    assert len(vertical(ax)) == 1
    assert vertical(ax)[0].get_xdata()[0] == pytest.approx(np.sqrt(SIZES[0] * SIZES[1]))
    assert any("SVC → Nystroem" in t.get_text() for t in ax.texts)
    attacks["fit"] = "SVC"
    fig = figure_attack_vs_sample_size(attacks, 0.8, tmp_path / "g.png", "mlp", method="imp")
    assert not vertical(fig.axes[0])


def test_figure10_draws_each_primary_comparison_raw_and_at_equal_gap(tmp_path):
    rows = []
    for i, (method, gap) in enumerate((("oneshot", 0.01), ("imp", float("nan")))):
        for primary in (True, False):
            rows.append({"dataset": "digits", "arch": "resnet18", "method": method,
                         "ticket_sparsity": 0.8, "attack": "lira_online", "metric": "auc",
                         "sample_size": 500, "primary": primary, "verdict": "inconclusive",
                         "n_seeds": 3, "margin": 0.03, "diff": -0.02 * (i + 1),
                         "diff_ci_low": -0.05, "diff_ci_high": 0.01, "diff_at_gap": gap,
                         "diff_at_gap_ci_low": gap - 0.02, "diff_at_gap_ci_high": gap + 0.02})
    verdicts = pd.DataFrame(rows)
    out = tmp_path / "f10.png"
    fig = figure_leakage_at_gap(verdicts, out)
    assert _is_png(out)
    ax = fig.axes[0]
    raw, at_gap = ax.containers[:2]
    assert list(raw.lines[0].get_xdata()) == [-0.02, -0.04]  # the two primary rows only
    assert list(at_gap.lines[0].get_xdata()) == [0.01]  # imp has no slope: left out
    assert [t.get_text().split("\n")[0] for t in ax.get_yticklabels()] == [
        "digits resnet18 oneshot s=0.8", "digits resnet18 imp s=0.8"]
    with pytest.raises(ValueError, match="report.primary"):
        figure_leakage_at_gap(verdicts.assign(primary=False), tmp_path / "x.png")


def test_attack_figures_share_one_range_holding_chance_and_every_interval(tmp_path):
    fig = figure_attack_vs_sparsity(_attacks(), 400, tmp_path / "f2.png", "mlp")
    ranges = {ax.get_ylim() for ax in fig.axes}
    assert len(ranges) == 1  # the accuracy and AUC panels share one range
    lo, hi = ranges.pop()
    assert lo <= 0.5 - 0.02 and hi - lo >= 0.3  # chance inside, not stretched
    a = _attacks()
    assert hi >= a["auc_ci_high"].max() and lo <= a["auc_ci_low"].min()
    fig3 = figure_attack_vs_sample_size(_attacks(("resnet18",)), 0.8, tmp_path / "f3.png",
                                        "mlp", method="imp")
    lo3, hi3 = fig3.axes[0].get_ylim()
    assert lo3 <= 0.5 <= hi3 and hi3 - lo3 >= 0.3


def test_a_method_has_one_style_in_every_figure():
    from lottery_mia.figures.style import method_style

    assert method_style("oneshot", ["dense", "oneshot"]) == \
        method_style("oneshot", ["dense", "imp", "random_reinit", "oneshot"]) == \
        method_style("oneshot")
    styles = {m: tuple(method_style(m).items()) for m in
              ("dense", "oneshot", "imp", "snip", "grasp", "random_mask", "random_reinit")}
    assert len(set(styles.values())) == len(styles)


def test_figure1_draws_each_seed_as_its_caption_says(tmp_path):
    """Figure 1's caption: every line the mean over seeds, 'each seed as a cross': one
    cross per (model, seed) of the panel, and the legend counts the seeds."""
    from lottery_mia.figures.registry import FIGURES

    training = _training()
    fig = figure_test_accuracy(training, tmp_path / "fig1.png")
    caption = FIGURES.get_entry("figure1").caption
    assert "each seed as a cross" in caption and "mean over the replicate seeds" in caption
    for ax, arch in zip(fig.axes, ARCHS):
        from matplotlib.collections import PathCollection

        crosses = sum(len(c.get_offsets()) for c in ax.collections
                      if isinstance(c, PathCollection))  # scatter, not error bars
        part = training[training["arch"] == arch]
        assert crosses == len(part)  # every seed of every model of the panel, once
        assert all("mean of 2" in k for k in _lines(ax))  # 2 seeds, as drawn


# --- Every figure's caption against what it draws --------------------------------------
# Each registered figure is drawn through the registry (the path the figure job takes) on
# data whose counts are known, and every countable claim of its caption (lines, points,
# panels, seeds, models, the rows evaluated, the smallest FPR) is checked against the
# artists drawn. A new figure without a check here fails test_every_figure_has_a_caption_check.

def _draw(name, tmp_path, *, tables=None, scores=None, params=None):
    from lottery_mia.figures.registry import FIGURES, FigureData

    spec = FIGURES.get_entry(name)
    out = tmp_path / spec.file
    fig = spec.draw(FigureData(tables=tables or {}, scores=scores or [],
                               params=params or {}), out)
    assert _is_png(out)
    return spec, fig


def _yerr_bounds(container) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of an errorbar container's vertical bars."""
    segs = container.lines[2][0].get_segments()
    return (np.array([s[:, 1].min() for s in segs]), np.array([s[:, 1].max() for s in segs]))


def _caption_figure1(tmp_path):
    training = _training()
    spec, fig = _draw("figure1", tmp_path, tables={"training": training})
    assert "a line per method" in spec.caption and "each seed as a cross" in spec.caption
    assert "mean over the replicate seeds" in spec.caption
    from matplotlib.collections import PathCollection

    assert len(fig.axes) == len(ARCHS)
    for ax, arch in zip(fig.axes, ARCHS):
        part = training[training["arch"] == arch]
        lines = {c.get_label().split(" ")[0]: c for c in ax.containers}
        assert set(lines) == set(part["method"])  # a line per method, once
        for method, c in lines.items():
            rows = part[(part["method"] == method) | (part["method"] == "dense")]
            means = rows.groupby("achieved_sparsity")["test_acc"].mean()
            xs, ys = c.lines[0].get_xdata(), c.lines[0].get_ydata()
            assert xs[0] == 0.0  # every line starts at the dense network
            assert np.allclose(xs, np.asarray(means.index) * 100)  # at achieved sparsity
            assert np.allclose(ys, means.to_numpy())  # the mean over the seeds
        crosses = sum(len(c.get_offsets()) for c in ax.collections
                      if isinstance(c, PathCollection))
        assert crosses == len(part)  # each seed as a cross


def _caption_figure2(tmp_path):
    attacks = _attacks()
    spec, fig = _draw("figure2", tmp_path, tables={"attacks": attacks},
                      params={"figure2_sample_size": 400, "attack": "mlp"})
    assert "Accuracy and AUC" in spec.caption and "a line per method (and architecture)" \
        in spec.caption and "mean over seeds" in spec.caption
    mean = attacks[(attacks["replicate"] == "mean") & (attacks["attack"] == "mlp")
                   & (attacks["sample_size"] == 400)]
    assert [ax.get_ylabel().split(" (")[0] for ax in fig.axes] == \
        ["attack accuracy", "attack auc"]
    for ax, metric in zip(fig.axes, ("accuracy", "auc")):
        assert len(ax.containers) == len(mean.groupby(["arch", "method"]))
        for c in ax.containers:
            arch, method = c.get_label().split(" ")
            rows = mean[(mean["arch"] == arch) & mean["method"].isin([method, "dense"])
                        & ((mean["method"] == method) | (mean["arch"] == arch))]
            rows = rows[(rows["method"] == method) | (rows["method"] == "dense")] \
                .sort_values("achieved_sparsity")
            assert np.allclose(c.lines[0].get_xdata(), rows["achieved_sparsity"] * 100)
            assert np.allclose(c.lines[0].get_ydata(), rows[metric])  # the seeds' mean row
            lo, hi = _yerr_bounds(c)  # and its bootstrap interval
            assert np.allclose(lo, rows[f"{metric}_ci_low"])
            assert np.allclose(hi, rows[f"{metric}_ci_high"])


def _caption_figure3(tmp_path):
    attacks = _attacks(("resnet18",))
    spec, fig = _draw("figure3", tmp_path, tables={"attacks": attacks},
                      params={"figure3_sparsity": 0.8, "attack": "mlp", "method": "imp"})
    assert "the dense network and Table 1's ticket method" in spec.caption
    assert "by the number of samples used" in spec.caption
    ax = fig.axes[0]
    lines = {c.get_label(): c for c in ax.containers}
    assert set(lines) == {"dense", "imp"}
    for c in lines.values():
        assert list(c.lines[0].get_xdata()) == list(SIZES)
    # no estimator change in these rows: no dotted vertical line (the caption's condition)
    assert not [ln for ln in ax.get_lines() if ln.get_linestyle() == ":"
                and len(set(np.asarray(ln.get_xdata(), dtype=float))) == 1]


def _caption_figure4(tmp_path):
    from lottery_mia.figures.transfer import HALF_RANGE

    models = (("dense", 0.0), ("imp", 0.8), ("oneshot", 0.8))
    rows, covers = [], 0
    for i, (sm, ss) in enumerate(models):
        for j, (tm, ts) in enumerate(models):
            acc = 0.5 + 0.05 * (i - j) + (0.2 if i == j else 0.0)
            lo, hi = acc - 0.06, acc + 0.06
            covers += lo <= 0.5 <= hi
            rows.append({"dataset": "digits", "source_arch": "resnet18", "source_method": sm,
                         "source_sparsity": ss, "target_arch": "resnet18",
                         "target_method": tm, "target_sparsity": ts, "accuracy": acc,
                         "accuracy_ci_low": lo, "accuracy_ci_high": hi})
    spec, fig = _draw("figure4", tmp_path, tables={"transfer": pd.DataFrame(rows)})
    assert "'~' marks cells whose 95% interval covers chance" in spec.caption
    assert f"{0.5 - HALF_RANGE:.1f}-{0.5 + HALF_RANGE:.1f}" in spec.caption
    ax = fig.axes[0]
    image = ax.images[0].get_array()
    assert image.shape == (3, 3)  # every source x every target, the diagonal the base case
    assert [t.get_text() for t in ax.get_xticklabels()] == \
        [t.get_text() for t in ax.get_yticklabels()]
    assert np.allclose(np.diag(image), 0.7)
    assert sum(t.get_text().startswith("~") for t in ax.texts) == covers > 0
    assert ax.images[0].get_clim() == pytest.approx((0.5 - HALF_RANGE, 0.5 + HALF_RANGE))


def _roc_scores(n1=60, n0=80, attacks=("mlp",), reference=()):
    rng = np.random.default_rng(1)
    member = np.r_[np.ones(n1, bool), np.zeros(n0, bool)]
    fold = np.where(np.arange(n1 + n0) % 2 == 0, "attack_test", "attack_train")
    out = []
    for method, sp in (("dense", 0.0), ("imp", 0.8)):
        row = {"dataset": "digits", "arch": "resnet18", "method": method, "sparsity": sp,
               "sample_size": 200, "member": member, "fold": fold}
        for a in attacks:
            row[f"score_{a}"] = rng.random(n1 + n0) + 0.3 * member
        for a in reference:  # nan where its references cannot judge the row
            s = rng.random(n1 + n0) + 0.3 * member
            s[::7] = np.nan
            row[f"score_{a}"] = s
        out.append(row)
    return out


def _caption_figure5(tmp_path):
    scores = _roc_scores()
    spec, fig = _draw("figure5", tmp_path, scores=scores, params={"attack": "mlp"})
    assert "on log-log axes" in spec.caption and \
        "smallest measurable FPR is 1 / the number of non-members" in spec.caption
    ax = fig.axes[0]
    curves = [ln for ln in ax.get_lines() if ln.get_label() != "chance"]
    assert len(curves) == len(scores)  # one curve per model
    assert ax.get_xscale() == ax.get_yscale() == "log"
    test = scores[0]["fold"] == "attack_test"
    n0 = int((~scores[0]["member"] & test).sum())  # the attack-test non-members
    assert ax.get_xlim()[0] == pytest.approx(0.5 / n0)  # curves floored at half of 1/n0


def _caption_figure6(tmp_path):
    from lottery_mia.stats.resampling import slice_metrics

    rng = np.random.default_rng(0)
    rows = []
    for method, sp in (("dense", 0.0), ("oneshot", 0.8)):
        for value, (n1, n0) in {"0": (40, 40), "1": (4, 40), "2": (0, 30)}.items():
            y = np.r_[np.ones(n1, bool), np.zeros(n0, bool)]
            m = slice_metrics(y, rng.normal(size=n1 + n0) + y, 0.5, np.ones(len(y), bool),
                              n_boot=100, seed=0)
            rows.append({"dataset": "digits", "arch": "resnet18", "method": method,
                         "sparsity": sp, "sample_size": 160, "attack": "mlp",
                         "slice": "class", "value": value, **m})
    spec, fig = _draw("figure6", tmp_path, tables={"slices": pd.DataFrame(rows)})
    assert "per true class" in spec.caption and '"n/a": the AUC of a slice without ' \
        'members' in spec.caption and 'marked "<10"' in spec.caption
    assert [ax.get_ylabel() for ax in fig.axes] == ["attack accuracy", "attack auc"]
    for ax, few, na in zip(fig.axes, (4, 2), (0, 2)):  # 2 models x (class 1, class 2)
        assert [t.get_text() for t in ax.get_xticklabels()] == ["class 0", "class 1",
                                                                "class 2"]
        texts = [t.get_text() for t in ax.texts]
        assert texts.count("<10") == few and texts.count("n/a") == na
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == ["resnet18 dense", "resnet18 oneshot s=0.8"]  # Table 1's two


def _caption_figure7(tmp_path):
    from lottery_mia.reporting.summaries import gap_correlation
    from matplotlib.collections import PathCollection

    training, attacks = _training(), _attacks()
    _, stats = gap_correlation(training, attacks, 400, "mlp")
    spec, fig = _draw("figure7", tmp_path, tables={"training": training, "attacks": attacks,
                                                   "gap_correlation": stats},
                      params={"figure2_sample_size": 400, "attack": "mlp"})
    assert "one large marker per model" in spec.caption and \
        "each seed as a small dot" in spec.caption
    ax = fig.axes[0]
    models = len(training.groupby(["dataset", "arch", "method", "sparsity"]))
    assert len(ax.containers) == models == stats["models"] == 14  # one marker per model
    dots = sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))
    assert dots == len(training) == stats["points"] == 28  # each seed a dot
    assert f"over {models} models" in ax.get_title() and "the 28 seeds" in ax.get_title()


def _caption_figure8(tmp_path):
    attacks = pd.DataFrame({"attack": ["mlp", "svm", "loss", "lira_online"],
                            "kind": ["classifier", "classifier", "threshold", "reference"]})
    scores = _roc_scores(attacks=("mlp", "svm", "loss"), reference=("lira_online",))
    spec, fig = _draw("figure8", tmp_path, tables={"attacks": attacks}, scores=scores)
    assert "a row of panels per kind of attack" in spec.caption and "at most six lines" \
        in spec.caption and "outside the attack-train fold" in spec.caption
    axes = np.asarray(fig.axes).reshape(3, len(scores))  # rows: kinds; columns: models
    member, fold = scores[0]["member"], scores[0]["fold"]
    for row, (kind, names) in enumerate((("classifier", 2), ("threshold", 1),
                                         ("reference", 1))):
        for col, s in enumerate(scores):
            ax = axes[row, col]
            assert ax.get_title().startswith({"reference": "reference-model"}.get(kind, kind))
            assert len([ln for ln in ax.get_lines() if ln.get_label() != "chance"]) == names
            if kind == "reference":  # judged rows outside the attack-train fold
                rows = (fold != "attack_train") & np.isfinite(s["score_lira_online"])
            else:  # the attack-test rows
                rows = fold == "attack_test"
            n0 = int((rows & ~member).sum())
            assert f"({n0} non-members evaluated)" in ax.get_title()
            assert ax.get_xlim()[0] == pytest.approx(0.5 / n0)


def _caption_figure9(tmp_path):
    attacks = _attacks()
    spec, fig = _draw("figure9", tmp_path, tables={"attacks": attacks},
                      params={"arch": "resnet18", "figure2_sample_size": 400,
                              "low_fpr_attacks": list(ATTACKS), "method": "imp"})
    assert "for the dense network and Table 1's ticket method" in spec.caption
    assert "mean over seeds" in spec.caption and "the dotted line is chance" in spec.caption
    ax = fig.axes[0]
    mean = attacks[(attacks["replicate"] == "mean") & (attacks["arch"] == "resnet18")
                   & (attacks["sample_size"] == 400)]
    assert len(ax.containers) == len(ATTACKS)  # a line per attack drawn
    for c in ax.containers:
        attack = c.get_label().split(" ")[0]
        rows = mean[(mean["attack"] == attack) & mean["method"].isin(["dense", "imp"])] \
            .sort_values("achieved_sparsity")
        assert np.allclose(c.lines[0].get_ydata(), rows["tpr_at_fpr_0.1"])
        assert f"({int(rows['n_eval_nonmembers'].min())} non-members)" in c.get_label()
    chance = [ln for ln in ax.get_lines() if ln.get_label().startswith("chance")]
    assert len(chance) == 1 and set(chance[0].get_ydata()) == {0.1}  # TPR = FPR


def _caption_figure10(tmp_path):
    rows = []
    for i, (method, gap) in enumerate((("oneshot", 0.01), ("imp", float("nan")),
                                       ("random_reinit", -0.02))):
        rows.append({"primary": True, "dataset": "digits", "arch": "resnet18",
                     "method": method, "ticket_sparsity": 0.8, "attack": "mlp",
                     "metric": "auc", "sample_size": 200, "verdict": "inconclusive",
                     "n_seeds": 3, "margin": 0.03, "diff": -0.02 * (i + 1),
                     "diff_ci_low": -0.02 * (i + 1) - 0.03,
                     "diff_ci_high": -0.02 * (i + 1) + 0.03, "diff_at_gap": gap,
                     "diff_at_gap_ci_low": gap - 0.02, "diff_at_gap_ci_high": gap + 0.02})
    rows.append({**rows[0], "primary": False, "metric": "balanced_accuracy"})
    spec, fig = _draw("figure10", tmp_path, tables={"verdicts": pd.DataFrame(rows)})
    assert "the raw difference (filled)" in spec.caption and "(open:" in spec.caption
    assert "a point without an open twin" in spec.caption
    ax = fig.axes[0]
    raw, at_gap = ax.containers[:2]
    assert len(raw.lines[0].get_xdata()) == 3  # every primary row, only those
    assert len(at_gap.lines[0].get_xdata()) == 2  # the one without a slope has no twin
    assert raw.lines[0].get_markerfacecolor() != "white"
    assert at_gap.lines[0].get_markerfacecolor() == "white"
    band = [p for p in ax.patches if "equivalence margin" in str(p.get_label())]
    assert len(band) == 1
    x0, x1 = band[0].get_bbox().x0, band[0].get_bbox().x1  # in data units along x
    assert (x0, x1) == pytest.approx((-0.03, 0.03))
    assert "over 3 training seed(s)" in ax.get_title()


def _caption_figure11(tmp_path):
    """Two datasets (no defence, PPB at 3) of the synthetic grid: a point per dataset and
    model at its mean test accuracy and mean-row attack AUC, a line per model through its
    defences, labelled, the sparsities of a method told apart by the fill."""
    training, attacks = _training(("resnet18",)), _attacks(("resnet18",))
    other_t = training.assign(dataset="digits_ppb3", test_acc=training["test_acc"] - 0.05)
    other_a = attacks.assign(dataset="digits_ppb3", auc=attacks["auc"] - 0.03)
    spec, fig = _draw("figure11", tmp_path,
                      tables={"training": pd.concat([training, other_t]),
                              "attacks": pd.concat([attacks, other_a])},
                      params={"arch": "resnet18", "figure2_sample_size": 400,
                              "primary": {"attack": "mlp"},
                              "defences": {"digits": "none",
                                           "digits_ppb3": "ppb (strength=3)"}})
    assert "one point per dataset entry" in spec.caption and "a line joins each model's" \
        in spec.caption and "labelled when there are several" in spec.caption
    auc_ax, tpr_ax = fig.axes
    models = training.groupby(["method", "sparsity"]).ngroups  # 7: dense + 3 x 2
    assert len(auc_ax.containers) == len(tpr_ax.containers) == models
    for c in auc_ax.containers:
        xs, ys = c.lines[0].get_xdata(), c.lines[0].get_ydata()
        assert len(xs) == 2  # none, then ppb
        assert xs[0] > xs[1] and ys[0] > ys[1]  # the defence costs accuracy and leakage
    dense = next(c for c in auc_ax.containers if c.get_label() == "dense")
    want = training[training["method"] == "dense"]["test_acc"].mean()
    assert dense.lines[0].get_xdata()[0] == pytest.approx(want)  # the seeds' mean
    mean = attacks[(attacks["replicate"] == "mean") & (attacks["attack"] == "mlp")
                   & (attacks["method"] == "dense") & (attacks["sample_size"] == 400)]
    assert dense.lines[0].get_ydata()[0] == pytest.approx(mean["auc"].iat[0])
    texts = [t.get_text() for t in auc_ax.texts]
    assert texts.count("none") == texts.count("ppb λ=3") == models
    lines = [ln for ln in auc_ax.lines if ln.get_linestyle() == "-"]  # one per model
    assert len(lines) == models and all(len(ln.get_xdata()) == 2 for ln in lines)
    fills = {c.get_label(): c.lines[0].get_fillstyle() for c in auc_ax.containers}
    assert fills["oneshot s=0.5"] != fills["oneshot s=0.8"]


CAPTION_CHECKS = {f"figure{n}": globals()[f"_caption_figure{n}"] for n in range(1, 12)}


def test_every_figure_has_a_caption_check():
    from lottery_mia.figures.registry import figure_specs

    assert {s.name for s in figure_specs()} == set(CAPTION_CHECKS)


@pytest.mark.parametrize("name", sorted(CAPTION_CHECKS, key=lambda n: int(n[6:])))
def test_each_figures_caption_matches_what_it_draws(name, tmp_path):
    CAPTION_CHECKS[name](tmp_path)


def test_figures_of_the_first_replicate_read_the_first_replicates_scores():
    """Figures 4, 5 and 8 say 'first replicate': the plan hands them that seed's models."""
    from conftest import tiny_config
    from lottery_mia.config import load_config
    from lottery_mia.figures.registry import figure_specs
    from lottery_mia.plan import Plan

    cfg = tiny_config()
    cfg["replicates"] = [3, 5]
    plan = Plan(load_config(cfg))
    for spec in figure_specs():
        if spec.scores is not None:
            assert "first replicate" in spec.caption
            paths = [m["path"] for m in plan.figure_models(spec)]
            assert paths and all("/seed-3/" in str(p) for p in paths), spec.name
    assert "first replicate" in FIGURES_CAPTION("figure4")
    assert {m.run for m in plan.transfer_models()} == {"seed-3"}


def FIGURES_CAPTION(name):
    from lottery_mia.figures.registry import FIGURES

    return FIGURES.get_entry(name).caption
