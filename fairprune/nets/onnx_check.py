"""Reading an untrusted ``.onnx`` file: parse, validate, bound every declared shape, count MACs.

An ONNX file is a protobuf: parsing it executes nothing, but what it declares can still hurt:
external-data ``location`` fields that point outside the model's folder (``../../etc/passwd``),
tensors whose declared shape is far larger than the data they hold, or an input so large that one
forward pass exhausts memory. ``read_onnx`` refuses all of these with one line before onnxruntime
sees the model, and checks the contract of an audited classifier: one float input ``N×3×S×S``, a
first output ``N×K``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto

from fairprune.errors import FairpruneError
from fairprune.nets.manifest import ERR_NOT_FOUND

MAX_ONNX_BYTES = 2**31 - 1  # a protobuf cannot be larger; bigger models keep weights outside
MAX_EXTERNAL_BYTES = 4 * 2**30  # all external weight files together
MAX_TENSOR_VALUES = 2**28  # any one declared tensor (1 GiB of float32); no classifier needs more
MAX_INPUT_SIDE = 4096  # square input side

ERR_ONNX_TOO_BIG = "{path}: {size:.0f} MB is over the {cap:.0f} MB an ONNX protobuf can hold."

ERR_ONNX_PARSE = (
    "{path}: not an ONNX model ({reason}); the file is truncated or of another type, export it "
    "again with torch.onnx.export."
)

REASON_PROTOBUF = "protobuf cannot decode it"
REASON_NO_GRAPH = "it holds no graph"

ERR_ONNX_INVALID = "{path}: not a valid ONNX model ({reason}); export it again (opset 17 or newer)."

ERR_ONNX_EXTERNAL = (
    "{path}: tensor {name!r} keeps its weights in {location!r}, which {problem}; keep the weights "
    "file beside the .onnx, inside its folder."
)

ERR_ONNX_HUGE = (
    "{path}: {what} {name!r} declares shape {shape} ({values:,} values, over the {cap:,} "
    "allowed); the file is corrupt or hostile."
)

ERR_ONNX_DATA_SIZE = (
    "{path}: tensor {name!r} declares shape {shape} but holds {got:,} bytes, not {want:,}; the file "
    "is corrupt."
)

ERR_ONNX_INPUTS = (
    "{path}: an audited classifier takes one float32 input of N×3×S×S RGB images; this model "
    "takes {found}."
)

ERR_ONNX_OUTPUT = (
    "{path}: an audited classifier's first output is N×K logits (or N×1); this model gives {found}."
)


_FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}


@dataclass(frozen=True)
class OnnxInfo:
    """What a validated ``.onnx`` file declares."""

    path: Path  # the .onnx file
    input_name: str  # the one graph input
    output_name: str  # the first graph output (logits)
    input_side: int | None  # static S of the N×3×S×S input; None when symbolic
    num_outputs: int | None  # static K of the N×K output; None when symbolic
    opset: int  # default-domain opset
    producer: str  # e.g. "pytorch 2.14.1"
    metadata: dict = field(default_factory=dict)  # metadata_props, as strings
    external: tuple[Path, ...] = ()  # external weight files, each inside the model's folder
    sha256: str = ""  # of the .onnx file and its external files, in order
    file_size: int = 0  # bytes of the .onnx file and its external files


def _parse(data: bytes, source: object) -> onnx.ModelProto:
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, RuntimeError, ValueError):
        raise FairpruneError(ERR_ONNX_PARSE.format(path=source, reason=REASON_PROTOBUF)) from None
    # protobuf accepts many byte strings (an empty file is an empty message): a model has a graph
    if model.ir_version <= 0 or not model.graph.node or not model.opset_import:
        raise FairpruneError(ERR_ONNX_PARSE.format(path=source, reason=REASON_NO_GRAPH))
    return model


def _graphs(graph: onnx.GraphProto):
    """``graph`` and every subgraph (If/Loop/Scan bodies), depth first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _graphs(g)


def _tensors(model: onnx.ModelProto):
    """Every tensor the model stores: initializers and node attributes, subgraphs included."""
    for graph in _graphs(model.graph):
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        for node in graph.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR:
                    yield attr.t
                elif attr.type == onnx.AttributeProto.TENSORS:
                    yield from attr.tensors


