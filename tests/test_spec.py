"""mnist_core.spec: designed networks as rows, checked, measured by arithmetic, built, written as strings, timed."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
from keras import layers

from mnist_core import spec
from mnist_core.model import NUM_CLASSES, PRESETS, build_model, summarize
from mnist_core.spec import SpecError

CUSTOM_DESIGNS = [  # beside the presets: strides, "same" padding, average pools, global pooling, other activations
    "conv8k3s2-same-tanh,avgpool2,flatten,dense16-sigmoid",
    "conv16k5-same,bn,relu,conv32k3s2-nobias,avgpool3,gap,dropout0.5,dense32-gelu-nobias",
    "flatten,dense128,dropout0,dense64-elu",
    "conv4k28,flatten",  # one kernel the size of the image: 1×1 out
    "conv32k3-swish,conv32k3-linear,pool2,dropout0.25,gap",
]


def _layers(model: keras.Model) -> list[tuple]:
    """Each layer's class, output shape, parameters and configuration (the name aside)."""
    return [(type(layer).__name__, tuple(layer.output.shape), layer.count_params(),
             {k: v for k, v in layer.get_config().items() if k != "name"}) for layer in model.layers]


# ---------------------------------------------------------------- the presets as specs


def test_seed_spec_builds_the_tutorials_network():
    model = spec.build(spec.parse_spec(spec.PRESET_LAYERS["seed"]))
    assert model.count_params() == 121_930
    assert [type(layer) for layer in model.layers] == [layers.Conv2D, layers.MaxPooling2D, layers.Conv2D,
                                                      layers.MaxPooling2D, layers.Flatten, layers.Dense, layers.Dense]
    assert [tuple(layer.output.shape) for layer in model.layers] == [
        (None, 26, 26, 32), (None, 13, 13, 32), (None, 11, 11, 64), (None, 5, 5, 64), (None, 1600), (None, 64),
        (None, 10)]
    assert model.layers[-1].activation.__name__ == "linear"  # logits, as training's loss expects
    assert spec.PRESET_LAYERS["seed"] == "conv32k3,pool2,conv64k3,pool2,flatten,dense64"


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_spec_builds_the_presets_own_network(name):
    assert set(spec.PRESET_LAYERS) == set(PRESETS)
    assert _layers(spec.build(spec.parse_spec(spec.PRESET_LAYERS[name]))) == _layers(build_model(name))


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_spec_under_mixed_precision_is_built_like_its_preset(name):
    model = spec.build(spec.parse_spec(spec.PRESET_LAYERS[name]), dtype="mixed_bfloat16")
    assert _layers(model) == _layers(build_model(name, dtype="mixed_bfloat16"))
    assert model.layers[0].compute_dtype == "bfloat16" and model.layers[0].variable_dtype == "float32"
    out = model(np.zeros((2, 28, 28, 1), np.float32), training=False)
    assert tuple(out.shape) == (2, NUM_CLASSES) and out.dtype == "float32"  # logits stay float32


def test_build_network_builds_presets_by_name_and_custom_networks_from_their_string():
    assert spec.build_network("fast").name == "fast"
    custom = spec.build_network(spec.CUSTOM, "flatten,dense32")
    assert custom.name == spec.CUSTOM and custom.count_params() == 784 * 32 + 32 + 33 * 10
    with pytest.raises(SpecError, match="needs its layers"):
        spec.build_network(spec.CUSTOM)


# ---------------------------------------------------------------- shapes and parameters without Keras


@pytest.mark.parametrize("text", [*spec.PRESET_LAYERS.values(), *CUSTOM_DESIGNS])
def test_summary_by_arithmetic_matches_keras(text):
    rows = spec.parse_spec(text)
    summary = spec.spec_summary(rows)
    model = spec.build(rows)
    assert [(r.kind, r.output_shape, r.params) for r in summary.rows] == [
        (r.kind, r.output_shape, r.params) for r in summarize(model)]
    assert summary.params == model.count_params()
    assert [r.row for r in summary.rows] == [*range(1, len(rows) + 1), None]  # then the output layer
    assert summary.rows[-1].description == "output dense 10"
    assert summary.activations == sum(math.prod(layer.output.shape[1:]) for layer in model.layers)


