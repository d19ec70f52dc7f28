"""mnist_core.store: atomic .keras files with a JSON sidecar, and clear errors for bad files."""

from __future__ import annotations

import datetime as dt
import json
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from mnist_core.model import build_model
from mnist_core.predict import Predictor
from mnist_core.store import ModelFileError, load_model, read_info, save_model, sidecar_path


@pytest.fixture(scope="module")
def images(test_digits):
    return test_digits[0][:200]


@pytest.fixture(scope="module")
def proba_a(trained, images):
    return Predictor(trained.result.model).predict_proba(images)


def test_round_trip_gives_identical_predictions(trained, tmp_path, images, proba_a):
    path = tmp_path / "a.keras"
    save_model(trained.result.model, path, config=trained.config.to_dict(),
               test_accuracy=trained.result.test_accuracy, seconds=trained.result.seconds)
    loaded = load_model(path)
    assert loaded.count_params() == trained.result.model.count_params()
    for w_saved, w_loaded in zip(trained.result.model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(w_saved, w_loaded)
    np.testing.assert_allclose(Predictor(loaded).predict_proba(images), proba_a, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(Predictor(loaded).predict(images), proba_a.argmax(axis=1))


def test_sidecar_describes_the_model(trained, saved_model):
    side = sidecar_path(saved_model)
    assert side == saved_model.with_suffix(".json") and side.is_file()
    d = json.loads(side.read_text())
    assert set(d) >= {"preset", "config", "test_accuracy", "seconds", "trained_at", "tensorflow"}
    assert d["preset"] == "seed"
    assert d["config"] == trained.config.to_dict()
    assert d["test_accuracy"] == trained.result.test_accuracy
    assert d["seconds"] == trained.result.seconds
    assert d["tensorflow"] == tf.__version__
    trained_at = dt.datetime.fromisoformat(d["trained_at"])
    assert trained_at.utcoffset() == dt.timedelta(0)
    assert abs(dt.datetime.now(dt.timezone.utc) - trained_at) < dt.timedelta(hours=1)

    info = read_info(saved_model)
    assert info.path == saved_model and info.preset == "seed" and info.config == d["config"]
    assert info.test_accuracy == trained.result.test_accuracy and info.trained_at == d["trained_at"]
    assert "seed" in info.label and f"{trained.result.test_accuracy:.2%}" in info.label


def test_save_returns_the_info(trained, tmp_path):
    info = save_model(trained.result.model, tmp_path / "sub" / "dir" / "m.keras", config={"preset": "seed"},
                      test_accuracy=None, seconds=None)  # missing folders are created
    assert info.path == tmp_path / "sub" / "dir" / "m.keras" and info.path.is_file()
    assert info.test_accuracy is None and "?" in info.label
    assert read_info(info.path).trained_at == info.trained_at


def test_the_sidecar_says_what_the_model_learned_from(trained, saved_model, tmp_path):
    assert json.loads(sidecar_path(saved_model).read_text())["trained_on"] == "MNIST"
    config = {**trained.config.to_dict(), "pen_digits": True, "pen_skip_writers": [1, 2, 3, 4, 5, 6],
              "train_subset": None}
    info = save_model(trained.result.model, tmp_path / "pen.keras", config=config, test_accuracy=None, seconds=None)
    assert info.trained_on == "MNIST + 5,995 pen digits by 24 writers"
    side = sidecar_path(info.path)
    assert json.loads(side.read_text())["trained_on"] == info.trained_on
    older = json.loads(side.read_text())
    del older["trained_on"]  # a sidecar from before the field: its config still tells
    side.write_text(json.dumps(older))
    assert read_info(info.path).trained_on == "MNIST + 5,995 pen digits by 24 writers"
    assert read_info(info.path).may_know_pen_writers and not read_info(saved_model).may_know_pen_writers
    older["config"]["pen_skip_writers"] = 5  # hand-edited into nonsense: said as unknown, not an error
    side.write_text(json.dumps(older))
    assert read_info(info.path).trained_on == "unknown data" and read_info(info.path).may_know_pen_writers


def test_read_info_without_sidecar(saved_model, tmp_path):
    bare = tmp_path / "bare.keras"
    bare.write_bytes(saved_model.read_bytes())
    info = read_info(bare)
    assert info.preset == "unknown" and info.test_accuracy is None and info.config == {}
    assert info.trained_on == "unknown data"


def test_unreadable_sidecar(saved_model, tmp_path):
    model = tmp_path / "m.keras"
    model.write_bytes(saved_model.read_bytes())
    sidecar_path(model).write_text("{not json")
    with pytest.raises(ModelFileError, match="m.json"):
        read_info(model)


def test_missing_file(tmp_path):
    missing = tmp_path / "nothing-here.keras"
    with pytest.raises(ModelFileError) as err:
        load_model(missing)
    assert str(missing) in str(err.value)


@pytest.mark.parametrize("kind", ["random", "truncated", "text", "foreign_zip"])
def test_corrupt_files(kind, saved_model, tmp_path):
    bad = tmp_path / f"{kind}.keras"
    if kind == "random":
        bad.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "truncated":
        real = saved_model.read_bytes()
        bad.write_bytes(real[: len(real) // 2])
    elif kind == "text":
        bad.write_text("hello, I am not a model\n")
    else:
        with zipfile.ZipFile(bad, "w") as z:
            z.writestr("readme.txt", "a zip, but no Keras model inside")
    with pytest.raises(ModelFileError) as err:
        load_model(bad)
    assert str(bad) in str(err.value)


def test_keras_suffix_required(trained, tmp_path):
    for name in ("m.h5", "m", "m.keras.bak"):
        with pytest.raises(ValueError, match=".keras"):
            save_model(trained.result.model, tmp_path / name, config={}, test_accuracy=None, seconds=None)
    assert list(tmp_path.iterdir()) == []  # nothing written


def _state(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_overwrite_replaces_model_and_sidecar(trained, tmp_path):
    path = tmp_path / "m.keras"
    save_model(trained.result.model, path, config={"preset": "seed"}, test_accuracy=0.5, seconds=1.0)
    other = build_model("fast")
    save_model(other, path, config={"preset": "fast"}, test_accuracy=0.25, seconds=2.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.keras"]
    assert read_info(path).preset == "fast" and read_info(path).test_accuracy == 0.25
    assert load_model(path).name == "fast"


def test_failed_model_save_keeps_the_previous_files(trained, tmp_path, images, proba_a, monkeypatch):
    path = tmp_path / "m.keras"
    save_model(trained.result.model, path, config=trained.config.to_dict(), test_accuracy=0.9, seconds=1.0)
    before = _state(tmp_path)

    model_b = build_model("seed")

    def disk_full(*args, **kwargs):  # isolate a failure halfway through writing B
        with open(args[0], "wb") as f:
            f.write(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(model_b, "save", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_model(model_b, path, config={"preset": "seed", "which": "B"}, test_accuracy=0.1, seconds=2.0)

    assert _state(tmp_path) == before  # byte-identical, and no temporary files left
    np.testing.assert_allclose(Predictor.load(path).predict_proba(images), proba_a, rtol=0, atol=1e-6)
    assert read_info(path).test_accuracy == 0.9


def test_failed_sidecar_write_keeps_the_previous_files(trained, tmp_path, images, proba_a):
    path = tmp_path / "m.keras"
    save_model(trained.result.model, path, config=trained.config.to_dict(), test_accuracy=0.9, seconds=1.0)
    before = _state(tmp_path)
    model_b = build_model("seed")
    with pytest.raises(TypeError):  # the model is written first; then its sidecar cannot be
        save_model(model_b, path, config={"preset": "seed", "bad": object()}, test_accuracy=0.1, seconds=2.0)
    assert _state(tmp_path) == before
    np.testing.assert_allclose(Predictor.load(path).predict_proba(images), proba_a, rtol=0, atol=1e-6)
    assert read_info(path).config == trained.config.to_dict()


def test_saved_files_are_not_private(saved_model, tmp_path):
    """Atomic saves go through mkstemp (mode 0600); the saved files must end up readable like any other."""
    for path in (saved_model, sidecar_path(saved_model)):
        assert path.stat().st_mode & 0o444 == 0o444, oct(path.stat().st_mode)


@pytest.mark.parametrize("content, says", [
    ("[]", "it holds a list, not an object"),
    ('{"test_accuracy": "high"}', '"test_accuracy" is \'high\', not a number'),
    ('{"config": null}', '"config" is null, not an object'), ('{"preset": true}', '"preset" is true, not text'),
])
def test_a_sidecar_of_the_wrong_shape_is_named_not_used(saved_model, tmp_path, content, says):
    model = tmp_path / "m.keras"
    model.write_bytes(saved_model.read_bytes())
    sidecar_path(model).write_text(content)
    with pytest.raises(ModelFileError) as err:
        read_info(model)
    assert str(err.value) == f"Model sidecar {sidecar_path(model)} is not valid: {says}"


def test_a_truncated_model_or_a_folder_or_another_file_is_called_what_it_is(saved_model, tmp_path):
    truncated = tmp_path / "t.keras"
    truncated.write_bytes(saved_model.read_bytes()[:1000])
    with pytest.raises(ModelFileError, match="is damaged: a .keras file is a zip archive") as err:
        load_model(truncated)
    assert "not found" not in str(err.value)
    with pytest.raises(ModelFileError, match="is a folder, not a model file"):
        load_model(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text("# hello\n")
    with pytest.raises(ModelFileError) as err:
        load_model(readme)
    assert str(err.value) == f"{readme} is not a Keras model file: model files end in .keras"