def _itemsize(elem_type: int) -> int:
    try:
        return onnx.helper.tensor_dtype_to_np_dtype(elem_type).itemsize
    except (KeyError, ValueError, TypeError):
        return 1  # strings and unknown types: the byte count is not checked


def _check_values(source, what: str, name: str, dims, cap: int = MAX_TENSOR_VALUES) -> int:
    shape = tuple(int(d) for d in dims)
    values = math.prod(max(d, 0) for d in shape)
    if any(d < 0 for d in shape) or values > cap:
        raise FairpruneError(
            ERR_ONNX_HUGE.format(path=source, what=what, name=name, shape=shape, values=values,
                                 cap=cap)
        )  # fmt: skip
    return values


def _external_file(folder: Path, tensor: TensorProto, source) -> tuple[Path, int, int]:
    """The file, offset and length of an external tensor, checked to stay inside ``folder``."""
    entries = {e.key: e.value for e in tensor.external_data}
    location = entries.get("location", "")

    def refuse(problem):
        return FairpruneError(
            ERR_ONNX_EXTERNAL.format(path=source, name=tensor.name, location=location,
                                     problem=problem)
        )  # fmt: skip

    rel = Path(location)
    if not location or rel.is_absolute() or rel.drive or ".." in rel.parts or "\x00" in location:
        raise refuse("is not a plain file name inside the model's folder")
    target = (folder / rel).resolve()
    if folder.resolve() not in target.parents:
        raise refuse("leads outside the model's folder")
    if not target.is_file():
        raise refuse("does not exist")
    try:
        offset, length = int(entries.get("offset", 0)), int(entries.get("length", -1))
    except ValueError:
        raise refuse("has a non-numeric offset or length") from None
    size = target.stat().st_size
    if length < 0:
        length = size - offset
    if offset < 0 or offset + length > size:
        raise refuse(f"is {size:,} bytes, too short for {offset:,} + {length:,}")
    return target, offset, length


def _value_shape(vi: onnx.ValueInfoProto) -> tuple[int | str, ...] | None:
    """(dims) of a tensor value: ints where static, names (or "?") where symbolic."""
    if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
        return None
    out = []
    for d in vi.type.tensor_type.shape.dim:
        out.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?"))
    return tuple(out)


def _dtype_name(elem: int) -> str:
    if not elem:
        return "a non-tensor"
    try:
        return onnx.helper.tensor_dtype_to_np_dtype(elem).name  # "float32", "int64", ...
    except (KeyError, ValueError, TypeError):
        return (
            TensorProto.DataType.Name(elem).lower()
            if elem in TensorProto.DataType.values()
            else "?"
        )


def _fmt(shape) -> str:
    return "×".join(str(d) for d in shape) if shape else "a scalar"


def _check_io(model: onnx.ModelProto, source) -> tuple[str, str, int | None, int | None]:
    graph = model.graph
    stored = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in stored]  # old exporters list weights too
    if len(inputs) != 1:
        names = ", ".join(repr(i.name) for i in inputs) or "no input"
        raise FairpruneError(ERR_ONNX_INPUTS.format(path=source, found=f"{len(inputs)}: {names}"))
    (inp,) = inputs
    shape = _value_shape(inp)
    elem = inp.type.tensor_type.elem_type if inp.type.HasField("tensor_type") else 0
    if shape is None or elem != TensorProto.FLOAT:
        kind = _dtype_name(elem)
        found = f"{kind} of shape {_fmt(shape) if shape is not None else 'unknown'}"
        raise FairpruneError(ERR_ONNX_INPUTS.format(path=source, found=found))
    _check_values(source, "input", inp.name, [d if isinstance(d, int) else 1 for d in shape])
    ok = len(shape) == 4 and (shape[1] == 3 or isinstance(shape[1], str))
    side = None
    if ok:
        h, w = shape[2], shape[3]
        if isinstance(h, int) and isinstance(w, int):
            ok = h == w and 1 <= h <= MAX_INPUT_SIDE
            side = h
        elif isinstance(h, int) or isinstance(w, int):
            ok = False  # one side fixed, the other free: not a square-image classifier
    if not ok:
        raise FairpruneError(ERR_ONNX_INPUTS.format(path=source, found=f"float32 {_fmt(shape)}"))
    if not graph.output:
        raise FairpruneError(ERR_ONNX_OUTPUT.format(path=source, found="no output"))
    out = graph.output[0]
    oshape = _value_shape(out)
    oelem = out.type.tensor_type.elem_type if out.type.HasField("tensor_type") else 0
    if oshape is not None and (len(oshape) != 2 or oelem not in _FLOAT_TYPES):
        kind = _dtype_name(oelem)
        raise FairpruneError(ERR_ONNX_OUTPUT.format(path=source, found=f"{kind} {_fmt(oshape)}"))
    k = oshape[1] if oshape is not None and isinstance(oshape[1], int) else None
    if k is not None and not 1 <= k <= 1 << 16:
        raise FairpruneError(ERR_ONNX_OUTPUT.format(path=source, found=f"{k} outputs per image"))
    return inp.name, out.name, side, k


