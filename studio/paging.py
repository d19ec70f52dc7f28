"""Previous / Next buttons for a page number kept in session state (Gallery, Evaluate's mistakes, My digits), and
the choices of a gallery's digit filter."""

from __future__ import annotations

import streamlit as st

from mnist_core.model import NUM_CLASSES

DIGIT_CHOICES = ["All", *(str(d) for d in range(NUM_CLASSES))]  # every digit, or one


def _turn(state_key: str, delta: int, pages: int) -> None:
    st.session_state[state_key] = min(max(st.session_state[state_key] + delta, 0), pages - 1)


def pager(previous, following, state_key: str, pages: int, widget_key: str) -> int:
    """The two buttons, in the columns `previous` and `following`; returns the current page, from 0,
    brought within the `pages` there are now (a filter or a new model may have left fewer)."""
    page = st.session_state[state_key] = min(st.session_state[state_key], pages - 1)
    previous.button("Previous", key=f"{widget_key}_prev", icon=":material/chevron_left:", disabled=page == 0,
                    on_click=_turn, args=(state_key, -1, pages), width="stretch")
    following.button("Next", key=f"{widget_key}_next", icon=":material/chevron_right:",
                     disabled=page >= pages - 1, on_click=_turn, args=(state_key, 1, pages), width="stretch")
    return page
