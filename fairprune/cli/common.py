"""What every command shares: argument blocks, option parsing, store paths, progress and tables."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import math
import os
import re
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from fairprune import paths
from fairprune.errors import FairpruneError

log = logging.getLogger("fairprune")


ERR_NO_CUDA = "--device {device}: this machine has no CUDA GPU; use --device cpu (or auto)."


ERR_NO_GPU_INDEX = (
    "--device {device}: this machine has {count} CUDA GPU(s); use cuda:0 to cuda:{last}."
)


ERR_NO_MPS = "--device mps: Apple's MPS backend is not available here; use --device cpu (or auto)."


ERR_OPTION_FORM = "--option takes KEY=VALUE, got {item!r}."


ERR_OPTION_RESERVED = "--option {key}=... is not a loader option; use {flag} instead."


_RESERVED_OPTIONS = {"name": "--dataset", "root": "--root", "csv": "--csv"}  # load_dataset's own


ERR_CANNOT_CREATE = "cannot create the {what} {path} ({reason}); choose another (--{flag})."


ERR_CANNOT_WRITE = "cannot write {path} ({reason}); choose a writable file (--{flag})."


ERR_NOT_REGULAR_OUT = "{path} exists and is not a regular file; choose a file path (--{flag})."


# ------------------------------------------------------------------ argument types
# argparse calls these on the raw text; a refusal is a usage error (exit 2, one ``error:`` line
# after the usage line), like any other malformed argument.


def _number(kind: type, ok: Callable[[float], bool], words: str) -> Callable[[str], float]:
    def parse(text: str):
        try:
            value = kind(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"must be {words}, got {text[:40]!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be {words}, got {text[:40]!r}")
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {words}, got {text[:40]!r}")
        return value

    parse.__name__ = words
    return parse


positive_int = _number(int, lambda v: 1 <= v <= 10**9, "a whole number >= 1")
count_int = _number(int, lambda v: 0 <= v <= 10**9, "a whole number >= 0")
seed_int = _number(int, lambda v: 0 <= v <= 2**32 - 1, "a whole number from 0 to 4294967295")
round_int = _number(int, lambda v: 1 <= v <= 256, "a channel multiple from 1 to 256")
epochs_int = _number(int, lambda v: 0 <= v <= 10_000, "a number of epochs from 0 to 10000")
train_epochs_int = _number(int, lambda v: 1 <= v <= 10_000, "a number of epochs from 1 to 10000")
batch_int = _number(int, lambda v: 1 <= v <= 65_536, "a batch size from 1 to 65536")
boot_int = _number(int, lambda v: 0 <= v <= 100_000, "a number of resamples from 0 to 100000")
learning_rate = _number(float, lambda v: 0 < v <= 10, "a finite learning rate in (0, 10]")
unit_float = _number(float, lambda v: 0 <= v <= 1, "a finite number in [0, 1]")
nonneg_float = _number(float, lambda v: 0 <= v <= 1e6, "a finite number >= 0")
reduction = _number(float, lambda v: 0 < v < 1, "a fraction strictly between 0 and 1")
beta_float = _number(float, lambda v: 0 < v <= 1, "a finite number in (0, 1]")
keep_float = _number(float, lambda v: 0 < v < 1, "a fraction strictly between 0 and 1")


_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d{1,3})?")


def device_name(text: str) -> str:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (availability is checked on use)."""
    if not _DEVICE.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"must be auto, cpu, cuda, cuda:N or mps, got {text[:40]!r}"
        )
    return text


def check_device(device: str) -> None:
    """Refuse a device this machine does not have, before any work starts."""
    if device.startswith("cuda") or device == "mps":
        import torch

        if device == "mps":
            if not torch.backends.mps.is_available():
                raise FairpruneError(ERR_NO_MPS)
            return
        if not torch.cuda.is_available():
            raise FairpruneError(ERR_NO_CUDA.format(device=device))
        index = int(device.split(":")[1]) if ":" in device else 0
        count = torch.cuda.device_count()
        if index >= count:
            raise FairpruneError(
                ERR_NO_GPU_INDEX.format(device=device, count=count, last=count - 1)
            )