def read_onnx(path: str | Path) -> tuple[onnx.ModelProto, OnnxInfo]:
    """Parse and validate an ``.onnx`` classifier without running it.

    Parameters
    ----------
    path : path
        The ``.onnx`` file; external weight files must sit in its folder.

    Returns
    -------
    (onnx.ModelProto, OnnxInfo)
        The model with its external weights loaded (when it has any) and what it declares.

    Raises
    ------
    FairpruneError
        One line for a missing, oversized, non-ONNX, truncated or invalid file, an external-data
        path outside the folder, a tensor or input larger than the bounds above, or a graph that
        is not an ``N×3×S×S → N×K`` classifier.
    """
    path = Path(path)
    if not path.is_file():
        raise FairpruneError(ERR_NOT_FOUND.format(path=path))
    size = path.stat().st_size
    if size > MAX_ONNX_BYTES:
        raise FairpruneError(
            ERR_ONNX_TOO_BIG.format(path=path, size=size / 2**20, cap=MAX_ONNX_BYTES / 2**20)
        )
    data = path.read_bytes()
    model = _parse(data, path)
    digest = hashlib.sha256(data)
    externals: dict[Path, None] = {}
    total_external = 0
    for t in _tensors(model):
        values = _check_values(path, "tensor", t.name, t.dims)
        if t.data_location == TensorProto.EXTERNAL:
            target, _offset, length = _external_file(path.parent, t, path)
            want = values * _itemsize(t.data_type)
            if t.data_type != TensorProto.STRING and length != want:
                raise FairpruneError(
                    ERR_ONNX_DATA_SIZE.format(path=path, name=t.name, shape=tuple(t.dims),
                                              got=length, want=want)
                )  # fmt: skip
            externals.setdefault(target)
            total_external += length
        elif t.HasField("raw_data") and t.data_type != TensorProto.STRING:
            want = values * _itemsize(t.data_type)
            if len(t.raw_data) != want:
                raise FairpruneError(
                    ERR_ONNX_DATA_SIZE.format(path=path, name=t.name, shape=tuple(t.dims),
                                              got=len(t.raw_data), want=want)
                )  # fmt: skip
    if total_external > MAX_EXTERNAL_BYTES:
        raise FairpruneError(
            ERR_ONNX_TOO_BIG.format(
                path=path, size=total_external / 2**20, cap=MAX_EXTERNAL_BYTES / 2**20
            )
        )
    for graph in _graphs(model.graph):
        for vi in (*graph.input, *graph.output, *graph.value_info):
            shape = _value_shape(vi)
            if shape is not None:
                _check_values(
                    path, "value", vi.name, [d if isinstance(d, int) else 1 for d in shape]
                )
    for f in externals:
        digest.update(f.read_bytes())
    if externals:  # every location was checked above; the checker then sees the data inline
        onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
    try:
        # a model over protobuf's 2 GB is checked from its file, which the checker re-reads
        onnx.checker.check_model(model if model.ByteSize() < MAX_ONNX_BYTES else str(path))
    except (onnx.checker.ValidationError, ValueError, RuntimeError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:100]
        raise FairpruneError(ERR_ONNX_INVALID.format(path=path, reason=reason)) from None
    input_name, output_name, side, k = _check_io(model, path)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    info = OnnxInfo(
        path=path,
        input_name=input_name,
        output_name=output_name,
        input_side=side,
        num_outputs=k,
        opset=int(opset),
        producer=f"{model.producer_name} {model.producer_version}".strip()[:80],
        metadata={p.key[:100]: p.value[:1000] for p in model.metadata_props},
        external=tuple(externals),
        sha256=digest.hexdigest(),
        file_size=size + sum(f.stat().st_size for f in externals),
    )
    return model, info


