"""Charts: functions from the tidy long results table to ``plotly.graph_objects.Figure``.

One palette (Okabe–Ito, colour-blind safe) maps each group to the same colour on every page.
Accuracy axes are in %, gaps and disparities in percentage points (pp); fonts are sized for a
projector.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fairprune.app.views import (
    LOSS_LABELS,
    disparity_table,
    gaps_table,
    group_base,
    group_order,
    with_dense_baseline,
)

OKABE_ITO = [
    "#E69F00",  # orange
    "#0072B2",  # blue
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow: last, it is faint on white
]
# groups every dataset of the paper uses keep one colour everywhere (matched on the first word,
# so Fitzpatrick's "light (1-2)" and the intersectional "light × benign" are light's orange)
FIXED = {
    "light": "#E69F00",
    "medium": "#009E73",
    "dark": "#0072B2",
    "female": "#CC79A7",
    "male": "#56B4E9",
    "overall": "#555555",
}
LOSS_DASH = {
    "ce": "dash",
    "pw": "solid",
    "pw_weights": "dot",
    "pw_soft": "dashdot",
    "constrained": "longdashdot",
    "dense": "solid",
    "none": "longdash",
}
LOSS_SYMBOL = {"ce": "circle", "pw": "diamond", "constrained": "square"}
FONT = dict(size=17)


def group_color(name: str, groups: list[str] | None = None) -> str:
    """The colour of a group, the same on every page and chart.

    Parameters
    ----------
    name : str
        A group name; an intersectional one ("dark × malignant") takes its first part's colour.
    groups : list of str, optional
        Every group of the dataset. Groups outside the fixed table are coloured by their place
        among these, so the colours are distinct; without it, by a stable hash of the name.

    Returns
    -------
    str
        A hex colour from the Okabe–Ito palette.
    """
    base = group_base(name)
    if base in FIXED:
        return FIXED[base]
    others = sorted({group_base(g) for g in (groups or []) if group_base(g) not in FIXED})
    if base in others:
        return OKABE_ITO[others.index(base) % len(OKABE_ITO)]
    return OKABE_ITO[zlib.crc32(base.encode()) % len(OKABE_ITO)]  # hash() differs per process


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _layout(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, font=dict(size=22)),
        font=FONT,
        xaxis_title=x,
        yaxis_title=y,
        template="plotly_white",
        colorway=OKABE_ITO,
        legend=dict(font=dict(size=15)),
        margin=dict(l=70, r=30, t=70, b=60),
        hoverlabel=dict(font_size=15),
    )
    return fig


def _empty(title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font=dict(size=18))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, "", "")


def accuracy_vs_reduction(
    long: pd.DataFrame,
    *,
    metric: str = "accuracy",
    criterion: str | None = None,
    losses: list[str] | None = None,
    bands: bool = True,
) -> go.Figure:
    """Per-group metric vs FLOPs reduction: one colour per group, CE dashed, PW solid, 95% bands.

    Parameters
    ----------
    long : DataFrame
        The results store's long format (``ResultsStore.export_long``).
    metric : str
        A metric column (accuracy, balanced_accuracy, auroc, tpr, fpr, selection_rate).
    criterion : str, optional
        Keep one pruning criterion (default: the first one present).
    losses : list of str, optional
        Fine-tuning losses to draw (default: all present).
    bands : bool
        Shade the 95% bootstrap interval (accuracy only).
    """
    title = f"Per-group {metric.replace('_', ' ')} vs FLOPs reduction"
    data = with_dense_baseline(long)
    data = data[data["group"] != "overall"]
    if criterion is None and not data.empty:
        criterion = sorted(data["criterion"].unique())[0]
    data = data[data["criterion"] == criterion]
    if losses is not None:
        data = data[data["loss"].isin(losses)]
    if data.empty:
        return _empty(title, "No sweep results yet: run a sweep.")
    groups = group_order(data["group"].unique())
    fig = go.Figure()
    for loss in sorted(
        data["loss"].unique(), key=lambda v: list(LOSS_DASH).index(v) if v in LOSS_DASH else 9
    ):
        for g in groups:
            d = data[(data["loss"] == loss) & (data["group"] == g)]
            d = (  # one point per target level, seeds averaged (their reached FLOPs too)
                d.groupby("target_reduction", as_index=False)
                .agg(
                    flops_reduction=("flops_reduction", "mean"),
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
                        fillcolor=_rgba(color, 0.10),
                        line=dict(width=0),
                        hoverinfo="skip",
                        showlegend=False,
                        legendgroup=f"{g}-{loss}",
                    )
                )
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=d["value"] * 100,
                    mode="lines+markers",
                    name=f"{g} · {LOSS_LABELS.get(loss, loss)}",
                    legendgroup=f"{g}-{loss}",
                    line=dict(color=color, dash=LOSS_DASH.get(loss, "solid"), width=3),
                    marker=dict(size=8),
                    customdata=np.stack([d["n"], d["low"] * 100, d["high"] * 100], axis=1),
                    hovertemplate=(
                        f"<b>{g}</b> · {LOSS_LABELS.get(loss, loss)}<br>"
                        "FLOPs reduction %{x:.1f}%<br>"
                        f"{metric.replace('_', ' ')} " + "%{y:.1f}%<br>"
                        "95% CI %{customdata[1]:.1f}–%{customdata[2]:.1f}%<br>"
                        "n = %{customdata[0]}<extra></extra>"
                    ),
                )
            )
    return _layout(
        fig, title + f" ({criterion})", "FLOPs reduction (%)", f"{metric.replace('_', ' ')} (%)"
    )


def gap_vs_reduction(long: pd.DataFrame) -> go.Figure:
    """Accuracy gap (max − min group, pp) vs FLOPs reduction, one line per criterion × loss.

    Points are seed-averaged; whiskers span the seeds' own gaps."""
    title = "Accuracy gap between groups vs FLOPs reduction"
    gaps = gaps_table(long)
    if gaps.empty:
        return _empty(title, "No sweep results yet: run a sweep.")
    fig = go.Figure()
    for (crit, loss), d in gaps.groupby(["criterion", "loss"]):
        d = d.sort_values("flops_reduction")
        fig.add_trace(
            go.Scatter(
                x=d["flops_reduction"] * 100,
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
                    "FLOPs reduction %{x:.1f}%<br>gap %{y:.1f} pp (mean of %{customdata[2]} "
                    "seeds; seeds' gaps %{customdata[3]:.1f}–%{customdata[4]:.1f})<br>"
                    "worst: %{customdata[0]}, best: %{customdata[1]}<extra></extra>"
                ),
            )
        )
    return _layout(fig, title, "FLOPs reduction (%)", "gap, max − min group accuracy (pp)")


