"""Export a saved .keras model to run outside Keras: TFLite (float32 or dynamic-range int8) or a zipped SavedModel.

Every export takes one float32 input `image` of shape (N, 28, 28, 1), values in [0, 1], and gives one output
`probabilities` of shape (N, 10): the studio's models end in logits, so the softmax that Predictor applies is
part of the exported graph; Predictor's second look at unsure digits is not (an export answers as the network
alone, Predictor(model, second_look=False)). The network is exported in float32 whatever policy it was trained with
(TFLite cannot convert bfloat16 convolutions without TensorFlow's own kernels, and a float32 copy answers as
Predictor does).

Which call does what:
  convert(model, fmt)            the export as bytes; about a second, nothing checked
  download(path, fmt)            bytes and a file name to offer, for a download button; the same cost
  write_export(model, fmt, out)  convert() written atomically to `out`
  check_export(blob, fmt, model) runs the export on the MNIST test digits against the Keras model: seconds
"""

from __future__ import annotations

import io
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from mnist_core import data
from mnist_core.predict import Predictor, float32_twin
from mnist_core.store import DEFAULT_MODEL, load_model

SUFFIXES = {"tflite": ".tflite", "tflite-int8": ".tflite", "savedmodel": ".zip"}
FORMATS = tuple(SUFFIXES)
NAME_ENDINGS = {"tflite": ".tflite", "tflite-int8": "-int8.tflite", "savedmodel": "-savedmodel.zip"}
INPUT_NAME, OUTPUT_NAME = "image", "probabilities"
SAVEDMODEL_FOLDER = "saved_model"  # the one folder in a savedmodel zip: tf.saved_model.load("saved_model")
CHECK_BATCH = 1000  # images per call when an export reads the whole test set
LATENCY_CALLS = 200
LATENCY_WARMUP = 10  # calls before timing: the first ones allocate and trace


class ExportError(RuntimeError):
    """An export could not be written."""


Proba = Callable[[np.ndarray], np.ndarray]  # float32 (N, 28, 28, 1) in [0, 1] -> probabilities (N, 10)
Digits = tuple[np.ndarray, np.ndarray]  # float32 images (N, 28, 28, 1) in [0, 1], and their labels (N,)


@dataclass(frozen=True)
class ExportReport:
    """How an export answers the MNIST test digits next to the Keras model it came from."""

    format: str
    size_bytes: int
    images: int
    agreement: float  # share of images where the export's answer (argmax) is the Keras model's
    max_prob_diff: float  # the largest absolute difference of any probability from the Keras model's
    accuracy: float  # share of images answered with their label
    latency_p50_ms: float  # one image a call
    latency_p95_ms: float

    def line(self) -> str:
        return (f"format={self.format} agreement={self.agreement:.4f} max_prob_diff={self.max_prob_diff:.2e} "
                f"accuracy={self.accuracy:.4f} size_bytes={self.size_bytes} "
                f"latency_p50_ms={self.latency_p50_ms:.3f}")


