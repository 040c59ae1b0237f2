"""One number, one meaning: one store read through the CLI, every page and the report.

The fixture is a real paper-style sweep (Taylor + CE against PW-Taylor + PW, two seeds, two
levels) on the shared tiny dense model. The gaps are computed here by hand from the stored
per-sample predictions (the mean over seeds of each seed's max − min group accuracy) and every
surface must state exactly them. (tests/app/test_views.py pins a case where the gap of the
seed-averaged accuracies, the rule some pages used before, gives another number.)
"""

import json
import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from fairprune.app import views
from fairprune.cli import main
from fairprune.intervals import group_accuracy, seed_gap
from fairprune.sweep.findings import correct_matrix
from fairprune.sweep.methods import methods_table
from fairprune.sweep.results import ResultsStore
from tests.app.test_app_pages import _run as run_page
from tests.app.test_app_pages import _texts
from tests.conftest import _point_at


@pytest.fixture(scope="module")
def paper_store(demo_store, tmp_path_factory):
    from fairprune.config import FinetuneConfig, PruneConfig, SweepConfig
    from fairprune.sweep.runner import run_sweep

    base = tmp_path_factory.mktemp("paper")
    results = base / "results.sqlite"
    config = SweepConfig(
        dataset="synthderm", dataset_options={"limit": 600, "test_limit": 300},
        dense_model=demo_store["dense"].path, criteria=("taylor", "pw_taylor"),
        losses=("ce", "pw"), paired=True, reductions=(0.5, 0.9), seeds=(0, 1),
        finetune=FinetuneConfig(epochs=1), prune=PruneConfig(tolerance=0.04), n_boot=20,
        name="paper fixture",
    )  # fmt: skip
    sweep_id = run_sweep(config, store=ResultsStore(results), models_dir=base / "models")
    return {"models": base / "models", "results": results, "data": base / "data",
            "sweep_id": sweep_id, "dense": demo_store["dense"]}  # fmt: skip


@pytest.fixture
def paper_env(paper_store, monkeypatch):
    return _point_at(paper_store, monkeypatch)


def _truth(store, sweep_id):
    """The gaps by hand from the stored per-sample predictions: dense, and each method at 90%."""
    cells = store.cells(sweep_id)
    out = {}
    dense_key = cells[cells["criterion"] == "dense"]["cell_key"].iloc[0]
    preds = store.predictions(list(cells["cell_key"]))
    d, groups, _ = correct_matrix(preds, [dense_key])
    acc = group_accuracy(d, groups)
    out["dense"] = float(acc.max() - acc.min()) * 100
    for crit, loss in (("taylor", "ce"), ("pw_taylor", "pw")):
        at = cells[(cells["criterion"] == crit) & (cells["loss"] == loss)
                   & (cells["target_reduction"] == 0.9)].sort_values("seed")  # fmt: skip
        acc = group_accuracy(correct_matrix(preds, list(at["cell_key"]))[0], groups)
        per_seed = acc.max(axis=1) - acc.min(axis=1)
        out[f"{crit}:{loss}"] = float(per_seed.mean()) * 100
        assert seed_gap(acc) * 100 == pytest.approx(out[f"{crit}:{loss}"], abs=1e-9)
    return out


def _run(page: str) -> AppTest:
    return run_page(page, timeout=240)


