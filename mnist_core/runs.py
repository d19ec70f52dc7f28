"""Finished runs on disk: each saved model, a log of runs, and which model is active."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from mnist_core.progress import EpochPoint
from mnist_core.store import DEFAULT_MODEL, ModelInfo, read_info, save_model, sidecar_path
from mnist_core.training import TrainConfig, TrainResult

RUNS_ENV = "MNIST_STUDIO_RUNS"  # where trained models go; default: runs/ in the working directory


@dataclass(frozen=True)
class RunRecord:
    """One finished training run, as logged in runs.jsonl (one JSON object a line)."""

    finished_at: str  # ISO 8601, UTC
    preset: str
    status: str  # "completed" | "stopped" | "failed"
    message: str
    config: dict  # TrainConfig.to_dict()
    history: tuple[EpochPoint, ...]  # one point per full epoch
    test_accuracy: float | None
    test_loss: float | None
    seconds: float | None
    model: str | None  # the saved model file; None when the run was not kept
    personal: dict | None = None  # finetune.PersonalReport as a dict, for runs that learned the user's digits

    @property
    def is_finetune(self) -> bool:
        return self.config.get("parent") is not None

    @property
    def full_epochs(self) -> int:
        return len(self.history)

    def metrics_csv(self) -> str:
        """The per-epoch metrics, one row per full epoch, with a header."""
        fields = [f.name for f in dataclasses.fields(EpochPoint)]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(fields)
        for point in self.history:
            writer.writerow(["" if isinstance(v, float) and math.isnan(v) else v
                             for v in dataclasses.astuple(point)])
        return out.getvalue()

    def to_json(self) -> str:
        """Strict JSON (a missing metric, NaN in Python, is null) on one line."""
        d = dataclasses.asdict(self)
        d["history"] = [{k: None if isinstance(v, float) and math.isnan(v) else v
                         for k, v in dataclasses.asdict(p).items()} for p in self.history]
        return json.dumps(d, allow_nan=False)

    @classmethod
    def from_json(cls, line: str) -> "RunRecord":
        d = json.loads(line)
        d["history"] = tuple(EpochPoint(**{k: math.nan if v is None else v for k, v in p.items()})
                             for p in d["history"])
        return cls(**d)


def personal_dict(result: TrainResult) -> dict | None:
    return None if result.personal is None else dataclasses.asdict(result.personal)


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

    @property
    def log_file(self) -> Path:
        return self.root / "runs.jsonl"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

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

    def delete_model(self, path: str | os.PathLike) -> None:
        """Delete a model this store saved (its .keras file and sidecar); its run stays in the log.

        The active model and files outside the store's models/ folder are refused.
        """
        path = Path(path).resolve()
        if path.parent != self.models_dir.resolve():
            raise ValueError(f"Only models trained in this studio can be deleted, not {path}")
        with self._lock:  # no set_active() in between the check and the deletion
            if path == self.active_path().resolve():
                raise ValueError("This is the active model: make another one active before deleting it.")
            path.unlink(missing_ok=True)
            sidecar_path(path).unlink(missing_ok=True)

    def save_run(self, result: TrainResult) -> ModelInfo:
        """Save a usable result as a new model file and make it active."""
        if not result.usable:
            raise ValueError(f"Refusing to keep this run: {result.message}")
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
        kind = "-finetune" if result.config.is_finetune else ""
        path = self.models_dir / f"{stamp}-{result.config.preset}{kind}.keras"
        info = save_model(result.model, path, config=result.config.to_dict(), test_accuracy=result.test_accuracy,
                          seconds=result.seconds, personal=personal_dict(result))
        self.set_active(path)
        return info

    def record(self, config: TrainConfig, result: TrainResult | None, status: str, message: str,
               saved: ModelInfo | None) -> RunRecord:
        """Append a finished run to the log; `result` is None when training raised."""
        record = RunRecord(
            finished_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            preset=config.preset, status=status, message=message, config=config.to_dict(),
            history=() if result is None else result.history,
            test_accuracy=None if result is None else result.test_accuracy,
            test_loss=None if result is None else result.test_loss,
            seconds=None if result is None else result.seconds,
            model=None if saved is None else str(saved.path.resolve()),
            personal=None if result is None else personal_dict(result),
        )
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            with self.log_file.open("ab+") as f:
                f.seek(0, os.SEEK_END)
                if f.tell() > 0:
                    f.seek(-1, os.SEEK_END)
                    torn = f.read(1) != b"\n"  # a crash mid-line: start afresh on the next one
                else:
                    torn = False
                f.write(("\n" if torn else "").encode() + record.to_json().encode() + b"\n")
        return record

    def history(self) -> list[RunRecord]:
        """Every logged run, newest first; unreadable lines (a crash mid-write) are skipped."""
        try:
            lines = self.log_file.read_text().splitlines()
        except FileNotFoundError:
            return []
        records = []
        for line in lines:
            try:
                records.append(RunRecord.from_json(line))
            except (ValueError, TypeError, KeyError):
                continue
        return records[::-1]
