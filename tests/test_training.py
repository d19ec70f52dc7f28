"""mnist_core.training: the config, real short runs, stop, determinism, NaN handling, schedules."""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time

import keras
import numpy as np
import pytest

from mnist_core import data, finetune, pendigits
from mnist_core.digits_db import DigitStore, encode_png
from mnist_core.model import PRESETS
from mnist_core.precision import resolve_precision
from mnist_core.predict import Predictor
from mnist_core.progress import EpochPoint, TrainingProgress
from mnist_core.spec import CUSTOM, SpecError, build_network
from mnist_core.store import load_model, read_info, save_model
from mnist_core.training import (AVERAGE_STEPS, CUSTOM_RECIPE, SCHEDULES, TrainConfig, average_momentum,
                                  learning_rate_schedule, train)

# ---------------------------------------------------------------- the config


def test_defaults_are_the_tutorials_recipe():
    c = TrainConfig()
    assert (c.preset, c.epochs, c.batch_size, c.learning_rate, c.schedule) == ("seed", 10, 32, 1e-3, "constant")
    assert c.seed == 42 and c.precision == "float32" and c.deterministic is True
    assert c.train_subset is None and c.test_subset is None and c.data_path is None
    assert c.steps_per_execution == 1
    assert c == TrainConfig.for_preset("seed")  # the seed preset's recipe is the default


def test_config_is_frozen():
    c = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.epochs = 3
    assert c.epochs == 10


@pytest.mark.parametrize("field, value, words", [
    ("preset", "huge", "huge"),
    ("schedule", "cyclic", "cyclic"),
    ("epochs", 0, "epochs"),
    ("batch_size", 0, "batch_size"),
    ("batch_size", -32, "batch_size"),
    ("steps_per_execution", 0, "steps_per_execution"),
    ("train_subset", 0, "train_subset"),
    ("test_subset", -5, "test_subset"),
    ("learning_rate", 0.0, "learning_rate"),
    ("learning_rate", -1e-3, "learning_rate"),
    ("learning_rate", math.nan, "learning_rate"),
    ("precision", "float64", "float64"),
    ("pen_skip_writers", (1, 2), "needs pen_digits"),
])
def test_invalid_configs_are_refused(field, value, words):
    with pytest.raises(ValueError, match=words):
        TrainConfig(**{field: value})


def test_unknown_preset_lists_choices():
    with pytest.raises(ValueError) as err:
        TrainConfig(preset="huge")
    assert all(name in str(err.value) for name in [*PRESETS, CUSTOM])
    with pytest.raises(ValueError, match="huge"):
        TrainConfig.for_preset("huge")


def test_for_preset_and_overrides():
    fast = TrainConfig.for_preset("fast")
    p = PRESETS["fast"]
    assert (fast.preset, fast.epochs, fast.batch_size, fast.learning_rate, fast.schedule, fast.precision) == (
        "fast", p.epochs, p.batch_size, p.learning_rate, p.schedule, p.precision)
    assert fast.schedule == "onecycle" and fast.precision == "auto"
    best = TrainConfig.for_preset("best", epochs=1, seed=7, train_subset=100)
    assert (best.preset, best.epochs, best.seed, best.train_subset) == ("best", 1, 7, 100)
    assert best.batch_size == PRESETS["best"].batch_size  # untouched fields keep the recipe
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig.for_preset("fast", epochs=0)  # overrides are validated too


def test_to_dict_round_trip():
    c = TrainConfig.for_preset("best", epochs=2, train_subset=123)
    d = c.to_dict()
    assert d["preset"] == "best" and d["epochs"] == 2 and d["train_subset"] == 123
    assert set(d) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert TrainConfig(**d) == c


