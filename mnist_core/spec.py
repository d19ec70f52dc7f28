"""A network you design: a JSON-able list of layer rows, checked, measured, timed and built into Keras. No I/O.

A spec is a list of rows, one per layer, each a flat dict with the same keys (KEYS); a key the row's type
does not use is None. The 10-way output layer (Dense(10), float32 logits, like every preset's) is not a row:
it is always added after the last one. The compact string form (parse_spec, format_spec) writes one token a
row, e.g. "conv32k3,pool2,conv64k3,pool2,flatten,dense64" is the seed preset.
"""

from __future__ import annotations

import math
import numbers
import re
import time
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers

from mnist_core import data
from mnist_core.model import INPUT_SHAPE, NUM_CLASSES, build_model, compile_model
from mnist_core.progress import ProgressCallback, TrainingProgress

CUSTOM = "custom"  # TrainConfig.preset of a designed network; its spec string is TrainConfig.layers
MAX_PARAMS = 5_000_000  # as Keras counts them: 41x the seed's, 20 MB of float32; a cap on size, not on time

# Each type's parameters and their defaults: a None (or NaN, an empty table cell) takes the default.
PARAMS: dict[str, dict[str, object]] = {
    "Conv2D": {"filters": 32, "kernel": 3, "stride": 1, "padding": "valid", "activation": "relu", "bias": True},
    "MaxPooling2D": {"size": 2},
    "AveragePooling2D": {"size": 2},
    "BatchNormalization": {},
    "ReLU": {},
    "Dropout": {"rate": 0.25},
    "Flatten": {},
    "GlobalAveragePooling2D": {},
    "Dense": {"units": 64, "activation": "relu", "bias": True},
}
TYPES = tuple(PARAMS)  # the Keras class each row builds, by name
KEYS = ("type", "filters", "units", "kernel", "stride", "size", "padding", "activation", "rate", "bias")  # columns
PADDINGS = ("valid", "same")  # "valid": no padding, the image shrinks by kernel - 1; "same": it keeps its size
ACTIVATIONS = ("relu", "linear", "elu", "gelu", "sigmoid", "swish", "tanh")  # "linear": none
_WHOLE = ("filters", "units", "kernel", "stride", "size")  # whole numbers, at least 1

PRESET_LAYERS = {  # each preset's network (mnist_core.model) as a spec string, output layer left out
    "seed": "conv32k3,pool2,conv64k3,pool2,flatten,dense64",
    "fast": "conv32k5-linear,pool2,relu,conv64k5-linear,pool2,relu,flatten,dense256",
    "best": "conv32k3-linear-nobias,bn,relu,conv32k3-linear-nobias,bn,relu,pool2,"
            "conv64k3-linear-nobias,bn,relu,conv64k3-linear-nobias,bn,relu,pool2,"
            "flatten,dense128-linear-nobias,bn,relu,dropout0.3",
}


class SpecError(ValueError):
    """A design that cannot be built. The message starts with the row ("Row 4 (maxpool 2): ...") or, from
    parse_spec, the token; `row` is that 1-based number, or None for the whole spec."""

    def __init__(self, message: str, row: int | None = None) -> None:
        super().__init__(message)
        self.row = row


# ---------------------------------------------------------------- rows


def describe(row: dict) -> str:
    """A row in a few words, for messages and tables: "conv 32 3×3", "maxpool 2", "dense 64"."""
    t = row.get("type")
    if t == "Conv2D":
        k = row.get("kernel")
        extra = ("" if row.get("stride") in (1, None) else f" stride {row['stride']}") + (
            " same" if row.get("padding") == "same" else "")
        return f"conv {row.get('filters')} {k}×{k}{extra}"
    words = {"MaxPooling2D": f"maxpool {row.get('size')}", "AveragePooling2D": f"avgpool {row.get('size')}",
             "BatchNormalization": "batchnorm", "ReLU": "relu", "Dropout": f"dropout {row.get('rate')}",
             "Flatten": "flatten", "GlobalAveragePooling2D": "global avgpool", "Dense": f"dense {row.get('units')}"}
    if t in words:
        return words[t]
    return "no type" if t is None else f"type {t!r}"


