"""Networks: the architecture table (``ARCHITECTURES``), MAC counting and the checkpoint store.

``architectures`` builds models; ``flops`` counts them; ``manifest`` is the JSON schema of a
checkpoint; ``shapes`` records and rebuilds pruned layer shapes; ``checkpoint`` saves, loads and
lists our safetensors + JSON files; ``imports`` reads models from outside the store.
"""

from fairprune.nets.architectures import ARCHITECTURES, build_model, head_of
from fairprune.nets.checkpoint import list_models, save_dense_model, save_model
from fairprune.nets.flops import count_macs_params
from fairprune.nets.imports import import_upload, load_model
from fairprune.nets.manifest import ModelRecord, record_to_row

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
