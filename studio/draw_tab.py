"""Draw tab: a canvas and an upload box, each read by the active model (drawing first, then the upload);
why the model answers as it does; and, while a job runs, the reading of the network being trained."""

from __future__ import annotations

import time

import numpy as np
import streamlit as st
from PIL import Image

from mnist_core.canvas import CANVAS_PX, DEFAULT_STROKE_WIDTH
from mnist_core.digits_db import Reading, encode_png, keepable
from mnist_core.live import LiveModel
from mnist_core.predict import SECOND_LOOK_READINGS, Predictor
from mnist_core.preprocess import ImageUploadError, load_upload, preprocess_drawing, preprocess_image
from studio import charts, draw_canvas, guard, polling, resources

HINT = "Draw a digit on the black square: the model's answer appears here."
LIVE_REFRESH_S = 2.0  # how often the network in training reads the drawing again (Draw tab open, a drawing on it)


def _teach(label: int, x: np.ndarray, picture: np.ndarray | Image.Image, source: str, reading: Reading | None) -> None:
    """Keep the digit with the user's label; a drawing's canvas is cleared for the next one."""
    try:
        store = resources.digit_store()
        store.add(label, x, encode_png(picture), source, reading)
        st.session_state["teach_message"] = ("success", f"Saved as {label} · {store.count()} of your digits")
        st.session_state["teach_saved"] = True
    except Exception as exc:  # a full disk or a damaged database: say so, keep the drawing
        st.session_state["teach_message"] = ("error", f"The digit was not saved: {guard.public(exc)}")
        return
    if source == "drawn":
        draw_canvas.clear()


def _teach_row(key: str, answer: tuple[int, float] | None, x: np.ndarray, picture, source: str,
               model: str) -> None:
    """"This is a…" and a button per digit, the model's answer marked: one click labels and keeps the digit."""
    reading = None if answer is None else Reading(answer[0], answer[1], model)
    with st.container(key=key):
        st.markdown("**This is a…** teach the model your handwriting")
        with st.container(horizontal=True, gap="xsmall"):  # compact buttons that wrap on a narrow column
            for digit in range(10):
                marked = answer is not None and digit == answer[0]
                st.button(str(digit), key=f"{key}_{digit}", type="primary" if marked else "secondary",
                          on_click=_teach, args=(digit, x, picture, source, reading),
                          help="The model's answer: press it if it is right" if marked else
                          f"Save this drawing as a {digit}")


def _rerun_page_after_a_save() -> None:
    """A label click reruns only its fragment; the My digits tab, drawn by the last full run, must show the new
    digit too, so a save is followed by one run of the whole page."""
    if st.session_state["teach_saved"]:
        st.session_state["teach_saved"] = False
        st.rerun(scope="app")


def _teach_message(slot) -> None:
    """The last label click's message in `slot` (an st.empty); the caller says when it has been seen."""
    message = st.session_state.get("teach_message")
    if message:
        kind, text = message
        if kind == "success":
            slot.success(text, icon=":material/check:")
        else:
            slot.error(text)


def render(visible: bool = True) -> None:
    """`visible`: this tab is the one on screen (the in-training reading redraws itself only then)."""
    if resources.active_model().predictor is None:
        st.warning("No model is loaded, so nothing can be predicted yet: see the sidebar, or train one in the "
                   "Train tab.")
    # The reading by the network in training sits beside the drawing, not inside its fragment (nested, their
    # reruns interleaved and could leave an old answer or a second canvas on the page). The columns are there
    # whether or not a run trains: a canvas that moved when a run started would come back empty while its old
    # answer stayed.
    drawing, live = st.columns([2.3, 1], gap="medium")
    st.session_state["live_shown"] = None  # a full run: _drawing does not ask for one
    with drawing:
        _drawing()
    # The timed reading exists only while a run trains and a drawing is on the canvas: a page with nothing drawn,
    # or no run, costs the run nothing. _drawing reruns the page when that changes.
    shown = _live_wanted()
    st.session_state["live_shown"] = shown
    with live:
        if shown:
            polling.live(_live_reading, LIVE_REFRESH_S, visible=visible)
        elif _running():
            st.caption("A network is training: draw a digit and it reads it here too, as it learns.")
        else:
            st.caption("While a network trains (Train tab), it reads your drawing here too, as it learns.")
    st.divider()
    _upload()


def _running() -> bool:
    job = resources.jobs().job
    return job is not None and job.running


def _live_wanted() -> bool:
    return _running() and st.session_state["drawing_x"] is not None


