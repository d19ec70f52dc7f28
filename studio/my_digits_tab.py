"""My digits tab: the digits the user labelled in the Draw tab, how the active model reads them, fixing or
deleting them, zip export/import, and fine-tuning the active model on them with the before → after scores.

They are the class's digits, which the host's fine-tune and *Include my digits* train on: with a host password set,
only an unlocked page may change them (relabel, delete, import) or export them all (studio.host), and each callback
refuses a locked page's click. The tab reads a page of them at a time in SQL, and at most SUMMARY_DIGITS of the newest
for the active model's score, however many there are (up to digits_db.MAX_DIGITS)."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from mnist_core import finetune
from mnist_core.data import TEST_IMAGES, to_float_images
from mnist_core.digits_db import (MAX_DIGITS, MAX_IMPORT_DIGITS, DigitsDatabaseError, DigitsImportError, DigitStore,
                                  MyDigit)
from mnist_core.jobs import JobAlreadyRunning
from mnist_core.store import ModelFileError, utc_minute
from mnist_core.training import TrainConfig
from studio import charts, guard, host, polling, resources
from studio.paging import DIGIT_CHOICES, pager

PAGE_SIZE = 20  # 4 rows of 5: each digit carries its own widgets, so few per page keeps reruns fast
SUMMARY_DIGITS = 1_000  # the active model's score is on at most this many of the newest digits
COLUMNS = 5
REFRESH_S = 1.0  # progress redraw interval while a fine-tune runs and this tab is open
RED = np.array([255, 85, 85], np.uint8)


# --- callbacks (run before the script, so the whole run sees their effect) --------------------------------
# mine_message is (kind, text, where, details): `where` puts it beside the control that caused it (the tab is
# long: a message at its top is out of sight of the import box), details are the import's skipped files.

def _say(kind: str, text: str, where: str, details: tuple[str, ...] = ()) -> None:
    st.session_state["mine_message"] = (kind, text, where, details)


def _edit(digit_id: int, delete: bool) -> None:
    """Relabel a digit to its selectbox's choice, or delete it (the popover's confirm button)."""
    if not host.unlocked():  # the controls are disabled then; this refuses a change sent anyway
        st.session_state.pop(f"mine_relabel_{digit_id}", None)  # the selectbox shows the stored label again
        _say("error", host.LOCKED, "gallery")
        return
    try:
        store = resources.digit_store()
        if delete:
            store.delete(digit_id)
            _say("success", f"Deleted #{digit_id}.", "gallery")
        else:
            label = int(st.session_state[f"mine_relabel_{digit_id}"])
            store.relabel(digit_id, label)
            _say("success", f"#{digit_id} is now labelled {label}.", "gallery")
    except KeyError:  # deleted in another session since this page was drawn
        _say("warning", f"#{digit_id} is gone: it was deleted elsewhere.", "gallery")
    except DigitsDatabaseError as exc:
        _say("error", f"Your digits cannot be changed: {guard.public(exc)}", "gallery")


def _import() -> None:
    # Only this click imports: the uploaded file stays in the uploader across reruns and must not be re-added.
    upload = st.session_state.get("mine_import")
    if not host.unlocked():
        _say("error", host.LOCKED, "import")
        return
    if upload is None:
        _say("warning", "Choose a zip to import first.", "import")
        return
    try:
        report = resources.digit_store().import_zip(upload.getvalue())
    except (DigitsImportError, DigitsDatabaseError) as exc:  # nothing was added
        _say("error", f"{guard.public(upload.name)} was not imported: {guard.public(exc)}", "import")
        return
    skipped = f" · {len(report.skipped)} skipped" if report.skipped else ""
    _say("success" if report.added else "warning", f"Imported {report.added} digits{skipped}.", "import",
         report.skipped)


def _start_finetune() -> None:
    if not host.unlocked():  # the button is disabled then; this refuses a click sent anyway
        _say("error", host.LOCKED, "finetune")
        return
    try:
        active, store = resources.active_model(), resources.digit_store()
        resources.jobs().start(TrainConfig.for_finetune(str(active.path), str(store.path)))
    except JobAlreadyRunning as exc:  # another session started one since this page was drawn
        _say("error", str(exc), "finetune")
    except (ValueError, ModelFileError) as exc:  # a network that is not a preset, an unreadable sidecar
        _say("error", f"The active model cannot be fine-tuned: {guard.public(exc)}", "finetune")
    except DigitsDatabaseError as exc:
        _say("error", f"Your digits cannot be read: {guard.public(exc)}", "finetune")


def _first_page() -> None:
    st.session_state["mine_page"] = 0


def _stop(number: int) -> None:
    if not host.unlocked():
        _say("error", host.LOCKED, "finetune")
        return
    resources.jobs().stop(number)  # only that run: a late click never stops a newer one


# --- layout ----------------------------------------------------------------------------------------------

def _show_message(where: str | None) -> None:
    """Show the message if it belongs here; None: wherever it belongs, as its place was not drawn this run
    (the last digit deleted, a store that cannot be read)."""
    message = st.session_state.get("mine_message")
    if not message or (where is not None and message[2:3] != (where,)):
        return
    kind, text, *rest = message
    getattr(st, kind, st.info)(text)
    details = rest[1] if len(rest) > 1 else ()
    if details:
        with st.expander(f"Skipped files ({len(details)})", key="mine_skipped"):
            st.markdown("\n".join(f"- {guard.public(line)}" for line in details))  # file names as typed
    st.session_state["mine_message"] = None  # shown once, for the click that caused it


@st.cache_data(max_entries=8, show_spinner=False)
def _readings(model: str, mtime_ns: int, ids: bytes, _images: np.ndarray, _predictor) -> np.ndarray:
    """The model's digit for each image. Keyed by ids: a digit's picture never changes (a relabel changes only
    its label, and ids are never reused), so reruns and relabels cost no prediction."""
    del model, mtime_ns, ids
    return _predictor.predict(to_float_images(_images)[..., 0])


def _read(active: resources.ActiveModel, ids: np.ndarray, images: np.ndarray) -> dict[int, int] | None:
    """The active model's digit for each image, by id ({} without a model); None when it cannot read them (said)."""
    if not len(ids) or active.predictor is None:
        return {}
    try:
        predicted = _readings(str(active.path), active.mtime_ns, ids.tobytes(), images, active.predictor)
    except Exception as exc:  # a model that cannot read these must not take the tab down
        st.error(f"The active model could not read your digits: {guard.public(exc)}")
        return None
    return dict(zip(ids.tolist(), predicted.tolist()))


