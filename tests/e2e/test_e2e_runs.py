"""The Train tab's network designer and the Runs list in a real browser: design, refuse, train, compare.

Both tests use the module's server: two logged runs compared, then a designed network trained beside them."""

from __future__ import annotations

import time

from e2e_helpers import (RUN_MS, assert_no_exception, choose, open_tab, save_screenshot, set_number, set_recipe,
                         wait_idle)
from playwright.sync_api import Page, expect

from mnist_core.progress import EpochPoint
from mnist_core.runs import RunStore
from mnist_core.training import TrainConfig, TrainResult


def _logged_run(store: RunStore, config: TrainConfig, accuracies: list[float], seconds: float) -> None:
    history = tuple(EpochPoint(epoch=i, loss=2 * (1 - a), accuracy=a - 0.01, val_loss=1.5 * (1 - a), val_accuracy=a)
                    for i, a in enumerate(accuracies, 1))
    result = TrainResult(model=None, config=config, status="completed", message="", history=history,
                         test_loss=history[-1].val_loss, test_accuracy=accuracies[-1], seconds=seconds,
                         precision=config.precision)
    store.record(config, result, "completed", f"Completed {len(history)} epoch(s).", None)


def _pick(page: Page, picker, text: str) -> None:
    """Open the multiselect's list and click the option containing `text`."""
    choose(page, page.get_by_role("option").filter(has_text=text), picker.get_by_role("combobox").click,
           f"no option {text!r} in the list", 10_000)


def test_two_runs_compared_on_one_chart_with_what_differs(runs_dir, server, open_page):
    store = RunStore(runs_dir)  # the module's server reads its runs log afresh on every page run
    _logged_run(store, TrainConfig.for_preset("seed", epochs=3), [0.975, 0.982, 0.986], 150.0)
    _logged_run(store, TrainConfig.for_preset("fast", epochs=3, augment=True), [0.981, 0.988, 0.990], 21.0)
    page = open_page(server)
    open_tab(page, "Train")
    wait_idle(page)
    page.get_by_text("Compare runs").click()
    picker = page.get_by_test_id("stMultiSelect").filter(has_text="Runs to compare")
    for preset in ("seed", "fast"):
        _pick(page, picker, f"· {preset} ·")
    page.keyboard.press("Escape")
    box = page.get_by_test_id("stExpander").filter(has_text="Compare runs")
    charts = box.get_by_test_id("stVegaLiteChart")
    expect(charts).to_have_count(2)
    for chart in (charts.nth(0), charts.nth(1)):  # one line a run, each named in the legend
        expect(chart).to_contain_text("1: seed")
        expect(chart).to_contain_text("2: fast")
    expect(charts.nth(0)).to_contain_text("Test accuracy")
    expect(charts.nth(1)).to_contain_text("Test loss")
    table = box.get_by_test_id("stTable")
    for row in ("Network", "Batch size", "Learning rate", "Schedule", "Augmentation", "Test accuracy",
                "Training time"):
        expect(table).to_contain_text(row)
    expect(table).not_to_contain_text("Seed")  # 42 in both: not a difference
    save_screenshot(page, "runs-compare", docs_name="compare")
    assert_no_exception(page)


# The designer's table is a canvas grid: cells are reached by position. Rows are 35 px; the first column holds the
# row markers (tick one, press Delete), the Layer column follows, then Filters.
ROW_PX, MARKER_X, LAYER_X, FILTERS_X = 35, 15, 100, 270


def _cell(page: Page, x: float, row: int) -> tuple[float, float]:
    box = page.locator(".st-key-design_table_0").bounding_box()
    return box["x"] + x, box["y"] + ROW_PX * row + ROW_PX / 2


def _until(page: Page, action, shown: str, tries: int = 3) -> None:
    """Do a table edit until the server's summary shows its effect: an edit made while the page reran from the
    last one can be dropped by the grid, so each is checked and made again if needed."""
    for attempt in range(tries):
        wait_idle(page)
        time.sleep(0.5)  # the grid redraws after the run
        action()
        try:
            expect(page.get_by_text(shown).first).to_be_attached(timeout=10_000)  # a grid's cells are not "visible"
            return
        except AssertionError:
            if attempt == tries - 1:
                raise


