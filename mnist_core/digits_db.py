"""The user's own labelled digits, kept in an embedded SQLite database to fine-tune the model on.

One file (DB_NAME in the studio's runs folder) with one table, `digits`. Every call opens its own
short-lived connection, so one DigitStore may serve many threads, and many processes may open the
same file: writes take the write lock first (BEGIN IMMEDIATE) and wait up to BUSY_TIMEOUT_S for it.
The WAL journal with synchronous=NORMAL keeps the file intact when a process is killed mid-write;
only its uncommitted transaction is lost. All of the studio's SQL lives in this module.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import itertools
import numbers
import os
import sqlite3
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_core.data import from_float_images
from mnist_core.preprocess import SIZE  # the side of the image the model reads, pixels

DB_NAME = "digits.sqlite"  # the file's name inside the studio's runs folder
SOURCES = ("drawn", "uploaded", "imported")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BUSY_TIMEOUT_S = 30.0  # how long a call waits for another connection's write lock before failing
# The database holds at most MAX_DIGITS digits (a class of 30 with 300 each): the My digits tab pages through them in
# SQL, and an export (about 12 KB a drawn digit: 120 MB at the cap) and a fine-tune stay within the server's means.
MAX_DIGITS = 10_000
# An import lists at most this many digits in its labels.csv: as many as the database holds, so that an export always
# imports into an empty database. Its labels.csv may unpack to at most LABELS_ROW_BYTES a digit (an export's rows
# are about 120 bytes), and everything it reads to at most MAX_IMPORT_BYTES: PNGs barely compress, so an honest zip
# unpacks to about its own size, and a zip of highly compressible entries cannot fill the database.
MAX_IMPORT_DIGITS = MAX_DIGITS
LABELS_ROW_BYTES = 256
MAX_ZIP_BYTES = 50 * 1024 * 1024  # an import's zip file
MAX_IMPORT_BYTES = 2 * MAX_ZIP_BYTES
MAX_ENTRY_BYTES = 1024 * 1024  # a zip entry (unpacked) larger than this is skipped on import: zip bombs
ORIGINAL_MAX_SIDE = 384  # a kept picture's longer side, pixels: 384² RGBA is 0.56 MB raw, under MAX_ENTRY_BYTES
PNG_MODES = ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA")  # what PNG stores as is; other modes go to RGB
CSV_FIELDS = ("file", "label", "source", "created_at", "original", "model_digit", "model_confidence", "model_file")

# MIGRATIONS[v] takes the file from PRAGMA user_version v to v + 1. Append new ones; never edit a shipped one.
MIGRATIONS = (
    """CREATE TABLE digits (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at TEXT NOT NULL,
        label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
        image BLOB NOT NULL CHECK (length(image) = 784),
        original_png BLOB NOT NULL,
        source TEXT NOT NULL,
        model_digit INTEGER CHECK (model_digit BETWEEN 0 AND 9),
        model_confidence REAL CHECK (model_confidence BETWEEN 0 AND 1),
        model_file TEXT)""",
    "CREATE INDEX digits_label ON digits (label)",  # SQLite indexes carry the rowid: one label's rows come id-sorted
)
SCHEMA_VERSION = len(MIGRATIONS)  # 2

_READING = "model_digit, model_confidence, model_file"
_COLUMNS = f"id, created_at, label, image, source, {_READING}"  # a MyDigit, in _to_digit's order
_INSERT = f"INSERT INTO digits (created_at, label, image, original_png, source, {_READING}) VALUES (?{', ?' * 7})"


class DigitsDatabaseError(sqlite3.DatabaseError):
    """The file cannot serve as the digits database: not a database, damaged, or made by a newer studio."""


class DigitsImportError(ValueError):
    """A zip that cannot be imported at all (not a zip, no labels.csv, too many digits, ...): nothing was added."""


class DigitsFullError(ValueError):
    """The database holds MAX_DIGITS digits: nothing was added."""


@dataclass(frozen=True)
class Reading:
    """The active model's answer when the digit was saved."""

    digit: int
    confidence: float  # probability of `digit`, 0..1
    model: str  # the model file it came from

    def __post_init__(self) -> None:
        _check_digit(self.digit, "The reading's digit")
        if not isinstance(self.confidence, numbers.Real) or not 0 <= self.confidence <= 1:  # NaN fails too
            raise ValueError(f"The reading's confidence must be a probability 0..1, got {self.confidence!r}")
        if not isinstance(self.model, str):
            raise TypeError(f"The reading's model must be a file name, got {self.model!r}")


