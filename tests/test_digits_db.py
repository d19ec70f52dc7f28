"""mnist_core.digits_db: the user's labelled digits in SQLite, on real files, threads and processes."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_core import digits_db
from mnist_core.digits_db import (
    DB_NAME,
    PNG_SIGNATURE,
    SCHEMA_VERSION,
    DigitsFullError,
    DigitsImportError,
    DigitStore,
    Reading,
)

REPO = Path(__file__).resolve().parents[1]


def png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def digit(seed: int) -> np.ndarray:
    """A distinct (28, 28) uint8 image per seed."""
    return np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8)


ORIGINAL = png(np.full((64, 48, 3), 200, dtype=np.uint8))  # stands in for a canvas picture


def sql(path: Path, query: str, args: tuple = ()) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(path)) as con:
        return con.execute(query, args).fetchall()


@pytest.fixture
def store(tmp_path) -> DigitStore:
    return DigitStore.in_folder(tmp_path / "runs")  # the folder does not exist yet


def test_a_new_store_is_an_empty_wal_file_at_the_current_schema(store, tmp_path):
    assert store.path == tmp_path / "runs" / DB_NAME and store.path.is_file()
    assert sql(store.path, "PRAGMA journal_mode") == [("wal",)]
    assert sql(store.path, "PRAGMA user_version") == [(SCHEMA_VERSION,)] == [(2,)]
    assert store.count() == 0 and store.page() == []
    counts = store.counts()
    assert counts.shape == (10,) and counts.dtype == np.int64 and not counts.any()
    ids, images, labels = store.arrays()
    assert (ids.shape, ids.dtype) == ((0,), np.int64)
    assert (images.shape, images.dtype) == ((0, 28, 28), np.uint8)
    assert (labels.shape, labels.dtype) == ((0,), np.uint8)


def test_add_and_get_back_exactly_what_the_model_read(store):
    floats = np.linspace(0, 1, 784, dtype=np.float32).reshape(28, 28)  # what preprocess_drawing returns
    reading = Reading(digit=4, confidence=0.875, model="models/seed.keras")
    first = store.add(4, floats, ORIGINAL, "drawn", reading)
    second = store.add(np.int64(9), digit(1), ORIGINAL, "uploaded")
    assert second > first

    got = store.get(first)
    assert (got.id, got.label, got.source, got.reading) == (first, 4, "drawn", reading)
    assert got.image.dtype == np.uint8 and got.image.shape == (28, 28)
    np.testing.assert_array_equal(got.image, np.rint(floats * 255).astype(np.uint8))
    age = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(got.created_at)
    assert dt.timedelta(0) <= age < dt.timedelta(minutes=1)
    assert got.created_at.endswith("+00:00") and "." not in got.created_at  # UTC, whole seconds
    assert store.original_png(first) == ORIGINAL

    other = store.get(second)
    assert (other.label, other.source, other.reading) == (9, "uploaded", None)
    np.testing.assert_array_equal(other.image, digit(1))


def test_page_is_newest_first_with_a_digit_filter_offset_and_limit(store):
    ids = [store.add(i % 3, digit(i), ORIGINAL, "drawn") for i in range(9)]
    assert [d.id for d in store.page()] == ids[::-1]
    assert [d.id for d in store.page(offset=2, limit=3)] == ids[::-1][2:5]
    assert [d.id for d in store.page(digit=1)] == [ids[7], ids[4], ids[1]]
    assert [d.id for d in store.page(digit=1, offset=1, limit=1)] == [ids[4]]
    assert store.page(digit=5) == [] and store.page(offset=9) == []
    np.testing.assert_array_equal(store.page(limit=1)[0].image, digit(8))


def test_count_counts_relabel_delete_and_arrays(store):
    ids = [store.add(label, digit(label), ORIGINAL, "drawn") for label in (3, 3, 5, 0)]
    assert store.count() == 4
    np.testing.assert_array_equal(store.counts(), [1, 0, 0, 2, 0, 1, 0, 0, 0, 0])
    store.relabel(ids[1], 8)
    store.delete(ids[2])
    assert store.get(ids[1]).label == 8 and store.count() == 3
    np.testing.assert_array_equal(store.counts(), [1, 0, 0, 1, 0, 0, 0, 0, 1, 0])
    got_ids, images, labels = store.arrays()
    np.testing.assert_array_equal(got_ids, [ids[0], ids[1], ids[3]])
    np.testing.assert_array_equal(labels, [3, 8, 0])
    np.testing.assert_array_equal(images, np.stack([digit(3), digit(3), digit(0)]))
    assert (got_ids.dtype, images.dtype, labels.dtype) == (np.int64, np.uint8, np.uint8)


def test_a_missing_id_is_a_key_error(store):
    gone = store.add(1, digit(0), ORIGINAL, "drawn")
    store.delete(gone)
    for call in (store.get, store.original_png, store.delete, lambda i: store.relabel(i, 2)):
        with pytest.raises(KeyError, match=str(gone)):
            call(gone)


@pytest.mark.parametrize(("change", "message"), [
    ({"label": 10}, "label"), ({"label": -1}, "label"), ({"label": 3.0}, "label"), ({"label": True}, "label"),
    ({"image": np.zeros((28, 27), np.uint8)}, "shape"), ({"image": np.zeros((1, 28, 28), np.float32)}, "shape"),
    ({"image": np.full((28, 28), np.nan)}, "finite"), ({"image": np.full((28, 28), 255.0)}, r"\[0, 1\]"),
    ({"source": "camera"}, "source"), ({"original_png": b"GIF89a......"}, "PNG"),
])
def test_invalid_digits_are_refused_with_a_clear_message(store, change, message):
    args = {"label": 1, "image": digit(0), "original_png": ORIGINAL, "source": "drawn"} | change
    with pytest.raises(ValueError, match=message):
        store.add(**args)
    assert store.count() == 0


def test_invalid_readings_and_relabels_are_refused(store):
    with pytest.raises(ValueError, match="confidence"):
        Reading(3, 1.5, "m.keras")
    with pytest.raises(ValueError, match="digit"):
        Reading(11, 0.5, "m.keras")
    ident = store.add(1, digit(0), ORIGINAL, "drawn")
    with pytest.raises(ValueError, match="label"):
        store.relabel(ident, 10)
    assert store.get(ident).label == 1


def test_a_first_version_file_is_migrated_and_keeps_its_digits(tmp_path):
    path = tmp_path / DB_NAME
    with contextlib.closing(sqlite3.connect(path)) as con:  # what the first studio with this feature wrote
        con.execute(digits_db.MIGRATIONS[0])
        con.execute("PRAGMA user_version = 1")
        con.execute("INSERT INTO digits (created_at, label, image, original_png, source) VALUES (?, ?, ?, ?, ?)",
                    ("2024-05-01T12:00:00+00:00", 7, digit(7).tobytes(), ORIGINAL, "drawn"))
        con.commit()
    store = DigitStore(path)
    assert sql(path, "PRAGMA user_version") == [(2,)]
    indexed = [sql(path, f"PRAGMA index_info({name!r})") for _, name, *_ in sql(path, "PRAGMA index_list(digits)")]
    assert [[column for *_, column in info] for info in indexed] == [["label"]]
    plan = sql(path, "EXPLAIN QUERY PLAN SELECT id FROM digits WHERE label = 7 ORDER BY id DESC")
    assert "USING COVERING INDEX" in str(plan) or "USING INDEX" in str(plan)
    (old,) = store.page()
    assert (old.label, old.created_at, old.source, old.reading) == (7, "2024-05-01T12:00:00+00:00", "drawn", None)
    np.testing.assert_array_equal(old.image, digit(7))
    assert store.add(2, digit(2), ORIGINAL, "drawn") > old.id


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_a_file_from_a_newer_studio_is_refused_and_left_byte_for_byte(tmp_path, journal):
    path = tmp_path / DB_NAME
    with contextlib.closing(sqlite3.connect(path)) as con:  # a newer studio's file, in either journal mode
        con.execute(f"PRAGMA journal_mode = {journal}")
        con.execute("CREATE TABLE digits_v99 (id INTEGER PRIMARY KEY, what TEXT)")
        con.execute("INSERT INTO digits_v99 (what) VALUES ('a digit of the future')")
        con.execute("PRAGMA user_version = 99")
        con.commit()
    before = path.read_bytes()
    with pytest.raises(sqlite3.DatabaseError, match="newer studio") as caught:
        DigitStore(path)
    assert str(path) in str(caught.value) and "schema version 99" in str(caught.value)
    assert path.read_bytes() == before  # not even the header's journal mode was changed
    assert sorted(p.name for p in tmp_path.iterdir()) == [DB_NAME]  # and no -wal or -shm file was left


def test_a_file_that_is_not_a_database_is_named_and_left_alone(tmp_path):
    path = tmp_path / "notes.sqlite"
    text = b"my shopping list\n" * 300
    path.write_bytes(text)
    with pytest.raises(sqlite3.DatabaseError, match="cannot be opened as a digits database") as caught:
        DigitStore(path)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == text


def test_export_then_import_round_trips_every_digit(store, tmp_path):
    readings = [Reading(3, 0.25, str(tmp_path / "runs" / "models" / "a.keras")), None, Reading(0, 1.0, "seed.keras")]
    originals = [png(np.full((10 + i, 20, 3), 50 * i, dtype=np.uint8)) for i in range(3)]
    for i, (reading, original) in enumerate(zip(readings, originals, strict=True)):
        store.add((i * 4) % 10, digit(i), original, ("drawn", "uploaded", "drawn")[i], reading)
    exported = store.export_zip()

    with zipfile.ZipFile(io.BytesIO(exported)) as archive:
        table = list(csv.reader(io.StringIO(archive.read("labels.csv").decode())))
        assert table[0] == ["file", "label", "source", "created_at", "original",
                            "model_digit", "model_confidence", "model_file"]
        assert table[2][5:] == ["", "", ""]  # no reading: empty cells
        assert [row[7] for row in table[1:]] == ["a.keras", "", "seed.keras"]  # the model's name, not its path
        assert str(tmp_path) not in archive.read("labels.csv").decode()
        first = Image.open(io.BytesIO(archive.read(table[1][0])))
        assert (first.mode, first.size) == ("L", (28, 28))
        np.testing.assert_array_equal(np.asarray(first), digit(0))

    fresh = DigitStore(tmp_path / "other" / DB_NAME)
    report = fresh.import_zip(exported)
    assert (report.added, report.skipped) == (3, ())
    _, images, labels = store.arrays()
    new_ids, new_images, new_labels = fresh.arrays()
    np.testing.assert_array_equal(new_images, images)
    np.testing.assert_array_equal(new_labels, labels)
    names = [r and Reading(r.digit, r.confidence, Path(r.model).name) for r in readings]
    for i, ident in enumerate(new_ids):
        got = fresh.get(int(ident))
        assert (got.source, got.reading) == ("imported", names[i])
        assert fresh.original_png(int(ident)) == originals[i]



def test_a_large_or_cmyk_picture_is_kept_small_enough_to_round_trip(store, tmp_path):
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (3000, 4000, 3), dtype=np.uint8))
    kept = digits_db.encode_png(photo)
    with Image.open(io.BytesIO(kept)) as picture:
        assert picture.size == (digits_db.ORIGINAL_MAX_SIDE, digits_db.ORIGINAL_MAX_SIDE * 3 // 4)  # aspect kept
    assert photo.size == (4000, 3000)  # the caller's picture is untouched
    cmyk = Image.new("CMYK", (50, 40), (0, 0, 0, 255))  # a JPEG's mode that PNG cannot store
    with Image.open(io.BytesIO(digits_db.encode_png(cmyk))) as picture:
        assert (picture.mode, picture.size) == ("RGB", (50, 40))
    noisy = Image.fromarray(np.random.default_rng(1).integers(0, 256, (2000, 2000, 4), dtype=np.uint8))
    ident = store.add(7, digit(7), digits_db.encode_png(noisy), "uploaded")
    assert len(store.original_png(ident)) < digits_db.MAX_ENTRY_BYTES  # the worst case: noise, with alpha
    fresh = DigitStore(tmp_path / "other" / DB_NAME)
    assert fresh.import_zip(store.export_zip()).added == 1
    assert fresh.original_png(int(fresh.arrays()[0][0])) == store.original_png(ident)  # not the 28x28 stand-in

def zip_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize(("data", "message"), [
    (b"PK\x03\x04 but not really a zip", "not a zip"),
    (ORIGINAL, "not a zip"),
    (zip_of({"digits/000001.png": png(digit(0))}), "labels.csv"),
    (zip_of({"labels.csv": b"name,digit\nx.png,3\n"}), "file and label"),
    (zip_of({"labels.csv": b"\xff\xfe\x00bad"}), "labels.csv"),
], ids=["zip-header-only", "png", "no-labels", "label-without-file", "labels-not-utf8"])  # the zips hold the time they were made
def test_an_unusable_zip_adds_nothing(store, data, message):
    store.add(1, digit(0), ORIGINAL, "drawn")
    with pytest.raises(DigitsImportError, match=message):
        store.import_zip(data)
    assert store.count() == 1


def test_a_zip_over_the_size_limit_is_refused(store):
    data = zip_of({"labels.csv": b"file,label\n"})
    with pytest.raises(DigitsImportError, match="too large"):
        store.import_zip(data, max_bytes=len(data) - 1)
    assert store.count() == 0


def _kb(field: str) -> int:
    """A field of /proc/self/status in kB: VmRSS (the memory this process holds now), VmHWM (its peak)."""
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(f"{field}:"))
    return int(line.split()[1])


@pytest.mark.parametrize(("rows", "message"), [
    (100_000, "labels.csv lists more than 10,000 digits: an import takes at most 10,000 digits, and your digits "
              "number at most 10,000"),
    (2_000_000, r"labels.csv is too long for an import \(28.6 MB unpacked; the limit is 2.44 MB\): an import takes "
                "at most 10,000 digits, and your digits number at most 10,000"),
], ids=["100,000 rows", "2,000,000 rows"])
def test_a_zip_listing_one_png_over_and_over_is_refused_in_little_memory(store, rows, message):
    """The issue's zip: 1.5 KB whose labels.csv lists one PNG 100,000 times added 100,000 digits and grew the
    server by 754 MB; 2,000,000 times fits in tens of KB."""
    store.add(1, digit(0), ORIGINAL, "drawn")
    data = zip_of({"digits/a.png": png(digit(1)), "labels.csv": b"file,label\n" + b"digits/a.png,3\n" * rows})
    assert len(data) < 100_000  # far under the size limit of a zip
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from what is held now
    before = _kb("VmRSS")
    with pytest.raises(DigitsImportError, match=message):
        store.import_zip(data)
    assert (_kb("VmHWM") - before) / 1024 < 100  # MB, at the peak of the import
    assert store.count() == 1


def test_an_import_that_unpacks_to_too_much_adds_nothing(store):
    """Each row's original is 1 MB of a PNG's signature and zeros, 1 KB packed: 101 of them are over the limit."""
    bloated = PNG_SIGNATURE + bytes(digits_db.MAX_ENTRY_BYTES - len(PNG_SIGNATURE))
    files = {"labels.csv": ("file,label,original\n" + "".join(f"digits/{i}.png,{i % 10},originals/{i}.png\n"
                                                                for i in range(101))).encode()}
    for i in range(101):
        files[f"digits/{i}.png"], files[f"originals/{i}.png"] = png(digit(i)), bloated
    data = zip_of(files)
    assert len(data) < 500_000
    with pytest.raises(DigitsImportError, match="^The files it lists unpack to more than 100 MB, the limit of an "
                                                "import.$"):
        store.import_zip(data)
    assert store.count() == 0


def test_a_row_repeating_a_file_of_the_zip_is_skipped_and_named(store):
    files = {"digits/a.png": png(digit(1)), "digits/b.png": png(digit(2)),
             "labels.csv": b"file,label\ndigits/a.png,1\ndigits/b.png,2\ndigits/a.png,7\ndigits/a.png,1\n"}
    report = store.import_zip(zip_of(files))
    assert report.added == 2
    assert report.skipped == ("digits/a.png: already imported from line 2 of labels.csv",) * 2
    np.testing.assert_array_equal(store.arrays()[2], [1, 2])


def _fill(store: DigitStore, n: int) -> None:
    """n digits at once, through SQL: the database's cap is reached in milliseconds."""
    with contextlib.closing(sqlite3.connect(store.path)) as con, con:
        con.execute("WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?) "
                    "INSERT INTO digits (created_at, label, image, original_png, source) "
                    "SELECT '2026-11-29T00:00:00+00:00', i % 10, zeroblob(784), ?, 'drawn' FROM k", (n, ORIGINAL))


