"""Same seed, same machine → byte-identical models and identical result rows, across processes."""

import json
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = r"""
import json, sys
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(1)
from pathlib import Path
from fairprune.cli import main
from fairprune.sweep.results import ResultsStore
base = Path(".")  # relative paths: both runs see the same configs, hence the same ids
tiny = ["--option", "limit=300", "--option", "test_limit=150"]
store = ["--models-dir", str(base / "models"), "--results", str(base / "r.sqlite")]
assert main(["train", *store, *tiny, "--epochs", "1", "--seed", "3", "--name", "dense"]) == 0
assert main(["sweep", *store, *tiny, "--dense", str(base / "models" / "dense.safetensors"),
             "--criteria", "pw_taylor", "--losses", "pw", "--levels", "0.5", "--seeds", "1",
             "--epochs", "1", "--n-boot", "20"]) == 0
cells = ResultsStore(base / "r.sqlite").cells()
rows = ResultsStore(base / "r.sqlite").export_long()
preds = ResultsStore(base / "r.sqlite").predictions(cells["cell_key"])
manifest = json.loads((base / "models" / "dense.json").read_text())
print(json.dumps({{
    "dense": manifest["sha256"],
    "environment": manifest["config"]["environment"],
    "cells": cells.drop(columns=["created", "latency_ms", "model_path"]).to_dict("records"),
    "rows": rows.to_dict("records"),
    "preds": {{k: p.probs.tobytes().hex() for k, p in preds.items()}},
}}, sort_keys=True, default=str))
"""


def _run(tmp_path, name):
    base = tmp_path / name
    base.mkdir()
    code = SCRIPT.format(root=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=base
    )


def test_train_and_a_data_driven_pw_cell_are_bit_identical_across_processes(tmp_path):
    procs = [_run(tmp_path, "a"), _run(tmp_path, "b")]
    outs = [p.communicate(timeout=600)[0].strip().splitlines()[-1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    a, b = (json.loads(o) for o in outs)
    assert a["dense"] == b["dense"]  # the trained weights' SHA-256
    assert [c["model_hash"] for c in a["cells"]] == [c["model_hash"] for c in b["cells"]]
    assert len(a["cells"]) == 2  # dense baseline + the pw_taylor/PW cell
    assert a["cells"] == b["cells"]
    assert a["rows"] == b["rows"]
    assert a["preds"] == b["preds"]
    assert a["environment"]["threads"] == 1
    assert set(a["environment"]) == {"torch", "threads", "device"}
