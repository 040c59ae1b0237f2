"""Findings: interval-backed words on synthetic stores, and ``summary --json``."""

import json

import numpy as np
import pandas as pd
import pytest

from fairprune.cli import main
from fairprune.evaluate import Predictions
from fairprune.intervals import paired_gap_difference
from fairprune.metrics import group_metrics
from fairprune.sweep.findings import ERR_NO_CRITERION, headline, level_findings, summary
from fairprune.sweep.results import ResultsStore

GROUPS = ["light", "medium", "dark"]
N_PER = 1000
SUMMARY_KEYS = [
    "sweep_id", "criterion", "level", "seeds", "groups", "gap_dense", "gap_ce", "gap_pw",
    "ce_vs_dense", "pw_vs_ce", "verdict_ce", "verdict_pw", "headline",
]  # fmt: skip


def _preds(correct_rate, rng, groups, y):
    rate = np.asarray(correct_rate)[groups]
    correct = rng.random(len(y)) < rate
    y_pred = np.where(correct, y, 1 - y)
    probs = np.stack([1.0 - y_pred * 0.8 - 0.1, y_pred * 0.8 + 0.1], axis=1)
    return Predictions(np.log(probs), probs, y_pred, y, groups, split_key="fp-test")


def _write(store, key, preds, *, criterion, loss, seed, level):
    names = np.asarray(GROUPS, dtype=object)[preds.groups]
    table = group_metrics(preds.y_true, preds.y_pred, sensitive_features=names, n_boot=0)
    store.write_cell(
        cell_key=key,
        sweep_id="sw-test",
        model={"name": key, "sha256": key, "criterion": criterion, "loss": loss,
               "target_reduction": level, "flops_reduction": level, "dataset": "synthderm"},
        config={"cell": {"seed": seed}},
        overall={"accuracy": float(preds.correct.mean())},
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


def test_a_significant_widening_is_called_wider_and_names_the_hurt_group(make_store):
    store = make_store(ce_rates=[0.9, 0.9, 0.78], pw_rates=[0.9, 0.9, 0.78])
    (f,) = level_findings(store, "sw-test", n_boot=300)
    assert f.verdict_ce == "wider" and f.ce_vs_dense.low > 0
    assert f.verdict_pw == "no_difference"
    assert [g for g, _ in f.hurt()] == ["dark"]
    text = headline(f)
    assert text.startswith(
        f"At 97% FLOPs reduction (l1 pruning, 3 seeds), cross-entropy fine-tuning widens the gap "
        f"between groups (max − min accuracy) from {f.gap_dense:.1f} to {f.gap_ce:.1f} points "
        f"({f.ce_vs_dense.estimate * 100:+.1f} points, 95% CI {f.ce_vs_dense.low * 100:+.1f} to "
        f"{f.ce_vs_dense.high * 100:+.1f}); it significantly lowers the accuracy of dark ("
    )
    assert "With the PW loss it is" in text and "the data cannot tell it from cross-entropy" in text
    assert "wider than" not in text and "narrower" not in text


def test_no_difference_is_worded_as_such(make_store):
    store = make_store(ce_rates=[0.9, 0.9, 0.895], pw_rates=[0.9, 0.9, 0.9])
    (f,) = level_findings(store, "sw-test", n_boot=300)
    assert f.verdict_ce == "no_difference"
    text = headline(f)
    assert "widens" not in text and "narrows" not in text
    assert "the data cannot tell them apart" in text
    assert f.hurt() == []


def test_pw_narrower_only_when_its_interval_is_below_zero(make_store):
    store = make_store(ce_rates=[0.9, 0.88, 0.74], pw_rates=[0.9, 0.89, 0.87])
    (f,) = level_findings(store, "sw-test", n_boot=300)
    assert f.verdict_pw == "narrower" and f.pw_vs_ce.high < 0
    assert f"With the PW loss the gap is {f.gap_pw:.1f} points, narrower than" in headline(f)


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
    assert main(["summary", "--results", str(store.path), "--n-boot", "300"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == out["headline"]
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
    assert row["CE vs dense"] == "wider" and row["PW vs CE"] == "cannot tell"
    assert row["significantly hurt by CE"] == "dark"
    est, lo, hi = frame.iloc[0][["ce_vs_dense", "ce_vs_dense_low", "ce_vs_dense_high"]]
    assert row["CE − dense [95% CI]"] == f"{est:+.1f} [{lo:+.1f}, {hi:+.1f}]"
