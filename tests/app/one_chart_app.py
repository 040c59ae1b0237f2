"""The browser test's reference: a Streamlit app whose page ``chart`` draws one plotly chart and
nothing else. Its time to the first chart in a new tab is the floor every dashboard page pays
(Streamlit's front end, the session's start, plotly.js), reported beside the pages' times."""

import plotly.graph_objects as go
import streamlit as st


def home() -> None:
    st.title("Home")


def chart() -> None:
    st.title("Chart")
    st.plotly_chart(go.Figure(go.Bar(x=["light", "dark"], y=[0.9, 0.8])))


st.navigation(
    [st.Page(home, title="Home", default=True), st.Page(chart, title="Chart", url_path="chart")]
).run()
