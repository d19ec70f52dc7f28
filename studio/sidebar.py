"""The sidebar: which device TensorFlow uses and which model every session predicts with."""

from __future__ import annotations

import streamlit as st

from mnist_core.store import utc_minute
from studio import exports, guard, host, resources


def model_summary_line(active: resources.ActiveModel) -> str:
    info = active.info
    if info is None:
        return "unknown model"
    acc = "accuracy unknown" if info.test_accuracy is None else f"{info.test_accuracy:.2%} test accuracy"
    return f"**{info.preset}** · {acc}"


def trained_when(active: resources.ActiveModel) -> str:
    info = active.info
    if info is None or info.trained_at == "unknown":
        return "training time unknown"
    return f"trained {utc_minute(info.trained_at)} UTC"


def render() -> None:
    """Drawn inside st.sidebar by the page."""
    st.title(":material/draw: MNIST Digit Studio")
    st.caption("Train a CNN on MNIST, browse the digits, and let the model read yours.")

    st.subheader("Device")
    device = resources.device_info()
    st.markdown(device.describe())
    if not device.cpu_only:
        st.caption(f"GPUs seen: {', '.join(device.gpus_seen)} · memory growth "
                   f"{'on' if device.memory_growth else 'off'}")
    for note in device.notes:
        st.caption(f"Note: {note}")

    st.subheader("Active model")
    active = resources.active_model()
    for error in active.errors:
        st.error(guard.public(error))
    if active.predictor is not None:
        st.markdown(model_summary_line(active))
        st.caption(f"Trained on {active.info.trained_on if active.info else 'unknown data'}")
        st.caption(f"{trained_when(active)} · `{active.path.name}`"
                   + (" (shipped default)" if active.is_default else ""))
        with st.popover("Download model", icon=":material/download:", width="stretch", key="download_popover",
                        help="The active model as a Keras file, or converted for phones (TFLite) and TensorFlow "
                             "Serving (SavedModel)."):
            exports.buttons(active.path, "active_model")

    job = resources.jobs().job
    if job is not None and job.running:
        st.info(f"Training **{job.config.preset}** in the Train tab…")
    host.render()