def test_pen_digit_writers_left_out_survive_the_json_record_as_one_sorted_tuple():
    c = TrainConfig(pen_digits=True, pen_skip_writers=[6, 2, 2, 4])
    assert c.pen_skip_writers == (2, 4, 6)
    assert TrainConfig(**json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(ValueError, match=r"no pen-digit writer \[0, 31\]; the writers are 1-30"):
        TrainConfig(pen_digits=True, pen_skip_writers=(0, 5, 31))
    with pytest.raises(ValueError, match="every pen-digit writer"):
        TrainConfig(pen_digits=True, pen_skip_writers=range(1, 31))


def test_pen_digits_join_the_training_images_in_the_share_of_the_slice():
    """600 of MNIST's 60,000 images take 1% of the 7,494 pen digits (75), each drawn VARIANTS times."""
    progress = TrainingProgress()
    result = train(TrainConfig(pen_digits=True, train_subset=600, test_subset=200, epochs=1, batch_size=50),
                   progress)
    assert result.usable
    assert progress.snapshot().batches_per_epoch == math.ceil((600 + 75 * pendigits.VARIANTS) / 50)
    skipping = TrainConfig(pen_digits=True, pen_skip_writers=tuple(range(1, 30)), train_subset=600,
                           test_subset=200, epochs=1, batch_size=50)
    progress = TrainingProgress()
    assert train(skipping, progress).usable
    left = round(int((pendigits.load().writers == 30).sum()) / 100)  # writer 30's digits only, 1% of them
    assert progress.snapshot().batches_per_epoch == math.ceil((600 + left * pendigits.VARIANTS) / 50)


# ---------------------------------------------------------------- a network of the user's design

CUSTOM_LAYERS = "conv16k3,pool2,flatten,dense32"  # canonical: spec.format_spec writes it so


def test_a_custom_network_takes_the_seed_recipe_and_its_spec_string_canonical():
    config = TrainConfig.for_preset(CUSTOM, layers=" CONV16 , pool,flatten , dense32-relu")
    assert (config.preset, config.layers) == (CUSTOM, CUSTOM_LAYERS)
    assert CUSTOM_RECIPE == "seed"
    assert dataclasses.replace(config, preset="seed", layers=None) == TrainConfig.for_preset("seed")
    assert TrainConfig.for_preset(CUSTOM, layers=CUSTOM_LAYERS, epochs=2).epochs == 2


def test_a_custom_config_survives_its_json_record():
    config = TrainConfig.for_preset(CUSTOM, layers=CUSTOM_LAYERS, epochs=2, train_subset=500)
    record = json.loads(json.dumps(config.to_dict()))  # as the sidecar and runs.jsonl keep it
    assert record["preset"] == CUSTOM and record["layers"] == CUSTOM_LAYERS
    assert TrainConfig(**record) == config
    assert TrainConfig.for_preset("seed").to_dict()["layers"] is None


@pytest.mark.parametrize("fields, words", [
    (dict(preset=CUSTOM), "layers"),
    (dict(preset="seed", layers=CUSTOM_LAYERS), "layers"),
    (dict(preset=CUSTOM, layers=[{"type": "Flatten"}]), "spec string"),
])
def test_layers_go_with_the_custom_preset_and_only_with_it(fields, words):
    with pytest.raises(ValueError, match=words):
        TrainConfig(**fields)


def test_a_bad_design_is_refused_before_anything_trains_naming_the_row():
    with pytest.raises(SpecError, match=r"^Row 2 \(dense 32\): the input is still an image \(26×26×16\)"):
        TrainConfig.for_preset(CUSTOM, layers="conv16,dense32")
    with pytest.raises(SpecError, match=r"^Token 2 'dens32': unknown layer"):
        TrainConfig.for_preset(CUSTOM, layers="flatten,dens32")


@pytest.fixture(scope="module")
def custom_run(tmp_path_factory):
    """One epoch of a small designed network on 2,000 images, saved with its sidecar."""
    config = TrainConfig.for_preset(CUSTOM, layers=CUSTOM_LAYERS, epochs=1, train_subset=2000, test_subset=500)
    result = train(config)
    path = tmp_path_factory.mktemp("custom") / "custom.keras"
    save_model(result.model, path, config=config.to_dict(), test_accuracy=result.test_accuracy,
               seconds=result.seconds)
    return config, result, path


def test_a_custom_network_trains(custom_run):
    config, result, _ = custom_run
    assert result.status == "completed" and result.usable
    assert result.test_accuracy > 0.7  # 0.84 here after one epoch on 2,000 images
    assert result.model.name == CUSTOM
    assert [type(layer).__name__ for layer in result.model.layers] == [
        "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]  # the design, then the 10-way output
    assert result.model.count_params() == 160 + 13 * 13 * 16 * 32 + 32 + 330


def test_a_custom_model_is_rebuilt_from_its_record(custom_run, test_digits):
    config, result, path = custom_run
    info = read_info(path)
    assert (info.preset, info.config["layers"]) == (CUSTOM, CUSTOM_LAYERS)
    assert TrainConfig(**info.config) == config
    rebuilt = build_network(info.preset, info.config["layers"])
    rebuilt.set_weights(load_model(path).get_weights())
    x, _ = test_digits
    np.testing.assert_allclose(Predictor(rebuilt).predict_proba(x[:100]),
                               Predictor(result.model).predict_proba(x[:100]), atol=1e-6)


def test_a_custom_model_can_be_fine_tuned(custom_run, mnist, tmp_path, monkeypatch):
    _, parent, path = custom_run
    (x_train, y_train), _ = mnist
    store = DigitStore(tmp_path / "digits.sqlite")
    for digit in range(10):
        for image in x_train[30_000:][y_train[30_000:] == digit][:2]:
            store.add(digit, image, encode_png(image), "drawn")
    monkeypatch.setattr(finetune, "REPLAY_IMAGES", 500)
    config = TrainConfig.for_finetune(str(path), str(store.path), epochs=1, test_subset=200)
    assert (config.preset, config.layers, config.parent) == (CUSTOM, CUSTOM_LAYERS, str(path))
    result = train(config)
    assert result.status == "completed" and result.personal.trained_on > 0
    assert [w.shape for w in result.model.get_weights()] == [w.shape for w in parent.model.get_weights()]


def test_a_model_without_its_layers_recorded_cannot_be_fine_tuned(custom_run, tmp_path):
    _, result, _ = custom_run
    path = tmp_path / "unrecorded.keras"
    save_model(result.model, path, config={"preset": CUSTOM}, test_accuracy=None, seconds=None)
    with pytest.raises(ValueError, match="cannot be fine-tuned here"):
        TrainConfig.for_finetune(str(path), str(tmp_path / "digits.sqlite"))


# ---------------------------------------------------------------- a real short run


def test_short_run_learns(trained):
    r = trained.result
    assert r.status == "completed" and r.usable
    assert r.config == trained.config
    assert r.test_accuracy > 0.90
    assert r.full_epochs == 1 and len(r.history) == 1
    point = r.history[0]
    assert isinstance(point, EpochPoint) and point.epoch == 1
    for value in (point.loss, point.accuracy, point.val_loss, point.val_accuracy):
        assert math.isfinite(value)
    assert 0 < point.loss < 2.3 and 0.5 < point.accuracy <= 1  # better than chance (ln 10 = 2.30)
    assert r.test_accuracy == point.val_accuracy and r.test_loss == point.val_loss  # the last epoch's check
    assert r.precision == "float32"
    assert r.seconds > 0
    assert "Completed" in r.message


def test_short_run_progress_is_filled(trained):
    s = trained.snapshot
    steps = math.ceil(trained.config.train_subset / trained.config.batch_size)  # 157
    assert s.status == "completed"
    assert (s.epoch, s.epochs, s.batch, s.batches_per_epoch) == (1, 1, steps, steps)
    assert len(s.batches) == steps
    assert [b.step for b in s.batches] == list(range(1, steps + 1))
    assert s.batches[-1].epoch_float == pytest.approx(1.0)
    assert all(math.isfinite(b.loss) and 0 <= b.accuracy <= 1 for b in s.batches)
    assert s.epochs_done == trained.result.history
    assert s.images_per_sec > 0
    assert s.fraction == 1.0
    assert s.eta_seconds is None
    assert s.elapsed_seconds > 0


def _stop_when(progress: TrainingProgress, stop: threading.Event, condition, record: dict) -> threading.Thread:
    """A watcher thread that sets `stop` once `condition(snapshot)` holds, then records the step count."""

    def watch():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            snap = progress.snapshot()
            if snap.status in ("completed", "stopped", "failed"):  # the run ended first
                return
            if condition(snap):
                stop.set()
                # read after setting: every batch recorded from now on saw the flag, except one in flight
                record["steps_at_stop"] = len(progress.snapshot().batches)
                return
            time.sleep(0.001)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_stop_within_one_batch_before_a_full_epoch():
    config = TrainConfig(train_subset=2000, test_subset=200, epochs=2)  # 63 batches per epoch
    progress, stop, record = TrainingProgress(), threading.Event(), {}
    watcher = _stop_when(progress, stop, lambda s: s.batch >= 3, record)
    result = train(config, progress, stop)
    watcher.join(5)
    assert "steps_at_stop" in record, "training ended before the stop was requested"
    snap = progress.snapshot()
    assert 3 <= len(snap.batches) <= record["steps_at_stop"] + 1
    assert len(snap.batches) < 63
    assert result.status == "stopped" and snap.status == "stopped"
    assert "Stopped" in result.message and "0 full epoch" in result.message
    assert result.full_epochs == 0 and result.history == ()
    assert result.test_accuracy is None and result.test_loss is None
    assert not result.usable


def test_stop_after_a_full_epoch_keeps_a_usable_model():
    config = TrainConfig(train_subset=1000, test_subset=200, epochs=3)  # 32 batches per epoch
    progress, stop, record = TrainingProgress(), threading.Event(), {}
    # once epoch 1 is done and validated, a few batches into the next one
    watcher = _stop_when(progress, stop, lambda s: len(s.epochs_done) >= 1 and s.epoch > len(s.epochs_done)
                         and s.batch >= 1, record)
    result = train(config, progress, stop)
    watcher.join(5)
    assert "steps_at_stop" in record
    assert len(progress.snapshot().batches) <= record["steps_at_stop"] + 1
    assert result.status == "stopped"
    assert 1 <= result.full_epochs < 3 and len(result.history) == result.full_epochs
    assert f"{result.full_epochs} full epoch" in result.message
    assert result.test_accuracy is not None and 0 <= result.test_accuracy <= 1  # evaluated after the stop
    assert math.isfinite(result.test_loss)
    assert result.usable


class _StopWhenSaid(TrainingProgress):
    """Progress that asks for a stop the moment the run says `words` (as a click landing then would)."""

    def __init__(self, stop: threading.Event, words: str) -> None:
        super().__init__()
        self.stop, self.words, self.said = stop, words, []

    def set_message(self, message: str) -> None:
        super().set_message(message)
        self.said.append(message)
        if self.words in message:
            self.stop.set()


def test_a_stop_while_the_run_prepares_skips_the_rest_and_trains_nothing():
    stop = threading.Event()
    progress = _StopWhenSaid(stop, "pen digits")
    result = train(TrainConfig(train_subset=1000, test_subset=200, epochs=1, pen_digits=True), progress, stop)
    snap = progress.snapshot()
    assert result.status == snap.status == "stopped"
    assert result.message == snap.message == "Stopped by request before training began."
    assert progress.said[-1].startswith("drawing") and "building the network" not in progress.said
    assert snap.batches == () and result.history == () and result.model is None and not result.usable


def _history_metrics(result):
    """Everything measured per epoch except wall time."""
    points = [dataclasses.replace(p, train_seconds=0.0) for p in result.history]
    return points, result.test_loss, result.test_accuracy


def test_same_seed_same_metrics_other_seed_other_metrics():
    config = TrainConfig(train_subset=1000, test_subset=300, epochs=2)
    a, b = train(config), train(config)
    c = train(dataclasses.replace(config, seed=config.seed + 1))
    assert _history_metrics(a) == _history_metrics(b)  # exact equality
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert _history_metrics(a) != _history_metrics(c)


def test_averaged_weights_are_the_ones_kept_and_measured(mnist):
    config = TrainConfig(train_subset=1000, test_subset=300, epochs=1)
    last, averaged = train(config), train(dataclasses.replace(config, average_weights=True))
    assert _history_metrics(averaged)[0] == _history_metrics(last)[0]  # the curve shows the weights as they train
    assert any(not np.array_equal(a, b) for a, b in zip(last.model.get_weights(), averaged.model.get_weights()))
    (_, _), (x_test, y_test) = mnist
    kept = averaged.model.evaluate(data.to_float_images(x_test[:300]), y_test[:300], verbose=0, return_dict=True)
    assert averaged.test_accuracy == pytest.approx(kept["accuracy"]) and averaged.usable  # read after averaging
    assert averaged.test_accuracy > 0.5  # a short run's average spans its own last steps, not its random start
    assert average_momentum(32) == pytest.approx(1 - 1 / 6) and average_momentum(10_000) == 1 - 1 / AVERAGE_STEPS


def test_exploding_loss_fails_cleanly():
    config = TrainConfig(train_subset=1000, test_subset=200, epochs=2, learning_rate=1e6)  # NaN by batch ~4
    progress = TrainingProgress()
    result = train(config, progress)
    assert result.status == "failed"
    assert "nan" in result.message.lower() or "inf" in result.message.lower()
    assert not result.usable
    assert result.test_accuracy is None and result.test_loss is None
    assert result.history == ()
    snap = progress.snapshot()
    assert snap.status == "failed"
    assert len(snap.batches) < 32  # halted at the bad batch, not after the epoch
    assert not math.isfinite(snap.batches[-1].loss)


def test_fast_preset_with_onecycle_and_auto_precision():
    config = TrainConfig.for_preset("fast", epochs=1, train_subset=1024, test_subset=256)
    result = train(config)
    assert result.status == "completed" and result.usable
    assert result.precision == resolve_precision("auto")  # mixed_bfloat16 on a bf16 CPU, else float32
    assert math.isfinite(result.test_loss)
    assert result.model.name == "fast"


# ---------------------------------------------------------------- learning-rate schedules


def test_constant_schedule_is_the_rate():
    assert learning_rate_schedule(TrainConfig(learning_rate=2e-3), steps_per_epoch=100) == 2e-3


def test_onecycle_schedule():
    lr, epochs, steps = 3e-3, 2, 100
    sched = learning_rate_schedule(TrainConfig(schedule="onecycle", learning_rate=lr, epochs=epochs), steps)
    assert isinstance(sched, keras.optimizers.schedules.LearningRateSchedule)
    values = np.array([float(sched(step)) for step in range(epochs * steps + 1)])
    assert values[0] == pytest.approx(lr / 25, rel=1e-5)
    assert values.max() == pytest.approx(lr, rel=1e-5)
    peak = int(values.argmax())
    assert 0 < peak < len(values) - 1
    assert np.all(np.diff(values[:peak + 1]) > 0)  # warm-up rises
    assert np.all(np.diff(values[peak:]) <= 1e-9)  # then decays
    assert values[-1] < lr / 100  # to about zero by the end of the run
    assert "onecycle" in SCHEDULES
