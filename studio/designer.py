"""The Train tab's network designer (preset "custom"): a table of layers, checked and measured as it is edited."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mnist_core.model import PRESETS
from mnist_core.spec import (ACTIVATIONS, KEYS, PADDINGS, PRESET_LAYERS, TYPES, SpecError, estimate_epoch_seconds,
                             format_spec, parse_spec, spec_summary)
from studio import resources


def _count(label: str, help: str) -> st.column_config.NumberColumn:
    return st.column_config.NumberColumn(label, min_value=1, step=1, width="small", help=help)


COLUMNS = {  # how each key of a row is edited: one column a parameter, empty where the layer has none
    "type": st.column_config.SelectboxColumn("Layer", options=TYPES, required=True, width="medium"),
    "filters": _count("Filters", "Conv2D: feature maps out."),
    "units": _count("Units", "Dense: neurons."),
    "kernel": _count("Kernel", "Conv2D: the window's side, px."),
    "stride": _count("Stride", "Conv2D: step of the window, px."),
    "size": _count("Pool", "Pooling: the window's side, px."),
    "padding": st.column_config.SelectboxColumn(
        "Padding", options=PADDINGS, help="valid: the image shrinks by kernel − 1; same: it keeps its size."),
    "activation": st.column_config.SelectboxColumn("Activation", options=ACTIVATIONS,
                                                   help="Conv2D and Dense; linear = none."),
    "rate": st.column_config.NumberColumn("Rate", width="small", min_value=0.0, max_value=0.95, step=0.05,
                                          format="%.2f", help="Dropout: the share of inputs zeroed while training."),
    "bias": st.column_config.CheckboxColumn("Bias", width="small", help="Conv2D and Dense: add a learned offset."),
}


def load(text: str) -> None:
    """Put a design (a spec string) in the table: replaces what is there."""
    st.session_state["design_base"] = text
    st.session_state["design_version"] += 1  # a new editor: its edits start from the new base


def _load_start() -> None:
    load(PRESET_LAYERS[st.session_state["design_start"]])


def rows_from_table(frame: pd.DataFrame) -> list[dict]:
    """The edited table as spec rows; a row left without a layer type (a new, empty one) is dropped."""
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return [{k: r.get(k) for k in KEYS} for r in records if r.get("type")]


def editor() -> list[dict]:
    """The table of layers (full width: one column a parameter), with Start from / Load; returns its rows."""
    start, load_btn, _ = st.columns([2, 1, 3], vertical_alignment="bottom")
    start.selectbox("Start from", list(PRESETS), key="design_start",
                    help="Load a preset's layers into the table, replacing the design.")
    load_btn.button("Load", key="design_load_btn", icon=":material/input:", on_click=_load_start, width="stretch")
    base = parse_spec(st.session_state["design_base"])  # normalized rows: every key, defaults in
    edited = st.data_editor(pd.DataFrame(base, columns=list(KEYS)), num_rows="dynamic", column_config=COLUMNS,
                            hide_index=True, width="stretch", column_order=KEYS,
                            key=f"design_table_{st.session_state['design_version']}")
    st.caption("One row a layer, top to bottom; an empty cell takes the layer's default. Add a row with **+** "
               "(above the table, at its right), delete rows by ticking them at the left and pressing Delete. The "
               "10-way output layer is added after the last row.")
    return rows_from_table(edited)


def summary(rows: list[dict]) -> str | None:
    """Each row's output shape and parameters, the total and the time an epoch takes here; returns the design as
    a spec string, or None when it cannot be trained (the row and the reason shown)."""
    st.markdown("**Network: your design**")
    st.session_state["design_layers"] = None  # until the design below is known to work
    try:
        info = spec_summary(rows)
    except SpecError as exc:
        st.error(str(exc), icon=":material/block:")
        return None
    table = pd.DataFrame({
        "Row": ["out" if r.row is None else str(r.row) for r in info.rows],
        "Layer": [r.description for r in info.rows],
        "Output shape": [str(tuple(r.output_shape)).replace("None", "batch") for r in info.rows],
        "Params": [r.params for r in info.rows],
    })
    st.dataframe(table, hide_index=True, width="stretch", key="design_summary",
                 column_config={"Params": st.column_config.NumberColumn(format="localized")})
    ss = st.session_state
    images, batch = int(ss["train_images"]), int(ss["train_batch_size"])
    seconds = estimate_epoch_seconds(rows, images, batch, resources.machine_speed())
    st.markdown(f"Total parameters: **{info.params:,}** · about **{_duration(seconds)}** an epoch of "
                f"{images:,} images at batch {batch} on this machine")
    st.session_state["design_layers"] = format_spec(rows)  # what Train trains (train_tab._config_from_state)
    return st.session_state["design_layers"]


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"
