"""fairprune: prune networks, fine-tune with the performance-weighted loss, audit every subgroup.

The public API is re-exported here. Names are resolved on first use (PEP 562) so that importing
one light module (``fairprune.errors``, ``fairprune.loss``) does not pull in Torch-Pruning,
fairlearn and plotly.
"""

# ruff: noqa: F401
from __future__ import annotations

from typing import TYPE_CHECKING

from fairprune.utils import lazy_exports

__version__ = "0.1.0"

# for type checkers and editors (ruff cannot read the computed __all__); at run time names are
# resolved on first use
if TYPE_CHECKING:
    from fairprune.config import FinetuneConfig, PruneConfig, SweepConfig, TrainConfig
    from fairprune.data import DATASETS, DatasetBundle, load_dataset, summarize
    from fairprune.demo import demo_sweep_config, ensure_demo_model
    from fairprune.errors import FairpruneError
    from fairprune.evaluate import Predictions, dense_outputs, measure_latency, predict
    from fairprune.loss import LOSSES, PW_PRESETS, performance_weighted_loss
    from fairprune.metrics import accuracy_gap, audit, group_metrics, intersect, pruning_disparity
    from fairprune.nets import (
        ARCHITECTURES,
        ModelRecord,
        build_model,
        count_macs_params,
        list_models,
        load_model,
        save_model,
    )
    from fairprune.nets.foreign import model_from_state
    from fairprune.nets.onnx_export import export_onnx
    from fairprune.nets.onnx_io import load_for_audit
    from fairprune.nets.onnx_runtime import load_onnx
    from fairprune.prune import CRITERIA, PruneResult, prune_model, unstructured_prune
    from fairprune.sweep import ResultsStore, run_sweep
    from fairprune.train import finetune, train_dense

_EXPORTS: dict[str, str] = {
    # errors and configs
    "FairpruneError": "fairprune.errors",
    "TrainConfig": "fairprune.config",
    "PruneConfig": "fairprune.config",
    "FinetuneConfig": "fairprune.config",
    "SweepConfig": "fairprune.config",
    # loss
    "performance_weighted_loss": "fairprune.loss",
    "LOSSES": "fairprune.loss",
    "PW_PRESETS": "fairprune.loss",
    # data
    "DATASETS": "fairprune.data",
    "DatasetBundle": "fairprune.data",
    "load_dataset": "fairprune.data",
    "summarize": "fairprune.data",
    # models and the store
    "ARCHITECTURES": "fairprune.nets",
    "build_model": "fairprune.nets",
    "ModelRecord": "fairprune.nets",
    "load_model": "fairprune.nets",
    "save_model": "fairprune.nets",
    "list_models": "fairprune.nets",
    "model_from_state": "fairprune.nets.foreign",
    "export_onnx": "fairprune.nets.onnx_export",
    "load_onnx": "fairprune.nets.onnx_runtime",
    "load_for_audit": "fairprune.nets.onnx_io",
    # pruning
    "CRITERIA": "fairprune.prune",
    "PruneResult": "fairprune.prune",
    "prune_model": "fairprune.prune",
    "unstructured_prune": "fairprune.prune",
    "count_macs_params": "fairprune.nets",
    # training
    "train_dense": "fairprune.train",
    "finetune": "fairprune.train",
    # predictions and metrics
    "Predictions": "fairprune.evaluate",
    "predict": "fairprune.evaluate",
    "dense_outputs": "fairprune.evaluate",
    "measure_latency": "fairprune.evaluate",
    "group_metrics": "fairprune.metrics",
    "accuracy_gap": "fairprune.metrics",
    "pruning_disparity": "fairprune.metrics",
    "intersect": "fairprune.metrics",
    "audit": "fairprune.metrics",
    # results, sweeps, demo
    "ResultsStore": "fairprune.sweep",
    "run_sweep": "fairprune.sweep",
    "ensure_demo_model": "fairprune.demo",
    "demo_sweep_config": "fairprune.demo",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
