"""The dashboard's side of the backend: what ``pages/`` import (and nothing else of fairprune).

``ui`` holds the Streamlit glue (caches, error boundary, pickers); ``views`` turns the results
store into tidy tables and headlines; ``charts`` turns those into plotly figures; ``jobs`` runs
sweeps in the background; ``report`` writes the self-contained HTML report.
"""
