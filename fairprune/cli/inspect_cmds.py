"""Commands that read: ``audit``, ``models``, ``data summary``, ``summary``, ``decisions``,
``actions`` (and ``decide``, which appends one review decision)."""

from __future__ import annotations

import json

from fairprune import paths
from fairprune.cli.common import (
    add_data_args,
    add_store_args,
    boot_int,
    load_bundle,
    positive_int,
    print_table,
    store_paths,
)
from fairprune.errors import FairpruneError


def cmd_audit(args) -> int:
    import pandas as pd

    from fairprune.evaluate import predict
    from fairprune.metrics import accuracy_gap, audit
    from fairprune.nets.onnx_io import load_for_audit

    bundle = load_bundle(args)
    if args.split not in bundle.splits:
        raise FairpruneError(
            f"the dataset has no {args.split!r} split; choose one of: {', '.join(bundle.splits)}."
        )
    split = bundle.splits[args.split]
    tables = []
    for path in args.models:
        model, record = load_for_audit(
            path, arch=args.arch, num_classes=bundle.num_classes, input_size=bundle.input_size
        )
        if record.num_classes != bundle.num_classes:
            raise FairpruneError(
                f"{path} predicts {record.num_classes} classes but {bundle.title} has "
                f"{bundle.num_classes}; audit it on the dataset it was trained for."
            )
        preds = predict(
            model, split, model_hash=record.sha256, split_key=f"{bundle.fingerprint}-{args.split}"
        )
        table = audit(preds, bundle, intersectional=args.intersectional, n_boot=args.n_boot)
        table.insert(0, "model", record.name)
        table["gap"] = accuracy_gap(table)
        tables.append(table)
    print_table(pd.concat(tables, ignore_index=True), as_json=args.json)
    return 0


def cmd_data_summary(args) -> int:
    from fairprune.data.base import summarize

    bundle = load_bundle(args)
    df = summarize(bundle)
    if args.json:
        print(json.dumps(df.to_dict(orient="records"), indent=1))
    else:
        print_table(df)
    return 0


def cmd_models(args) -> int:
    import pandas as pd

    from fairprune.nets.checkpoint import list_models
    from fairprune.nets.manifest import record_to_row

    models, _ = store_paths(args)
    rows = [record_to_row(r) for r in list_models(models)]
    if not rows:
        print(f"no models in {models}; run `python -m fairprune demo` or `train`.")
        return 0
    print_table(pd.DataFrame(rows))
    return 0


def cmd_summary(args) -> int:
    from fairprune.sweep.findings import level_findings, summary_of
    from fairprune.sweep.results import ResultsStore

    _, results = store_paths(args)
    store = ResultsStore(results)
    if args.methods:
        from fairprune.sweep.methods import methods_table, methods_text

        table = methods_table(store, args.sweep, reference=args.reference, n_boot=args.n_boot)
        print(json.dumps(table, indent=1) if args.json else methods_text(table))
        return 0
    findings = level_findings(
        store, args.sweep, baseline=args.baseline, method=args.method, criterion=args.criterion,
        n_boot=args.n_boot,
    )  # fmt: skip
    head = summary_of(findings)
    if args.json:
        print(json.dumps(head, indent=1))
        return 0
    import pandas as pd

    from fairprune.app.views import findings_display
    from fairprune.sweep.findings import SEED_NOTE, findings_frame

    print(head["headline"])
    print()
    shown = findings_display(findings_frame(findings))
    with pd.option_context("display.max_rows", 500, "display.width", 250):
        print(shown.to_string(index=False))
    print()
    print(SEED_NOTE)
    return 0


def cmd_decisions(args) -> int:
    from fairprune.sweep.results import ResultsStore

    _, results = store_paths(args)
    df = ResultsStore(results).decisions(sweep_id=args.sweep)
    return _print_log(df, args.json, f"no review decisions in {paths.display_location(results)}; "
                      "record one on the dashboard (Overview, Audit side by side, Report) or with "
                      "`python -m fairprune decide`.")  # fmt: skip


def cmd_decide(args) -> int:
    from fairprune.sweep.results import ResultsStore

    _, results = store_paths(args)
    kind = args.kind or ("sweep" if args.subject.startswith("sw-") else "model")
    row = ResultsStore(results).record_decision(
        subject=args.subject, kind=kind, decision=args.decision, reviewer=args.reviewer,
        reviewer_email=args.reviewer_email, comment=args.comment,
    )  # fmt: skip
    print(f"recorded #{row['id']}: {row['decision']} on {kind} {row['subject']} by "
          f"{row['reviewer']} at {row['created']}")  # fmt: skip
    return 0


