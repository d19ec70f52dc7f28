"""Write mnist_core/assets/pendigits.npz from UCI's pen trajectories (UNIPEN text), compactly.

Usage: python scripts/vendor_pendigits.py [EVAL_DIR]
(the folder holding pendigits/pendigits-orig.tra; default: shared/eval beside the repository). Run once;
the result is committed and checked by tests/test_pendigits.py.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from mnist_core import evalsets, pendigits  # noqa: E402

if __name__ == "__main__":
    digits = evalsets.load_pendigits(sys.argv[1] if len(sys.argv) > 1 else None)
    strokes = [s for d in digits.strokes for s in d]
    np.savez_compressed(
        pendigits.VENDORED_NPZ,
        points=np.concatenate(strokes).astype(np.int16),  # x, y tablet units, y growing downwards
        stroke_ends=np.cumsum([len(s) for s in strokes]).astype(np.int32),
        digit_ends=np.cumsum([len(d) for d in digits.strokes]).astype(np.int32),
        labels=digits.labels.astype(np.uint8),
        writers=digits.writers.astype(np.uint8),
    )
    print(f"{pendigits.VENDORED_NPZ}: {len(digits):,} digits, {len(strokes):,} strokes, "
          f"{pendigits.VENDORED_NPZ.stat().st_size:,} bytes")
