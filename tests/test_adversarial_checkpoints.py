"""Hostile checkpoint files, generated here (no binary fixture is committed).

Every case is a file (or pair) someone else made: pickles whose ``__reduce__`` would write a
marker file, torch archives whose ``data.pkl`` carries a payload, safetensors whose header lies,
manifests with traversal or absurd sizes, FIFOs, devices, directories and symlinks named like
checkpoints, zero bytes, NaN weights. Each goes through every route a checkpoint can take:

- the CLI (``audit``), in-process: exit 1, exactly one ``error:`` line, no traceback, not the
  catch-all's "unexpected" line (that would mean nobody foresaw the case), no marker;
- the dashboard's upload (``import_upload``): a ``FairpruneError``, nothing stored;
- the store listing (``models``): exit 0, the good checkpoint beside it still listed, no hang;
- a few, as real subprocesses under an address-space limit: the same one line, and the peak
  memory stays at the interpreter's own.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import pickle
import resource
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch._utils
from safetensors.torch import save as save_safetensors

from fairprune.cli import main
from fairprune.errors import FairpruneError
from fairprune.nets.architectures import build_model
from fairprune.nets.checkpoint import save_model
from fairprune.nets.imports import import_upload

ROOT = Path(__file__).resolve().parent.parent

DATA = ["--dataset", "synthderm", "--option", "limit=64", "--option", "test_limit=64",
        "--option", "n_val=0"]  # fmt: skip

MEMORY_LIMIT = 4 * 2**30  # address space of a subprocess: torch alone maps about 3 GiB

GROWTH_LIMIT = 256 * 2**20  # how far refusing may raise the peak resident memory of a warm process


# --------------------------------------------------------------------------- the references


class Ref:
    """A valid demo_cnn checkpoint (2 outputs, 32 px) in every format, built once."""

    def __init__(self, folder: Path):
        torch.manual_seed(0)
        self.model = build_model("demo_cnn", 2, 32)
        record = save_model(self.model, folder, "ref", arch="demo_cnn", num_outputs=2,
                            num_classes=2, input_size=32, dataset="synthderm")  # fmt: skip
        self.weights = Path(record.path).read_bytes()
        self.manifest = json.loads((folder / "ref.json").read_text())
        self.state = {k: v.clone() for k, v in self.model.state_dict().items()}
        buf = io.BytesIO()
        torch.save(self.state, buf)
        self.pt = buf.getvalue()
        n = int.from_bytes(self.weights[:8], "little")
        self.header = json.loads(self.weights[8 : 8 + n])
        self.data = self.weights[8 + n :]


@pytest.fixture(scope="module")
def ref(tmp_path_factory) -> Ref:
    return Ref(tmp_path_factory.mktemp("ref"))


# ------------------------------------------------------------------------------ payloads


class Payload:
    """Unpickling this with a stock unpickler runs code that creates ``marker``."""

    def __init__(self, marker: Path, how: str):
        self.marker, self.how = str(marker), how

    def __reduce__(self):
        code = f"open({self.marker!r}, 'w').write('ran')"
        if self.how == "exec":
            return (exec, (code,))
        if self.how == "eval":
            return (eval, (code,))
        if self.how == "system":
            return (os.system, (f"touch {self.marker}",))
        return (subprocess.Popen, (["touch", self.marker],))  # "popen"


def _marker(d: Path) -> Path:
    return d / "PAYLOAD_RAN"


# -------------------------------------------------------------------------- file builders


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _ours(d: Path, ref: Ref, weights: bytes | None = None, stem: str = "m", **changes) -> Path:
    """STEM.safetensors + STEM.json whose hash and size match ``weights`` (unless overridden):
    the checks after the hash, the parser's and the shapes', are what must refuse it."""
    weights = ref.weights if weights is None else weights
    (d / f"{stem}.safetensors").write_bytes(weights)
    manifest = {**ref.manifest, "name": stem, "sha256": _sha(weights), "file_size": len(weights)}
    manifest.update(changes)
    (d / f"{stem}.json").write_text(json.dumps(manifest))
    return d / f"{stem}.safetensors"


def _manifest_text(d: Path, ref: Ref, text: bytes, name: str = "m") -> Path:
    (d / f"{name}.safetensors").write_bytes(ref.weights)
    (d / f"{name}.json").write_bytes(text)
    return d / f"{name}.safetensors"


def _st(header, data: bytes, length: int | None = None) -> bytes:
    """A safetensors file from a header (dict or raw bytes) and a data section."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(raw) if length is None else length
    return n.to_bytes(8, "little") + raw + data


