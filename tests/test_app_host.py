"""AppTest: host-only controls. With a password set, a page that has not been unlocked can draw, label its own
drawings and browse, but cannot train, stop, fine-tune, make a model active or delete one, nor change or export the
class's digits; the sidebar unlocks it, slowly after repeated wrong passwords."""

from __future__ import annotations

import time

import numpy as np
import pytest
from apptest_support import APP, TIMEOUT, job_manager, open_tab, run_app
from streamlit.testing.v1 import AppTest

from mnist_core.digits_db import encode_png
from studio import host

PASSWORD = "chalk-and-talk"


def _button(at: AppTest, key: str):
    return at.button(key=key)


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error] + [e.value for e in at.sidebar.error]


def _saved_runs(runs, trained) -> list:
    """Two logged runs with their models saved; the newer one is active."""
    saved = []
    for message in ("older", "newer"):
        saved.append(runs.save_run(trained.result))
        runs.record(trained.config, trained.result, "completed", message, saved[-1])
    return saved


def _unlock(at: AppTest, password: str) -> AppTest:
    at.text_input(key="host_password_input").input(password)
    return _button(at, "host_unlock_btn").click().run()


@pytest.fixture
def password(monkeypatch):
    monkeypatch.setenv(host.PASSWORD_ENV, PASSWORD)
    return PASSWORD


def test_without_a_password_every_page_is_the_hosts(runs, monkeypatch):
    monkeypatch.delenv(host.PASSWORD_ENV, raising=False)
    at = run_app()
    assert "Host controls" not in [h.value for h in at.sidebar.subheader]
    assert not _button(at, "train_btn").disabled


def test_a_locked_page_cannot_train_or_change_models(runs, trained, password):
    _saved_runs(runs, trained)
    at = run_app()
    assert "Host controls" in [h.value for h in at.sidebar.subheader]
    at.selectbox(key="runs_choice").select_index(1).run()  # the older run: saved, not active
    for key in ("train_btn", "stop_btn", "make_active_btn", "pin_btn", "clear_log_btn"):
        assert _button(at, key).disabled, key
    assert _button(at, "train_btn").help == host.LOCKED == _button(at, "make_active_btn").help


def test_a_click_from_a_page_that_is_no_longer_unlocked_is_refused(runs, trained, password):
    """The browser shows locked buttons disabled; the callbacks refuse a click that arrives anyway."""
    older, newer = _saved_runs(runs, trained)
    at = _unlock(run_app(), PASSWORD)
    at.selectbox(key="runs_choice").select_index(1).run()
    at.session_state["host_unlocked"] = False  # the buttons below were drawn enabled
    _button(at, "train_btn").click().run()
    assert job_manager().job is None
    assert host.LOCKED in _errors(at)

    at.session_state["host_unlocked"] = True  # redraw them enabled, then lock again
    at.run()
    at.session_state["host_unlocked"] = False
    _button(at, "make_active_btn").click().run()
    assert runs.active_path() == newer.path.resolve()
    assert host.LOCKED in _errors(at)
    at.session_state["host_unlocked"] = True
    at.run()
    at.session_state["host_unlocked"] = False
    _button(at, "delete_model_btn").click().run()
    assert older.path.is_file()


def test_the_password_unlocks_this_page_only_and_lock_locks_it(runs, trained, password):
    older, _ = _saved_runs(runs, trained)
    at = run_app()
    _unlock(at, "chalk")
    assert any("Wrong password" in e for e in _errors(at))
    assert _button(at, "train_btn").disabled

    _unlock(at, PASSWORD)
    assert not _errors(at)
    assert "host_password_input" not in [t.key for t in at.sidebar.text_input]
    assert not _button(at, "train_btn").disabled
    at.selectbox(key="runs_choice").select_index(1).run()
    _button(at, "make_active_btn").click().run()
    assert runs.active_path() == older.path.resolve()

    other = run_app()  # another visitor's page stays locked
    assert _button(other, "train_btn").disabled

    _button(at, "host_lock_btn").click().run()
    assert _button(at, "train_btn").disabled


def test_the_password_can_come_from_secrets(runs, monkeypatch):
    monkeypatch.delenv(host.PASSWORD_ENV, raising=False)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets[host.SECRET_KEY] = PASSWORD
    at.run()
    assert _button(at, "train_btn").disabled
    _unlock(at, PASSWORD)
    assert not _button(at, "train_btn").disabled


def test_fine_tuning_is_locked_too(runs, password):
    from studio import resources

    store = resources.digit_store()
    image = np.zeros((28, 28), np.uint8)
    for i in range(12):
        store.add(i % 10, image, encode_png(image), "drawn", None)
    at = open_tab(run_app(), "My digits")
    button = _button(at, "finetune_btn")
    assert button.disabled and button.help == host.LOCKED
    _unlock(at, PASSWORD)
    assert not _button(at, "finetune_btn").disabled


