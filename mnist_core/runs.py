"""Finished runs on disk: each saved model, a log of runs, and which model is active."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import math
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from mnist_core import finetune
from mnist_core.jsonfields import NUMBER_OR_NULL, OBJECT, TEXT, Field, problem
from mnist_core.progress import EpochPoint
from mnist_core.store import (DEFAULT_MODEL, ModelFileError, ModelInfo, read_info, save_model, sidecar_path,
                              temp_files, utc_minute, write_atomically)
from mnist_core.training import TrainConfig, TrainResult

RUNS_ENV = "MNIST_STUDIO_RUNS"  # where trained models go; default: runs/ in the working directory
MIN_FREE_BYTES = 100_000_000  # a run does not start with less free disk than this: its model must fit


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
        return finetune.is_finetune(self.config)

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
    def from_json(cls, line: str | bytes) -> "RunRecord":
        """One log line back as a record; ValueError says what is wrong with a line that is not one."""
        d = json.loads(line)  # bad bytes and broken JSON are ValueErrors too
        wrong = problem(d, RECORD_FIELDS)
        if not wrong:
            wrong = next((f"epoch point {i}: {why}" for i, p in enumerate(d["history"], 1)
                          if (why := problem(p, POINT_FIELDS))), None)
        if wrong:
            raise ValueError(wrong)
        d = {k: v for k, v in d.items() if k in RECORD_FIELDS}  # a newer studio's extra fields are ignored
        d["history"] = tuple(EpochPoint(**{k: math.nan if p.get(k) is None else p[k] for k in POINT_FIELDS
                                           if k in p}) for p in d["history"])
        return cls(**d)


RECORD_FIELDS = {
    "finished_at": TEXT, "preset": TEXT, "status": TEXT, "message": TEXT, "config": OBJECT,
    "history": Field(list), "test_accuracy": NUMBER_OR_NULL, "test_loss": NUMBER_OR_NULL, "seconds": NUMBER_OR_NULL,
    "model": Field(str, nullable=True), "personal": Field(dict, nullable=True, required=False),
}
POINT_FIELDS = {f.name: Field((int, float), nullable=f.name != "epoch", required=f.name != "train_seconds")
                for f in dataclasses.fields(EpochPoint)}


class RunsFolderError(OSError):
    """The runs folder cannot take a new run's model and record."""


def _parse(line: bytes) -> RunRecord | str:
    """A log line as a run, or what is wrong with it."""
    try:
        return RunRecord.from_json(line)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
        return str(exc)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"


