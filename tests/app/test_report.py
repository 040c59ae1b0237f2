"""report: one self-contained HTML file (plotly inlined once, no network) with the store's numbers."""

import json
import re
from datetime import UTC, datetime

import pandas as pd
from plotly.offline import get_plotlyjs

from fairprune.app import views
from fairprune.app.report import build_report
from tests.app.test_views import CELLS, make_long


def _cells(long: pd.DataFrame) -> pd.DataFrame:
    first = long.drop_duplicates("cell_key")
    overall = long[long["group"] == "overall"].set_index("cell_key")["accuracy"]
    return first.assign(
        accuracy=first["cell_key"].map(overall), gap=0.0, std_delta=0.0, max_psi=0.0,
        file_size=2048, latency_ms=1.5,
    )[["cell_key", "model", "model_hash", "criterion", "loss", "seed", "target_reduction",
       "flops_reduction", "accuracy", "gap", "std_delta", "max_psi", "macs", "params",
       "file_size", "latency_ms"]]  # fmt: skip


FINDINGS = pd.DataFrame(
    [{"baseline": "taylor:ce", "method": "pw_taylor:pw", "level": 0.9375,
      "axis": "FLOPs reduction", "reached": 0.94, "seeds": 3, "gap_dense": 3.0,
      "gap_dense_low": 1.0, "gap_dense_high": 4.5, "gap_baseline": 7.0, "gap_method": 6.0,
      "baseline_vs_dense": 4.0, "baseline_vs_dense_low": 1.0, "baseline_vs_dense_high": 7.0,
      "verdict_baseline": "wider", "mde_baseline_vs_dense": 4.2, "method_vs_baseline": -1.0,
      "method_vs_baseline_low": -3.0, "method_vs_baseline_high": 1.0,
      "verdict_method": "no_difference", "mde_method_vs_baseline": 2.8,
      "hurt_by_baseline": "dark", "worst_group": "dark", "worst_drop": 6.1}]
)  # fmt: skip


def test_report_is_self_contained_and_carries_the_numbers():
    long = make_long(CELLS)
    sweeps = pd.DataFrame(
        {"sweep_id": ["sw-1"], "name": ["demo"], "config_json": [json.dumps({"criteria": ["l1"]})],
         "created": [0.0], "cells": [5]}
    )  # fmt: skip
    html = build_report(
        long, _cells(long), sweeps=sweeps, dataset_title="SynthDerm (synthetic)", synthetic=True,
        generated=datetime(2026, 1, 2, 3, 4, tzinfo=UTC), headline="Pruning widens it.",
        findings=FINDINGS,
    )  # fmt: skip
    assert html.count(get_plotlyjs()) == 1  # the library inlined exactly once
    assert html.count('class="plotly-graph-div"') == 4  # the four sweep charts
    assert not re.search(r"""src=["']https?://""", html)  # nothing fetched from a network
    assert "cdn.plot.ly" not in html.replace(get_plotlyjs(), "")
    assert "<p class='headline'>Pruning widens it.</p>" in html
    # the findings table, worded: interval in brackets, verdict only when it excludes 0
    row = "".join(
        rf"\s*<td>{re.escape(str(c))}</td>" for c in views.findings_display(FINDINGS).iloc[0]
    )
    assert re.search(rf"<tr>{row}\s*</tr>", html)
    assert "+4.0 [+1.0, +7.0]" in html and "cannot tell" in html
    assert "Generated 2026-01-02 03:04 UTC" in html
    assert "SYNTHETIC" in html
    assert f"{1:064x}"[:16] in html  # model content hashes
    assert "&quot;criteria&quot;" in html  # the sweep's configuration
    # the gap table in %: CE at the highest level has a 17.0 pp gap
    cells = ["l1", "cross-entropy", "94.0", "93.8", "78.0", "17.0", "17.0", "17.0", "1", "dark",
             "light", "68.0"]  # fmt: skip
    row = "".join(rf"\s*<td>{c}</td>" for c in cells)
    assert re.search(rf"<tr>{row}\s*</tr>", html)


