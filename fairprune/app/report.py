"""A self-contained HTML report for review meetings: charts (plotly inlined once, no network),
tables, configs, model hashes, dataset and date."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime

import pandas as pd
from plotly.offline import get_plotlyjs

from fairprune.app import charts
from fairprune.app.views import (
    LOSS_LABELS,
    actions_display,
    cells_overview,
    decisions_display,
    findings_display,
    gaps_table,
)
from fairprune.sweep.findings import SEED_NOTE
from fairprune.sweep.methods import methods_display, methods_frame

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;
color:#222;font-size:17px;line-height:1.45}
h1{font-size:2rem}h2{margin-top:2.2rem;border-bottom:2px solid #ddd;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:15px}
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.headline{font-size:1.3rem;background:#fff7e0;border-left:6px solid #E69F00;padding:.8rem 1rem}
.note{color:#555}pre{background:#f6f6f6;padding:.8rem;overflow:auto;font-size:13px}
"""


def _table(df: pd.DataFrame, pct: tuple[str, ...] = (), points: tuple[str, ...] = ()) -> str:
    df = df.copy()
    for col in df.columns:
        if col in points:  # already in points / percent: one decimal
            df[col] = df[col].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
        elif col in pct:
            df[col] = df[col].map(lambda v: "" if pd.isna(v) else f"{v * 100:.1f}")
        elif pd.api.types.is_float_dtype(df[col]):
            df[col] = df[col].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
    return df.to_html(index=False, escape=True, border=0)