def writable_file(path: str | Path, flag: str) -> Path:
    """``path`` as a file fairprune may (over)write: never a folder, FIFO or device."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "invalid name"
        raise FairpruneError(
            ERR_CANNOT_WRITE.format(path=str(path)[:200], reason=reason, flag=flag)
        ) from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise FairpruneError(ERR_NOT_REGULAR_OUT.format(path=path, flag=flag))
    if not os.path.isdir(path.parent if str(path.parent) else "."):
        reason = "no such folder"
        raise FairpruneError(ERR_CANNOT_WRITE.format(path=path, reason=reason, flag=flag))
    return path


class TqdmProgress:
    """Adapts ``progress(done, total, info)`` to a tqdm bar on stderr (hidden when not a TTY)."""

    def __init__(self, desc: str):
        from tqdm import tqdm

        self.bar = tqdm(total=1, desc=desc, disable=None, leave=False, dynamic_ncols=True)

    def __call__(self, done: int, total: int, info: str) -> None:
        if self.bar.total != total:
            self.bar.total = total
        self.bar.n = done
        self.bar.set_postfix_str(info[:60], refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def preset_slugs() -> dict[str, str]:
    """Command-line names of the paper's PW presets: "celeba-autobot" → "CelebA, AutoBot"."""
    from fairprune.loss import PW_PRESETS

    return {k.lower().replace(", ", "-").replace(" ", "-"): k for k in PW_PRESETS}


def add_store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models-dir", default=None, help="model store folder (default: models/)")
    p.add_argument(
        "--results",
        default=None,
        help="results store: an SQLite file (default: data/results.sqlite, or FAIRPRUNE_RESULTS) "
        "or postgresql://USER[:PASSWORD]@HOST[:PORT]/DB (a password is better in ~/.pgpass)",
    )


def add_data_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    from fairprune.data import DATASETS

    p.add_argument("--dataset", default="synthderm", choices=sorted(DATASETS), required=required)
    p.add_argument("--root", default=None, help="folder holding a real dataset")
    p.add_argument("--csv", default=None, help="CSV (path,label,group[,split]) for --dataset csv")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="loader option, e.g. variant=imbalanced, alpha=2, image_size=64 (repeatable)",
    )


def parse_options(items: Sequence[str]) -> dict:
    """``KEY=VALUE`` items as a dict; values are JSON when they parse (64, 0.5, [1, 2], null).

    Types and ranges are checked by the dataset layer against the loader's signature.
    """
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise FairpruneError(ERR_OPTION_FORM.format(item=item[:60]))
        if key.strip() in _RESERVED_OPTIONS:
            flag = _RESERVED_OPTIONS[key.strip()]
            raise FairpruneError(ERR_OPTION_RESERVED.format(key=key.strip(), flag=flag))
        try:
            out[key.strip()] = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            out[key.strip()] = value
    return out


def store_paths(args) -> tuple[Path, str | Path]:
    """The models folder (created) and the results store: a file ``Path`` or a PostgreSQL URL
    (a str: never through ``Path()``, which would collapse its ``//``)."""
    models = Path(args.models_dir) if args.models_dir else paths.models_dir()
    try:
        models.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "invalid name"
        raise FairpruneError(
            ERR_CANNOT_CREATE.format(
                what="models folder", path=str(models)[:200], reason=reason, flag="models-dir"
            )
        ) from None
    results = paths.as_location(args.results) if args.results else paths.results_location()
    return models, results


