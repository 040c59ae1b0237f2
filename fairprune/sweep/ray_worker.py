"""The worker side of a Ray sweep: what a Ray task runs in its process.

``unit_payloads`` builds the sweep's ``SweepContext`` once per worker process (from the config
dict and the dense checkpoint's bytes, ``worker_context``), runs ``cell_runner.run_unit`` (the very
function the serial executor runs) and yields each finished cell as a payload (``payloads``).
``warm_worker`` imports fairprune and loads the dataset while the driver gets ready.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator

import torch

from fairprune.config import SweepConfig, config_from_dict
from fairprune.errors import FairpruneError
from fairprune.nets.manifest import parse_manifest
from fairprune.sweep.cell_runner import run_unit
from fairprune.sweep.context import SweepContext, load_context, sweep_dataset
from fairprune.sweep.payloads import (
    cell_payload,
    dense_from_payload,
    table_from_payload,
    unit_from_dict,
)

ERR_CODE_MISMATCH = (
    "a Ray worker computed sweep {got} where the driver has {want}: the driver and the workers "
    "run different fairprune code; install the same version on every node."
)

_WORKER_CONTEXTS: OrderedDict[tuple[str, str], SweepContext] = OrderedDict()


def worker_context(config: dict, dense: dict, sweep_id: str) -> SweepContext:
    """The sweep's context in this worker process: built once, then reused by its next units.

    The driver's dense audit comes with ``dense`` (``"table"``), so a worker neither predicts nor
    audits the dense model again: it only loads the data and rebuilds the model.
    """
    record = parse_manifest(dense["manifest"], "the driver's dense manifest")
    key = (sweep_id, record.sha256)
    ctx = _WORKER_CONTEXTS.get(key)
    if ctx is None:
        table = table_from_payload(dense["table"]) if "table" in dense else None
        ctx = load_context(
            config_from_dict(SweepConfig, config),
            dense=dense_from_payload(dense),
            dense_table=table,
        )
        if ctx.sweep_id != sweep_id:
            raise FairpruneError(ERR_CODE_MISMATCH.format(got=ctx.sweep_id, want=sweep_id))
        _WORKER_CONTEXTS[key] = ctx
        while len(_WORKER_CONTEXTS) > 2:  # a worker process serves one sweep at a time
            _WORKER_CONTEXTS.popitem(last=False)
    return ctx


def unit_payloads(
    config: dict, dense: dict, unit: dict, sweep_id: str, threads: int
) -> Iterator[dict]:
    """What a Ray worker runs for one unit: ``run_unit``, each finished cell as a payload.

    Parameters
    ----------
    config : dict
        ``asdict`` of the ``SweepConfig``.
    dense : dict
        ``dense_payload`` of the dense checkpoint.
    unit : dict
        ``unit_to_dict`` of the ``PruneUnit``.
    sweep_id : str
        The driver's sweep id (a mismatch means different code on the worker: refused).
    threads : int
        The worker's share of its node's CPUs: torch's intra-op threads.

    Yields
    ------
    dict
        ``cell_payload`` of each cell, in the unit's order.
    """
    torch.set_num_threads(max(1, int(threads)))
    ctx = worker_context(config, dense, sweep_id)
    for result in run_unit(ctx, unit_from_dict(unit)):
        yield cell_payload(ctx, result)


def warm_worker(config: dict) -> bool:
    """Import fairprune and load the sweep's dataset in this worker (kept in its cache).

    Never raises: a bad dataset is reported by the unit that needs it, with its own message.
    """
    try:
        sweep_dataset(config_from_dict(SweepConfig, config))
    except Exception:  # noqa: BLE001 - see above
        return False
    return True


def run_task(task: Callable[..., Iterator[dict]], *args) -> Iterator[dict]:
    """The Ray task: ``task`` (``unit_payloads`` or a wrapper of it, any picklable callable)."""
    yield from task(*args)
