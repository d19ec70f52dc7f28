"""The My digits tab through AppTest: counts, the paged gallery, relabel, delete, zip import, and a real fine-tune.

Like tests/test_app.py, every test gets its own RunStore folder ($MNIST_STUDIO_RUNS), so its own digits
database, and fresh st.cache_resource / st.cache_data. The digits are real MNIST test images, put into
the store directly, read by the shipped model (the active one when nothing else is).
"""

from __future__ import annotations

import io
import time

import numpy as np
import pyarrow as pa
import pytest
from apptest_support import job_manager, open_tab, run_app
from streamlit.testing.v1 import AppTest

from mnist_core import finetune
from mnist_core.data import to_float_images
from mnist_core.digits_db import DigitStore, encode_png
from mnist_core.predict import Predictor
from mnist_core.store import DEFAULT_MODEL, read_info
from mnist_core.training import TrainConfig

FINETUNE_DEADLINE_S = 240


@pytest.fixture
def store(runs) -> DigitStore:
    return DigitStore.in_folder(runs.root)


@pytest.fixture(scope="module")
def readable(mnist) -> tuple[np.ndarray, np.ndarray]:
    """The first 12 MNIST test digits the shipped model reads right: uint8 images and their labels."""
    (_, _), (x, y) = mnist
    predicted = Predictor.load(DEFAULT_MODEL).predict(to_float_images(x[:100])[..., 0])
    right = np.flatnonzero(predicted == y[:100])[:12]
    assert len(right) == 12
    return x[right], y[right]


def add_digits(store: DigitStore, images: np.ndarray, labels) -> list[int]:
    return [store.add(int(label), image, encode_png(image), "drawn") for image, label in zip(images, labels)]


@pytest.fixture
def twelve(store, readable) -> tuple[list[int], list[int]]:
    """12 digits in the store, the first deliberately mislabelled: (ids, labels as stored)."""
    images, labels = readable
    labels = [int(v) for v in labels]
    labels[0] = (labels[0] + 1) % 10
    return add_digits(store, images, labels), labels


def run_mine() -> AppTest:
    """The page, on the My digits tab (drawn only while open)."""
    return open_tab(run_app(), "My digits")


def mine(at: AppTest):
    """The My digits tab."""
    (tab,) = [t for t in at.tabs if "My digits" in t.label]
    return tab


def captions(at: AppTest) -> list[str]:
    """The gallery's captions, "#id · label L · read as R", in page order."""
    return [c for img in mine(at).image for c in img.captions if c.startswith("#")]


def markdown(at: AppTest) -> list[str]:
    return [m.value for m in mine(at).markdown]


# --- the tests -------------------------------------------------------------------------------------------

def test_empty_state_says_how_to_add_digits_and_cannot_fine_tune(runs):
    at = run_mine()
    infos = [i.value for i in at.info]
    assert any("Draw" in i and "import a zip" in i for i in infos), infos
    button = at.button(key="finetune_btn")
    assert button.label == "Fine-tune on my digits" and button.disabled
    reason = f"Label at least {finetune.MIN_DIGITS} digits first: you have 0."
    assert button.help == reason and reason in [c.value for c in at.caption]
    assert at.file_uploader(key="mine_import") is not None  # the import box is still there
    assert at.button(key="mine_import_btn").disabled  # nothing uploaded yet
    assert not captions(at)


def test_counts_accuracy_gallery_and_the_wrong_mark(runs, twelve):
    ids, labels = twelve
    at = run_mine()
    assert any(m.startswith("**12** of your digits · the active model reads **92%** of them right (11 of 12)")
               for m in markdown(at)), markdown(at)
    # Newest first, every one with its id, label and reading; only the mislabelled one is read otherwise
    shown = captions(at)
    assert [c.split(" · ")[0] for c in shown] == [f"#{i}" for i in reversed(ids)]
    wrong = shown[-1]
    read_as = (labels[0] - 1) % 10
    assert wrong == f"#{ids[0]} · label {labels[0]} · read as {read_as}"
    assert all(c.endswith(f"read as {c.split('label ')[1][0]}") for c in shown[:-1]), shown
    assert [m for m in markdown(at) if "✗" in m] == [f":red[**✗ read as {read_as}**]"]
    assert not at.button(key="finetune_btn").disabled  # 12 >= MIN_DIGITS
    assert at.selectbox(key=f"mine_relabel_{ids[0]}").value == labels[0]
    assert at.button(key="mine_prev").disabled and at.button(key="mine_next").disabled  # one page