def test_the_database_holds_at_most_max_digits(store):
    _fill(store, digits_db.MAX_DIGITS - 2)
    files = {f"digits/{i}.png": png(digit(i)) for i in range(3)}
    files["labels.csv"] = ("file,label\n" + "".join(f"digits/{i}.png,{i}\n" for i in range(3))).encode()
    with pytest.raises(DigitsImportError, match=r"^Importing it would take your digits past their limit of 10,000 "
                                                r"\(room is left for 2\); nothing was added.$"):
        store.import_zip(zip_of(files))
    assert store.count() == digits_db.MAX_DIGITS - 2
    store.add(1, digit(0), ORIGINAL, "drawn")
    store.add(1, digit(0), ORIGINAL, "drawn")
    with pytest.raises(DigitsFullError, match="^Your digits are at their limit of 10,000: delete some to keep more"):
        store.add(1, digit(0), ORIGINAL, "drawn")
    assert store.count() == digits_db.MAX_DIGITS


def test_arrays_of_the_newest_only(store):
    ids = [store.add(i % 10, digit(i), ORIGINAL, "drawn") for i in range(5)]
    got_ids, images, labels = store.arrays(newest=3)
    np.testing.assert_array_equal(got_ids, ids[2:])  # by id ascending, like all of them
    np.testing.assert_array_equal(images, np.stack([digit(i) for i in range(2, 5)]))
    np.testing.assert_array_equal(labels, [2, 3, 4])
    assert len(store.arrays(newest=0)[0]) == 0 and len(store.arrays(newest=9)[0]) == 5


