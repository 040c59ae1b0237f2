"""ONNX out (verified against onnxruntime) and in (audit only), and hostile .onnx files refused."""

import logging
import os

import numpy as np
import onnx
import pytest
import torch
import torch_pruning as tp
from onnx import TensorProto, helper
from torch import nn

from fairprune.errors import FairpruneError
from fairprune.evaluate import latency_table
from fairprune.nets.architectures import build_model
from fairprune.nets.checkpoint import save_model
from fairprune.nets.deploy import ONNXRUNTIME, TORCH, TORCH_DEPLOY, fold_batchnorm, runtimes
from fairprune.nets.flops import count_macs_params
from fairprune.nets.manifest import ERR_CLASSES, ERR_NOT_FOUND
from fairprune.nets.onnx_check import (
    ERR_ONNX_DATA_SIZE,
    ERR_ONNX_EXTERNAL,
    ERR_ONNX_HUGE,
    ERR_ONNX_INPUTS,
    ERR_ONNX_OUTPUT,
    ERR_ONNX_PARSE,
    MAX_TENSOR_VALUES,
    REASON_NO_GRAPH,
    REASON_PROTOBUF,
)
from fairprune.nets.onnx_export import (
    ERR_EXPORT_MISMATCH,
    ERR_OUT_SUFFIX,
    VERIFY_ATOL,
    export_checkpoint,
    export_onnx,
)
from fairprune.nets.onnx_io import import_onnx, list_onnx, load_for_audit
from fairprune.nets.onnx_runtime import (
    ERR_NOT_PRUNABLE,
    ERR_ONNX_INPUT_SIZE,
    ERR_ONNX_OLD_OPSET,
    ERR_ONNX_RUNTIME,
    load_onnx,
    refuse_onnx,
)

# demo_cnn at 32 px, counted by hand: convs 24·1024·27 + 48·256·216 + 48·256·432 + 96·64·432 +
# 96·64·864, head 96·3 (batch norm folded into the convs, as the exporters do)
DEMO_CONV_LINEAR_MACS = 663_552 + 2_654_208 + 5_308_416 + 2_654_208 + 5_308_416 + 288


