"""Finished runs side by side: what differs between their recipes, and their per-epoch test curves."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from mnist_core.runs import RunRecord


def augmentation(config: dict) -> str:
    """The distortions a run's config (TrainConfig.to_dict()) trains with, in words; "none" if none."""
    kinds = [name for key, name in (("augment", "rotate/zoom/shift"), ("augment_slant", "slant"),
                                    ("augment_style", "flags and crossbars"), ("augment_stroke", "thinner/thicker ink"))
             if config.get(key)]
    return ", ".join(kinds) or "none"


def _network(record: RunRecord) -> str:
    layers = record.config.get("layers")  # a network designed in the studio: its spec string says what it is
    return f"{record.preset}: {layers}" if layers else record.preset


def _subsets(config: dict) -> str:
    def count(n):
        return "all" if n is None else f"{n:,}"
    return f"{count(config.get('train_subset'))} / {count(config.get('test_subset'))}"


def _number(value, fmt: str) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


# (row name, how a run shows it): the recipe first, then what the run gave
ROWS: tuple[tuple[str, Callable[[RunRecord], str]], ...] = (
    ("Network", _network),
    ("Epochs (full / asked)", lambda r: f"{r.full_epochs} / {r.config.get('epochs', '?')}"),
    ("Batch size", lambda r: str(r.config.get("batch_size", "?"))),
    ("Learning rate", lambda r: _number(r.config.get("learning_rate"), "g")),
    ("Schedule", lambda r: str(r.config.get("schedule", "?"))),
    ("Weights kept", lambda r: "averaged" if r.config.get("average_weights") else "last"),
    ("Augmentation", lambda r: augmentation(r.config)),
    ("Precision", lambda r: str(r.config.get("precision", "?"))),
    ("Seed", lambda r: str(r.config.get("seed", "?"))),
    ("Training / test images", lambda r: _subsets(r.config)),
    ("Pen digits", lambda r: "yes" if r.config.get("pen_digits") else "no"),
    ("Your digits", lambda r: "yes" if r.config.get("my_digits") else "no"),
    ("Fine-tune of", lambda r: (r.config.get("parent") or "—").rsplit("/", 1)[-1]),
)
ALWAYS = (  # shown even when equal: what the comparison is for
    ("Test accuracy", lambda r: "—" if r.test_accuracy is None else f"{r.test_accuracy:.2%}"),
    ("Training time", lambda r: "—" if r.seconds is None else f"{r.seconds:.1f} s"),
)


def differences(records: Sequence[RunRecord]) -> list[tuple[str, list[str]]]:
    """(row name, one value per run) for every recipe row where the runs differ, then accuracy and time."""
    rows = [(name, [show(r) for r in records]) for name, show in ROWS]
    return [(name, values) for name, values in rows if len(set(values)) > 1] + \
        [(name, [show(r) for r in records]) for name, show in ALWAYS]


def curve_rows(records: Sequence[RunRecord], labels: Sequence[str]) -> list[dict]:
    """One row per run and full epoch: its label, the epoch, test (validation) accuracy and loss; NaN as None."""
    def clean(v: float) -> float | None:
        return None if math.isnan(v) else v

    return [{"run": label, "epoch": p.epoch, "test accuracy": clean(p.val_accuracy), "test loss": clean(p.val_loss)}
            for record, label in zip(records, labels) for p in record.history]