@st.fragment
def _drawing() -> None:
    """Canvas and its prediction: a stroke reruns only this fragment, so answers stay fast during training."""
    _rerun_page_after_a_save()
    active = resources.active_model()
    draw, answer_column = st.columns([1, 1], gap="medium")
    with draw:
        st.markdown("**Draw a digit** — white ink on black, like MNIST")
        st.space(28)  # room for the canvas's toolbar (undo, redo, reset), which floats above it
        image_data = _canvas()
        width, clear = st.columns([2, 1], vertical_alignment="bottom")
        # The default is the widget's own value, not a Session State default: with the latter, a slider in a
        # fragment on a tab that opens by a rerun was shown at its minimum (while the server kept 18).
        width.slider("Stroke width", min_value=6, max_value=40, value=DEFAULT_STROKE_WIDTH, key="stroke_width",
                     help=f"The pen's width for the next strokes, in pixels of the {CANVAS_PX} px canvas")
        clear.button("Clear", key="clear_canvas", icon=":material/delete:", on_click=draw_canvas.clear,
                     width="stretch", help="Empty the canvas")
    # Each part that comes and goes is one slot (st.empty) holding one element or one container, so that Clear
    # replaces an answer outright. Leaving it to Streamlit's removal of elements a run no longer draws is not
    # enough: when another fragment's run follows at once (a timer, another tab's view), that removal can be
    # skipped and the old answer stays beside the hint.
    with answer_column, st.container(key="prediction"):
        message, shown = st.empty(), st.empty()
    why = st.empty()
    x = answer = None
    _teach_message(message)
    if image_data is not None:
        try:
            x = preprocess_drawing(image_data)
        except ValueError as exc:
            message.error(f"The drawing could not be read: {guard.public(exc)}")
    st.session_state["drawing_x"] = x
    if st.session_state["live_shown"] not in (None, _live_wanted()):  # a drawing came or went during a run
        st.rerun(scope="app")  # the page adds or removes the in-training reading beside it
    if x is None:  # "Saved as 4 · …" stays beside the emptied canvas until the next drawing
        shown.info(HINT)
        return
    st.session_state["teach_message"] = None  # shown with this drawing: not with the next
    with shown.container():
        answer = show_prediction(x, active.predictor, "Prediction", _model_caption(active))
        _teach_row("teach", answer, x, image_data, "drawn", str(active.path))
        st.download_button("Download the 28×28 drawing", charts.png_28(x), file_name="drawing-28x28.png",
                           mime="image/png", key="download_drawing", icon=":material/download:",
                           on_click="ignore", help="Exactly what the model reads: 28×28 grey PNG.")
    if answer is not None:
        with why.container(key="explain"):
            st.subheader("Why this answer")
            _why(x, answer[0], active)


def _model_caption(active: resources.ActiveModel) -> str:
    return f"Model: {active.info.preset if active.info else 'unknown'}"


def _live_reading() -> None:
    """The network being trained reads the current drawing, with the weights its worker last published; a
    fragment (studio.polling) redrawn every LIVE_REFRESH_S while the Draw tab is open."""
    job = resources.jobs().job
    x = st.session_state["drawing_x"]
    if job is None or not job.running or x is None:  # the run ended, or the canvas was emptied: one full run
        st.rerun(scope="app")                        # draws the column without this fragment, so it cannot loop
    with st.container(key="live-prediction"):
        shown = st.empty()  # one slot, as in _drawing
    try:
        live = resources.live_model(job)
        published = live.refresh(job.weights)
    except Exception as exc:  # training goes on regardless; only this view is lost
        shown.error(f"The network in training cannot be read: {guard.public(exc)}")
        return
    if published is None:
        shown.info("Waiting for the network in training to publish its first weights…")
        return
    with shown.container():
        show_prediction(x, live, "In training",
                        f"Network being trained: {job.config.preset}, {published.label} · updates by itself")


