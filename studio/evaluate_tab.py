"""Evaluate tab: the active model on the 10,000 test digits: scores, confusion matrix, its cells, mistakes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from mnist_core.evaluate import Evaluation
from mnist_core.predict import SECOND_LOOK_BELOW, SECOND_LOOK_READINGS
from studio import charts, resources
from studio.paging import pager

CELL_IMAGES = 40  # images shown for one confusion cell
MISTAKES_PAGE = 40  # 4 rows x 10
DIGITS = list(range(10))


@st.cache_data(max_entries=32, show_spinner=False)
def _grid(indices: tuple[int, ...], predictions: tuple[int, ...], confidence: tuple[float, ...]) -> bytes:
    x, y = resources.mnist()["test"]
    sel = np.asarray(indices, dtype=np.int64)
    return charts.digit_grid_png(x[sel], y[sel], predictions, confidence=confidence)


def _show_grid(ev: Evaluation, indices: np.ndarray, caption: str) -> None:
    st.image(_grid(tuple(int(i) for i in indices), tuple(int(p) for p in ev.predictions[indices]),
                   tuple(round(float(c), 4) for c in ev.confidence[indices])), caption=caption, width="stretch")


def _worst_cell(ev: Evaluation) -> tuple[int, int]:
    """The most frequent confusion: where a newcomer should look first."""
    off = ev.confusion.copy()
    np.fill_diagonal(off, -1)
    t, p = np.unravel_index(int(np.argmax(off)), off.shape)
    return int(t), int(p)


def _pick_cell() -> None:
    """A click on the heatmap chooses that cell in the two selectboxes."""
    points = st.session_state["confusion_chart"]["selection"].get("cell") or []
    if points and {"true", "predicted"} <= points[-1].keys():
        st.session_state["eval_true"] = int(points[-1]["true"])
        st.session_state["eval_pred"] = int(points[-1]["predicted"])


@st.fragment
def render() -> None:
    """The whole tab is a fragment: picking cells and paging rerun only this tab."""
    active = resources.active_model()
    if active.predictor is None:
        st.warning("No model is loaded, so there is nothing to evaluate: see the sidebar.")
        return
    _, error = resources.mnist_or_error()
    if error:
        st.error(f"The MNIST test digits could not be loaded: {error}")
        return
    ev = resources.evaluation(active)
    ss = st.session_state
    if ss["eval_true"] is None:  # first run of this session: start on the commonest confusion
        ss["eval_true"], ss["eval_pred"] = _worst_cell(ev)

    info = active.info
    st.caption(f"The active model ({info.preset if info else 'unknown preset'}, `{active.path.name}`) on all "
               f"{len(ev.labels):,} MNIST test digits, read as the Draw tab reads a drawing, once per model and kept.")
    wrong = int((ev.predictions != ev.labels).sum())
    m1, m2, m3 = st.columns(3)
    m1.metric("Test accuracy", f"{ev.accuracy:.2%}",
              help=f"A digit the network is less than {SECOND_LOOK_BELOW:.0%} sure of is read again, moved one pixel "
                   f"each way, and the {SECOND_LOOK_READINGS} readings are averaged. The runs and the sidebar give the "
                   "network's own accuracy from training, without this second look, so this one can be a little "
                   "higher.")
    m2.metric("Mistakes", f"{wrong:,} of {len(ev.labels):,}")
    hardest = int(np.nanargmin(ev.recall))
    m3.metric("Hardest digit", str(hardest), f"{ev.recall[hardest]:.2%} recognised", delta_color="off",
              delta_arrow="off", help="The digit with the lowest recall: the share of its images read correctly")

    heat, table = st.columns([3, 2], gap="large")
    with heat:
        st.markdown("**Confusion matrix** — rows: true digit, columns: the model's answer. Click a cell.")
        # A new drawing number each time makes every click a new selection, so that a cell can be picked
        # again after the selectboxes moved away from it (the chart keeps its last selection).
        ss["eval_drawing"] += 1
        chart = charts.confusion_chart(ev.confusion, (ss["eval_true"], ss["eval_pred"]), ss["eval_drawing"])
        st.altair_chart(chart, key="confusion_chart", on_select=_pick_cell, selection_mode="cell", width="stretch")
    with table:
        st.markdown("**Per digit**")
        st.dataframe(pd.DataFrame({
            "Digit": DIGITS,
            "Images": ev.confusion.sum(axis=1),
            "Recall": ev.recall * 100,
            "Precision": ev.precision * 100,
            "Mistaken for": [_top_confusion(ev, d) for d in DIGITS],
        }), hide_index=True, width="stretch", key="class_table", height=388, column_config={
            "Recall": st.column_config.NumberColumn(format="%.2f%%", help="Of the images of this digit, the "
                                                    "share the model recognised"),
            "Precision": st.column_config.NumberColumn(format="%.2f%%", help="Of the model's answers naming "
                                                       "this digit, the share that were right"),
            "Mistaken for": st.column_config.TextColumn(help="The commonest wrong answer for this digit"),
        })

    _cell_view(ev)
    _mistakes(ev)


def _top_confusion(ev: Evaluation, digit: int) -> str:
    row = ev.confusion[digit].copy()
    row[digit] = 0
    return "—" if row.max() == 0 else f"{int(np.argmax(row))} ({int(row.max())}×)"


def _cell_view(ev: Evaluation) -> None:
    ss = st.session_state
    st.subheader("One cell of the matrix")
    c1, c2, info = st.columns([1, 1, 4], vertical_alignment="bottom")
    # index=: a browser that mounts these late sends their default, which must be the cell shown (studio/train_tab.py)
    c1.selectbox("True digit", DIGITS, index=DIGITS.index(ss["eval_true"]), key="eval_true")
    c2.selectbox("Read as", DIGITS, index=DIGITS.index(ss["eval_pred"]), key="eval_pred")
    t, p = ss["eval_true"], ss["eval_pred"]
    idx = ev.cell(t, p)
    what = f"{t}s read as {p}" if t != p else f"{t}s read correctly"
    info.caption(f"{len(idx):,} {what}" + (f"; the {CELL_IMAGES} the model was surest of are shown."
                                           if len(idx) > CELL_IMAGES else "."))
    if len(idx) == 0:
        st.info(f"No test image of a {t} was read as {p}.")
        return
    with st.container(key="cell-images"):
        _show_grid(ev, idx[:CELL_IMAGES], f"True digit below each image; the model's answer and confidence above: "
                                          f"{what}, most confident first")


def _mistakes(ev: Evaluation) -> None:
    wrong = ev.mistakes()
    st.subheader("Mistakes")
    if len(wrong) == 0:
        st.success("The model reads every test digit correctly.")
        return
    pages = -(-len(wrong) // MISTAKES_PAGE)
    b1, b2, info = st.columns([1, 1, 5], vertical_alignment="center")
    page = pager(b1, b2, "eval_mistakes_page", pages, "mistakes")
    shown = wrong[page * MISTAKES_PAGE:(page + 1) * MISTAKES_PAGE]
    info.caption(f"All {len(wrong):,} misread test digits, the model's most confident mistakes first · page "
                 f"{page + 1} of {pages}")
    with st.container(key="mistakes"):
        _show_grid(ev, shown, "True digit below each image; the model's wrong answer and its confidence above")
