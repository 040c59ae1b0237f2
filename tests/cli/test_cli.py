"""The command line: help everywhere, JSON summaries, CSV export, one-line errors with exit 1."""

import json

import pandas as pd
import pytest

from fairprune.cli import build_parser, main
from fairprune.data import load_dataset
from fairprune.data.base import summarize
from fairprune.sweep.results import LONG_COLUMNS

COMMANDS = [
    "demo", "train", "prune", "finetune", "export-onnx", "sweep", "audit", "export", "models",
    "reproduce", "decisions", "decide",
]  # fmt: skip


@pytest.mark.parametrize("command", [*COMMANDS, "data summary"])
def test_help_for_every_command(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command.split(), "--help"])
    assert exit_.value.code == 0
    assert "usage: python -m fairprune" in capsys.readouterr().out


def test_parser_choices_come_from_the_tables():
    from fairprune.loss import LOSSES
    from fairprune.sweep.grid import criterion_names

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    sweep = sub.choices["sweep"]
    by_dest = {a.dest: a for a in sweep._actions}
    assert list(by_dest["criteria"].choices) == criterion_names()
    assert sorted(by_dest["losses"].choices) == sorted(LOSSES)


def test_data_summary_json_equals_summarize(capsys):
    assert main(["data", "summary", "--dataset", "synthderm", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    expected = summarize(load_dataset("synthderm")).to_dict(orient="records")
    assert rows == expected
    assert set(rows[0]) == {"split", "group", "label", "n"}


def test_export_writes_the_long_table(store_env, tmp_path, capsys):
    out = tmp_path / "r.csv"
    argv = ["export", "--out", str(out), "--results", str(store_env["results"]),
            "--sweep", store_env["sweep_id"]]  # fmt: skip
    assert main(argv) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == LONG_COLUMNS
    dense = df[df["criterion"] == "dense"]
    assert (dense["target_reduction"] == 0).all() and (dense["loss"] == "dense").all()
    assert len(df) == 5 * 4  # 5 models × (3 groups + overall)


def test_audit_prints_per_group_json(store_env, capsys):
    path = str(store_env["dense"].path)
    assert main(["audit", path, "--json", "--n-boot", "0", "--option", "test_limit=300",
                 "--option", "limit=600"]) == 0  # fmt: skip
    rows = json.loads(capsys.readouterr().out)
    assert [r["group"] for r in rows] == ["dark", "light", "medium", "overall"]
    assert rows[-1]["n"] == 300


@pytest.mark.parametrize(
    "argv,message",
    [
        (["audit", "/nonexistent/m.safetensors"], "error: model file not found"),
        (["data", "summary", "--dataset", "celeba"], "error: the celeba dataset is read from a"),
        (
            ["data", "summary", "--dataset", "csv", "--root", "/nonexistent"],
            "error: dataset folder",
        ),
        (["export", "--out", "x.csv", "--results", "/dev/null/x.sqlite"], "error: "),
    ],
)
def test_bad_input_is_one_line_and_exit_1(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert err.count("\n") == 1  # one line, no traceback


def test_train_prune_finetune_audit_chain(tmp_path, capsys):
    opts = ["--option", "limit=200", "--option", "test_limit=90", "--option", "n_val=30"]
    store = ["--models-dir", str(tmp_path / "m")]
    assert main(["train", *store, *opts, "--epochs", "1", "--name", "d"]) == 0
    dense = capsys.readouterr().out.strip().splitlines()[-1]
    assert dense.endswith("d.safetensors")
    assert main(["prune", *store, *opts, "--model", dense, "--criterion", "pw_taylor",
                 "--target", "0.6", "--name", "p"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    reached = float(out.split("FLOPs reduction reached: ")[1].split()[0])
    assert abs(reached - 0.6) <= 0.01
    pruned = out.strip().splitlines()[-1]
    assert main(["finetune", *store, *opts, "--model", pruned, "--dense", dense, "--loss", "pw",
                 "--epochs", "1", "--name", "f"]) == 0  # fmt: skip
    tuned = capsys.readouterr().out.strip().splitlines()[-1]
    from fairprune.nets.imports import load_model

    _, rec = load_model(tuned)
    assert rec.kind == "pruned" and rec.loss == "pw" and rec.criterion == "pw_taylor"
    assert rec.flops_reduction == pytest.approx(reached, abs=1e-4)  # printed with 4 decimals
    assert main(["audit", tuned, dense, *opts, "--n-boot", "0", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["model"] for r in rows} == {"f", "d"}
    assert all(r["n"] == 90 for r in rows if r["group"] == "overall")
    assert main(["finetune", *store, *opts, "--model", pruned, "--loss", "pw"]) == 1
    assert capsys.readouterr().err == "error: --loss pw needs --dense DENSE_CHECKPOINT.\n"


def test_decide_then_decisions_lists_them_across_restarts(tmp_path, capsys):
    from fairprune.sweep.results import ERR_BAD_MODEL_HASH, ERR_NO_REVIEWER, ResultsStore

    results = tmp_path / "r.sqlite"
    ResultsStore(results).register_sweep("sw-abc", {}, name="demo")
    opt = ["--results", str(results), "--models-dir", str(tmp_path / "m")]
    assert main(["decisions", *opt]) == 0
    assert capsys.readouterr().out.startswith(f"no review decisions in {results}")
    assert main(["decide", "sw-abc", "--decision", "needs work", "--reviewer", "Ana",
                 "--comment", "one more seed", *opt]) == 0  # fmt: skip
    assert capsys.readouterr().out.startswith("recorded #1: needs work on sweep sw-abc by Ana at ")
    assert main(["decide", "ef" * 32, "--decision", "reject", "--reviewer", "Bo", *opt]) == 0
    capsys.readouterr()
    assert main(["decisions", "--json", *opt]) == 0  # each command opens the store anew
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["kind"], r["subject"], r["decision"], r["reviewer"], r["comment"])
            for r in rows] == [(1, "sweep", "sw-abc", "needs work", "Ana", "one more seed"),
                               (2, "model", "ef" * 32, "reject", "Bo", "")]  # fmt: skip
    assert all(r["created"].endswith("Z") for r in rows)
    assert main(["decisions", *opt]) == 0
    assert "needs work" in capsys.readouterr().out

    assert main(["decide", "sw-abc", "--decision", "accept", "--reviewer", " ", *opt]) == 1
    assert capsys.readouterr().err == f"error: {ERR_NO_REVIEWER}\n"
    assert main(["decide", "abc", "--decision", "accept", "--reviewer", "Cy", *opt]) == 1
    assert capsys.readouterr().err == f"error: {ERR_BAD_MODEL_HASH.format(subject='abc')}\n"
    with pytest.raises(SystemExit) as exit_:  # an unknown decision: argparse's choices
        main(["decide", "sw-abc", "--decision", "maybe", "--reviewer", "Cy", *opt])
    assert exit_.value.code == 2
    assert "invalid choice: 'maybe'" in capsys.readouterr().err
    assert len(ResultsStore(results).decisions()) == 2


def test_sweep_executor_options_are_checked_before_anything_runs(tmp_path, capsys):
    from fairprune.sweep.distributed import ERR_BAD_GPUS, ERR_BAD_WORKERS

    base = ["sweep", "--dense", str(tmp_path / "none.safetensors"), "--results",
            str(tmp_path / "r.sqlite"), "--models-dir", str(tmp_path / "m"), "--executor", "ray"]  # fmt: skip
    assert main([*base, "--workers", "0"]) == 1
    assert capsys.readouterr().err == f"error: {ERR_BAD_WORKERS.format(value=0)}\n"
    assert main([*base, "--gpus-per-cell", "-1"]) == 1
    assert capsys.readouterr().err == f"error: {ERR_BAD_GPUS.format(value=-1.0)}\n"
    assert not (tmp_path / "r.sqlite").exists()  # nothing was started or written


def test_top_level_help_lists_every_command(capsys):
    # every sub-command's one-line help is %-formatted by argparse here (a bare "%" breaks it)
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "paired 95% intervals" in out and "summary" in out and "decisions" in out