def render() -> None:
    """Drawn only while this tab is open (app.py): the fine-tune's progress redraws itself whenever it is."""
    try:
        store = resources.digit_store()
        counts = store.counts()
        ids, images, labels = store.arrays(newest=SUMMARY_DIGITS)
    except DigitsDatabaseError as exc:  # a corrupt file: say so, and keep the rest of the page working
        st.error(f"Your digits cannot be read: {guard.public(exc)}")
        _show_message(None)
        return
    active = resources.active_model()
    n = int(counts.sum())
    readings = _read(active, ids, images)

    if n == 0:
        st.info("You have no labelled digits yet. Draw one in the **Draw** tab and press its "
                "**This is a…** digit, or import a zip of digits below.")
    else:
        chart, line = st.columns([2, 3], vertical_alignment="center")
        chart.altair_chart(_counts_chart(counts), width="stretch")
        text = f"**{n:,}** of your digits"
        if readings:
            right = sum(readings[i] == int(y) for i, y in zip(ids.tolist(), labels))
            which = "them" if len(ids) == n else f"the newest {len(ids):,}"
            text += f" · the active model reads **{right / len(ids):.0%}** of {which} right ({right:,} of " \
                    f"{len(ids):,})"
        elif readings is not None:
            text += " · no model is loaded to read them"
        line.markdown(text)
    _finetune(store, active, n)
    if n:
        st.divider()
        _gallery(store, counts, active, readings)
    st.divider()
    _export_import(store, n)
    _show_message(None)


