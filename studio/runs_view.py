"""The Train tab's list of finished runs: what each did, its metrics as CSV, and making its model active."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd
import streamlit as st

from mnist_core import compare
from mnist_core.retention import KEEP_ENV, Retention, keep_setting
from mnist_core.runs import RunRecord
from mnist_core.spec import CUSTOM, PRESET_LAYERS
from mnist_core.store import DEFAULT_MODEL, utc_minute
from studio import charts, designer, exports, guard, host, resources


def _describe(record: RunRecord) -> str:
    acc = "no test accuracy" if record.test_accuracy is None else f"{record.test_accuracy:.2%}"
    return f"{utc_minute(record.finished_at)} UTC · {_kind(record)} · {record.status} · {acc}"


def _kind(record: RunRecord) -> str:
    """The preset, and whether the run was a fine-tune or learned the user's digits too."""
    if record.is_finetune:
        seen = (record.personal or {}).get("trained_on")
        return f"{record.preset} · fine-tune" + ("" if seen is None else f" on {seen} of your digits")
    network = record.preset + (f" · {record.config['layers']}" if record.config.get("layers") else "")
    return (network + (" · with pen digits" if record.config.get("pen_digits") else "")
            + (" · with your digits" if record.config.get("my_digits") else ""))


def _network_of(record: RunRecord) -> str | None:
    """The run's network as a spec string: its own design, or its preset's layers."""
    return record.config.get("layers") or PRESET_LAYERS.get(record.preset)


def _edit_copy(layers: str) -> None:
    """Put a run's network in the designer (preset "custom"); the run and its model are untouched."""
    st.session_state["train_preset"] = CUSTOM
    designer.load(layers)


def _model_state(record: RunRecord, active: Path, pruned: set[str]) -> str:
    if record.model is None:
        return "not kept"
    path = Path(record.model)
    if not path.is_file():
        return "pruned" if path.name in pruned else "file deleted"
    return "active" if path == active else "saved"


def _is_pinned(record: RunRecord, pinned: set[str]) -> bool:
    return record.model is not None and Path(record.model).name in pinned


def _retention() -> Retention:
    return Retention(resources.runs(), keep_setting()[0])


def _as_host(action: Callable[[], object], failed: str) -> object | None:
    """A Runs click's `action` for an unlocked page; a locked page's click (its button is disabled, this refuses
    one sent anyway) or a failure becomes the message shown once. Returns what the action returned, or None."""
    st.session_state["runs_error"] = None
    if not host.unlocked():
        st.session_state["runs_error"] = host.LOCKED
        return None
    try:
        return action()
    except (ValueError, OSError) as exc:  # the active model, a file not ours, a vanished file, a read-only folder
        st.session_state["runs_error"] = f"{failed}: {guard.public(exc)}"
        return None


def _make_active(path: str) -> None:
    _as_host(lambda: resources.runs().set_active(path), "That model cannot be made active")


def _delete_model(path: str) -> None:
    _as_host(lambda: resources.runs().delete_model(path), "That model was not deleted")


def _pin(path: str, on: bool) -> None:
    _as_host(lambda: _retention().pin(path, on), f"That model could not be {'pinned' if on else 'unpinned'}")


def _clear_log() -> None:
    removed = _as_host(resources.runs().clear_log, "The run log was not cleared")
    if removed is not None:
        st.session_state["runs_note"] = f"Cleared {removed} run{'' if removed == 1 else 's'} without a model from " \
                                        "the log."


def _clear_popover(container) -> None:
    """Clearing the log asks once more, and says what stays."""
    locked = not host.unlocked()
    pop = container.popover("Clear the log", icon=":material/delete_sweep:", key="clear_log_popover",
                            disabled=locked, help=host.LOCKED if locked else "Forget the runs that have no model on "
                            "disk.")
    pop.markdown("Forget every run whose model is not on disk (not kept, deleted or pruned)? Runs with a model stay "
                 "listed, and no model file is touched.")
    pop.button("Clear", key="clear_log_btn", type="primary", icon=":material/delete_sweep:", on_click=_clear_log,
               disabled=locked)