def _why(x: np.ndarray, digit: int, active: resources.ActiveModel) -> None:
    """Saliency for the answer `digit` on the input, the first layer's filters, the image's activation maps."""
    explainer = resources.explainer(active)
    if isinstance(explainer, str):
        st.info(f"This model cannot be looked into: {explainer}")
        return
    try:
        saliency = explainer.saliency(x, digit)  # the answer shown: no second prediction
        first, second = explainer.activations(x)
        filters = explainer.first_filters()
    except Exception as exc:  # the prediction above stands even if the explanation fails
        st.error(f"The model's reasons could not be computed: {guard.public(exc)}")
        return
    c1, c2, c3 = st.columns([1, 1, 2], gap="medium")
    c1.image(charts.saliency_overlay(x, saliency.attribution), width="stretch",
             caption=f"Saliency for {saliency.digit}: orange strokes pushed the model towards "
                     f"{saliency.digit}, blue ones away (integrated gradients)")
    k = filters.shape[1]
    c2.image(charts.map_grid(filters, 8, signed=True, cell_px=30), width="stretch",
             caption=f"The {len(filters)} filters of the first convolution ({k}×{k}): red weights add "
                     "brightness, blue subtract")
    c3.image(charts.map_grid(first, 8, signed=False, cell_px=52), width="stretch",
             caption=f"What those filters see in this image: {len(first)} activation maps of the first "
                     f"convolution ({first.shape[1]}×{first.shape[2]}), bright = strong response")
    st.image(charts.map_grid(second, 16, signed=False, cell_px=44), width="stretch",
             caption=f"Second convolution: {len(second)} maps ({second.shape[1]}×{second.shape[2]}), built from "
                     "the first layer's; each responds to a larger part of the digit")


def _canvas() -> np.ndarray | None:
    with st.container(key="canvas"):
        try:
            width = int(st.session_state.get("stroke_width", DEFAULT_STROKE_WIDTH))  # the slider is drawn after
            return draw_canvas.drawing(width)
        except draw_canvas.CanvasError as exc:  # a malformed payload from the browser
            st.error(f"The canvas sent an unreadable picture: {guard.public(exc)}")
            return None


def show_prediction(x: np.ndarray, predictor: Predictor | LiveModel | None, heading: str,
                    caption: str) -> tuple[int, float] | None:
    """The digit as a heading, how sure, all 10 probabilities, and the 28x28 input the model saw.

    Returns the digit and its probability, or None when there was no answer (the reason is shown).
    """
    if predictor is None:
        st.warning("No model is loaded, so there is no prediction.")
        return None
    started = time.perf_counter()
    try:
        looks = predictor.look(x)
    except Exception as exc:
        st.error(f"The model could not read this image: {guard.public(exc)}")
        return None
    ms = (time.perf_counter() - started) * 1000
    proba = looks.answer[0]
    digit = int(np.argmax(proba))
    st.markdown(f"### {heading}: {digit}")
    st.markdown(f"{proba[digit]:.1%} sure")
    bars, seen = st.columns([3, 1], vertical_alignment="center")
    bars.vega_lite_chart(charts.probability_spec(proba), width="stretch")
    seen.image(charts.upscale(x), caption="What the model sees (28×28)", width="stretch")
    first = looks.first[0]
    again = (f" · unsure at first ({first.max():.0%} for {int(first.argmax())}), so it looked again with the drawing "
             f"moved a pixel each way: the bars are the mean of {SECOND_LOOK_READINGS} readings"
             if looks.looked_again[0] else "")
    st.caption(f"{caption} · answered in {ms:.0f} ms{again}")
    return digit, float(proba[digit])


@st.fragment
def _upload() -> None:
    """The upload box and its prediction, rerun on its own like the canvas."""
    _rerun_page_after_a_save()
    active = resources.active_model()
    st.markdown("**Or upload a picture of a digit** — dark on light (paper) or light on dark both work")
    upload = st.file_uploader("Digit image", type=["png", "jpg", "jpeg"], key="upload",
                              help="PNG or JPEG, up to 5 MB. The digit is cropped, scaled and centred like MNIST.")
    shown = st.empty()  # one slot for whatever the upload shows: removing the file replaces it outright (_drawing)
    if upload is None:
        return
    try:
        image = load_upload(upload.getvalue())
        x = preprocess_image(image)
    except ImageUploadError as exc:
        shown.error(f"{guard.public(upload.name)}: {guard.public(exc)}")
        return
    except Exception as exc:  # anything else a strange file can trigger must not take the page down
        shown.error(f"{guard.public(upload.name)} could not be read as a digit picture: {guard.public(exc)}")
        return
    if x is None:
        shown.warning(f"{guard.public(upload.name)}: no digit found — the picture looks blank.")
        return
    with shown.container():
        original, column = st.columns([1, 3], gap="large")
        picture = keepable(image)  # what a label click keeps, and all the preview needs: not the whole photo
        original.image(picture.convert("RGB"), caption=guard.public(upload.name), width=180)
        with column, st.container(key="upload-prediction"):
            answer = show_prediction(x, active.predictor, "Uploaded image", _model_caption(active))
            _teach_row("teach-upload", answer, x, picture, "uploaded", str(active.path))
            _teach_message(st.empty())
            st.session_state["teach_message"] = None  # shown once
        if answer is not None:
            with st.expander("Why this answer", key="upload-explain"):
                _why(x, answer[0], active)
