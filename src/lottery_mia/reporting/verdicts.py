"""The verdict tables: every pruned model against its dense network (``verdicts.csv``: the
primary comparisons, the confirmatory family, and the exploratory rest) and every ticket
method against its controls (``method_verdicts.csv``), from the replicate score files of
the attack jobs (:func:`lottery_mia.stats.inference.compare`). Pure pandas: no torch."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..stats.inference import compare, decide_family, decision_text, gap_adjusted
from .summaries import method_means
from .tables import _group_key, _model, _sel, _stacked_scores, _thresholds, kind_of
from ..vocabulary import DENSE, MEAN


# --------------------------------------------------------------------------- verdicts
# The metrics a verdict compares: AUC, balanced accuracy (a reference attack's evaluated
# rows hold unequal numbers of members and non-members; on balanced rows it is the
# accuracy) and TPR at each low FPR where it is measurable on the rows.
VERDICT_METRICS = ("auc", "balanced_accuracy", "tpr_at_fpr_0.1", "tpr_at_fpr_0.01",
                   "tpr_at_fpr_0.001")
# report.primary.attack "auto": the first of these that was run on both models (a fixed,
# declared order, never chosen by its result): the reference attacks, then the loss
# threshold, then the report's attack.
PRIMARY_ORDER = ("lira_online", "rmia", "lira_offline", "shadow_mlp", "loss")


def margin_of(margins: dict, dataset: str, metric: str) -> float:
    """The equivalence margin of ``metric`` on ``dataset`` (report.equivalence_margin:
    metric -> margin, with ``by_dataset`` overrides)."""
    own = (margins.get("by_dataset") or {}).get(dataset) or {}
    if metric in own:
        return float(own[metric])
    if metric not in margins:
        raise ValueError(f"config key report.equivalence_margin has no margin for {metric!r}")
    return float(margins[metric])


def _pair(paths: dict, per: pd.DataFrame, a: tuple, b: tuple, attack: str, ds: str,
          arch: str, n: int):
    """(member flags, classes, scores and thresholds of a and of b) of one attack on the
    rows both were evaluated on; None when either model lacks the attack."""
    kind = kind_of(per, attack)
    sel = dict(dataset=ds, arch=arch, sample_size=n, attack=attack)
    t_a = _thresholds(per, method=a[0], sparsity=a[1], **sel)
    t_b = _thresholds(per, method=b[0], sparsity=b[1], **sel)
    p_a, p_b = paths.get((ds, arch, a[0], a[1], n)), paths.get((ds, arch, b[0], b[1], n))
    if not len(t_a) or not len(t_b) or not p_a or not p_b:
        return None
    y, s_a, fa = _stacked_scores(p_a, attack, kind, (ds, arch, a[0], a[1], n))
    y2, s_b, _ = _stacked_scores(p_b, attack, kind, (ds, arch, b[0], b[1], n))
    if not np.array_equal(y, y2):
        raise ValueError(f"{a[0]} and {b[0]} of {ds} {arch} n={n} ({attack}) were attacked "
                         "on other rows")
    for name, t, sc in ((a[0], t_a, s_a), (b[0], t_b, s_b)):
        if len(t) != sc.shape[0]:
            raise ValueError(f"{ds} {arch} {name} n={n} {attack}: {len(t)} replicate rows in "
                             f"attacks.csv for {sc.shape[0]} score files")
    return y, fa[0]["label"].to_numpy(), s_a, t_a, s_b, t_b


def _per_seed(per: pd.DataFrame, training: pd.DataFrame | None, ds: str, arch: str,
              n: int, attack: str, metric: str) -> tuple[dict, dict]:
    """seed -> {(method, sparsity): metric} of every model that ran ``attack`` at ``n``,
    and seed -> {(method, sparsity): train - test accuracy} (for :func:`gap_adjusted`)."""
    values: dict = {}
    gaps: dict = {}
    part = _sel(per, dataset=ds, arch=arch, sample_size=n, attack=attack)
    for r in part.to_dict("records"):
        sp = 0.0 if r["method"] == DENSE else float(r["sparsity"])
        values.setdefault(str(r["replicate"]), {})[(r["method"], sp)] = \
            float(r.get(metric, np.nan))
    if training is not None and len(training):
        tr = _sel(training, dataset=ds, arch=arch)
        for r in tr.itertuples(index=False):
            sp = 0.0 if r.method == DENSE else float(r.sparsity)
            gaps.setdefault(str(r.replicate), {})[(r.method, sp)] = \
                float(r.train_acc) - float(r.test_acc)
    return values, gaps


def decide_families(rows: list[dict], primary: str, rest: str) -> None:
    """Name each row's family (``primary`` for the primary rows, ``rest`` for the others)
    and decide each family on its own (Holm within it)."""
    for flag, family in ((True, primary), (False, rest)):
        part = [r for r in rows if r["primary"] is flag]
        for r in part:
            r["family"] = family
        decide_family(part)


VERDICT_WORDS = {
    "leaks_more": "{b} leaks more than {a}",
    "leaks_less": "{b} leaks less than {a}",
    "equivalent": "{b} and {a} leak the same, within +-{margin:g}",
    "inconclusive": "this run does not decide whether {b} leaks more or less than {a}",
}


def comparison_columns(v: dict) -> dict:
    """The columns of one comparison (a :func:`inference.compare` entry, b - a)."""
    return {"diff": v["diff"], "diff_ci_low": v["ci_low"], "diff_ci_high": v["ci_high"],
            "diff_ci90_low": v["ci90_low"], "diff_ci90_high": v["ci90_high"],
            "p_value": v["p_value"], "p_equivalence": v["p_equivalence"],
            "n_seeds": v["n_seeds"], "scope": v["scope"], "row_ci_low": v["row_ci_low"],
            "row_ci_high": v["row_ci_high"], "margin": v["margin"], "seed_sd": v["seed_sd"],
            "row_var": v["row_var"], "note": v["note"]}


def comparison_sentence(head: str, b_name: str, a_name: str, r: dict) -> str:
    """One comparison in words, after its verdict is set (``r``: a row of the table)."""
    if r["scope"] == "these networks":
        over = (f"over the attack rows of these {r['n_seeds']} network(s) per side; with "
                "fewer than 3 seeds there is no verdict")
    else:
        over = f"over {r['n_seeds']} training seeds and the attack rows"
    finding = VERDICT_WORDS[r["verdict"]].format(b=b_name, a=a_name, margin=r["margin"])
    more = decision_text(r)
    tests = ("" if not np.isfinite(r["p_holm"]) else
             f"; Holm-adjusted p = {r['p_holm']:.2g}, equivalence p = "
             f"{r['p_equivalence_holm']:.2g} ({r['family']})")
    return (f"{head}, a difference of {r['diff']:+.3f} (95% CI {r['diff_ci_low']:+.3f} to "
            f"{r['diff_ci_high']:+.3f} {over}{tests}): {finding}"
            + (f"; {more}" if more else "") + ".")


def verdict_rows(attacks: pd.DataFrame, training: pd.DataFrame | None, groups: list,
                 method_kinds: dict | None, verdict_attacks, primary: dict, margins: dict,
                 n_bootstrap: int, seed: int) -> pd.DataFrame:
    """Every pruned model minus its dense network, per dataset, architecture, method,
    sparsity, sample size, attack (``verdict_attacks`` and the primary one) and metric
    (:data:`VERDICT_METRICS` where measurable): the difference with its interval over
    seeds and rows (:func:`lottery_mia.stats.inference.compare`), the same at equal
    generalisation gap, the seeds a decision needs, and a verdict.

    The primary comparison (``primary``: attack, or "auto" for the first of
    :data:`PRIMARY_ORDER` run on both models; metric; sample size, None for the dataset's
    largest) is one row per (dataset, architecture, method, sparsity): together they are
    the confirmatory family, Holm-adjusted among themselves; every other row is
    exploratory, Holm-adjusted within the exploratory family.

    ``groups``: dicts with dataset, arch, method, sparsity, sample_size and ``paths`` (the
    replicate score files in replicate order)."""
    kinds = dict(method_kinds or {})
    per = attacks[attacks["replicate"] != MEAN]
    paths = {_group_key(g): list(g["paths"]) for g in groups}
    ran = set(per["attack"])
    rows = []
    models = sorted({k[:4] for k in paths if k[2] != DENSE})
    for ds, arch, method, sparsity in models:
        sizes = sorted({k[4] for k in paths if k[:4] == (ds, arch, method, sparsity)})
        n_primary = primary.get("sample_size") or max(sizes)
        base = (DENSE, 0.0)
        tick = (method, sparsity)

        def runs_on_both(attack, n):
            sel = _sel(per, dataset=ds, arch=arch, sample_size=n, attack=attack)
            return (not _model(sel, DENSE, 0.0).empty
                    and not _model(sel, method, sparsity).empty)

        want = primary.get("attack", "auto")
        p_attack = next((a for a in PRIMARY_ORDER if a in ran and runs_on_both(a, n_primary)),
                        None) if want == "auto" else \
            (want if want in ran and runs_on_both(want, n_primary) else None)
        names = list(dict.fromkeys(([p_attack] if p_attack else []) + list(verdict_attacks)))
        for n in sizes:
            for attack in names:
                if attack not in ran or not runs_on_both(attack, n):
                    continue
                pair = _pair(paths, per, base, tick, attack, ds, arch, n)
                if pair is None:
                    continue
                y, labels, s_a, t_a, s_b, t_b = pair
                d = compare(y, s_a, t_a, s_b, t_b, metrics=VERDICT_METRICS, strata=labels,
                            margins={m: margin_of(margins, ds, m) for m in VERDICT_METRICS},
                            n_boot=n_bootstrap, seed=seed)
                for metric, v in d.items():
                    if v is None:
                        continue
                    values, gaps = _per_seed(per, training, ds, arch, n, attack, metric)
                    rows.append({
                        "dataset": ds, "sample_size": n, "arch": arch, "method": method,
                        "method_kind": kinds.get(method), "ticket_sparsity": sparsity,
                        "attack": attack, "metric": metric,
                        "primary": bool(attack == p_attack and n == n_primary
                                        and metric == primary.get("metric", "auc")),
                        "dense": v["a"], "ticket": v["b"], **comparison_columns(v),
                        **gap_adjusted(values, gaps, base, tick)})
    if not rows:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    decide_families(rows, "confirmatory", "exploratory")
    for r in rows:
        head = (f"{r['dataset']}, n={r['sample_size']}: {r['attack']} attack {r['metric']} "
                f"on the {r['arch']} {r['method']} network at sparsity "
                f"{r['ticket_sparsity']:g} is {r['ticket']:.3f} vs {r['dense']:.3f} on the "
                "dense network")
        r["sentence"] = comparison_sentence(head, "the pruned network", "the dense network",
                                            r)
    frame = pd.DataFrame(rows)
    frame = frame.sort_values(["primary", "dataset", "arch", "method", "ticket_sparsity",
                               "attack", "metric", "sample_size"],
                              ascending=[False, True, True, True, True, True, True, True],
                              kind="stable")
    return frame[VERDICT_COLUMNS].reset_index(drop=True)


VERDICT_COLUMNS = [
    "dataset", "sample_size", "arch", "method", "method_kind", "ticket_sparsity", "attack",
    "metric", "primary", "family", "dense", "ticket", "verdict", "n_seeds", "scope", "diff",
    "diff_ci_low", "diff_ci_high", "diff_ci90_low", "diff_ci90_high", "p_value", "p_holm",
    "p_equivalence", "p_equivalence_holm", "margin", "seed_sd", "row_var", "row_ci_low",
    "row_ci_high", "seeds_needed", "power", "diff_at_gap", "diff_at_gap_ci_low",
    "diff_at_gap_ci_high", "gap_slope", "gap_note", "note", "sentence",
]


# --------------------------------------------------------------------------- methods
METHOD_VERDICT_COLUMNS = [
    "dataset", "sample_size", "arch", "sparsity", "attack", "metric", "method", "versus",
    "method_kind", "versus_kind", "method_value", "versus_value", "family", "verdict",
    "n_seeds", "scope", "diff", "diff_ci_low", "diff_ci_high", "diff_ci90_low",
    "diff_ci90_high", "p_value", "p_holm", "p_equivalence", "p_equivalence_holm", "margin",
    "seed_sd", "row_var", "row_ci_low", "row_ci_high", "seeds_needed", "power", "note",
    "achieved_sparsity_method", "achieved_sparsity_versus", "test_acc_method",
    "test_acc_versus", "sentence",
]


def method_pairs(present: list[str], kinds: dict) -> list[tuple[str, str]]:
    """(method, versus) comparisons among the methods ``present`` at one sparsity: every
    ticket method against every control, then every later ticket method against the first
    one (ticket order: that of ``kinds``, then of ``present``)."""
    order = list(dict.fromkeys([m for m in kinds if m in present] + list(present)))
    tickets = [m for m in order if kinds.get(m) == "ticket"]
    controls = [m for m in order if kinds.get(m) == "control"]
    pairs = [(t, c) for t in tickets for c in controls]
    pairs += [(t, tickets[0]) for t in tickets[1:]]
    return pairs


def _fmt(v, digits: int = 3) -> str:
    return f"{v:.{digits}f}" if v is not None and np.isfinite(v) else "n/a"


def method_head(r: dict) -> str:
    """The first half of a method verdict's sentence (b = method, a = versus)."""
    notes = []
    for name, a in ((r["method"], r["achieved_sparsity_method"]),
                    (r["versus"], r["achieved_sparsity_versus"])):
        if a is not None and np.isfinite(a) and not np.isclose(a, r["sparsity"], atol=5e-4):
            notes.append(f"{name} achieved sparsity {a:.3f}")
    note = f" ({'; '.join(notes)})" if notes else ""
    other = (f"{r['versus']} (control)" if r["versus_kind"] == "control"
             else f"the {r['versus']} ticket")
    return (f"{r['dataset']}, n={r['sample_size']}, sparsity {r['sparsity']:g}{note}: "
            f"{r['attack']} attack {r['metric']} on the {r['arch']} {r['method']} ticket is "
            f"{r['method_value']:.3f} vs {r['versus_value']:.3f} on {other} (test accuracy "
            f"{_fmt(r['test_acc_method'])} vs {_fmt(r['test_acc_versus'])})")


