"""The model store: safetensors + JSON round trips, pruned rebuilds, and refusing unsafe files."""

import hashlib
import io
import json
import os
import pickle
import re
from datetime import datetime

import pytest
import torch
import torch_pruning as tp
from safetensors.torch import save_file
from torch import nn

from fairprune.errors import FairpruneError
from fairprune.nets import imports as store_imports
from fairprune.nets.architectures import ARCHITECTURES, ArchSpec, build_model
from fairprune.nets.checkpoint import list_models, save_model
from fairprune.nets.imports import import_upload, load_model
from fairprune.nets.manifest import (
    ERR_ARCH_MISMATCH,
    ERR_BAD_MANIFEST,
    ERR_CLASSES,
    ERR_CORRUPT,
    ERR_CORRUPT_PT,
    ERR_EXTENSION,
    ERR_HASH,
    ERR_MANIFEST_PAIR,
    ERR_NAME,
    ERR_NEED_ARCH,
    ERR_NO_MANIFEST,
    ERR_NOT_FOUND,
    ERR_NOT_STATE_DICT,
    ERR_PICKLE_REFUSED,
    ERR_SHAPES,
    ERR_TOO_BIG,
    ERR_UNSUPPORTED_LAYER,
    record_to_row,
)

DEMO = dict(arch="demo_cnn", num_outputs=2, num_classes=2, input_size=16, dataset="synthderm")
TINY = dict(arch="tiny_test", num_outputs=3, num_classes=3, input_size=8)


class TinyNet(nn.Module):
    """Conv-BN, a depthwise conv, a 1×1 conv and a two-layer head with BatchNorm1d."""

    def __init__(self, k: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 1), nn.BatchNorm2d(16), nn.ReLU(),
        )  # fmt: skip
        self.hidden = nn.Sequential(nn.Linear(16, 12), nn.BatchNorm1d(12), nn.ReLU())
        self.fc = nn.Linear(12, k)

    def forward(self, x):
        x = self.features(x).mean((2, 3))  # (N, 16)
        return self.fc(self.hidden(x))  # (N, k)


@pytest.fixture
def tiny_arch(monkeypatch):
    """Register TinyNet as an architecture for the duration of one test."""
    monkeypatch.setitem(ARCHITECTURES, "tiny_test", ArchSpec(lambda k, s: TinyNet(k), "test", 8))


def _prune(model, size, ratio=0.5):
    """Prune half the channels of every prunable layer with Torch-Pruning directly."""
    tp.pruner.BasePruner(
        model, torch.zeros(1, 3, size, size),
        importance=tp.importance.GroupMagnitudeImportance(p=1),
        pruning_ratio=ratio, ignored_layers=[model.fc],
    ).step()  # fmt: skip
    return model.eval()


def _trained_stats(model):
    """Give every BN non-default running stats so a missed buffer would change the outputs."""
    torch.manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _matches(template: str, message: str, **known) -> bool:
    """``message`` is ``template`` formatted with ``known`` and any text for the other fields."""
    pattern = re.escape(template)
    for key, value in known.items():
        pattern = pattern.replace(re.escape("{" + key + "}"), re.escape(str(value)))
    pattern = re.sub(r"\\\{\w+(?::[^}]*)?\\\}", ".+", pattern)
    return re.fullmatch(pattern, message) is not None


def _rewrite_manifest(path, **changes):
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def test_dense_round_trip_and_manifest_fields(tmp_path):
    torch.manual_seed(0)
    model = _trained_stats(build_model("demo_cnn", 2, 16))
    rec = save_model(model, tmp_path, "dense", **DEMO, macs=123, params=45, config={"a": 1})
    weights = tmp_path / "dense.safetensors"
    assert rec.path == str(weights)
    assert rec.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert rec.file_size == os.path.getsize(weights)
    assert datetime.fromisoformat(rec.created).utcoffset().total_seconds() == 0.0
    assert (rec.kind, rec.criterion, rec.loss, rec.parent) == ("dense", "dense", "dense", None)
    assert rec.layer_shapes == {} and rec.format_version == 1
    manifest = json.loads((tmp_path / "dense.json").read_text())
    assert "path" not in manifest and manifest["sha256"] == rec.sha256 and manifest["macs"] == 123
    loaded, rec2 = load_model(weights)
    assert not loaded.training
    x = torch.rand(4, 3, 16, 16)
    assert torch.equal(model(x), loaded(x))
    assert rec2 == rec
    loaded_json, _ = load_model(tmp_path / "dense.json")  # the manifest path loads the same model
    assert torch.equal(model(x), loaded_json(x))


