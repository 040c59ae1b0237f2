"""Findings: interval-backed words on synthetic stores, and ``summary --json``."""

import json

import numpy as np
import pandas as pd
import pytest

from fairprune.cli import main
from fairprune.evaluate import Predictions
from fairprune.intervals import arm_replicates, gap_difference, mde, paired_gap_difference
from fairprune.metrics import group_metrics
from fairprune.sweep.findings import ERR_NO_CRITERION, headline, level_findings, summary
from fairprune.sweep.pairing import (
    ERR_METHOD_SYNTAX,
    ERR_NO_METHOD,
    ERR_SAME_METHOD,
    Method,
    default_pair,
)
from fairprune.sweep.results import ResultsStore

GROUPS = ["light", "medium", "dark"]
N_PER = 1000
SUMMARY_KEYS = [
    "sweep_id", "criterion", "level", "seeds", "groups", "gap_dense", "gap_ce", "gap_pw",
    "ce_vs_dense", "pw_vs_ce", "verdict_ce", "verdict_pw", "headline", "baseline", "method",
    "axis", "gap_dense_interval", "mde", "mde_ce_vs_dense", "levels",
]  # fmt: skip


def _preds(correct_rate, rng, groups, y):
    rate = np.asarray(correct_rate)[groups]
    correct = rng.random(len(y)) < rate
    y_pred = np.where(correct, y, 1 - y)
    probs = np.stack([1.0 - y_pred * 0.8 - 0.1, y_pred * 0.8 + 0.1], axis=1)
    return Predictions(np.log(probs), probs, y_pred, y, groups, split_key="fp-test")


def _write(store, key, preds, *, criterion, loss, seed, level, reached=None):
    names = np.asarray(GROUPS, dtype=object)[preds.groups]
    table = group_metrics(preds.y_true, preds.y_pred, sensitive_features=names, n_boot=0)
    unstructured = criterion in ("unstructured", "fairgrape", "fairprune")
    reached = level if reached is None else reached
    store.write_cell(
        cell_key=key,
        sweep_id="sw-test",
        model={"name": key, "sha256": key, "criterion": criterion, "loss": loss,
               "target_reduction": level, "flops_reduction": 0.0 if unstructured else reached,
               "dataset": "synthderm"},
        config={"cell": {"seed": seed}},
        overall={"accuracy": float(preds.correct.mean()),
                 "weight_sparsity": reached if unstructured else 0.0},
        groups=table,
        predictions=preds,
        group_names=GROUPS,
        class_names=["benign", "malignant"],
    )  # fmt: skip


@pytest.fixture
def make_store(tmp_path):
    def make(ce_rates, pw_rates, seeds=(0, 1, 2)):
        rng = np.random.default_rng(0)
        groups = np.repeat([0, 1, 2], N_PER)
        y = rng.integers(0, 2, len(groups))
        store = ResultsStore(tmp_path / f"r{len(list(tmp_path.iterdir()))}.sqlite")
        store.register_sweep("sw-test", {}, name="test")
        _write(store, "dense", _preds([0.9, 0.9, 0.9], rng, groups, y),
               criterion="dense", loss="dense", seed=None, level=0.0)  # fmt: skip
        for s in seeds:
            for loss, rates in (("ce", ce_rates), ("pw", pw_rates)):
                _write(store, f"{loss}{s}", _preds(rates, rng, groups, y),
                       criterion="l1", loss=loss, seed=s, level=0.97)  # fmt: skip
        return store

    return make


@pytest.fixture
def make_arms(tmp_path):
    """A store with the given arms: {(criterion, loss): rates}, configured criteria order."""

    def make(arms, criteria, seeds=(0, 1, 2), level=0.97):
        rng = np.random.default_rng(1)
        groups = np.repeat([0, 1, 2], N_PER)
        y = rng.integers(0, 2, len(groups))
        store = ResultsStore(tmp_path / f"a{len(list(tmp_path.iterdir()))}.sqlite")
        store.register_sweep("sw-test", {"criteria": list(criteria)}, name="test")
        _write(store, "dense", _preds([0.9, 0.9, 0.9], rng, groups, y),
               criterion="dense", loss="dense", seed=None, level=0.0)  # fmt: skip
        for s in seeds:
            for (crit, loss), rates in arms.items():
                _write(store, f"{crit}-{loss}-{s}", _preds(rates, rng, groups, y),
                       criterion=crit, loss=loss, seed=s, level=level, reached=level - 0.004)  # fmt: skip
        return store

    return make