def disparity_chart(long: pd.DataFrame) -> go.Figure:
    """Δg (accuracy lost to pruning per group, pp) and max ψg vs FLOPs reduction."""
    title = "Accuracy lost to pruning per group (Δg) and max excess gap ψ"
    disp = disparity_table(long)
    if disp.empty:
        return _empty(title, "No pruned models in the store yet.")
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
    return _layout(fig, title, "FLOPs reduction (%)", "accuracy drop vs dense (pp)")


def tradeoff_chart(long: pd.DataFrame) -> go.Figure:
    """Overall accuracy vs FLOPs reduction: the efficiency trade-off."""
    title = "Overall accuracy vs FLOPs reduction"
    data = with_dense_baseline(long)
    data = data[data["group"] == "overall"]
    if data.empty:
        return _empty(title, "No sweep results yet: run a sweep.")
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
    return _layout(fig, title, "FLOPs reduction (%)", "overall accuracy (%)")


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
    return _layout(fig, title or f"{metric.replace('_', ' ')} per group", "group",
                   f"{metric.replace('_', ' ')} (%)")  # fmt: skip


def counts_chart(summary: pd.DataFrame) -> go.Figure:
    """Images per split × group, stacked by label (from ``datasets.summarize``)."""
    title = "Images per split, group and label"
    if summary.empty:
        return _empty(title, "The dataset is empty.")
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
    return _layout(fig, title, "split / group", "images")


def forgotten_chart(rates: pd.DataFrame) -> go.Figure:
    """Share of each group a pruned model forgot (from ``views.forgotten``), in %."""
    title = "Share of each group the pruned model forgot"
    if rates.empty:
        return _empty(title, "No groups to show.")
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
    return _layout(fig, title, "group", "forgotten (% of the group)")


# --- Methods page: every (criterion, loss) of a sweep side by side -----------------------------


# criteria take the palette's colours the skin-tone groups do not use first, so a method is never
# mistaken for a group on the same page
METHOD_COLORS = ["#D55E00", "#CC79A7", "#000000", "#56B4E9", "#E69F00", "#009E73", "#0072B2"]


def _method_style(frame: pd.DataFrame) -> dict[str, dict]:
    """One colour per criterion, one dash and marker per loss, the same on all method charts."""
    criteria = sorted(frame["criterion"].unique())
    out = {}
    for method, crit, loss in (
        frame[["method", "criterion", "loss"]].drop_duplicates().itertuples(index=False)
    ):
        out[method] = {
            "color": METHOD_COLORS[criteria.index(crit) % len(METHOD_COLORS)],
            "dash": LOSS_DASH.get(loss, "solid"),
            "symbol": LOSS_SYMBOL.get(loss, "circle"),
        }
    return out


def _whiskers(d: pd.DataFrame, col: str) -> dict:
    return dict(
        type="data",
        symmetric=False,
        array=(d[f"{col}_high"] - d[col]).clip(lower=0),
        arrayminus=(d[col] - d[f"{col}_low"]).clip(lower=0),
        thickness=1.5,
    )


def _point_whisker(est: float, low: float, high: float) -> dict:
    return dict(type="data", symmetric=False, thickness=1, array=[max(high - est, 0)],
                arrayminus=[max(est - low, 0)])  # fmt: skip


