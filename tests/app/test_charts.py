"""charts: figures carry the store's numbers, in %/pp, with one colour per group."""

import zlib

import numpy as np
import pandas as pd
import pytest

from fairprune.app import charts
from tests.app.test_views import CELLS, make_long


def _trace(fig, name):
    (t,) = [t for t in fig.data if t.name == name]
    return t


def test_group_colours_are_fixed_across_names_and_datasets():
    assert charts.group_color("dark") == charts.group_color("dark (5-6)") == "#0072B2"
    assert charts.group_color("light × malignant") == charts.group_color("light") == "#E69F00"
    assert charts.group_color("Male") == charts.FIXED["male"]
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse"]
    colours = [charts.group_color(c, classes) for c in classes]
    assert colours == charts.OKABE_ITO  # distinct, in palette order
    # without the dataset's groups, a stable hash (Python's hash() changes between processes)
    assert charts.group_color("ship") == charts.OKABE_ITO[zlib.crc32(b"ship") % 8]


def test_accuracy_vs_reduction_lines_bands_and_hover():
    fig = charts.accuracy_vs_reduction(make_long(CELLS))
    # 2 losses × 3 groups, each a line and an interval band
    assert len(fig.data) == 12
    pw_dark = _trace(fig, "dark · PW loss")
    ce_dark = _trace(fig, "dark · cross-entropy")
    np.testing.assert_allclose(pw_dark.x, [0, 51, 94])
    np.testing.assert_allclose(pw_dark.y, [87, 84, 78])
    np.testing.assert_allclose(ce_dark.y, [87, 80, 68])
    assert (pw_dark.line.dash, ce_dark.line.dash) == ("solid", "dash")
    assert pw_dark.line.color == ce_dark.line.color == "#0072B2"
    np.testing.assert_allclose(np.asarray(pw_dark.customdata, dtype=float)[2], [100, 73, 83])
    assert "n = %{customdata[0]}" in pw_dark.hovertemplate
    assert fig.layout.yaxis.title.text == "accuracy (%)"
    assert fig.layout.xaxis.title.text == "FLOPs reduction (%)"


def test_gap_disparity_and_tradeoff_values():
    long = make_long(CELLS)
    gap = _trace(charts.gap_vs_reduction(long), "l1 · cross-entropy")
    np.testing.assert_allclose(gap.y, [3, 8, 17])
    disp = charts.disparity_chart(long)
    np.testing.assert_allclose(_trace(disp, "Δ dark · l1 · PW loss").y, [3, 9])
    np.testing.assert_allclose(_trace(disp, "max ψ · l1 · cross-entropy").y, [3, 8])
    trade = _trace(charts.tradeoff_chart(long), "l1 · PW loss")
    np.testing.assert_allclose(trade.y, [89, 86, 81])
    assert charts.gap_vs_reduction(long).layout.yaxis.title.text.endswith("(pp)")


def test_group_bars_orders_light_to_dark_with_intervals():
    table = pd.DataFrame(
        {"group": ["dark", "light", "overall"], "n": [40, 60, 100], "accuracy": [0.7, 0.9, 0.82],
         "accuracy_low": [0.6, 0.85, 0.78], "accuracy_high": [0.8, 0.95, 0.86]}
    )  # fmt: skip
    bar = charts.group_bars(table).data[0]
    assert list(bar.x) == ["light", "dark"]
    np.testing.assert_allclose(bar.y, [90, 70])
    np.testing.assert_allclose(bar.error_y.arrayminus, [5, 10])
    assert list(bar.marker.color) == ["#E69F00", "#0072B2"]


def test_counts_and_forgotten_charts():
    summary = pd.DataFrame(
        {"split": ["test"] * 4, "group": ["light", "light", "dark", "dark"],
         "label": ["benign", "malignant"] * 2, "n": [5, 7, 11, 13]}
    )  # fmt: skip
    fig = charts.counts_chart(summary)
    assert sum(sum(t.y) for t in fig.data) == 36
    rates = pd.DataFrame({"group": ["light", "dark"], "n": [10, 20], "forgotten": [1, 5],
                          "rate": [0.1, 0.25]})  # fmt: skip
    bar = charts.forgotten_chart(rates).data[0]
    np.testing.assert_allclose(bar.y, [10, 25])


def test_empty_store_gives_a_message_not_an_error():
    fig = charts.accuracy_vs_reduction(make_long([]))
    assert len(fig.data) == 0
    assert fig.layout.annotations[0].text == "No sweep results yet: run a sweep."
    assert charts.disparity_chart(make_long([])).layout.annotations[0].text == (
        "No pruned models in the store yet."
    )


@pytest.mark.parametrize("metric", ["balanced_accuracy", "tpr"])
def test_other_metrics_have_no_accuracy_bands(metric):
    fig = charts.accuracy_vs_reduction(make_long(CELLS), metric=metric, losses=["pw"])
    assert len(fig.data) == 3  # lines only
    np.testing.assert_allclose(_trace(fig, "light · PW loss").y, [90, 88, 84])
