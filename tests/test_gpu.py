"""mnist_core.gpu and mnist_core.precision on this CPU-only machine."""

from __future__ import annotations

import pytest
import tensorflow as tf

from mnist_core import precision
from mnist_core.gpu import DeviceInfo, configure_gpu, distribution_strategy
from mnist_core.precision import CHOICES, cpu_flags, resolve_precision

HAS_GPU = bool(tf.config.list_physical_devices("GPU"))


def _check_cpu_only(info: DeviceInfo) -> None:
    assert info.cpu_only
    assert info.gpus_seen == () and info.device_used == "CPU" and info.memory_growth is None
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
    assert not info.cpu_only and info.device_used in info.gpus_seen
    assert info.describe().startswith("GPU ")
    again = configure_gpu()  # again, after TensorFlow has initialised: what can't change is noted, not raised
    assert again.gpus_seen == info.gpus_seen and again.device_used == info.device_used
    assert float(tf.reduce_sum(tf.constant([1.0, 2.0]))) == 3.0


def test_describe_with_gpus():
    info = DeviceInfo(gpus_seen=("/physical_device:GPU:0", "/physical_device:GPU:1"),
                      device_used="/physical_device:GPU:1", memory_growth=True)
    assert not info.cpu_only
    assert info.describe() == "GPU /physical_device:GPU:1 of 2 found, memory growth on"
    off = DeviceInfo(gpus_seen=("g0",), device_used="g0", memory_growth=False)
    assert off.describe().endswith("memory growth off")


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
