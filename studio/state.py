"""Per-session state, set up once at the top of every run (setdefault leaves user choices alone)."""

from __future__ import annotations

import streamlit as st

from mnist_core.data import TEST_IMAGES, TRAIN_IMAGES
from mnist_core.spec import PRESET_LAYERS
from mnist_core.training import preset_recipe

FULL_TRAIN, FULL_TEST = TRAIN_IMAGES, TEST_IMAGES  # MNIST's splits: all of them
DEFAULT_PRESET = "seed"


def recipe(preset: str) -> dict:
    """The preset's training recipe as the Train tab's widget values ("train_" and the TrainConfig field; the
    precision has no widget)."""
    return {f"train_{field}": value for field, value in preset_recipe(preset).items() if field != "precision"}


DEFAULTS = {
    # Train tab (widget keys)
    "train_preset": DEFAULT_PRESET,
    **recipe(DEFAULT_PRESET),
    "train_seed": 42,
    "train_my_digits": False,  # also train on the user's labelled digits
    "train_pen_digits": False,  # also train on the vendored pen digits (mnist_core.pendigits)
    "train_images": FULL_TRAIN,
    "test_images": FULL_TEST,
    "train_error": None,  # message from the last click on Train, shown once
    "design_base": PRESET_LAYERS[DEFAULT_PRESET],  # the designer's table starts from this spec string
    "design_version": 0,  # part of the table's key: a new design (Load, Edit a copy) is a new table
    "design_start": DEFAULT_PRESET,  # the designer's "Start from" choice
    "design_layers": None,  # the design as the table holds it, when it can be trained (studio.designer)
    # Gallery tab
    "gallery_split": "train",
    "gallery_digit": "All",
    "gallery_predictions": False,
    "gallery_page": 0,
    "gallery_seed": None,  # None: dataset order; an int: shuffled with that seed
    # Draw tab
    "canvas_clears": 0,  # the times the server emptied the canvas (Clear, a digit kept): studio.draw_canvas
    "canvas_seen": None,  # a digest of the picture the canvas last sent
    "canvas_cleared": None,  # the digest of the picture on the canvas when it was emptied: not read again
    "drawing_x": None,  # the current drawing as the model reads it, (28, 28) in [0, 1]; for the live reading
    "live_shown": None,  # the last full run drew the in-training reading (None during a full run): studio.draw_tab
    "teach_message": None,  # "Saved as 4 · 37 of your digits", shown once after a label click
    "teach_saved": False,  # a label click saved a digit: the next fragment run reruns the page (My digits)
    # My digits tab
    "mine_filter": "All",  # the gallery's digit filter
    "mine_page": 0,
    "mine_message": None,  # (kind, text) from the last relabel, delete, import or fine-tune click, shown once
    # Evaluate tab
    "eval_true": None,  # the confusion cell shown; None until the first run picks the commonest confusion
    "eval_pred": None,
    "eval_mistakes_page": 0,
    "eval_drawing": 0,  # counts heatmap drawings: part of each click's selection (evaluate_tab)
    # Runs (Train tab)
    "runs_error": None,  # message from the last "Make active" click, shown once
    "runs_note": None,  # what the last "Clear the log" did, shown once
    "runs_picked": False,  # the user chose a run in the Runs picker; until then it follows the newest run
    # Host controls (studio.host)
    "host_unlocked": False,  # this page gave the host password
    "host_message": None,  # "Wrong password…", shown once
    "host_misses": 0,  # wrong passwords this page gave since it last unlocked
    "host_retry_at": 0.0,  # time.monotonic() before which this page's next password is not read
    # What the last full run showed, so the watcher can tell when another session changed things
    "seen_state": None,
    "watch_armed": False,  # the watcher's timer runs compare; its call from the page's own run does not
}

# The widgets of the tabs drawn only while open (app.py). Streamlit forgets a widget's value when a full run does not
# draw it; a value the session sets itself is kept (the pattern of Streamlit's docs, "Widget behavior").
KEPT_WIDGETS = ("gallery_split", "gallery_digit", "gallery_predictions", "mine_filter", "eval_true", "eval_pred")


def init() -> None:
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
    for key in KEPT_WIDGETS:
        st.session_state[key] = st.session_state[key]
