"""A real server with a host password: a pupil's page shows the class's digits but cannot import, export, relabel or
delete them; the host's unlocked page can (AppTest, tests/test_app_host.py, sends the refused changes anyway)."""

from __future__ import annotations

import numpy as np
from e2e_helpers import assert_no_exception, open_tab, run_server
from playwright.sync_api import Page, expect

from mnist_core.digits_db import DigitStore, encode_png
from studio.host import LOCKED, PASSWORD_ENV

PASSWORD = "chalk-and-talk"


def _controls(page: Page, ident: int) -> dict:
    """The My digits tab's controls that change or export the class's digits, for the digit `ident` (a control with a
    tooltip is in the page twice: its first copy)."""
    controls = {"relabel": f".st-key-mine_relabel_{ident} input", "delete": f".st-key-mine_delete_pop_{ident} button",
                "export": ".st-key-mine_export button", "import a zip": ".st-key-mine_import input[type=file]",
                "import": ".st-key-mine_import_btn button"}
    return {name: page.locator(selector).first for name, selector in controls.items()}


def test_a_locked_page_browses_the_class_digits_and_cannot_change_them(open_page, tmp_path):
    store = DigitStore.in_folder(tmp_path / "runs")
    image = np.zeros((28, 28), np.uint8)
    ident = [store.add(label, image, encode_png(image), "drawn") for label in (3, 5)][-1]
    with run_server(tmp_path / "runs", tmp_path / "streamlit.log", env={PASSWORD_ENV: PASSWORD}) as url:
        pupil = open_page(url)
        open_tab(pupil, "My digits")
        expect(pupil.get_by_text(f"#{ident} · label 5")).to_be_visible(timeout=60_000)  # browsing is open
        for name, control in _controls(pupil, ident).items():
            expect(control, name).to_be_disabled()
        pupil.locator(f".st-key-mine_delete_pop_{ident}").hover()
        expect(pupil.get_by_text(LOCKED).first).to_be_visible()  # the reason, on the disabled control

        teacher = open_page(url)
        box = teacher.get_by_test_id("stSidebar").get_by_label("Host password")
        box.fill(PASSWORD)
        box.press("Enter")
        expect(teacher.get_by_test_id("stSidebar")).to_contain_text("Unlocked on this page")
        open_tab(teacher, "My digits")
        for name, control in _controls(teacher, ident).items():
            if name != "import":  # enabled once a zip is chosen
                expect(control, name).to_be_enabled()
        teacher.locator(f".st-key-mine_relabel_{ident}").click()
        teacher.get_by_role("option", name="Label: 7").click()
        expect(teacher.get_by_text(f"#{ident} is now labelled 7.")).to_be_visible()
        assert store.get(ident).label == 7
        assert_no_exception(pupil)
        assert_no_exception(teacher)