def build_report(
    long: pd.DataFrame,
    cells: pd.DataFrame,
    *,
    sweeps: pd.DataFrame | None = None,
    dataset_title: str = "",
    dataset_description: str = "",
    synthetic: bool = False,
    title: str = "fairprune audit report",
    generated: datetime | None = None,
    headline: str = "",
    findings: pd.DataFrame | None = None,
    decisions: pd.DataFrame | None = None,
    methods: dict | None = None,
    actions: pd.DataFrame | None = None,
) -> str:
    """Render the report as one HTML string.

    Parameters
    ----------
    long : DataFrame
        ``ResultsStore.export_long`` rows to report.
    cells : DataFrame
        ``ResultsStore.cells`` rows (configs, hashes, latency).
    sweeps : DataFrame, optional
        ``ResultsStore.sweeps`` rows (configs of the sweeps).
    dataset_title, dataset_description : str
    synthetic : bool
        Adds a prominent note that the data is synthetic.

    headline : str
        The sweep's headline sentence (``fairprune.sweep.findings.summary``).
    findings : DataFrame, optional
        ``findings_frame`` of the sweep: gaps with paired intervals and verdicts.
    decisions : DataFrame, optional
        ``ResultsStore.decisions`` rows: the review decisions on the sweep and its models, listed
        in full (append-only history, oldest first).
    methods : dict, optional
        ``fairprune.sweep.methods.methods_table`` of the sweep: the Methods page's table and
        Pareto chart, included when the sweep compares more than one method.
    actions : DataFrame, optional
        ``ResultsStore.actions`` rows: the operator actions (sweeps started and cancelled,
        models added and removed), listed newest first (``actions_section``).

    Returns
    -------
    str
        A complete HTML document with no external references.
    """
    generated = generated or datetime.now(UTC)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style>",
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='note'>Generated {generated:%Y-%m-%d %H:%M UTC} by fairprune. Dataset: "
        f"<b>{html.escape(dataset_title or ', '.join(sorted(long['dataset'].dropna().unique())))}</b>. "
        f"{html.escape(dataset_description)}</p>",
    ]
    if synthetic:
        parts.append(
            "<p class='headline'>The data in this report is SYNTHETIC (SynthDerm): it shows how the "
            "tool works and says nothing about any real model or patient.</p>"
        )
    if headline:
        parts.append(f"<p class='headline'>{html.escape(headline)}</p>")
    if decisions is not None:
        parts.append("<h2>Review decisions</h2>")
        if decisions.empty:
            parts.append("<p class='note'>No review decision has been recorded yet.</p>")
        else:
            parts.append(
                "<p class='note'>Every decision recorded on this sweep and its models, oldest "
                "first; decisions are never changed or deleted, a later one supersedes.</p>"
            )
            parts.append(_table(decisions_display(decisions, cells, sweeps)))
    if findings is not None and not findings.empty:
        parts.append(
            "<h2>Gaps with paired 95% intervals</h2><p class='note'>Gap = the mean over seeds of "
            "each model's max − min group accuracy, in points. Differences carry a paired basic "
            "bootstrap interval (same test resample for both methods) and the smallest difference "
            "the run could have detected (mde, 80% power); wider/narrower only when the interval "
            f"excludes 0. {html.escape(SEED_NOTE)}</p>"
        )
        shown = findings_display(findings)
        floats = tuple(c for c in shown.columns if pd.api.types.is_float_dtype(shown[c]))
        parts.append(_table(shown, points=floats))
    if methods is not None and len({r["method"] for r in methods["methods"]}) > 1:
        parts.append(
            "<h2>Methods side by side</h2><p class='note'>Every (criterion, loss) of the sweep: "
            "same dense model, calibration data, fine-tuning epochs and seeds. Estimate [95% "
            "paired bootstrap interval], % or points. Δgap vs CE = this loss − cross-entropy on "
            f"the same pruned models; Δgap vs {html.escape(methods['reference'])} = this "
            "criterion − the reference with the same loss. ★ = on the Pareto front (accuracy vs "
            "gap) at its level. Unstructured levels are weight sparsity: FLOPs and latency do "
            "not fall on dense kernels.</p>"
        )
        parts.append(_table(methods_display(methods)))
        frame = methods_frame(methods)
        parts.append(
            charts.methods_pareto_chart(frame).to_html(full_html=False, include_plotlyjs=False)
        )
    figs = [
        charts.accuracy_vs_reduction(long),
        charts.gap_vs_reduction(long),
        charts.disparity_chart(long),
        charts.tradeoff_chart(long),
    ]
    parts.append("<h2>Charts</h2>")
    for fig in figs:
        parts.append(fig.to_html(full_html=False, include_plotlyjs=False))
    gaps = gaps_table(long)
    if not gaps.empty:
        gaps = gaps.assign(loss=gaps["loss"].map(lambda v: LOSS_LABELS.get(v, v)))
        parts.append(
            "<h2>Gap per level</h2><p class='note'>One row per criterion × loss × level, seeds "
            "averaged; the gap is the mean of the seeds' own gaps (the same number as above), "
            "gap_seed_min/max their range. Accuracies and gaps in %.</p>"
        )
        parts.append(
            _table(
                gaps,
                pct=(
                    "flops_reduction",
                    "target_reduction",
                    "overall_accuracy",
                    "gap",
                    "gap_seed_min",
                    "gap_seed_max",
                    "worst_accuracy",
                ),
            )  # fmt: skip
        )
    groups = long[long["group"] != "overall"]
    if not groups.empty:
        per_group = groups[
            [
                "model",
                "criterion",
                "loss",
                "target_reduction",
                "flops_reduction",
                "group",
                "n",
                "accuracy",
                "accuracy_low",
                "accuracy_high",
            ]  # fmt: skip
        ]
        parts.append("<h2>Per-group accuracy with 95% bootstrap intervals</h2>")
        parts.append(
            _table(
                per_group,
                pct=(
                    "target_reduction",
                    "flops_reduction",
                    "accuracy",
                    "accuracy_low",
                    "accuracy_high",
                ),
            )  # fmt: skip
        )
    if not cells.empty:
        parts.append("<h2>Models</h2>")
        models = cells[["model", "model_hash", "criterion", "loss", "target_reduction",
                        "flops_reduction", "macs", "params", "file_size", "latency_ms"]].copy()  # fmt: skip
        models["model_hash"] = models["model_hash"].str[:16]
        parts.append(_table(cells_overview(cells)))
        parts.append("<p class='note'>Content hashes (SHA-256 of the weights, first 16 hex):</p>")
        parts.append(_table(models[["model", "model_hash", "file_size"]]))
    if sweeps is not None and not sweeps.empty:
        parts.append("<h2>Configurations</h2>")
        for _, s in sweeps.iterrows():
            cfg = json.dumps(json.loads(s["config_json"]), indent=1)
            parts.append(
                f"<h3>{html.escape(str(s['name'] or s['sweep_id']))} ({html.escape(s['sweep_id'])})</h3>"
                f"<pre>{html.escape(cfg)}</pre>"
            )
    if actions is not None:
        parts.append(actions_section(actions))
    parts.append("</body></html>")
    return "\n".join(parts)


def actions_section(actions: pd.DataFrame) -> str:
    """The report's "Operator actions" section: who started or cancelled a sweep, added or
    removed a model, and when (append-only, newest first)."""
    head = (
        "<h2>Operator actions</h2><p class='note'>Sweeps started and cancelled, models added and "
        "removed: who and when, newest first; the log is append-only.</p>"
    )
    if actions.empty:
        return head + "<p class='note'>No operator action has been recorded yet.</p>"
    return head + _table(actions_display(actions))


def with_actions(report: str, actions: pd.DataFrame) -> str:
    """A built report (``build_report`` without ``actions``) with the operator actions added at
    its end: the log changes more often than the report's cached body."""
    end = report.rfind("</body></html>")
    if end < 0:
        return report + actions_section(actions)
    return report[:end] + actions_section(actions) + "\n" + report[end:]