def test_a_significant_widening_is_called_wider_and_names_the_hurt_group(make_store):
    store = make_store(ce_rates=[0.9, 0.9, 0.78], pw_rates=[0.9, 0.9, 0.78])
    (f,) = level_findings(store, "sw-test", n_boot=300)
    assert f.verdict_baseline == "wider" and f.baseline_vs_dense.low > 0
    assert f.verdict_method == "no_difference"
    assert [g for g, _ in f.hurt()] == ["dark"]
    assert (f.baseline, f.method) == (Method("l1", "ce"), Method("l1", "pw"))
    text = headline(f)
    iv = f.baseline_vs_dense
    assert text.startswith(
        f"At 97% FLOPs reduction (3 seeds), l1 pruning + cross-entropy fine-tuning widens the gap "
        f"between groups (max − min accuracy) from {f.gap_dense.estimate * 100:.1f} to "
        f"{f.gap_baseline:.1f} points ({iv.estimate * 100:+.1f} points, 95% CI "
        f"{iv.low * 100:+.1f} to {iv.high * 100:+.1f}); it significantly lowers the accuracy of "
        f"dark ("
    )
    assert "With l1 pruning + PW-loss fine-tuning it is" in text
    assert "the data cannot tell it from l1 pruning + cross-entropy fine-tuning" in text
    assert f"this run could only have detected a difference of {f.mde:.1f} points or more" in text
    assert "wider than" not in text and "narrower" not in text


def test_no_difference_is_worded_as_such(make_store):
    store = make_store(ce_rates=[0.9, 0.9, 0.895], pw_rates=[0.9, 0.9, 0.9])
    (f,) = level_findings(store, "sw-test", n_boot=300)
    assert f.verdict_baseline == "no_difference"
    text = headline(f)
    assert "widens" not in text and "narrows" not in text
    assert "the data cannot tell them apart" in text
    assert f.hurt() == []


def test_pw_narrower_only_when_its_interval_is_below_zero(make_store):
    store = make_store(ce_rates=[0.9, 0.88, 0.74], pw_rates=[0.9, 0.89, 0.87])
    (f,) = level_findings(store, "sw-test", n_boot=300)
    assert f.verdict_method == "narrower" and f.method_vs_baseline.high < 0
    assert (
        f"With l1 pruning + PW-loss fine-tuning the gap is {f.gap_method:.1f} points, narrower "
        "than with l1 pruning + cross-entropy fine-tuning" in headline(f)
    )
    assert headline(f).endswith(f"; the run could detect differences from {f.mde:.1f} points).")


def test_gaps_and_intervals_agree_with_the_store_and_intervals_module(make_store):
    store = make_store(ce_rates=[0.9, 0.9, 0.78], pw_rates=[0.9, 0.9, 0.8])
    preds = store.predictions(["dense", "ce0", "ce1", "ce2"])
    groups = preds["dense"].groups
    ce = np.stack([preds[k].correct for k in ("ce0", "ce1", "ce2")])
    iv = paired_gap_difference(preds["dense"].correct, ce, groups, n_boot=300)
    head = summary(store, "sw-test", n_boot=300)
    assert list(head) == SUMMARY_KEYS
    assert head["ce_vs_dense"] == pytest.approx(iv.as_dict(100))
    long = store.export_long("sw-test")
    acc = long[(long["loss"] == "ce") & (long["group"] != "overall")]
    per_seed = acc.groupby("cell_key")["accuracy"].agg(lambda a: a.max() - a.min())
    assert head["gap_ce"] == pytest.approx(per_seed.mean() * 100)
    d = long[(long["criterion"] == "dense") & (long["group"] != "overall")]["accuracy"]
    assert head["gap_dense"] == pytest.approx((d.max() - d.min()) * 100)
    iv = head["gap_dense_interval"]
    assert iv["estimate"] == pytest.approx(head["gap_dense"])
    assert iv["low"] <= iv["estimate"] <= iv["high"]
    assert head["ce_vs_dense"]["estimate"] == pytest.approx(head["gap_ce"] - head["gap_dense"])
    assert head["pw_vs_ce"]["estimate"] == pytest.approx(head["gap_pw"] - head["gap_ce"])
    assert head["seeds"] == [0, 1, 2] and head["groups"] == GROUPS and head["level"] == 0.97