def test_pruned_tiny_net_round_trip_identical_outputs(tmp_path, tiny_arch):
    torch.manual_seed(0)
    model = _prune(_trained_stats(build_model("tiny_test", 3, 8)), 8)
    rec = save_model(model, tmp_path, "tiny", **TINY, kind="pruned", criterion="l1")
    # half of every coupled group is gone; the depthwise conv keeps groups == channels
    assert rec.layer_shapes == {
        "features.0": {"in_channels": 3, "out_channels": 4, "groups": 1},
        "features.1": {"num_features": 4},
        "features.3": {"in_channels": 4, "out_channels": 4, "groups": 4},
        "features.4": {"num_features": 4},
        "features.6": {"in_channels": 4, "out_channels": 8, "groups": 1},
        "features.7": {"num_features": 8},
        "hidden.0": {"in_features": 8, "out_features": 6},
        "hidden.1": {"num_features": 6},
        "fc": {"in_features": 6, "out_features": 3},
    }
    loaded, rec2 = load_model(rec.path)
    x = torch.rand(5, 3, 8, 8)
    assert torch.equal(model(x), loaded(x))
    assert rec2.kind == "pruned" and rec2.layer_shapes == rec.layer_shapes


def test_resnet18_pruned_round_trip(tmp_path):
    torch.manual_seed(0)
    model = _prune(build_model("resnet18", 3, 32), 32)
    assert model.conv1.out_channels == 32  # 64 halved
    rec = save_model(model, tmp_path, "r18", arch="resnet18", num_outputs=3, num_classes=3,
                     input_size=32, kind="pruned")  # fmt: skip
    assert rec.layer_shapes["conv1"] == {"in_channels": 3, "out_channels": 32, "groups": 1}
    assert rec.layer_shapes["fc"] == {"in_features": 256, "out_features": 3}
    loaded, _ = load_model(rec.path)
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(model(x), loaded(x))


def test_a_layer_that_cannot_be_rebuilt_is_refused_at_save(tmp_path, tiny_arch):
    model = build_model("tiny_test", 3, 8)
    model.hidden[1] = nn.LayerNorm(7)  # a resized layer of a type the manifest cannot describe
    with pytest.raises(FairpruneError) as err:
        save_model(model, tmp_path, "bad", **TINY)
    assert str(err.value) == ERR_UNSUPPORTED_LAYER.format(
        name="hidden.1", kind="LayerNorm", arch="tiny_test"
    )
    assert not (tmp_path / "bad.safetensors").exists()


def test_hash_changes_with_weights_and_tampering_is_caught(tmp_path):
    model = build_model("demo_cnn", 2, 16)
    a = save_model(model, tmp_path, "a", **DEMO)
    with torch.no_grad():
        model.fc.bias.add_(1.0)
    b = save_model(model, tmp_path, "b", **DEMO)
    assert a.sha256 != b.sha256
    assert save_model(model, tmp_path, "c", **DEMO).sha256 == b.sha256  # content, not name/time
    data = bytearray(open(a.path, "rb").read())
    data[-1] ^= 0xFF
    open(a.path, "wb").write(bytes(data))
    with pytest.raises(FairpruneError) as err:
        load_model(a.path)
    assert str(err.value) == ERR_HASH.format(path=a.path)
    _rewrite_manifest(tmp_path / "b.json", sha256="")  # a manifest without a hash is no proof
    with pytest.raises(FairpruneError) as err:
        load_model(b.path)
    assert str(err.value) == ERR_HASH.format(path=b.path)


