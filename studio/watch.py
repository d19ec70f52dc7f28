"""A slow background check: rerun this session when another session changed what it shows.

Another session may start a job, or a job may finish and make a new model active; without this,
this page would only notice at its next interaction.
"""

from __future__ import annotations

import streamlit as st

from studio import resources

POLL_S = 5.0


def _server_state() -> tuple:
    manager = resources.jobs()
    job = manager.job
    return (job.number if job is not None else None, job is not None and job.running,
            str(manager.runs.active_path()))


def render() -> None:
    """Call once per full run, at the end of the page."""
    st.session_state["seen_state"] = _server_state()
    _watch()


@st.fragment(run_every=POLL_S)
def _watch() -> None:
    if _server_state() != st.session_state["seen_state"]:
        st.rerun(scope="app")
