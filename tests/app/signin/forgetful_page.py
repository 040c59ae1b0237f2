"""A page that forgets to hide what only an operator or a reviewer may do: it draws "Run sweep"
and "Record decision" for everyone who signs in. The backend must refuse a viewer anyway
(``jobs.start_sweep`` and ``review.record_decision`` check the identity themselves)."""

from pathlib import Path

import streamlit as st

from fairprune.app import identity, jobs, review, ui
from fairprune.config import FinetuneConfig, SweepConfig
from fairprune.errors import FairpruneError

identity.gate()
st.caption(identity.identity_line(identity.current()))


def run_sweep() -> None:
    """A small real sweep on the fixture store's dense model: it would run if not refused."""
    dense = Path(ui.models_dir()) / "synthderm-demo_cnn-dense.safetensors"
    config = SweepConfig(
        dataset="synthderm", dataset_options={"limit": 600, "test_limit": 300},
        dense_model=str(dense), criteria=("l1",), losses=("ce",), reductions=(0.5,),
        finetune=FinetuneConfig(epochs=1), n_boot=20, name="forgetful page",
    )  # fmt: skip
    jobs.start_sweep(config, results_path=ui.results_path(), models_dir=ui.models_dir())


def record_decision() -> None:
    review.record_decision(subject="forgetful-page", kind="sweep", decision="accept")


for label, act in (("Run sweep", run_sweep), ("Record decision", record_decision)):
    if st.button(label, key=f"forgetful_{act.__name__}"):
        try:
            act()
            st.success(f"{label}: done")
        except FairpruneError as exc:
            st.error(str(exc))