def _counts_chart(counts: np.ndarray) -> alt.Chart:
    frame = pd.DataFrame({"digit": [str(d) for d in range(10)], "count": counts.astype(int)})
    return alt.Chart(frame).mark_bar(color=charts.BLUE, cornerRadiusTopLeft=3, cornerRadiusTopRight=3).encode(
        x=alt.X("digit:N", title="label", sort=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("count:Q", title="digits", axis=alt.Axis(tickMinStep=1)),
        tooltip=[alt.Tooltip("digit:N", title="label"), alt.Tooltip("count:Q", title="digits")],
    ).properties(height=150)


def _finetune(store: DigitStore, active: resources.ActiveModel, n: int) -> None:
    job = resources.jobs().job
    running = job is not None and job.running
    reason = None
    if n < finetune.MIN_DIGITS:
        reason = f"Label at least {finetune.MIN_DIGITS} digits first: you have {n}."
    elif running:
        reason = "A training job is running on this server: wait for it to end, or stop it."
    elif active.predictor is None:
        reason = "There is no active model to start from: train one in the Train tab."
    elif not host.unlocked():
        reason = host.LOCKED
    button, note = st.columns([1, 3], vertical_alignment="center")
    button.button("Fine-tune on my digits", key="finetune_btn", type="primary", icon=":material/tune:",
                  disabled=reason is not None, on_click=_start_finetune, width="stretch",
                  help=reason or "Teach the active model your handwriting; the new model becomes active.")
    note.caption(reason or f"{n} of your digits are ready.")
    st.caption(f"A fine-tune starts from the active model and trains on your digits, each seen many times "
               f"rotated, shifted, scaled, and thinner or thicker, mixed with as many MNIST digits so that MNIST "
               f"is not forgotten. {finetune.HOLDOUT_SHARE:.0%} of each digit's examples are held out to measure "
               f"the gain. The new model becomes active for every session.")
    _show_message("finetune")
    if running and job.config.is_finetune:
        with st.container(key="finetune-progress"):
            polling.live(_progress, REFRESH_S, visible=True)
    with st.container(key="finetune-result"):
        _result()


def _progress() -> None:
    """Drawn only while a fine-tune runs; when it ends, one full rerun shows the result and frees the button
    (and that run no longer draws this fragment, so it cannot loop)."""
    job = resources.jobs().job
    if job is None or not job.running:
        st.rerun(scope="app")
    snap = job.snapshot()
    text = f"epoch {snap.epoch}/{snap.epochs} · {snap.message}" if snap.status == "running" else f"{snap.message}…"
    st.progress(snap.fraction, text=f"Fine-tuning: {text}")
    stop, note = st.columns([1, 3], vertical_alignment="center")
    stop.button("Stop", key="finetune_stop_btn", on_click=_stop, args=(job.number,), width="stretch",
                disabled=not host.unlocked(),
                help=f"End run #{job.number} after the current batch; a model with a full epoch is kept.")
    note.caption("The live curves are on the Train tab, and the Draw tab reads your drawing with the model as it "
                 "learns.")


def _result() -> None:
    history = [r for r in resources.runs().history() if r.is_finetune]
    if history and history[0].status == "failed":
        st.error(f"The last fine-tune failed: {guard.public(history[0].message)}")
    record = next((r for r in history if r.personal), None)
    if record is None:
        return
    p = record.personal
    st.markdown("**Before → after the last fine-tune**")
    user, mnist = st.columns(2)
    n_test = record.config.get("test_subset") or TEST_IMAGES
    _metric(user, "Your held-out digits", p["user_before"], p["user_after"])
    _metric(mnist, f"MNIST test ({n_test:,})", p["mnist_before"], p["mnist_after"])
    st.caption(f"Fine-tuned {utc_minute(record.finished_at)} UTC on {p['trained_on']} of your digits, "
               f"{p['held_out']} held out · {record.status}")
    if p["user_before"] is None:
        st.caption("None of your digits were held out (a digit needs two examples to hold one out), so the "
                   "gain on your hand could not be measured.")


def _metric(column, label: str, before: float | None, after: float | None) -> None:
    if after is None:
        column.metric(label, "—")
        return
    if before is None:
        column.metric(label, f"{after:.2%}")
        return
    column.metric(label, f"{before:.2%} → {after:.2%}", f"{(after - before) * 100:+.2f} points",
                  help="Before the fine-tune → after it")


def _gallery(store: DigitStore, counts: np.ndarray, active: resources.ActiveModel,
             readings: dict[int, int] | None) -> None:
    """A page of the digits, newest first; `readings`: the newest ones' (None: the model cannot read them)."""
    ss = st.session_state
    pick, prev, following, info = st.columns([2, 1, 1, 3], vertical_alignment="bottom")
    # index=: this tab mounts anew each time it opens (see gallery_tab)
    pick.selectbox("Digit", DIGIT_CHOICES, index=DIGIT_CHOICES.index(ss["mine_filter"]), key="mine_filter",
                   on_change=_first_page, format_func=lambda d: "All digits" if d == "All" else d)
    digit = None if ss["mine_filter"] == "All" else int(ss["mine_filter"])
    total = int(counts.sum() if digit is None else counts[digit])
    pages = max(1, -(-total // PAGE_SIZE))
    page = pager(prev, following, "mine_page", pages, "mine")
    shown = store.page(digit, offset=page * PAGE_SIZE, limit=PAGE_SIZE)
    info.caption(f"Page {page + 1:,} of {pages:,} · {total:,} digit(s), newest first")
    _show_message("gallery")
    if not shown:
        st.info("None of your digits carry this label.")
    if readings is not None and (older := [d for d in shown if d.id not in readings]):  # past the newest ones
        more = _read(active, np.array([d.id for d in older]), np.stack([d.image for d in older]))
        readings = None if more is None else {**readings, **more}
    locked = not host.unlocked()
    for row in range(0, len(shown), COLUMNS):
        for column, d in zip(st.columns(COLUMNS), shown[row:row + COLUMNS]):
            with column:
                _cell(d, (readings or {}).get(d.id), locked)


def _cell(d: MyDigit, reading: int | None, locked: bool) -> None:
    wrong = reading is not None and reading != d.label
    picture = charts.upscale(to_float_images(d.image[np.newaxis])[0, ..., 0], factor=4)
    picture = np.repeat(picture[..., np.newaxis], 3, axis=2)
    if wrong:  # a red frame: visible at a glance across the page
        picture[:4], picture[-4:], picture[:, :4], picture[:, -4:] = RED, RED, RED, RED
    caption = f"#{d.id} · label {d.label}" + ("" if reading is None else f" · read as {reading}")
    st.image(picture, caption=caption)
    if wrong:
        st.markdown(f":red[**✗ read as {reading}**]")
    st.selectbox("Label", list(range(10)), index=d.label, key=f"mine_relabel_{d.id}", on_change=_edit,
                 args=(d.id, False), format_func=lambda label: f"Label: {label}", label_visibility="collapsed",
                 disabled=locked, help=host.LOCKED if locked else "Choose the right label: it is saved at once.")
    with st.popover("Delete", icon=":material/delete:", key=f"mine_delete_pop_{d.id}", width="stretch",
                    disabled=locked, help=host.LOCKED if locked else None):
        st.markdown(f"Delete #{d.id} (labelled {d.label})? It cannot be undone; export a zip first to keep a copy.")
        st.button(f"Delete #{d.id}", key=f"mine_delete_{d.id}", type="primary", on_click=_edit, args=(d.id, True))


def _export_import(store: DigitStore, n: int) -> None:
    locked = not host.unlocked()
    export, upload = st.columns(2)
    with export:
        st.markdown("**Export**")
        # A locked page is given no zip to download at all (the data is made when the button is clicked).
        st.download_button("Export all (zip)", b"" if locked else store.export_zip, file_name="my-digits.zip",
                           mime="application/zip", key="mine_export", on_click="ignore", disabled=n == 0 or locked,
                           icon=":material/download:", help=host.LOCKED if locked else
                           "Every digit as a 28×28 PNG with its original drawing, listed in labels.csv.")
    with upload:
        st.markdown("**Import**")
        st.file_uploader("Import a zip", type=["zip"], key="mine_import", disabled=locked,
                         help=host.LOCKED if locked else f"A zip made by Export: its digits are added to yours, as "
                         f"imported (at most {MAX_IMPORT_DIGITS:,} an import, and {MAX_DIGITS:,} in all).")
        st.button("Import", key="mine_import_btn", icon=":material/upload:", on_click=_import,
                  disabled=locked or st.session_state.get("mine_import") is None,
                  help=host.LOCKED if locked else None)
        _show_message("import")
