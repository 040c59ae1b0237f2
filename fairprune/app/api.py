"""The backend names the pages use, in one place: pages import ``fairprune.app`` and nothing else.

A page that needs something new from the backend adds it here, so this list is the whole surface
the dashboard relies on.
"""

from __future__ import annotations

from fairprune.data import DATASETS, summarize
from fairprune.errors import FairpruneError
from fairprune.loss import LOSSES, PW_PRESETS
from fairprune.metrics import METRICS, accuracy_gap, audit
from fairprune.nets import ARCHITECTURES, import_upload, load_model, record_to_row
from fairprune.nets.imports import MAX_UPLOAD_BYTES, add_by_path, store_file
from fairprune.nets.onnx_io import MAX_UPLOAD_ONNX_BYTES, import_onnx, load_for_audit
from fairprune.sweep import criterion_names
from fairprune.sweep.methods import REFERENCE_CRITERION, methods_display, methods_frame

__all__ = [
    "ARCHITECTURES",
    "DATASETS",
    "FairpruneError",
    "LOSSES",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_ONNX_BYTES",
    "METRICS",
    "PW_PRESETS",
    "REFERENCE_CRITERION",
    "accuracy_gap",
    "add_by_path",
    "audit",
    "criterion_names",
    "import_onnx",
    "import_upload",
    "load_for_audit",
    "load_model",
    "methods_display",
    "methods_frame",
    "record_to_row",
    "store_file",
    "summarize",
]
