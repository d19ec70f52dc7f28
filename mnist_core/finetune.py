"""Learning from the user's own digits: the fine-tune recipe, the held-out split, the mix with MNIST.

A fine-tune starts from a saved model's weights and trains on the user's labelled digits (each seen
many times, randomly rotated, shifted, scaled and made thinner or thicker) mixed with as many
replayed MNIST training digits, so the network learns the new hand without forgetting MNIST. Part of
the user's digits is held out to measure the gain. Training from scratch can include them too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The fine-tune recipe (TrainConfig.for_finetune): short, gentle, augmented.
EPOCHS = 3  # passes over the mix
BATCH_SIZE = 64  # images per gradient step
LEARNING_RATE = 2e-4  # one-cycle peak: a fifteenth of the best preset's, so what MNIST taught stays
REPLAY_IMAGES = 4_000  # MNIST training digits replayed alongside the user's
USER_SHARE = 0.25  # the user's digits, repeated, make this share of a fine-tune's images
HOLDOUT_SHARE = 0.2  # of each digit's examples, held out to measure the gain
MIN_DIGITS = 10  # the fewest labelled digits worth a fine-tune
SCRATCH_USER_SHARE = 0.02  # training from scratch: the user's digits, repeated, make this share of the images


def is_finetune(config: dict) -> bool:
    """A recorded run's or saved model's config (TrainConfig.to_dict()) is a fine-tune's: it names its parent."""
    return config.get("parent") is not None


@dataclass(frozen=True)
class UserSplit:
    """The user's digits, split into the ones trained on and the ones held out (uint8 images)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_held: np.ndarray
    y_held: np.ndarray


@dataclass(frozen=True)
class PersonalReport:
    """What a run with the user's digits saw, and for a fine-tune the accuracies before and after."""

    trained_on: int  # the user's digits trained on
    held_out: int  # the user's digits kept aside to measure
    user_before: float | None  # accuracy on the held-out digits; None when none were held out
    user_after: float | None
    mnist_before: float | None  # accuracy on the MNIST test digits; None when training from scratch
    mnist_after: float | None


def split_holdout(x: np.ndarray, y: np.ndarray, share: float, seed: int) -> UserSplit:
    """Hold out `share` of each digit's examples (at least one where a digit has two or more), seeded."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(y), dtype=bool)
    for digit in np.unique(y):
        where = np.flatnonzero(y == digit)
        if share > 0 and len(where) >= 2:
            held[rng.choice(where, size=max(1, round(share * len(where))), replace=False)] = True
    return UserSplit(x[~held], y[~held], x[held], y[held])


def mix(user_x: np.ndarray, user_y: np.ndarray, mnist_x: np.ndarray, mnist_y: np.ndarray,
        user_share: float) -> tuple[np.ndarray, np.ndarray]:
    """MNIST digits and the user's, repeated so they make about `user_share` of the result."""
    if len(user_x) == 0:
        return mnist_x, mnist_y
    repeats = max(1, round(user_share / (1 - user_share) * len(mnist_x) / len(user_x)))
    return (np.concatenate([mnist_x, np.tile(user_x, (repeats, 1, 1))]),
            np.concatenate([mnist_y, np.tile(user_y, repeats)]).astype(mnist_y.dtype))


def replay_sample(x: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n MNIST training digits picked at random (seeded), to be replayed during a fine-tune."""
    pick = np.random.default_rng(seed).choice(len(x), size=min(n, len(x)), replace=False)
    return x[pick], y[pick]