def _header(ref: Ref, **entries) -> dict:
    """The reference header with some entries replaced (None removes one)."""
    out = json.loads(json.dumps(ref.header))
    for key, value in entries.items():
        key = key if key.startswith("__") else key.replace("__", ".")
        if value is None:
            out.pop(key)
        else:
            out[key] = value
    return out


def _first_tensor(ref: Ref) -> tuple[str, dict]:
    name = min((k for k in ref.header if k != "__metadata__"),
               key=lambda k: ref.header[k]["data_offsets"][0])  # fmt: skip
    return name, ref.header[name]


def _lying(ref: Ref, **change) -> bytes:
    """The reference file with the first tensor's header entry changed."""
    name, entry = _first_tensor(ref)
    header = json.loads(json.dumps(ref.header))
    header[name] = {**entry, **change}
    return _st(header, ref.data)


def _pickle(d: Path, name: str, obj, protocol: int = 2) -> Path:
    (d / name).write_bytes(pickle.dumps(obj, protocol=protocol))
    return d / name


def _torch_zip(archive: bytes, data_pkl: bytes | None = None, drop: str | None = None) -> bytes:
    """A torch.save archive with data.pkl replaced (or an entry dropped)."""
    src = zipfile.ZipFile(io.BytesIO(archive))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for info in src.infolist():
            if drop and info.filename.endswith(drop):
                continue
            data = src.read(info.filename)
            if data_pkl is not None and info.filename.endswith("data.pkl"):
                data = data_pkl
            z.writestr(info.filename, data)
    return out.getvalue()


class _Storage:
    """Stands for a storage record of a torch archive in a hand-made data.pkl."""


class _Tensor:
    def __init__(self, size):
        self.size = size

    def __reduce__(self):
        args = (_Storage(), 0, self.size, (1,) * len(self.size), False, collections.OrderedDict())
        return (torch._utils._rebuild_tensor_v2, args)


class _StoragePickler(pickle.Pickler):
    """Writes ``_Storage`` as the persistent id of record "0" declaring ``numel`` floats."""

    def __init__(self, f, numel: int):
        super().__init__(f, protocol=2)
        self.numel = numel

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", torch.FloatStorage, "0", "cpu", self.numel)
        return None


def _declared_storage(numel: int, size: tuple) -> bytes:
    """A torch archive whose data.pkl declares a storage far bigger than its 4-byte record."""
    f = io.BytesIO()
    _StoragePickler(f, numel).dump({"fc.weight": _Tensor(size)})
    buf = io.BytesIO()
    torch.save({"x": torch.zeros(1)}, buf)  # its one 4-byte record is storage "0"
    return _torch_zip(buf.getvalue(), data_pkl=f.getvalue())


def _nan_state(ref: Ref, value: float, everywhere: bool) -> dict:
    state = {k: v.clone() for k, v in ref.state.items()}
    for v in state.values():
        if v.is_floating_point():
            if everywhere:
                v.fill_(value)
            else:
                v.view(-1)[0] = value
                break
    return state


# ------------------------------------------------------------------------------- the cases
# name -> builder(folder, ref) -> the path a user would pass. Kinds: "ours" (a store pair, also
# listed and uploaded), "pt" (a single file, also uploaded), "special" (FIFOs, devices, links:
# loaded and listed, never uploaded: an upload is bytes).

Builder = Callable[[Path, Ref], Path]
CASES: dict[str, tuple[str, Builder]] = {}


