"""This process's connection to Ray: a local Ray it starts, or a cluster at an address.

One connection per process, shared by every executor (the dashboard runs sweep after sweep on the
Ray its first sweep started); ``hold``/``release`` count the executors running on it, so it is
not switched to another cluster, nor shut down, under a running sweep.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from fairprune.errors import FairpruneError

ERR_NO_RAY = (
    "the Ray executor needs the ray package: pip install -r requirements.txt (or 'ray[default]')."
)
ERR_CONNECT = (
    "cannot connect to the Ray cluster at {address} ({reason}); start one with `ray start "
    "--head`, or leave the address empty to run a local Ray on this machine."
)
ERR_OTHER_CLUSTER = (
    "a sweep is running on Ray at {have}; wait for it to finish (or cancel it) before sending one "
    "to {want}."
)
LOCAL = "local"
"""How a local Ray (started by this process, no address) is named in messages and job states."""

_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # …/fairprune: shipped to a remote cluster
_STARTED: dict[str, str] = {}  # "address" → what this process ray.init-ed (cleared on shutdown)
_CONNECT = threading.Lock()  # the dashboard's sweep threads may connect at the same moment
_KEEPER: list[threading.Event] = []  # releases the thread that called ray.init (``_init_kept``)
_ACTIVE = {"runs": 0}  # executors of this process running on the current connection


def import_ray():
    """The ``ray`` module, or ``ERR_NO_RAY`` when it is not installed."""
    try:
        import ray
    except ImportError:
        raise FairpruneError(ERR_NO_RAY) from None
    return ray


def local_cpus() -> int:
    """CPUs this process may use (its affinity mask, which containers narrow), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _init_kept(ray, **kwargs) -> None:
    """``ray.init`` in a thread that lives as long as the connection does.

    Ray's driver hangs once the thread that called ``ray.init`` has exited: every later task
    export blocks for good (ray 2.60; the dashboard connects from a sweep's thread, which ends with
    the sweep, and the next sweep reuses the connection). The keeper thread is let go by
    ``_shutdown``.
    """
    box: dict = {}
    ready, release = threading.Event(), threading.Event()

    def keep() -> None:
        try:
            ray.init(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - raised again in the calling thread
            box["error"] = exc
            return
        finally:
            ready.set()
        release.wait()

    threading.Thread(target=keep, daemon=True, name="fairprune-ray-connection").start()
    ready.wait()
    if "error" in box:
        raise box["error"]
    _KEEPER.append(release)


def _shutdown(ray) -> None:
    """Disconnect (stopping a local Ray this process started) and let the keeper thread end."""
    if ray.is_initialized():
        ray.shutdown()
    _STARTED.clear()
    while _KEEPER:
        _KEEPER.pop().set()


def connect(address: str | None = None) -> bool:
    """Join the Ray cluster at ``address``, or start a local Ray (no dashboard) when None.

    Returns True when this call started the connection (the caller shuts it down), False when
    this process was already connected (a test's ``ray.init``, or an earlier sweep of the app).
    """
    with _CONNECT:
        return _connect(import_ray(), address)


def _connect(ray, address: str | None) -> bool:
    want = address or LOCAL
    if ray.is_initialized():
        have = _STARTED.get("address")
        if have is None or have == want:
            return False
        if _ACTIVE["runs"]:
            raise FairpruneError(ERR_OTHER_CLUSTER.format(have=have, want=want))
        _shutdown(ray)  # idle, and ours: switch to the place asked for
    kwargs = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address is None:
        # workers import fairprune from where this process does, whatever their working directory
        path = os.pathsep.join(
            p for p in (str(_PACKAGE_DIR.parent), os.environ.get("PYTHONPATH")) if p
        )
        _init_kept(
            ray,
            num_cpus=local_cpus(),
            include_dashboard=False,
            runtime_env={"env_vars": {"PYTHONPATH": path}},
            **kwargs,
        )
    else:
        try:
            # the cluster runs this driver's fairprune code: same code, same models
            _init_kept(
                ray, address=address, runtime_env={"py_modules": [str(_PACKAGE_DIR)]}, **kwargs
            )
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise FairpruneError(ERR_CONNECT.format(address=address, reason=reason)) from None
    _STARTED["address"] = want
    return True


def shutdown() -> None:
    """Disconnect from Ray (stopping a local Ray this process started)."""
    _shutdown(import_ray())


def hold(address: str | None) -> bool:
    """Connect as ``connect`` does and count one more executor running on the connection.

    Returns True when this call started the connection. Each ``hold`` is paired with a
    ``release``; a connection is never switched to another cluster while it is held.
    """
    with _CONNECT:
        started = _connect(import_ray(), address)
        _ACTIVE["runs"] += 1
    return started


def release(*, held: bool, disconnect: bool) -> None:
    """Let go of a ``hold`` (when ``held``), then disconnect if asked and no executor holds it."""
    with _CONNECT:
        if held:
            _ACTIVE["runs"] -= 1
        if disconnect and not _ACTIVE["runs"]:
            _shutdown(import_ray())


def active_runs() -> int:
    """Executors of this process holding the current connection."""
    return _ACTIVE["runs"]


def cluster_shape() -> tuple[int, float, int]:
    """(CPUs in the cluster, GPUs in the cluster, CPUs of its largest live node)."""
    ray = import_ray()
    total = ray.cluster_resources()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    biggest = max((int(n.get("Resources", {}).get("CPU", 0)) for n in nodes), default=0)
    return int(total.get("CPU", 0)), float(total.get("GPU", 0.0)), biggest
