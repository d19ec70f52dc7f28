"""What pages show when something goes wrong: one line, no server paths, and the rest of the page still drawn."""

from __future__ import annotations

import os
import re
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import streamlit as st

from mnist_core import store
from studio import resources

# What Markdown (with GitHub's extensions) and Streamlit's own (:red[...], :material/icon:, $maths$) act on, each
# escaped with a backslash: emphasis, code, links, HTML and entities, tables, headings, and lists at the start.
_MARKDOWN = re.compile(r"[\\`*_\[\]<>$~|#&]|^[-+]|^\d+[.)]")
# What a backslash does not stop (measured in Streamlit 1.67's page): links made of bare "http://", "www." and
# e-mail addresses, and ":red[" and ":material/": a zero-width space after the colon, the "www" or the "@" breaks them.
_LINKS = re.compile(r"(?<=:)(?=[a-z/])|(?<=www)(?=\.)|(?<=@)(?=\S)", re.IGNORECASE)
ZERO_WIDTH_SPACE = "\u200b"


def public(text: object) -> str:
    """Text that does not come from the page's own wording (an exception, a file name) as a page may show it.

    The one way the studio shows a name the user gave (an upload's, a zip entry's) or a message that may hold one.
    The server's own folders are left out of paths ("runs/models/x.keras", not where runs/ lives), line breaks become
    spaces, and every character Markdown would act on is escaped, so a file named `**x** [y](http://z)` shows as
    typed, bold and link-free. Not for use inside backticks, where escapes show.
    """
    text = re.sub(r"[\r\n]+", " ", str(text))
    for prefix in _server_folders():
        text = text.replace(prefix, "")
    text = _LINKS.sub(ZERO_WIDTH_SPACE, text)
    return _MARKDOWN.sub(lambda m: m[0][:-1] + "\\" + m[0][-1], text)  # "12." -> "12\.": only the mark


def _server_folders() -> list[str]:
    """Absolute folders to cut from paths, longest first: where runs/ lives, the package's, the working one."""
    folders = {resources.runs().root.resolve().parent, store.DEFAULT_MODEL.parents[2], Path.cwd()}
    return sorted((str(f).rstrip(os.sep) + os.sep for f in folders if f != Path("/")), key=len, reverse=True)


@contextmanager
def section(name: str) -> Iterator[None]:
    """Draw one part of the page (the sidebar, a tab); if it fails, one line says so and the next part is drawn."""
    try:
        yield
    except Exception as exc:  # Streamlit's rerun and stop are not Exceptions: they pass
        traceback.print_exc()  # the whole story, for the server's log only
        st.error(f"{name} could not be drawn: {type(exc).__name__}: {public(exc)}", icon=":material/error:")
