"""The Methods page's charts: every (criterion, loss) of a sweep side by side, with 95%
paired-bootstrap whiskers, from :func:`fairprune.sweep.methods.methods_frame`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fairprune.app.chart_style import LOSS_DASH, LOSS_SYMBOL, empty_figure, layout

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
        return empty_figure(title, "No methods to compare yet: run a sweep with several criteria.")
    style = _method_style(frame)
    fig = go.Figure()
    for method, d in frame.groupby("method", sort=True):
        fig.add_trace(_method_line(d.sort_values("level"), method, style[method], col, y_title))
    return layout(fig, title, _level_axis(frame), y_title)


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
        return empty_figure(title, "No methods to compare yet: run a sweep with several criteria.")
    style = _method_style(frame)
    fig = make_subplots(rows=1, cols=len(groups), subplot_titles=groups, shared_yaxes=True)
    for i, g in enumerate(groups, start=1):
        col = f"acc {g}"
        for method, d in frame.groupby("method", sort=True):
            trace = _method_line(d.sort_values("level"), method, style[method], col,
                                 f"{g} accuracy", legendgroup=method, showlegend=i == 1)  # fmt: skip
            fig.add_trace(trace, row=1, col=i)
    layout(fig, title, "", "group accuracy (%)")
    fig.update_xaxes(title_text=_level_axis(frame))
    return fig


def methods_pareto_chart(frame: pd.DataFrame) -> go.Figure:
    """Accuracy vs gap at each level (one panel per level); the Pareto front is starred and
    joined. Whiskers are 95% intervals on both axes."""
    from plotly.subplots import make_subplots

    title = "Accuracy vs gap: the Pareto front at each level (★)"
    if frame.empty:
        return empty_figure(title, "No methods to compare yet: run a sweep with several criteria.")
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
    layout(fig, title, "", "overall accuracy (%)")
    fig.update_xaxes(title_text="gap, max − min group accuracy (pp)")
    return fig
