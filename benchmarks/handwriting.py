"""The handwriting benchmark as a plain script: python benchmarks/handwriting.py [--quick] [--models M.keras ...]
[--eval-dir DIR] [--fold-dir DIR].

The same as `python -m mnist_core benchmark --only handwriting`: Semeion and HwD-1000 from shared/eval (beside
the repository, or $MNIST_EVAL_DIR) drawn on the studio's canvas two ways and read by the shipped model and any
model file given; the pen digits read writer-disjoint, each writer by a fold model that never trained on them.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from mnist_core.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["benchmark", "--only", "handwriting", *sys.argv[1:]]))
