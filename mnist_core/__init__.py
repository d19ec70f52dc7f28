"""mnist_core: the engine of the MNIST digit studio (data, models, training, storage, prediction).

Plain Python and TensorFlow; no UI code. Import the submodules you need, e.g.
`from mnist_core.training import TrainConfig, train`.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the CLI and UI
