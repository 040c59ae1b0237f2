"""Commands over grids of models: ``demo``, ``sweep``, ``export``, ``reproduce``."""

from __future__ import annotations

import os
from dataclasses import asdict, replace
from pathlib import Path

from fairprune import paths
from fairprune.cli.common import (
    ERR_CANNOT_WRITE,
    TqdmProgress,
    add_constrained_args,
    add_data_args,
    add_device_arg,
    add_fair_prune_args,
    add_fit_args,
    add_pw_args,
    add_store_args,
    boot_int,
    cli_actor,
    constrained_options,
    fair_prune_options,
    log,
    parse_options,
    preset_slugs,
    print_table,
    reduction,
    seed_int,
    store_paths,
    writable_file,
)
from fairprune.errors import FairpruneError

ERR_NO_STORE = "no results store at {path}; run a sweep first or pass an existing file (--results)."


ERR_DEMO_LEVEL = "the demo has no FLOPs level {value:g}; its levels are: {levels}."


ERR_FIGURE_FOLDER = "cannot write the figure to {path} ({reason}); choose another folder (--out)."


def run_recorded(config, *, store, models, dense_sha: str, command: str, **kwargs) -> str:
    """``run_sweep`` with the operator's actions in the store's log: "sweep started" once the
    sweep holds its lock and has cells to run, "sweep cancelled" on Ctrl-C (a SIGKILL leaves no
    record; rerunning resumes and records a new start).

    Parameters
    ----------
    config : SweepConfig
    store : ResultsStore
    models : path
    dense_sha : str
        The dense checkpoint's content hash (the sweep id is ``sweep_id_for(config, dense_sha)``).
    command : str
        The command that runs it (``sweep``, ``demo``, ``reproduce``), for the action's detail.
    **kwargs
        ``run_sweep``'s other arguments (``progress`` included).
    """
    from fairprune.sweep.grid import sweep_id_for
    from fairprune.sweep.runner import run_sweep

    sweep_id = sweep_id_for(config, dense_sha)
    actor = cli_actor()
    shown = kwargs.pop("progress", None) or (lambda done, total, info: None)
    started: list[bool] = []

    def progress(done: int, total: int, info: str) -> None:
        # run_sweep's first report: the sweep is registered, its cells planned (a sweep with
        # nothing left to run started nothing)
        if not started and done < total:
            started.append(True)
            where = getattr(kwargs.get("executor"), "name", None) or "serial"
            detail = f"{command}: {info} ({where}; {done} of {total} stored)"
            store.record_action(
                actor=actor, action="sweep started", subject=sweep_id, detail=detail
            )
        shown(done, total, info)

    try:
        return run_sweep(config, store=store, models_dir=models, progress=progress, **kwargs)
    except KeyboardInterrupt:
        if started:
            detail = f"{command}: interrupted (Ctrl-C); finished cells are kept"
            store.record_action(
                actor=actor, action="sweep cancelled", subject=sweep_id, detail=detail
            )
        raise


def cmd_demo(args) -> int:
    from fairprune.demo import (
        CONTROL_PRESET,
        DEMO_PRESET,
        demo_sweep_config,
        ensure_demo_model,
        methods_sweep_config,
    )
    from fairprune.sweep.distributed import make_executor
    from fairprune.sweep.results import ResultsStore
    from fairprune.sweep.runner import summary_table

    models, results = store_paths(args)
    preset = CONTROL_PRESET if args.control else DEMO_PRESET
    print(
        "SynthDerm is a SYNTHETIC dermatology-like dataset generated on the spot (no real patients)."
    )
    if preset == DEMO_PRESET:
        print(
            "Preset 'biased': dark skin is rare in training (balanced test groups), as in the "
            "paper's settings; --control runs the unbiased control."
        )
    else:
        print("Preset 'control': every skin tone well represented in training (unbiased control).")
    bar = TqdmProgress("dense model")
    record = ensure_demo_model(models, progress=bar, preset=preset)
    bar.close()
    store = ResultsStore(results)
    bar = TqdmProgress("sweep")
    if args.methods:
        config = methods_sweep_config(record.path, preset=preset)
    else:
        config = demo_sweep_config(record.path, pair=args.criteria, arms=args.arms, preset=preset)
    only = _demo_only(config, args.only_seeds, args.only_levels)
    executor = make_executor(args.executor, workers=args.workers)
    sweep_id = run_recorded(
        config, store=store, models=models, dense_sha=record.sha256, command="demo", progress=bar,
        only=only, executor=executor,
    )  # fmt: skip
    bar.close()
    shown = paths.display_location(results)
    if args.methods:
        from fairprune.sweep.methods import methods_table, methods_text

        print(f"dense model: {record.path}  results: {shown}  sweep: {sweep_id}")
        print(methods_text(methods_table(store, sweep_id)))
        return 0
    print(f"dense model: {record.path}  results: {shown}  sweep: {sweep_id}")
    print("test accuracy per skin-tone group, mean over seeds (gap = max - min, accuracy units):")
    print_table(summary_table(store, sweep_id))
    if only is None:
        from fairprune.sweep.findings import summary

        print()
        print(summary(store, sweep_id)["headline"])
    return 0


