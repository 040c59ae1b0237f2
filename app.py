"""fairprune's dashboard: `streamlit run app.py`. The page list; every page lives in pages/."""

import streamlit as st

from fairprune.app import identity, warmup

# once per process and store: the default views' cached values, computed in the background
# ahead of the first visitor (never blocks this run)
warmup.start()

PAGES = [
    st.Page("pages/0_Overview.py", title="Overview", icon="✂️", default=True),
    st.Page("pages/1_Models.py", title="Models", url_path="Models"),
    st.Page("pages/2_Dataset.py", title="Dataset", url_path="Dataset"),
    st.Page("pages/3_Audit.py", title="Audit", url_path="Audit"),
    st.Page("pages/4_Sparsity_sweep.py", title="Sparsity sweep", url_path="Sparsity_sweep"),
    st.Page(
        "pages/5_What_pruning_forgot.py",
        title="What pruning forgot",
        url_path="What_pruning_forgot",
    ),
    st.Page("pages/7_Methods.py", title="Methods", url_path="Methods"),
    st.Page("pages/6_Report.py", title="Report", url_path="Report"),
]

# st.navigation comes first even for a visitor who may not see a page: until a run calls it,
# Streamlit serves the pages/ folder on its own (each page reachable without this script). A
# visitor who has not signed in (or holds no role) gets no page list and only the gate's button.
page = st.navigation(PAGES, position="sidebar" if identity.admitted() else "hidden")
identity.gate()  # sign-in on: signed out, or no role → the run ends here
page.run()
