"""Stop Streamlit from resetting Keras after every script run.

After each run (fragment runs included) Streamlit 1.67 calls `keras.backend.clear_session()`
(script_runner._clean_problem_modules). That replaces Keras' global state, clears TensorFlow's
kernel cache and runs a full garbage collection, all while holding the GIL. Here the server's
training thread uses Keras at the same time: with the live view redrawing every second, training
ran ~40x slower (1 epoch on 6,000 images: 3 s with no page open, 150 s with one), and a reset
while the thread builds its model could even break it. The studio does not need the reset: its
Keras objects are made once in st.cache_resource or by the training thread.

We keep the rest of Streamlit's clean-up (closing pyplot figures). `runner.postScriptGC = false`
in .streamlit/config.toml removes the other per-run full collection.
"""

from __future__ import annotations

import sys

_PATCHED = "_mnist_studio_keeps_keras"


def _clean_problem_modules_keeping_keras() -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        try:
            plt.close("all")
        except Exception:  # as Streamlit: never fail a run over clean-up
            pass


def keep_keras_state() -> bool:
    """Install the replacement once per process; False if this Streamlit has no such hook."""
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:
        return False
    if getattr(script_runner, _PATCHED, False):
        return True
    if not callable(getattr(script_runner, "_clean_problem_modules", None)):
        return False
    script_runner._clean_problem_modules = _clean_problem_modules_keeping_keras
    setattr(script_runner, _PATCHED, True)
    return True