def test_the_counts_chart(runs, twelve):
    _, labels = twelve
    at = run_mine()
    (chart,) = mine(at).get("vega_lite_chart")
    arrow = [d.data.data for d in chart.proto.datasets] + [chart.proto.data.data]
    data = [pa.ipc.open_stream(b).read_all().to_pandas() for b in arrow if b]
    (frame,) = [f for f in data if "count" in f.columns]
    assert dict(zip(frame["digit"], frame["count"])) == {str(d): labels.count(d) for d in range(10)}


def test_the_filter_shows_only_that_digit(runs, twelve):
    ids, labels = twelve
    digit = labels[1]
    at = run_mine()
    at.selectbox(key="mine_filter").set_value(str(digit)).run()
    shown = captions(at)
    expected = [i for i, label in zip(ids, labels) if label == digit]
    assert [c.split(" · ")[0] for c in shown] == [f"#{i}" for i in reversed(expected)]
    assert all(f"label {digit}" in c for c in shown)
    open_tab(open_tab(at, "Draw"), "My digits")  # the tab is drawn only while open: the filter is kept
    assert at.selectbox(key="mine_filter").value == str(digit) and captions(at) == shown


def test_pages_of_twenty(runs, store, readable):
    images, labels = readable
    ids = add_digits(store, np.concatenate([images, images]), np.concatenate([labels, labels]))  # 24
    at = run_mine()
    assert len(captions(at)) == 20 and at.button(key="mine_prev").disabled
    at.button(key="mine_next").click().run()
    assert [c.split(" · ")[0] for c in captions(at)] == [f"#{i}" for i in reversed(ids[:4])]
    assert at.button(key="mine_next").disabled


def test_relabel_changes_the_label_in_the_store(runs, store, twelve):
    ids, labels = twelve
    target = ids[0]
    at = run_mine()
    at.selectbox(key=f"mine_relabel_{target}").set_value((labels[0] - 1) % 10).run()  # saved on change
    assert not at.exception
    assert store.get(target).label == (labels[0] - 1) % 10
    assert any(f"#{target} is now labelled" in s.value for s in at.success)
    assert not [m for m in markdown(at) if "✗" in m]  # now read as labelled
    assert any("reads **100%**" in m for m in markdown(at))


def test_delete_asks_once_more_and_removes_the_digit(runs, store, twelve):
    ids, _ = twelve
    target = ids[3]
    at = run_mine()
    at.button(key=f"mine_delete_{target}").click().run()  # the confirm button inside the popover
    assert not at.exception
    with pytest.raises(KeyError):
        store.get(target)
    assert store.count() == 11
    assert f"#{target}" not in [c.split(" · ")[0] for c in captions(at)]
    assert any(f"Deleted #{target}." == s.value for s in at.success)


def test_fine_tune_needs_enough_digits(runs, store, readable):
    images, labels = readable
    add_digits(store, images[:4], labels[:4])
    at = run_mine()
    button = at.button(key="finetune_btn")
    reason = f"Label at least {finetune.MIN_DIGITS} digits first: you have 4."
    assert button.disabled and button.help == reason and reason in [c.value for c in at.caption]
    add_digits(store, images[4:10], labels[4:10])
    at.run()
    assert not at.button(key="finetune_btn").disabled