def _demo_only(config, seeds, levels):
    """``run_sweep``'s ``only``: the cells of these seeds and levels (None: all of them)."""
    if seeds is None and levels is None:
        return None
    if levels is not None:
        known = [float(v) for v in config.reductions]
        for value in levels:
            if not any(abs(value - k) < 1e-9 for k in known):
                shown = ", ".join(f"{k:g}" for k in known)
                raise FairpruneError(ERR_DEMO_LEVEL.format(value=value, levels=shown))

    def only(cell) -> bool:
        return (seeds is None or cell.seed in seeds) and (
            levels is None or any(abs(cell.target_reduction - v) < 1e-9 for v in levels)
        )

    return only


def cmd_sweep(args) -> int:
    from fairprune.config import FinetuneConfig, PruneConfig, SweepConfig
    from fairprune.loss import PW_PRESETS
    from fairprune.nets.imports import load_model
    from fairprune.sweep.distributed import make_executor
    from fairprune.sweep.grid import validate_sweep
    from fairprune.sweep.results import ResultsStore
    from fairprune.sweep.runner import summary_table

    models, results = store_paths(args)
    w_min, gamma = args.w_min, args.gamma
    if args.preset:
        w_min, gamma = PW_PRESETS[preset_slugs()[args.preset]]
    cfg = SweepConfig(
        dataset=args.dataset,
        data_root=args.root,
        csv=args.csv,
        dataset_options=parse_options(args.option),
        dense_model=args.dense,
        criteria=tuple(args.criteria),
        losses=tuple(args.losses),
        reductions=tuple(args.levels),
        seeds=tuple(args.seeds),
        min_weight=w_min,
        gamma=gamma,
        paired=args.paired,
        finetune=FinetuneConfig(
            epochs=args.epochs,
            lr=args.lr,
            batch_size=args.batch_size,
            device=args.device,
            **constrained_options(args),
        ),
        prune=PruneConfig(device=args.device, **fair_prune_options(args)),
        n_boot=args.n_boot,
        name=args.name or "",
    )
    executor = make_executor(
        args.executor, workers=args.workers, address=args.address, gpus_per_cell=args.gpus_per_cell
    )  # bad --workers/--gpus-per-cell fail here, before anything runs
    validate_sweep(cfg)
    _, dense = load_model(cfg.dense_model)  # its hash names the sweep (the action's subject)
    store = ResultsStore(results)
    bar = TqdmProgress("sweep")
    sweep_id = run_recorded(cfg, store=store, models=models, dense_sha=dense.sha256,
                            command="sweep", progress=bar, executor=executor)  # fmt: skip
    bar.close()
    print(f"sweep {sweep_id} -> {paths.display_location(results)}")
    print_table(summary_table(store, sweep_id))
    return 0


