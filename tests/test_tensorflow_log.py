"""TensorFlow's load lines (oneDNN, CUDA drivers): at most once in the server's process, none in its training
process (mnist_core.load_tensorflow, called by `import studio`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mnist_core import _shown

REPO = Path(__file__).resolve().parents[1]

# The server's first import is the studio's; the training process (spawned) imports app.py's modules again.
SERVER_AND_CHILD = """
import multiprocessing, sys
import studio, keras, mnist_core.training

def child():
    import studio
    print("child imported", file=sys.stderr)

if __name__ == "__main__":
    print("---- child", file=sys.stderr, flush=True)
    p = multiprocessing.get_context("spawn").Process(target=child)
    p.start()
    p.join()
"""


def test_the_server_prints_each_load_line_once_and_its_child_none(tmp_path):
    script = tmp_path / "server.py"
    script.write_text(SERVER_AND_CHILD)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user starts it
    p = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    server, child = p.stderr.split("---- child\n")
    assert server.count("oneDNN custom operations") <= 1 and server.count("cuda drivers") <= 1, server
    assert server.count("before absl::InitializeLog") <= 1, server
    assert "child imported" in child
    assert "oneDNN" not in child and "cuda drivers" not in child and "absl::InitializeLog" not in child, child


LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796588045.807231   12765 port.cc:153] oneDNN custom operations are on.\n",
    "I0000 00:00:1796588045.807655   12765 cudart_stub.cc:31] Could not find cuda drivers on your machine.\n",
    "E0000 00:00:1796588046.100000   12765 cuda_dnn.cc:8579] Unable to register cuDNN factory\n",
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796588048.135887   12765 port.cc:153] oneDNN custom operations are on.\n",
    "I0000 00:00:1796588048.151237   12765 cudart_stub.cc:31] Could not find cuda drivers on your machine.\n",
]


def test_load_lines_are_shown_once_each_errors_always_and_in_a_child_only_errors():
    assert _shown(LINES, main_process=True) == LINES[:4]
    assert _shown(LINES, main_process=False) == [LINES[3]]
