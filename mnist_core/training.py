"""Training: one frozen config in, a result with the model, history and test metrics out."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from mnist_core import data, finetune, pendigits
from mnist_core.digits_db import DigitStore
from mnist_core.gpu import distribution_strategy
from mnist_core.live import WeightBoard, WeightPublisher
from mnist_core.model import PRESETS, compile_model, get_preset
from mnist_core.precision import CHOICES as PRECISIONS, resolve_precision
from mnist_core.progress import EpochPoint, ProgressCallback, TrainingProgress
from mnist_core.spec import CUSTOM, build_network, format_spec, parse_spec, spec_summary
from mnist_core.store import keras_path, load_model, read_info

SCHEDULES = ("constant", "onecycle")
AVERAGE_STEPS = 1000  # average_weights: the average spans about this many steps, or a fifth of a shorter run
CUSTOM_RECIPE = "seed"  # a designed network starts from the tutorial's recipe


def preset_recipe(name: str) -> dict:
    """The TrainConfig fields a preset sets (its training recipe); "custom" takes CUSTOM_RECIPE's."""
    p = get_preset(CUSTOM_RECIPE if name == CUSTOM else name)
    return dict(epochs=p.epochs, batch_size=p.batch_size, learning_rate=p.learning_rate, schedule=p.schedule,
                precision=p.precision, augment=p.augment, augment_style=p.augment_style, augment_slant=p.augment_slant,
                average_weights=p.average_weights)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run. The defaults are the TensorFlow tutorial's recipe."""

    preset: str = "seed"  # network from mnist_core.model.PRESETS, or "custom": the one `layers` describes
    layers: str | None = None  # "custom" only: the network as a spec string (mnist_core.spec), stored canonical
    epochs: int = 10  # full passes over the training images
    batch_size: int = 32  # images per gradient step
    learning_rate: float = 1e-3  # Adam's rate (the peak rate for "onecycle")
    schedule: str = "constant"  # "constant", or "onecycle": linear warm-up then cosine decay to 0
    augment: bool = False  # randomly rotate, zoom and shift training images (data.make_dataset)
    augment_style: bool = False  # give some 1s a flag and some 7s a crossbar (continental handwriting)
    augment_slant: bool = False  # randomly slant (shear) training images
    augment_stroke: bool = False  # make the ink randomly thinner or thicker
    average_weights: bool = False  # end with a moving average of the last steps' weights (average_momentum)
    seed: int = 42  # seeds weights, shuffling and augmentation
    train_subset: int | None = None  # use only the first N training images (None = all 60,000)
    test_subset: int | None = None  # use only the first N test images (None = all 10,000)
    precision: str = "float32"  # "float32", "mixed_bfloat16", "mixed_float16" or "auto" (per machine)
    steps_per_execution: int = 1  # batches per compiled call; progress and stop act at this grain
    deterministic: bool = True  # TensorFlow op determinism: same seed, same metrics
    data_path: str | None = None  # MNIST .npz (None = $MNIST_NPZ or the vendored copy)
    pen_digits: bool = False  # also train on the vendored pen digits (mnist_core.pendigits), drawn like the canvas
    pen_skip_writers: tuple[int, ...] = ()  # pen-digit writers left out: a fold's model never sees its writers
    my_digits: str | None = None  # the user's labelled digits (a digits_db file), trained on with MNIST
    parent: str | None = None  # fine-tune: start from this saved model, train on my_digits and replayed MNIST
    holdout: float = finetune.HOLDOUT_SHARE  # fine-tune: the share of each digit's examples kept aside to measure

    def __post_init__(self) -> None:
        if self.preset not in (*PRESETS, CUSTOM):
            raise ValueError(f"Unknown preset {self.preset!r}; choose one of {', '.join([*PRESETS, CUSTOM])}")
        if (self.preset == CUSTOM) != (self.layers is not None):
            raise ValueError(f"layers (a spec string, mnist_core.spec) go with preset {CUSTOM!r} and only with it; "
                             f"got preset {self.preset!r} and layers {self.layers!r}")
        if self.layers is not None:
            if not isinstance(self.layers, str):
                raise ValueError(f"layers must be a spec string (spec.format_spec of the rows), got {self.layers!r}")
            spec = parse_spec(self.layers)
            spec_summary(spec)  # a SpecError naming the bad row, before anything trains
            object.__setattr__(self, "layers", format_spec(spec))  # one spelling per network in the run log
        if self.parent is not None:
            keras_path(self.parent)
            if self.my_digits is None:
                raise ValueError("A fine-tune needs the user's digits (my_digits)")
        object.__setattr__(self, "pen_skip_writers", tuple(sorted({int(w) for w in self.pen_skip_writers})))
        if self.pen_skip_writers and not self.pen_digits:
            raise ValueError("pen_skip_writers leaves out pen-digit writers, so it needs pen_digits")
        pendigits.check_skipped(self.pen_skip_writers)
        if not 0 <= self.holdout < 1:
            raise ValueError(f"holdout must be in [0, 1), got {self.holdout}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"Unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        for name in ("epochs", "batch_size", "steps_per_execution"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("train_subset", "test_subset"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 or None, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"Unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")

    @classmethod
    def for_preset(cls, name: str, **overrides) -> "TrainConfig":
        """The preset's own recipe, with any field overridden; "custom" (give `layers`) takes CUSTOM_RECIPE's."""
        return cls(**{"preset": name, **preset_recipe(name), **overrides})

    @classmethod
    def for_finetune(cls, parent: str, my_digits: str, **overrides) -> "TrainConfig":
        """The fine-tune recipe (mnist_core.finetune) from a saved model, with any field overridden."""
        info = read_info(parent)
        preset, layers = info.preset, info.config.get("layers")
        if preset not in PRESETS and not (preset == CUSTOM and isinstance(layers, str)):
            raise ValueError(f"{parent} cannot be fine-tuned here: its network ({preset}) is not one of the presets "
                             "nor a custom network with its layers recorded")
        recipe = dict(preset=preset, layers=layers if preset == CUSTOM else None, epochs=finetune.EPOCHS,
                      batch_size=finetune.BATCH_SIZE, learning_rate=finetune.LEARNING_RATE, schedule="onecycle",
                      augment=True, augment_style=False, augment_slant=False, augment_stroke=True, parent=str(parent),
                      my_digits=str(my_digits))
        return cls(**{**recipe, **overrides})

    @property
    def is_finetune(self) -> bool:
        return self.parent is not None

    def to_dict(self) -> dict:
        """The fields as JSON holds them (a list for the writers left out); TrainConfig(**d) reads it back."""
        return {**dataclasses.asdict(self), "pen_skip_writers": list(self.pen_skip_writers)}


@dataclass(frozen=True)
class TrainResult:
    model: keras.Model | None  # None in the copy a training process sends back (the model is saved instead)
    config: TrainConfig
    status: str  # "completed" | "stopped" | "failed"
    message: str  # why it ended, in words
    history: tuple[EpochPoint, ...]  # one point per full epoch
    test_loss: float | None  # None when there was nothing worth evaluating
    test_accuracy: float | None
    seconds: float  # wall time of training, per-epoch validation included
    precision: str  # the precision actually used
    personal: finetune.PersonalReport | None = None  # when the user's digits were trained on

    @property
    def full_epochs(self) -> int:
        return len(self.history)

    @property
    def usable(self) -> bool:
        """Worth keeping: at least one full epoch and finite test metrics."""
        return self.status != "failed" and self.full_epochs > 0 and self.test_accuracy is not None


def learning_rate_schedule(config: TrainConfig, steps_per_epoch: int):
    if config.schedule == "constant":
        return config.learning_rate
    total = config.epochs * steps_per_epoch
    warmup = max(1, int(0.25 * total))  # a quarter of the run rising to the peak
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 25,  # one-cycle's usual start, peak / 25
        decay_steps=max(1, total - warmup),
        warmup_target=config.learning_rate,
        warmup_steps=warmup,
    )


def average_momentum(total_steps: int) -> float:
    """average_weights: the share of the moving average each step keeps, so it spans about AVERAGE_STEPS steps
    (a fifth of a run shorter than 5 x AVERAGE_STEPS: a short run's first weights would weigh too much)."""
    return 1 - 1 / min(AVERAGE_STEPS, max(1, total_steps // 5))


def train(config: TrainConfig, progress: TrainingProgress | None = None,
          stop: threading.Event | None = None, board: WeightBoard | None = None) -> TrainResult:
    """Train one model on MNIST; validation on the test split after every full epoch.

    `progress` receives live metrics; setting `stop` ends training within one batch
    (steps_per_execution batches), or before the next step of its preparation (drawing pen digits, loading or
    measuring a model), and the result says it was stopped; `board`, if given, receives copies of the weights as
    they train (live.WeightPublisher).
    """
    progress = progress or TrainingProgress()
    try:
        return _train(config, progress, stop, board)
    except _StoppedWhilePreparing:
        message = "Stopped by request before training began."
        progress.finish("stopped", message)
        return TrainResult(model=None, config=config, status="stopped", message=message, history=(), test_loss=None,
                           test_accuracy=None, seconds=0.0, precision=resolve_precision(config.precision))


class _StoppedWhilePreparing(Exception):
    """`stop` was set before training began: the rest of the preparation is skipped."""


def _prepare(progress: TrainingProgress, stop: threading.Event | None, step: str) -> None:
    """Say what the preparation does next, unless a stop was asked for."""
    if stop is not None and stop.is_set():
        raise _StoppedWhilePreparing
    progress.set_message(step)


def _train(config: TrainConfig, progress: TrainingProgress, stop: threading.Event | None,
           board: WeightBoard | None) -> TrainResult:
    _prepare(progress, stop, "loading MNIST")
    train_split, test_split = data.load_mnist(config.data_path)
    x_train, y_train = data.subset(train_split, config.train_subset)
    x_test, y_test = data.subset(test_split, config.test_subset)
    if config.pen_digits:
        pen = pendigits.training_share(pendigits.select(pendigits.load(), config.pen_skip_writers, keep=False),
                                       config.train_subset, len(train_split[1]))
        _prepare(progress, stop, f"drawing {len(pen) * pendigits.VARIANTS:,} pen digits on the canvas")
        x_pen, y_pen = pendigits.render(pen, seed=config.seed)
        x_train, y_train = np.concatenate([x_train, x_pen]), np.concatenate([y_train, y_pen])
    user = None
    if config.my_digits is not None:
        _prepare(progress, stop, "loading your digits")
        user = _user_digits(config)
        if config.is_finetune:
            x_train, y_train = finetune.replay_sample(x_train, y_train, finetune.REPLAY_IMAGES, config.seed)
        x_train, y_train = finetune.mix(user.x_train, user.y_train, x_train, y_train,
                                        finetune.USER_SHARE if config.is_finetune else finetune.SCRATCH_USER_SHARE)

    keras.utils.set_random_seed(config.seed)  # python, numpy and TensorFlow seeds
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    precision = resolve_precision(config.precision)
    steps_per_epoch = math.ceil(len(x_train) / config.batch_size)
    train_ds = data.make_dataset(x_train, y_train, config.batch_size, shuffle=True, seed=config.seed,
                                 augment=config.augment, style=config.augment_style, stroke=config.augment_stroke,
                                 slant=config.augment_slant)
    test_ds = data.make_dataset(x_test, y_test, 256, shuffle=False, seed=config.seed)

    _prepare(progress, stop, "loading the model to fine-tune" if config.is_finetune else "building the network")
    with distribution_strategy().scope():
        model = _start_model(config, precision)
        optimizer = keras.optimizers.Adam(learning_rate_schedule(config, steps_per_epoch),
                                          use_ema=config.average_weights,
                                          ema_momentum=average_momentum(config.epochs * steps_per_epoch))
        compile_model(model, optimizer, steps_per_execution=config.steps_per_execution)
    before = None
    if config.is_finetune:
        _prepare(progress, stop, "measuring the model before the fine-tune")
        before = (_accuracy(model, user.x_held, user.y_held),
                  float(model.evaluate(test_ds, verbose=0, return_dict=True)["accuracy"]))

    callback = ProgressCallback(progress, stop, config.epochs, steps_per_epoch, config.batch_size,
                                validation=test_ds)
    callbacks = [callback] if board is None else [WeightPublisher(board, steps_per_epoch), callback]
    started = time.perf_counter()
    model.fit(train_ds, epochs=config.epochs, callbacks=callbacks, verbose=0, shuffle=False)  # shuffled by tf.data
    seconds = time.perf_counter() - started
    history = tuple(progress.snapshot().epochs_done)

    if callback.stop_reason == "nan":
        status, message = "failed", f"Training failed: {callback.nan_message}; the model was not kept."
        test_loss = test_acc = None
    else:
        if callback.full_epochs == 0:
            test_loss = test_acc = None
        elif history and callback.stop_reason is None and not config.average_weights:
            test_loss, test_acc = history[-1].val_loss, history[-1].val_accuracy  # the last epoch's check
        else:  # mid-epoch weights, or the averaged ones fit ends with: the epochs' checks read neither
            progress.set_message("evaluating on the test set")
            scores = model.evaluate(test_ds, verbose=0, return_dict=True)
            test_loss, test_acc = float(scores["loss"]), float(scores["accuracy"])
        if callback.stop_reason == "stopped":
            status = "stopped"
            message = f"Stopped by request after {callback.full_epochs} full epoch(s)."
        else:
            status, message = "completed", f"Completed {config.epochs} epoch(s)."
        if test_loss is not None and not math.isfinite(test_loss):
            status, message = "failed", f"Training failed: test loss is {test_loss}; the model was not kept."
    personal = None
    if user is not None:
        personal = finetune.PersonalReport(
            trained_on=len(user.y_train), held_out=len(user.y_held),
            user_before=None if before is None else before[0],
            user_after=_accuracy(model, user.x_held, user.y_held) if config.is_finetune else None,
            mnist_before=None if before is None else before[1], mnist_after=test_acc if config.is_finetune else None)
    progress.finish(status, message)
    return TrainResult(model=model, config=config, status=status, message=message, history=history,
                       test_loss=test_loss, test_accuracy=test_acc, seconds=seconds, precision=precision,
                       personal=personal)


def _user_digits(config: TrainConfig) -> finetune.UserSplit:
    """The user's digits: a fine-tune holds part of them out to measure; training from scratch uses all."""
    _, x, y = DigitStore(config.my_digits).arrays()
    if config.is_finetune and len(y) < finetune.MIN_DIGITS:
        raise ValueError(f"A fine-tune needs at least {finetune.MIN_DIGITS} of your digits; there are {len(y)}.")
    if config.is_finetune:
        return finetune.split_holdout(x, y, config.holdout, config.seed)
    return finetune.UserSplit(x, y, x[:0], y[:0])


def _start_model(config: TrainConfig, precision: str) -> keras.Model:
    """A fresh network of the preset (or the custom spec), or for a fine-tune the parent's, batch statistics frozen."""
    if not config.is_finetune:
        return build_network(config.preset, config.layers, dtype=precision)
    model = load_model(config.parent)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False  # keep MNIST's statistics: the mix of a few digits would skew them
    return model


def _accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float | None:
    """The share of uint8 images read right, or None for no images."""
    if len(y) == 0:
        return None
    logits = model.predict(data.to_float_images(x), batch_size=256, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == y))