def test_one_gap_everywhere(paper_env, capsys):
    store = ResultsStore(paper_env["results"])
    sweep_id = paper_env["sweep_id"]
    truth = _truth(store, sweep_id)
    base, meth = truth["taylor:ce"], truth["pw_taylor:pw"]

    # the CLI: summary --json names the paper's pair and states the same gaps
    assert main(["summary", "--results", str(paper_env["results"]), "--json", "--n-boot",
                 "200"]) == 0  # fmt: skip
    head = json.loads(capsys.readouterr().out)
    assert head["baseline"] == {"criterion": "taylor", "loss": "ce"}
    assert head["method"] == {"criterion": "pw_taylor", "loss": "pw"}
    assert head["gap_dense"] == pytest.approx(truth["dense"], abs=1e-9)
    assert head["gap_ce"] == pytest.approx(base, abs=1e-9)
    assert head["gap_pw"] == pytest.approx(meth, abs=1e-9)
    assert head["pw_vs_ce"]["estimate"] == pytest.approx(meth - base, abs=1e-9)
    for iv in (head["ce_vs_dense"], head["pw_vs_ce"], head["gap_dense_interval"]):
        assert iv["low"] <= iv["estimate"] <= iv["high"]
    # the CLI's table: every level, both comparisons
    assert main(["summary", "--results", str(paper_env["results"]), "--n-boot", "200"]) == 0
    text = capsys.readouterr().out
    assert f"{base:.1f}" in text and f"{meth:.1f}" in text and "pw_taylor + pw" in text

    # the Sparsity sweep's gap chart, its hovers and the report's table: views.gaps_table
    gaps = views.gaps_table(store.export_long(sweep_id)).set_index(
        ["criterion", "loss", "target_reduction"]
    )
    assert gaps.loc[("taylor", "ce", 0.9), "gap"] * 100 == pytest.approx(base, abs=1e-9)
    assert gaps.loc[("pw_taylor", "pw", 0.9), "gap"] * 100 == pytest.approx(meth, abs=1e-9)

    # the Methods page and the report's methods table
    table = methods_table(store, sweep_id, n_boot=100)
    by = {(r["method"], r["level"]): r for r in table["methods"]}
    assert by[("taylor + ce", 0.9)]["gap"]["estimate"] == pytest.approx(base, abs=1e-9)
    assert by[("pw_taylor + pw", 0.9)]["gap"]["estimate"] == pytest.approx(meth, abs=1e-9)
    assert table["dense"]["gap"]["estimate"] == pytest.approx(truth["dense"], abs=1e-9)

    # the report (HTML): the findings table carries both gaps, rounded as shown
    from fairprune.app.report import build_report
    from fairprune.sweep.findings import findings_frame, level_findings

    frame = findings_frame(level_findings(store, sweep_id, n_boot=200))
    html = build_report(store.export_long(sweep_id), store.cells(sweep_id), findings=frame)
    shown = views.findings_display(frame).iloc[-1]
    assert shown["gap taylor + ce"] == round(base, 1)
    assert shown["gap pw_taylor + pw"] == round(meth, 1)
    assert re.search(rf"<td>{base:.1f}</td>", html) and re.search(rf"<td>{meth:.1f}</td>", html)


def test_one_gap_on_the_pages(paper_env):
    store = ResultsStore(paper_env["results"])
    sweep_id = paper_env["sweep_id"]
    truth = _truth(store, sweep_id)
    base, meth = truth["taylor:ce"], truth["pw_taylor:pw"]

    # the Overview's headline: the paper's comparison, with the same numbers
    at = _run("app.py")
    text = _texts(at)
    assert "taylor pruning + cross-entropy fine-tuning" in text
    assert "pw_taylor pruning + PW-loss fine-tuning" in text
    assert f"{base:.1f}" in text and f"{meth:.1f}" in text

    # the Sparsity sweep page: the findings table and the gap chart
    at = _run("pages/4_Sparsity_sweep.py")
    frames = [d.value for d in at.dataframe]
    (findings,) = [f for f in frames if "gap taylor + ce" in f.columns]
    top = findings.iloc[-1]
    assert top["gap taylor + ce"] == pytest.approx(round(base, 1))
    assert top["gap pw_taylor + pw"] == pytest.approx(round(meth, 1))

    # the Audit page's methods A/B view (every seed of the sweep together)
    at = _run("pages/3_Audit.py")
    frames = [d.value for d in at.dataframe]
    (ab,) = [f for f in frames if "gap pw_taylor + pw" in f.columns]
    assert ab.iloc[-1]["gap taylor + ce"] == pytest.approx(round(base, 1))
    assert ab.iloc[-1]["gap pw_taylor + pw"] == pytest.approx(round(meth, 1))

    # the Methods page
    at = _run("pages/7_Methods.py")
    assert not at.error, [e.value for e in at.error]
    joined = " ".join(str(v) for f in at.dataframe for v in np.ravel(f.value.to_numpy()))
    assert f"{base:.1f}" in joined and f"{meth:.1f}" in joined
