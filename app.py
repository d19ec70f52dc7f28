"""MNIST Digit Studio: train a CNN, browse MNIST, and draw digits for the model to read.

Run with `streamlit run app.py`. The page only lays out tabs; each tab is one function in studio/.
"""

import streamlit as st

from studio import (draw_tab, evaluate_tab, gallery_tab, guard, my_digits_tab, resources, sidebar, state, train_tab,
                    watch)


def main() -> None:
    st.set_page_config(page_title="MNIST Digit Studio", page_icon="✏️", layout="wide")
    state.init()
    shown = watch.server_state()  # before anything is drawn: see studio.watch.render
    with st.sidebar, guard.section("The sidebar"):  # a part that fails says so in one line; the rest is drawn
        sidebar.render()

    # The Train and Draw tabs render on every run: their state lives partly in the browser (a drawing on the pad,
    # an upload, the network designer's edits), which a tab that is not drawn would lose. The other three render
    # only while open (studio.state keeps their widgets' choices): a full run of the page, such as a page opening,
    # a tab switch or the end of a run, costs the server about a third as much (README, "Tabs drawn only while
    # open"). The server knows which tab is open (a switch is one full run), so hidden live views also stop
    # redrawing themselves (studio.polling).
    train, evaluate, gallery, draw, mine = st.tabs(
        [":material/model_training: Train", ":material/analytics: Evaluate", ":material/grid_view: Gallery",
         ":material/draw: Draw", ":material/person_edit: My digits"], key="tabs", on_change="rerun")
    with train, guard.section("The Train tab"):
        train_tab.render(visible=bool(train.open))
    if gallery.open:
        with gallery, guard.section("The Gallery tab"):
            gallery_tab.render()
    with draw, guard.section("The Draw tab"):
        draw_tab.render(visible=bool(draw.open))
    if mine.open:
        with mine, guard.section("The My digits tab"):
            my_digits_tab.render()
    if evaluate.open:
        with evaluate, guard.section("The Evaluate tab"):
            evaluate_tab.render()

    with guard.section("The watcher of training runs"):
        watch.render(shown)
    resources.settle_heap()


# Streamlit runs this file as __main__. A training process (mnist_core.jobs, started with "spawn") imports it
# again as its main module, under another name: it must draw nothing there.
if __name__ == "__main__":
    main()
