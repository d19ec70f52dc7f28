"""mnist_core.gpu and mnist_core.precision on this CPU-only machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from mnist_core import precision
from mnist_core.gpu import DeviceInfo, configure_gpu, distribution_strategy
from mnist_core.precision import CHOICES, cpu_flags, resolve_precision

HAS_GPU = bool(tf.config.list_physical_devices("GPU"))
REPO = Path(__file__).resolve().parents[1]


def _check_cpu_only(info: DeviceInfo) -> None:
    assert info.cpu_only
    assert info.gpus_seen == () and info.gpus_used == () and info.memory_growth is None
    assert info.notes == ()
    assert info.describe().startswith("CPU only")


def test_configure_gpu_twice_and_after_tensorflow_started():
    if HAS_GPU:  # no skips: on a GPU machine the GPU branch below is the test
        _check_gpu_machine()
        return
    _check_cpu_only(configure_gpu())
    first = configure_gpu()
    assert float(tf.reduce_sum(tf.constant([1.0, 2.0]) * 2)) == 6.0  # TensorFlow is initialised now
    second = configure_gpu()
    _check_cpu_only(second)
    assert second == first
    assert float(tf.reduce_sum(tf.constant([1.0, 2.0]))) == 3.0  # and still works
    _check_cpu_only(configure_gpu(index=3))  # any index is fine without GPUs


def _check_gpu_machine():
    info = configure_gpu()
    assert not info.cpu_only and set(info.gpus_used) <= set(info.gpus_seen)
    assert info.describe().startswith(("GPU ", f"{len(info.gpus_used)} GPUs "))
    again = configure_gpu(index=0)  # after TensorFlow has initialised: what can't change is noted, not raised
    assert again.gpus_seen == info.gpus_seen and again.gpus_used == info.gpus_used
    assert float(tf.reduce_sum(tf.constant([1.0, 2.0]))) == 3.0


def test_describe_with_gpus():
    both = ("/physical_device:GPU:0", "/physical_device:GPU:1")
    info = DeviceInfo(gpus_seen=both, gpus_used=both[1:], memory_growth=True)
    assert not info.cpu_only
    assert info.describe() == "GPU /physical_device:GPU:1 of 2 found, memory growth on"
    mirrored = DeviceInfo(gpus_seen=both, gpus_used=both, memory_growth=True)
    assert mirrored.describe() == "2 GPUs of 2 found, training mirrored across them, memory growth on"
    off = DeviceInfo(gpus_seen=("g0",), gpus_used=("g0",), memory_growth=False)
    assert off.describe().endswith("memory growth off")
    hidden = DeviceInfo(gpus_seen=both, gpus_used=(), memory_growth=None)
    assert hidden.cpu_only and hidden.describe() == "CPU only (2 GPU(s) found, none visible)"


def test_distribution_strategy_is_the_default_one_for_one_device():
    strategy = distribution_strategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        assert isinstance(strategy, tf.distribute.MirroredStrategy)
        return
    assert not isinstance(strategy, tf.distribute.MirroredStrategy)
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1
    with strategy.scope():
        v = tf.Variable(1.0)
    assert isinstance(v, tf.Variable) and float(v) == 1.0


# Splits the first GPU (else the CPU) in two logical devices: only possible before TensorFlow initialises,
# hence a fresh process. Then the GPU set-up, the strategies, and one training step of the seed network.
TWO_DEVICES = """
import json, keras, numpy as np, tensorflow as tf
from mnist_core.gpu import configure_gpu, distribution_strategy
from mnist_core.model import build_model, compile_model
kind = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
halves = [tf.config.LogicalDeviceConfiguration(memory_limit=1024 if kind == "GPU" else None)] * 2
tf.config.set_logical_device_configuration(tf.config.list_physical_devices(kind)[0], halves)
info = configure_gpu()
default = distribution_strategy()
explicit = distribution_strategy([d.name for d in tf.config.list_logical_devices(kind)])
total = explicit.reduce("SUM", explicit.run(lambda: tf.constant(1.0)), axis=None)
with explicit.scope():
    model = build_model("seed")
    compile_model(model, keras.optimizers.Adam(1e-3))
x, y = np.random.default_rng(0).random((64, 28, 28, 1), np.float32), np.arange(64) % 10
loss = model.fit(x, y, batch_size=32, epochs=1, verbose=0).history["loss"][-1]
print(json.dumps({"kind": kind, "describe": info.describe(), "default": type(default).__name__,
                  "default_replicas": default.num_replicas_in_sync, "explicit": type(explicit).__name__,
                  "explicit_replicas": explicit.num_replicas_in_sync, "total": float(total), "loss": float(loss)}))
"""


def test_mirrored_strategy_across_two_logical_devices(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-c", TWO_DEVICES], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert got["explicit"] == "MirroredStrategy" and got["explicit_replicas"] == 2
    assert got["total"] == 2.0  # one value from each replica
    assert 0 < got["loss"] < 10  # Keras trained the network across both
    if got["kind"] == "GPU":  # configure_gpu kept the GPU, so training (the default strategy) mirrors
        assert got["default"] == "MirroredStrategy" and got["default_replicas"] == 2, got
        assert got["describe"].startswith("GPU "), got
    else:  # pieces of one CPU are not worth mirroring: only GPUs are, unless named
        assert got["default_replicas"] == 1 and got["default"] != "MirroredStrategy", got
        assert got["describe"] == "CPU only (no GPU found)"


# ---------------------------------------------------------------- precision


@pytest.mark.parametrize("choice", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_explicit_precision_is_kept(choice):
    assert resolve_precision(choice) == choice


def test_auto_precision_on_this_machine():
    if HAS_GPU:
        expected = "mixed_float16"
    else:
        expected = "mixed_bfloat16" if cpu_flags() & {"amx_bf16", "avx512_bf16"} else "float32"
    assert resolve_precision("auto") == expected


def test_auto_precision_follows_cpu_flags(monkeypatch):
    if HAS_GPU:  # a GPU decides before the CPU flags are read
        assert resolve_precision("auto") == "mixed_float16"
        return
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"sse2", "avx2", "amx_bf16"})
    assert resolve_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"sse2", "avx512_bf16"})
    assert resolve_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"sse2", "avx2", "avx512f"})
    assert resolve_precision("auto") == "float32"


@pytest.mark.parametrize("bad", ["float64", "bfloat16", "", "AUTO"])
def test_unknown_precision(bad):
    with pytest.raises(ValueError) as err:
        resolve_precision(bad)
    assert repr(bad) in str(err.value)
    assert all(choice in str(err.value) for choice in CHOICES)


def test_cpu_flags_parses_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\n"
        "vendor_id\t: GenuineIntel\n"
        "flags\t\t: fpu vme sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
        "bugs\t\t: spectre_v1\n\n"
        "processor\t: 1\n"
        "flags\t\t: fpu\n"
    )
    assert cpu_flags(cpuinfo) == {"fpu", "vme", "sse2", "avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}


def test_cpu_flags_without_flags_or_file(tmp_path):
    arm = tmp_path / "cpuinfo"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd evtstrm\n")
    assert cpu_flags(arm) == set()
    assert cpu_flags(tmp_path / "missing") == set()