def check_format(fmt: str) -> str:
    if fmt not in SUFFIXES:
        raise ValueError(f"Unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return fmt


def export_path(out: str | os.PathLike, fmt: str) -> Path:
    """`out` as a Path, if its name suits the format and it is not a folder."""
    out, suffix = Path(out), SUFFIXES[check_format(fmt)]
    if out.suffix != suffix:
        raise ValueError(f"{fmt} exports end in {suffix}: {out}")
    if out.is_dir():
        raise ValueError(f"{out} is a folder, not a file to write the export to")
    return out


def file_name(model_path: str | os.PathLike | None, fmt: str) -> str:
    """The name to offer for the export of `model_path` (None: the shipped model): default-int8.tflite."""
    return Path(model_path if model_path is not None else DEFAULT_MODEL).stem + NAME_ENDINGS[check_format(fmt)]


def convert(model: keras.Model, fmt: str) -> bytes:
    """The export of `model` as the bytes of one file (.tflite, or .zip for savedmodel); nothing is checked."""
    check_format(fmt)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / SAVEDMODEL_FOLDER
        _write_saved_model(model, folder)
        if fmt == "savedmodel":
            return _zip_folder(folder)
        # From a SavedModel: converting a Keras 3 model's concrete function leaves its weights as
        # uninitialised resource variables, and the file answers NaN.
        converter = tf.lite.TFLiteConverter.from_saved_model(str(folder))
        if fmt == "tflite-int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]  # int8 weights, float activations
        return converter.convert()


def download(model_path: str | os.PathLike | None, fmt: str) -> tuple[bytes, str]:
    """For a download button: the export of the .keras file at `model_path` (None: the shipped model) and a
    file name for it. Loads and converts (about a second), checks nothing; store.load_model's errors."""
    return convert(load_model(model_path), fmt), file_name(model_path, fmt)


def write_export(model: keras.Model, fmt: str, out: str | os.PathLike) -> Path:
    """Write convert(model, fmt) to `out` through a temporary file, so a failure leaves `out` as it was."""
    out = export_path(out, fmt)
    try:  # the temporary file first: an unwritable folder is named before the conversion's work
        fd, name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".tmp", dir=out.parent)
    except OSError as exc:
        raise ExportError(f"Cannot write {out}: {exc.strerror or exc}") from exc
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(convert(model, fmt))
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would survive the rename
        os.replace(tmp, out)
    except OSError as exc:
        raise ExportError(f"Cannot write {out}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return out


def check_export(blob: bytes, fmt: str, model: keras.Model, digits: Digits | None = None) -> ExportReport:
    """Run the export in `blob` (convert()'s bytes, or a written file's) on `digits` (default: the 10,000
    MNIST test digits) and compare it with `model` read through Predictor, the network alone. Seconds, not for a
    page."""
    check_format(fmt)
    proba = _savedmodel_proba(blob) if fmt == "savedmodel" else _tflite_proba(blob)
    return measure(fmt, proba, len(blob), model, digits)


def mnist_test_set() -> Digits:
    """The MNIST test set (load_mnist's default file) as float32 (10000, 28, 28, 1) images and their labels."""
    _, (x, labels) = data.load_mnist()
    return data.to_float_images(x), labels


def measure(name: str, proba: Proba, size_bytes: int, model: keras.Model, digits: Digits | None = None) -> ExportReport:
    """Any way of answering (`proba`) against `model` through Predictor, the network alone: agreement, accuracy,
    latency."""
    images, labels = mnist_test_set() if digits is None else digits
    reference = Predictor(model, second_look=False).predict_proba(images)  # an export carries the network alone
    answers = np.concatenate([proba(images[i:i + CHECK_BATCH]) for i in range(0, len(images), CHECK_BATCH)])
    p50, p95 = _latency_ms(proba, images)
    return ExportReport(
        format=name, size_bytes=size_bytes, images=len(images),
        agreement=float(np.mean(answers.argmax(axis=1) == reference.argmax(axis=1))),
        max_prob_diff=float(np.abs(answers - reference).max()),
        accuracy=float(np.mean(answers.argmax(axis=1) == labels)),
        latency_p50_ms=p50, latency_p95_ms=p95)


def _write_saved_model(model: keras.Model, folder: Path) -> None:
    """A SavedModel whose serving_default signature maps `image` to `probabilities`, in float32."""
    twin = float32_twin(model)

    def serve(image):
        return {OUTPUT_NAME: tf.nn.softmax(twin(image, training=False), axis=-1)}

    archive = keras.export.ExportArchive()
    archive.track(twin)
    archive.add_endpoint("serving_default", serve,
                         input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32, name=INPUT_NAME)])
    archive.write_out(str(folder), verbose=False)


def _zip_folder(folder: Path) -> bytes:
    """The folder as a zip whose one top-level entry is the folder itself."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            z.write(path, path.relative_to(folder.parent).as_posix())
    return out.getvalue()


def _tflite_proba(blob: bytes) -> Proba:
    runner = Interpreter(model_content=blob).get_signature_runner()  # LiteRT: tf.lite.Interpreter's successor

    def proba(x: np.ndarray) -> np.ndarray:
        return runner(**{INPUT_NAME: x})[OUTPUT_NAME]

    return proba


def _savedmodel_proba(blob: bytes) -> Proba:
    with tempfile.TemporaryDirectory() as tmp:  # the weights are read in at load: the files may go
        with zipfile.ZipFile(io.BytesIO(blob)) as z:
            z.extractall(tmp)
        loaded = tf.saved_model.load(str(Path(tmp) / SAVEDMODEL_FOLDER))

    def proba(x: np.ndarray) -> np.ndarray:  # through `loaded`: a signature alone does not keep the weights alive
        return loaded.signatures["serving_default"](**{INPUT_NAME: tf.constant(x)})[OUTPUT_NAME].numpy()

    return proba


def _latency_ms(proba: Proba, images: np.ndarray, calls: int = LATENCY_CALLS) -> tuple[float, float]:
    """p50 and p95 of one-image calls over the first `calls` images, after a warm-up."""
    for image in images[:LATENCY_WARMUP]:
        proba(image[np.newaxis])
    seconds = []
    for image in images[:calls]:
        start = time.perf_counter()
        proba(image[np.newaxis])
        seconds.append(time.perf_counter() - start)
    p50, p95 = np.percentile(seconds, [50, 95]) * 1000
    return float(p50), float(p95)