def _delete_row(page: Page, row: int) -> None:
    page.mouse.click(*_cell(page, MARKER_X, row))
    page.keyboard.press("Delete")


def _set_filters(page: Page, row: int, value: int) -> None:
    page.keyboard.press("Escape")  # no row left ticked from a deletion
    page.mouse.click(*_cell(page, FILTERS_X, row))
    page.keyboard.press("Enter")  # opens the cell's editor
    page.wait_for_timeout(300)  # the editor's input takes the keys only once it is there
    page.keyboard.press("Control+a")
    page.keyboard.type(str(value), delay=50)
    page.wait_for_timeout(300)
    page.keyboard.press("Enter")


def _add_row(page: Page, row: int, layer: str) -> None:
    """Add a row at the bottom (the toolbar's +) and pick its layer type in the cell's dropdown."""
    grid = page.locator(".st-key-design_table_0")
    grid.hover()
    grid.get_by_role("button", name="Add row").click()
    page.keyboard.press("Escape")

    def open_list() -> None:
        page.mouse.dblclick(*_cell(page, LAYER_X, row))
        page.mouse.click(*_cell(page, LAYER_X, row))  # opens the list of layer types

    choose(page, page.get_by_role("option", name=layer, exact=True), open_list,
           f"row {row}'s list of layer types did not open", 15_000)


def test_design_a_network_see_a_bad_one_refused_train_it_and_find_it_in_runs(server, open_page):
    page = open_page(server)
    set_recipe(page, epochs=1, train_images=2_000, test_images=500)
    page.get_by_test_id("stRadio").get_by_text("custom", exact=True).click()
    expect(page.get_by_text("Total parameters: 121,930")).to_be_visible()  # the seed's layers
    for attempt in range(3):  # the rerun that loaded custom's recipe (10 epochs) can overwrite a value typed meanwhile
        wait_idle(page)
        try:
            if attempt:
                set_number(page, "Epochs", 2)  # the box may show 1 while the server has 10: typing 1 sends nothing
            set_number(page, "Epochs", 1)
            expect(page.get_by_text("63 batches per epoch · 63 in total.")).to_be_visible()
            break
        except AssertionError:
            if attempt == 2:
                raise
    page.locator(".st-key-design_table_0").scroll_into_view_if_needed()

    # conv32, pool2, conv64, pool2, flatten, dense64 -> conv32, pool2, flatten, dense64: 347,146 parameters
    _until(page, lambda: _delete_row(page, 4), "Total parameters: 515,146")  # the second pool gone: 11x11x64
    _until(page, lambda: _delete_row(page, 3), "Total parameters: 347,146")
    _until(page, lambda: _set_filters(page, 1, 16), "Total parameters: 173,930")
    _until(page, lambda: _add_row(page, 5, "Dropout"), "dropout 0.25")
    # A design that cannot work: a pool after the image was flattened. Its row is named, Train is off.
    _until(page, lambda: _add_row(page, 6, "MaxPooling2D"), "Row 6 (maxpool 2): ")
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_disabled()
    _until(page, lambda: _delete_row(page, 6), "Total parameters: 173,930")
    save_screenshot(page, "designer", docs_name="designer")

    train = page.get_by_role("button", name="Train", exact=True)
    expect(train).to_be_enabled()
    train.click()
    layers = "conv16k3,pool2,flatten,dense64,dropout0.25"
    runs = page.get_by_test_id("stDataFrame").filter(has_text="Finished (UTC)")
    expect(runs).to_contain_text(f"custom · {layers}", timeout=RUN_MS)
    expect(page.get_by_text("Saved and made active for every session")).to_be_visible()
    expect(page.get_by_test_id("stSidebar")).to_contain_text("custom")  # the new active model
    assert_no_exception(page)