def _missing(value: object) -> bool:
    """None, or NaN: what an empty cell of a table editor gives."""
    return value is None or (isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral)
                             and math.isnan(value))


def _value(key: str, value: object) -> tuple[object, str | None]:
    """(the value in its stored form, or why it is not valid for `key`)."""
    number = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if key in _WHOLE:
        if not (number and float(value).is_integer()):
            return value, f"{key} must be a whole number, got {value!r}"
        return int(value), None if int(value) >= 1 else f"{key} must be at least 1, got {int(value)}"
    if key == "rate":
        if not number:
            return value, f"rate must be a number, got {value!r}"
        return float(value), None if 0 <= value < 1 else f"rate must be at least 0 and below 1, got {value}"
    if key == "bias":
        ok = isinstance(value, (bool, np.bool_))
        return (bool(value), None) if ok else (value, f"bias must be true or false, got {value!r}")
    choices = PADDINGS if key == "padding" else ACTIVATIONS
    if value not in choices:
        return value, f"{key} must be one of {', '.join(choices)}; got {value!r}"
    return value, None


def _row(given: object, number: int, where: str | None = None) -> dict:
    """One row with every key (see normalize), or SpecError starting with `where` (default: "Row 4 (...)")."""
    if not isinstance(given, dict):
        raise SpecError(f"{where or f'Row {number}'}: a row is a dict of {', '.join(KEYS)}; got {given!r}", number)
    t = given.get("type")
    defaults = PARAMS.get(t, {}) if isinstance(t, str) else {}
    row = {key: None for key in KEYS} | {"type": t} | defaults | {
        key: value for key, value in given.items() if key in defaults and not _missing(value)}
    where = where or f"Row {number} ({describe(row)})"
    if t not in TYPES:
        raise SpecError(f"{where}: unknown type; choose one of {', '.join(TYPES)}", number)
    unknown = sorted(str(key) for key in given if key not in KEYS)
    if unknown:
        raise SpecError(f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(KEYS)}", number)
    for key in defaults:
        row[key], wrong = _value(key, row[key])
        if wrong:
            raise SpecError(f"{where}: {wrong}", number)
    return row


def normalize(spec: list[dict]) -> list[dict]:
    """The spec's rows with every key (KEYS): defaults in for missing values, None for keys the type does not
    use (whatever they held), numbers as int/float. Raises SpecError naming the first bad row: unknown type,
    key or choice, a count below 1, a dropout rate outside [0, 1)."""
    if isinstance(spec, (str, bytes)) or not isinstance(spec, (list, tuple)):
        raise SpecError(f"A spec is a list of rows (dicts), got {type(spec).__name__}")
    return [_row(given, number) for number, given in enumerate(spec, 1)]


# ---------------------------------------------------------------- shapes, parameters, the cap


@dataclass(frozen=True)
class RowInfo:
    row: int | None  # 1-based row of the spec; None for the output layer that is always added
    description: str  # describe(row), "output dense 10" for the output layer
    kind: str  # the Keras class
    output_shape: tuple  # as Keras writes it, batch first: (None, 26, 26, 32)
    params: int  # weights and biases, batch-norm statistics included (as Keras' count_params)
    mult_adds: int  # multiply-adds per image in the forward pass (convolutions and dense layers)


@dataclass(frozen=True)
class SpecSummary:
    rows: tuple[RowInfo, ...]  # one per spec row, then the output layer
    params: int  # the whole network's
    mult_adds: int  # per image, forward pass
    activations: int  # numbers all layers output per image: the memory-bound part of the work


def _is_image(shape: tuple) -> bool:
    return len(shape) == 3


