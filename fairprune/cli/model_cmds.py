"""Commands on one model: ``train``, ``prune``, ``finetune``, ``export-onnx``."""

from __future__ import annotations

from dataclasses import asdict

from fairprune.cli.common import (
    TqdmProgress,
    add_constrained_args,
    add_data_args,
    add_fair_prune_args,
    add_fit_args,
    add_pw_args,
    add_run_args,
    add_store_args,
    constrained_options,
    fair_prune_options,
    load_bundle,
    parse_options,
    reduction,
    store_paths,
)
from fairprune.errors import FairpruneError


def cmd_train(args) -> int:
    from fairprune.config import TrainConfig
    from fairprune.nets.architectures import build_model
    from fairprune.nets.checkpoint import save_dense_model
    from fairprune.train import train_dense
    from fairprune.utils import seed_everything

    models, _ = store_paths(args)
    bundle = load_bundle(args)
    cfg = TrainConfig(
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
        augment=args.augment,
        device=args.device,
    )
    num_outputs = 1 if args.single_logit and bundle.num_classes == 2 else bundle.num_classes
    seed_everything(args.seed)  # before building: the initial weights come from the seed too
    model = build_model(args.arch, num_outputs, bundle.input_size)
    bar = TqdmProgress("train")
    train_dense(model, bundle.splits["train"], cfg, progress=bar)
    bar.close()
    name = args.name or f"{bundle.name}-{args.arch}-dense-s{args.seed}"
    record = save_dense_model(
        model, models, name, bundle=bundle, arch=args.arch, num_outputs=num_outputs,
        config={"train": asdict(cfg), "dataset_options": parse_options(args.option)},
    )  # fmt: skip
    print(record.path)
    return 0


def _calib_for(args, cfg):
    from fairprune.evaluate import dense_outputs
    from fairprune.nets.imports import load_model
    from fairprune.prune.registry import CRITERIA

    if not CRITERIA[cfg.criterion].needs_data:
        return None
    bundle = load_bundle(args)
    dense, _ = load_model(args.dense or args.model)
    split = bundle.splits["train"]
    logits = dense_outputs(dense, split)
    out = []
    for x, y, _g, idx in split.batches(cfg.calib_batch_size, shuffle=True, seed=cfg.seed):
        out.append((x, y, logits[idx]))
        if len(out) >= cfg.calib_batches:
            break
    return out


def cmd_prune(args) -> int:
    from fairprune.config import PruneConfig
    from fairprune.nets.checkpoint import save_model
    from fairprune.nets.imports import load_model
    from fairprune.nets.onnx_runtime import refuse_onnx
    from fairprune.prune.registry import CRITERIA, is_unstructured, prune_model

    refuse_onnx(args.model)
    models, _ = store_paths(args)
    model, record = load_model(args.model)
    pcfg = PruneConfig(
        criterion=args.criterion,
        target_reduction=args.target,
        min_weight=args.w_min,
        gamma=args.gamma,
        seed=args.seed,
        device=args.device,
        **fair_prune_options(args),
    )
    if is_unstructured(args.criterion):
        # single weights zeroed in place: the target is weight sparsity; dense kernels still
        # multiply the zeros, so FLOPs and latency do not fall
        spec = CRITERIA[args.criterion]
        bundle = load_bundle(args) if spec.needs_data else None
        res = prune_model(
            model,
            pcfg,
            input_size=record.input_size,
            split=bundle.splits["train"] if bundle else None,
            group_names=bundle.group_names if bundle else None,
        )
        pruned, sparsity = res.model, res.weight_sparsity
        flops, macs, params = 0.0, record.macs, record.params
        print(f"weight sparsity reached: {sparsity:.4f} (FLOPs unchanged: unstructured)")
        cfg = {"prune": asdict(pcfg), "weight_sparsity": sparsity}
    else:
        calib = _calib_for(args, pcfg)
        res = prune_model(model, pcfg, input_size=record.input_size, calib=calib)
        pruned, flops, macs, params = (
            res.model,
            res.flops_reduction,
            res.macs_after,
            res.params_after,
        )
        print(f"FLOPs reduction reached: {flops:.4f} (target {args.target:.4f})")
        cfg = {"prune": asdict(pcfg)}
    fields = asdict(record)
    for k in ("name", "sha256", "file_size", "created", "path", "layer_shapes", "format_version"):
        fields.pop(k, None)
    fields.update(
        kind="pruned",
        parent=record.sha256,
        criterion=args.criterion,
        loss="none",
        target_reduction=args.target,
        flops_reduction=flops,
        macs=macs,
        params=params,
        config={**record.config, **cfg},
    )
    name = args.name or f"{record.name}-{args.criterion}-r{round(args.target * 1e4):04d}"
    out = save_model(pruned.cpu(), models, name, **fields)
    print(out.path)
    return 0


