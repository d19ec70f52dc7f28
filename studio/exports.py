"""Download buttons for a saved model in every format it can be taken in (.keras, TFLite, SavedModel)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from mnist_core import export

LABELS = {"tflite": "TFLite (float32)", "tflite-int8": "TFLite (int8 weights)", "savedmodel": "SavedModel (zip)"}
HELP = {
    "tflite": "For phones and microcontrollers: TensorFlow Lite, float32. Input `image` (N×28×28×1, 0–1), output "
              "`probabilities` (N×10).",
    "tflite-int8": "TensorFlow Lite with the weights quantised to 8 bits: about a quarter of the size, the same "
                   "answers on 99.99% of the test digits.",
    "savedmodel": "A TensorFlow SavedModel folder, zipped: for TensorFlow Serving, TF.js converters and "
                  "tf.saved_model.load.",
}


@st.cache_resource(max_entries=6, show_spinner=False)  # called when the button is clicked, outside a script run
def _converted(path: str, mtime_ns: int, fmt: str) -> bytes:
    """One conversion per model file version and format, shared by every session (a second or two each)."""
    del mtime_ns  # part of the cache key only
    return export.download(path, fmt)[0]


def buttons(path: Path, key: str) -> None:
    """The .keras file and its three exports, each converted only when its button is clicked."""
    st.download_button("Keras (.keras)", data=path.read_bytes, file_name=path.name, mime="application/zip",
                       key=f"{key}_keras", icon=":material/download:", on_click="ignore", width="stretch",
                       help="The model as Keras saved it: keras.saving.load_model() reads it.")
    mtime = path.stat().st_mtime_ns
    for fmt, label in LABELS.items():
        st.download_button(label, data=lambda fmt=fmt: _converted(str(path), mtime, fmt),
                           file_name=export.file_name(path, fmt), mime="application/octet-stream",
                           key=f"{key}_{fmt}", icon=":material/download:", on_click="ignore", width="stretch",
                           help=HELP[fmt])