def test_import_a_zip_made_by_export(runs, store, readable, tmp_path):
    images, labels = readable
    other = DigitStore(tmp_path / "other" / "digits.sqlite")
    add_digits(other, images[:3], labels[:3])
    data = other.export_zip()
    at = run_mine()
    at.file_uploader(key="mine_import").set_value(("my-digits.zip", data, "application/zip")).run()
    assert store.count() == 0  # uploading alone imports nothing
    at.button(key="mine_import_btn").click().run()
    assert not at.exception
    assert store.count() == 3 and [d.source for d in store.page()] == ["imported"] * 3
    assert "Imported 3 digits." in [s.value for s in at.success]
    assert len(captions(at)) == 3
    at.run()  # the upload is still there: a rerun must not import it again
    assert store.count() == 3

    # A bad zip: an error, and nothing changes
    at.file_uploader(key="mine_import").set_value(("notes.zip", b"not a zip at all", "application/zip")).run()
    at.button(key="mine_import_btn").click().run()
    assert any("notes.zip was not imported" in e.value and "not a zip" in e.value for e in at.error)
    assert store.count() == 3


def test_import_lists_skipped_files(runs, store, readable, tmp_path):
    import zipfile

    images, labels = readable
    other = DigitStore(tmp_path / "other" / "digits.sqlite")
    add_digits(other, images[:2], labels[:2])
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(other.export_zip())) as src, zipfile.ZipFile(buf, "w") as dst:
        for item in src.infolist():
            text = src.read(item)
            if item.filename == "labels.csv":
                text += b"digits/missing.png,3,drawn,,,,,\n"
            dst.writestr(item, text)
    at = run_mine()
    at.file_uploader(key="mine_import").set_value(("some.zip", buf.getvalue(), "application/zip")).run()
    at.button(key="mine_import_btn").click().run()
    assert "Imported 2 digits · 1 skipped." in [s.value for s in at.success]
    (box,) = [e for e in at.expander if e.label.startswith("Skipped files")]
    assert any("digits/missing.png" in m.value for m in box.markdown)
    assert store.count() == 2


def test_fine_tune_runs_and_shows_before_and_after(runs, store, twelve, monkeypatch):
    monkeypatch.setattr(finetune, "EPOCHS", 1)  # read by the page when it makes the config: a quick job
    at = run_mine()
    assert not at.container(key="finetune-result").metric  # no fine-tune yet
    at.button(key="finetune_btn").click().run()
    assert not at.exception, [e.value for e in at.exception]
    job = job_manager().job
    assert job is not None and job.config.is_finetune
    assert job.config.parent == str(DEFAULT_MODEL) and job.config.my_digits == str(store.path)
    seen_progress = False
    deadline = time.monotonic() + FINETUNE_DEADLINE_S
    while job.running and time.monotonic() < deadline:
        # While it runs: the button is off (one job per server), the progress and its Stop button are shown
        assert at.button(key="finetune_btn").disabled or not job.running
        if job.running:
            progress = at.container(key="finetune-progress")
            assert progress.get("progress") and progress.button(key="finetune_stop_btn")
            seen_progress = True
        time.sleep(2)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    assert not job.running, f"the fine-tune did not finish within {FINETUNE_DEADLINE_S}s"
    assert seen_progress  # loading MNIST and measuring the model before take seconds: the progress shows
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.button(key="finetune_btn").disabled
    with pytest.raises(KeyError):
        at.get_by_key("finetune-progress")

    (record,) = runs.history()
    assert record.is_finetune and record.status == "completed", record.message
    p = record.personal
    assert p["trained_on"] + p["held_out"] == 12 and p["held_out"] > 0
    result = at.container(key="finetune-result")
    metrics = {m.label: m for m in result.metric}
    assert set(metrics) == {"Your held-out digits", "MNIST test (10,000)"}
    assert metrics["Your held-out digits"].value == f"{p['user_before']:.2%} → {p['user_after']:.2%}"
    assert metrics["Your held-out digits"].delta == f"{(p['user_after'] - p['user_before']) * 100:+.2f} points"
    assert metrics["MNIST test (10,000)"].value == f"{p['mnist_before']:.2%} → {p['mnist_after']:.2%}"
    assert metrics["MNIST test (10,000)"].delta == f"{(p['mnist_after'] - p['mnist_before']) * 100:+.2f} points"
    assert any(f"on {p['trained_on']} of your digits, {p['held_out']} held out · completed" in c.value
               for c in result.caption)

    # The new model is the active one, and its sidecar names the model it started from
    active = runs.active_path()
    assert active != DEFAULT_MODEL and active.parent == (runs.root / "models").resolve()
    assert "finetune" in active.name
    info = read_info(active)
    assert info.config["parent"] == str(DEFAULT_MODEL) and info.personal == p


