"""A fragment's own alarm clock: rerun the fragment it is drawn in after a delay the server chooses, or at once
when the drawing pad sends a picture.

A fragment's `run_every` timer reruns it at a fixed pace whether or not there is anything new, and every run
costs the page: about 0.1 s of the browser's CPU and 0.05 s of the server's for the in-training reading. The
server knows when new weights are due, so it sets each wait itself; the pad announces its pictures with a
browser event (PAD_SENT, dispatched by drawing_pad.js), so a new drawing is read by the network in training
right after the model has answered it, not at the next tick.
"""

from __future__ import annotations

import streamlit as st

PAD_SENT = "mnist-studio:pad-sent"  # the window event drawing_pad.js dispatches with each picture it sends

JS = """
const alarms = new Map(); // component key -> {timer, listener, event}: one alarm per fragment, however often drawn

function disarm(key) {
  const alarm = alarms.get(key);
  if (!alarm) return;
  clearTimeout(alarm.timer);
  removeEventListener(alarm.event, alarm.listener);
  alarms.delete(key);
}

export default function ({data, key, setTriggerValue}) {
  disarm(key); // the last run's alarm: this run set a new one
  const ring = () => { disarm(key); setTriggerValue("rang", true); };
  // After the pad's own message: its picture is read before the fragment that reads it again.
  const listener = () => setTimeout(ring, 0);
  addEventListener(data.event, listener);
  const alarm = {timer: data.ms === null ? null : setTimeout(ring, data.ms), listener, event: data.event};
  alarms.set(key, alarm);
  return () => { if (alarms.get(key) === alarm) disarm(key); }; // a superseded call's cleanup leaves the new one
}
"""

_mount = st.components.v2.component("mnist_studio.wake", html="", js=JS)


def wake(after_s: float | None, *, key: str) -> None:
    """Rerun the enclosing fragment in `after_s` seconds (None: only when the pad sends a picture).

    Each run of the fragment must call this again (the alarm rings once); a run that does not, or a full run of
    the page that does not draw the fragment, leaves no alarm behind.
    """
    runs = st.session_state.get(f"{key}_runs", 0) + 1  # new data each run, so the browser sets the alarm anew
    st.session_state[f"{key}_runs"] = runs
    _mount(key=key, data={"ms": None if after_s is None else round(after_s * 1000), "event": PAD_SENT, "run": runs},
           width="content", height="content", on_rang_change=lambda: None)
