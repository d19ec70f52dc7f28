"""Live views that redraw themselves only while there is something new to show, on a page that shows them.

A fragment's timer lives in the browser. Each full run of the page drops every timer and the fragments drawn
in that run set theirs again, so deciding the interval at each full run is enough: a tab switch, a job that
starts or ends (studio.watch) and a click on Train or Stop are all full runs.
"""

from __future__ import annotations

from typing import Callable

import streamlit as st


def live(view: Callable[[], None], every_s: float, *, visible: bool) -> None:
    """Draw `view` (called only while a job runs) as a fragment, redrawn every `every_s` seconds while its tab is
    the one on screen; otherwise drawn once (and again only when its own widgets change)."""
    st.fragment(view, run_every=every_s if visible else None)()
