"""``export-onnx`` and ``audit FILE.onnx``: an exported model audits like its checkpoint."""

import json

from fairprune.cli import main
from fairprune.nets.onnx_check import ERR_ONNX_PARSE, REASON_PROTOBUF
from fairprune.nets.onnx_export import ERR_OUT_SUFFIX
from fairprune.nets.onnx_runtime import ERR_NOT_PRUNABLE, ERR_ONNX_INPUT_SIZE

TINY = ["--option", "test_limit=300", "--option", "limit=600"]  # the fixture store's data


def test_export_onnx_then_audit_beside_its_checkpoint(store_env, tmp_path, capsys):
    dense = str(store_env["dense"].path)
    out = tmp_path / "dense.onnx"
    assert main(["export-onnx", dense, "--out", str(out), "--exporter", "torchscript"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == str(out)
    diff = float(printed[0].split("logit difference ")[1].split()[0])
    assert diff <= 1e-4 and "torchscript exporter, opset 18, dynamic batch" in printed[0]
    assert main(["audit", dense, str(out), "--json", "--n-boot", "0", *TINY]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_model = {}
    for r in rows:
        by_model.setdefault(r["model"], {})[r["group"]] = r
    assert set(by_model) == {"synthderm-demo_cnn-dense", "dense.onnx"}
    torch_rows, onnx_rows = by_model["synthderm-demo_cnn-dense"], by_model["dense.onnx"]
    assert list(onnx_rows) == ["dark", "light", "medium", "overall"]
    assert onnx_rows["overall"]["n"] == 300
    for group, row in torch_rows.items():  # the same predictions, through onnxruntime
        # logits agree within 1e-4: at most a sample on the decision boundary, or a pair of
        # near-equal scores in the AUROC's ranking, may swap
        assert abs(onnx_rows[group]["accuracy"] - row["accuracy"]) <= 1 / row["n"]
        assert abs(onnx_rows[group]["auroc"] - row["auroc"]) <= 1e-3


def test_onnx_errors_are_one_line(store_env, tmp_path, capsys):
    dense = str(store_env["dense"].path)
    bad_out = tmp_path / "m.txt"
    assert main(["export-onnx", dense, "--out", str(bad_out)]) == 1
    assert capsys.readouterr().err == f"error: {ERR_OUT_SUFFIX.format(path=bad_out)}\n"
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\xffnot onnx\xff\xff")
    assert main(["audit", str(junk), *TINY]) == 1
    expected = ERR_ONNX_PARSE.format(path=junk, reason=REASON_PROTOBUF)
    assert capsys.readouterr().err == f"error: {expected}\n"
    assert main(["prune", "--model", str(junk), "--target", "0.5"]) == 1
    assert capsys.readouterr().err == f"error: {ERR_NOT_PRUNABLE.format(path=junk)}\n"
    assert main(["finetune", "--model", str(junk)]) == 1
    assert capsys.readouterr().err == f"error: {ERR_NOT_PRUNABLE.format(path=junk)}\n"
    out = tmp_path / "d.onnx"
    assert main(["export-onnx", dense, "--out", str(out), "--exporter", "torchscript"]) == 0
    capsys.readouterr()
    assert main(["audit", str(out), *TINY, "--option", "image_size=48"]) == 1
    expected = ERR_ONNX_INPUT_SIZE.format(path=out, want=32, got=48)
    assert capsys.readouterr().err == f"error: {expected}\n"
