"""ui's error boundary: whatever a page body raises becomes one st.error line, never a traceback;
tables' headline never leaks a ValueError."""

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from fairprune.app import tables, ui
from fairprune.errors import FairpruneError


def _page(kind: str):
    def page():
        import streamlit as st

        from fairprune.app import ui
        from fairprune.errors import FairpruneError

        def body():
            st.write("drawn before the error")
            kind = st.session_state["kind"]
            if kind == "fairprune":
                raise FairpruneError("the data folder is empty: choose another one.")
            if kind == "value":
                raise ValueError("a group with no samples\nsecond line /srv/secret")
            raise KeyError("/srv/secret")

        ui.run_page("Boundary", body)

    at = AppTest.from_function(page)
    at.session_state["kind"] = kind
    return at.run()


@pytest.mark.parametrize(
    ("kind", "shown"),
    [("fairprune", "the data folder is empty: choose another one."),
     ("value", ui.ERR_PAGE_FAILED.format(kind="ValueError")),
     ("key", ui.ERR_PAGE_FAILED.format(kind="KeyError"))],
)  # fmt: skip
def test_every_error_a_page_body_raises_is_one_line(kind, shown, caplog):
    with caplog.at_level("ERROR", logger="fairprune.app.ui"):
        at = _page(kind)
    assert not at.exception
    assert [e.value for e in at.error] == [shown]
    assert "drawn before the error" in [m.value for m in at.markdown]
    assert "/srv/secret" not in "\n".join(e.value for e in at.error)
    logged = [r for r in caplog.records if r.name == "fairprune.app.ui"]
    assert len(logged) == (kind != "fairprune")  # unexpected ones go to the server log


def test_a_headline_the_data_cannot_support_is_one_line_not_an_error(store_env, monkeypatch):
    import fairprune.sweep.findings

    def no_samples(*args, **kwargs):
        raise ValueError("group 'dark' has no samples in this resample\nmore detail")

    st.cache_data.clear()
    monkeypatch.setattr(fairprune.sweep.findings, "level_findings", no_samples)
    assert tables.headline_text(store_env["sweep_id"]) == tables.ERR_HEADLINE_FAILED.format(
        reason="group 'dark' has no samples in this resample"
    )

    def unreadable(*args, **kwargs):
        raise FairpruneError("sweep x has no dense baseline; rerun it.")

    st.cache_data.clear()
    monkeypatch.setattr(fairprune.sweep.findings, "level_findings", unreadable)
    assert tables.headline_text(store_env["sweep_id"]) == "sweep x has no dense baseline; rerun it."
    st.cache_data.clear()
