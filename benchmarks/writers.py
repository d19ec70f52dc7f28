"""The personal benchmark as a plain script: python benchmarks/writers.py [--quick] [--fold-dir DIR].

The same as `python -m mnist_core benchmark --only writers`: each of the 30 pen-digits writers teaches 5 of
each digit, drawn like the canvas draws, to the model of their fold (the shipped recipe trained without
them: mnist_core.benchmark_pen), and the rest of their digits are read before and after the fine-tune.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from mnist_core.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["benchmark", "--only", "writers", *sys.argv[1:]]))
