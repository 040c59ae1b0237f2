"""What every command shares: argument blocks, option parsing, store paths, progress and tables."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from fairprune import paths
from fairprune.errors import FairpruneError

log = logging.getLogger("fairprune")


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


def _add_store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models-dir", default=None, help="model store folder (default: models/)")
    p.add_argument("--results", default=None, help="SQLite results file (default: data/)")


def _add_data_args(p: argparse.ArgumentParser, required: bool = False) -> None:
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


def _options(items: Sequence[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise FairpruneError(f"--option takes KEY=VALUE, got {item!r}.")
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _store_paths(args) -> tuple[Path, Path]:
    models = Path(args.models_dir) if args.models_dir else paths.models_dir()
    try:
        models.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FairpruneError(
            f"cannot create the models folder {models} ({exc.strerror}); choose another (--models-dir)."
        ) from None
    results = Path(args.results) if args.results else paths.results_path()
    return models, results


def _bundle(args):
    from fairprune.data import load_dataset

    return load_dataset(args.dataset, args.root, csv=args.csv, **_options(args.option))


def _print_table(df, as_json: bool = False) -> None:
    if as_json:
        print(df.to_json(orient="records", indent=1))
        return
    import pandas as pd

    with pd.option_context("display.max_rows", 500, "display.width", 160):
        print(df.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def add_run_args(p: argparse.ArgumentParser, *, name: bool = True) -> None:
    """``--seed`` and ``--device`` (and ``--name``): every command that makes a model."""
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    if name:
        p.add_argument("--name", default=None, help="checkpoint name")


def add_pw_args(p: argparse.ArgumentParser) -> None:
    """The PW loss's ``--w-min`` and ``--gamma`` (reference defaults 0.75 and 5)."""
    p.add_argument("--w-min", type=float, default=0.75)
    p.add_argument("--gamma", type=float, default=5.0)


def add_fit_args(p: argparse.ArgumentParser, *, epochs: int, lr: float) -> None:
    """``--epochs``, ``--lr`` and ``--batch-size`` of a training or fine-tuning run."""
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--batch-size", type=int, default=128)


def add_fair_prune_args(p: argparse.ArgumentParser) -> None:
    """Options of the fairness-aware unstructured criteria (FairGRAPE, FairPrune)."""
    p.add_argument("--beta", type=float, default=0.3, help="FairPrune β in (0, 1]")
    p.add_argument("--privileged", default="", help="FairPrune: group (default best dense)")
    p.add_argument("--unprivileged", default="", help="FairPrune: group (default worst dense)")
    p.add_argument(
        "--keep-per-iter", type=float, default=0.9, help="FairGRAPE: weights kept per round"
    )


def fair_prune_options(args) -> dict:
    """``PruneConfig`` fields from ``add_fair_prune_args``."""
    return {
        "fairprune_beta": args.beta,
        "fairprune_privileged": args.privileged,
        "fairprune_unprivileged": args.unprivileged,
        "fairgrape_keep_per_iter": args.keep_per_iter,
    }


def add_constrained_args(p: argparse.ArgumentParser) -> None:
    """Options of the ``constrained`` fine-tuning loss (Hashemizadeh et al. 2024)."""
    p.add_argument(
        "--epsilon", type=float, default=0.01, help="constrained: ψ_g tolerance (paper 0.01)"
    )
    p.add_argument("--dual-lr", type=float, default=0.01, help="constrained: multiplier step")


def constrained_options(args) -> dict:
    """``FinetuneConfig`` fields from ``add_constrained_args``."""
    return {"constrained_tolerance": args.epsilon, "constrained_dual_lr": args.dual_lr}