def _delete_popover(container, record: RunRecord, state: str) -> None:
    """Deleting asks once more, inside a popover, and says what stays."""
    locked = not host.unlocked()
    pop = container.popover("Delete model", icon=":material/delete:", width="stretch", key="delete_model_popover",
                            disabled=state != "saved" or locked,
                            help=host.LOCKED if locked else {"saved": "Free the disk space of this run's model file.",
                                  "active": "Make another model active before deleting this one.",
                                  "not kept": "This run ended without a model.",
                                  "file deleted": "This run's model file is already gone.",
                                  "pruned": "This run's model was deleted to keep the newest ones."}[state])
    if state == "saved":
        path = Path(record.model)
        try:
            size = f" ({path.stat().st_size / 1e6:.1f} MB)"
        except OSError:  # deleted by another session a moment ago
            size = ""
        pop.markdown(f"Delete `{path.name}`{size}? The run stays in this list with its metrics.")
        pop.button("Delete", key="delete_model_btn", type="primary", icon=":material/delete:",
                   on_click=_delete_model, args=(record.model,))


def _compare(by_id: dict[str, RunRecord], words: dict[str, str]) -> None:
    """Runs side by side: their per-epoch test curves on one chart, and what differs in their recipes; `words` name
    the runs in the picker (_labels)."""
    chosen = st.multiselect("Runs to compare", list(by_id), format_func=words.__getitem__,
                            key="compare_runs", max_selections=8, placeholder="Pick two or more runs")
    if len(chosen) < 2:
        st.caption("Pick two or more runs: their test accuracy and loss after every epoch on one chart, one colour "
                   "a run, and a table of what differs in their recipes.")
        return
    records = [by_id[i] for i in chosen]
    labels = [f"{k}: {r.preset} · {utc_minute(r.finished_at)}" for k, r in enumerate(records, 1)]
    rows = compare.curve_rows(records, labels)
    accuracy, loss = st.columns(2)
    accuracy.altair_chart(charts.compare_chart(rows, "test accuracy", percent=True), width="stretch", height=360)
    loss.altair_chart(charts.compare_chart(rows, "test loss"), width="stretch", height=360)
    flat = [label for label, r in zip(labels, records) if not r.history]
    if flat:
        st.caption(f"No full epoch, so no curve: {', '.join(flat)}.")
    names, values = zip(*compare.differences(records))
    st.table(pd.DataFrame(dict(zip(labels, zip(*values))), index=list(names)))


def _told_apart(texts: list[str], mark: str) -> list[str]:
    """Texts of runs listed newest first, each repeat marked with mark.format(n) for the n-th run to have it,
    counted from the oldest, so that a newer run never changes an older one's text."""
    seen: dict[str, int] = {}
    apart = []
    for text in reversed(texts):
        seen[text] = seen.get(text, 0) + 1
        apart.append(text if seen[text] == 1 else text + mark.format(seen[text]))
    return apart[::-1]


def _labels(by_id: dict[str, RunRecord]) -> dict[str, str]:
    """Each run's words in the picker, made unique: a later run with the same words gets " (2)", and so on."""
    return dict(zip(by_id, _told_apart([_describe(r) for r in by_id.values()], " ({})")))


def _picked() -> None:
    st.session_state["runs_picked"] = True


def _run_ids(records: list[RunRecord]) -> dict[str, RunRecord]:
    """Each run by an id that stays the same when other runs finish and the list grows: its finish time and model
    file, and a count for runs that share both (two runs without a model that ended in the same second)."""
    return dict(zip(_told_apart([f"{r.finished_at} {r.model}" for r in records], " #{}"), records))


