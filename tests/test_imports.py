"""What a page imports: the Overview's modules load no Torch, Torch-Pruning, fairlearn, Ray or
onnxruntime (issue #23: the first page of a just-started server within 3 s)."""

import json
import subprocess
import sys

import pytest

HEAVY = ["torch", "torchvision", "torch_pruning", "fairlearn", "ray", "onnxruntime"]
# what the Overview page (pages/0_Overview.py) and the store it reads import
OVERVIEW = ["fairprune.app.ui", "fairprune.app.tables", "fairprune.app.views",
            "fairprune.app.charts", "fairprune.sweep.results",
            "fairprune.sweep.findings"]  # fmt: skip
# light modules that other pages and the CLI reach through package __init__s
LIGHT = ["fairprune", "fairprune.sweep", "fairprune.sweep.grid", "fairprune.prune",
         "fairprune.prune.registry", "fairprune.nets", "fairprune.data"]  # fmt: skip


def _loaded(modules: list[str]) -> list[str]:
    """The heavy packages a fresh interpreter has loaded after importing ``modules``."""
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(json.dumps([h for h in {HEAVY!r} if h in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_overview_page_modules_import_no_torch():
    assert [m for m in _loaded(OVERVIEW) if m != "fairlearn"] == []


def test_the_overview_page_modules_import_nothing_heavy():
    assert _loaded(OVERVIEW) == []


@pytest.mark.parametrize("module", LIGHT)
def test_package_inits_and_the_criteria_table_import_nothing_heavy(module):
    assert _loaded([module]) == []


def test_lazy_exports_resolve_to_the_modules_names():
    import fairprune.nets.checkpoint
    import fairprune.nets.listing
    import fairprune.prune.registry
    import fairprune.sweep.results
    from fairprune import nets, prune, sweep
    from fairprune.prune import CRITERIA

    assert prune.CRITERIA is CRITERIA is fairprune.prune.registry.CRITERIA
    assert sweep.ResultsStore is fairprune.sweep.results.ResultsStore
    assert nets.list_models is fairprune.nets.checkpoint.list_models
    assert nets.list_models is fairprune.nets.listing.list_models
    for package in (nets, prune, sweep):
        assert all(getattr(package, name) is not None for name in package.__all__)
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        _ = sweep.nothing


def test_the_criteria_table_builds_each_criterion_on_first_use():
    from fairprune.prune.context import FLOPS, WEIGHT_SPARSITY
    from fairprune.prune.registry import CRITERIA, is_unstructured
    from fairprune.prune.registry import FLOPS as REGISTRY_FLOPS
    from fairprune.prune.registry import WEIGHT_SPARSITY as REGISTRY_SPARSITY
    from fairprune.prune.targeting import RatioSearch, TopUp
    from fairprune.prune.unstructured import ZeroWeights

    assert (REGISTRY_FLOPS, REGISTRY_SPARSITY) == (FLOPS, WEIGHT_SPARSITY)
    kinds = {name: type(spec.prune).__name__ for name, spec in CRITERIA.items()}
    assert kinds == {
        "random": "RatioSearch", "l1": "RatioSearch", "l2": "RatioSearch",
        "taylor": "RatioSearch", "pw_taylor": "RatioSearch", "autobot": "TopUp",
        "pw_autobot": "TopUp", "iter_taylor": "TopUp", "pw_iter_taylor": "TopUp",
        "unstructured": "ZeroWeights", "fairgrape": "ZeroWeights", "fairprune": "ZeroWeights",
    }  # fmt: skip
    assert CRITERIA["l1"].prune is CRITERIA["l1"].prune  # built once
    assert isinstance(CRITERIA["taylor"].prune, RatioSearch) and CRITERIA["taylor"].prune.needs_data
    assert isinstance(CRITERIA["autobot"].prune, TopUp)
    assert isinstance(CRITERIA["fairgrape"].prune, ZeroWeights)
    importance = CRITERIA["l2"].prune.importance()
    assert type(importance).__name__ == "GroupMagnitudeImportance" and importance.p == 2
    assert [n for n in CRITERIA if is_unstructured(n)] == ["unstructured", "fairgrape", "fairprune"]


def test_the_models_page_lists_the_store_and_draws_its_table_without_torch(demo_store):
    """The Models page's first content (the table of checkpoints) is listed and laid out before
    anything imports Torch: on a just-started server it is drawn in milliseconds."""
    code = (
        "import json, sys\n"
        "from fairprune.nets.listing import list_models\n"
        "from fairprune.nets.manifest import record_to_row\n"
        f"rows = [record_to_row(r) for r in list_models({str(demo_store['models'])!r})]\n"
        f"print(json.dumps([len(rows), [h for h in {HEAVY!r} if h in sys.modules]]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)  # fmt: skip
    n, heavy = json.loads(out.stdout.strip().splitlines()[-1])
    assert n == len(list(demo_store["models"].glob("*.safetensors"))) and heavy == []

