"""GPU set-up, the tutorial's steps as one call, plus the distribution strategy for training."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import tensorflow as tf


@dataclass(frozen=True)
class DeviceInfo:
    gpus_seen: tuple[str, ...]  # physical GPUs TensorFlow found
    gpus_used: tuple[str, ...]  # the GPUs left visible: training mirrors across them when there are several
    memory_growth: bool | None  # on for every GPU used; None when no GPU is used
    notes: tuple[str, ...] = field(default=())  # what could not be changed, and why

    @property
    def cpu_only(self) -> bool:
        return not self.gpus_used

    def describe(self) -> str:
        if not self.gpus_seen:
            return "CPU only (no GPU found)"
        if self.cpu_only:
            return f"CPU only ({len(self.gpus_seen)} GPU(s) found, none visible)"
        growth = "on" if self.memory_growth else "off"
        if len(self.gpus_used) == 1:
            return f"GPU {self.gpus_used[0]} of {len(self.gpus_seen)} found, memory growth {growth}"
        return (f"{len(self.gpus_used)} GPUs of {len(self.gpus_seen)} found, training mirrored across them, "
                f"memory growth {growth}")


def configure_gpu(index: int | None = None) -> DeviceInfo:
    """List GPUs, enable memory growth on the ones used, report what happened.

    `index` None keeps every GPU visible, so training mirrors across all of them (distribution_strategy);
    an index makes only that GPU visible (the tutorial's step). Safe to call again and after TensorFlow has
    initialised: settings that can no longer change are reported in `notes` instead of raising.
    """
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return DeviceInfo(gpus_seen=(), gpus_used=(), memory_growth=None)
    wanted = gpus if index is None else [gpus[min(index, len(gpus) - 1)]]
    notes = []
    for gpu in wanted:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)  # allocate as needed, not all at once
        except (RuntimeError, ValueError) as exc:
            notes.append(f"memory growth on {gpu.name} unchanged: {exc}")
    if index is not None:
        try:
            tf.config.set_visible_devices(wanted, "GPU")
        except (RuntimeError, ValueError) as exc:
            notes.append(f"visible devices unchanged: {exc}")
    used = tf.config.get_visible_devices("GPU")  # what TensorFlow will really use, whatever the calls above did
    return DeviceInfo(
        gpus_seen=tuple(g.name for g in gpus),
        gpus_used=tuple(g.name for g in used),
        memory_growth=all(tf.config.experimental.get_memory_growth(g) for g in used) if used else None,
        notes=tuple(notes),
    )


def distribution_strategy(devices: Sequence[str] | None = None) -> tf.distribute.Strategy:
    """MirroredStrategy across several devices, the default strategy for one or none.

    `devices` are logical device names; None means every logical GPU TensorFlow will use.
    """
    if devices is None:
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    if len(devices) > 1:
        return tf.distribute.MirroredStrategy(list(devices))
    return tf.distribute.get_strategy()