def test_multiply_adds_of_the_seed_network():
    summary = spec.spec_summary(spec.parse_spec(spec.PRESET_LAYERS["seed"]))
    # conv1 26·26·9·32, conv2 11·11·9·32·64, dense 1600·64, output 64·10
    assert [r.mult_adds for r in summary.rows] == [194_688, 0, 2_230_272, 0, 0, 102_400, 640]
    assert summary.mult_adds == 2_528_000


def test_rows_get_every_key_defaults_and_nulls():
    rows = spec.normalize([{"type": "Conv2D"}, {"type": "Dropout"}, {"type": "Dense", "units": 10}])
    assert all(tuple(row) == spec.KEYS for row in rows)
    assert rows[0] == {"type": "Conv2D", "filters": 32, "units": None, "kernel": 3, "stride": 1, "size": None,
                       "padding": "valid", "activation": "relu", "rate": None, "bias": True}
    assert rows[1]["rate"] == 0.25 and rows[1]["filters"] is None
    assert rows[2]["units"] == 10 and rows[2]["activation"] == "relu"
    assert set(spec.KEYS) == {"type"} | {key for params in spec.PARAMS.values() for key in params}


def test_table_cells_are_read_as_a_table_editor_gives_them():
    """Empty cells are None or NaN, numbers come as floats or numpy scalars, other types' columns hold leftovers."""
    rows = spec.normalize([
        {"type": "Conv2D", "filters": np.float64(16.0), "kernel": np.int64(5), "stride": math.nan, "size": 2.0,
         "padding": None, "activation": None, "rate": math.nan, "bias": np.bool_(False), "units": 7},
        {"type": "MaxPooling2D", "filters": 64, "size": math.nan},
    ])
    assert rows[0] == {"type": "Conv2D", "filters": 16, "units": None, "kernel": 5, "stride": 1, "size": None,
                       "padding": "valid", "activation": "relu", "rate": None, "bias": False}
    assert type(rows[0]["filters"]) is int and type(rows[0]["bias"]) is bool
    assert rows[1]["size"] == 2 and rows[1]["filters"] is None  # a leftover of another type is dropped


def test_a_spec_survives_json():
    rows = spec.parse_spec(CUSTOM_DESIGNS[1])
    assert json.loads(json.dumps(rows)) == rows
    assert spec.normalize(json.loads(json.dumps(rows))) == rows


# ---------------------------------------------------------------- errors name the row