def test_an_import_skips_bad_rows_and_names_each(store):
    rgb = np.stack([digit(5)] * 3, axis=-1)
    files = {
        "digits/good.png": png(digit(1)),
        "originals/good.png": ORIGINAL,
        "digits/no_original.png": png(digit(2)),
        "digits/rgb.png": png(rgb),
        "digits/twelve.png": png(digit(3)),
        "digits/text.png": b"this is not a picture",
        "digits/big.png": png(np.zeros((30, 30), dtype=np.uint8)),
        "digits/bomb.png": bytes(2 * 1024 * 1024),  # 2 MB of zeros, a few kB packed
    }
    rows = [("digits/good.png", "1", "originals/good.png"), ("digits/no_original.png", "2", "originals/gone.png"),
            ("digits/rgb.png", "5", ""), ("digits/missing.png", "4", ""), ("digits/twelve.png", "12", ""),
            ("digits/text.png", "6", ""), ("digits/big.png", "7", ""), ("digits/bomb.png", "8", "")]
    files["labels.csv"] = ("file,label,original\n" + "".join(f"{f},{lab},{o}\n" for f, lab, o in rows)).encode()
    assert len(zip_of(files)) < 100_000

    report = store.import_zip(zip_of(files))
    assert report.added == 3 and store.count() == 3
    bad = ["digits/missing.png", "digits/twelve.png", "digits/text.png", "digits/big.png", "digits/bomb.png"]
    assert [line.split(":")[0] for line in report.skipped] == bad
    assert "12" in report.skipped[1] and "30x30" in report.skipped[3] and "MB" in report.skipped[4]

    ids, images, labels = store.arrays()
    np.testing.assert_array_equal(labels, [1, 2, 5])
    np.testing.assert_array_equal(images, np.stack([digit(1), digit(2), np.asarray(Image.fromarray(rgb).convert("L"))]))
    assert store.original_png(int(ids[0])) == ORIGINAL
    assert store.original_png(int(ids[1])) == files["digits/no_original.png"]  # the 28x28 picture stands in
    assert {d.source for d in store.page()} == {"imported"}


