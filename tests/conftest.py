"""Shared fixtures: real MNIST (the vendored copy) and one tiny model trained once per session.

Everything here is real TensorFlow on small slices of MNIST, sized for a 2-core CPU.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `pytest` (not `python -m pytest`) does not put the repo root on sys.path
    sys.path.insert(0, str(REPO))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mnist_core import data  # noqa: E402
from mnist_core.progress import ProgressSnapshot, TrainingProgress  # noqa: E402
from mnist_core.training import TrainConfig, TrainResult, train  # noqa: E402

# The test files that take longest, heaviest first (the sum of their tests' times, measured with four workers on 2
# cores). With --dist loadfile and --no-loadscope-reorder (scripts/test.sh), pytest-xdist hands files to its workers
# in collection order, each worker taking its next file when two tests of its current one are left: starting these
# first lets the workers finish together instead of one working alone on a long file at the end. (xdist's own
# reordering, by number of tests, would start them last.)
LONGEST_FIRST = ("e2e/test_e2e_training.py", "test_benchmark.py", "e2e/test_e2e_teach.py", "e2e/test_e2e_classroom.py",
                 "test_app.py", "e2e/test_e2e_runs.py", "e2e/test_e2e_load_benchmark.py", "test_app_my_digits.py",
                 "test_cli.py", "test_jobs.py", "test_fault_injection.py", "test_training.py", "e2e/test_e2e_studio.py",
                 "test_predict.py", "test_export.py", "test_app_bad_state.py", "test_app_host.py", "test_explain.py",
                 "test_tensorflow_log.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    tests = Path(__file__).parent
    items.sort(key=lambda item: rank.get(item.path.relative_to(tests).as_posix(), len(rank)))  # stable sort


# The tutorial's recipe on a slice: 1 epoch over 5,000 images reaches ~94% on the first 1,000 test
# images in a few seconds (2,000 images give only ~88%, too close to the 90% bar to be robust).
TINY_CONFIG = TrainConfig(train_subset=5000, test_subset=1000, epochs=1)


@dataclass(frozen=True)
class TrainedRun:
    config: TrainConfig
    result: TrainResult
    snapshot: ProgressSnapshot  # the progress record once train() returned


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    """Small copies of the real handwriting sets, laid out like shared/eval (see its README)."""
    return REPO / "tests" / "data" / "eval"


@pytest.fixture(scope="session")
def mnist() -> tuple[data.Split, data.Split]:
    """((x_train, y_train), (x_test, y_test)) from the vendored file, uint8."""
    return data.load_mnist(data.VENDORED_NPZ)


@pytest.fixture(scope="session")
def test_digits(mnist) -> tuple[np.ndarray, np.ndarray]:
    """The first 1,000 test images as floats in [0, 1], shape (1000, 28, 28), and their labels."""
    (_, _), (x_test, y_test) = mnist
    return x_test[:1000].astype(np.float32) / 255.0, y_test[:1000]


@pytest.fixture(scope="session")
def trained() -> TrainedRun:
    """One short real training run shared by every test file (do not train or mutate its model)."""
    progress = TrainingProgress()
    result = train(TINY_CONFIG, progress)
    return TrainedRun(config=TINY_CONFIG, result=result, snapshot=progress.snapshot())


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """AppTest tests: an empty RunStore for this test, named by the env var before the app script runs, and
    Streamlit's process-wide caches cleared before and after (apptest_support.py)."""
    from apptest_support import clear_caches, stop_running_job

    from mnist_core.runs import RUNS_ENV, RunStore

    root = tmp_path / "runs"
    monkeypatch.setenv(RUNS_ENV, str(root))
    clear_caches()
    yield RunStore(root)
    stop_running_job()  # a failed test must not leave training running into the next one
    clear_caches()


@pytest.fixture(scope="session")
def saved_model(trained, tmp_path_factory) -> Path:
    """The session's trained model saved once with its sidecar; treat as read-only."""
    from mnist_core.store import save_model

    path = tmp_path_factory.mktemp("saved") / "tiny.keras"
    save_model(trained.result.model, path, config=trained.config.to_dict(),
               test_accuracy=trained.result.test_accuracy, seconds=trained.result.seconds)
    return path
