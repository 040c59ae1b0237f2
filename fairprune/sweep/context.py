"""What every cell of a sweep shares: the dense model, its audit and the dataset, loaded once per
process (the driver, or each Ray worker) into a ``SweepContext``."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import nn

from fairprune.config import SweepConfig
from fairprune.data import DatasetBundle, load_dataset
from fairprune.errors import FairpruneError
from fairprune.evaluate import Predictions, dense_outputs, predict
from fairprune.metrics import audit
from fairprune.nets.imports import load_model
from fairprune.nets.manifest import ModelRecord
from fairprune.sweep.grid import ERR_NO_SPLIT, sweep_id_for, validate_sweep


@dataclass
class SweepContext:
    """What every cell of a sweep shares; loaded once per process (driver or worker)."""

    config: SweepConfig
    sweep_id: str
    dense: nn.Module  # the dense model (never mutated: cells work on copies)
    record: ModelRecord  # its manifest
    bundle: DatasetBundle
    split_key: str  # dataset fingerprint + audit split: which rows the predictions are on
    dense_preds: Predictions | None  # the dense model on the audit split (None on a Ray worker)
    dense_table: pd.DataFrame  # its per-group audit
    _dense_train: torch.Tensor | None = field(default=None, repr=False)

    @property
    def eval_split(self):
        return self.bundle.splits[self.config.eval_split]

    def dense_train(self) -> torch.Tensor:
        """(N, K) dense logits on the training split, computed once, for PW losses/criteria."""
        if self._dense_train is None:
            self._dense_train = dense_outputs(self.dense, self.bundle.splits["train"])
        return self._dense_train


def sweep_dataset(config: SweepConfig) -> DatasetBundle:
    """The sweep's dataset (``load_dataset`` keeps it cached in this process)."""
    return load_dataset(
        config.dataset, config.data_root, csv=config.csv, **dict(config.dataset_options)
    )


def load_context(
    config: SweepConfig,
    *,
    dense: tuple[nn.Module, ModelRecord] | None = None,
    dense_table: pd.DataFrame | None = None,
) -> SweepContext:
    """Load the dense model and the dataset of a sweep, and audit the dense model once.

    Parameters
    ----------
    config : SweepConfig
    dense : (nn.Module, ModelRecord), optional
        The dense model already loaded (a Ray worker gets it as bytes from the driver, since
        ``config.dense_model`` is a path on the driver's disk); default: load that path.
    dense_table : DataFrame, optional
        The dense model's per-group audit, already made by the driver: a worker then neither
        predicts nor audits the dense model again (``dense_preds`` stays None: only the driver
        records the dense cell).

    Raises
    ------
    FairpruneError
        Invalid grid, unreadable checkpoint or dataset, or a missing split.
    """
    validate_sweep(config)
    dense, record = dense if dense is not None else load_model(config.dense_model)
    bundle = sweep_dataset(config)
    for split in ("train", config.eval_split):
        if split not in bundle.splits:
            raise FairpruneError(
                ERR_NO_SPLIT.format(
                    dataset=config.dataset, split=split, have=", ".join(bundle.splits)
                )
            )
    split_key = f"{bundle.fingerprint}-{config.eval_split}"
    preds = None
    if dense_table is None:
        preds = predict(
            dense, bundle.splits[config.eval_split], model_hash=record.sha256, split_key=split_key
        )
        dense_table = audit(preds, bundle, n_boot=config.n_boot)
    return SweepContext(
        config=config,
        sweep_id=sweep_id_for(config, record.sha256),
        dense=dense,
        record=record,
        bundle=bundle,
        split_key=split_key,
        dense_preds=preds,
        dense_table=dense_table,
    )