@pytest.mark.parametrize("rows, message", [
    ([{"type": "Conv2D", "filters": 8, "padding": "same"}] + [{"type": "MaxPooling2D"}] * 4
     + [{"type": "MaxPooling2D"}],
     "Row 6 (maxpool 2): the image is 1×1 here; a 2×2 pool would shrink it below 1×1"),
    ([{"type": "MaxPooling2D", "size": 4}] * 2 + [{"type": "Conv2D", "kernel": 3}],
     "Row 3 (conv 32 3×3): the image is 1×1 here; a 3×3 convolution without padding would shrink it below 1×1"),
    ([{"type": "Conv2D", "kernel": 29}], "Row 1 (conv 32 29×29): the image is 28×28 here"),
    ([{"type": "Conv2D"}, {"type": "Dense"}],
     "Row 2 (dense 64): the input is still an image (26×26×32) here; put a flatten or global avgpool row"),
    ([{"type": "Flatten"}, {"type": "Conv2D"}],
     "Row 2 (conv 32 3×3): the input is flat here (784 numbers, since row 1 (flatten))"),
    ([{"type": "Conv2D"}, {"type": "GlobalAveragePooling2D"}, {"type": "MaxPooling2D"}],
     "Row 3 (maxpool 2): the input is flat here (32 numbers, since row 2 (global avgpool))"),
    ([{"type": "Conv2D"}, {"type": "MaxPooling2D"}],
     "Row 3 (output dense 10): the last row leaves an image (13×13×32); end with a flatten or global avgpool row"),
    ([{"type": "Conv2D", "filters": 0}], "Row 1 (conv 0 3×3): filters must be at least 1, got 0"),
    ([{"type": "Flatten"}, {"type": "Dense", "units": -5}], "Row 2 (dense -5): units must be at least 1, got -5"),
    ([{"type": "Conv2D", "kernel": 0}], "Row 1 (conv 32 0×0): kernel must be at least 1"),
    ([{"type": "Conv2D", "stride": 0}], "Row 1 (conv 32 3×3 stride 0): stride must be at least 1"),
    ([{"type": "AveragePooling2D", "size": -2}], "Row 1 (avgpool -2): size must be at least 1"),
    ([{"type": "Conv2D", "filters": 32.5}], "Row 1 (conv 32.5 3×3): filters must be a whole number, got 32.5"),
    ([{"type": "Conv2D", "filters": "32"}], "Row 1 (conv 32 3×3): filters must be a whole number, got '32'"),
    ([{"type": "Dropout", "rate": 1}], "Row 1 (dropout 1): rate must be at least 0 and below 1, got 1"),
    ([{"type": "Dropout", "rate": -0.1}], "Row 1 (dropout -0.1): rate must be at least 0 and below 1"),
    ([{"type": "Flatten"}, {"type": "Conv3D"}], "Row 2 (type 'Conv3D'): unknown type; choose one of Conv2D, "),
    ([{"filters": 3}], "Row 1 (no type): unknown type; choose one of"),
    ([{"type": "Conv2D", "padding": "full"}], "Row 1 (conv 32 3×3): padding must be one of valid, same; got 'full'"),
    ([{"type": "Flatten"}, {"type": "Dense", "activation": "softmax"}],
     "Row 2 (dense 64): activation must be one of relu, linear,"),
    ([{"type": "Conv2D", "bias": "no"}], "Row 1 (conv 32 3×3): bias must be true or false, got 'no'"),
    ([{"type": "Conv2D", "filter": 3}], "Row 1 (conv 32 3×3): unknown key 'filter'; the keys are type, filters,"),
    ([{"type": "Flatten"}, "dense64"], "Row 2: a row is a dict of type, filters,"),
    ([{"type": "Flatten"}, {"type": "Dense", "units": 4096}, {"type": "Dense", "units": 4096}],
     "Row 3 (dense 4096): the network reaches 19,996,672 parameters here, over the cap of 5,000,000"),
    ([{"type": "Conv2D", "filters": 2048, "padding": "same"}] * 2,
     "Row 2 (conv 2048 3×3 same): the network reaches 37,771,264 parameters"),
])
def test_invalid_designs_are_refused_naming_the_row(rows, message):
    with pytest.raises(SpecError) as err:
        spec.spec_summary(rows)
    assert str(err.value).startswith(message), str(err.value)
    assert err.value.row == int(message.split()[1].rstrip(":"))
    assert isinstance(err.value, ValueError)
    with pytest.raises(SpecError):
        spec.build(rows)  # checked before any Keras layer is made


def test_the_cap_is_inclusive_and_named():
    assert spec.MAX_PARAMS == 5_000_000
    # flatten, dense u: 784u + u + 10u + 10 parameters; the largest u under the cap trains, one more does not
    units = (spec.MAX_PARAMS - 10) // 795
    assert spec.spec_summary([{"type": "Flatten"}, {"type": "Dense", "units": units}]).params <= spec.MAX_PARAMS
    with pytest.raises(SpecError, match="over the cap of 5,000,000"):
        spec.spec_summary([{"type": "Flatten"}, {"type": "Dense", "units": units + 1}])


@pytest.mark.parametrize("not_rows", [[], "conv32", None, {"type": "Flatten"}])
def test_an_empty_spec_or_not_a_list_is_refused(not_rows):
    with pytest.raises(SpecError) as err:
        spec.spec_summary(not_rows)
    assert err.value.row is None
    assert "no rows" in str(err.value) or "list of rows" in str(err.value)


# ---------------------------------------------------------------- the compact string


@pytest.mark.parametrize("text", [*spec.PRESET_LAYERS.values(), *CUSTOM_DESIGNS])
def test_compact_strings_round_trip(text):
    rows = spec.parse_spec(text)
    assert spec.format_spec(rows) == text  # string -> spec -> string
    assert spec.parse_spec(spec.format_spec(rows)) == rows  # spec -> string -> spec


