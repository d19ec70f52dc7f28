"""The personal benchmark: real writers teach the model their hand, through the studio's own path.

For every writer of the pen-digits set: their digits are drawn on the canvas the default way and read
through preprocess_drawing; `shots` of each digit are saved in a digits database, the model of the
writer's fold (trained without them: mnist_core.benchmark_pen) is fine-tuned on them exactly as the
studio's "Fine-tune on my digits" does, and the writer's other digits are read before and after.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_core import handwriting, pendigits
from mnist_core.benchmark_pen import FOLD_DIR, fold_model, fold_of
from mnist_core.digits_db import DigitStore, encode_png
from mnist_core.predict import Predictor
from mnist_core.preprocess import preprocess_drawing
from mnist_core.training import TrainConfig, train

SHOTS = 5  # digits of each kind a writer teaches
QUICK_SHOTS = 2  # --quick
QUICK_WRITERS = 2  # --quick: the first writers


@dataclass(frozen=True)
class WriterRow:
    writer: int
    taught: int  # digits fine-tuned on
    tested: int  # the writer's other digits, read before and after
    before: float  # accuracy on them
    after: float
    mnist_before: float  # MNIST test accuracy
    mnist_after: float
    seconds: float  # the fine-tune's training time, per-epoch validation included


def _teach_split(labels: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    """A mask of `shots` digits of each kind (fewer where the writer has fewer), picked at random."""
    taught = np.zeros(len(labels), dtype=bool)
    for digit in np.unique(labels):
        where = rng.permutation(np.flatnonzero(labels == digit))
        taught[where[:shots]] = True
    return taught


def benchmark_writers(fold_dir: Path = FOLD_DIR, quick: bool = False, shots: int = SHOTS) -> list[WriterRow]:
    """One fine-tune per pen-digits writer, each from the model of the writer's fold (benchmark_pen), which
    never trained on them; fold models missing from `fold_dir` are trained there first."""
    digits = pendigits.load()
    writers = np.unique(digits.writers)
    if quick:
        shots = QUICK_SHOTS
        writers = writers[:QUICK_WRITERS]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for writer in writers:
            own = pendigits.select(digits, (int(writer),), keep=True)
            parent = fold_model(fold_dir, *fold_of(int(writer), digits.writers), quick=quick)
            predictor = Predictor.load(parent)
            canvases = list(handwriting.canvases(own, "default"))
            x = np.stack([preprocess_drawing(c) for c in canvases])
            taught = _teach_split(own.labels, shots, np.random.default_rng(int(writer)))
            store = DigitStore(Path(tmp) / f"writer-{writer}.sqlite")
            for i in np.flatnonzero(taught):
                store.add(int(own.labels[i]), x[i], encode_png(canvases[i]), "drawn")
            overrides = dict(holdout=0.0)  # the writer's other digits are the test
            if quick:
                overrides.update(epochs=1, test_subset=1000)
            result = train(TrainConfig.for_finetune(str(parent), str(store.path), **overrides))
            tested_x, tested_y = x[~taught], own.labels[~taught]
            after = Predictor(result.model).predict(tested_x)
            report = result.personal
            rows.append(WriterRow(int(writer), int(taught.sum()), len(tested_y),
                                  float((predictor.predict(tested_x) == tested_y).mean()),
                                  float((after == tested_y).mean()), report.mnist_before, report.mnist_after,
                                  result.seconds))
    return rows


def writers_table(rows: list[WriterRow]) -> str:
    lines = ["| writer | taught | tested | before | after | errors removed | MNIST before | MNIST after | "
             "fine-tune s |", "|---|---|---|---|---|---|---|---|---|"]

    def line(name, taught, tested, before, after, mnist_before, mnist_after, seconds) -> str:
        removed = "—" if before >= 1 else f"{(after - before) / (1 - before):.0%}"
        return (f"| {name} | {taught} | {tested} | {before:.2%} | {after:.2%} | {removed} | {mnist_before:.2%} | "
                f"{mnist_after:.2%} | {seconds:.1f} |")

    for r in rows:
        lines.append(line(r.writer, r.taught, r.tested, r.before, r.after, r.mnist_before, r.mnist_after, r.seconds))
    if rows:
        mean = {f: float(np.mean([getattr(r, f) for r in rows]))
                for f in ("before", "after", "mnist_before", "mnist_after", "seconds")}
        lines.append(line("mean", sum(r.taught for r in rows), sum(r.tested for r in rows), **mean))
        lines.append(f"mean error rate: {1 - mean['before']:.2%} before, {1 - mean['after']:.2%} after; "
                     f"MNIST {100 * (mean['mnist_after'] - mean['mnist_before']):+.2f} points; "
                     f"longest fine-tune {max(r.seconds for r in rows):.1f} s")
    return "\n".join(lines)
