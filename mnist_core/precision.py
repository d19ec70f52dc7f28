"""Choose the numeric precision per machine: mixed precision only where the hardware gains."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

CHOICES = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
_BF16_CPU_FLAGS = {"amx_bf16", "avx512_bf16"}  # CPUs with native bfloat16 matrix instructions


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve_precision(requested: str) -> str:
    """"auto" -> mixed_float16 on a GPU, mixed_bfloat16 on a bf16-capable CPU, else float32."""
    if requested not in CHOICES:
        raise ValueError(f"Unknown precision {requested!r}; choose one of {', '.join(CHOICES)}")
    if requested != "auto":
        return requested
    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_flags() & _BF16_CPU_FLAGS else "float32"
