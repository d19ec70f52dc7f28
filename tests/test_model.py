"""mnist_core.model: the presets, the tutorial's seed network, summaries."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from mnist_core.model import INPUT_SHAPE, NUM_CLASSES, PRESETS, build_model, compile_model, summarize


@pytest.fixture(scope="module")
def digits(mnist):
    (_, _), (x_test, _) = mnist
    return x_test[:8].astype(np.float32)[..., None] / 255.0


def test_seed_network_is_the_tutorials():
    model = build_model("seed")
    assert model.count_params() == 121_930
    assert tuple(model.input_shape) == (None, 28, 28, 1)
    kinds = [type(layer) for layer in model.layers]
    assert kinds == [layers.Conv2D, layers.MaxPooling2D, layers.Conv2D, layers.MaxPooling2D, layers.Flatten,
                     layers.Dense, layers.Dense]
    conv1, pool1, conv2, pool2, _, dense1, dense2 = model.layers
    assert (conv1.filters, tuple(conv1.kernel_size), conv1.activation.__name__) == (32, (3, 3), "relu")
    assert (conv2.filters, tuple(conv2.kernel_size), conv2.activation.__name__) == (64, (3, 3), "relu")
    assert conv1.padding == conv2.padding == "valid"
    assert tuple(pool1.pool_size) == tuple(pool2.pool_size) == (2, 2)
    assert (dense1.units, dense1.activation.__name__) == (64, "relu")
    assert (dense2.units, dense2.activation.__name__) == (10, "linear")
    assert [tuple(layer.output.shape) for layer in model.layers] == [
        (None, 26, 26, 32), (None, 13, 13, 32), (None, 11, 11, 64), (None, 5, 5, 64), (None, 1600), (None, 64),
        (None, 10)]


def test_seed_preset_recipe_is_the_tutorials():
    p = PRESETS["seed"]
    assert (p.epochs, p.batch_size, p.learning_rate, p.schedule, p.precision) == (10, 32, 1e-3, "constant", "float32")


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_every_preset_outputs_float32_logits(name, dtype, digits):
    model = build_model(name, dtype=dtype)
    assert model.name == name
    out = model(digits, training=False)
    assert tuple(out.shape) == (8, NUM_CLASSES)
    assert out.dtype == "float32"
    assert np.isfinite(np.asarray(out)).all()
    assert model.layers[-1].activation.__name__ == "linear"  # logits, not probabilities
    if dtype == "mixed_bfloat16":
        assert model.layers[0].compute_dtype == "bfloat16"
        assert model.layers[0].variable_dtype == "float32"  # weights stay float32


def test_presets_are_distinct_networks():
    counts = {name: build_model(name).count_params() for name in PRESETS}
    assert len(set(counts.values())) == len(counts), counts


def test_best_preset_randomises_only_in_training(digits):
    model = build_model("best")
    a = np.asarray(model(digits, training=False))
    b = np.asarray(model(digits, training=False))
    np.testing.assert_array_equal(a, b)  # inference is deterministic: no dropout, BN uses moving stats
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"Dropout", "BatchNormalization"} <= kinds
    assert not any(k.startswith("Random") for k in kinds)  # augmentation lives in the input pipeline
    assert PRESETS["best"].augment and PRESETS["best"].augment_style and PRESETS["best"].augment_slant
    assert not (PRESETS["seed"].augment or PRESETS["seed"].augment_style or PRESETS["seed"].augment_slant)
    c = np.asarray(model(digits, training=True))
    assert not np.allclose(a, c)


def test_unknown_preset():
    with pytest.raises(ValueError) as err:
        build_model("huge")
    message = str(err.value)
    assert "huge" in message
    for name in PRESETS:
        assert name in message


def test_presets_are_consistent():
    assert set(PRESETS) == {"seed", "fast", "best"}
    for name, p in PRESETS.items():
        assert p.name == name
        assert p.epochs >= 1 and p.batch_size >= 1 and p.learning_rate > 0
        assert p.schedule in ("constant", "onecycle")
        assert p.precision in ("float32", "auto")
        assert len(p.description) > 20, name  # the network's docstring, shown in the UI
        assert "Recipe" in p.description, name


@pytest.mark.parametrize("name", list(PRESETS))
def test_summarize(name):
    model = build_model(name)
    rows = summarize(model)
    assert len(rows) == len(model.layers)
    assert [r.kind for r in rows] == [type(layer).__name__ for layer in model.layers]
    assert len({r.name for r in rows}) == len(rows)
    assert sum(r.params for r in rows) == model.count_params()
    assert rows[-1].output_shape == (None, NUM_CLASSES)
    assert all(r.output_shape[0] is None for r in rows)


def test_compile_model_uses_the_tutorials_loss(digits):
    model = build_model("seed")
    compile_model(model, keras.optimizers.Adam(1e-3))
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    assert model.loss.from_logits
    logs = model.evaluate(digits, np.arange(8) % 10, verbose=0, return_dict=True)
    assert set(logs) >= {"loss", "accuracy"}
    assert INPUT_SHAPE == (28, 28, 1)