def cmd_finetune(args) -> int:
    from fairprune.config import FinetuneConfig
    from fairprune.evaluate import dense_outputs
    from fairprune.loss import get_loss
    from fairprune.nets.checkpoint import save_model
    from fairprune.nets.imports import load_model
    from fairprune.nets.onnx_runtime import refuse_onnx
    from fairprune.train import finetune

    refuse_onnx(args.model)
    models, _ = store_paths(args)
    model, record = load_model(args.model)
    bundle = load_bundle(args)
    cfg = FinetuneConfig(
        loss=args.loss,
        min_weight=args.w_min,
        gamma=args.gamma,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
        **constrained_options(args),
    )
    logits = None
    if get_loss(args.loss).uses_dense:
        if not args.dense:
            raise FairpruneError(f"--loss {args.loss} needs --dense DENSE_CHECKPOINT.")
        dense, _ = load_model(args.dense)
        logits = dense_outputs(dense, bundle.splits["train"])
    bar = TqdmProgress("finetune")
    finetune(model, bundle.splits["train"], cfg, dense_logits=logits, progress=bar)
    bar.close()
    fields = asdict(record)
    for k in ("name", "sha256", "file_size", "created", "path", "layer_shapes", "format_version"):
        fields.pop(k, None)
    fields.update(loss=args.loss, config={**record.config, "finetune": asdict(cfg)})
    out = save_model(model.cpu(), models, args.name or f"{record.name}-{args.loss}", **fields)
    print(out.path)
    return 0


def cmd_export_onnx(args) -> int:
    from fairprune.nets.onnx_export import export_checkpoint

    report = export_checkpoint(
        args.model, args.out, arch=args.arch, input_size=args.input_size, exporter=args.exporter
    )
    batches = " and ".join(str(b) for b in report.batches)
    print(
        f"verified against onnxruntime: max |PyTorch - ONNX| logit difference "
        f"{report.max_abs_diff:.1e} on batches of {batches} ({report.exporter} exporter, "
        f"opset {report.opset}, dynamic batch, {report.file_size / 1024:.0f} KB)"
    )
    print(report.path)
    return 0


def register(sub) -> None:
    """Add ``train``, ``prune``, ``finetune`` and ``export-onnx`` to the sub-command parsers."""
    from fairprune.loss import LOSSES
    from fairprune.nets.architectures import ARCHITECTURES
    from fairprune.nets.onnx_export import EXPORTERS
    from fairprune.prune.registry import CRITERIA, is_unstructured
    from fairprune.sweep.grid import criterion_names

    unstructured = [name for name in CRITERIA if is_unstructured(name)]

    p = sub.add_parser("train", help="train a dense model from scratch and save it")
    add_store_args(p)
    add_data_args(p)
    p.add_argument("--arch", default="demo_cnn", choices=sorted(ARCHITECTURES))
    add_fit_args(p, epochs=12, lr=3e-3, at_least_one=True)
    p.add_argument("--augment", action="store_true", help="random flips during training")
    p.add_argument(
        "--single-logit", action="store_true", help="binary task with one sigmoid output"
    )
    add_run_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("prune", help="prune a checkpoint to a FLOPs reduction (no fine-tuning)")
    add_store_args(p)
    add_data_args(p)
    p.add_argument("--model", required=True, help="checkpoint to prune")
    p.add_argument("--dense", default=None, help="dense model for PW criteria (default: --model)")
    p.add_argument("--criterion", default="l1", choices=criterion_names())
    p.add_argument(
        "--target",
        type=reduction,
        required=True,
        help=f"FLOPs reduction, e.g. 0.9 (weight sparsity for {', '.join(unstructured)})",
    )
    add_pw_args(p)
    add_fair_prune_args(p)
    add_run_args(p)
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser(
        "finetune", help="fine-tune a pruned checkpoint with CE, PW, an ablation or constrained"
    )
    add_store_args(p)
    add_data_args(p)
    p.add_argument("--model", required=True, help="pruned checkpoint")
    p.add_argument("--dense", default=None, help="dense parent (needed by PW and constrained)")
    p.add_argument("--loss", default="pw", choices=sorted(LOSSES))
    add_pw_args(p)
    add_constrained_args(p)
    add_fit_args(p, epochs=4, lr=2e-3)
    add_run_args(p)
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser(
        "export-onnx",
        help="export a checkpoint to ONNX (opset 18, dynamic batch), verified by onnxruntime",
    )
    p.add_argument("model", help="checkpoint (.safetensors/.json, or .pt/.pth with --arch)")
    p.add_argument("--out", required=True, help="FILE.onnx to write")
    p.add_argument("--arch", default=None, choices=sorted(ARCHITECTURES), help="for .pt/.pth")
    p.add_argument("--input-size", type=int, default=None, help="for .pt/.pth: input side (px)")
    p.add_argument(
        "--exporter",
        default=EXPORTERS[0],
        choices=EXPORTERS,
        help="torch.onnx exporter tried first (the other is the fallback)",
    )
    p.set_defaults(func=cmd_export_onnx)