def _side(shape: tuple) -> str:
    return f"{shape[0]}×{shape[1]}"


def _shape_text(shape: tuple) -> str:
    return f"{_side(shape)}×{shape[2]}" if _is_image(shape) else f"{shape[0]:,} numbers"


def _row_info(row: dict, shape: tuple, number: int, where: str, flattened_by: str) -> tuple[tuple, int, int]:
    """(output shape without the batch, parameters, multiply-adds) of one row on an input of `shape`;
    raises SpecError (starting with `where`) if the row cannot take that input."""
    t = row["type"]
    if t in ("Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D") and not _is_image(shape):
        raise SpecError(f"{where}: the input is flat here ({_shape_text(shape)}, since {flattened_by}); this "
                        "layer needs an image, so move it before that row", number)
    if t == "Dense" and _is_image(shape):
        raise SpecError(f"{where}: the input is still an image ({_shape_text(shape)}) here; put a flatten or "
                        "global avgpool row before the first dense row", number)
    if t == "Conv2D":
        k, filters, channels = row["kernel"], row["filters"], shape[2]
        if row["padding"] == "valid" and shape[0] < k:
            raise SpecError(f"{where}: the image is {_side(shape)} here; a {k}×{k} convolution without padding "
                            "would shrink it below 1×1 (use padding 'same', a smaller kernel or fewer pools)", number)
        side = (shape[0] - k) // row["stride"] + 1 if row["padding"] == "valid" else -(-shape[0] // row["stride"])
        weights = k * k * channels * filters
        return (side, side, filters), weights + (filters if row["bias"] else 0), side * side * weights
    if t in ("MaxPooling2D", "AveragePooling2D"):
        size = row["size"]
        if shape[0] < size:
            raise SpecError(f"{where}: the image is {_side(shape)} here; a {size}×{size} pool would shrink it "
                            "below 1×1", number)
        return (shape[0] // size, shape[1] // size, shape[2]), 0, 0  # unpadded, strides = size
    if t == "BatchNormalization":
        return shape, 4 * shape[-1], 0  # scale, offset, moving mean, moving variance per channel
    if t in ("Flatten", "GlobalAveragePooling2D"):
        return ((math.prod(shape),) if t == "Flatten" else (shape[-1],)), 0, 0
    if t == "Dense":
        weights = shape[0] * row["units"]
        return (row["units"],), weights + (row["units"] if row["bias"] else 0), weights
    return shape, 0, 0  # ReLU, Dropout


def spec_summary(spec: list[dict]) -> SpecSummary:
    """Validate a spec and give each row's output shape and parameter count, and the totals, by arithmetic
    alone (no Keras: about 0.1 ms for 20 rows, fine on every keystroke). Raises SpecError naming the first bad row."""
    rows = normalize(spec)
    if not rows:
        raise SpecError("The network has no rows: add some, e.g. flatten then dense 64 (the 10-way output "
                        "layer is added after the last row)")
    output = {key: None for key in KEYS} | {"type": "Dense", "units": NUM_CLASSES, "activation": "linear",
                                            "bias": True}
    shape, flattened_by, infos, total = INPUT_SHAPE, "", [], 0
    for number, row in enumerate([*rows, output], 1):
        description = describe(row) if row is not output else f"output dense {NUM_CLASSES}"
        where = f"Row {number} ({description})"
        if row is output and _is_image(shape):
            raise SpecError(f"{where}: the last row leaves an image ({_shape_text(shape)}); end with a flatten "
                            "or global avgpool row, as the output layer is dense", number)
        shape, params, mult_adds = _row_info(row, shape, number, where, flattened_by)
        total += params
        if total > MAX_PARAMS:
            raise SpecError(f"{where}: the network reaches {total:,} parameters here, over the cap of "
                            f"{MAX_PARAMS:,}; use fewer filters or units, or pool more before it", number)
        if not flattened_by and not _is_image(shape):
            flattened_by = where[:1].lower() + where[1:]  # "row 5 (flatten)"
        infos.append(RowInfo(number if row is not output else None, description, row["type"], (None, *shape),
                             params, mult_adds))
    return SpecSummary(rows=tuple(infos), params=total, mult_adds=sum(i.mult_adds for i in infos),
                       activations=sum(math.prod(i.output_shape[1:]) for i in infos))


# ---------------------------------------------------------------- Keras


def _layer(row: dict, dtype: str) -> keras.layers.Layer:
    t = row["type"]
    if t == "Conv2D":
        return layers.Conv2D(row["filters"], row["kernel"], strides=row["stride"], padding=row["padding"],
                             activation=row["activation"], use_bias=row["bias"], dtype=dtype)
    if t == "Dense":
        return layers.Dense(row["units"], activation=row["activation"], use_bias=row["bias"], dtype=dtype)
    if t in ("MaxPooling2D", "AveragePooling2D"):
        return getattr(layers, t)(row["size"], dtype=dtype)
    if t == "Dropout":
        return layers.Dropout(row["rate"], dtype=dtype)
    return getattr(layers, t)(dtype=dtype)  # BatchNormalization, ReLU, Flatten, GlobalAveragePooling2D


def build(spec: list[dict], dtype: str = "float32", name: str = CUSTOM) -> keras.Sequential:
    """A fresh, uncompiled network of the spec's rows and the 10-way output layer; dtype may be a
    mixed-precision policy (the logits stay float32, as in every preset). Raises SpecError first."""
    spec_summary(spec)
    return keras.Sequential(
        [keras.Input(INPUT_SHAPE), *(_layer(row, dtype) for row in normalize(spec)),
         layers.Dense(NUM_CLASSES, dtype="float32")],  # logits: training's loss applies the softmax
        name=name,
    )


def build_network(preset: str, text: str | None = None, dtype: str = "float32") -> keras.Model:
    """The network of a TrainConfig: a preset's by name, or for CUSTOM the one the spec string `text` describes."""
    if preset != CUSTOM:
        return build_model(preset, dtype=dtype)
    if text is None:
        raise SpecError(f"The {CUSTOM} preset needs its layers, a spec string such as {PRESET_LAYERS['seed']!r}")
    return build(parse_spec(text), dtype=dtype)


# ---------------------------------------------------------------- seconds per epoch
# An epoch's training time (validation and augmentation aside) is a sum of four kinds of work, each counted
# from the spec's arithmetic: a fixed cost and an optimizer update per batch, and multiply-adds and
# memory-bound element work (batch norm, ReLU, pools and their gradients) per image. Their costs were fitted to
# epochs measured on 9 designs at batch 32, 128 and 256 (CPU seconds; every one within 20%, most within 10%);
# calibrate() rescales them to the machine it runs on by timing two short trainings.


@dataclass(frozen=True)
class Speed:
    """How fast a machine trains: seconds per unit of each kind of work."""

    step_s: float  # per batch: Python, callbacks, dispatch
    param_step_s: float  # per parameter per batch: Adam's update
    mult_add_s: float  # per forward multiply-add per image, the backward pass's share included
    activation_s: float  # per number the layers output per image, forward and backward

    def parts(self, summary: SpecSummary, images: int, batch_size: int) -> tuple[float, float]:
        """(per-image work, per-batch work) in seconds for one epoch."""
        batches = math.ceil(images / batch_size)
        return (images * (summary.mult_adds * self.mult_add_s + summary.activations * self.activation_s),
                batches * (self.step_s + summary.params * self.param_step_s))


# The 2-core development machine (AMD EPYC, AVX-512), float32, one TensorFlow thread as in the training process.
REFERENCE_SPEED = Speed(step_s=7.8e-4, param_step_s=1.6e-9, mult_add_s=2.9e-11, activation_s=1.8e-9)
# (spec, batch size, images): one mostly per-image work, one mostly per-batch work
_PROBES = ((PRESET_LAYERS["seed"], 128, 2048), ("flatten,dense64", 32, 4096))
_PROBE_EPOCHS = 4  # the first traces the graph and is not timed; the fastest of the rest counts


def estimate_epoch_seconds(spec: list[dict], images: int, batch_size: int, speed: Speed = REFERENCE_SPEED) -> float:
    """Seconds one epoch of `images` in batches of `batch_size` trains, float32, validation and augmentation
    excluded (the first epoch adds about a second of graph tracing). Pure arithmetic: fine on every keystroke;
    pass the Speed of calibrate(), run once per server. Raises SpecError for an invalid spec."""
    return sum(speed.parts(spec_summary(spec), images, batch_size))


class _EpochClock(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._started)


def _probe_seconds(text: str, batch_size: int, images: int) -> float:
    """Seconds one epoch of the probe network takes, trained as train() trains (tf.data, ProgressCallback)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, *INPUT_SHAPE[:2]), dtype=np.uint8)  # noise trains as fast as digits
    y = rng.integers(0, NUM_CLASSES, images)
    model = build(parse_spec(text))
    compile_model(model, keras.optimizers.Adam())
    clock = _EpochClock()
    progress = ProgressCallback(TrainingProgress(), None, _PROBE_EPOCHS, math.ceil(images / batch_size), batch_size)
    model.fit(data.make_dataset(x, y, batch_size, shuffle=True, seed=0), epochs=_PROBE_EPOCHS,
              callbacks=[clock, progress], verbose=0, shuffle=False)  # shuffled by tf.data
    return min(clock.seconds[1:])  # the machine's own speed: other programs' bursts only ever slow an epoch


def calibrate(reference: Speed = REFERENCE_SPEED) -> Speed:
    """This machine's Speed: `reference` with its per-image and per-batch costs rescaled to two probe trainings
    timed here (a conv network at batch 128, a one-layer one at batch 32). Runs TensorFlow for about 3 s on a
    2-core CPU, in the calling process: cache it once per server."""
    parts, measured = [], []
    for text, batch_size, images in _PROBES:
        parts.append(reference.parts(spec_summary(parse_spec(text)), images, batch_size))
        measured.append(_probe_seconds(text, batch_size, images))
    compute, overhead = np.maximum(np.linalg.solve(np.array(parts), np.array(measured)), 0.01).tolist()  # >= 1%
    return Speed(step_s=reference.step_s * overhead, param_step_s=reference.param_step_s * overhead,
                 mult_add_s=reference.mult_add_s * compute, activation_s=reference.activation_s * compute)


# ---------------------------------------------------------------- the compact string
# spec   := token ("," token)*      spaces around tokens are ignored, letters may be upper case
# token  := conv[F][kK][sS] {-same | -valid | -ACT | -nobias}    Conv2D: F filters (32), K×K kernel (3), stride S (1)
#         | pool[N] | avgpool[N]                                  Max/AveragePooling2D, N×N (2)
#         | dense[U] {-ACT | -nobias}                             Dense: U units (64)
#         | dropout[R]                                            Dropout, rate R (0.25), e.g. dropout0.3
#         | bn | relu | flatten | gap                             BatchNormalization, ReLU, Flatten, global avgpool
# ACT is one of ACTIVATIONS (conv and dense default to relu); "-nobias" drops the bias (before a bn).

_WORDS = {"conv": "Conv2D", "pool": "MaxPooling2D", "avgpool": "AveragePooling2D", "bn": "BatchNormalization",
          "relu": "ReLU", "dropout": "Dropout", "flatten": "Flatten", "gap": "GlobalAveragePooling2D",
          "dense": "Dense"}
_NUMBER_KEY = {"Conv2D": "filters", "MaxPooling2D": "size", "AveragePooling2D": "size", "Dropout": "rate",
               "Dense": "units"}
_TOKEN = re.compile(r"(?P<word>avgpool|pool|conv|dense|dropout|flatten|gap|bn|relu)"
                    r"(?P<number>\d+(?:\.\d*)?|\.\d+)?(?:k(?P<kernel>\d+))?(?:s(?P<stride>\d+))?"
                    r"(?P<options>(?:-[a-z0-9_]+)*)")
TOKEN_FORMS = ("conv32k3 (optionally s2, -same, -tanh, -nobias), pool2, avgpool2, bn, relu, dropout0.25, flatten, "
               "gap, dense64 (optionally -linear, -nobias)")


def _token_row(token: str, number: int, where: str) -> dict:
    """One token's row as given (its numbers are checked by _row); raises SpecError on bad syntax."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        known = next((w for w in sorted(_WORDS, key=len, reverse=True) if token.startswith(w)), None)
        if known is None:
            raise SpecError(f"{where}: unknown layer; tokens are {TOKEN_FORMS}", number)
        raise SpecError(f"{where}: cannot read it as a {known} layer; tokens are {TOKEN_FORMS}", number)
    t = _WORDS[match["word"]]
    row = {"type": t}
    if match["number"] is not None:
        if t not in _NUMBER_KEY:
            raise SpecError(f"{where}: {match['word']} takes no number", number)
        value = float(match["number"])
        row[_NUMBER_KEY[t]] = value if t == "Dropout" or not value.is_integer() else int(value)
    for key in ("kernel", "stride"):
        if match[key] is not None:
            if t != "Conv2D":
                raise SpecError(f"{where}: only conv takes {key[0]}{match[key]} (its {key})", number)
            row[key] = int(match[key])
    for option in match["options"].split("-")[1:]:
        takes = {"Conv2D": ("same", "valid", "nobias", *ACTIVATIONS), "Dense": ("nobias", *ACTIVATIONS)}.get(t, ())
        if option not in takes:
            allowed = f"its options are {', '.join('-' + o for o in takes)}" if takes else "it takes no options"
            raise SpecError(f"{where}: unknown option -{option} for {match['word']}; {allowed}", number)
        key = "padding" if option in PADDINGS else "bias" if option == "nobias" else "activation"
        if key in row:
            raise SpecError(f"{where}: two {key} options", number)
        row[key] = False if option == "nobias" else option
    return row


def parse_spec(text: str) -> list[dict]:
    """The spec a compact string describes (grammar above), normalized. Raises SpecError naming the bad token:
    "Token 3 'cnv32': unknown layer; ..."."""
    tokens = [token.strip().lower() for token in text.split(",")]
    if tokens == [""]:
        return []
    rows = []
    for number, token in enumerate(tokens, 1):
        if not token:
            raise SpecError(f"Token {number} is empty: two commas in a row, or one at an end", number)
        where = f"Token {number} {token!r}"
        rows.append(_row(_token_row(token, number, where), number, where))
    return rows


def _token(row: dict) -> str:
    """A normalized row's canonical token: options at their defaults are left out."""
    t = row["type"]
    word = next(w for w, kind in _WORDS.items() if kind == t)
    if t == "Dropout":
        return word + np.format_float_positional(row["rate"], trim="-")  # shortest digits that read back: 0.3
    if t in ("MaxPooling2D", "AveragePooling2D"):
        return f"{word}{row['size']}"
    if t not in ("Conv2D", "Dense"):
        return word
    head = f"conv{row['filters']}k{row['kernel']}" + ("" if row["stride"] == 1 else f"s{row['stride']}") \
        if t == "Conv2D" else f"dense{row['units']}"
    options = ["same"] if row["padding"] == "same" else []
    options += [] if row["activation"] == "relu" else [row["activation"]]
    options += [] if row["bias"] else ["nobias"]
    return "-".join([head, *options])


def format_spec(spec: list[dict]) -> str:
    """The canonical compact string of a spec: parse_spec reads it back to the same rows."""
    return ",".join(_token(row) for row in normalize(spec))
