"""mnist_core: the engine of the MNIST digit studio (data, models, training, storage, prediction).

Plain Python and TensorFlow; no UI code. Import the submodules you need, e.g.
`from mnist_core.training import TrainConfig, train`.
"""

import os

TF_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"  # TensorFlow reads it once, when it is first imported

# 3 keeps TensorFlow's C++ start-up chatter out of the CLI and the studio's log; 2 still lets the
# "failed call to cuInit" error through on every machine without a GPU. A user's own setting wins.
os.environ.setdefault(TF_LOG_LEVEL, "3")


def show_tensorflow_log() -> None:
    """Let all of TensorFlow's C++ log through; it only takes effect before TensorFlow is first imported."""
    os.environ[TF_LOG_LEVEL] = "0"
