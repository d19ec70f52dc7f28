"""GPU set-up, the tutorial's steps as one call, plus the distribution strategy for training."""

from __future__ import annotations

from dataclasses import dataclass, field

import tensorflow as tf


@dataclass(frozen=True)
class DeviceInfo:
    gpus_seen: tuple[str, ...]  # physical GPUs TensorFlow found
    device_used: str  # the GPU made visible, or "CPU"
    memory_growth: bool | None  # None when there is no GPU
    notes: tuple[str, ...] = field(default=())  # what could not be changed, and why

    @property
    def cpu_only(self) -> bool:
        return not self.gpus_seen

    def describe(self) -> str:
        if self.cpu_only:
            return "CPU only (no GPU found)"
        growth = "on" if self.memory_growth else "off"
        return f"GPU {self.device_used} of {len(self.gpus_seen)} found, memory growth {growth}"


def configure_gpu(index: int = 0) -> DeviceInfo:
    """List GPUs, choose one, enable memory growth, make only it visible; report what happened.

    Safe to call again and after TensorFlow has initialised: settings that can no longer change
    are reported in `notes` instead of raising.
    """
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return DeviceInfo(gpus_seen=(), device_used="CPU", memory_growth=None)
    chosen = gpus[min(index, len(gpus) - 1)]
    notes = []
    try:
        tf.config.experimental.set_memory_growth(chosen, True)  # allocate as needed, not all at once
    except (RuntimeError, ValueError) as exc:
        notes.append(f"memory growth unchanged: {exc}")
    try:
        tf.config.set_visible_devices(chosen, "GPU")
    except (RuntimeError, ValueError) as exc:
        notes.append(f"visible devices unchanged: {exc}")
    return DeviceInfo(
        gpus_seen=tuple(g.name for g in gpus),
        device_used=chosen.name,
        memory_growth=bool(tf.config.experimental.get_memory_growth(chosen)),
        notes=tuple(notes),
    )


def distribution_strategy() -> tf.distribute.Strategy:
    """MirroredStrategy across several visible GPUs, the default strategy otherwise."""
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