def method_verdicts(attacks: pd.DataFrame, training: pd.DataFrame | None, groups: list,
                    method_kinds: dict | None, verdict_attacks, n_bootstrap: int, seed: int,
                    margins: dict) -> pd.DataFrame:
    """Tickets vs their controls: for each dataset, arch and sample size of ``groups``,
    attack of ``verdict_attacks`` and requested sparsity > 0, every ticket method minus
    every control present there, and every later ticket method minus the first
    (e.g. imp - oneshot): attack AUC and balanced accuracy with the verdict of
    :func:`lottery_mia.stats.inference.compare` (over seeds and rows with three or more seeds;
    an exploratory family of its own, Holm-adjusted over the whole table), with the mean
    achieved sparsity and test accuracy of both sides.

    ``groups``: dicts with dataset, arch, method, sparsity, sample_size and ``paths`` (the
    replicate score files in replicate order). ``method_kinds``: method -> ``ticket`` |
    ``control`` | ``dense`` (falls back to training.csv's ``method_kind``).
    """
    kinds = dict(method_kinds or {})
    means = method_means(training) if training is not None and len(training) else None
    if means is not None:
        for m, k in zip(means["method"], means["method_kind"]):
            kinds.setdefault(m, k)
    kinds.setdefault(DENSE, DENSE)
    per = attacks[attacks["replicate"] != MEAN]

    paths = {_group_key(g): list(g["paths"]) for g in groups}
    cells: dict[tuple, list[str]] = {}
    for ds, arch, method, sparsity, n in paths:
        if sparsity > 0 and method != DENSE:
            cells.setdefault((ds, arch, n, sparsity), []).append(method)

    def side_info(ds, arch, method, sparsity):
        """(mean achieved sparsity, mean test accuracy) of one model over its seeds."""
        r = None if means is None else _sel(means, dataset=ds, arch=arch, method=method,
                                            sparsity=sparsity)
        if r is not None and not r.empty:
            return float(r["achieved_sparsity"].iat[0]), float(r["test_acc"].iat[0])
        a = _sel(per, dataset=ds, arch=arch, method=method, sparsity=sparsity)
        if "achieved_sparsity" in a and not a.empty:
            return float(a["achieved_sparsity"].mean()), np.nan
        return np.nan, np.nan

    rows = []
    for (ds, arch, n, sparsity), present in sorted(cells.items()):
        for method, versus in method_pairs(present, kinds):
            info_m = side_info(ds, arch, method, sparsity)
            info_v = side_info(ds, arch, versus, sparsity)
            for attack in dict.fromkeys(verdict_attacks):
                if attack not in set(per["attack"]):
                    continue
                pair = _pair(paths, per, (versus, sparsity), (method, sparsity), attack, ds,
                             arch, n)
                if pair is None:
                    continue
                y, labels, s_v, t_v, s_m, t_m = pair
                d = compare(y, s_v, t_v, s_m, t_m, metrics=("auc", "balanced_accuracy"),
                            strata=labels, margins={m: margin_of(margins, ds, m) for m in
                                                    ("auc", "balanced_accuracy")},
                            n_boot=n_bootstrap, seed=seed)
                for metric, v in d.items():
                    if v is None:
                        continue
                    rows.append({
                        "dataset": ds, "sample_size": n, "arch": arch, "sparsity": sparsity,
                        "attack": attack, "metric": metric, "method": method,
                        "versus": versus, "method_kind": kinds.get(method),
                        "versus_kind": kinds.get(versus), "method_value": v["b"],
                        "versus_value": v["a"], "family": "exploratory",
                        **comparison_columns(v),
                        "achieved_sparsity_method": info_m[0],
                        "achieved_sparsity_versus": info_v[0],
                        "test_acc_method": info_m[1], "test_acc_versus": info_v[1],
                    })
    if not rows:
        return pd.DataFrame(columns=METHOD_VERDICT_COLUMNS)
    rows = decide_family(rows)  # one exploratory family: every comparison of the table
    for r in rows:
        b = f"the {r['method']} ticket"
        a = (f"{r['versus']} (control)" if r["versus_kind"] == "control"
             else f"the {r['versus']} ticket")
        r["sentence"] = comparison_sentence(method_head(r), b, a, r)
    return pd.DataFrame(rows, columns=METHOD_VERDICT_COLUMNS)