def test_parse_fills_defaults_and_writes_canonical_strings():
    rows = spec.parse_spec(" CONV , pool , conv64k3s1-valid-relu , avgpool, dropout, flatten, dense128-relu , dense")
    assert spec.format_spec(rows) == "conv32k3,pool2,conv64k3,avgpool2,dropout0.25,flatten,dense128,dense64"
    assert rows[2] == {"type": "Conv2D", "filters": 64, "units": None, "kernel": 3, "stride": 1, "size": None,
                       "padding": "valid", "activation": "relu", "rate": None, "bias": True}
    assert spec.parse_spec("dropout.5")[0]["rate"] == 0.5
    assert spec.parse_spec("") == []
    assert spec.format_spec(spec.normalize([{"type": "Dropout", "rate": 0.1 + 0.2}])) == "dropout0.30000000000000004"


@pytest.mark.parametrize("text, message", [
    ("conv32k3,pool2,cnv64", "Token 3 'cnv64': unknown layer; tokens are conv32k3"),
    ("maxpool2", "Token 1 'maxpool2': unknown layer"),
    ("conv32x3", "Token 1 'conv32x3': cannot read it as a conv layer"),
    ("pool2k3", "Token 1 'pool2k3': only conv takes k3 (its kernel)"),
    ("dense64s2", "Token 1 'dense64s2': only conv takes s2 (its stride)"),
    ("flatten,dense64-same", "Token 2 'dense64-same': unknown option -same for dense; its options are -nobias"),
    ("bn-relu", "Token 1 'bn-relu': unknown option -relu for bn; it takes no options"),
    ("conv32-tanh-relu", "Token 1 'conv32-tanh-relu': two activation options"),
    ("relu6", "Token 1 'relu6': relu takes no number"),
    ("conv32,,pool2", "Token 2 is empty: two commas in a row, or one at an end"),
    ("flatten,", "Token 2 is empty"),
    ("conv0", "Token 1 'conv0': filters must be at least 1, got 0"),
    ("conv32.5", "Token 1 'conv32.5': filters must be a whole number, got 32.5"),
    ("flatten,dropout1", "Token 2 'dropout1': rate must be at least 0 and below 1"),
    ("conv32k0", "Token 1 'conv32k0': kernel must be at least 1"),
])
def test_parse_errors_name_the_token(text, message):
    with pytest.raises(SpecError) as err:
        spec.parse_spec(text)
    assert str(err.value).startswith(message), str(err.value)
    assert err.value.row == int(message.split()[1])


def test_a_parsed_string_is_checked_like_rows():
    rows = spec.parse_spec("conv32k3,pool2,pool2,pool2,pool2,pool2")  # parses: the grammar is fine
    with pytest.raises(SpecError, match=r"^Row 6 \(maxpool 2\): the image is 1×1 here"):
        spec.spec_summary(rows)


# ---------------------------------------------------------------- seconds per epoch


def test_estimates_grow_with_the_work():
    seed, best = spec.parse_spec(spec.PRESET_LAYERS["seed"]), spec.parse_spec(spec.PRESET_LAYERS["best"])
    at = spec.estimate_epoch_seconds
    assert at(seed, 60_000, 32) == pytest.approx(2 * at(seed, 30_000, 32), rel=1e-3)
    assert at(seed, 60_000, 32) > at(seed, 60_000, 256)  # fewer batches, less per-batch work
    assert at(best, 60_000, 128) > 2 * at(seed, 60_000, 128)  # 4x the multiply-adds, 4x the activations
    with pytest.raises(SpecError):
        at([], 60_000, 32)


def test_reference_speed_matches_the_readme_measurement():
    """README: one epoch of seed on 20,000 images (float32, no augmentation) trains in 3.1 s on this machine."""
    seed = spec.parse_spec(spec.PRESET_LAYERS["seed"])
    assert spec.estimate_epoch_seconds(seed, 20_000, 32) == pytest.approx(3.1, rel=0.25)


def test_calibration_measures_this_machine_and_feeds_the_estimate():
    speed = spec.calibrate()
    assert all(math.isfinite(value) and value > 0 for value in vars(speed).values())
    small = spec.parse_spec("conv16k5,pool2,relu,flatten,dense64")  # not one of the probes
    large = spec.parse_spec(spec.PRESET_LAYERS["best"])
    assert 0 < spec.estimate_epoch_seconds(small, 6000, 32, speed) < spec.estimate_epoch_seconds(large, 6000, 32, speed)
