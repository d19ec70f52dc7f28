"""AppTest: names the user gave (an upload's, a zip entry's) are shown as typed, never as Markdown.

The page's text is Markdown, so each check renders the element's text with a real CommonMark renderer
(markdown-it-py) and compares what a reader would see with the name as typed: no bold, no link, no code span.
"""

from __future__ import annotations

import html
import io
import re
import zipfile

import numpy as np
import pytest
from apptest_support import open_tab, run_app
from markdown_it import MarkdownIt
from PIL import Image

from mnist_core.digits_db import DigitStore, encode_png
from studio import guard

UPLOAD_NAME = "**bold** [x](http://e.com).png"
ENTRY_NAME = "digits/a`b` **c**.png"  # a backtick closed the code span the list of skipped files put names in


def rendered(markdown: str) -> tuple[str, str]:
    """The HTML CommonMark makes of `markdown`, and the text a reader sees in it."""
    page = MarkdownIt("commonmark").render(markdown)
    return page, html.unescape(re.sub(r"<[^>]+>", "", page)).strip()


def assert_shown_as_typed(markdown: str, name: str) -> None:
    """CommonMark makes no bold, link or code of it, and neither can what it leaves out (GitHub's bare links, and
    Streamlit's :red[...] and :material/icon:): a zero-width space breaks them, and is all that differs."""
    page, text = rendered(markdown)
    assert not re.search(r"<(strong|em|a|code|h\d|del)\b", page), page
    assert name in text.replace(guard.ZERO_WIDTH_SPACE, ""), (name, text)
    assert not re.search(r"://|www\.|@\w|:red\[|:material/", text), text


@pytest.mark.parametrize("name", [UPLOAD_NAME, ENTRY_NAME, "&amp; :red[c] :material/home: x@y.org www.x.org",
                                  "12) item", "3. item", "- dash", "# head", "$x^2$ ~~s~~ <b>h</b> a|b"])
def test_every_name_is_escaped_to_show_as_typed(runs, name):
    """Each of these was checked in Chromium too: shown as typed, no link, bold, code, list, heading or icon."""
    escaped = guard.public(name)
    assert_shown_as_typed(escaped, name)
    assert not re.search(r"<(ul|ol)\b", rendered(escaped)[0])


def test_a_name_on_two_lines_is_shown_on_one(runs):
    assert rendered(guard.public("a\n- b\n# c.png"))[1] == "a - b # c.png"


def test_an_uploads_name_is_its_pictures_caption_as_typed(runs, mnist):
    (_, _), (x_test, _) = mnist
    buf = io.BytesIO()
    Image.fromarray(255 - np.kron(x_test[0], np.ones((4, 4), dtype=np.uint8))).save(buf, "PNG")
    at = run_app()
    at.file_uploader(key="upload").set_value((UPLOAD_NAME, buf.getvalue(), "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    (caption,) = [c for image in at.image for c in image.captions if "bold" in c]
    assert_shown_as_typed(caption, UPLOAD_NAME)


def test_a_skipped_zip_entrys_name_is_listed_as_typed(runs, tmp_path):
    image = np.zeros((28, 28), np.uint8)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(ENTRY_NAME, b"not a picture")
        archive.writestr("labels.csv", f"file,label\n{ENTRY_NAME},3\n")
    DigitStore.in_folder(runs.root).add(1, image, encode_png(image), "drawn")
    at = open_tab(run_app(), "My digits")
    at.file_uploader(key="mine_import").set_value(("class.zip", buf.getvalue(), "application/zip")).run()
    at.button(key="mine_import_btn").click().run()
    (box,) = [e for e in at.expander if e.label.startswith("Skipped files")]
    (listed,) = [m.value for m in box.markdown]
    assert_shown_as_typed(listed, f"{ENTRY_NAME}: not a readable PNG picture")
