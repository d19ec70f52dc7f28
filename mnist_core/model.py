"""The networks, one Keras literal per preset, and their default training recipes. No I/O."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import keras
from keras import layers

INPUT_SHAPE = (28, 28, 1)  # one grey MNIST digit, values in [0, 1]
NUM_CLASSES = 10


def seed_network(dtype: str = "float32") -> keras.Model:
    """The TensorFlow tutorial's CNN, unchanged: Conv(32)-Pool-Conv(64)-Pool-Dense(64)-Dense(10).

    Recipe: Adam 1e-3, constant rate, batch 32, 10 epochs, no augmentation (121,930 parameters).
    """
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            layers.Conv2D(32, 3, activation="relu", dtype=dtype),
            layers.MaxPooling2D(dtype=dtype),
            layers.Conv2D(64, 3, activation="relu", dtype=dtype),
            layers.MaxPooling2D(dtype=dtype),
            layers.Flatten(dtype=dtype),
            layers.Dense(64, activation="relu", dtype=dtype),
            layers.Dense(NUM_CLASSES, dtype="float32"),  # logits stay float32 under mixed precision
        ],
        name="seed",
    )


def fast_network(dtype: str = "float32") -> keras.Model:
    """5x5 convs with max-pool before ReLU (4x less ReLU work) and a wide dense head.

    Recipe: batch 128, one-cycle Adam peaking at 5e-3, 1 epoch: 99% on a 2-core CPU in about 6 s.
    """
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            layers.Conv2D(32, 5, dtype=dtype),
            layers.MaxPooling2D(dtype=dtype),
            layers.ReLU(dtype=dtype),
            layers.Conv2D(64, 5, dtype=dtype),
            layers.MaxPooling2D(dtype=dtype),
            layers.ReLU(dtype=dtype),
            layers.Flatten(dtype=dtype),
            layers.Dense(256, activation="relu", dtype=dtype),
            layers.Dense(NUM_CLASSES, dtype="float32"),  # logits stay float32 under mixed precision
        ],
        name="fast",
    )


def best_network(dtype: str = "float32") -> keras.Model:
    """Two unpadded conv-BN-ReLU pairs per scale (28->24->12->8->4 px), dropout before the head.

    Recipe: batch 128, one-cycle Adam peaking at 3e-3, 7 epochs, training images randomly
    rotated, zoomed, slanted and shifted, and some 1s given a flag and some 7s a crossbar, in the input
    pipeline (the saved model holds no augmentation).
    """

    def conv_bn_relu(filters: int) -> list[layers.Layer]:
        return [
            layers.Conv2D(filters, 3, use_bias=False, dtype=dtype),  # BN adds the bias
            layers.BatchNormalization(dtype=dtype),
            layers.ReLU(dtype=dtype),
        ]

    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            *conv_bn_relu(32),
            *conv_bn_relu(32),
            layers.MaxPooling2D(dtype=dtype),
            *conv_bn_relu(64),
            *conv_bn_relu(64),
            layers.MaxPooling2D(dtype=dtype),
            layers.Flatten(dtype=dtype),
            layers.Dense(128, use_bias=False, dtype=dtype),
            layers.BatchNormalization(dtype=dtype),
            layers.ReLU(dtype=dtype),
            layers.Dropout(0.3, dtype=dtype),
            layers.Dense(NUM_CLASSES, dtype="float32"),  # logits stay float32 under mixed precision
        ],
        name="best",
    )


@dataclass(frozen=True)
class Preset:
    """A network and the training recipe it was tuned with (defaults for TrainConfig)."""

    name: str
    build: Callable[..., keras.Model]
    epochs: int
    batch_size: int
    learning_rate: float  # peak rate for schedules
    schedule: str  # "constant" | "onecycle"
    precision: str  # "float32", or "auto" to use mixed precision where the machine gains from it
    augment: bool = False  # random rotations, zoom and shifts of the training images
    augment_style: bool = False  # flags on some 1s, crossbars on some 7s
    augment_slant: bool = False  # random slant (shear) of the training images
    average_weights: bool = False  # end with a moving average of the weights (TrainConfig.average_weights)

    @property
    def description(self) -> str:
        return inspect.getdoc(self.build) or ""


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset("seed", seed_network, epochs=10, batch_size=32, learning_rate=1e-3, schedule="constant",
               precision="float32"),
        Preset("fast", fast_network, epochs=1, batch_size=128, learning_rate=5e-3, schedule="onecycle",
               precision="auto"),
        Preset("best", best_network, epochs=7, batch_size=128, learning_rate=3e-3, schedule="onecycle",
               precision="auto", augment=True, augment_style=True, augment_slant=True),
    ]
}


def get_preset(name: str) -> Preset:
    """The named preset, or a ValueError listing the choices."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def build_model(name: str, dtype: str = "float32") -> keras.Model:
    """A fresh, uncompiled network of the named preset; dtype may be a mixed-precision policy."""
    return get_preset(name).build(dtype=dtype)


def compile_model(model: keras.Model, optimizer: keras.optimizers.Optimizer, steps_per_execution: int = 1) -> None:
    """The tutorial's loss and metric: integer labels, logits out."""
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )


@dataclass(frozen=True)
class LayerInfo:
    name: str
    kind: str
    output_shape: tuple
    params: int


def summarize(model: keras.Model) -> list[LayerInfo]:
    """Layers with their output shapes and parameter counts, for tables in the UI and CLI."""
    return [
        LayerInfo(
            name=layer.name,
            kind=type(layer).__name__,
            output_shape=tuple(layer.output.shape),
            params=layer.count_params(),
        )
        for layer in model.layers
    ]


