"""Charts: functions from the tidy long results table to ``plotly.graph_objects.Figure``.

One palette (Okabe–Ito, colour-blind safe) maps each group to the same colour on every page
(``chart_style``). Accuracy axes are in %, gaps and disparities in percentage points (pp); fonts
are sized for a projector. The Methods page's charts live in ``method_charts``; both are
re-exported here, so a caller imports one module.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fairprune.app.chart_style import (
    FIXED,
    FONT,
    LOSS_DASH,
    LOSS_SYMBOL,
    OKABE_ITO,
    empty_figure,
    group_color,
    layout,
    rgba,
)
from fairprune.app.method_charts import (
    METHOD_COLORS,
    methods_group_chart,
    methods_metric_chart,
    methods_pareto_chart,
)
from fairprune.app.views import (
    LOSS_LABELS,
    disparity_table,
    gaps_table,
    group_order,
    with_dense_baseline,
)

__all__ = [
    "FIXED",
    "FONT",
    "LOSS_DASH",
    "LOSS_SYMBOL",
    "METHOD_COLORS",
    "OKABE_ITO",
    "accuracy_vs_reduction",
    "counts_chart",
    "disparity_chart",
    "empty_figure",
    "forgotten_chart",
    "gap_vs_reduction",
    "group_bars",
    "group_color",
    "layout",
    "methods_group_chart",
    "methods_metric_chart",
    "methods_pareto_chart",
    "rgba",
    "tradeoff_chart",
]


def reduction_axis(data: pd.DataFrame) -> tuple[str, str]:
    """The x axis of a sweep's rows: FLOPs reduction, or — when every pruned criterion is
    unstructured (zeros in place, FLOPs unchanged on dense kernels) — the weight sparsity
    targeted, labelled so."""
    from fairprune.prune.registry import is_unstructured

    pruned = data[data["criterion"] != "dense"]["criterion"].unique()
    if len(pruned) and all(is_unstructured(c) for c in pruned):
        return "target_reduction", "weight sparsity"
    return "flops_reduction", "FLOPs reduction"


def accuracy_vs_reduction(
    long: pd.DataFrame,
    *,
    metric: str = "accuracy",
    criterion: str | None = None,
    losses: list[str] | None = None,
    methods: list[tuple[str, str]] | None = None,
    bands: bool = True,
) -> go.Figure:
    """Per-group metric vs FLOPs reduction (weight sparsity for unstructured criteria): one colour
    per group, the baseline method dashed, the method solid, 95% bands.

    Parameters
    ----------
    long : DataFrame
        The results store's long format (``ResultsStore.export_long``).
    metric : str
        A metric column (accuracy, balanced_accuracy, auroc, tpr, fpr, selection_rate).
    criterion : str, optional
        Keep one pruning criterion (default: the first one present, in the store's order, which
        is the sweep's configured order).
    losses : list of str, optional
        Fine-tuning losses to draw (default: all present).
    methods : list of (criterion, loss), optional
        Draw exactly these methods (e.g. the baseline and the method of the page's comparison,
        the paper's ``[("taylor", "ce"), ("pw_taylor", "pw")]``); overrides ``criterion``.
    bands : bool
        Shade the 95% bootstrap interval (accuracy only).
    """
    title = f"Per-group {metric.replace('_', ' ')} vs FLOPs reduction"
    data = with_dense_baseline(long)
    data = data[data["group"] != "overall"]
    if methods is None:
        if criterion is None and not data.empty:
            criterion = (
                str(data[data["criterion"] != "dense"]["criterion"].iloc[0])
                if (data["criterion"] != "dense").any()
                else str(data["criterion"].iloc[0])
            )
        data = data[data["criterion"] == criterion]
        if losses is not None:
            data = data[data["loss"].isin(losses)]
        present = sorted(
            data["loss"].unique(), key=lambda v: list(LOSS_DASH).index(v) if v in LOSS_DASH else 9
        )
        methods = [(str(criterion), str(loss)) for loss in present]
    else:
        methods = [(str(c), str(lo)) for c, lo in methods]
        keep = pd.Series(list(zip(data["criterion"], data["loss"], strict=True)), index=data.index)
        data = data[keep.isin(methods)]
    if data.empty:
        return empty_figure(title, "No sweep results yet: run a sweep.")
    x_col, x_label = reduction_axis(data)
    one_criterion = len({c for c, _ in methods}) == 1
    groups = group_order(data["group"].unique())
    fig = go.Figure()
    for i, (crit, loss) in enumerate(methods):
        if one_criterion:
            name, dash = LOSS_LABELS.get(loss, loss), LOSS_DASH.get(loss, "solid")
        else:  # two criteria: the baseline dashed, the method solid
            name, dash = f"{crit} + {loss}", ("dash" if i == 0 else "solid")
        for g in groups:
            d = data[(data["criterion"] == crit) & (data["loss"] == loss) & (data["group"] == g)]
            d = (  # one point per target level, seeds averaged (their reached FLOPs too)
                d.groupby("target_reduction", as_index=False)
                .agg(
                    flops_reduction=(x_col, "mean"),
                    value=(metric, "mean"),
                    low=("accuracy_low", "mean"),
                    high=("accuracy_high", "mean"),
                    n=("n", "max"),
                )
                .sort_values("flops_reduction")
            )
            x = d["flops_reduction"] * 100
            color = group_color(g, groups)
            if bands and metric == "accuracy" and d["low"].notna().any():
                fig.add_trace(
                    go.Scatter(
                        x=np.concatenate([x, x[::-1]]),
                        y=np.concatenate([d["high"] * 100, (d["low"] * 100)[::-1]]),
                        mode="lines",
                        fill="toself",
                        fillcolor=rgba(color, 0.10),
                        line=dict(width=0),
                        hoverinfo="skip",
                        showlegend=False,
                        legendgroup=f"{g}-{crit}-{loss}",
                    )
                )
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=d["value"] * 100,
                    mode="lines+markers",
                    name=f"{g} · {name}",
                    legendgroup=f"{g}-{crit}-{loss}",
                    line=dict(color=color, dash=dash, width=3),
                    marker=dict(size=8),
                    customdata=np.stack([d["n"], d["low"] * 100, d["high"] * 100], axis=1),
                    hovertemplate=(
                        f"<b>{g}</b> · {name}<br>"
                        f"{x_label} " + "%{x:.1f}%<br>"
                        f"{metric.replace('_', ' ')} " + "%{y:.1f}%<br>"
                        "95% CI %{customdata[1]:.1f}–%{customdata[2]:.1f}%<br>"
                        "n = %{customdata[0]}<extra></extra>"
                    ),
                )
            )
    title = title.replace("FLOPs reduction", x_label)
    shown = criterion if one_criterion else " vs ".join(f"{c} + {lo}" for c, lo in methods)
    return layout(fig, title + f" ({shown})", f"{x_label} (%)", f"{metric.replace('_', ' ')} (%)")


def gap_vs_reduction(long: pd.DataFrame) -> go.Figure:
    """Accuracy gap vs FLOPs reduction (weight sparsity for unstructured criteria), one line per
    criterion × loss.

    The gap is the project's one gap: the mean of the seeds' own max − min group accuracy
    (``views.gaps_table``); whiskers span the seeds' own gaps."""
    title = "Accuracy gap between groups vs FLOPs reduction"
    gaps = gaps_table(long)
    if gaps.empty:
        return empty_figure(title, "No sweep results yet: run a sweep.")
    x_col, x_label = reduction_axis(gaps)
    x_col = "target_reduction" if x_col == "target_reduction" else "flops_reduction"
    title = title.replace("FLOPs reduction", x_label)
    fig = go.Figure()
    for (crit, loss), d in gaps.groupby(["criterion", "loss"], sort=False):
        d = d.sort_values(x_col)
        fig.add_trace(
            go.Scatter(
                x=d[x_col] * 100,
                y=d["gap"] * 100,
                mode="lines+markers",
                name=f"{crit} · {LOSS_LABELS.get(loss, loss)}",
                line=dict(dash=LOSS_DASH.get(loss, "solid"), width=3),
                error_y=dict(  # the spread of the seeds' own gaps
                    type="data",
                    symmetric=False,
                    array=(d["gap_seed_max"] - d["gap"]).clip(lower=0) * 100,
                    arrayminus=(d["gap"] - d["gap_seed_min"]).clip(lower=0) * 100,
                    thickness=1.5,
                ),
                customdata=np.stack(
                    [
                        d["worst_group"],
                        d["best_group"],
                        d["seeds"],
                        d["gap_seed_min"] * 100,
                        d["gap_seed_max"] * 100,
                    ],
                    axis=1,
                ),  # fmt: skip
                hovertemplate=(
                    f"{x_label} " + "%{x:.1f}%<br>gap %{y:.1f} pp (mean of the %{customdata[2]} "
                    "seeds; seeds' gaps %{customdata[3]:.1f}–%{customdata[4]:.1f})<br>"
                    "worst: %{customdata[0]}, best: %{customdata[1]}<extra></extra>"
                ),
            )
        )
    return layout(
        fig, title, f"{x_label} (%)", "gap: mean over seeds of max − min group accuracy (pp)"
    )


def disparity_chart(long: pd.DataFrame) -> go.Figure:
    """Δg (accuracy lost to pruning per group, pp) and max ψg vs FLOPs reduction."""
    title = "Accuracy lost to pruning per group (Δg) and max excess gap ψ"
    disp = disparity_table(long)
    if disp.empty:
        return empty_figure(title, "No pruned models in the store yet.")
    groups = group_order(disp["group"].unique())
    fig = go.Figure()
    for (crit, loss), d in disp.groupby(["criterion", "loss"]):
        for g in groups:
            dg = (  # seeds averaged per target level
                d[d["group"] == g]
                .groupby("target_reduction", as_index=False)[["flops_reduction", "delta"]]
                .mean()
                .sort_values("flops_reduction")
            )
            fig.add_trace(
                go.Scatter(
                    x=dg["flops_reduction"] * 100,
                    y=dg["delta"] * 100,
                    mode="lines+markers",
                    name=f"Δ {g} · {crit} · {LOSS_LABELS.get(loss, loss)}",
                    line=dict(color=group_color(g, groups), dash=LOSS_DASH.get(loss, "solid")),
                    hovertemplate=f"Δ {g}: " + "%{y:.1f} pp at %{x:.1f}%<extra></extra>",
                )
            )
        psi = (
            d.drop_duplicates("cell_key")
            .groupby("target_reduction", as_index=False)[["flops_reduction", "max_psi"]]
            .mean()
        )
        fig.add_trace(
            go.Scatter(
                x=psi["flops_reduction"] * 100,
                y=psi["max_psi"] * 100,
                mode="markers",
                marker=dict(symbol="diamond", size=12, color="#333333"),
                name=f"max ψ · {crit} · {LOSS_LABELS.get(loss, loss)}",
                hovertemplate="max ψ %{y:.1f} pp at %{x:.1f}%<extra></extra>",
            )
        )
    return layout(fig, title, "FLOPs reduction (%)", "accuracy drop vs dense (pp)")


def tradeoff_chart(long: pd.DataFrame) -> go.Figure:
    """Overall accuracy vs FLOPs reduction: the efficiency trade-off."""
    title = "Overall accuracy vs FLOPs reduction"
    data = with_dense_baseline(long)
    data = data[data["group"] == "overall"]
    if data.empty:
        return empty_figure(title, "No sweep results yet: run a sweep.")
    fig = go.Figure()
    for (crit, loss), d in data.groupby(["criterion", "loss"]):
        d = (
            d.groupby("target_reduction", as_index=False)[["flops_reduction", "accuracy"]]
            .mean()
            .sort_values("flops_reduction")
        )
        fig.add_trace(
            go.Scatter(
                x=d["flops_reduction"] * 100,
                y=d["accuracy"] * 100,
                mode="lines+markers",
                name=f"{crit} · {LOSS_LABELS.get(loss, loss)}",
                line=dict(dash=LOSS_DASH.get(loss, "solid"), width=3),
                hovertemplate="FLOPs reduction %{x:.1f}%<br>accuracy %{y:.1f}%<extra></extra>",
            )
        )
    return layout(fig, title, "FLOPs reduction (%)", "overall accuracy (%)")


def group_bars(table: pd.DataFrame, *, metric: str = "accuracy", title: str = "") -> go.Figure:
    """One model's per-group metric with 95% intervals (accuracy), from ``group_metrics``."""
    t = table[table["group"] != "overall"]
    t = t.set_index("group").loc[group_order(t["group"])].reset_index()  # light → dark
    groups = list(t["group"])
    err = None
    if metric == "accuracy" and t["accuracy_low"].notna().any():
        err = dict(
            type="data",
            symmetric=False,
            array=(t["accuracy_high"] - t["accuracy"]) * 100,
            arrayminus=(t["accuracy"] - t["accuracy_low"]) * 100,
        )
    fig = go.Figure(
        go.Bar(
            x=groups,
            y=t[metric] * 100,
            marker_color=[group_color(g, groups) for g in groups],
            error_y=err,
            customdata=np.stack([t["n"], t["accuracy_low"] * 100, t["accuracy_high"] * 100], 1),
            hovertemplate=(
                "<b>%{x}</b><br>%{y:.1f}%<br>95% CI %{customdata[1]:.1f}–%{customdata[2]:.1f}%"
                "<br>n = %{customdata[0]}<extra></extra>"
            ),
        )
    )
    return layout(fig, title or f"{metric.replace('_', ' ')} per group", "group",
                   f"{metric.replace('_', ' ')} (%)")  # fmt: skip


def counts_chart(summary: pd.DataFrame) -> go.Figure:
    """Images per split × group, stacked by label (from ``datasets.summarize``)."""
    title = "Images per split, group and label"
    if summary.empty:
        return empty_figure(title, "The dataset is empty.")
    fig = go.Figure()
    for label, d in summary.groupby("label"):
        fig.add_trace(
            go.Bar(
                x=[d["split"], d["group"]],
                y=d["n"],
                name=str(label),
                hovertemplate="%{x}<br>" + f"{label}: " + "%{y}<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack")
    return layout(fig, title, "split / group", "images")


def forgotten_chart(rates: pd.DataFrame) -> go.Figure:
    """Share of each group a pruned model forgot (from ``views.forgotten``), in %."""
    title = "Share of each group the pruned model forgot"
    if rates.empty:
        return empty_figure(title, "No groups to show.")
    groups = list(rates["group"])
    fig = go.Figure(
        go.Bar(
            x=groups,
            y=rates["rate"] * 100,
            marker_color=[group_color(g, groups) for g in groups],
            customdata=np.stack([rates["forgotten"], rates["n"]], 1),
            hovertemplate="<b>%{x}</b><br>%{y:.1f}% forgotten (%{customdata[0]} of "
            "%{customdata[1]})<extra></extra>",
        )
    )
    return layout(fig, title, "group", "forgotten (% of the group)")
