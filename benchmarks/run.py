"""Benchmarks as a plain script:
python benchmarks/run.py [--quick] [--only training|callbacks|inference|handwriting|writers].

The same as `python -m mnist_core benchmark`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from mnist_core.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["benchmark", *sys.argv[1:]]))
