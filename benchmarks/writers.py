"""The personal benchmark as a plain script: python benchmarks/writers.py [--quick] [--eval-dir DIR].

The same as `python -m mnist_core benchmark --only writers`: each of the 30 pen-digits writers in
shared/eval (beside the repository, or $MNIST_EVAL_DIR) teaches the shipped model 5 of each digit,
drawn like the canvas draws, and the rest of their digits are read before and after the fine-tune.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from mnist_core.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["benchmark", "--only", "writers", *sys.argv[1:]]))