def test_threads_saving_at_once_all_land(store):
    def save(thread: int) -> list[int]:
        return [store.add(thread, digit(thread * 100 + i), ORIGINAL, "drawn") for i in range(25)]

    with ThreadPoolExecutor(8) as pool:
        ids = [i for chunk in pool.map(save, range(8)) for i in chunk]
    assert len(set(ids)) == 200 and store.count() == 200
    np.testing.assert_array_equal(store.counts(), [25] * 8 + [0, 0])


def _save_in_process(path: str, start, results, label: int, n: int) -> None:
    start.wait()  # every process opens the brand-new file at the same moment: the migration races
    store = DigitStore(path)
    results.put([store.add(label, digit(i), ORIGINAL, "drawn") for i in range(n)])


def test_processes_saving_at_once_all_land(tmp_path):
    path = tmp_path / DB_NAME
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(4), ctx.Queue()
    workers = [ctx.Process(target=_save_in_process, args=(str(path), start, results, label, 25)) for label in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)  # 25 ids a worker fit the queue's pipe: joining first cannot deadlock
        assert worker.exitcode == 0
    ids = [i for _ in workers for i in results.get(timeout=5)]
    assert len(set(ids)) == 100
    store = DigitStore(path)
    assert store.count() == 100 and sql(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    np.testing.assert_array_equal(store.counts(), [25] * 4 + [0] * 6)


def test_a_process_killed_while_saving_leaves_a_sound_file(tmp_path):
    path = tmp_path / DB_NAME
    script = f"""
import numpy as np
from mnist_core.digits_db import DigitStore
store = DigitStore({str(path)!r})
i = 0
while True:
    print(store.add(i % 10, np.full((28, 28), i % 256, dtype=np.uint8), {ORIGINAL!r}, "drawn"), flush=True)
    i += 1
"""
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    try:
        printed = [int(child.stdout.readline()) for _ in range(30)]
        assert child.poll() is None  # still saving
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        printed += [int(line) for line in child.stdout.read().split()]  # committed before the kill, too
    finally:
        child.kill()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    assert sql(path, "PRAGMA integrity_check") == [("ok",)]
    store = DigitStore(path)
    ids, _, _ = store.arrays()
    assert set(printed) <= set(ids.tolist())
    assert store.add(3, digit(3), ORIGINAL, "drawn") > max(ids)