def _level_axis(frame: pd.DataFrame) -> str:
    kinds = sorted(frame["level_kind"].unique())
    return " / ".join(kinds) + " (%)"


def methods_metric_chart(frame: pd.DataFrame, col: str, title: str, y_title: str) -> go.Figure:
    """One statistic of every method against the level, 95% paired-bootstrap whiskers.

    ``frame`` is :func:`fairprune.sweep.methods.methods_frame` (points)."""
    if frame.empty:
        return _empty(title, "No methods to compare yet: run a sweep with several criteria.")
    style = _method_style(frame)
    fig = go.Figure()
    for method, d in frame.groupby("method", sort=True):
        fig.add_trace(_method_line(d.sort_values("level"), method, style[method], col, y_title))
    return _layout(fig, title, _level_axis(frame), y_title)


def _method_line(d: pd.DataFrame, method: str, s: dict, col: str, what: str, **kw) -> go.Scatter:
    """One method's line of ``col`` against the level, with its 95% whiskers."""
    return go.Scatter(
        x=d["level"] * 100,
        y=d[col],
        mode="lines+markers",
        name=method,
        line=dict(color=s["color"], dash=s["dash"], width=3),
        marker=dict(symbol=s["symbol"], size=11),
        error_y=_whiskers(d, col),
        customdata=np.stack([d[f"{col}_low"], d[f"{col}_high"], d["seeds"]], axis=1),
        hovertemplate=(
            f"{method}<br>level %{{x:.0f}}%<br>{what} %{{y:.1f}} (95% CI "
            "%{customdata[0]:.1f} to %{customdata[1]:.1f}, %{customdata[2]} seeds)<extra></extra>"
        ),
        **kw,
    )


def methods_group_chart(frame: pd.DataFrame, groups: list[str]) -> go.Figure:
    """Per-group accuracy of every method against the level: one panel per group."""
    from plotly.subplots import make_subplots

    title = "Accuracy of each group vs sparsity, per method"
    if frame.empty:
        return _empty(title, "No methods to compare yet: run a sweep with several criteria.")
    style = _method_style(frame)
    fig = make_subplots(rows=1, cols=len(groups), subplot_titles=groups, shared_yaxes=True)
    for i, g in enumerate(groups, start=1):
        col = f"acc {g}"
        for method, d in frame.groupby("method", sort=True):
            trace = _method_line(d.sort_values("level"), method, style[method], col,
                                 f"{g} accuracy", legendgroup=method, showlegend=i == 1)  # fmt: skip
            fig.add_trace(trace, row=1, col=i)
    _layout(fig, title, "", "group accuracy (%)")
    fig.update_xaxes(title_text=_level_axis(frame))
    return fig


def methods_pareto_chart(frame: pd.DataFrame) -> go.Figure:
    """Accuracy vs gap at each level (one panel per level); the Pareto front is starred and
    joined. Whiskers are 95% intervals on both axes."""
    from plotly.subplots import make_subplots

    title = "Accuracy vs gap: the Pareto front at each level (★)"
    if frame.empty:
        return _empty(title, "No methods to compare yet: run a sweep with several criteria.")
    style = _method_style(frame)
    levels = sorted(frame["level"].unique())
    fig = make_subplots(
        rows=1, cols=len(levels), subplot_titles=[f"{lv:.0%}" for lv in levels], shared_yaxes=True
    )
    for i, lv in enumerate(levels, start=1):
        at = frame[frame["level"] == lv]
        front = at[at["pareto"]].sort_values("gap")
        fig.add_trace(
            go.Scatter(
                x=front["gap"],
                y=front["accuracy"],
                mode="lines",
                name="Pareto front",
                legendgroup="front",
                showlegend=i == 1,
                hoverinfo="skip",
                line=dict(color="#555555", width=1.5, dash="dot"),
            ),  # fmt: skip
            row=1,
            col=i,
        )
        for row in at.itertuples(index=False):
            s = style[row.method]
            fig.add_trace(
                go.Scatter(
                    x=[row.gap],
                    y=[row.accuracy],
                    mode="markers",
                    name=row.method,
                    legendgroup=row.method,
                    showlegend=i == 1,
                    marker=dict(
                        symbol="star" if row.pareto else s["symbol"],
                        size=18 if row.pareto else 12,
                        color=s["color"],
                        line=dict(width=1, color="#222222"),
                    ),
                    error_x=_point_whisker(row.gap, row.gap_low, row.gap_high),
                    error_y=_point_whisker(row.accuracy, row.accuracy_low, row.accuracy_high),
                    hovertemplate=(
                        f"{row.method} at {lv:.0%}<br>gap %{{x:.1f}} pp<br>accuracy %{{y:.1f}}%"
                        f"{'<br>on the Pareto front' if row.pareto else ''}<extra></extra>"
                    ),
                ),
                row=1,
                col=i,
            )
    _layout(fig, title, "", "overall accuracy (%)")
    fig.update_xaxes(title_text="gap, max − min group accuracy (pp)")
    return fig