@dataclass(frozen=True)
class MyDigit:
    """One labelled digit of the user's."""

    id: int
    created_at: str  # ISO 8601 UTC, seconds
    label: int
    image: np.ndarray  # (28, 28) uint8, the digit exactly as the model read it (0 black .. 255 white ink)
    source: str  # one of SOURCES
    reading: Reading | None


@dataclass(frozen=True)
class ImportReport:
    """What import_zip did."""

    added: int
    skipped: tuple[str, ...]  # one line per skipped entry: "name: why"


class DigitStore:
    """The digits database at `path`: created with its folder if missing, and migrated to SCHEMA_VERSION."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file where the folder should be, a read-only place
            raise DigitsDatabaseError(f"{self.path} cannot be opened as a digits database: {exc.strerror or exc}"
                                      ) from exc
        with self._connect() as con:
            # The version is read before anything writes (the switch to WAL rewrites the file's header): a newer
            # studio's file is refused exactly as it was.
            if (version := _user_version(con)) > SCHEMA_VERSION:
                raise DigitsDatabaseError(f"{self.path} was made by a newer studio (schema version {version}; this "
                                          f"one reads up to {SCHEMA_VERSION}). Update the studio to use it.")
            _use_wal(con)
            while (version := _user_version(con)) < SCHEMA_VERSION:
                with _transaction(con):
                    if _user_version(con) == version:  # read again under the lock: another process may have won
                        con.execute(MIGRATIONS[version])
                        con.execute(f"PRAGMA user_version = {version + 1}")

    @classmethod
    def in_folder(cls, root: str | os.PathLike) -> DigitStore:
        return cls(Path(root) / DB_NAME)

    def add(self, label: int, image: np.ndarray, original_png: bytes, source: str,
            reading: Reading | None = None) -> int:
        """Save one digit: `image` (28, 28) floats in [0, 1] or uint8, `original_png` the picture it came from.

        Returns the new digit's id.
        """
        label = _check_digit(label, "The label")
        pixels = _to_pixels(image)
        if source not in SOURCES:
            raise ValueError(f"The source must be one of {SOURCES}, got {source!r}")
        if bytes(original_png[:len(PNG_SIGNATURE)]) != PNG_SIGNATURE:
            raise ValueError("The original picture must be PNG bytes (the PNG signature is missing).")
        with self._connect() as con, _transaction(con):
            if _room(con) < 1:
                raise DigitsFullError(f"Your digits are at their limit of {MAX_DIGITS:,}: delete some to keep more.")
            return con.execute(_INSERT, _row(label, pixels, bytes(original_png), source, reading)).lastrowid

    def count(self) -> int:
        with self._connect() as con:
            return con.execute("SELECT COUNT(*) FROM digits").fetchone()[0]

    def counts(self) -> np.ndarray:
        """(10,) int64: how many digits carry each label."""
        out = np.zeros(10, dtype=np.int64)
        with self._connect() as con:
            for label, n in con.execute("SELECT label, COUNT(*) FROM digits GROUP BY label"):
                out[label] = n
        return out

    def page(self, digit: int | None = None, offset: int = 0, limit: int = 50) -> list[MyDigit]:
        """Newest first (id descending), only those labelled `digit` unless it is None."""
        if offset < 0 or limit < 0:
            raise ValueError(f"offset and limit must be >= 0, got {offset} and {limit}")
        where, args = ("", ()) if digit is None else ("WHERE label = ?", (_check_digit(digit, "The digit"),))
        with self._connect() as con:
            rows = con.execute(f"SELECT {_COLUMNS} FROM digits {where} ORDER BY id DESC LIMIT ? OFFSET ?",
                               (*args, limit, offset)).fetchall()
        return [_to_digit(row) for row in rows]

    def get(self, digit_id: int) -> MyDigit:
        return _to_digit(self._one(f"SELECT {_COLUMNS} FROM digits WHERE id = ?", digit_id))

    def original_png(self, digit_id: int) -> bytes:
        return self._one("SELECT original_png FROM digits WHERE id = ?", digit_id)[0]

    def relabel(self, digit_id: int, label: int) -> None:
        self._change_one("UPDATE digits SET label = ? WHERE id = ?", (_check_digit(label, "The label"), digit_id))

    def delete(self, digit_id: int) -> None:
        self._change_one("DELETE FROM digits WHERE id = ?", (digit_id,))

    def arrays(self, newest: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All digits, or only the `newest` ones, by id ascending: ids int64 (N,), images uint8 (N, 28, 28), labels
        uint8 (N,)."""
        if newest is not None and newest < 0:
            raise ValueError(f"newest must be >= 0, got {newest}")
        with self._connect() as con:  # LIMIT -1: no limit
            rows = con.execute("SELECT id, image, label FROM (SELECT id, image, label FROM digits ORDER BY id DESC "
                               "LIMIT ?) ORDER BY id", (-1 if newest is None else newest,)).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        images = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.uint8).reshape(-1, SIZE, SIZE).copy()  # writable
        return ids, images, np.array([r[2] for r in rows], dtype=np.uint8)

    def export_zip(self) -> bytes:
        """Every digit as digits/{id:06d}.png (28x28 grey) and originals/{id:06d}.png, listed in labels.csv (a
        reading's model by its file name only: no server path leaves the server)."""
        out, table = io.BytesIO(), io.StringIO()
        writer = csv.writer(table, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        with self._connect() as con, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for row in con.execute(f"SELECT {_COLUMNS}, original_png FROM digits ORDER BY id"):
                digit, name = _to_digit(row[:-1]), f"{row[0]:06d}.png"
                archive.writestr(f"digits/{name}", encode_png(digit.image))
                archive.writestr(f"originals/{name}", row[-1])
                r = digit.reading
                reading = ("", "", "") if r is None else (r.digit, r.confidence, Path(r.model).name)
                writer.writerow((f"digits/{name}", digit.label, digit.source, digit.created_at,
                                 f"originals/{name}", *reading))
            archive.writestr("labels.csv", table.getvalue())
        return out.getvalue()

    def import_zip(self, data: bytes, max_bytes: int = MAX_ZIP_BYTES) -> ImportReport:
        """Add the digits of a zip laid out as export_zip writes it, all in one transaction, as source "imported".

        Rows that cannot be used, and rows naming a file an earlier row of the zip named, are skipped and named in
        the report. A zip that cannot be read at all, lists more than MAX_IMPORT_DIGITS digits, unpacks to more than
        MAX_IMPORT_BYTES or would take the database past MAX_DIGITS raises DigitsImportError and adds nothing.
        """
        if len(data) > max_bytes:
            raise DigitsImportError(f"The file is too large ({len(data) / 2**20:.3g} MB); "
                                    f"the limit is {max_bytes / 2**20:.3g} MB.")
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile as exc:
            raise DigitsImportError("This file is not a zip archive.") from exc
        added, skipped, named = 0, [], {}
        with archive:
            reader = _Reader(archive)
            table = _labels(reader)  # refused before the database is touched
            with self._connect() as con, _transaction(con):
                room = _room(con)
                for line, row in table:
                    name = row["file"] or f"line {line}"
                    try:
                        if row["file"] in named:
                            raise ValueError(f"already imported from line {named[row['file']]} of labels.csv")
                        values = _import_row(reader, row)
                    except DigitsImportError:
                        raise
                    except ValueError as exc:
                        skipped.append(f"{name}: {exc}")
                        continue
                    if added == room:
                        raise DigitsImportError(f"Importing it would take your digits past their limit of "
                                                f"{MAX_DIGITS:,} (room is left for {room:,}); nothing was added.")
                    con.execute(_INSERT, values)
                    named[row["file"]] = line
                    added += 1
        return ImportReport(added=added, skipped=tuple(skipped))

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A new connection, closed on exit (sqlite3 connections must not cross threads), in autocommit mode.

        SQLite's own errors (not a database, a damaged page, a lock held too long) become DigitsDatabaseError,
        naming the file."""
        try:
            with contextlib.closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)) as con:
                con.execute("PRAGMA synchronous=NORMAL")  # with WAL: no fsync per commit, and still safe when killed
                yield con
        except DigitsDatabaseError:
            raise
        except sqlite3.DatabaseError as exc:
            raise DigitsDatabaseError(f"{self.path} cannot be opened as a digits database: {exc}") from exc

    def _one(self, sql: str, digit_id: int) -> tuple:
        """The row a SELECT by id finds; KeyError if there is none."""
        with self._connect() as con:
            row = con.execute(sql, (digit_id,)).fetchone()
        if row is None:
            raise KeyError(f"No saved digit has id {digit_id}")
        return row

    def _change_one(self, sql: str, args: tuple) -> None:
        """An UPDATE or DELETE of one digit by id (the last argument); KeyError if there is none."""
        with self._connect() as con, _transaction(con):
            if con.execute(sql, args).rowcount == 0:
                raise KeyError(f"No saved digit has id {args[-1]}")


@contextlib.contextmanager
def _transaction(con: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE .. COMMIT, rolled back on any exception: the write lock is taken (or waited for) up front."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if con.in_transaction:  # some errors (a full disk) already rolled it back
            con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _use_wal(con: sqlite3.Connection) -> None:
    """Switch the file to the WAL journal, a setting kept in the file: readers and a writer stop blocking each other.

    The switch needs the file to itself and fails at once, without the busy timeout, while another process opens
    the same new file; so it is retried here until BUSY_TIMEOUT_S.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            con.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)  # seconds