# --------------------------------------------------------------------------- pairs
PAIR_THREAT = ("Threat model of the pair attacks: the adversary queries both the published "
               "dense network and its published ticket (a model hub shipping a network "
               "beside its pruned variants) and compares their confidences on each row.")
PAIR_VERDICT_COLUMNS = [
    "dataset", "sample_size", "arch", "method", "ticket_sparsity", "attack", "versus_attack",
    "stronger", "metric", "primary", "family", "pair", "single", "dense", "ticket",
    "verdict", "n_seeds", "scope", "diff", "diff_ci_low", "diff_ci_high", "diff_ci90_low",
    "diff_ci90_high", "p_value", "p_holm", "p_equivalence", "p_equivalence_holm", "margin",
    "seed_sd", "row_var", "row_ci_low", "row_ci_high", "seeds_needed", "power", "note",
    "sentence",
]


def pair_verdicts(attacks: pd.DataFrame, groups: list, margins: dict, n_bootstrap: int,
                  seed: int) -> pd.DataFrame:
    """Does publishing a ticket beside its dense parent leak more than either alone? For
    every pruned model, sample size and pair attack P that ran on it (an attack with
    ``needs_parent``; :mod:`lottery_mia.attacks.pair`), P on the pair minus the attack it
    extends (``extends``: LiRA online for pair_lira, the MLP for pair_mlp) on the stronger
    of the two single networks, on the rows all three are evaluated on, per metric of
    :data:`VERDICT_METRICS` (:func:`lottery_mia.stats.inference.compare`: over seeds and
    rows with three or more seeds). The stronger side is the one with the higher mean AUC
    over seeds under the single-network attack (chosen by its result, so the comparison is
    conservative for "the pair leaks more"). The primary rows (AUC at the dataset's largest
    sample size) are one family, Holm-adjusted, the rest another.

    ``groups``: dicts with dataset, arch, method, sparsity, sample_size and ``paths`` (the
    replicate score files in replicate order), as for :func:`verdict_rows`."""
    from ..attacks import ATTACKS
    from ..stats.inference import compare

    per = attacks[attacks["replicate"] != MEAN]
    ran = set(per["attack"])
    pair_attacks = [a for a in ATTACKS if a in ran and ATTACKS[a].needs_parent
                    and ATTACKS[a].extends in ran]
    paths = {_group_key(g): list(g["paths"]) for g in groups}
    rows = []
    for (ds, arch, method, sparsity, n) in sorted(k for k in paths if k[2] != DENSE):
        largest = max(k[4] for k in paths if k[0] == ds)
        for attack in pair_attacks:
            base = ATTACKS[attack].extends
            sel = dict(dataset=ds, arch=arch, sample_size=n)
            t_p = _thresholds(per, method=method, sparsity=sparsity, attack=attack, **sel)
            t_d = _thresholds(_model(_sel(per, attack=base, **sel), DENSE, 0.0))
            t_t = _thresholds(per, method=method, sparsity=sparsity, attack=base, **sel)
            dense_key = (ds, arch, DENSE, 0.0, n)
            if not (len(t_p) and len(t_d) and len(t_t)) or dense_key not in paths:
                continue
            key = (ds, arch, method, sparsity, n)
            y, s_p, f_p = _stacked_scores(paths[key], attack, kind_of(per, attack), key)
            _, s_t, f_t = _stacked_scores(paths[key], base, kind_of(per, base), key)
            _, s_d, f_d = _stacked_scores(paths[dense_key], base, kind_of(per, base),
                                          dense_key)
            ids = [f[0]["sample_id"].to_numpy() for f in (f_p, f_t, f_d)]
            common = np.isin(ids[0], ids[1]) & np.isin(ids[0], ids[2])
            keep = [np.isin(i, ids[0][common]) for i in ids]
            s_p, s_t, s_d = s_p[:, keep[0]], s_t[:, keep[1]], s_d[:, keep[2]]
            y = y[keep[0]]
            labels = f_p[0]["label"].to_numpy()[keep[0]]
            means = {side: float(_sel(per, attack=base, **sel).pipe(
                _model, m, sp)["auc"].mean()) for side, m, sp in
                (("dense", DENSE, 0.0), ("ticket", method, sparsity))}
            stronger = "dense" if means["dense"] > means["ticket"] else "ticket"
            s_a, t_a = (s_d, t_d) if stronger == "dense" else (s_t, t_t)
            d = compare(y, s_a, t_a, s_p, t_p, metrics=VERDICT_METRICS, strata=labels,
                        margins={m: margin_of(margins, ds, m) for m in VERDICT_METRICS},
                        n_boot=n_bootstrap, seed=seed)
            for metric, v in d.items():
                if v is None:
                    continue
                rows.append({
                    "dataset": ds, "sample_size": n, "arch": arch, "method": method,
                    "ticket_sparsity": sparsity, "attack": attack, "versus_attack": base,
                    "stronger": stronger, "metric": metric,
                    "primary": bool(n == largest and metric == "auc"),
                    "pair": v["b"], "single": v["a"], "dense": means["dense"]
                    if metric == "auc" else np.nan,
                    "ticket": means["ticket"] if metric == "auc" else np.nan,
                    **comparison_columns(v), "note": v["note"]})
    if not rows:
        return pd.DataFrame(columns=PAIR_VERDICT_COLUMNS)
    decide_families(rows, "pair", "pair (exploratory)")
    for r in rows:
        head = (f"{r['dataset']}, n={r['sample_size']}: the {r['attack']} attack "
                f"{r['metric']} on the {r['arch']} {r['method']} ticket at sparsity "
                f"{r['ticket_sparsity']:g} with its dense parent is {r['pair']:.3f} vs "
                f"{r['single']:.3f} for {r['versus_attack']} on the {r['stronger']} network "
                "alone (the stronger of the two)")
        r["sentence"] = comparison_sentence(head, "the pair", f"the {r['stronger']} network "
                                            "alone", r)
    frame = pd.DataFrame(rows).sort_values(
        ["primary", "dataset", "arch", "method", "ticket_sparsity", "attack", "metric",
         "sample_size"], ascending=[False] + [True] * 7, kind="stable")
    return frame[PAIR_VERDICT_COLUMNS].reset_index(drop=True)