def _stats(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()


def _diff(a, b, x):
    with torch.no_grad():
        return (a(x) - b(x)).abs().max().item()


def test_dense_export_verified_and_audited_back(tmp_path):
    torch.manual_seed(0)
    model = _stats(build_model("demo_cnn", 3, 32))
    meta = {"arch": "demo_cnn", "dataset": "synthderm", "flops_reduction": 0.0, "kind": "dense"}
    report = export_onnx(model, tmp_path / "dense.onnx", input_size=32, metadata=meta)
    assert (report.exporter, report.opset, report.batches) == ("dynamo", 18, (1, 3))
    assert report.max_abs_diff <= VERIFY_ATOL
    graph = onnx.load(report.path).graph
    assert "BatchNormalization" not in {n.op_type for n in graph.node}  # folded at export
    batch = graph.input[0].type.tensor_type.shape.dim[0]
    assert not batch.HasField("dim_value")  # the batch is dynamic
    assert sorted(os.listdir(tmp_path)) == ["dense.onnx"]  # no staging left behind
    classifier, rec = load_onnx(report.path, num_classes=3, input_size=32)
    assert (rec.name, rec.kind, rec.arch, rec.num_outputs, rec.input_size) == (
        "dense.onnx", "onnx", "onnx", 3, 32,
    )  # fmt: skip
    assert rec.dataset == "synthderm" and rec.config["onnx"]["source_arch"] == "demo_cnn"
    assert rec.macs == DEMO_CONV_LINEAR_MACS
    assert count_macs_params(model, 32)[0] - rec.macs == 178_179  # torch-pruning adds BN, pooling
    x = torch.rand(7, 3, 32, 32)
    assert _diff(model, classifier, x) <= VERIFY_ATOL
    assert classifier(x).shape == (7, 3)
    with pytest.raises(FairpruneError) as err:
        load_onnx(report.path, input_size=64)
    assert str(err.value) == ERR_ONNX_INPUT_SIZE.format(path=report.path, want=32, got=64)
    with pytest.raises(FairpruneError) as err:
        load_onnx(report.path, num_classes=2)
    assert str(err.value) == ERR_CLASSES.format(path=report.path, got=3, want=2)


def test_pruned_resnet18_checkpoint_exports_and_matches(tmp_path):
    torch.manual_seed(0)
    model = _stats(build_model("resnet18", 4, 32))
    macs_before = count_macs_params(model, 32)[0]
    tp.pruner.BasePruner(
        model, torch.zeros(1, 3, 32, 32), importance=tp.importance.GroupMagnitudeImportance(p=1),
        pruning_ratio=0.5, ignored_layers=[model.fc],
    ).step()  # fmt: skip
    model.eval()
    reduction = 1 - count_macs_params(model, 32)[0] / macs_before
    rec = save_model(model, tmp_path, "r18-pruned", arch="resnet18", num_outputs=4,
                     num_classes=4, input_size=32, kind="pruned", criterion="l1",
                     flops_reduction=reduction, target_reduction=0.75)  # fmt: skip
    assert rec.layer_shapes["conv1"]["out_channels"] == 32
    report = export_checkpoint(rec.path, tmp_path / "r18.onnx")
    assert report.exporter == "dynamo" and report.max_abs_diff <= VERIFY_ATOL
    classifier, orec = load_for_audit(report.path, num_classes=4, input_size=32)
    assert _diff(model, classifier, torch.rand(5, 3, 32, 32)) <= VERIFY_ATOL
    assert (orec.kind, orec.criterion, orec.parent) == ("onnx", "l1", rec.sha256)
    assert orec.flops_reduction == pytest.approx(reduction) and 0.7 < reduction < 0.8
    # the graph's conv + linear MACs: torch-pruning's count less its BN, ReLU, pool and add work
    assert orec.name == "r18.onnx" and 0.97 < orec.macs / count_macs_params(model, 32)[0] < 1
    with pytest.raises(FairpruneError) as err:
        refuse_onnx(report.path)
    assert str(err.value) == ERR_NOT_PRUNABLE.format(path=report.path)


def test_mobilenet_v2_depthwise_round_trip_and_exporter_fallback(tmp_path):
    torch.manual_seed(0)
    model = _stats(build_model("mobilenet_v2", 2, 32))
    report = export_onnx(model, tmp_path / "m.onnx", input_size=32, exporter="torchscript")
    assert report.exporter == "torchscript" and report.max_abs_diff <= VERIFY_ATOL
    classifier, _ = load_onnx(report.path, input_size=32)
    assert _diff(model, classifier, torch.rand(3, 3, 32, 32)) <= VERIFY_ATOL

    class DataDependent(nn.Module):  # torch.export cannot branch on a value; tracing records one
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            pooled = x.mean((2, 3))  # (N, 3)
            return self.fc(pooled) if x.mean().item() > -1 else -self.fc(pooled)

    report = export_onnx(DataDependent(), tmp_path / "dd.onnx", input_size=8)
    assert report.exporter == "torchscript"  # dynamo failed, the fallback verified


def test_a_model_onnx_cannot_reproduce_is_not_written(tmp_path):
    class Stateful(nn.Module):  # each call adds one more: the export freezes one value
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            return self.fc(x.mean((2, 3))) + float(self.calls)

    with pytest.raises(FairpruneError) as err:
        export_onnx(Stateful(), tmp_path / "s.onnx", input_size=8, exporter="torchscript")
    message = str(err.value)
    assert message.startswith("the ONNX export differs from the PyTorch model by ")
    diff = float(message.split(" by ")[1].split()[0])
    assert diff >= 1.0 and message == ERR_EXPORT_MISMATCH.format(
        diff=diff, atol=VERIFY_ATOL, batch=1
    )
    assert os.listdir(tmp_path) == []
    with pytest.raises(FairpruneError) as err:
        export_onnx(Stateful(), tmp_path / "s.pt", input_size=8)
    assert str(err.value) == ERR_OUT_SUFFIX.format(path=tmp_path / "s.pt")


def _tiny(path, *, in_shape=("N", 3, 8, 8), out_shape=("N", 2), opset=18, weight=None,
          extra_nodes=(), domain_op=None):  # fmt: skip
    """A hand-built classifier: global average pool → flatten → linear (3 → 2)."""
    w = weight if weight is not None else helper.make_tensor(
        "W", TensorProto.FLOAT, [2, 3], np.arange(6, dtype=np.float32).tolist()
    )  # fmt: skip
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "W"], ["logits"], transB=1),
        *extra_nodes,
    ]
    if domain_op:
        nodes.append(helper.make_node(domain_op, ["logits"], ["z"], domain="evil.ops"))
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, list(out_shape))],
        [w],
    )  # fmt: skip
    opsets = [helper.make_opsetid("", opset)]
    if domain_op:
        opsets.append(helper.make_opsetid("evil.ops", 1))
    model = helper.make_model(graph, opset_imports=opsets, ir_version=8)
    path.write_bytes(model.SerializeToString())
    return path