def _class_digits(store, n: int) -> list[int]:
    image = np.zeros((28, 28), np.uint8)
    return [store.add(i % 10, image, encode_png(image), "drawn", None) for i in range(n)]


def _export_button(at: AppTest):
    (button,) = [b for b in at.get("download_button") if b.proto.label == "Export all (zip)"]
    return button.proto


def test_a_locked_page_cannot_import_delete_relabel_or_export_the_class_digits(runs, password, tmp_path):
    """The class's digits are what the host's fine-tune and *Include my digits* train on. The controls are drawn
    disabled, and a change sent anyway is refused by the server."""
    from mnist_core.digits_db import DigitStore
    from studio import resources

    store = resources.digit_store()
    first, second = _class_digits(store, 2)
    other = DigitStore(tmp_path / "other.sqlite")
    _class_digits(other, 3)
    at = open_tab(run_app(), "My digits")
    assert at.selectbox(key=f"mine_relabel_{first}").disabled
    popovers = {b.proto.popover.label: b.proto.popover for b in at.get("popover")}
    assert popovers["Delete"].disabled and popovers["Delete"].help == host.LOCKED
    assert at.file_uploader(key="mine_import").proto.disabled and _button(at, "mine_import_btn").disabled
    export = _export_button(at)
    assert export.disabled and export.help == host.LOCKED and not export.deferred_file_id  # no zip is made for it

    def drawn_unlocked_then_locked() -> None:  # a browser cannot change a disabled widget: one drawn enabled is sent
        at.session_state["host_unlocked"] = True
        at.run()
        at.session_state["host_unlocked"] = False

    drawn_unlocked_then_locked()
    at.selectbox(key=f"mine_relabel_{first}").set_value(7).run()
    assert host.LOCKED in _errors(at) and store.get(first).label == 0
    assert at.selectbox(key=f"mine_relabel_{first}").value == 0  # shows the label that stands
    drawn_unlocked_then_locked()
    _button(at, f"mine_delete_{second}").click().run()
    assert host.LOCKED in _errors(at) and store.count() == 2
    drawn_unlocked_then_locked()
    at.session_state["host_unlocked"] = True  # and drawn again with the file chosen
    at.file_uploader(key="mine_import").set_value(("theirs.zip", other.export_zip(), "application/zip")).run()
    at.session_state["host_unlocked"] = False
    _button(at, "mine_import_btn").click().run()
    assert host.LOCKED in _errors(at) and store.count() == 2

    _unlock(at, PASSWORD)  # the host may do all of it
    assert not at.selectbox(key=f"mine_relabel_{first}").disabled and _export_button(at).deferred_file_id
    _button(at, "mine_import_btn").click().run()
    assert store.count() == 5
    at.selectbox(key=f"mine_relabel_{first}").set_value(7).run()
    assert store.get(first).label == 7


def test_a_locked_page_may_still_label_its_own_drawings(runs, password, mnist):
    import io

    from PIL import Image

    from studio import resources

    (_, _), (x_test, _) = mnist
    buf = io.BytesIO()
    Image.fromarray(255 - np.kron(x_test[0], np.ones((4, 4), dtype=np.uint8))).save(buf, "PNG")
    at = run_app()
    at.file_uploader(key="upload").set_value(("seven.png", buf.getvalue(), "image/png")).run()
    _button(at, "teach-upload_7").click().run()
    assert resources.digit_store().count() == 1 and not _errors(at)


def test_unlocking_is_slowed_after_five_wrong_passwords(runs, password):
    at = run_app()
    for _ in range(host.FREE_MISSES - 1):
        _unlock(at, "guess")
    assert any(e == "Wrong password: the host controls stay locked." for e in _errors(at))
    _unlock(at, "guess")  # the fifth
    assert any(e.endswith(f"After {host.FREE_MISSES} wrong tries, this page may try once every 2 s.")
               for e in _errors(at))
    _unlock(at, PASSWORD)  # at once: not even compared
    assert any(e.startswith("Too many wrong passwords: this page may try again in ") for e in _errors(at))
    assert _button(at, "train_btn").disabled

    other = _unlock(run_app(), PASSWORD)  # another page is not slowed by this one's misses
    assert not _button(other, "train_btn").disabled

    time.sleep(host.RETRY_S)
    _unlock(at, PASSWORD)
    assert not _errors(at) and not _button(at, "train_btn").disabled


def test_a_locked_pages_clear_the_log_is_refused(runs, password):
    from mnist_core.training import TrainConfig

    runs.record(TrainConfig.for_preset("seed"), None, "failed", "Training failed: the disk is full.", None)
    at = _unlock(run_app(), PASSWORD)  # drawn enabled
    at.session_state["host_unlocked"] = False
    _button(at, "clear_log_btn").click().run()
    assert host.LOCKED in _errors(at) and len(runs.history()) == 1
    at.session_state["host_unlocked"] = True
    at.run()
    _button(at, "clear_log_btn").click().run()
    assert runs.history() == []
