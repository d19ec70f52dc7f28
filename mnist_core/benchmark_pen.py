"""Pen digits read by writers no model has seen: k-fold by writer.

The 30 pen-digits writers fall into pendigits.FOLDS folds. Each fold's model is the shipped model's own
recipe (its sidecar's config) trained with the fold's writers left out (TrainConfig.pen_skip_writers),
and it reads only those writers, drawn both ways (mnist_core.handwriting). Every writer is read once, by
a model that never trained on them; the fold models are kept in a folder and reused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_core import handwriting, pendigits
from mnist_core.predict import Predictor
from mnist_core.store import DEFAULT_MODEL, ModelFileError, read_info, save_model
from mnist_core.training import TrainConfig, train

FOLD_DIR = Path("models") / "pen-folds"  # default folder of the fold models, beside the runs (git-ignored)
# --quick: fold models that only prove the path works (the tutorial's small network, the recipe's other settings)
QUICK = dict(preset="seed", epochs=1, train_subset=1000, test_subset=500)
QUICK_DIGITS = 10  # --quick: digits read per writer


@dataclass(frozen=True)
class WriterScore:
    writer: int
    fold: int  # 1-based
    n: int
    default: float  # accuracy, drawn the default way
    random: float  # accuracy, random pen widths, sizes and places


def fold_path(folder: Path, fold: int, quick: bool = False) -> Path:
    """Where a fold's model is kept; --quick's tiny ones in a subfolder, never in place of the real ones."""
    return Path(folder) / ("quick" if quick else "") / f"pen-fold-{fold + 1}.keras"


def fold_config(writers: tuple[int, ...], quick: bool = False, recipe_from: Path = DEFAULT_MODEL) -> TrainConfig:
    """The shipped model's recipe (or another model's), with pen digits and without these writers."""
    recipe = {k: v for k, v in read_info(recipe_from).config.items() if k in TrainConfig.__dataclass_fields__}
    recipe.update(pen_digits=True, pen_skip_writers=writers, **(QUICK if quick else {}))
    return TrainConfig(**recipe)


def fold_model(folder: Path, fold: int, writers: tuple[int, ...], quick: bool = False,
               say: Callable[[str], None] = print) -> Path:
    """The fold's model: the one in `folder` if its sidecar shows it never saw these writers, else trained now."""
    path, config = fold_path(folder, fold, quick), fold_config(writers, quick)
    if path.is_file():
        try:
            made_with = read_info(path).config
            if TrainConfig(**made_with).to_dict() == config.to_dict():
                return path
        except (ModelFileError, TypeError, ValueError):  # an unreadable sidecar, fields this version lacks
            made_with = {}
        say(f"{path} was trained another way (pen_skip_writers {made_with.get('pen_skip_writers')}, "
            f"{made_with.get('epochs')} epochs): training it again")
    say(f"training fold {fold + 1} without writers {writers[0]}-{writers[-1]} ({config.epochs} epochs) into {path}")
    result = train(config)
    if not result.usable:
        raise ModelFileError(f"Fold {fold + 1}'s training did not finish: {result.message}")
    save_model(result.model, path, config=config.to_dict(), test_accuracy=result.test_accuracy,
               seconds=result.seconds)
    return path


def benchmark_pen(folder: Path = FOLD_DIR, quick: bool = False,
                  say: Callable[[str], None] = print) -> list[WriterScore]:
    """Every pen-digits writer read, both ways, by the model of their fold (trained first where missing)."""
    digits = pendigits.load()
    scores = []
    for fold, writers in enumerate(pendigits.folds(digits.writers)):
        predictor = Predictor.load(fold_model(folder, fold, writers, quick, say))
        for writer in writers:
            own = pendigits.select(digits, (writer,), keep=True)
            if quick:
                own = own.head(QUICK_DIGITS)
            right = [predictor.predict(handwriting.model_inputs(own, way, seed=writer)) == own.labels
                     for way in handwriting.WAYS]
            scores.append(WriterScore(writer, fold + 1, len(own), *(float(r.mean()) for r in right)))
    return scores


def pen_table(scores: list[WriterScore]) -> str:
    """A row per fold, then all writers pooled: mean accuracy both ways and the worst writer."""
    lines = ["| pen digits, writer-disjoint | writers | digits | default way | random way | worst writer "
             "(default / random) |", "|---|---|---|---|---|---|"]

    def row(name: str, group: list[WriterScore]) -> str:
        n = sum(s.n for s in group)
        default, random = (sum(getattr(s, w) * s.n for s in group) / n for w in handwriting.WAYS)
        worst = min(group, key=lambda s: s.default + s.random)
        span = f"{group[0].writer}-{group[-1].writer}"
        return (f"| {name} | {span} | {n:,} | {default:.2%} | {random:.2%} | "
                f"{worst.writer}: {worst.default:.1%} / {worst.random:.1%} |")

    for fold in sorted({s.fold for s in scores}):
        lines.append(row(f"fold {fold}", [s for s in scores if s.fold == fold]))
    lines.append(row("**all writers**", scores))
    return "\n".join(lines)


def fold_of(writer: int, writers: np.ndarray) -> tuple[int, tuple[int, ...]]:
    """The fold (0-based) a writer falls in, and its writers."""
    return next((k, fold) for k, fold in enumerate(pendigits.folds(writers)) if writer in fold)