def case(name: str, kind: str):
    def register(fn: Builder) -> Builder:
        CASES[name] = (kind, fn)
        return fn

    return register


# pickles with payloads, under every extension a checkpoint may have
for _ext in (".pt", ".pth", ".bin", ".ckpt"):
    for _how in ("exec", "eval", "system", "popen"):
        case(f"pickle{_ext}-{_how}", "pt")(
            lambda d, ref, e=_ext, h=_how: _pickle(d, f"m{e}", Payload(_marker(d), h))
        )
case("pickle-wrapped-state-dict", "pt")(
    lambda d, ref: _pickle(d, "m.pt", {"epoch": 3, "state_dict": Payload(_marker(d), "exec")})
)
case("pickle-payload-beside-tensors", "pt")(
    lambda d, ref: _pickle(d, "m.pth", {**ref.state, "evil": Payload(_marker(d), "system")})
)
case("pickle-protocol-0", "pt")(
    lambda d, ref: _pickle(d, "m.pt", Payload(_marker(d), "exec"), protocol=0)
)
case("pickle-protocol-5", "pt")(
    lambda d, ref: _pickle(d, "m.pth", Payload(_marker(d), "eval"), protocol=5)
)

# torch zip archives whose data.pkl carries the payload
for _ext in (".pt", ".pth"):
    for _label, _obj in (("top", lambda d: Payload(_marker(d), "exec")),
                         ("nested", lambda d: {"state_dict": {"fc.weight": Payload(_marker(d), "exec")}}),
                         ("system", lambda d: [Payload(_marker(d), "system")])):  # fmt: skip
        case(f"zip{_ext}-payload-{_label}", "pt")(
            lambda d, ref, e=_ext, o=_obj: _write(
                d / f"m{e}", _torch_zip(ref.pt, pickle.dumps(o(d), protocol=2))
            )
        )


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