def test_truncated_and_garbage_safetensors(tmp_path):
    rec = save_model(build_model("demo_cnn", 2, 16), tmp_path, "t", **DEMO)
    data = open(rec.path, "rb").read()
    for broken in (data[: len(data) // 2], os.urandom(64), b""):
        open(rec.path, "wb").write(broken)
        # a manifest that matches the broken file, so the safetensors parser itself must object
        _rewrite_manifest(tmp_path / "t.json", sha256=hashlib.sha256(broken).hexdigest())
        with pytest.raises(FairpruneError) as err:
            load_model(rec.path)
        assert _matches(ERR_CORRUPT, str(err.value), path=rec.path), str(err.value)


def test_manifest_missing_or_broken(tmp_path):
    rec = save_model(build_model("demo_cnn", 2, 16), tmp_path, "m", **DEMO)
    manifest = tmp_path / "m.json"
    text = manifest.read_text()
    _rewrite_manifest(manifest, num_outputs="two")
    with pytest.raises(FairpruneError) as err:
        load_model(rec.path)
    assert str(err.value) == ERR_BAD_MANIFEST.format(
        path=manifest, reason="num_outputs has the wrong type"
    )
    manifest.write_text(text.replace('"arch"', '"architecture"'))
    with pytest.raises(FairpruneError) as err:
        load_model(rec.path)
    assert str(err.value) == ERR_BAD_MANIFEST.format(path=manifest, reason="missing arch")
    manifest.unlink()
    with pytest.raises(FairpruneError) as err:
        load_model(rec.path)
    assert str(err.value) == ERR_NO_MANIFEST.format(path=rec.path, manifest="m.json")


def test_state_dict_via_weights_only(tmp_path):
    torch.manual_seed(0)
    model = _trained_stats(build_model("demo_cnn", 3, 16))
    path = tmp_path / "m.pt"
    torch.save(model.state_dict(), path)
    loaded, rec = load_model(path, arch="demo_cnn", input_size=16)
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(model(x), loaded(x))
    assert (rec.num_outputs, rec.num_classes, rec.input_size) == (3, 3, 16)
    assert rec.file_size == path.stat().st_size  # bytes of the file, not the input size
    # convs 648 + 10 368 + 20 736 + 41 472 + 82 944, BN 2 × 312, head 96 × 3 + 3
    assert rec.params == 157_083
    # the usual wrappers of training scripts are unwrapped: a checkpoint dict, DataParallel keys
    wrapped = tmp_path / "w.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}},
               wrapped)  # fmt: skip
    loaded_w, _ = load_model(wrapped, arch="demo_cnn", input_size=16)
    assert torch.equal(model(x), loaded_w(x))


def test_state_dict_errors(tmp_path):
    path = tmp_path / "m.pt"
    state = build_model("demo_cnn", 3, 16).state_dict()
    torch.save(state, path)
    with pytest.raises(FairpruneError) as err:
        load_model(path)
    assert str(err.value) == ERR_NEED_ARCH.format(path=path)
    with pytest.raises(FairpruneError) as err:
        load_model(path, arch="demo_cnn", num_classes=5)
    assert str(err.value) == ERR_CLASSES.format(path=path, got=3, want=5)
    with pytest.raises(FairpruneError) as err:
        load_model(path, arch="resnet56")
    assert str(err.value) == ERR_SHAPES.format(
        path=path,
        arch="resnet56",
        # resnet56: stem 6 + 27 blocks × 12 + 2 shortcuts × 6 + head 2 = 344 keys; demo_cnn: 32;
        # the head's 2 are shared
        detail="missing 'conv1.weight' (342 missing, 30 unexpected keys)",
    )
    # fewer channels is a pruned layer (tests/nets/test_foreign.py); another kernel is not
    state["stem.0.weight"] = torch.zeros(24, 3, 5, 5)
    torch.save(state, path)
    with pytest.raises(FairpruneError) as err:
        load_model(path, arch="demo_cnn")
    assert str(err.value) == ERR_SHAPES.format(
        path=path, arch="demo_cnn", detail="stem.0.weight is (24, 3, 5, 5), expected (24, 3, 3, 3)"
    )
    torch.save([torch.zeros(2)], path)
    with pytest.raises(FairpruneError) as err:
        load_model(path, arch="demo_cnn")
    assert str(err.value) == ERR_NOT_STATE_DICT.format(path=path, found="list")
    torch.save({"fc.weight": torch.zeros(2, 96), "lr": 0.1}, path)
    with pytest.raises(FairpruneError) as err:
        load_model(path, arch="demo_cnn")
    assert str(err.value) == ERR_NOT_STATE_DICT.format(
        path=path, found="a dict with a float at 'lr'"
    )


class _Evil:
    """Unpickling this creates ``marker``: code execution, if anything unpickles it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickles_are_refused_and_never_executed(tmp_path):
    # the payload is live: an unsafe unpickler does run it
    live = tmp_path / "live"
    pickle.loads(pickle.dumps(_Evil(str(live)))).close()
    assert live.exists()
    marker = tmp_path / "pwned"
    raw, zipped = tmp_path / "evil.pt", tmp_path / "evil.pth"
    with open(raw, "wb") as f:
        pickle.dump({"weight": _Evil(str(marker))}, f, protocol=2)
    torch.save({"weight": _Evil(str(marker))}, zipped)  # torch.save pickles the object into a zip
    for path in (raw, zipped):
        with pytest.raises(FairpruneError) as err:
            load_model(path, arch="demo_cnn")
        assert str(err.value) == ERR_PICKLE_REFUSED.format(path=path)
        with pytest.raises(FairpruneError) as err:
            import_upload(path.read_bytes(), path.name, tmp_path / "store", arch="demo_cnn",
                          num_classes=2, input_size=16)  # fmt: skip
        assert str(err.value) == ERR_PICKLE_REFUSED.format(path=path.name)
    assert not marker.exists()
    full = tmp_path / "module.pt"
    torch.save(build_model("demo_cnn", 2, 16), full)  # a pickled nn.Module
    with pytest.raises(FairpruneError) as err:
        load_model(full, arch="demo_cnn")
    assert str(err.value) == ERR_PICKLE_REFUSED.format(path=full)
    assert list_models(tmp_path / "store") == []


def test_garbage_and_truncated_pt(tmp_path):
    path = tmp_path / "g.pt"
    path.write_bytes(b"\x00garbage bytes, not a pickle")
    with pytest.raises(FairpruneError) as err:
        load_model(path, arch="demo_cnn")
    assert str(err.value) == ERR_PICKLE_REFUSED.format(path=path)
    buf = io.BytesIO()
    torch.save(build_model("demo_cnn", 2, 16).state_dict(), buf)
    path.write_bytes(buf.getvalue()[:1000])
    with pytest.raises(FairpruneError) as err:
        load_model(path, arch="demo_cnn")
    assert _matches(ERR_CORRUPT_PT, str(err.value), path=path), str(err.value)
    path.write_bytes(b"")
    with pytest.raises(FairpruneError) as err:
        load_model(path, arch="demo_cnn")
    assert str(err.value) == ERR_CORRUPT_PT.format(path=path, reason="EOFError")


def test_other_errors(tmp_path):
    with pytest.raises(FairpruneError) as err:
        load_model(tmp_path / "nope.safetensors")
    assert str(err.value) == ERR_NOT_FOUND.format(path=tmp_path / "nope.safetensors")
    (tmp_path / "x.onnx").write_bytes(b"x")
    with pytest.raises(FairpruneError) as err:
        load_model(tmp_path / "x.onnx")
    assert str(err.value) == ERR_EXTENSION.format(path=tmp_path / "x.onnx")
    model = build_model("demo_cnn", 2, 16)
    for bad in ("../escape", "sub/dir", "a\\b", ".hidden", ""):
        with pytest.raises(FairpruneError) as err:
            save_model(model, tmp_path, bad, **DEMO)
        assert str(err.value) == ERR_NAME.format(name=bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.onnx"]
    rec = save_model(model, tmp_path, "two", **DEMO)
    with pytest.raises(FairpruneError) as err:
        load_model(rec.path, num_classes=3)
    assert str(err.value) == ERR_CLASSES.format(path=rec.path, got=2, want=3)


def test_list_models_sorted_by_created_and_skips_broken(tmp_path, caplog):
    model = build_model("demo_cnn", 2, 16)
    for name, created in (("b", "2024-01-02T00:00:00+00:00"), ("a", "2024-01-03T00:00:00+00:00"),
                          ("c", "2024-01-01T00:00:00+00:00")):  # fmt: skip
        save_model(model, tmp_path, name, **DEMO)
        _rewrite_manifest(tmp_path / f"{name}.json", created=created)
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "broken.safetensors").write_bytes(b"")
    (tmp_path / "orphan.json").write_text("{}")
    save_model(model, tmp_path, "short", **DEMO)
    with open(tmp_path / "short.safetensors", "ab") as f:
        f.write(b"\x00")  # size no longer matches the manifest
    with caplog.at_level("WARNING", logger="fairprune.nets.listing"):
        records = list_models(tmp_path)
    assert [r.name for r in records] == ["c", "b", "a"]
    assert records[0].path == str(tmp_path / "c.safetensors")
    assert len(caplog.records) == 3  # broken, orphan, short
    assert list_models(tmp_path / "missing") == []


def test_record_to_row(tmp_path):
    rec = save_model(build_model("demo_cnn", 2, 16), tmp_path, "p", **DEMO, kind="pruned",
                     parent="ab" * 32, criterion="l1", loss="pw", flops_reduction=0.75,
                     macs=1000, params=200)  # fmt: skip
    assert record_to_row(rec) == {
        "name": "p", "kind": "pruned", "arch": "demo_cnn", "parent": "abababababab",
        "criterion": "l1", "loss": "pw", "flops_reduction": 0.75, "macs": 1000, "params": 200,
        "size_kb": round(os.path.getsize(rec.path) / 1024, 1), "sha256": rec.sha256[:12],
    }  # fmt: skip


def test_upload_state_dict_and_safetensors(tmp_path):
    torch.manual_seed(1)
    model = _trained_stats(build_model("demo_cnn", 2, 16))
    x = torch.rand(2, 3, 16, 16)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    kw = dict(arch="demo_cnn", num_classes=2, input_size=16, dataset="synthderm")
    rec = import_upload(buf.getvalue(), "my model.pt", tmp_path, **kw)
    config = dict(rec.config)
    assert set(config.pop("environment")) == {"torch", "threads", "device"}  # where it was made
    assert (rec.name, rec.kind, rec.dataset, config) == (
        "my_model",
        "dense",
        "synthderm",
        {"imported_from": "my model.pt"},
    )
    loaded, _ = load_model(rec.path)
    assert torch.equal(model(x), loaded(x))
    # the same name again never replaces the stored model
    again = import_upload(buf.getvalue(), "my model.pt", tmp_path, **kw)
    assert again.name == "my_model-2" and again.sha256 == rec.sha256
    raw = tmp_path / "raw.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(raw))
    rec_st = import_upload(raw.read_bytes(), "raw.safetensors", tmp_path / "s", **kw)
    loaded_st, _ = load_model(rec_st.path)
    assert torch.equal(model(x), loaded_st(x))
    with pytest.raises(FairpruneError) as err:
        import_upload(buf.getvalue(), "m.pt", tmp_path, **{**kw, "num_classes": 4})
    assert str(err.value) == ERR_CLASSES.format(path="m.pt", got=2, want=4)
    with pytest.raises(FairpruneError) as err:
        import_upload(b"\x00" * 10, "m.onnx", tmp_path, **kw)
    assert str(err.value) == ERR_EXTENSION.format(path="m.onnx")


def test_upload_too_big(tmp_path, monkeypatch):
    monkeypatch.setattr(store_imports, "MAX_UPLOAD_BYTES", 2 * 2**20)
    with pytest.raises(FairpruneError) as err:
        import_upload(b"\x00" * (3 * 2**20), "big.pt", tmp_path, arch="demo_cnn", num_classes=2,
                      input_size=16)  # fmt: skip
    assert str(err.value) == ERR_TOO_BIG.format(size=3, cap=2)
    assert str(err.value) == "the upload is 3 MB, over the 2 MB limit; add it by path instead."


def test_upload_pruned_safetensors_with_its_manifest(tmp_path, tiny_arch):
    torch.manual_seed(0)
    model = _prune(build_model("tiny_test", 3, 8), 8)
    rec = save_model(model, tmp_path / "a", "tiny", **TINY, kind="pruned", criterion="l1",
                     parent="f" * 64)  # fmt: skip
    data = open(rec.path, "rb").read()
    manifest = (tmp_path / "a" / "tiny.json").read_bytes()
    out = import_upload(data, "tiny.safetensors", tmp_path / "b", arch=None, num_classes=3,
                        input_size=None, manifest=manifest)  # fmt: skip
    assert (out.kind, out.parent, out.criterion) == ("pruned", "f" * 64, "l1")
    assert out.sha256 == rec.sha256 and out.layer_shapes == rec.layer_shapes
    loaded, _ = load_model(out.path)
    x = torch.rand(3, 3, 8, 8)
    assert torch.equal(model(x), loaded(x))
    # without the manifest the pruned shapes are read from the tensors (fairprune.nets.foreign)
    again = import_upload(data, "tiny.safetensors", tmp_path / "d", arch="tiny_test",
                          num_classes=3, input_size=8)  # fmt: skip
    assert (again.kind, again.layer_shapes) == ("pruned", rec.layer_shapes)
    assert torch.equal(model(x), load_model(again.path)[0](x))
    with pytest.raises(FairpruneError) as err:
        import_upload(data[:-1] + b"!", "tiny.safetensors", tmp_path / "c", arch=None,
                      num_classes=3, input_size=None, manifest=manifest)  # fmt: skip
    assert str(err.value) == ERR_HASH.format(path="tiny.safetensors")
    with pytest.raises(FairpruneError) as err:
        import_upload(data, "tiny.safetensors", tmp_path / "c", arch="demo_cnn", num_classes=3,
                      input_size=None, manifest=manifest)  # fmt: skip
    assert str(err.value) == ERR_ARCH_MISMATCH.format(
        path="tiny.safetensors", found="tiny_test", arch="demo_cnn"
    )
    with pytest.raises(FairpruneError) as err:
        import_upload(data, "tiny.pt", tmp_path / "c", arch=None, num_classes=3, input_size=None,
                      manifest=manifest)  # fmt: skip
    assert str(err.value) == ERR_MANIFEST_PAIR.format(path="tiny.pt")
    assert not (tmp_path / "c").exists()


def test_list_models_rereads_only_changed_entries(tmp_path, monkeypatch, caplog):
    """A second listing reads no manifest; a rewritten, added, removed or broken entry is seen
    on the next call (the cache is keyed on both files' stats)."""
    from fairprune.nets import listing

    reads = []
    real = listing.read_manifest
    monkeypatch.setattr(listing, "read_manifest", lambda p: reads.append(p.name) or real(p))
    model = build_model("demo_cnn", 2, 16)
    for name in ("a", "b"):
        save_model(model, tmp_path, name, **DEMO)
    first = list_models(tmp_path)
    assert [r.name for r in first] == ["a", "b"] and sorted(reads) == ["a.json", "b.json"]
    reads.clear()
    assert list_models(tmp_path) == first and reads == []
    _rewrite_manifest(tmp_path / "a.json", created="2030-01-01T00:00:00+00:00")  # changed
    save_model(model, tmp_path, "c", **DEMO)  # added
    (tmp_path / "b.json").unlink()  # removed
    (tmp_path / "b.safetensors").unlink()
    records = list_models(tmp_path)
    assert [r.name for r in records] == ["c", "a"] and records[1].created.startswith("2030")
    assert sorted(reads) == ["a.json", "c.json"]
    reads.clear()
    with open(tmp_path / "c.safetensors", "ab") as f:
        f.write(b"\x00")  # the weights no longer match the manifest: skipped, and said so
    for _ in range(2):  # the reason is kept, and logged on every call
        caplog.clear()
        with caplog.at_level("WARNING", logger="fairprune.nets.listing"):
            assert [r.name for r in list_models(tmp_path)] == ["a"]
        assert len(caplog.records) == 1 and "c.json" in caplog.records[0].getMessage()
    assert reads == ["c.json"]
