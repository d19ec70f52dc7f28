"""Everything shared by all sessions of this server, each made once in st.cache_resource.

The training worker lives here (not in a session), so a click, a rerun, a reload or a closed
tab never stops it. The Predictor cache is keyed by the active model's path and mtime, so when
a run makes a new model active, every session's next rerun picks it up.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import streamlit as st

from mnist_core.data import MnistDataError, load_mnist, to_float_images
from mnist_core.digits_db import DigitStore
from mnist_core.evaluate import Evaluation, evaluate
from mnist_core.explain import Explainer
from mnist_core.gpu import DeviceInfo, configure_gpu
from mnist_core.jobs import JobManager, TrainingJob
from mnist_core.live import LiveModel
from mnist_core.model import build_model, summarize
from mnist_core.predict import Predictor
from mnist_core.runs import RunStore
from mnist_core.spec import Speed, calibrate
from mnist_core.store import DEFAULT_MODEL, ModelFileError, ModelInfo, read_info


@st.cache_resource(show_spinner=False)
def jobs() -> JobManager:
    """The server's one training slot and its RunStore ($MNIST_STUDIO_RUNS, else runs/)."""
    return JobManager(RunStore())


def runs() -> RunStore:
    return jobs().runs


@st.cache_resource(show_spinner=False)
def settle_heap() -> bool:
    """Once per server, at the end of the first page: move every object alive then (TensorFlow, MNIST, the
    model) into the garbage collector's permanent generation.

    Streamlit ends every script run, a fragment's timer tick included, with gc.collect() and Keras'
    clear_session() (which collects again). Scanning TensorFlow's objects made that about 0.5 s of CPU per
    run, so each open page cost the server a tenth of a core doing nothing; frozen objects are not scanned.
    """
    gc.collect()
    gc.freeze()
    return True


@st.cache_resource(show_spinner=False)
def _digit_store(root: str) -> DigitStore:
    return DigitStore.in_folder(root)


def digit_store() -> DigitStore:
    """The user's labelled digits: one SQLite file in the runs folder, shared by every session.

    Raises the store's error (a file that is not a database) for the caller to show; nothing is cached then.
    """
    return _digit_store(str(runs().root))


@st.cache_resource(show_spinner="Looking for GPUs…")
def device_info() -> DeviceInfo:
    """configure_gpu() once per server, before anything else touches the GPU."""
    return configure_gpu()


@st.cache_resource(show_spinner="Loading MNIST…")
def mnist() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": (x, y), "test": (x, y)} as uint8 arrays. A load error is raised, and not cached."""
    train, test = load_mnist()
    return {"train": train, "test": test}


def mnist_or_error() -> tuple[dict | None, str | None]:
    try:
        return mnist(), None
    except MnistDataError as exc:
        return None, str(exc)


@st.cache_resource(show_spinner="Timing this machine, for the designer's estimate (a few seconds, once)…")
def machine_speed() -> Speed:
    """How fast this machine trains, measured once per server by two short probe trainings."""
    return calibrate()


@st.cache_resource(show_spinner=False)
def preset_summary(preset: str) -> tuple[tuple, int]:
    """(LayerInfo rows, total parameters) of a fresh network of the preset."""
    rows = tuple(summarize(build_model(preset)))
    return rows, sum(r.params for r in rows)


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def _load_predictor(path: str, mtime_ns: int) -> Predictor | str:
    """A warmed-up Predictor, or the reason it could not be loaded (cached too, until the file changes)."""
    del mtime_ns  # part of the cache key only
    try:
        predictor = Predictor.load(path)
        predictor.warm_up()  # compile now, not on the first drawing
        return predictor
    except ModelFileError as exc:
        return str(exc)
    except Exception as exc:  # e.g. a model with the wrong input shape
        return f"Model file {path} cannot be used for prediction: {exc}"


def _try_load(path: Path) -> tuple[Predictor | str, int]:
    """(the Predictor or why not, the file's mtime in ns)."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return f"Model file not found: {path}", 0
    return _load_predictor(str(path), mtime), mtime


@dataclass
class ActiveModel:
    path: Path  # the model actually in use (the default after a fallback)
    predictor: Predictor | None  # None when no model could be loaded
    info: ModelInfo | None
    errors: list[str] = field(default_factory=list)  # what went wrong, for the user
    mtime_ns: int = 0  # with path, names this exact file version in caches

    @property
    def is_default(self) -> bool:
        return self.path == DEFAULT_MODEL


def active_model() -> ActiveModel:
    """The model every session predicts with; falls back to the shipped default if the active one is unusable."""
    store = runs()
    path, problem = store.active_path(), store.active_problem()  # a broken pointer is named, not silently ignored
    errors = [problem] if problem else []
    loaded, mtime = _try_load(path)
    if isinstance(loaded, str) and path != DEFAULT_MODEL:
        errors.append(f"{loaded} Falling back to the shipped default model.")
        path = DEFAULT_MODEL
        loaded, mtime = _try_load(path)
    if isinstance(loaded, str):
        errors.append(f"{loaded} No model is available: train one in the Train tab.")
        loaded = None
    try:
        info = read_info(path)
    except ModelFileError as exc:
        errors.append(str(exc))
        info = None
    return ActiveModel(path=path, predictor=loaded, info=info, errors=errors, mtime_ns=mtime)


@st.cache_resource(max_entries=4, show_spinner="Reading the 10,000 test digits with the active model…")
def _evaluation(path: str, mtime_ns: int, _predictor: Predictor) -> Evaluation:
    del path, mtime_ns  # the cache key: one evaluation per model file version
    x, y = mnist()["test"]
    return evaluate(_predictor, to_float_images(x)[..., 0], y)


def evaluation(active: ActiveModel) -> Evaluation:
    """The active model's scores on the whole test split, computed once per model file."""
    return _evaluation(str(active.path), active.mtime_ns, active.predictor)


@st.cache_resource(max_entries=4, show_spinner=False)
def _explainer(path: str, mtime_ns: int, _predictor: Predictor) -> Explainer | str:
    del path, mtime_ns
    try:
        return Explainer(_predictor.model)
    except Exception as exc:  # e.g. a network without two convolutions: the page says so, once
        return str(exc)


def explainer(active: ActiveModel) -> Explainer | str:
    """Saliency and activations for the active model, or why this model cannot be looked into."""
    return _explainer(str(active.path), active.mtime_ns, active.predictor)


@st.cache_resource(max_entries=1, show_spinner="Preparing a copy of the network in training…")
def _live_model(job_number: int, preset: str, layers: str | None) -> LiveModel:
    del job_number  # one reader per job
    return LiveModel(preset, layers)


def live_model(job: TrainingJob) -> LiveModel:
    """The server's one reader of this job's published weights, shared by every session."""
    return _live_model(job.number, job.config.preset, job.config.layers)  # layers: a custom network's spec string
