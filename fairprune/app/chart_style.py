"""The charts' shared look: one palette (Okabe–Ito, colour-blind safe) that gives each group the
same colour on every page, line styles per loss, and the layout (fonts sized for a projector)."""

from __future__ import annotations

import zlib

import plotly.graph_objects as go

from fairprune.app.views import group_base

OKABE_ITO = [
    "#E69F00",  # orange
    "#0072B2",  # blue
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow: last, it is faint on white
]
# groups every dataset of the paper uses keep one colour everywhere (matched on the first word,
# so Fitzpatrick's "light (1-2)" and the intersectional "light × benign" are light's orange)
FIXED = {
    "light": "#E69F00",
    "medium": "#009E73",
    "dark": "#0072B2",
    "female": "#CC79A7",
    "male": "#56B4E9",
    "overall": "#555555",
}
LOSS_DASH = {
    "ce": "dash",
    "pw": "solid",
    "pw_weights": "dot",
    "pw_soft": "dashdot",
    "constrained": "longdashdot",
    "dense": "solid",
    "none": "longdash",
}
LOSS_SYMBOL = {"ce": "circle", "pw": "diamond", "constrained": "square"}
FONT = dict(size=17)


def group_color(name: str, groups: list[str] | None = None) -> str:
    """The colour of a group, the same on every page and chart.

    Parameters
    ----------
    name : str
        A group name; an intersectional one ("dark × malignant") takes its first part's colour.
    groups : list of str, optional
        Every group of the dataset. Groups outside the fixed table are coloured by their place
        among these, so the colours are distinct; without it, by a stable hash of the name.

    Returns
    -------
    str
        A hex colour from the Okabe–Ito palette.
    """
    base = group_base(name)
    if base in FIXED:
        return FIXED[base]
    others = sorted({group_base(g) for g in (groups or []) if group_base(g) not in FIXED})
    if base in others:
        return OKABE_ITO[others.index(base) % len(OKABE_ITO)]
    return OKABE_ITO[zlib.crc32(base.encode()) % len(OKABE_ITO)]  # hash() differs per process


def rgba(hex_color: str, alpha: float) -> str:
    """``#RRGGBB`` as a CSS ``rgba(...)`` string with opacity ``alpha``."""
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def layout(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    """The dashboard's look: title, axis titles with units, projector-sized fonts, palette."""
    fig.update_layout(
        title=dict(text=title, font=dict(size=22)),
        font=FONT,
        xaxis_title=x,
        yaxis_title=y,
        template="plotly_white",
        colorway=OKABE_ITO,
        legend=dict(font=dict(size=15)),
        margin=dict(l=70, r=30, t=70, b=60),
        hoverlabel=dict(font_size=15),
    )
    return fig


def empty_figure(title: str, message: str) -> go.Figure:
    """A figure without axes that says in one line why there is nothing to draw."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font=dict(size=18))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return layout(fig, title, "", "")
