"""fairprune: prune networks, fine-tune with the performance-weighted loss, audit every subgroup.

The public API is re-exported here. Names are resolved on first use (PEP 562) so that importing
one light module (``fairprune.errors``, ``fairprune.loss``) does not pull in Torch-Pruning,
fairlearn and plotly.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

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


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fairprune' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
