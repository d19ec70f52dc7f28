"""Gallery tab: MNIST digits 20 at a time (the tutorial's 2x10 figure), filtered, paged, shuffled."""

from __future__ import annotations

import numpy as np
import streamlit as st

from mnist_core.data import to_float_images
from studio import charts, guard, resources
from studio.paging import DIGIT_CHOICES, pager

PAGE_SIZE = 20  # 2 rows x 10
SPLITS = ["train", "test"]


@st.cache_data(max_entries=16, show_spinner=False)
def _order(split: str, digit: str, seed: int | None) -> np.ndarray:
    """Indices of the split's images to show, in page order."""
    labels = resources.mnist()[split][1]
    idx = np.arange(len(labels)) if digit == "All" else np.flatnonzero(labels == int(digit))
    if seed is not None:
        idx = np.random.default_rng(seed).permutation(idx)
    return idx


@st.cache_data(max_entries=64, show_spinner=False)
def _grid(split: str, indices: tuple[int, ...], predictions: tuple[int, ...] | None) -> bytes:
    x, y = resources.mnist()[split]
    sel = np.asarray(indices, dtype=np.int64)
    return charts.digit_grid_png(x[sel], y[sel], predictions)


def _first_page() -> None:
    st.session_state["gallery_page"] = 0


def _shuffle() -> None:
    st.session_state["gallery_seed"] = int(np.random.default_rng().integers(2**31))
    st.session_state["gallery_page"] = 0


def _in_order() -> None:
    st.session_state["gallery_seed"] = None
    st.session_state["gallery_page"] = 0


@st.fragment
def render() -> None:
    """The whole tab is a fragment: paging and filtering rerun only the gallery."""
    data, error = resources.mnist_or_error()
    if error:
        st.error(f"The MNIST digits could not be loaded: {error}")
        return
    ss = st.session_state
    active = resources.active_model()

    c1, c2, c3 = st.columns([2, 2, 3], vertical_alignment="bottom")
    # This tab is drawn only while open (app.py), so its widgets mount anew each time: their own defaults are the
    # values the session keeps (studio.state), which a browser that mounts them late sends back (train_tab).
    c1.radio("Split", SPLITS, index=SPLITS.index(ss["gallery_split"]), key="gallery_split", on_change=_first_page,
             horizontal=True, format_func=lambda s: {"train": "Training set", "test": "Test set"}[s])
    c2.selectbox("Digit", DIGIT_CHOICES, index=DIGIT_CHOICES.index(ss["gallery_digit"]), key="gallery_digit",
                 on_change=_first_page, format_func=lambda d: "All digits" if d == "All" else d)
    c3.checkbox("Show the active model's prediction", value=ss["gallery_predictions"], key="gallery_predictions",
                disabled=active.predictor is None,
                help="Each digit gets the model's answer above it; wrong ones are red.")

    split, digit = ss["gallery_split"], ss["gallery_digit"]
    order = _order(split, digit, ss["gallery_seed"])
    pages = max(1, -(-len(order) // PAGE_SIZE))

    b1, b2, b3, b4, info = st.columns([1, 1, 1, 1, 3], vertical_alignment="center")
    page = pager(b1, b2, "gallery_page", pages, "gallery")
    b3.button("Shuffle", key="gallery_shuffle", icon=":material/shuffle:", on_click=_shuffle, width="stretch")
    b4.button("In order", key="gallery_in_order", icon=":material/sort:", on_click=_in_order,
              disabled=ss["gallery_seed"] is None, width="stretch")
    first = page * PAGE_SIZE
    shown = order[first:first + PAGE_SIZE]
    info.caption(f"Page {page + 1:,} of {pages:,} · images {first + 1:,}–{first + len(shown):,} of "
                 f"{len(order):,} {'shuffled' if ss['gallery_seed'] is not None else 'in dataset order'}")
    if len(shown) == 0:
        st.info("No images to show.")
        return

    x, y = data[split]
    labels = [int(v) for v in y[shown]]
    predictions = None
    if ss["gallery_predictions"] and active.predictor is not None:
        try:
            predictions = tuple(int(p) for p in active.predictor.predict(to_float_images(x[shown])[..., 0]))
        except Exception as exc:
            st.error(f"The model could not classify these digits: {guard.public(exc)}")
    caption = "Labels: " + " ".join(map(str, labels))
    if predictions is not None:
        wrong = sum(p != t for p, t in zip(predictions, labels))
        caption += f" · model predictions: {' '.join(map(str, predictions))} · {wrong} of {len(labels)} wrong"
    st.image(_grid(split, tuple(int(i) for i in shown), predictions), caption=caption, width="stretch")