def test_report_on_real_data_has_no_synthetic_banner():
    long = make_long(CELLS)
    html = build_report(long, _cells(long))
    assert "SYNTHETIC" not in html
    assert "synthderm" in html  # the dataset named from the table when no title is given


def test_report_lists_every_decision_oldest_first():
    from tests.app.test_views import DECISIONS

    long = make_long(CELLS)
    sweeps = pd.DataFrame({"sweep_id": ["sw-1"], "name": ["demo"], "config_json": ["{}"],
                           "created": [0.0], "cells": [5]})  # fmt: skip
    html = build_report(long, _cells(long), sweeps=sweeps, decisions=DECISIONS)
    assert "<h2>Review decisions</h2>" in html
    rows = re.findall(r"<tr>\s*<td>(2026-03-04 [0-9:]+)</td>\s*<td>([^<]+)</td>\s*<td>([^<]+)</td>"
                      r"\s*<td>([^<]+)</td>", html)  # fmt: skip
    assert rows == [
        ("2026-03-04 05:06:07", "sweep · demo", "needs work", "Ana"),
        ("2026-03-04 05:10:00", "model · m3", "reject", "Bo"),
        ("2026-03-04 05:20:00", "model · m3", "accept", "Bo"),
        ("2026-03-04 05:30:00", "sweep · demo", "accept", "Ana"),
    ]
    assert "one more seed" in html
    empty = build_report(long, _cells(long), decisions=DECISIONS.iloc[:0])
    assert "No review decision has been recorded yet." in empty
    assert "Review decisions" not in build_report(long, _cells(long))  # not asked for


ACTIONS = pd.DataFrame(
    {"id": [1, 2], "created": ["2026-03-04T05:06:07Z", "2026-03-04T06:00:00Z"],
     "actor": ["Otto", "Otto"], "actor_email": ["otto@example.org", "otto@example.org"],
     "action": ["sweep started", "model removed"], "subject": ["sw-1", "m3"],
     "detail": ["4 cells", "m3.safetensors, m3.json"]}
)  # fmt: skip


def test_report_lists_operator_actions_newest_first_with_who_signed_them():
    from fairprune.app.report import with_actions

    long = make_long(CELLS)
    decisions = _signed_decisions()
    html = build_report(long, _cells(long), decisions=decisions, actions=ACTIONS)
    assert html.endswith("</body></html>")
    assert html.index("<h2>Operator actions</h2>") > html.index("<h2>Review decisions</h2>")
    cell = r"\s*<td>([^<]+)</td>"
    rows = re.findall(r"<tr>\s*<td>(2026-03-04 [0-9:]+)</td>\s*<td>(sweep started|model removed)"
                      rf"</td>{cell}{cell}{cell}", html)  # fmt: skip
    assert rows == [
        ("2026-03-04 06:00:00", "model removed", "m3", "Otto", "otto@example.org"),
        ("2026-03-04 05:06:07", "sweep started", "sw-1", "Otto", "otto@example.org"),
    ]
    assert "<td>rhea@example.org</td>" in html  # the decision's signer
    # the page adds the log to a built (cached) report at its end
    built = build_report(long, _cells(long), decisions=decisions)
    assert "Operator actions" not in built
    added = with_actions(built, ACTIONS.iloc[:0])
    assert added.endswith("</body></html>") and "No operator action has been recorded yet." in added


def _signed_decisions() -> pd.DataFrame:
    """The views test's decisions; one signed in (schema 4's reviewer_email)."""
    from tests.app.test_views import DECISIONS

    return DECISIONS.assign(reviewer_email=["", "", "rhea@example.org", ""])


def test_report_carries_the_methods_table(methods_store):
    from fairprune.sweep.methods import methods_display, methods_table
    from fairprune.sweep.results import ResultsStore

    store = ResultsStore(methods_store["results"])
    long, cells = store.export_long(), store.cells()
    table = methods_table(store, n_boot=200)
    html = build_report(long, cells, methods=table)
    assert "Methods side by side" in html
    shown = methods_display(table)
    for cell in shown["gap (max − min, points)"]:
        assert cell in html
    assert html.count("★") >= int((shown["Pareto front"] == "★").sum())
    assert "Methods side by side" not in build_report(long, cells)  # not asked for
