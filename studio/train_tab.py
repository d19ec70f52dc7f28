"""Train tab: the recipe controls, the preset's network, and the server's training job, live."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from mnist_core import compare, data, finetune, pendigits
from mnist_core.digits_db import DigitsDatabaseError
from mnist_core.jobs import JobAlreadyRunning, TrainingJob
from mnist_core.model import PRESETS
from mnist_core.runs import RunsFolderError
from mnist_core.spec import CUSTOM
from mnist_core.training import AVERAGE_STEPS, SCHEDULES, TrainConfig
from studio import charts, designer, guard, host, polling, resources, runs_view
from studio.state import FULL_TEST, FULL_TRAIN, recipe

BATCH_SIZES = [8, 16, 32, 64, 128, 256, 512, 1024]
REFRESH_S = 1.0  # live view redraw interval while a job runs and this tab is open
CUSTOM_CAPTION = "Your own network: design its layers in the table below."
CUSTOM_ABOUT = (
    "Design the network yourself, one layer a row of the table: convolutions, max and average pooling, batch "
    "normalisation, ReLU, dropout, flatten, global average pooling and dense layers. Each row's output shape and "
    "parameter count update as you edit, with the total and an estimate of an epoch's time on this machine; a "
    "design that cannot work names its row and cannot be trained. The 10-way output layer is always added. It "
    "trains with the tutorial's recipe (seed); its layers are saved with the run, so *Edit a copy* in Runs "
    "brings any run's network back into the table.")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


# --- callbacks (run before the script, so the rest of the run sees their effect) -------------------------

def _apply_recipe() -> None:
    st.session_state.update(recipe(st.session_state["train_preset"]))


def _config_from_state() -> TrainConfig:
    ss = st.session_state
    n_train, n_test = int(ss["train_images"]), int(ss["test_images"])
    custom = ss["train_preset"] == CUSTOM
    if custom and ss["design_layers"] is None:
        raise ValueError("the designed network cannot be built; the row named in red says why")
    return TrainConfig.for_preset(
        ss["train_preset"],
        layers=ss["design_layers"] if custom else None,
        epochs=int(ss["train_epochs"]),
        batch_size=int(ss["train_batch_size"]),
        learning_rate=float(ss["train_learning_rate"]),
        schedule=ss["train_schedule"],
        augment=bool(ss["train_augment"]),
        augment_style=bool(ss["train_augment_style"]),
        augment_slant=bool(ss["train_augment_slant"]),
        average_weights=bool(ss["train_average_weights"]),
        seed=int(ss["train_seed"]),
        pen_digits=bool(ss["train_pen_digits"]),
        my_digits=str(resources.digit_store().path) if ss["train_my_digits"] else None,
        train_subset=None if n_train >= FULL_TRAIN else n_train,
        test_subset=None if n_test >= FULL_TEST else n_test,
    )


def _start_training() -> None:
    st.session_state["train_error"] = None
    if not host.unlocked():  # the button is disabled then; this refuses a click sent anyway
        st.session_state["train_error"] = host.LOCKED
        return
    try:
        resources.jobs().start(_config_from_state())
    except JobAlreadyRunning as exc:
        st.session_state["train_error"] = str(exc)
    except ValueError as exc:  # TrainConfig's checks
        st.session_state["train_error"] = f"These settings cannot be used: {guard.public(exc)}"
    except DigitsDatabaseError as exc:  # "include my digits" with a damaged database
        st.session_state["train_error"] = f"Your digits cannot be read: {guard.public(exc)}"
    except RunsFolderError as exc:  # read-only or full: said before training, not after
        st.session_state["train_error"] = guard.public(exc)


def _stop_training(number: int) -> None:
    if not host.unlocked():
        st.session_state["train_error"] = host.LOCKED
        return
    resources.jobs().stop(number)  # only that run: a late click never stops a newer one


# --- layout ----------------------------------------------------------------------------------------------

def render(visible: bool = True) -> None:
    """`visible`: this tab is the one on screen (the live view redraws itself only then)."""
    job = resources.jobs().job
    running = job is not None and job.running
    locked = not host.unlocked()

    controls, network = st.columns([3, 2], gap="large")
    with controls:
        _controls()
    unbuildable = False
    if st.session_state["train_preset"] == CUSTOM:  # the table below, full width; what it makes beside the controls
        rows = designer.editor()
        with network:
            unbuildable = designer.summary(rows) is None
    else:
        with network:
            _network_summary(st.session_state["train_preset"])

    left, right, note = st.columns([1, 1, 6], vertical_alignment="center")
    left.button("Train", key="train_btn", type="primary", disabled=running or locked or unbuildable,
                on_click=_start_training, width="stretch",
                help=host.LOCKED if locked else "Fix the design first: the row named in red cannot work."
                if unbuildable else "Start training with these settings; the run continues if you close the page.")
    right.button("Stop", key="stop_btn", disabled=not running or locked, on_click=_stop_training,
                 args=(job.number if running else 0,), width="stretch",
                 help=host.LOCKED if locked else (
                     f"End run #{job.number} ({job.config.preset}) after the current batch; a model with a full "
                     "epoch is kept.") if running else "No run is going.")
    if running:
        note.caption("A training job is running on this server (one at a time, shared by every session): "
                     "watch it below, or stop it to start another.")
    error = st.session_state.get("train_error")
    if error:
        st.error(error)
        st.session_state["train_error"] = None  # shown once, for the click that caused it

    if job is None:
        st.info("No training run on this server yet. Pick a preset and press **Train**; "
                "for a quick try, lower the number of training images.")
    elif running:
        polling.live(_live_job, REFRESH_S, visible=visible)
    else:
        _job_view(job)
    st.divider()
    runs_view.render()


def _controls() -> None:
    # Each widget's own default is the value the session holds (value=, index=): a page whose browser mounts a widget
    # late (its component loads after a later run) falls back to that default and sends it to the server. With the
    # widgets' plain defaults, a fresh server's first page trained at batch 8 (the first option) while 32 was set.
    ss = st.session_state
    presets = [*PRESETS, CUSTOM]
    st.radio("Network preset", presets, index=presets.index(ss["train_preset"]), key="train_preset", horizontal=True,
             on_change=_apply_recipe,
             captions=[_first_line(p.description) for p in PRESETS.values()] + [CUSTOM_CAPTION],
             help="Choosing a preset loads its training recipe into the controls below.")
    preset = ss["train_preset"]
    with st.expander(f"About **{preset}**", expanded=False):
        st.markdown(CUSTOM_ABOUT if preset == CUSTOM else PRESETS[preset].description)

    c1, c2, c3 = st.columns(3)
    c1.number_input("Epochs", min_value=1, max_value=100, value=ss["train_epochs"], step=1, key="train_epochs",
                    help="Full passes over the training images.")
    c2.selectbox("Batch size", BATCH_SIZES, index=BATCH_SIZES.index(ss["train_batch_size"]), key="train_batch_size",
                 help="Images per gradient step.")
    c3.number_input("Learning rate", min_value=1e-5, max_value=0.1, value=ss["train_learning_rate"], step=1e-4,
                    format="%.5f", key="train_learning_rate", help="Adam's rate (the peak rate with one-cycle).")
    c1, c2, c3 = st.columns(3)
    c1.selectbox("Schedule", SCHEDULES, index=SCHEDULES.index(ss["train_schedule"]), key="train_schedule",
                 help="constant, or onecycle: a warm-up to the peak rate, then cosine decay to zero.")
    c2.number_input("Seed", min_value=0, max_value=2**31 - 1, value=ss["train_seed"], step=1, key="train_seed",
                    help="Seeds the weights, the shuffling and the augmentation: same seed, same run.")
    c3.button("Preset recipe", key="recipe_btn", icon=":material/restart_alt:", on_click=_apply_recipe,
              width="stretch",
              help="Reset epochs, batch size, learning rate, schedule, averaging and augmentation to the chosen "
                   "preset's recipe (for seed: the TensorFlow tutorial's 10 epochs, batch 32, Adam 1e-3, none).")
    st.markdown("Augmentation: each training image distorted at random, so the network reads more hands")
    c1, c2, c3 = st.columns(3)
    c1.checkbox("Rotate, zoom, shift", value=ss["train_augment"], key="train_augment",
                help=f"Up to ±{math.degrees(data.MAX_ROTATION):.0f}° of rotation, ±{data.MAX_ZOOM:.0%} of size "
                     f"and ±{data.MAX_SHIFT:g} px of shift.")
    c2.checkbox("Slant", value=ss["train_augment_slant"], key="train_augment_slant",
                help=f"Lean each digit left or right by up to {math.degrees(math.atan(data.MAX_SLANT)):.0f}° (a "
                     "shear), as people's handwriting leans.")
    c3.checkbox("Flags and crossbars", value=ss["train_augment_style"], key="train_augment_style",
                help=f"{data.STYLE_SHARE:.0%} of the 1s get a flag ({data.FOOT_SHARE:.0%} of those a foot too) and "
                     f"{data.STYLE_SHARE:.0%} of the 7s a crossbar, as many people outside the US write them.")
    c1, c2, c3 = st.columns(3)
    c1.checkbox("Include pen digits", value=ss["train_pen_digits"], key="train_pen_digits",
                help=f"Also train on {pendigits.describe(True).removeprefix('MNIST + ')} (UCI), each drawn on the "
                     "canvas with a random pen, size, place and slant: "
                     "the network learns pen strokes as well as MNIST's scanned paper.")
    c2.checkbox("Include my digits", value=ss["train_my_digits"], key="train_my_digits",
                help="Also train on the digits you labelled in the Draw tab (see My digits), each repeated so "
                     f"they make {finetune.SCRATCH_USER_SHARE:.0%} of the training images.")
    c3.checkbox("Average the weights", value=ss["train_average_weights"], key="train_average_weights",
                help=f"Keep a moving average of the weights over about the last {AVERAGE_STEPS:,} steps (a fifth of a "
                     "shorter run) and end with it, not with the last step's weights: it smooths out their noise. "
                     "The test curve shows the weights as they train.")
    c1, c2 = st.columns(2)
    c1.number_input("Training images", min_value=1_000, max_value=FULL_TRAIN, value=ss["train_images"], step=1_000,
                    key="train_images", help="Train on the first N of MNIST's 60,000 training images; fewer is faster.")
    c2.number_input("Test images", min_value=500, max_value=FULL_TEST, value=ss["test_images"], step=500,
                    key="test_images", help="Validate after every epoch on the first N of the 10,000 test images.")
    images = int(ss["train_images"])
    pen = ""
    if ss["train_pen_digits"]:
        drawn = pendigits.training_count(train_subset=None if images >= FULL_TRAIN else images)[0] * pendigits.VARIANTS
        images, pen = images + drawn, f" (with {drawn:,} pen drawings)"
    steps = -(-images // int(ss["train_batch_size"]))
    st.caption(f"{steps:,} batches per epoch{pen} · {steps * int(ss['train_epochs']):,} in total.")


def _network_summary(preset: str) -> None:
    st.markdown(f"**Network: `{preset}`**")
    try:
        rows, total = resources.preset_summary(preset)
    except Exception as exc:  # a broken preset must not take the page down
        st.error(f"Could not build the {preset} network: {guard.public(exc)}")
        return
    table = pd.DataFrame({
        "Layer": [r.kind for r in rows],
        "Output shape": [str(tuple(r.output_shape)).replace("None", "batch") for r in rows],
        "Params": [r.params for r in rows],
    })
    st.dataframe(table, hide_index=True, width="stretch", key="summary_table",
                 column_config={"Params": st.column_config.NumberColumn(format="localized")})
    st.markdown(f"Total parameters: **{total:,}**")


# --- the job ---------------------------------------------------------------------------------------------

def _live_job() -> None:
    """Redraws the running job; when it ends, one full rerun so the sidebar and buttons catch up."""
    job = resources.jobs().job
    if job is None:
        return
    if not job.running:
        st.rerun(scope="app")
    _job_view(job)


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds}s"


def _describe_config(config: TrainConfig) -> str:
    subset = ("all" if config.train_subset is None else f"{config.train_subset:,}") + " training / " + (
        "all" if config.test_subset is None else f"{config.test_subset:,}") + " test images"
    augmentation = compare.augmentation(config.to_dict())
    kind = "fine-tune of " if config.is_finetune else ""
    mine = (" · with pen digits" if config.pen_digits else "") + (" · with your digits" if config.my_digits else "")
    return (f"{kind}`{config.preset}`{mine} · {config.epochs} epoch(s) · batch {config.batch_size} · "
            f"lr {config.learning_rate:g} ({config.schedule}) · augmentation: {augmentation} · "
            f"seed {config.seed} · {subset}")


def _job_view(job: TrainingJob) -> None:
    snap = job.snapshot()
    running = job.running
    with st.container(key="training-curves"):
        st.subheader("Training run" if running else "Last training run")
        st.caption(_describe_config(job.config))
        if running:
            if snap.status == "running":
                text = (f"epoch {snap.epoch}/{snap.epochs} · batch {snap.batch}/{snap.batches_per_epoch} · "
                        f"ETA {_fmt_seconds(snap.eta_seconds)}")
                if snap.message != "training":
                    text += f" · {snap.message}"
            else:  # pending: loading data, building; or finished and saving the model
                text = f"{snap.message}…"
            st.progress(snap.fraction, text=text)
            m1, m2, m3 = st.columns(3)
            m1.metric("Images/s", f"{snap.images_per_sec:,.0f}")
            m2.metric("Elapsed", _fmt_seconds(snap.elapsed_seconds))
            last = snap.epochs_done[-1] if snap.epochs_done else None
            m3.metric("Validation accuracy", "…" if last is None else f"{last.val_accuracy:.2%}")
        else:
            _final_status(job, snap)
        _curves(snap)


def _final_status(job: TrainingJob, snap) -> None:
    show = {"completed": st.success, "stopped": st.warning}.get(snap.status, st.error)
    show(f"**{snap.status.capitalize()}.** {guard.public(snap.message)}")
    result = job.result
    m1, m2, m3 = st.columns(3)
    acc = None if result is None else result.test_accuracy
    m1.metric("Final test accuracy", "—" if acc is None else f"{acc:.2%}")
    m2.metric("Full epochs", "—" if result is None else f"{result.full_epochs}/{job.config.epochs}")
    m3.metric("Training time", _fmt_seconds(None if result is None else result.seconds))


def _curves(snap) -> None:
    if not snap.batches:
        st.caption("The curves appear with the first batch.")
        return
    loss, acc = charts.curve_frames(snap.batches, snap.epochs_done)
    epochs = max(snap.epochs, 1)
    c1, c2 = st.columns(2)
    # height= on the page, as for the compare charts: with the chart's own height alone the plot was a thin strip
    c1.altair_chart(charts.curve_chart(loss, "loss", epochs), width="stretch", height=320)
    c2.altair_chart(charts.curve_chart(acc, "accuracy", epochs, percent=True), width="stretch", height=320)
