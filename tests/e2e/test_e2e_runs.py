"""The Runs list in a real browser: comparing runs side by side."""

from __future__ import annotations

from e2e_helpers import assert_no_exception, open_tab, run_server, save_screenshot
from playwright.sync_api import expect

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


def test_two_runs_compared_on_one_chart_with_what_differs(tmp_path, open_page):
    store = RunStore(tmp_path / "runs")
    _logged_run(store, TrainConfig.for_preset("seed", epochs=3), [0.975, 0.982, 0.986], 150.0)
    _logged_run(store, TrainConfig.for_preset("fast", epochs=3, augment=True), [0.981, 0.988, 0.990], 21.0)
    with run_server(store.root, tmp_path / "streamlit.log") as url:
        page = open_page(url)
        open_tab(page, "Train")
        page.get_by_text("Compare runs").click()
        picker = page.get_by_test_id("stMultiSelect").filter(has_text="Runs to compare")
        for preset in ("seed", "fast"):
            picker.get_by_role("combobox").click()
            page.get_by_role("option").filter(has_text=f"· {preset} ·").click()
        page.keyboard.press("Escape")
        box = page.get_by_test_id("stExpander").filter(has_text="Compare runs")
        charts = box.get_by_test_id("stVegaLiteChart")
        expect(charts).to_have_count(2, timeout=30_000)
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