def with_input_side(model: onnx.ModelProto, input_name: str, side: int) -> onnx.ModelProto:
    """A copy of ``model`` whose input is fixed to ``1×3×side×side`` and shapes inferred.

    Parameters
    ----------
    model : onnx.ModelProto
    input_name : str
    side : int

    Returns
    -------
    onnx.ModelProto
        With ``value_info`` for every tensor shape inference could fix.
    """
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for t in fixed.graph.initializer:
        # shapes only: weights' values are never needed, small integer tensors (Reshape targets)
        # are kept for data propagation
        if t.data_type in _FLOAT_TYPES:
            t.ClearField("raw_data")
            t.ClearField("float_data")
            t.ClearField("double_data")
            t.ClearField("int32_data")
    for inp in fixed.graph.input:
        if inp.name == input_name:
            dims = inp.type.tensor_type.shape.dim
            for d, v in zip(dims, (1, 3, side, side), strict=True):
                d.Clear()
                d.dim_value = v
    try:
        return onnx.shape_inference.infer_shapes(fixed, data_prop=True)
    except (onnx.shape_inference.InferenceError, RuntimeError, ValueError):
        return fixed  # the MAC count then covers the layers whose shapes are declared


def check_inferred_shapes(model: onnx.ModelProto, input_name: str, side: int, source) -> None:
    """Refuse a model whose intermediate tensors, at one image of ``side`` px, exceed the bounds.

    Raises
    ------
    FairpruneError
        ``ERR_ONNX_HUGE`` naming the first such tensor.
    """
    inferred = with_input_side(model, input_name, side)
    for vi in (*inferred.graph.value_info, *inferred.graph.output):
        shape = _value_shape(vi)
        if shape is not None:
            _check_values(source, "value", vi.name, [d if isinstance(d, int) else 1 for d in shape])


def macs_params(model: onnx.ModelProto, input_name: str, side: int) -> tuple[int, int]:
    """Multiply-accumulates per image of Conv, Gemm and MatMul nodes, and stored parameters.

    Parameters
    ----------
    model : onnx.ModelProto
    input_name : str
    side : int
        Input side S: the count is for one ``1×3×S×S`` image.

    Returns
    -------
    (int, int)
        MACs (batch-norm folded into the convs, as the exporters do, so the count equals the
        convolutions' and linear layers' MACs of the PyTorch model) and the number of float values
        in initializers.
    """
    inferred = with_input_side(model, input_name, side)
    graph = inferred.graph
    init = {t.name: tuple(t.dims) for t in graph.initializer}
    shapes = {vi.name: _value_shape(vi) for vi in (*graph.value_info, *graph.output, *graph.input)}
    shapes.update(init)
    macs = 0
    for node in graph.node:
        if node.op_type == "Conv" and len(node.input) >= 2:
            w, out = shapes.get(node.input[1]), shapes.get(node.output[0])
            if w and out and all(isinstance(d, int) for d in (*w, *out)):
                macs += math.prod(out) * math.prod(w[1:])  # N·Co·Ho·Wo × Ci/g·kh·kw
        elif node.op_type in ("Gemm", "MatMul") and len(node.input) >= 2:
            a, b = shapes.get(node.input[0]), shapes.get(node.input[1])
            if a and b and all(isinstance(d, int) for d in (*a, *b)) and len(b) >= 2:
                trans_b = any(x.name == "transB" and x.i for x in node.attribute)
                n = b[-2] if trans_b else b[-1]
                macs += math.prod(a) * n  # (.., M, K) @ (K, N): M·K·N
    params = sum(
        math.prod(t.dims)
        for t in model.graph.initializer
        if t.data_type in _FLOAT_TYPES and len(t.dims) > 0
    )
    return int(macs), int(params)
