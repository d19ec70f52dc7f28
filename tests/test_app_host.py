"""AppTest: host-only controls. With a password set, a page that has not been unlocked can draw and browse but
cannot train, stop, fine-tune, make a model active or delete one; the sidebar unlocks it."""

from __future__ import annotations

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