def cmd_actions(args) -> int:
    from fairprune.sweep.results import ResultsStore

    _, results = store_paths(args)
    df = ResultsStore(results).actions(limit=args.limit)
    return _print_log(df, args.json, f"no operator actions in {paths.display_location(results)}; "
                      "sweeps started or cancelled and models added or removed are listed here.")  # fmt: skip


def _print_log(df, as_json: bool, empty: str) -> int:
    """An append-only log (decisions, actions): JSON records, a table, or ``empty``."""
    if as_json:
        print(json.dumps(df.to_dict(orient="records"), indent=1))
    elif df.empty:
        print(empty)
    else:
        print_table(df)
    return 0


def register(sub) -> None:
    """Add ``audit``, ``summary``, ``decisions``, ``decide``, ``actions``, ``models`` and
    ``data summary`` to the sub-command parsers."""
    from fairprune.nets.architectures import ARCHITECTURES

    p = sub.add_parser("audit", help="evaluate checkpoints per group on a dataset")
    add_data_args(p)
    p.add_argument(
        "models",
        nargs="+",
        help="checkpoints (.safetensors/.json, .pt/.pth with --arch) or .onnx classifiers "
        "(N×3×S×S → N×K, run by onnxruntime)",
    )
    p.add_argument("--arch", default=None, choices=sorted(ARCHITECTURES), help="for .pt/.pth")
    p.add_argument("--split", default="test")
    p.add_argument("--intersectional", action="store_true", help="groups × true label")
    p.add_argument("--n-boot", type=boot_int, default=200)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser(
        "summary", help="the headline of a sweep: gaps, paired 95%% intervals, verdicts"
    )
    add_store_args(p)
    p.add_argument("--sweep", default=None, help="sweep id (default: the newest with pruned cells)")
    p.add_argument(
        "--criterion",
        default=None,
        help="compare within this criterion's methods (default: the sweep's first as configured)",
    )
    p.add_argument(
        "--baseline",
        default=None,
        metavar="CRIT:LOSS",
        help="the baseline method, e.g. taylor:ce (default: the paper's pair when the sweep has it, "
        "X:ce vs pw_X:pw, else CE vs PW within the sweep's first criterion)",
    )
    p.add_argument(
        "--method",
        default=None,
        metavar="CRIT:LOSS",
        help="the method compared with the baseline, e.g. pw_taylor:pw",
    )
    p.add_argument("--n-boot", type=positive_int, default=2000, help="bootstrap replicates")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument(
        "--methods",
        action="store_true",
        help="every (criterion, loss) of the sweep side by side at each level: accuracy, group "
        "accuracies, gap, max ψ, paired differences vs CE and vs the reference criterion, Pareto",
    )
    p.add_argument(
        "--reference",
        default=None,
        help="with --methods: the criterion others are compared with (default: unstructured)",
    )
    p.set_defaults(func=cmd_summary)

    from fairprune.sweep.results import DECISION_KINDS, DECISIONS

    p = sub.add_parser("decisions", help="list review decisions (append-only), oldest first")
    add_store_args(p)
    p.add_argument("--sweep", default=None, help="only this sweep and the models of its cells")
    p.add_argument("--json", action="store_true", help="a JSON list")
    p.set_defaults(func=cmd_decisions)

    p = sub.add_parser("decide", help="record a review decision on a sweep or a model")
    add_store_args(p)
    p.add_argument("subject", help="a sweep id (sw-…) or a model's SHA-256")
    p.add_argument("--decision", required=True, choices=DECISIONS)
    p.add_argument("--reviewer", required=True, help="who decides")
    p.add_argument("--reviewer-email", default="", help="their email (the dashboard's sign-in "
                   "fills it from the identity provider)")  # fmt: skip
    p.add_argument("--comment", default="")
    p.add_argument("--kind", choices=DECISION_KINDS, default=None,
                   help="default: sweep for sw-… ids, model otherwise")  # fmt: skip
    p.set_defaults(func=cmd_decide)

    p = sub.add_parser(
        "actions", help="list operator actions (append-only): sweeps started and cancelled, "
        "models added and removed, with who and when, oldest first",
    )  # fmt: skip
    add_store_args(p)
    p.add_argument("--limit", type=positive_int, default=None, help="only the newest N")
    p.add_argument("--json", action="store_true", help="a JSON list")
    p.set_defaults(func=cmd_actions)

    p = sub.add_parser("models", help="list the model store")
    add_store_args(p)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("data", help="inspect a dataset")
    dsub = p.add_subparsers(dest="data_command", required=True)
    q = dsub.add_parser("summary", help="counts per split × group × label")
    add_data_args(q)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_data_summary)
