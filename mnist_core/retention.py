"""Which saved models stay on disk: the active one, the pinned ones and the newest N (a setting).

Older ones are deleted when a new run is kept; their runs stay in the log, marked as pruned.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mnist_core.runs import RunStore
from mnist_core.store import write_atomically

KEEP_ENV = "MNIST_STUDIO_KEEP_MODELS"  # how many of the newest models to keep besides the active and pinned ones
DEFAULT_KEEP = 20


def keep_setting() -> tuple[int, str | None]:
    """(the number of newest models kept, what is wrong with $MNIST_STUDIO_KEEP_MODELS or None)."""
    text = os.environ.get(KEEP_ENV, "").strip()
    if not text:
        return DEFAULT_KEEP, None
    try:
        keep = int(text)
    except ValueError:
        keep = 0
    if keep < 1:
        return DEFAULT_KEEP, f"{KEEP_ENV}={text!r} is not a whole number of at least 1: the newest {DEFAULT_KEEP} " \
                             "models are kept."
    return keep, None


class Retention:
    """Pins and pruning of one RunStore's models; the names are kept in two small JSON files beside the log."""

    def __init__(self, runs: RunStore, keep: int) -> None:
        self.runs, self.keep = runs, keep

    @property
    def pins_file(self) -> Path:
        return self.runs.root / "pinned.json"

    @property
    def pruned_file(self) -> Path:
        return self.runs.root / "pruned.json"

    def pinned(self) -> set[str]:
        return _read_names(self.pins_file) or set()

    def pruned(self) -> set[str]:
        return _read_names(self.pruned_file) or set()

    def pin(self, path: str | os.PathLike, on: bool) -> None:
        """Pin a model (never pruned) or unpin it."""
        name = Path(path).name
        names = self.pinned() | {name} if on else self.pinned() - {name}
        _write_names(self.pins_file, names)

    def prune(self) -> list[str]:
        """Delete the models beyond the newest `keep`, except the active and pinned ones; returns their names.

        Model files are named by the time they were saved, so the newest sort last.
        """
        pinned = _read_names(self.pins_file)
        if pinned is None:  # which models are pinned is unknown: delete none
            return []
        models = sorted(self.runs.models_dir.glob("*.keras"), key=lambda p: p.name, reverse=True)
        active = self.runs.active_path().resolve()
        deleted = []
        for path in models[self.keep:]:
            if path.resolve() == active or path.name in pinned:
                continue
            try:
                self.runs.delete_model(path)
            except (ValueError, OSError):  # made active by another session meanwhile, or read-only: kept
                continue
            deleted.append(path.name)
        if deleted:
            _write_names(self.pruned_file, self.pruned() | set(deleted))
        return deleted


def _read_names(path: Path) -> set[str] | None:
    """The names in a JSON list file: none when it is missing, None when it is damaged."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return set()
    except (OSError, ValueError):
        return None
    if not isinstance(data, list) or not all(isinstance(n, str) for n in data):
        return None
    return set(data)


def _write_names(path: Path, names: set[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, (json.dumps(sorted(names)) + "\n").encode())
