"""Finished runs on disk: each saved model, a log of runs, and which model is active."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path

from mnist_core.store import DEFAULT_MODEL, ModelInfo, read_info, save_model
from mnist_core.training import TrainResult

RUNS_ENV = "MNIST_STUDIO_RUNS"  # where trained models go; default: runs/ in the working directory


class RunStore:
    """A folder of trained models plus `active.json`, naming the model every session uses.

    With no active.json (or one naming a vanished file) the shipped default model is active.
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root or os.environ.get(RUNS_ENV, "runs"))
        self._lock = threading.Lock()

    @property
    def active_file(self) -> Path:
        return self.root / "active.json"

    def active_path(self) -> Path:
        try:
            path = Path(json.loads(self.active_file.read_text())["path"])
        except (OSError, ValueError, KeyError, TypeError):
            return DEFAULT_MODEL
        return path if path.is_file() else DEFAULT_MODEL

    def active_info(self) -> ModelInfo:
        return read_info(self.active_path())

    def set_active(self, path: str | os.PathLike) -> None:
        path = Path(path).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"Model file not found: {path}")
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = self.active_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"path": str(path)}) + "\n")
            os.replace(tmp, self.active_file)  # readers see the old or the new pointer, never half

    def save_run(self, result: TrainResult) -> ModelInfo:
        """Save a usable result as a new model file and make it active."""
        if not result.usable:
            raise ValueError(f"Refusing to keep this run: {result.message}")
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
        path = self.root / "models" / f"{stamp}-{result.config.preset}.keras"
        info = save_model(result.model, path, config=result.config.to_dict(),
                          test_accuracy=result.test_accuracy, seconds=result.seconds)
        self.set_active(path)
        return info

    def saved_models(self) -> list[ModelInfo]:
        """Every model saved here, newest first."""
        folder = self.root / "models"
        return [read_info(p) for p in sorted(folder.glob("*.keras"), reverse=True)] if folder.is_dir() else []