def _weight(dims=(2, 3), raw=None, external=None) -> TensorProto:
    """The classifier's weight "W" as a hostile file might declare it."""
    t = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=list(dims))
    if raw is not None:
        t.raw_data = raw
    if external is not None:
        t.data_location = TensorProto.EXTERNAL
        for k, v in external.items():
            t.external_data.add(key=k, value=v)
    return t


def _refused(path, **kw) -> str:
    with pytest.raises(FairpruneError) as err:
        load_onnx(path, **kw)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_malformed_and_hostile_onnx_files(tmp_path):
    good = _tiny(tmp_path / "good.onnx")
    classifier, rec = load_onnx(good, input_size=8)
    x = torch.rand(4, 3, 8, 8)
    expected = x.mean((2, 3)) @ torch.arange(6.0).reshape(2, 3).T  # (N, 2)
    assert torch.allclose(classifier(x), expected, atol=1e-5)
    assert (rec.macs, rec.params) == (6, 6)  # one 3 → 2 linear layer

    p = tmp_path / "text.onnx"
    p.write_bytes(b"\x00\xffthis is not a protobuf \xff\xff")
    assert _refused(p) == ERR_ONNX_PARSE.format(path=p, reason=REASON_PROTOBUF)
    p.write_bytes(b"")
    assert _refused(p) == ERR_ONNX_PARSE.format(path=p, reason=REASON_NO_GRAPH)
    data = good.read_bytes()
    for cut in (len(data) // 4, len(data) // 2, len(data) - 3):  # truncated: one line each
        p.write_bytes(data[:cut])
        assert _refused(p).startswith(f"{p}: ")
    missing = tmp_path / "none.onnx"
    assert _refused(missing) == ERR_NOT_FOUND.format(path=missing)

    p = _tiny(tmp_path / "rank.onnx", in_shape=("N", 3, 8))
    assert _refused(p) == ERR_ONNX_INPUTS.format(path=p, found="float32 N×3×8")
    p = _tiny(tmp_path / "gray.onnx", in_shape=("N", 1, 8, 8))
    assert _refused(p) == ERR_ONNX_INPUTS.format(path=p, found="float32 N×1×8×8")
    p = _tiny(tmp_path / "out.onnx", out_shape=("N", 2, 1))
    assert _refused(p) == ERR_ONNX_OUTPUT.format(path=p, found="float32 N×2×1")
    p = _tiny(tmp_path / "huge_in.onnx", in_shape=(1, 3, 100_000, 100_000))
    assert _refused(p) == ERR_ONNX_HUGE.format(
        path=p, what="value", name="input", shape=(1, 3, 100_000, 100_000),
        values=3 * 10**10, cap=MAX_TENSOR_VALUES,
    )  # fmt: skip
    assert _refused(good, input_size=16) == ERR_ONNX_INPUT_SIZE.format(path=good, want=8, got=16)
    p = _tiny(tmp_path / "old.onnx", opset=13)
    assert _refused(p) == ERR_ONNX_OLD_OPSET.format(path=p, opset=13)

    # a weight that claims 2^40 values with no data behind them
    huge = _weight(dims=[2**20, 2**20])
    p = _tiny(tmp_path / "huge_w.onnx", weight=huge)
    assert _refused(p) == ERR_ONNX_HUGE.format(
        path=p, what="tensor", name="W", shape=(2**20, 2**20), values=2**40, cap=MAX_TENSOR_VALUES
    )
    short = _weight(raw=b"\x00" * 8)
    p = _tiny(tmp_path / "short.onnx", weight=short)
    assert _refused(p) == ERR_ONNX_DATA_SIZE.format(path=p, name="W", shape=(2, 3), got=8, want=24)

    # external weights must stay inside the model's folder
    outside = tmp_path.parent / f"{tmp_path.name}-secret.bin"
    outside.write_bytes(b"\x00" * 24)
    for location, problem in [
        (f"../{outside.name}", "is not a plain file name inside the model's folder"),
        (str(outside), "is not a plain file name inside the model's folder"),
        ("link.bin", "leads outside the model's folder"),
        ("absent.bin", "does not exist"),
        ("w.bin", "is 24 bytes, too short for 16 + 24"),
    ]:
        (tmp_path / "w.bin").write_bytes(b"\x00" * 24)
        if not (tmp_path / "link.bin").exists():
            (tmp_path / "link.bin").symlink_to(outside)
        ext = _weight(external={"location": location, "length": "24",
                                "offset": "16" if location == "w.bin" else "0"})  # fmt: skip
        p = _tiny(tmp_path / "ext.onnx", weight=ext)
        assert _refused(p) == ERR_ONNX_EXTERNAL.format(
            path=p, name="W", location=location, problem=problem
        )
    # external weights inside the folder are fine, and are part of the content hash
    ext = _weight(external={"location": "w.bin"})
    (tmp_path / "w.bin").write_bytes(np.arange(6, dtype=np.float32).tobytes())
    p = _tiny(tmp_path / "ext.onnx", weight=ext)
    classifier, rec_ext = load_onnx(p)
    assert torch.allclose(classifier(x), expected, atol=1e-5)
    (tmp_path / "w.bin").write_bytes(np.zeros(6, dtype=np.float32).tobytes())
    assert load_onnx(p)[1].sha256 != rec_ext.sha256

    p = _tiny(tmp_path / "custom.onnx", domain_op="Exfiltrate")
    message = _refused(p)
    assert message.startswith(ERR_ONNX_RUNTIME.split("(")[0].format(path=p)), message


def test_uploads_and_listing(tmp_path, caplog):
    good = _tiny(tmp_path / "src.onnx")
    store = tmp_path / "store"
    first = import_onnx(good.read_bytes(), "clf.onnx", store, num_classes=2, input_size=8)
    second = import_onnx(good.read_bytes(), "clf.onnx", store, num_classes=2, input_size=8)
    assert (first.name, second.name) == ("clf.onnx", "clf-2.onnx")
    (store / "broken.onnx").write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING):
        listed = list_onnx(store)
    assert [r.name for r in listed] == ["clf-2.onnx", "clf.onnx"]
    assert "broken.onnx" in caplog.text
    with pytest.raises(FairpruneError) as err:
        import_onnx(b"garbage", "up.onnx", store, num_classes=2, input_size=8)
    assert str(err.value) == ERR_ONNX_PARSE.format(path="up.onnx", reason=REASON_PROTOBUF)
    with pytest.raises(FairpruneError) as err:
        import_onnx(good.read_bytes(), "up.onnx", store, num_classes=5, input_size=8)
    assert str(err.value) == ERR_CLASSES.format(path="up.onnx", got=2, want=5)
    assert sorted(os.listdir(store)) == ["broken.onnx", "clf-2.onnx", "clf.onnx"]