def render() -> None:
    st.subheader("Runs")
    records, problem = resources.runs().read_log()
    if problem:
        st.warning(guard.public(problem), icon=":material/warning:")
    for note in resources.jobs().tidied:  # what this server's start put right after a kill
        st.caption(f"At start-up: {guard.public(note)}")
    active = resources.active_model().path.resolve()  # the model in use, after any fallback
    error, note = st.session_state.get("runs_error"), st.session_state.get("runs_note")
    if error:
        st.error(error)
    if note:
        st.success(note)
    st.session_state["runs_error"] = st.session_state["runs_note"] = None  # each shown once
    retention = _retention()
    pinned, pruned = retention.pinned(), retention.pruned()
    if not records:
        st.caption("Every finished run will be listed here, newest first, with its model if it was kept.")
    else:
        table = pd.DataFrame({
            "Finished (UTC)": [utc_minute(r.finished_at) for r in records],
            "Preset": [_kind(r) for r in records],
            "Status": [r.status for r in records],
            "Epochs": [f"{r.full_epochs}/{r.config.get('epochs', '?')}" for r in records],
            "Test accuracy": [None if r.test_accuracy is None else r.test_accuracy * 100 for r in records],
            "Seconds": [r.seconds for r in records],
            "Model": [_model_state(r, active, pruned) for r in records],
            "Pinned": [_is_pinned(r, pinned) for r in records],
        })
        st.dataframe(table, hide_index=True, width="stretch", key="runs_table", column_config={
            "Test accuracy": st.column_config.NumberColumn(format="%.2f%%"),
            "Seconds": st.column_config.NumberColumn(format="%.1f"),
        })
        st.caption(f"Kept on disk: the active model, pinned ones and the newest {retention.keep} "
                   f"(`{KEEP_ENV}`). Older ones are deleted when a run is kept; their runs stay listed as pruned.")
        by_id = _run_ids(records)
        labels = _labels(by_id)
        if not st.session_state["runs_picked"] or st.session_state.get("runs_choice") not in by_id:
            st.session_state["runs_choice"] = next(iter(by_id))  # the newest run, until the user picks one
        chosen = st.selectbox("Run", list(by_id), format_func=labels.__getitem__, key="runs_choice", on_change=_picked)
        record = by_id[chosen]  # in by_id: set above when it was not
        state = _model_state(record, active, pruned)
        locked = not host.unlocked()
        use, pin, download, csv, edit, delete = st.columns(6, vertical_alignment="bottom")
        use.button("Make active", key="make_active_btn", icon=":material/check_circle:", width="stretch",
                   disabled=state != "saved" or locked, on_click=_make_active, args=(record.model,),
                   help=host.LOCKED if locked else {"saved": "Every session will read digits with this run's model.",
                         "active": "This run's model is already the active one.",
                         "not kept": "This run ended without a model worth keeping.",
                         "file deleted": "This run's model file is gone.",
                         "pruned": "This run's model was deleted to keep the newest ones."}[state])
        is_pinned = _is_pinned(record, pinned)
        pin.button("Unpin" if is_pinned else "Pin", key="pin_btn", icon=":material/keep:", width="stretch",
                   disabled=state not in ("saved", "active") or locked, on_click=_pin,
                   args=(record.model, not is_pinned),
                   help=host.LOCKED if locked else "A pinned model is never deleted to make room for newer ones.")
        with download.popover("Download", icon=":material/download:", width="stretch", key="run_download_popover",
                              disabled=state not in ("saved", "active"),
                              help="This run's model as a Keras file, TFLite or a SavedModel."):
            if state in ("saved", "active"):
                exports.buttons(Path(record.model), "run_model")
        csv.download_button("Metrics (CSV)", record.metrics_csv(), file_name=f"run-{record.finished_at[:19]}.csv"
                            .replace(":", ""), mime="text/csv", key="download_metrics", icon=":material/download:",
                            on_click="ignore", width="stretch", disabled=not record.history,
                            help="Loss and accuracy after every full epoch, training and validation.")
        layers = _network_of(record)
        edit.button("Edit a copy", key="edit_copy_btn", icon=":material/edit:", width="stretch",
                    disabled=layers is None, on_click=_edit_copy, args=(layers,),
                    help="Load this run's network into the designer (preset custom, above) to change and train it."
                    if layers else "This run's network is not known.")
        _delete_popover(delete, record, state)
        if len(records) > 1:
            with st.expander("Compare runs", icon=":material/compare_arrows:"):
                _compare(by_id, labels)
    shipped, clear, _ = st.columns([1, 1, 2])
    if active != DEFAULT_MODEL.resolve():
        shipped.button("Use the shipped model", key="use_default_btn", icon=":material/restart_alt:",
                       on_click=_make_active, args=(str(DEFAULT_MODEL),), disabled=not host.unlocked(),
                       width="stretch", help="Make the model that comes with the studio active again.")
    if records:
        _clear_popover(clear)