def _recovered(path: Path) -> RunRecord:
    """The record of a complete model found in the store that no run lists, from its sidecar."""
    try:
        info = read_info(path)
    except ModelFileError:  # the model is complete; only its description is not
        info = ModelInfo(path, "unknown", None, None, "unknown", "unknown", {})
    return RunRecord(
        finished_at=_now() if info.trained_at == "unknown" else info.trained_at, preset=info.preset, status="recovered",
        message=f"Recovered: {path.name} was saved, but the server stopped before its run was logged. It is "
                "listed here so that it can be made active or deleted.",
        config=info.config, history=(), test_accuracy=info.test_accuracy, test_loss=None, seconds=info.seconds,
        model=str(path.resolve()), personal=info.personal)


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

    @property
    def running_file(self) -> Path:
        """There while a run of this store trains: a server killed meanwhile leaves it for the next start."""
        return self.root / "running.json"

    def active_path(self) -> Path:
        return self._read_active()[0]

    def active_problem(self) -> str | None:
        """Why the model named active is not the one in use, in one line; None when it is (or none is named)."""
        return self._read_active()[1]

    def _read_active(self) -> tuple[Path, str | None]:
        fallback = "the shipped model is used instead."
        try:
            data = json.loads(self.active_file.read_bytes())
        except FileNotFoundError:
            return DEFAULT_MODEL, None
        except (OSError, ValueError) as exc:  # a folder, no permission, bad bytes, not JSON
            return DEFAULT_MODEL, f"{self.active_file} cannot be read ({exc}): {fallback}"
        wrong = problem(data, {"path": TEXT})
        if wrong:
            return DEFAULT_MODEL, f"{self.active_file} is not valid ({wrong}): {fallback}"
        path = Path(data["path"])
        if not path.is_file():
            return DEFAULT_MODEL, f"The active model {path} is gone: {fallback}"
        return path, None

    def set_active(self, path: str | os.PathLike) -> None:
        path = Path(path).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"Model file not found: {path}")
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            write_atomically(self.active_file, (json.dumps({"path": str(path)}) + "\n").encode())

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
            finished_at=_now(), preset=config.preset, status=status, message=message, config=config.to_dict(),
            history=() if result is None else result.history,
            test_accuracy=None if result is None else result.test_accuracy,
            test_loss=None if result is None else result.test_loss,
            seconds=None if result is None else result.seconds,
            model=None if saved is None else str(saved.path.resolve()),
            personal=None if result is None else personal_dict(result),
        )
        self._append(record)
        self.running_file.unlink(missing_ok=True)  # logged: no longer in flight
        return record

    def _append(self, record: RunRecord) -> None:
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

    def clear_log(self) -> int:
        """Forget the runs whose model is not on disk (never kept, deleted or pruned), and lines that are not runs.

        Runs with a model stay, so that no model is left unlisted. Returns how many lines were removed.
        """
        with self._lock:
            try:
                lines = self.log_file.read_bytes().splitlines()
            except FileNotFoundError:
                return 0
            kept = [line for line in lines
                    if isinstance(record := _parse(line), RunRecord) and record.model and Path(record.model).is_file()]
            write_atomically(self.log_file, b"".join(line + b"\n" for line in kept))
        return sum(1 for line in lines if line.strip()) - len(kept)

    def begin_run(self, config: TrainConfig) -> None:
        """Before a run starts: check that its model and its record can be written, then mark it as in flight.

        Raises RunsFolderError, saying why, when the folder cannot be written or the disk is nearly full: better
        than a run that trains to the end and then loses its model.
        """
        try:
            self.models_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.models_dir):  # gone when closed, even if this process dies
                pass
            free = shutil.disk_usage(self.models_dir).free
            marker = {"config": config.to_dict(), "started_at": _now()}
            if free >= MIN_FREE_BYTES:
                write_atomically(self.running_file, (json.dumps(marker) + "\n").encode())
        except OSError as exc:
            raise RunsFolderError(f"Training cannot start: the runs folder {self.root} cannot be written "
                                  f"({exc.strerror or exc}), so its model could not be kept.") from exc
        if free < MIN_FREE_BYTES:
            raise RunsFolderError(f"Training cannot start: only {free / 1e6:.0f} MB are free where models are "
                                  f"saved ({self.models_dir}); {MIN_FREE_BYTES / 1e6:.0f} MB are needed.")

    def tidy(self) -> list[str]:
        """At a server's start, before any run: put right what a killed server or training process left.

        Removes the store's temporary files (a save cut short), lists every complete model that no run lists (a
        kill between saving and logging) as a recovered run, and logs a run that was training when its server
        died as interrupted. Nothing else is deleted. Returns what was done, one sentence each.
        """
        done = []
        temps = temp_files(self.models_dir) + temp_files(self.root)
        for path in temps:
            path.unlink(missing_ok=True)
        if temps:
            done.append(f"Removed {_count(len(temps), 'temporary file')} left by a save that was cut short.")
        records, _ = self.read_log()
        listed = {Path(r.model).name for r in records if r.model}
        orphans = [p for p in sorted(self.models_dir.glob("*.keras")) if p.name not in listed]
        in_flight = self._read_marker()
        adopted = []
        for path in orphans:
            record = _recovered(path)
            if in_flight is not None and not record.config:  # killed between the model and its sidecar: the run's
                record = dataclasses.replace(record, config=in_flight[0], preset=str(in_flight[0].get("preset", "?")))
            self._append(record)
            adopted.append(record)
        if orphans:
            done.append(f"Listed {_count(len(orphans), 'saved model')} whose run was not logged (the server "
                        "stopped while it was saved).")
        if in_flight is not None:
            config, started = in_flight
            if not any(r.config == config for r in adopted):  # else that model is the run's record
                self._append(RunRecord(
                    finished_at=_now(), preset=str(config.get("preset", "?")), status="interrupted",
                    message=f"Interrupted: the server stopped while this run trained (started {started}). "
                            "The active model is unchanged.",
                    config=config, history=(), test_accuracy=None, test_loss=None, seconds=None, model=None))
                done.append("Logged the run that was training when the server stopped as interrupted.")
        self.running_file.unlink(missing_ok=True)
        return done

    def _read_marker(self) -> tuple[dict, str] | None:
        """(config, start time) of the run marked in flight, or None when none is."""
        try:
            data = json.loads(self.running_file.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):  # the mark itself is damaged: the run's recipe is unknown
            return {}, "at an unknown time"
        if problem(data, {"config": OBJECT, "started_at": TEXT}):
            return {}, "at an unknown time"
        return data["config"], f"{utc_minute(data['started_at'])} UTC"

    def history(self) -> list[RunRecord]:
        """Every logged run, newest first; lines that are not a run are skipped (read_log says which)."""
        return self.read_log()[0]

    def read_log(self) -> tuple[list[RunRecord], str | None]:
        """(every logged run, newest first; what is wrong with the log in one line, or None).

        Nothing in the file stops the reading: a line that is not a run (a crash mid-write, bad bytes, a hand edit)
        is skipped and counted, and a log that cannot be read at all reads as empty. The file is never changed.
        """
        try:
            data = self.log_file.read_bytes()
        except FileNotFoundError:
            return [], None
        except OSError as exc:  # a folder, no permission
            return [], f"The run log {self.log_file} cannot be read ({exc.strerror or exc}): no runs are listed."
        records, bad = [], []
        for number, line in enumerate(data.splitlines(), 1):
            if line.strip():
                record = _parse(line)
                if isinstance(record, RunRecord):
                    records.append(record)
                else:
                    bad.append(f"line {number}: {record[:120]}")
        note = None
        if bad:
            note = (f"{len(bad)} line{'s' if len(bad) > 1 else ''} of the run log {self.log_file} "
                    f"{'are' if len(bad) > 1 else 'is'} not a run and skipped ({bad[0]}"
                    f"{'; …' if len(bad) > 1 else ''}).")
        return records[::-1], note