def test_runtimes_agree_and_latency_table_has_every_row(tmp_path):
    torch.manual_seed(0)
    model = _stats(build_model("demo_cnn", 2, 32))
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    rt = runtimes(model, 32, threads=1, exporter="torchscript")
    assert list(rt) == [TORCH, TORCH_DEPLOY, ONNXRUNTIME]
    x = torch.rand(3, 3, 32, 32)
    for runner in rt.values():
        assert _diff(model, runner, x) <= 1e-4
    onnx_path = tmp_path / "m.onnx"
    export_onnx(model, onnx_path, input_size=32, exporter="torchscript")
    for level in ("disabled", "basic", "extended"):  # every level computes the same logits
        assert _diff(model, load_onnx(onnx_path, optimization=level)[0], x) <= 1e-4
    # idle onnxruntime threads sleep: a spinning pool would take the cores from the next runner
    options = rt[ONNXRUNTIME].session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == 1
    table = latency_table(rt, 32, batch_sizes=(1, 4), rounds=2, min_images=4, threads=1)
    assert list(table["runtime"]) == [TORCH, TORCH, TORCH_DEPLOY, TORCH_DEPLOY, ONNXRUNTIME,
                                      ONNXRUNTIME]  # fmt: skip
    assert list(table["batch"]) == [1, 4] * 3
    assert (table["ms_per_image"] > 0).all()
    assert (table["ms_per_image_low"] <= table["ms_per_image"]).all()
