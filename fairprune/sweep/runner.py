"""Run a sweep: each cell is pruned, fine-tuned, saved, predicted once, audited and written to the
results store in one transaction as soon as it finishes. Rerunning skips finished cells; stopping
loses at most the cell in progress.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import torch

from fairprune.config import PruneConfig, SweepConfig
from fairprune.data import load_dataset
from fairprune.errors import FairpruneError
from fairprune.evaluate import dense_outputs, measure_latency, predict
from fairprune.loss import get_loss
from fairprune.metrics import accuracy_gap, audit, pruning_disparity
from fairprune.nets.checkpoint import save_model
from fairprune.nets.flops import count_macs_params
from fairprune.nets.imports import load_model
from fairprune.prune.registry import CRITERIA, UNSTRUCTURED_METHOD
from fairprune.prune.targeting import prune_model
from fairprune.sweep.grid import (
    ERR_NO_SPLIT,
    Cell,
    cell_key_for,
    iter_cells,
    sweep_id_for,
    validate_sweep,
)
from fairprune.train import finetune
from fairprune.utils import Progress, stable_hash

log = logging.getLogger(__name__)


def _calib_batches(split, dense_logits: torch.Tensor, cfg: PruneConfig) -> list:
    batches = []
    for x, y, _g, idx in split.batches(cfg.calib_batch_size, shuffle=True, seed=cfg.seed):
        batches.append((x, y, dense_logits[idx]))
        if len(batches) >= cfg.calib_batches:
            break
    return batches


def run_sweep(
    config: SweepConfig,
    *,
    store,
    models_dir: str | Path,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_cell: Callable[[str], None] | None = None,
) -> str:
    """Run every unfinished cell of ``config`` and write each to ``store`` as it finishes.

    Parameters
    ----------
    config : SweepConfig
    store : ResultsStore
    models_dir : path
        The model store; every pruned, fine-tuned model is saved there.
    progress : callable, optional
        ``progress(done_cells, total_cells, info)``, also called with stage text inside a cell.
    should_stop : callable, optional
        Polled between and inside cells; True stops, dropping only the cell in progress.
    on_cell : callable, optional
        Called with each cell key right after it is written.

    Returns
    -------
    str
        The sweep id (rows of this sweep carry it).
    """
    validate_sweep(config)
    stop = should_stop or (lambda: False)
    report = progress or (lambda done, total, info: None)
    dense, record = load_model(config.dense_model)
    bundle = load_dataset(
        config.dataset, config.data_root, csv=config.csv, **dict(config.dataset_options)
    )
    for split in ("train", config.eval_split):
        if split not in bundle.splits:
            raise FairpruneError(
                ERR_NO_SPLIT.format(
                    dataset=config.dataset, split=split, have=", ".join(bundle.splits)
                )
            )
    sweep_id = sweep_id_for(config, record.sha256)
    store.register_sweep(sweep_id, asdict(config), name=config.name)
    cells = list(iter_cells(config))
    total = len(cells) + 1  # + the dense baseline
    todo = [c for c in cells if not store.has_cell(cell_key_for(sweep_id, c))]
    done = total - len(todo) - 1
    dense_key = "c-" + stable_hash({"sweep": sweep_id, "dense": record.sha256}, 16)
    eval_split = bundle.splits[config.eval_split]
    split_key = f"{bundle.fingerprint}-{config.eval_split}"
    dense_preds = predict(dense, eval_split, model_hash=record.sha256, split_key=split_key)
    dense_table = audit(dense_preds, bundle, n_boot=config.n_boot)
    if not store.has_cell(dense_key):
        overall = {
            "accuracy": float(dense_preds.correct.mean()),
            "gap": accuracy_gap(dense_table),
            "std_delta": 0.0,
            "max_psi": 0.0,
            "latency_ms": measure_latency(copy.deepcopy(dense), record.input_size, repeats=10),
            "weight_sparsity": 0.0,
        }
        store.write_cell(
            cell_key=dense_key,
            sweep_id=sweep_id,
            model=record,
            config={"sweep": asdict(config), "cell": {"criterion": "dense", "loss": "dense"}},
            overall=overall,
            groups=dense_table,
            split=config.eval_split,
        )
    done += 1
    report(done, total, f"{len(todo)} cells to run")
    if not todo:
        return sweep_id

    train_split = bundle.splits["train"]
    needs_dense = any(get_loss(c.loss).uses_dense for c in todo) or any(
        CRITERIA[c.criterion].needs_dense if c.criterion in CRITERIA else False for c in todo
    )
    dense_train = dense_outputs(dense, train_split) if needs_dense else None  # (N, K), once
    if dense_train is None:
        dense_train = torch.zeros(len(train_split), record.num_outputs)
    pruned_cache: dict[tuple, tuple] = {}
    for cell in todo:
        if stop():
            break
        key = cell_key_for(sweep_id, cell)
        info = f"{cell.criterion} {cell.target_reduction:.1%} {cell.loss} seed {cell.seed}"
        report(done, total, f"pruning: {info}")
        prune_key = (cell.criterion, cell.target_reduction, cell.seed)
        if prune_key not in pruned_cache:
            pruned_cache.clear()  # keep one pruned model in memory at a time
            pruned_cache[prune_key] = _prune_cell(dense, record, bundle, dense_train, config, cell)
        pruned, prune_info, pcfg = pruned_cache[prune_key]
        model = copy.deepcopy(pruned)
        fcfg = replace(
            config.finetune,
            loss=cell.loss,
            seed=cell.seed,
            min_weight=config.min_weight,
            gamma=config.gamma,
        )
        report(done, total, f"fine-tuning: {info}")
        finetune(model, train_split, fcfg, dense_logits=dense_train, should_stop=stop)
        if stop():
            break  # the half-trained cell is dropped; finished ones are already stored
        cfg = {
            "sweep": asdict(config),
            "prune": asdict(pcfg),
            "finetune": asdict(fcfg),
            "cell": asdict(cell),
        }
        name = (
            f"{bundle.name}-{record.arch}-{cell.criterion}-{cell.loss}"
            f"-r{round(cell.target_reduction * 1e4):04d}-s{cell.seed}-{key[2:10]}"
        )
        saved = save_model(
            model.cpu(),
            models_dir,
            name,
            arch=record.arch,
            num_outputs=record.num_outputs,
            num_classes=record.num_classes,
            input_size=record.input_size,
            kind="pruned",
            dataset=bundle.name,
            dataset_fingerprint=bundle.fingerprint,
            parent=record.sha256,
            criterion=cell.criterion,
            loss=cell.loss,
            target_reduction=cell.target_reduction,
            flops_reduction=prune_info["flops_reduction"],
            macs=prune_info["macs"],
            params=prune_info["params"],
            config=cfg,
        )
        preds = predict(model, eval_split, model_hash=saved.sha256, split_key=split_key)
        table = audit(preds, bundle, n_boot=config.n_boot)
        disparity = pruning_disparity(dense_table, table)
        overall = {
            "accuracy": float(preds.correct.mean()),
            "gap": accuracy_gap(table),
            "std_delta": disparity["std_delta"],
            "max_psi": disparity["max_psi"],
            "latency_ms": measure_latency(model, record.input_size, repeats=10),
            "weight_sparsity": prune_info["weight_sparsity"],
        }
        store.write_cell(
            cell_key=key,
            sweep_id=sweep_id,
            model=saved,
            config=cfg,
            overall=overall,
            groups=table,
            split=config.eval_split,
        )
        done += 1
        report(done, total, f"done: {info}")
        if on_cell is not None:
            on_cell(key)
    return sweep_id


def _prune_cell(dense, record, bundle, dense_train, config: SweepConfig, cell: Cell):
    """Prune a copy of the dense model for one (criterion, level, seed)."""
    pcfg = replace(
        config.prune,
        criterion=cell.criterion,
        target_reduction=cell.target_reduction,
        seed=cell.seed,
        min_weight=config.min_weight,
        gamma=config.gamma,
    )
    spec = CRITERIA[cell.criterion]
    if spec.method == UNSTRUCTURED_METHOD:  # single weights zeroed: target = weight sparsity
        model, sparsity = spec.run(
            dense,
            pcfg,
            split=bundle.splits["train"],
            input_size=record.input_size,
            group_names=bundle.group_names,
        )
        macs, params = count_macs_params(model, record.input_size)
        info = {
            "flops_reduction": 1.0 - macs / record.macs if record.macs else 0.0,
            "macs": macs,
            "params": params,
            "weight_sparsity": sparsity,
        }
        return model, info, pcfg
    calib = None
    if CRITERIA[cell.criterion].needs_data:
        calib = _calib_batches(bundle.splits["train"], dense_train, pcfg)
    result = prune_model(dense, pcfg, input_size=record.input_size, calib=calib)
    info = {
        "flops_reduction": float(result.flops_reduction),
        "macs": int(result.macs_after),
        "params": int(result.params_after),
        "weight_sparsity": 0.0,
    }
    return result.model, info, pcfg


def summary_table(store, sweep_id: str | None = None):
    """Per-group accuracy of every cell as a wide table: one row per (criterion, loss, level)."""
    long = store.export_long(sweep_id)
    if long.empty:
        return long
    long = long[long["group"] != "overall"]
    wide = long.pivot_table(
        index=["criterion", "loss", "target_reduction", "flops_reduction"],
        columns="group",
        values="accuracy",
        aggfunc="mean",
    )
    wide["gap"] = wide.max(axis=1) - wide.min(axis=1)
    return wide.reset_index().sort_values(["criterion", "target_reduction", "loss"])