def cli_actor() -> str:
    """Who an operator action from this command line is recorded as: the OS user's login name."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no LOGNAME/USER and no passwd entry (a bare container)
        user = f"uid {os.getuid()}"
    return f"{user} (command line)"


def load_bundle(args):
    from fairprune.data import load_dataset

    return load_dataset(args.dataset, args.root, csv=args.csv, **parse_options(args.option))


def print_table(df, as_json: bool = False) -> None:
    if as_json:
        print(df.to_json(orient="records", indent=1))
        return
    import pandas as pd

    with pd.option_context("display.max_rows", 500, "display.width", 160):
        print(df.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def add_device_arg(p: argparse.ArgumentParser) -> None:
    """``--device``: checked for form here, for availability before the command runs."""
    p.add_argument(
        "--device", type=device_name, default="auto", help="auto (CUDA when present), cpu or cuda"
    )


def add_run_args(p: argparse.ArgumentParser, *, name: bool = True) -> None:
    """``--seed`` and ``--device`` (and ``--name``): every command that makes a model."""
    p.add_argument("--seed", type=seed_int, default=0)
    add_device_arg(p)
    if name:
        p.add_argument("--name", default=None, help="checkpoint name")


def add_pw_args(p: argparse.ArgumentParser) -> None:
    """The PW loss's ``--w-min`` (in [0, 1]) and ``--gamma`` (>= 0); reference 0.75 and 5."""
    p.add_argument("--w-min", type=unit_float, default=0.75)
    p.add_argument("--gamma", type=nonneg_float, default=5.0)


def add_fit_args(
    p: argparse.ArgumentParser, *, epochs: int, lr: float, at_least_one: bool = False
) -> None:
    """``--epochs``, ``--lr`` and ``--batch-size`` of a training or fine-tuning run.

    ``at_least_one``: training from scratch needs an epoch; fine-tuning may take 0 (prune only).
    """
    p.add_argument("--epochs", type=train_epochs_int if at_least_one else epochs_int,
                   default=epochs)  # fmt: skip
    p.add_argument("--lr", type=learning_rate, default=lr)
    p.add_argument("--batch-size", type=batch_int, default=128)


def add_fair_prune_args(p: argparse.ArgumentParser) -> None:
    """Options of the fairness-aware unstructured criteria (FairGRAPE, FairPrune)."""
    p.add_argument("--beta", type=beta_float, default=0.3, help="FairPrune β in (0, 1]")
    p.add_argument("--privileged", default="", help="FairPrune: group (default best dense)")
    p.add_argument("--unprivileged", default="", help="FairPrune: group (default worst dense)")
    p.add_argument(
        "--keep-per-iter", type=keep_float, default=0.9, help="FairGRAPE: weights kept per round"
    )
    p.add_argument(
        "--round-to", type=round_int, default=1,
        help="structured criteria: keep channel counts multiples of N, the CPU's vector width "
        "(16 on AVX-512, 8 on AVX2), so the pruned model runs near its FLOPs ideal (see "
        "bench/run.py), at the cost of coarser FLOPs steps",
    )  # fmt: skip


def fair_prune_options(args) -> dict:
    """``PruneConfig`` fields from ``add_fair_prune_args``."""
    return {
        "fairprune_beta": args.beta,
        "fairprune_privileged": args.privileged,
        "fairprune_unprivileged": args.unprivileged,
        "fairgrape_keep_per_iter": args.keep_per_iter,
        "round_to": args.round_to,
    }


def add_constrained_args(p: argparse.ArgumentParser) -> None:
    """Options of the ``constrained`` fine-tuning loss (Hashemizadeh et al. 2024)."""
    p.add_argument(
        "--epsilon", type=unit_float, default=0.01, help="constrained: ψ_g tolerance (paper 0.01)"
    )
    p.add_argument(
        "--dual-lr", type=learning_rate, default=0.01, help="constrained: multiplier step"
    )


def constrained_options(args) -> dict:
    """``FinetuneConfig`` fields from ``add_constrained_args``."""
    return {"constrained_tolerance": args.epsilon, "constrained_dual_lr": args.dual_lr}
