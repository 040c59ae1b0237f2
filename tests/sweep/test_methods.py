"""Methods side by side: estimates against fairlearn-based references, intervals against plain
loops, the Pareto front by hand, ``summary --methods --json``, and a real sweep of FairGRAPE,
FairPrune and constrained fine-tuning through the ``sweep`` command."""

import json

import numpy as np
import pytest

from fairprune.cli import main
from fairprune.intervals import paired_gap_difference
from fairprune.metrics import group_metrics, pruning_disparity
from fairprune.sweep.methods import methods_display, methods_frame, methods_table
from fairprune.sweep.results import ResultsStore
from tests.sweep.test_findings import GROUPS, _preds, _write

N_PER = 400
SEEDS = (0, 1, 2)
# (criterion, loss) -> per-group correct rates at level 0.9 (0.5 is 0.02 better everywhere)
RATES = {
    ("unstructured", "ce"): [0.88, 0.86, 0.70],  # wide gap
    ("unstructured", "pw"): [0.87, 0.86, 0.78],
    ("fairgrape", "ce"): [0.86, 0.85, 0.80],
    ("fairgrape", "constrained"): [0.84, 0.84, 0.83],  # narrow gap, lower accuracy
    ("fairprune", "ce"): [0.80, 0.78, 0.66],  # dominated by unstructured + ce
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(1)
    groups = np.repeat([0, 1, 2], N_PER)
    y = rng.integers(0, 2, len(groups))
    s = ResultsStore(tmp_path_factory.mktemp("methods") / "r.sqlite")
    s.register_sweep("sw-test", {}, name="methods")
    _write(s, "dense", _preds([0.9, 0.9, 0.88], rng, groups, y),
           criterion="dense", loss="dense", seed=None, level=0.0)  # fmt: skip
    for (crit, loss), rates in RATES.items():
        for level, bonus in ((0.5, 0.02), (0.9, 0.0)):
            for seed in SEEDS:
                p = _preds(np.asarray(rates) + bonus, rng, groups, y)
                _write(s, f"{crit}-{loss}-{level}-{seed}", p, criterion=crit, loss=loss,
                       seed=seed, level=level)  # fmt: skip
    return s


def _correct(store, key):
    return store.predictions([key])[key].correct


def _table(store, key):
    p = store.predictions([key])[key]
    names = np.asarray(GROUPS, dtype=object)[p.groups]
    return group_metrics(p.y_true, p.y_pred, sensitive_features=names, n_boot=0)


def _row(table, method, level):
    return next(r for r in table["methods"] if r["method"] == method and r["level"] == level)


def test_estimates_match_fairlearn_group_metrics(store):
    table = methods_table(store, "sw-test", n_boot=50)
    assert table["reference"] == "unstructured" and table["groups"] == GROUPS
    assert len(table["methods"]) == 2 * len(RATES)
    dense = _table(store, "dense")
    for crit, loss in RATES:
        row = _row(table, f"{crit} + {loss}", 0.9)
        gaps, accs, psis, groups = [], [], [], []
        for seed in SEEDS:
            t = _table(store, f"{crit}-{loss}-0.9-{seed}")
            acc = t.set_index("group")["accuracy"]
            gaps.append(acc[GROUPS].max() - acc[GROUPS].min())
            accs.append(acc["overall"])
            psis.append(pruning_disparity(dense, t)["max_psi"])
            groups.append(acc[GROUPS].to_numpy())
        assert row["gap"]["estimate"] == pytest.approx(100 * np.mean(gaps), abs=1e-9)
        assert row["accuracy"]["estimate"] == pytest.approx(100 * np.mean(accs), abs=1e-9)
        assert row["max_psi"]["estimate"] == pytest.approx(100 * np.mean(psis), abs=1e-9)
        for g, est in zip(GROUPS, np.mean(groups, axis=0), strict=True):
            assert row["group_accuracy"][g]["estimate"] == pytest.approx(100 * est, abs=1e-9)
        for stat in ("gap", "accuracy", "max_psi"):
            iv = row[stat]
            assert iv["low"] <= iv["estimate"] <= iv["high"], (crit, loss, stat)


def test_differences_are_the_shared_paired_bootstrap(store):
    """Δgap vs CE and vs the reference criterion equal the project's paired_gap_difference."""
    table = methods_table(store, "sw-test", n_boot=300, seed=4)
    keys = {m: [f"{m[0]}-{m[1]}-0.9-{s}" for s in SEEDS] for m in RATES}
    mats = {m: np.stack([_correct(store, k) for k in ks]) for m, ks in keys.items()}
    groups = store.predictions(["dense"])["dense"].groups
    row = _row(table, "unstructured + pw", 0.9)
    ref = paired_gap_difference(mats[("unstructured", "ce")], mats[("unstructured", "pw")],
                                groups, n_boot=300, seed=4)  # fmt: skip
    assert row["gap_vs_ce"] == pytest.approx(ref.as_dict(100), abs=1e-9)
    assert row["gap_vs_reference"] is None  # it is the reference criterion
    row = _row(table, "fairgrape + ce", 0.9)
    ref = paired_gap_difference(mats[("unstructured", "ce")], mats[("fairgrape", "ce")],
                                groups, n_boot=300, seed=4)  # fmt: skip
    assert row["gap_vs_reference"] == pytest.approx(ref.as_dict(100), abs=1e-9)
    assert row["gap_vs_ce"] is None
    # a 10-point narrower gap on 400 images per group and 3 seeds: the interval excludes 0
    assert row["verdict_vs_reference"] == "narrower" and ref.high < 0
    row = _row(table, "fairgrape + constrained", 0.9)
    assert row["verdict_vs_ce"] in ("narrower", "no_difference")
    assert row["gap_vs_reference"] is None  # no unstructured + constrained in the sweep


def test_max_psi_interval_matches_a_plain_loop(store):
    """The max ψ interval of one method, recomputed replicate by replicate with plain loops."""
    n_boot, seed = 200, 9
    table = methods_table(store, "sw-test", n_boot=n_boot, seed=seed)
    row = _row(table, "fairprune + ce", 0.5)
    p = store.predictions(["dense"])["dense"]
    groups = p.groups
    dense = p.correct
    arms = [np.stack([_correct(store, f"{c}-{lo}-0.5-{s}") for s in SEEDS]) for c, lo in RATES]
    mine = list(RATES).index(("fairprune", "ce"))
    rng = np.random.default_rng(seed)
    pos = [np.flatnonzero(groups == g) for g in range(3)]
    draws = [rng.integers(0, len(q), size=(n_boot, len(q))) for q in pos]
    seed_draw = rng.integers(0, 3, size=(n_boot, 3))  # shared by every 3-seed arm
    weights = np.array([len(q) for q in pos]) / len(groups)
    values = []
    for r in range(n_boot):
        acc_d = np.array([dense[q[draws[g][r]]].mean() for g, q in enumerate(pos)])
        psis = []
        for s in seed_draw[r]:
            acc = np.array([arms[mine][s][q[draws[g][r]]].mean() for g, q in enumerate(pos)])
            delta = acc_d - acc
            psis.append(max(delta - weights @ delta))
        values.append(np.mean(psis))
    q_lo, q_hi = np.quantile(values, [0.025, 0.975])
    est = row["max_psi"]["estimate"] / 100
    # the basic bootstrap interval [2θ̂ − q_hi, 2θ̂ − q_lo], holding its estimate
    assert row["max_psi"]["low"] == pytest.approx(100 * min(2 * est - q_hi, est), abs=1e-9)
    assert row["max_psi"]["high"] == pytest.approx(100 * max(2 * est - q_lo, est), abs=1e-9)


def test_pareto_front_by_hand(store):
    table = methods_table(store, "sw-test", n_boot=50)
    for level in (0.5, 0.9):
        rows = [r for r in table["methods"] if r["level"] == level]
        pts = {r["method"]: (r["accuracy"]["estimate"], r["gap"]["estimate"]) for r in rows}
        for r in rows:
            a, g = pts[r["method"]]
            beaten = any(
                (a2 >= a and g2 <= g and (a2 > a or g2 < g))
                for m, (a2, g2) in pts.items()
                if m != r["method"]
            )
            assert r["pareto"] is (not beaten)
        # fairprune + ce is worse than unstructured + ce on both axes by construction
        assert not _row(table, "fairprune + ce", level)["pareto"]
        assert _row(table, "fairgrape + constrained", level)["pareto"]  # the smallest gap


def test_frame_display_and_reference_choice(store):
    table = methods_table(store, "sw-test", n_boot=50, reference="fairgrape")
    frame = methods_frame(table)
    assert len(frame) == 10 and set(frame["level_kind"]) == {"weight sparsity"}
    assert {"acc dark", "acc dark_low", "gap_vs_reference_high", "pareto"} <= set(frame.columns)
    shown = methods_display(table)
    assert "Δgap vs fairgrape" in shown.columns
    r = shown[(shown["method"] == "unstructured + ce") & (shown["level"].str.startswith("90%"))]
    est = _row(table, "unstructured + ce", 0.9)["gap_vs_reference"]
    assert r.iloc[0]["Δgap vs fairgrape"].startswith(f"{est['estimate']:+.1f} [")
    with pytest.raises(Exception, match="has no criterion 'taylor'"):
        methods_table(store, "sw-test", reference="taylor")


def test_summary_methods_cli(store, capsys):
    args = ["summary", "--results", str(store.path), "--sweep", "sw-test", "--methods",
            "--n-boot", "100"]  # fmt: skip
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == json.loads(json.dumps(methods_table(store, "sw-test", n_boot=100)))
    assert list(out) == ["sweep_id", "reference", "groups", "seeds", "dense", "methods"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "fairgrape + constrained" in text and "reference criterion unstructured" in text


def test_fairgrape_fairprune_and_constrained_run_through_sweep(methods_store):
    """The three published methods through the ``sweep`` command on SynthDerm (the fixture runs
    ``python -m fairprune sweep --criteria unstructured fairgrape fairprune --losses ce pw
    constrained --levels 0.5 0.9``), then compared."""
    store = ResultsStore(methods_store["results"])
    cells = store.cells()
    pruned = cells[cells["criterion"] != "dense"]
    assert sorted(set(zip(pruned["criterion"], pruned["loss"], pruned["target_reduction"],
                          strict=True))) == [
        (c, loss, lv)
        for c in ("fairgrape", "fairprune", "unstructured")
        for loss in ("ce", "constrained", "pw")
        for lv in (0.5, 0.9)
    ]  # fmt: skip
    # weight sparsity reached (zeros in place); FLOPs do not fall on dense kernels
    for level, at in pruned.groupby("target_reduction"):
        assert (at["weight_sparsity"] >= level - 0.05).all(), at[["criterion", "weight_sparsity"]]
    assert (pruned["flops_reduction"].abs() < 1e-9).all()
    table = methods_table(store, n_boot=100)
    assert len(table["methods"]) == 18
    assert all(r["level_kind"] == "weight sparsity" for r in table["methods"])
    for level in (0.5, 0.9):
        assert any(r["pareto"] for r in table["methods"] if r["level"] == level)
    # the constrained and PW rows are compared with CE on the same pruned models
    row = _row(table, "fairgrape + constrained", 0.9)
    assert row["gap_vs_ce"] is not None and row["gap_vs_reference"] is not None
