"""Model storage: atomic .keras files with a JSON sidecar of how the model was made."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from mnist_core import finetune, pendigits
from mnist_core.jsonfields import Field, problem

DEFAULT_MODEL = Path(__file__).parent / "assets" / "default.keras"  # shipped, trained by the CLI
UNKNOWN_DATA = "unknown data"  # what a model learned from, when its sidecar does not say
TEMP_MARK = ".tmp"  # in the names of files being written: ".<stem>.<random>.tmp.keras"
SIDECAR_FIELDS = {  # all optional: a model saved elsewhere may have no sidecar, or an older one
    "preset": Field(str, required=False), "test_accuracy": Field((int, float), nullable=True, required=False),
    "seconds": Field((int, float), nullable=True, required=False), "trained_at": Field(str, required=False),
    "tensorflow": Field(str, required=False), "config": Field(dict, required=False),
    "personal": Field(dict, nullable=True, required=False), "trained_on": Field(str, required=False),
}


class ModelFileError(RuntimeError):
    """A model file is missing, corrupt or not a Keras model."""


@dataclass(frozen=True)
class ModelInfo:
    """The sidecar: what a stored model is and how it was made."""

    path: Path
    preset: str
    test_accuracy: float | None
    seconds: float | None
    trained_at: str  # ISO 8601, UTC
    tensorflow: str
    config: dict
    personal: dict | None = None  # finetune.PersonalReport as a dict, for runs that learned the user's digits
    trained_on: str = "MNIST"  # the data it learned from, in words (pendigits.describe; UNKNOWN_DATA)

    @property
    def may_know_pen_writers(self) -> bool:
        """It trained on pen digits, or nobody knows what it trained on: never score it on pen writers."""
        return "pen digits" in self.trained_on or self.trained_on == UNKNOWN_DATA

    @property
    def is_finetune(self) -> bool:
        return finetune.is_finetune(self.config)

    @property
    def label(self) -> str:
        acc = "?" if self.test_accuracy is None else f"{self.test_accuracy:.2%}"
        return f"{self.preset} · {acc} test accuracy · trained {utc_minute(self.trained_at)} UTC"


def utc_minute(iso: str) -> str:
    """An ISO 8601 UTC time as people read it, to the minute: "2026-11-28 03:30"."""
    return iso[:16].replace("T", " ")


def keras_path(path: str | os.PathLike) -> Path:
    """`path` as a Path, if it names a .keras file; Keras 3 saves nothing else."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"Model files end in .keras: {path}")
    return path


def sidecar_path(model_path: str | os.PathLike) -> Path:
    return Path(model_path).with_suffix(".json")


def save_model(model: keras.Model, path: str | os.PathLike, *, config: dict, test_accuracy: float | None,
               seconds: float | None, personal: dict | None = None) -> ModelInfo:
    """Write model and sidecar atomically: temporary files in the same folder, then rename.

    If anything fails, the files already at `path` stay as they were.
    """
    path = keras_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = ModelInfo(
        path=path,
        preset=config.get("preset", "?"),
        test_accuracy=test_accuracy,
        seconds=seconds,
        trained_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        tensorflow=tf.__version__,
        config=config,
        personal=personal,
        trained_on=_trained_on(config),
    )
    tmp_model = _temp_name(path)
    tmp_sidecar = _temp_name(sidecar_path(path))
    try:
        model.save(tmp_model)
        tmp_sidecar.write_text(json.dumps(_sidecar_dict(info), indent=2) + "\n")
        os.replace(tmp_model, path)  # atomic on one file system
        os.replace(tmp_sidecar, sidecar_path(path))
    finally:
        for leftover in (tmp_model, tmp_sidecar):
            leftover.unlink(missing_ok=True)
    return info


def _temp_name(path: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f"{TEMP_MARK}{path.suffix}", dir=path.parent)
    os.close(fd)
    os.chmod(name, 0o644)  # mkstemp's 0600 would survive the rename
    return Path(name)


def write_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Replace the file at `path` with `data`: readers see the old or the new file, never half of one, and a
    kill midway leaves only a temporary file that temp_files() finds."""
    tmp = _temp_name(Path(path))
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def temp_files(folder: str | os.PathLike) -> list[Path]:
    """The temporary files save_model and write_atomically leave in `folder` when their process is killed."""
    return sorted(p for p in Path(folder).glob(f".*{TEMP_MARK}.*") if p.is_file())


def _sidecar_dict(info: ModelInfo) -> dict:
    return {
        "preset": info.preset,
        "test_accuracy": info.test_accuracy,
        "seconds": info.seconds,
        "trained_at": info.trained_at,
        "tensorflow": info.tensorflow,
        "config": info.config,
        "personal": info.personal,
        "trained_on": info.trained_on,
    }


def load_model(path: str | os.PathLike | None = None) -> keras.Model:
    """Load a .keras file with safe_mode on; None loads the shipped default model."""
    path = Path(path) if path is not None else DEFAULT_MODEL
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a model file (.keras)")
    if not path.is_file():
        raise ModelFileError(f"Model file not found: {path}")
    if path.suffix != ".keras":
        raise ModelFileError(f"{path} is not a Keras model file: model files end in .keras")
    if not zipfile.is_zipfile(path):  # Keras would call it "File not found"
        raise ModelFileError(f"Model file {path} is damaged: a .keras file is a zip archive, and this one is "
                             "truncated or something else")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # h5py, JSON and Keras config errors all mean "not a usable model"
        raise ModelFileError(f"Model file {path} is corrupt or not a Keras model: {exc}") from exc


def read_info(path: str | os.PathLike | None = None) -> ModelInfo:
    """The sidecar of a model file; a model without one is described as unknown."""
    path = Path(path) if path is not None else DEFAULT_MODEL
    side = sidecar_path(path)
    try:
        d = json.loads(side.read_bytes())
    except FileNotFoundError:
        d = {}
    except (OSError, ValueError) as exc:  # a folder, no permission, bad bytes, not JSON
        raise ModelFileError(f"Model sidecar {side} is unreadable: {exc}") from exc
    wrong = problem(d, SIDECAR_FIELDS)
    if wrong:
        raise ModelFileError(f"Model sidecar {side} is not valid: {wrong}")
    return ModelInfo(
        path=path,
        preset=d.get("preset", "unknown"),
        test_accuracy=d.get("test_accuracy"),
        seconds=d.get("seconds"),
        trained_at=d.get("trained_at", "unknown"),
        tensorflow=d.get("tensorflow", "unknown"),
        config=d.get("config", {}),
        personal=d.get("personal"),
        trained_on=d.get("trained_on") or _trained_on(d.get("config", {})),
    )


def _trained_on(config: dict) -> str:
    """What a run with this config learned from, in words (sidecars older than the field say it through the
    config); a fine-tune learned what its parent did, and the user's digits."""
    mine = " + your digits" if config.get("my_digits") else ""
    if config.get("parent"):
        try:
            return read_info(config["parent"]).trained_on + mine
        except ModelFileError:
            return UNKNOWN_DATA
    if not config:
        return UNKNOWN_DATA
    try:
        return pendigits.describe(bool(config.get("pen_digits")), tuple(config.get("pen_skip_writers") or ()),
                                  config.get("train_subset")) + mine
    except (TypeError, ValueError):  # a hand-edited config of the wrong types
        return UNKNOWN_DATA