def test_stored_predictions_round_trip(make_store):
    store = make_store(ce_rates=[0.9, 0.9, 0.9], pw_rates=[0.9, 0.9, 0.9])
    p = store.predictions(["ce1"])["ce1"]
    assert p.y_true.dtype == np.int64 and len(p.y_true) == 3 * N_PER
    assert p.probs.shape == (3 * N_PER, 2)
    assert np.allclose(p.probs.sum(axis=1), 1.0, atol=1e-3)
    assert p.split_key == "fp-test" and p.group_names == GROUPS
    assert store.predictions(["nope"]) == {}


def test_summary_cli_json_and_text(make_store, capsys):
    store = make_store(ce_rates=[0.9, 0.9, 0.78], pw_rates=[0.9, 0.9, 0.78])
    assert main(["summary", "--results", str(store.path), "--sweep", "sw-test", "--json",
                 "--n-boot", "300"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert list(out) == SUMMARY_KEYS
    assert out == summary(store, "sw-test", n_boot=300)
    assert out["verdict_ce"] == "wider"
    assert out["baseline"] == {"criterion": "l1", "loss": "ce"}
    assert out["method"] == {"criterion": "l1", "loss": "pw"}
    assert main(["summary", "--results", str(store.path), "--n-boot", "300"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == out["headline"]
    assert "l1 + pw − l1 + ce [95% CI]" in text and "detectable (mde, points)" in text
    assert main(["summary", "--results", str(store.path), "--criterion", "taylor"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: " + ERR_NO_CRITERION.format(
        sweep="sw-test", criterion="taylor", have="l1"
    )


def test_findings_frame_columns(make_store):
    from fairprune.app.views import findings_display
    from fairprune.sweep.findings import findings_frame

    store = make_store(ce_rates=[0.9, 0.9, 0.78], pw_rates=[0.9, 0.9, 0.78])
    frame = findings_frame(level_findings(store, "sw-test", n_boot=200))
    shown = findings_display(frame)
    assert isinstance(shown, pd.DataFrame) and len(shown) == 1
    row = shown.iloc[0]
    assert row["l1 + ce vs dense"] == "wider" and row["l1 + pw vs l1 + ce"] == "cannot tell"
    assert row["significantly hurt by l1 + ce"] == "dark"
    est, lo, hi = frame.iloc[0][
        ["baseline_vs_dense", "baseline_vs_dense_low", "baseline_vs_dense_high"]
    ]
    assert row["l1 + ce − dense [95% CI]"] == f"{est:+.1f} [{lo:+.1f}, {hi:+.1f}]"
    assert frame.iloc[0]["worst_group"] == "dark" and frame.iloc[0]["worst_drop"] > 5


def test_the_papers_pair_is_the_default_and_named_in_the_json(make_arms, capsys):
    store = make_arms(
        {("taylor", "ce"): [0.9, 0.9, 0.75], ("pw_taylor", "pw"): [0.9, 0.9, 0.85]},
        criteria=["taylor", "pw_taylor"],
    )
    head = summary(store, n_boot=300)
    assert head["baseline"] == {"criterion": "taylor", "loss": "ce"}
    assert head["method"] == {"criterion": "pw_taylor", "loss": "pw"}
    assert head["verdict_ce"] == "wider" and head["verdict_pw"] == "narrower"
    assert head["axis"] == "FLOPs reduction" and head["headline"].startswith("At 97% FLOPs")
    assert [r["level"] for r in head["levels"]] == [0.97]
    assert head["levels"][0]["mde_method_vs_baseline"] == pytest.approx(head["mde"])
    # the same comparison asked for by name, from the CLI
    assert main(["summary", "--results", str(store.path), "--json", "--n-boot", "300",
                 "--baseline", "taylor:ce", "--method", "pw_taylor:pw"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out) == head


def test_the_mde_is_2_8_bootstrap_standard_errors_of_the_difference(make_arms):
    store = make_arms(
        {("taylor", "ce"): [0.9, 0.88, 0.8], ("pw_taylor", "pw"): [0.9, 0.88, 0.81]},
        criteria=["taylor", "pw_taylor"],
    )
    (f,) = level_findings(store, n_boot=400, seed=2)
    keys = ["dense"] + [f"{c}-{lo}-{s}" for c, lo in (("taylor", "ce"), ("pw_taylor", "pw"))
                        for s in (0, 1, 2)]  # fmt: skip
    preds = store.predictions(keys)
    groups = preds["dense"].groups
    d = preds["dense"].correct
    b = np.stack([preds[k].correct for k in keys[1:4]])
    m = np.stack([preds[k].correct for k in keys[4:]])
    arms = arm_replicates([d, b, m], groups, n_boot=400, seed=2)
    diffs_se = gap_difference(arms[1], arms[2]).se
    assert f.method_vs_baseline.se == pytest.approx(diffs_se, abs=1e-12)
    assert f.mde == pytest.approx(2.8016 * diffs_se * 100, rel=1e-4)
    assert mde(f.method_vs_baseline, power=0.5) == pytest.approx(1.95996 * diffs_se, rel=1e-4)
    assert f.verdict_method == "no_difference"  # 1 point of 2.8 SE is below what it can detect
    assert f.mde > abs(f.method_vs_baseline.estimate * 100)


def test_the_default_criterion_is_the_sweeps_first_as_configured(make_arms):
    arms = {(c, lo): [0.9, 0.9, 0.85] for c in ("l2", "l1") for lo in ("ce", "pw")}
    store = make_arms(arms, criteria=["l2", "l1"], seeds=(0,))
    (f,) = level_findings(store, n_boot=100)
    assert (f.baseline, f.method) == (Method("l2", "ce"), Method("l2", "pw"))
    (g,) = level_findings(store, criterion="l1", n_boot=100)
    assert (g.baseline, g.method) == (Method("l1", "ce"), Method("l1", "pw"))
    (h,) = level_findings(store, baseline="l1:pw", method="l2:ce", n_boot=100)
    assert (h.baseline, h.method) == (Method("l1", "pw"), Method("l2", "ce"))
    have = [Method("taylor", "ce"), Method("taylor", "pw"), Method("pw_taylor", "pw")]
    assert default_pair(have) == (Method("taylor", "ce"), Method("pw_taylor", "pw"))
    assert default_pair(have[:2]) == (Method("taylor", "ce"), Method("taylor", "pw"))
    assert default_pair([Method("pw_taylor", "pw")]) == (Method("pw_taylor", "pw"), None)


def test_unstructured_levels_are_weight_sparsity(make_arms):
    store = make_arms({("fairgrape", "ce"): [0.9, 0.9, 0.85], ("fairgrape", "pw"): [0.9, 0.9, 0.86]},
                      criteria=["fairgrape"], level=0.5)  # fmt: skip
    (f,) = level_findings(store, n_boot=100)
    assert f.axis == "weight sparsity" and f.reached == pytest.approx(0.496)
    assert headline(f).startswith("At 50% weight sparsity (3 seeds), ")
    assert summary(store, n_boot=100)["axis"] == "weight sparsity"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--baseline", "taylor"], ERR_METHOD_SYNTAX.format(value="taylor")),
        (["--method", "pw_taylor:pw:x"], ERR_METHOD_SYNTAX.format(value="pw_taylor:pw:x")),
        (["--baseline", "l1:ce"],
         ERR_NO_METHOD.format(sweep="sw-test", method="l1:ce", have="taylor:ce, pw_taylor:pw")),
        (["--baseline", "taylor:ce", "--method", "taylor:ce"],
         ERR_SAME_METHOD.format(method="taylor:ce")),
    ],
)  # fmt: skip
def test_a_bad_method_is_one_line(make_arms, capsys, argv, message):
    store = make_arms({("taylor", "ce"): [0.9] * 3, ("pw_taylor", "pw"): [0.9] * 3},
                      criteria=["taylor", "pw_taylor"], seeds=(0,))  # fmt: skip
    assert main(["summary", "--results", str(store.path), "--n-boot", "50", *argv]) == 1
    assert capsys.readouterr().err.strip() == "error: " + message
