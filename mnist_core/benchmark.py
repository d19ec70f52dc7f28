"""Benchmarks: training presets against the tutorial's recipe, the studio's callbacks, inference
latency, how models read real handwriting drawn like the canvas draws, and how much fine-tuning on a
writer's own digits helps (benchmark_writers).

Every table compares against a baseline measured in the same run on the same machine.
"""

from __future__ import annotations

import itertools
import os
import platform
import threading
import time
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from mnist_core import data, evalsets, handwriting, pendigits
from mnist_core.benchmark_pen import FOLD_DIR, benchmark_pen, pen_table
from mnist_core.benchmark_writers import benchmark_writers, writers_table
from mnist_core.canvas import CANVAS_PX
from mnist_core.model import PRESETS, build_model, compile_model
from mnist_core.precision import resolve_precision
from mnist_core.predict import BATCH, SECOND_LOOK_READINGS, Predictor
from mnist_core.preprocess import preprocess_drawing
from mnist_core.store import read_info
from mnist_core.live import WeightBoard, WeightPublisher
from mnist_core.progress import ProgressCallback, TrainingProgress
from mnist_core.training import TrainConfig, train

TARGET = 0.99  # the accuracy whose arrival time is compared
MEASURING_SETS = ("semeion", "hwd1000")  # handwriting no model trains on, read from the eval folder


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gpus": ", ".join(d.name for d in tf.config.list_physical_devices("GPU")) or "none",
        "auto precision": resolve_precision("auto"),
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
    }


@dataclass(frozen=True)
class TrainingRow:
    preset: str
    epochs: int
    seconds_to_target: float | None  # training time (validation excluded) until test accuracy >= TARGET
    final_accuracy: float
    train_seconds: float  # all epochs, validation excluded
    images_per_sec: float


def benchmark_training(presets: list[str], quick: bool = False) -> list[TrainingRow]:
    """Train each preset with its own recipe, test accuracy checked after every epoch."""
    rows = []
    for name in presets:
        overrides = {"epochs": 1, "train_subset": 1000, "test_subset": 500} if quick else {}
        config = TrainConfig.for_preset(name, **overrides)
        result = train(config)
        history = result.history
        reached = next((p.train_seconds for p in history if p.val_accuracy >= TARGET), None)
        images = (config.train_subset or data.TRAIN_IMAGES) * len(history)
        rows.append(TrainingRow(name, len(history), reached, history[-1].val_accuracy,
                                history[-1].train_seconds, images / history[-1].train_seconds))
    return rows


