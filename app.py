"""MNIST Digit Studio: train a CNN, browse MNIST, and draw digits for the model to read.

Run with `streamlit run app.py`. The page only lays out tabs; each tab is one function in studio/.
"""

import streamlit as st

from studio import (draw_tab, evaluate_tab, gallery_tab, guard, my_digits_tab, resources, sidebar, state, train_tab,
                    watch)


def main() -> None:
    st.set_page_config(page_title="MNIST Digit Studio", page_icon="✏️", layout="wide")
    state.init()
    with st.sidebar, guard.section("The sidebar"):  # a part that fails says so in one line; the rest is drawn
        sidebar.render()

    # Every tab renders on every run, so no tab's widgets lose their state. The server knows which tab is open (a
    # switch is one full run) only so that hidden live views stop redrawing themselves (studio.polling). The
    # evaluation is cached once per model, and rendered last, so that a new model's first evaluation (a second
    # or more) holds up no other tab.
    train, evaluate, gallery, draw, mine = st.tabs(
        [":material/model_training: Train", ":material/analytics: Evaluate", ":material/grid_view: Gallery",
         ":material/draw: Draw", ":material/person_edit: My digits"], key="tabs", on_change="rerun")
    with train, guard.section("The Train tab"):
        train_tab.render(visible=bool(train.open))
    with gallery, guard.section("The Gallery tab"):
        gallery_tab.render()
    with draw, guard.section("The Draw tab"):
        draw_tab.render(visible=bool(draw.open))
    with mine, guard.section("The My digits tab"):
        my_digits_tab.render(visible=bool(mine.open))
    with evaluate, guard.section("The Evaluate tab"):
        evaluate_tab.render()

    with guard.section("The watcher of training runs"):
        watch.render()
    resources.settle_heap()


# Streamlit runs this file as __main__. A training process (mnist_core.jobs, started with "spawn") imports it
# again as its main module, under another name: it must draw nothing there.
if __name__ == "__main__":
    main()