def test_stop_ends_the_fine_tune(runs, store, twelve, monkeypatch):
    monkeypatch.setattr(finetune, "EPOCHS", 3)  # long enough that the click lands before the end
    at = run_mine()
    at.button(key="finetune_btn").click().run()
    job = job_manager().job
    # A spawned process imports TensorFlow before its first batch: seconds, so the click lands while it runs
    assert job.running, "the fine-tune ended before Stop could be pressed: make it longer"
    at.container(key="finetune-progress").button(key="finetune_stop_btn").click().run()
    assert not at.exception, [e.value for e in at.exception]
    job.join(FINETUNE_DEADLINE_S)
    assert not job.running
    at.run()
    (record,) = runs.history()
    assert record.is_finetune and record.status == "stopped", record.message
    if record.model is None:  # stopped before a full epoch: the model is not kept
        assert runs.active_path() == DEFAULT_MODEL
    captions = [c.value for c in at.container(key="finetune-result").caption]
    if record.personal is None:  # stopped before training began, or (a busy machine) ended by force: nothing measured
        assert "before training began" in record.message or "did not stop within" in record.message, record.message
        assert captions == []
    else:
        assert any(c.endswith(f"held out · {record.status}") for c in captions), (captions, record.message)


def test_a_failed_fine_tune_says_why(runs, store):
    config = TrainConfig.for_finetune(str(DEFAULT_MODEL), str(store.path))
    runs.record(config, None, "failed", "Training failed: the disk is full. The active model is unchanged.", None)
    at = run_mine()
    errors = [e.value for e in at.container(key="finetune-result").error]
    assert errors == ["The last fine-tune failed: Training failed: the disk is full. The active model is unchanged."]
    assert not at.container(key="finetune-result").metric  # no before → after to show


def test_a_corrupt_digits_file_is_an_error_and_the_page_still_works(runs):
    runs.root.mkdir(parents=True)
    (runs.root / "digits.sqlite").write_bytes(b"this is not a database" * 100)
    at = run_mine()
    errors = [e.value for e in mine(at).error]
    assert any(e.startswith("Your digits cannot be read:") and "digits.sqlite" in e for e in errors), errors
    assert at.button(key="train_btn")  # the other tabs render


def test_many_digits_are_scored_on_the_newest_and_read_a_page_at_a_time(runs, store, readable):
    """The tab never reads every digit: the score is on the newest SUMMARY_DIGITS, and a page past them is read
    alone."""
    from studio.my_digits_tab import SUMMARY_DIGITS

    import zipfile

    images, labels = readable
    n = SUMMARY_DIGITS + 5
    wrong = [(int(label) + 1) % 10 for label in labels[:5]]  # the 5 oldest are mislabelled: outside the newest
    all_labels = [*wrong, *np.resize(labels, n)[5:]]
    buf = io.BytesIO()  # imported in one transaction: a thousand saves one by one take seconds on a busy machine
    with zipfile.ZipFile(buf, "w") as archive:
        for i, image in enumerate(np.resize(images, (n, 28, 28))):
            archive.writestr(f"digits/{i}.png", encode_png(image))
        archive.writestr("labels.csv", "file,label\n" + "".join(f"digits/{i}.png,{y}\n" for i, y in
                                                                enumerate(all_labels)))
    assert store.import_zip(buf.getvalue()).added == n
    ids = store.arrays()[0].tolist()
    at = run_mine()
    assert any(m.startswith(f"**{n:,}** of your digits · the active model reads **100%** of the newest "
                            f"{SUMMARY_DIGITS:,} right ({SUMMARY_DIGITS:,} of {SUMMARY_DIGITS:,})")
               for m in markdown(at)), markdown(at)
    at.session_state["mine_page"] = n // 20  # the last page: the 5 oldest
    at.run()
    assert captions(at) == [f"#{i} · label {w} · read as {int(y)}" for i, w, y in
                            zip(reversed(ids[:5]), reversed(wrong), reversed(labels[:5]))]
    assert len([m for m in markdown(at) if "✗" in m]) == 5
