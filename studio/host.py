"""Host-only controls: with a password set, anyone may draw, upload, label their own drawings and browse, but only
a page that has been unlocked with the password may train, stop, fine-tune, make a model active or delete one, clear
the run log, and import, export, relabel or delete the class's digits. Each is refused on the server too.

After FREE_MISSES wrong passwords, a page may try once every RETRY_S seconds.

The password comes from $MNIST_STUDIO_PASSWORD, else from `host_password` in .streamlit/secrets.toml; with
neither, every page is the host's (a studio on one's own machine needs no password).
"""

from __future__ import annotations

import hmac
import math
import os
import time

import streamlit as st

PASSWORD_ENV = "MNIST_STUDIO_PASSWORD"
SECRET_KEY = "host_password"
LOCKED = "Only the host can do this on this server: unlock the host controls in the sidebar."
FREE_MISSES = 5  # wrong passwords a page may give at its own pace
RETRY_S = 2.0  # after them, the page's next try is read only this many seconds after its last


def password() -> str | None:
    """The host password, or None when none is set (an empty value counts as none)."""
    value = os.environ.get(PASSWORD_ENV)
    if not value:
        try:
            value = st.secrets.get(SECRET_KEY)
        except FileNotFoundError:  # no secrets.toml: Streamlit's own error is a FileNotFoundError
            value = None
    return str(value) if value else None


def unlocked() -> bool:
    """May this page use the host's controls?"""
    return password() is None or bool(st.session_state.get("host_unlocked"))


def _unlock() -> None:
    ss = st.session_state
    given = ss.get("host_password_input") or ""
    expected = password()
    ss["host_password_input"] = ""  # never kept in the page
    wait = ss["host_retry_at"] - time.monotonic()
    if wait > 0:  # not even compared: guessing is slowed
        ss["host_message"] = (f"Too many wrong passwords: this page may try again in {math.ceil(wait)} s "
                              f"(one try every {RETRY_S:g} s).")
    elif expected is not None and hmac.compare_digest(given.encode(), expected.encode()):
        ss["host_unlocked"], ss["host_message"], ss["host_misses"] = True, None, 0
    else:
        ss["host_misses"] += 1
        ss["host_message"] = "Wrong password: the host controls stay locked."
        if ss["host_misses"] >= FREE_MISSES:
            ss["host_retry_at"] = time.monotonic() + RETRY_S
            ss["host_message"] += f" After {FREE_MISSES} wrong tries, this page may try once every {RETRY_S:g} s."


def _lock() -> None:
    st.session_state["host_unlocked"] = False


def render() -> None:
    """The sidebar's unlock box; nothing when no password is set."""
    if password() is None:
        return
    st.subheader("Host controls")
    if unlocked():
        st.caption("Unlocked on this page: Train, Stop, fine-tuning, Make active, Delete, and changing the class's "
                   "digits (import, export, relabel, delete).")
        st.button("Lock", key="host_lock_btn", icon=":material/lock:", on_click=_lock, width="stretch")
        return
    st.caption("Drawing, uploads, labelling your drawings, the galleries and Evaluate are open to everyone; "
               "training, changing the model and changing the class's digits need the host's password.")
    with st.form("host_unlock", border=False):  # Enter in the box unlocks too
        st.text_input("Host password", type="password", key="host_password_input")
        st.form_submit_button("Unlock", key="host_unlock_btn", icon=":material/lock_open:", on_click=_unlock,
                              width="stretch")
    message = st.session_state.get("host_message")
    if message:
        st.error(message)
        st.session_state["host_message"] = None  # shown once
