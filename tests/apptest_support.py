"""What every AppTest test file shares: the app's path, its own RunStore per test, and clean caches.

The `runs` fixture (tests/conftest.py) gives every test its own RunStore folder ($MNIST_STUDIO_RUNS, and so
its own digits database) and fresh st.cache_resource / st.cache_data (both are process-global), so no state
leaks from one test to the next.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 180  # the first run imports TensorFlow and loads MNIST on a busy 2-core machine


def clear_caches() -> None:
    st.cache_resource.clear()
    st.cache_data.clear()


def job_manager():
    from studio import resources  # the same cached instance the app used

    return resources.jobs()


def stop_running_job() -> None:
    job = job_manager().job
    if job is not None:
        job.stop()
        job.join(120)


def run_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_tab(at: AppTest, word: str) -> AppTest:
    """Open the tab whose label has `word` and run the page, as a click on the tab does (the Gallery, Evaluate and
    My digits tabs are drawn only while open)."""
    (label,) = [t.label for t in at.tabs if word in t.label]
    at.session_state["tabs"] = label
    return at.run()