def _user_version(con: sqlite3.Connection) -> int:
    return con.execute("PRAGMA user_version").fetchone()[0]


def _room(con: sqlite3.Connection) -> int:
    """How many more digits the database takes (MAX_DIGITS in all); read under the write lock, it stays true."""
    return MAX_DIGITS - con.execute("SELECT COUNT(*) FROM digits").fetchone()[0]


def _check_digit(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value <= 9:
        raise ValueError(f"{what} must be an integer 0..9, got {value!r}")
    return int(value)


def _to_pixels(image: np.ndarray) -> np.ndarray:
    """(28, 28) uint8, or floats in [0, 1] -> uint8 0..255 (rounded, as data.from_float_images)."""
    a = np.asarray(image)
    if a.shape != (SIZE, SIZE):
        raise ValueError(f"Expected a (28, 28) image, got shape {a.shape}")
    if a.dtype == np.uint8:
        return a
    if a.dtype.kind != "f" or not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
        raise ValueError(f"Expected uint8 or finite floats in [0, 1], got {a.dtype} in [{a.min()}, {a.max()}]")
    return from_float_images(a)


def _row(label: int, pixels: np.ndarray, original_png: bytes, source: str, reading: Reading | None) -> tuple:
    """The values of _INSERT, created now."""
    created_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    model = (None, None, None) if reading is None else (int(reading.digit), float(reading.confidence), reading.model)
    return (created_at, label, pixels.tobytes(), original_png, source, *model)


def _to_digit(row: tuple) -> MyDigit:
    """A row of _COLUMNS -> MyDigit."""
    id_, created_at, label, image, source, model_digit, confidence, model_file = row
    reading = None if model_digit is None else Reading(model_digit, confidence, model_file)
    return MyDigit(id_, created_at, label, np.frombuffer(image, dtype=np.uint8).reshape(SIZE, SIZE), source, reading)


def keepable(image: Image.Image) -> Image.Image:
    """The picture as a digit's original is kept: in a mode PNG stores (a CMYK JPEG's goes to RGB), and scaled
    down (aspect kept) to ORIGINAL_MAX_SIDE. A 12-megapixel photo kept whole would be a PNG of tens of MB in the
    database, and in an export whose import drops it (MAX_ENTRY_BYTES). The caller's picture is never changed."""
    picture = image if image.mode in PNG_MODES else image.convert("RGB")
    if max(picture.size) > ORIGINAL_MAX_SIDE:
        picture = picture.copy()  # thumbnail() works in place
        picture.thumbnail((ORIGINAL_MAX_SIDE, ORIGINAL_MAX_SIDE))
    return picture


def encode_png(image: np.ndarray | Image.Image) -> bytes:
    """A picture as PNG bytes (see keepable): a PIL image, or a uint8 array ((H, W) grey, (H, W, 4) RGBA like the
    canvas')."""
    out = io.BytesIO()
    keepable(image if isinstance(image, Image.Image) else Image.fromarray(image)).save(out, format="PNG")
    return out.getvalue()


class _TooLarge(ValueError):
    """A zip entry over its size limit."""


class _Reader:
    """An import's zip, read one checked entry at a time, counting what it unpacks against MAX_IMPORT_BYTES."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive, self.unpacked = archive, 0

    def read(self, name: str, limit: int = MAX_ENTRY_BYTES) -> bytes:
        """One file of the zip; its unpacked size is checked before reading (zip bombs). ValueError says why not;
        DigitsImportError when the zip as a whole unpacks to too much."""
        try:
            info = self.archive.getinfo(name)
        except KeyError:
            raise ValueError("no such file in the zip") from None
        if info.file_size > limit:
            raise _TooLarge(f"{info.file_size / 2**20:.3g} MB unpacked; the limit is {limit / 2**20:.3g} MB")
        self.unpacked += info.file_size  # zipfile reads no more than this: a longer entry fails its CRC check
        if self.unpacked > MAX_IMPORT_BYTES:
            raise DigitsImportError(f"The files it lists unpack to more than {MAX_IMPORT_BYTES / 2**20:.3g} MB, "
                                    "the limit of an import.")
        try:
            return self.archive.read(info)
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError) as exc:
            raise ValueError(f"damaged or encrypted in the zip ({exc})") from exc


def _labels(reader: _Reader) -> list[tuple[int, dict]]:
    """labels.csv's rows with their line numbers; DigitsImportError when it cannot be used or lists too many."""
    caps = f"an import takes at most {MAX_IMPORT_DIGITS:,} digits, and your digits number at most {MAX_DIGITS:,}"
    try:
        text = reader.read("labels.csv", MAX_IMPORT_DIGITS * LABELS_ROW_BYTES).decode("utf-8-sig")
    except _TooLarge as exc:
        raise DigitsImportError(f"labels.csv is too long for an import ({exc}): {caps}.") from exc
    except ValueError as exc:  # missing, or not UTF-8 (UnicodeDecodeError is a ValueError)
        raise DigitsImportError(f"The zip has no usable labels.csv ({exc}).") from exc
    table = csv.DictReader(io.StringIO(text))
    if not {"file", "label"} <= set(table.fieldnames or ()):
        raise DigitsImportError(f"labels.csv needs the columns file and label; it has {table.fieldnames}.")
    rows = [(table.line_num, row) for row in itertools.islice(table, MAX_IMPORT_DIGITS + 1)]
    if len(rows) > MAX_IMPORT_DIGITS:
        raise DigitsImportError(f"labels.csv lists more than {MAX_IMPORT_DIGITS:,} digits: {caps}.")
    return rows


def _import_row(reader: _Reader, row: dict) -> tuple:
    """One labels.csv row -> the values of _INSERT; ValueError says why it cannot be imported."""
    text = (row["label"] or "").strip()
    if not text.isdecimal():
        raise ValueError(f"label {text!r} is not a digit 0..9")
    label = _check_digit(int(text), "label")
    png = reader.read(row["file"] or "")
    try:
        with Image.open(io.BytesIO(png)) as image:
            if image.format != "PNG" or image.size != (SIZE, SIZE):
                raise ValueError(f"a {image.format} picture of {image.width}x{image.height} pixels, "
                                 f"not a {SIZE}x{SIZE} PNG")
            pixels = np.asarray(image.convert("L"))
    except (OSError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:  # PIL's errors for bad data
        raise ValueError("not a readable PNG picture") from exc
    try:
        original = reader.read(row.get("original") or "")
    except DigitsImportError:
        raise
    except ValueError:  # optional: without it, the 28x28 picture stands in
        original = png
    try:
        reading = Reading(int(row["model_digit"]), float(row["model_confidence"]), row["model_file"])
    except (KeyError, TypeError, ValueError):  # optional too: absent, empty or invalid cells mean no reading
        reading = None
    return _row(label, pixels, original if original.startswith(PNG_SIGNATURE) else png, "imported", reading)