def cmd_export(args) -> int:
    from fairprune.sweep.results import ResultsStore

    _, results = store_paths(args)
    # reading must not create an empty store file (a server's store is its database: it exists)
    if not paths.is_store_url(results) and not os.path.isfile(results):
        raise FairpruneError(ERR_NO_STORE.format(path=results))
    out = writable_file(args.out, "out")  # before any work: not a folder, FIFO or device
    store = ResultsStore(results)
    df = store.export_long(args.sweep)
    try:
        df.to_csv(out, index=False)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise FairpruneError(ERR_CANNOT_WRITE.format(path=out, reason=reason, flag="out")) from None
    print(f"wrote {len(df)} rows to {out}")
    return 0


def cmd_reproduce(args) -> int:
    from fairprune.app.charts import accuracy_vs_reduction
    from fairprune.data import load_dataset
    from fairprune.nets.architectures import build_model
    from fairprune.nets.checkpoint import list_models, save_dense_model
    from fairprune.reproduce import get_experiment, quick, sweep_config
    from fairprune.sweep.results import ResultsStore
    from fairprune.sweep.runner import summary_table
    from fairprune.train import train_dense

    models, results = store_paths(args)
    exp = get_experiment(args.experiment)
    if args.quick:
        exp = quick(exp)
    exp_train = replace(exp.train, device=args.device)
    bundle = load_dataset(exp.dataset, args.data_root, **exp.dataset_options)
    num_outputs = 1 if exp.num_outputs_binary_single_logit else bundle.num_classes
    name = f"{args.experiment}{'-quick' if args.quick else ''}-{exp.arch}-dense"
    record = next(
        (
            r
            for r in list_models(models)
            if r.name == name and r.dataset_fingerprint == bundle.fingerprint
        ),
        None,
    )
    if record is None:
        model = build_model(exp.arch, num_outputs, bundle.input_size)
        bar = TqdmProgress("dense")
        train_dense(model, bundle.splits["train"], exp_train, progress=bar)
        bar.close()
        record = save_dense_model(
            model, models, name, bundle=bundle, arch=exp.arch, num_outputs=num_outputs,
            config={"train": asdict(exp_train), "experiment": args.experiment},
        )  # fmt: skip
    cfg = sweep_config(exp, dense_path=record.path, data_root=args.data_root, device=args.device)
    store = ResultsStore(results)
    bar = TqdmProgress("sweep")
    sweep_id = run_recorded(cfg, store=store, models=models, dense_sha=record.sha256,
                            command="reproduce", progress=bar)  # fmt: skip
    bar.close()
    out_dir = Path(args.out or paths.data_dir() / "figures")
    fig = accuracy_vs_reduction(store.export_long(sweep_id))
    html = out_dir / f"{args.experiment}.html"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fig.write_html(writable_file(html, "out"), include_plotlyjs=True)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise FairpruneError(ERR_FIGURE_FOLDER.format(path=out_dir, reason=reason)) from None
    png = out_dir / f"{args.experiment}.png"
    try:
        fig.write_image(png, width=1400, height=800)
        print(f"figure: {html} and {png}")
    except Exception as exc:  # kaleido needs a Chromium; the HTML is always written
        log.warning("PNG export failed (%s); the HTML figure is complete", exc)
        print(f"figure: {html} (PNG export unavailable: {str(exc).splitlines()[0][:120]})")
    print_table(summary_table(store, sweep_id))
    return 0