case("zip-declared-storage-huge", "pt")(
    lambda d, ref: _write(d / "m.pt", _declared_storage(10**10, (10**10,)))
)
case("zip-size-past-storage", "pt")(
    lambda d, ref: _write(d / "m.pt", _declared_storage(1, (10**10,)))
)
case("zip-no-data-pkl", "pt")(
    lambda d, ref: _write(d / "m.pt", _torch_zip(ref.pt, drop="data.pkl"))
)
case("zip-truncated", "pt")(lambda d, ref: _write(d / "m.pt", ref.pt[: len(ref.pt) // 2]))
case("zip-stride-0-expanded", "pt")(
    lambda d, ref: _save_pt(d / "m.pt", {"fc.weight": torch.zeros(1).as_strided((2**40,), (0,))})
)
case("pt-zero-bytes", "pt")(lambda d, ref: _write(d / "m.pt", b""))
case("pt-nan-weights", "pt")(
    lambda d, ref: _save_pt(d / "m.pt", _nan_state(ref, float("nan"), True))
)
case("pt-one-inf", "pt")(lambda d, ref: _save_pt(d / "m.pth", _nan_state(ref, float("inf"), False)))
case("pt-not-a-dict", "pt")(lambda d, ref: _save_pt(d / "m.pt", [torch.zeros(3)]))
case("pt-huge-head", "pt")(
    lambda d, ref: _save_pt(d / "m.pt", {**ref.state, "fc.weight": torch.zeros(200_000, 1)})
)


def _save_pt(path: Path, obj) -> Path:
    torch.save(obj, path)
    return path


# safetensors whose header lies
_ST = {
    "st-length-2^63": lambda ref: _st(ref.header, ref.data, length=2**63),
    "st-length-past-end": lambda ref: _past_end(ref),
    "st-length-zero": lambda ref: _st(b"", ref.data, length=0),
    "st-shorter-than-8": lambda ref: b"\x10\x00\x00",
    "st-zero-bytes": lambda ref: b"",
    "st-garbage": lambda ref: bytes(range(256)) * 4,
    "st-truncated": lambda ref: ref.weights[: len(ref.weights) // 2],
    "st-header-not-json": lambda ref: _st(b"not json at all", ref.data),
    "st-header-not-utf8": lambda ref: _st(b'{"\xff\xfe": 1}', ref.data),
    "st-header-a-list": lambda ref: _st(b"[]", b""),
    "st-header-deep": lambda ref: _st(b"[" * 200_000 + b"]" * 200_000, b""),
    "st-overlapping-offsets": lambda ref: _overlap(ref),
    "st-gap": lambda ref: _gap(ref),
    "st-offsets-past-end": lambda ref: _lying(ref, data_offsets=[0, 10**12]),
    "st-negative-offsets": lambda ref: _lying(ref, data_offsets=[-8, 0]),
    "st-offsets-not-ints": lambda ref: _lying(ref, data_offsets=["0", "4"]),
    "st-unknown-dtype": lambda ref: _lying(ref, dtype="Q99"),
    "st-object-dtype": lambda ref: _lying(ref, dtype="O"),
    "st-huge-shape": lambda ref: _lying(ref, shape=[10**12, 10**12]),
    "st-negative-shape": lambda ref: _lying(ref, shape=[-1, 2]),
    "st-shape-text": lambda ref: _lying(ref, shape=["a"]),
    "st-missing-dtype": lambda ref: _st(
        _header(
            ref,
            **{_first_tensor(ref)[0].replace(".", "__"): {"shape": [1], "data_offsets": [0, 4]}},
        ),
        ref.data,
    ),  # fmt: skip
    "st-metadata-not-strings": lambda ref: _st(_header(ref, __metadata__={"format": 1}), ref.data),
    "st-extra-tensor": lambda ref: _extra_tensor(ref),
    "st-wrong-head-shape": lambda ref: _wrong_head(ref),
    "st-all-nan": lambda ref: save_safetensors(
        _nan_state(ref, float("nan"), True), metadata={"format": "fairprune-1"}
    ),  # fmt: skip
    "st-one-inf": lambda ref: save_safetensors(
        _nan_state(ref, float("-inf"), False), metadata={"format": "fairprune-1"}
    ),  # fmt: skip
}


def _gap(ref: Ref) -> bytes:
    """Every tensor moved 8 bytes on, over 8 bytes of padding nothing claims."""
    header = json.loads(json.dumps(ref.header))
    for name, entry in header.items():
        if name != "__metadata__":
            entry["data_offsets"] = [o + 8 for o in entry["data_offsets"]]
    return _st(header, b"\0" * 8 + ref.data)


def _past_end(ref: Ref) -> bytes:
    """A header length one byte longer than header and data together."""
    raw = json.dumps(ref.header).encode()
    return _st(raw, ref.data, length=len(raw) + len(ref.data) + 1)


def _overlap(ref: Ref) -> bytes:
    header = json.loads(json.dumps(ref.header))
    names = sorted((k for k in header if k != "__metadata__"),
                   key=lambda k: header[k]["data_offsets"][0])  # fmt: skip
    a, b = header[names[0]], header[names[1]]
    if a["dtype"] == b["dtype"] and a["shape"] == b["shape"]:
        b["data_offsets"] = list(a["data_offsets"])
    else:
        b["data_offsets"] = [a["data_offsets"][0], a["data_offsets"][0] + b["data_offsets"][1]
                             - b["data_offsets"][0]]  # fmt: skip
    return _st(header, ref.data)


def _extra_tensor(ref: Ref) -> bytes:
    state = {**ref.state, "evil.weight": torch.zeros(3)}
    return save_safetensors(state, metadata={"format": "fairprune-1"})


def _wrong_head(ref: Ref) -> bytes:
    state = {**ref.state, "fc.weight": torch.zeros(5, ref.state["fc.weight"].shape[1])}
    return save_safetensors(state, metadata={"format": "fairprune-1"})


for _name, _make in _ST.items():
    case(_name, "ours")(lambda d, ref, mk=_make: _ours(d, ref, mk(ref)))

# manifests with traversal, absurd sizes, wrong types, depth and size bombs
_M = {
    "m-num-outputs-1e12": {"num_outputs": 10**12, "num_classes": 10**12},
    "m-num-outputs-3e6": {"num_outputs": 3 * 10**6, "num_classes": 3 * 10**6},
    "m-num-outputs-0": {"num_outputs": 0},
    "m-num-outputs-negative": {"num_outputs": -2, "num_classes": -2},
    "m-num-classes-mismatch": {"num_classes": 7},
    "m-input-size-1e6": {"input_size": 10**6},
    "m-input-size-0": {"input_size": 0},
    "m-layer-in-features-1e9": {"layer_shapes": {"fc": {"in_features": 10**9, "out_features": 2}}},
    "m-layer-channels-70000": {
        "layer_shapes": {"stem.0": {"in_channels": 3, "out_channels": 70000, "groups": 1}}
    },  # fmt: skip
    "m-layer-zero-channels": {
        "layer_shapes": {"stem.0": {"in_channels": 3, "out_channels": 0, "groups": 1}}
    },  # fmt: skip
    "m-layer-bool": {"layer_shapes": {"fc": {"in_features": True, "out_features": 2}}},
    "m-layer-text": {"layer_shapes": {"fc": {"in_features": "96", "out_features": 2}}},
    "m-layer-traversal": {
        "layer_shapes": {"../../etc/passwd": {"in_features": 4, "out_features": 2}}
    },  # fmt: skip
    "m-layer-dunder": {"layer_shapes": {"__class__": {"in_features": 4, "out_features": 2}}},
    "m-layer-unknown-attr": {"layer_shapes": {"fc": {"weight": 3}}},
    "m-layer-not-a-dict": {"layer_shapes": {"fc": [1, 2]}},
    "m-layer-shrunk-head": {"layer_shapes": {"fc": {"in_features": 4, "out_features": 2}}},
    "m-name-traversal": {"name": "../../etc/cron.d/x"},
    "m-unknown-arch": {"arch": "evil_arch"},
    "m-format-99": {"format_version": 99},
    "m-nan-reduction": {"target_reduction": float("nan")},
    "m-created-number": {"created": 12345},
    "m-sha-mismatch": {"sha256": "0" * 64},
    "m-size-mismatch": {"file_size": 1},
}
for _name, _changes in _M.items():
    case(_name, "ours")(lambda d, ref, c=_changes: _ours(d, ref, **c))

_MT = {
    "m-deep-nesting": b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "m-9-megabytes": b'{"name": "m", "pad": "' + b"x" * (9 * 2**20) + b'"}',
    "m-not-utf8": b'{"name": "\xff\xfe"}',
    "m-a-list": b"[1, 2, 3]",
    "m-zero-bytes": b"",
}
for _name, _text in _MT.items():
    case(_name, "ours")(lambda d, ref, t=_text: _manifest_text(d, ref, t))


# files that are not files
def _pair_with(d: Path, ref: Ref, weights_kind: str) -> Path:
    manifest = {**ref.manifest, "name": "m", "sha256": _sha(b""), "file_size": 0}
    (d / "m.json").write_text(json.dumps(manifest))
    w = d / "m.safetensors"
    if weights_kind == "dev-zero":
        w.symlink_to("/dev/zero")
    elif weights_kind == "fifo":
        os.mkfifo(w)
    elif weights_kind == "dir":
        w.mkdir()
    elif weights_kind == "loop":
        w.symlink_to(d / "m.safetensors")
    elif weights_kind == "dangling":
        w.symlink_to(d / "nowhere" / "x.safetensors")
    return w


for _kind in ("dev-zero", "fifo", "dir", "loop", "dangling"):
    case(f"weights-{_kind}", "special")(lambda d, ref, k=_kind: _pair_with(d, ref, k))


def _manifest_special(d: Path, ref: Ref, kind: str) -> Path:
    (d / "m.safetensors").write_bytes(ref.weights)
    m = d / "m.json"
    if kind == "fifo":
        os.mkfifo(m)
    elif kind == "dir":
        m.mkdir()
    elif kind == "dev-zero":
        m.symlink_to("/dev/zero")
    return d / "m.safetensors"


for _kind in ("fifo", "dir", "dev-zero"):
    case(f"manifest-{_kind}", "special")(lambda d, ref, k=_kind: _manifest_special(d, ref, k))


def _pt_special(d: Path, kind: str) -> Path:
    p = d / "m.pt"
    if kind == "dev-zero":
        p.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(p)
    else:
        p.mkdir()
    return p


for _kind in ("dev-zero", "fifo", "dir"):
    case(f"pt-{_kind}", "special")(lambda d, ref, k=_kind: _pt_special(d, k))


def _manifest_only(d: Path, ref: Ref) -> Path:
    (d / "m.json").write_text(json.dumps({**ref.manifest, "name": "m"}))
    return d / "m.json"


case("manifest-without-weights", "special")(_manifest_only)


# ---------------------------------------------------------------------------------- helpers


def _cli(argv, capsys) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        rc = exc.code
    out = capsys.readouterr()
    return rc, out.out, out.err


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err[-2000:]
    line = lines[0]
    assert line.startswith("error: ") and len(line) <= 1000, line[:300]
    assert "Traceback" not in err
    # foreseen, not caught by main's catch-all
    assert not line.startswith(("error: unexpected ", "error: out of memory")), line
    return line


def _build(name: str, folder: Path, ref: Ref) -> tuple[str, Path]:
    kind, make = CASES[name]
    folder.mkdir(parents=True, exist_ok=True)
    return kind, make(folder, ref)


# ------------------------------------------------------------------------------------ tests


def test_the_suite_has_the_promised_size():
    assert len(CASES) >= 50
    assert len(CASES) == 104  # the README's reliability section states this count


def test_the_reference_checkpoint_loads(ref, tmp_path, capsys):
    # the harness can tell success from failure: the untouched pair audits fine
    path = _ours(tmp_path, ref)
    rc, out, err = _cli(["audit", str(path), *DATA, "--n-boot", "0", "--json"], capsys)
    assert rc == 0, err
    assert json.loads(out)[-1]["n"] == 64
    path = _write(tmp_path / "plain.pt", ref.pt)
    rc, out, err = _cli(["audit", str(path), "--arch", "demo_cnn", *DATA, "--n-boot", "0"], capsys)
    assert rc == 0, err


@pytest.mark.timeout(60)  # a FIFO opened by mistake would block here forever
@pytest.mark.parametrize("name", sorted(CASES))
def test_cli_refuses_in_one_line_and_runs_nothing(name, ref, tmp_path, capsys):
    kind, path = _build(name, tmp_path / "store", ref)
    store = tmp_path / "out"
    argv = ["audit", str(path), "--arch", "demo_cnn", *DATA, "--n-boot", "0"]
    rc, out, err = _cli(argv, capsys)
    assert rc == 1, (out, err)
    _one_error_line(err)
    assert not _marker(tmp_path / "store").exists()
    # prune reads the model before anything else, and would write into the store
    rc, out, err = _cli(["prune", "--model", str(path), "--target", "0.5", "--models-dir",
                         str(store)], capsys)  # fmt: skip
    assert rc == 1, (out, err)
    _one_error_line(err)
    assert list(store.iterdir()) == []
    assert not _marker(tmp_path / "store").exists()


# defects only loading can see (it hashes the weights, compares every tensor's shape with the
# manifest's model and checks the values): the listing shows them, loading refuses them
LOAD_ONLY = {"st-extra-tensor", "st-wrong-head-shape", "st-all-nan", "st-one-inf",
             "m-sha-mismatch", "m-layer-dunder", "m-layer-shrunk-head"}  # fmt: skip


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(n for n, (k, _) in CASES.items() if k != "pt"))
def test_listing_skips_the_bad_entry_and_keeps_the_good(name, ref, tmp_path, capsys):
    store = tmp_path / "store"
    _build(name, store, ref)
    _ours(store, ref, stem="good")
    rc, out, err = _cli(["models", "--models-dir", str(store)], capsys)
    assert rc == 0, err
    listed = [line.split()[0] for line in out.strip().splitlines()[1:]]
    assert listed == (["good", "m"] if name in LOAD_ONLY else ["good"])
    assert "Traceback" not in err
    assert not _marker(store).exists()


@pytest.mark.parametrize("name", sorted(n for n, (k, _) in CASES.items() if k != "special"))
def test_upload_refuses_and_stores_nothing(name, ref, tmp_path):
    kind, path = _build(name, tmp_path / "in", ref)
    store = tmp_path / "store"
    manifest = None
    if kind == "ours":
        manifest = path.with_suffix(".json").read_bytes()
    with pytest.raises(FairpruneError) as err:
        import_upload(path.read_bytes(), path.name, store, arch=None if manifest else "demo_cnn",
                      num_classes=2, input_size=32, manifest=manifest)  # fmt: skip
    assert "\n" not in str(err.value)
    assert not store.exists() or list(store.iterdir()) == []
    assert not _marker(tmp_path / "in").exists()


def test_a_symlink_out_of_the_store_is_not_listed(ref, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _ours(elsewhere, ref, stem="x")
    store = tmp_path / "store"
    store.mkdir()
    (store / "x.safetensors").symlink_to(elsewhere / "x.safetensors")
    (store / "x.json").symlink_to(elsewhere / "x.json")
    _ours(store, ref, stem="good")
    rc, out, err = _cli(["models", "--models-dir", str(store)], capsys)
    assert rc == 0 and [line.split()[0] for line in out.strip().splitlines()[1:]] == ["good"]


def test_a_manifest_path_field_is_never_trusted(ref, tmp_path):
    from fairprune.nets.imports import load_model

    path = _ours(tmp_path, ref, path="/etc/passwd")
    _, record = load_model(path)
    assert record.path == str(path)


# --------------------------------------------------------- under a memory limit, for real

DRIVER = """
import contextlib, io, json, resource, sys
sys.path.insert(0, {root!r})
from fairprune.cli import main
job = json.loads(sys.stdin.read())

def run(argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code
    return [rc, err.getvalue()]

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

for argv in job["warmup"]:  # imports, the demo dataset, a model: what every case needs anyway
    run(argv)
baseline = peak()
results = [run(argv) for argv in job["cases"]]
print(json.dumps({{"results": results, "growth": peak() - baseline}}))
"""


def run_limited(argvs: list[list[str]], warmup: list[list[str]], timeout: int = 300):
    """Run CLI argument lists in one fresh interpreter whose address space is capped.

    Returns each case's (exit status, stderr) and how far the peak resident memory grew over
    the warmed-up interpreter's (the shared libraries alone make the absolute peak noisy).
    """

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER.format(root=str(ROOT))],
        input=json.dumps({"warmup": warmup, "cases": argvs}), capture_output=True, text=True,
        preexec_fn=limit, timeout=timeout, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return report["results"], report["growth"]


LIMITED = ["m-num-outputs-3e6", "m-num-outputs-1e12", "m-layer-in-features-1e9",
           "m-input-size-1e6", "st-huge-shape", "st-length-2^63", "zip-declared-storage-huge",
           "pickle.pt-exec"]  # fmt: skip


def test_refusals_hold_under_a_memory_limit(ref, tmp_path):
    argvs = []
    for name in LIMITED:
        _, path = _build(name, tmp_path / name, ref)
        argvs.append(["audit", str(path), "--arch", "demo_cnn", *DATA, "--n-boot", "0"])
    (tmp_path / "good").mkdir()
    good = _ours(tmp_path / "good", ref)
    warmup = [["audit", str(good), *DATA, "--n-boot", "0"]]
    results, growth = run_limited(argvs, warmup)
    for name, (rc, err) in zip(LIMITED, results, strict=True):
        assert rc == 1, (name, err)
        _one_error_line(err)
        assert not _marker(tmp_path / name).exists()
    # 3·10⁶ outputs alone would allocate 1.1 GiB: refusing allocated next to nothing
    assert growth < GROWTH_LIMIT, f"peak resident memory grew {growth / 2**20:.0f} MiB"
