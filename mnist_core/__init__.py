"""mnist_core: the engine of the MNIST digit studio (data, models, training, storage, prediction).

Plain Python and TensorFlow; no UI code. Import the submodules you need, e.g.
`from mnist_core.training import TrainConfig, train`.
"""

import multiprocessing
import os
import re
import sys
import tempfile

TF_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"  # TensorFlow reads it once, when it is first imported

# 3 keeps TensorFlow's C++ start-up chatter out of the CLI and the studio's log; 2 still lets the
# "failed call to cuInit" error through on every machine without a GPU. A user's own setting wins.
os.environ.setdefault(TF_LOG_LEVEL, "3")

# What TensorFlow's libraries print while they load, before its log level applies: absl's notice, then info lines
# such as "I0000 00:00:1796588045.807231   12765 port.cc:153] oneDNN custom operations are on…".
_LOAD_LINE = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\) is called|I\d{4} [\d:.]+ +\d+ (.*)")


def show_tensorflow_log() -> None:
    """Let all of TensorFlow's C++ log through; it only takes effect before TensorFlow is first imported."""
    os.environ[TF_LOG_LEVEL] = "0"


def load_tensorflow() -> None:
    """Import TensorFlow, its load lines shown at most once each, and not at all in a child process (training).

    TensorFlow 2.21 loads two libraries that each print the same lines (oneDNN, the CUDA drivers) whatever the log
    level; they are caught on the process's stderr while it loads. Anything else it prints passes through, and
    with show_tensorflow_log() everything does. Call before anything else imports TensorFlow or Keras.
    """
    if "tensorflow" in sys.modules or os.environ.get(TF_LOG_LEVEL) == "0":
        import tensorflow  # noqa: F401
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        caught.seek(0)
        text = caught.read().decode(errors="replace")
    # A spawned child is named before it imports its parent's main module (app.py), which calls this.
    main_process = multiprocessing.current_process().name == "MainProcess"
    sys.stderr.write("".join(_shown(text.splitlines(keepends=True), main_process)))
    sys.stderr.flush()


def _shown(lines: list[str], main_process: bool) -> list[str]:
    """Of what TensorFlow printed while loading: every line but the load lines, and in the main process each
    load line the first time its message comes."""
    seen, shown = set(), []
    for line in lines:
        load = _LOAD_LINE.match(line)
        if load is None:
            shown.append(line)
        elif main_process and load.group(1) not in seen:
            seen.add(load.group(1))
            shown.append(line)
    return shown