def register(sub) -> None:
    """Add ``demo``, ``sweep``, ``export`` and ``reproduce`` to the sub-command parsers."""
    from fairprune.demo import DEMO_ARMS, DEMO_LEVELS, DEMO_PAIR, DEMO_PAIRS, DEMO_SEEDS
    from fairprune.loss import LOSSES
    from fairprune.reproduce import EXPERIMENTS
    from fairprune.sweep.distributed import EXECUTORS
    from fairprune.sweep.grid import criterion_names

    levels = ", ".join(f"{v:.4g}" for v in DEMO_LEVELS)
    p = sub.add_parser(
        "demo",
        help="the paper's protocol on SynthDerm: Taylor + CE vs PW-Taylor + PW, per-group table",
        description=f"SynthDerm (preset 'biased': dark skin rare in training) → a small dense CNN "
        f"→ X + CE against PW-X + PW at FLOPs reductions {levels}, seeds "
        f"{', '.join(map(str, DEMO_SEEDS))} → per-group table and headline.",
    )
    add_store_args(p)
    p.add_argument(
        "--criteria",
        default=DEMO_PAIR,
        choices=list(DEMO_PAIRS),
        help="the pair compared: taylor (Taylor + CE vs PW-Taylor + PW, the default) or autobot "
        "(AutoBot + CE vs PW-AutoBot + PW)",
    )
    p.add_argument(
        "--arms",
        default=DEMO_ARMS[0],
        choices=list(DEMO_ARMS),
        help="paper: the pair's two arms; all: both criteria with CE, PW and the ablations "
        "pw_weights and pw_soft (the off-diagonal arms included)",
    )
    p.add_argument(
        "--control",
        action="store_true",
        help="the unbiased control: SynthDerm's 'control' preset (every tone well represented)",
    )
    p.add_argument(
        "--only-seeds",
        nargs="+",
        type=seed_int,
        default=None,
        help="run only these seeds of the demo's grid now (a later run fills in the rest)",
    )
    p.add_argument(
        "--only-levels",
        nargs="+",
        type=reduction,
        default=None,
        help=f"run only these of the demo's FLOPs levels ({levels}) now (a later run fills in "
        "the rest); `make demo` runs seed 0 at the top level first",
    )
    p.add_argument(
        "--methods",
        action="store_true",
        help="instead of the pair: magnitude, FairGRAPE and FairPrune (unstructured, 50%% and "
        "90%% weight sparsity) × CE, PW and constrained fine-tuning, 3 seeds, side by side",
    )
    p.add_argument("--executor", choices=sorted(EXECUTORS), default="serial")
    p.add_argument("--workers", type=int, default=None, help="ray: units in flight at once")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("sweep", help="criterion × loss × FLOPs level × seed grid into the store")
    add_store_args(p)
    add_data_args(p)
    p.add_argument("--dense", required=True, help="dense checkpoint every cell starts from")
    p.add_argument("--criteria", nargs="+", default=["l1"], choices=criterion_names())
    p.add_argument("--losses", nargs="+", default=["ce", "pw"], choices=sorted(LOSSES))
    p.add_argument("--levels", nargs="+", type=reduction, default=[0.5, 0.75, 0.9, 0.95])
    p.add_argument("--seeds", nargs="+", type=seed_int, default=[0])
    add_pw_args(p)
    p.add_argument("--preset", choices=sorted(preset_slugs()), help="the paper's (w_min, γ)")
    p.add_argument("--paired", action="store_true", help="pw_* criteria with PW losses only")
    add_fair_prune_args(p)
    add_constrained_args(p)
    add_fit_args(p, epochs=3, lr=2e-3)
    p.add_argument("--n-boot", type=boot_int, default=200)
    add_device_arg(p)
    p.add_argument("--name", default=None)
    p.add_argument(
        "--executor",
        choices=list(EXECUTORS),
        default="serial",
        help="serial: cells one after another in this process; ray: on Ray workers (a local Ray, "
        "or the cluster at --address); only this process writes the models and the results",
    )
    p.add_argument("--workers", type=int, default=None, help="ray: units in flight at once "
                   "(default: one per CPU of the cluster, or per GPU share)")  # fmt: skip
    p.add_argument("--address", default=None, help="ray: 'auto' (the cluster of `ray start`) or "
                   "ray://HOST:10001; default: start a local Ray")  # fmt: skip
    p.add_argument("--gpus-per-cell", type=float, default=0.0,
                   help="ray: GPUs each unit reserves (fractions share a GPU)")  # fmt: skip
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("export", help="write the results store as long-format CSV")
    add_store_args(p)
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument("--sweep", default=None, help="one sweep id (default: all)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("reproduce", help="rerun one of the paper's experiments on your data")
    add_store_args(p)
    p.add_argument("experiment", choices=sorted(EXPERIMENTS))
    p.add_argument("--data-root", required=True, help="folder holding the dataset")
    add_device_arg(p)
    p.add_argument("--quick", action="store_true", help="CPU-sized subset, minutes")
    p.add_argument("--out", default=None, help="folder for the figure (default: data/figures)")
    p.set_defaults(func=cmd_reproduce)
