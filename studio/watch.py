"""A slow background check: rerun this session when another session changed what it shows.

Another session may start a job, or a job may finish and make a new model active; without this,
this page would only notice at its next interaction.
"""

from __future__ import annotations

import streamlit as st

from studio import resources

POLL_S = 5.0


def server_state() -> tuple:
    """What a page shows of the server: its job (number, running) and the active model."""
    manager = resources.jobs()
    job = manager.job
    return (job.number if job is not None else None, job is not None and job.running,
            str(manager.runs.active_path()))


def render(seen: tuple) -> None:
    """Call once per full run, at the end of the page, with server_state() as it was read before the page was drawn:
    a change while the page was being drawn (a run ending, say) then reruns it at the next check, where a state read
    now would take that change as already shown and leave the page stale."""
    st.session_state["seen_state"] = seen
    st.session_state["watch_armed"] = False
    _watch()


@st.fragment(run_every=POLL_S)
def _watch() -> None:
    """Every POLL_S, rerun the page if the server changed since it was drawn. Called by the page's own run, it only
    sets its timer: a rerun asked for there, while a live view may ask for its own, could leave the old view on the
    page beside the new one."""
    if not st.session_state["watch_armed"]:
        st.session_state["watch_armed"] = True
        return
    if server_state() != st.session_state["seen_state"]:
        st.rerun(scope="app")
