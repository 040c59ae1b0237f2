"""Networks: the architecture table (``ARCHITECTURES``), MAC counting and the checkpoint store.

``architectures`` builds models; ``flops`` counts them; ``manifest`` is the JSON schema of a
checkpoint; ``shapes`` records and rebuilds pruned layer shapes; ``checkpoint`` saves and loads
our safetensors + JSON files and ``listing`` lists them (without Torch); ``imports`` reads models
from outside the store.

Names are resolved on first use (PEP 562): importing one module of the package does not pull in
torchvision, Torch-Pruning and onnxruntime through this ``__init__``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fairprune.utils import lazy_exports

if TYPE_CHECKING:
    from fairprune.nets.architectures import ARCHITECTURES, build_model, head_of
    from fairprune.nets.checkpoint import save_dense_model, save_model
    from fairprune.nets.flops import count_macs_params
    from fairprune.nets.imports import import_upload, load_model
    from fairprune.nets.listing import list_models
    from fairprune.nets.manifest import ModelRecord, record_to_row

_EXPORTS: dict[str, str] = {
    "ARCHITECTURES": "fairprune.nets.architectures",
    "ModelRecord": "fairprune.nets.manifest",
    "build_model": "fairprune.nets.architectures",
    "count_macs_params": "fairprune.nets.flops",
    "head_of": "fairprune.nets.architectures",
    "import_upload": "fairprune.nets.imports",
    "list_models": "fairprune.nets.listing",
    "load_model": "fairprune.nets.imports",
    "record_to_row": "fairprune.nets.manifest",
    "save_dense_model": "fairprune.nets.checkpoint",
    "save_model": "fairprune.nets.checkpoint",
}

__all__ = [
    "ARCHITECTURES",
    "ModelRecord",
    "build_model",
    "count_macs_params",
    "head_of",
    "import_upload",
    "list_models",
    "load_model",
    "record_to_row",
    "save_dense_model",
    "save_model",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