def training_table(rows: list[TrainingRow]) -> str:
    base = next((r for r in rows if r.preset == "seed"), rows[0])
    lines = [f"| preset | epochs | time to {TARGET:.1%} | speed-up vs seed | training time | final test accuracy "
             "| images/s | vs seed |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        to_target = "not reached" if r.seconds_to_target is None else f"{r.seconds_to_target:.1f} s"
        speedup = ("—" if r.seconds_to_target is None or base.seconds_to_target is None
                   else f"{base.seconds_to_target / r.seconds_to_target:.1f}×")
        lines.append(f"| {r.preset} | {r.epochs} | {to_target} | {speedup} | {r.train_seconds:.0f} s | "
                     f"{r.final_accuracy:.2%} | "
                     f"{r.images_per_sec:,.0f} | {r.images_per_sec / base.images_per_sec:.2f}× |")
    return "\n".join(lines)


def benchmark_callback_cost(quick: bool = False) -> dict[str, float]:
    """Images/s of the seed network at batch 32 (the most callbacks per image) with and without
    the studio's callbacks (live progress, and weight copies published for the live reading);
    each measured twice, alternating, best of two."""
    n = 1000 if quick else 20000
    (x_train, y_train), _ = data.load_mnist()
    x, y = x_train[:n], y_train[:n]
    ds = data.make_dataset(x, y, 32, shuffle=True, seed=0)
    steps = -(-n // 32)
    best = {"without": 0.0, "with": 0.0}
    for label in ["without", "with"] * 2:
        keras.utils.set_random_seed(0)
        model = build_model("seed")
        compile_model(model, keras.optimizers.Adam(1e-3))
        model.fit(ds.take(10), verbose=0, shuffle=False)  # tracing happens here, outside the timing; tf.data shuffles
        callbacks = [WeightPublisher(WeightBoard(), steps),
                     ProgressCallback(TrainingProgress(), threading.Event(), 1, steps, 32)] if label == "with" else []
        start = time.perf_counter()
        model.fit(ds, epochs=1, verbose=0, callbacks=callbacks, shuffle=False)
        best[label] = max(best[label], n / (time.perf_counter() - start))
    best["cost"] = 1 - best["with"] / best["without"]
    return best


def callback_table(cost: dict[str, float]) -> str:
    return "\n".join([
        "| live progress + weight publishing (seed, batch 32) | images/s |", "|---|---|",
        f"| without | {cost['without']:,.0f} |", f"| with | {cost['with']:,.0f} |",
        f"| cost | {cost['cost']:.1%} |",
    ])


def _percentiles(fn, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def benchmark_inference(model_path=None, quick: bool = False) -> list[tuple[str, float, float]]:
    """(what, p50 ms, p95 ms) for one-image prediction (a digit the network is sure of, one it is unsure of, and one
    test digit after another), model.predict, preprocessing, the test set (its first 1,000 with quick)."""
    repeats = 20 if quick else 300
    predictor = Predictor.load(model_path)
    alone = Predictor(predictor.model, second_look=False)
    (_, _), (x_test, _) = data.load_mnist()
    images = data.to_float_images(x_test[:1000] if quick else x_test)[..., 0]
    one = images[:1]  # a clear 7
    unsure = images[predictor.look(images).looked_again]
    stream = itertools.cycle(images)
    canvas = np.zeros((CANVAS_PX, CANVAS_PX, 4), np.uint8)
    big = np.kron(x_test[0], np.ones((8, 8), np.uint8))  # the first test digit drawn 224 px tall
    at = slice((CANVAS_PX - len(big)) // 2, (CANVAS_PX + len(big)) // 2)  # centred
    canvas[at, at, :3] = big[..., None]
    canvas[at, at, 3] = big
    for _ in range(5):  # warm-up: tracing and first-call allocations
        predictor.predict_proba(one)
        predictor.predict_proba(unsure[:1])
        alone.predict_proba(one)
        predictor.model.predict(one[..., None], verbose=0)
        preprocess_drawing(canvas)
    rows = [
        ("Predictor.predict_proba, one image the network is sure of",
         *_percentiles(lambda: predictor.predict_proba(one), repeats)),
        (f"Predictor.predict_proba, one image it is unsure of (read again: {SECOND_LOOK_READINGS} readings)",
         *_percentiles(lambda: predictor.predict_proba(unsure[:1]), repeats)),
        (f"Predictor.predict_proba, one test digit after another ({len(unsure) / len(images):.1%} read again)",
         *_percentiles(lambda: predictor.predict_proba(next(stream)), 5 * repeats)),
        ("the network alone, one image (as an export answers)",
         *_percentiles(lambda: alone.predict_proba(one), repeats)),
        ("model.predict, one image (for comparison)",
         *_percentiles(lambda: predictor.model.predict(one[..., None], verbose=0), max(repeats // 5, 10))),
        (f"preprocess_drawing, {CANVAS_PX}×{CANVAS_PX} canvas",
         *_percentiles(lambda: preprocess_drawing(canvas), repeats)),
        (f"Predictor.predict_proba, {len(images):,} test images (batches of {BATCH})",
         *_percentiles(lambda: predictor.predict_proba(images), 3 if quick else 10)),
        (f"Predictor.predict_proba, {len(images):,} test images, batches of 2,048 (the earlier default)",
         *_percentiles(lambda: predictor.predict_proba(images, batch_size=2048), 3 if quick else 10)),
    ]
    return rows


def inference_table(rows: list[tuple[str, float, float]]) -> str:
    lines = ["| what | p50 | p95 |", "|---|---|---|"]
    lines += [f"| {what} | {p50:.2f} ms | {p95:.2f} ms |" for what, p50, p95 in rows]
    return "\n".join(lines)


@dataclass(frozen=True)
class HandwritingRow:
    model: str
    set: str
    n: int
    default: float  # accuracy, drawn the default way
    random: float  # accuracy, random pen widths, sizes and places
    worst_digit: int  # over both ways
    worst_accuracy: float
    read_as: int | None  # the worst digit's commonest misreading


def benchmark_handwriting(models: list[str | None], root=None, quick: bool = False
                          ) -> tuple[list[HandwritingRow], dict[str, tuple[float, float, int]], list[str]]:
    """Every model (None: the shipped one) on every handwriting set found under `root`, both ways, and on the
    vendored pen digits if it never trained on them (a model that did is read writer-disjoint: benchmark_pen).

    Returns the rows, each model's MNIST test accuracy (as the studio answers, and the network alone) and digit
    count, and one line per missing set.
    """
    sets, missing = [], []
    for name in MEASURING_SETS:
        try:
            digits = evalsets.load(name, root)
        except evalsets.EvalSetMissing as exc:
            missing.append(str(exc))
            continue
        sets.append(digits.head(100) if quick else digits)
    pen = pendigits.load()
    pen = pen.head(100) if quick else pen
    unseen = {path: sets if read_info(path).may_know_pen_writers else [*sets, pen] for path in models}
    needed = {d.name: d for path in models for d in unseen[path]}.values()
    drawn = {(d.name, way): handwriting.model_inputs(d, way) for d in needed for way in handwriting.WAYS}
    _, (x_test, y_test) = data.load_mnist()
    if quick:
        x_test, y_test = x_test[:1000], y_test[:1000]
    rows, mnist = [], {}
    for path in models:
        predictor = Predictor.load(path)
        label = "shipped" if path is None else str(path)
        looks = predictor.look(data.to_float_images(x_test)[..., 0])  # the answers and the network's own
        mnist[label] = (*(float((p.argmax(axis=1) == y_test).mean()) for p in (looks.answer, looks.first)), len(y_test))
        for d in unseen[path]:
            read = {w: predictor.predict(drawn[d.name, w]) for w in handwriting.WAYS}
            default, random = (float((read[w] == d.labels).mean()) for w in handwriting.WAYS)
            both = handwriting.score(np.concatenate(list(read.values())), np.tile(d.labels, len(read)))
            rows.append(HandwritingRow(label, d.name, len(d), default, random, both.worst_digit,
                                       both.per_digit[both.worst_digit], both.worst_confusion))
    return rows, mnist, missing


def handwriting_table(rows: list[HandwritingRow], mnist: dict[str, tuple[float, float, int]], missing: list[str]
                      ) -> str:
    lines = ["| model | set | digits | default way | random way | gap (points) | worst digit (read as) |",
             "|---|---|---|---|---|---|---|"]
    for model, (accuracy, alone, n) in mnist.items():
        own = [r for r in rows if r.model == model]
        for r in own:
            read_as = "" if r.read_as is None else f" (as {r.read_as})"
            lines.append(f"| {model} | {r.set} | {r.n:,} | {r.default:.2%} | {r.random:.2%} | "
                         f"{100 * (r.default - r.random):+.2f} | {r.worst_digit}: {r.worst_accuracy:.1%}{read_as} |")
        if own:
            default, random = np.mean([r.default for r in own]), np.mean([r.random for r in own])
            lines.append(f"| {model} | mean | | {default:.2%} | {random:.2%} | {100 * (default - random):+.2f} | |")
        lines.append(f"| {model} | MNIST test | {n:,} | {accuracy:.2%} | | | |")
        lines.append(f"| {model} | MNIST test, the network alone | {n:,} | {alone:.2%} | | | |")
    return "\n".join(lines + [f"missing: {m}" for m in missing])


def run(quick: bool = False, only: str | None = None, presets: list[str] | None = None,
        models: list[str] | None = None, eval_dir=None, fold_dir=FOLD_DIR) -> str:
    """Run the chosen benchmarks and return the printed report (Markdown tables).

    `models` are extra .keras files for the handwriting benchmark (the shipped model is always read);
    `eval_dir` is where its sets are (default: evalsets.eval_dir()); `fold_dir` holds the pen-digits fold models
    (benchmark_pen), trained there first where missing.
    """
    parts = ["| machine | |", "|---|---|", *[f"| {k} | {v} |" for k, v in machine_info().items()]]
    if only in (None, "training"):
        parts += ["", training_table(benchmark_training(presets or list(PRESETS), quick=quick))]
    if only in (None, "callbacks"):
        parts += ["", callback_table(benchmark_callback_cost(quick=quick))]
    if only in (None, "inference"):
        parts += ["", inference_table(benchmark_inference(quick=quick))]
    if only in (None, "handwriting"):
        parts += ["", handwriting_table(*benchmark_handwriting([None, *(models or [])], eval_dir, quick=quick)),
                  "", pen_table(benchmark_pen(fold_dir, quick=quick))]
    if only in (None, "writers"):
        parts += ["", writers_table(benchmark_writers(fold_dir, quick=quick))]
    return "\n".join(parts)
