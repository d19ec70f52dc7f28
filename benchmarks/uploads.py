"""Upload memory benchmark: large pictures uploaded at once, through the studio's path and through the old one.

python benchmarks/uploads.py [--quick] [--uploads 6] [--repeats 3]

What the server does with an upload (studio/draw_tab.py): load_upload on the bytes, then preprocess_image. Each
case is one kind of picture uploaded by --uploads users at the same moment: one fresh Python process (so peaks do
not mix), one thread a user, each with its own copy of the bytes, released together by a barrier. Measured:

  peak RSS increase MB   the process's peak RSS (VmHWM) over its peak before the uploads began (after
                         the imports and one small upload of the same kind, so one-time costs are not counted);
                         the largest of --repeats runs, as how far the threads' peaks overlap varies run to run
  per upload MB          that increase over the number of uploads
  vs old path            the increase over the old path's on the same pictures, measured in the same run
  time s                 from the barrier to the last thread's end, the median of the runs
  result                 what load_upload returned: the decoded size, or refused

The old path is load_upload before the pixel cap: every picture decoded whole, up to 40,000,000 pixels (PIL's
Image.open, load, exif_transpose), then the same preprocess_image. The pictures, made here and kept in a temporary
folder: a 12 MP phone photo (JPEG, noisy paper, EXIF rotation), the largest PNG load_upload accepts (MAX_PIXELS, of
the costliest kind measured: a palette with a transparent background) and an RGBA PNG over the cap that the old path
accepted (40 MP: a ~170 KB file, the issue's). --quick: 2 uploads, 1 run a case and a 20 MP PNG over the cap, for CI.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere without installing

from mnist_core.preprocess import MAX_PIXELS, ImageUploadError, load_upload, preprocess_image  # noqa: E402

BOUND_MB = 100  # the most one upload may cost the server (issue 14)
OLD_MAX_PIXELS = 40_000_000  # load_upload's limit before the cap
CHILD_TIMEOUT_S = 300


@dataclass(frozen=True)
class Picture:
    label: str  # the table's first column
    kind: str  # "photo", "palette" or "rgba": see make_picture
    width: int
    height: int


def pictures(quick: bool) -> list[Picture]:
    over = (5000, 4000) if quick else (8000, 5000)  # over the cap; 40 MP was the old limit
    at_cap = (4000, MAX_PIXELS // 4000)
    return [Picture("phone photo, JPEG 4000x3000", "photo", 4000, 3000),
            Picture(f"PNG at the cap, {at_cap[0]}x{at_cap[1]} palette + transparency", "palette", *at_cap),
            Picture(f"PNG over the cap, {over[0]}x{over[1]} RGBA", "rgba", *over)]


def make_picture(kind: str, width: int, height: int) -> bytes:
    """A dark 7 on light paper, encoded as `kind`: a noisy JPEG photo held sideways, or a clean PNG."""
    image = Image.new("L", (width, height), 230)
    s, cx, cy = min(width, height), width / 2, height / 2
    ImageDraw.Draw(image).line([(cx - 0.15 * s, cy - 0.25 * s), (cx + 0.15 * s, cy - 0.25 * s),
                                (cx - 0.05 * s, cy + 0.25 * s)], fill=25, width=max(1, s // 30))
    out = io.BytesIO()
    if kind == "photo":  # sensor noise (±6 levels): a 1.5 MB file, not the few KB of a flat picture
        noise = np.random.default_rng(0).integers(-6, 7, (height, width, 3), dtype=np.int16)
        rgb = np.clip(np.asarray(image, dtype=np.int16)[..., None] + noise, 0, 255).astype(np.uint8)
        exif = Image.Exif()
        exif[0x0112] = 6  # orientation: the phone was held upright, so the server turns it
        Image.fromarray(rgb).save(out, "JPEG", quality=90, exif=exif.tobytes())
    elif kind == "palette":
        image.convert("P").save(out, "PNG", transparency=230)  # the paper is the transparent colour
    else:
        image.convert("RGBA").save(out, "PNG")
    return out.getvalue()


def old_load_upload(data: bytes) -> Image.Image:
    """load_upload before the cap, for pictures under its old 40 MP limit: decoded whole."""
    image = Image.open(io.BytesIO(data))
    assert image.width * image.height <= OLD_MAX_PIXELS, "the old path refused pictures over 40 MP"
    image.load()
    ImageOps.exif_transpose(image, in_place=True)
    return image


def upload(data: bytes, old: bool) -> str:
    """One user's upload, as the Draw tab handles it: the decoded size, or 'refused'."""
    try:
        image = old_load_upload(data) if old else load_upload(data)
    except ImageUploadError:
        return "refused"
    preprocess_image(image)
    return f"{image.width}x{image.height}"


def peak_rss_mb() -> float:
    """This process's peak RSS, MB. Linux's VmHWM: getrusage's ru_maxrss would carry the parent's over the exec."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024  # kB


def measure(picture: Picture, old: bool, uploads: int, path: Path) -> dict:
    """In this (fresh) process: `uploads` threads upload the picture at once; the peak RSS increase and the time."""
    upload(make_picture(picture.kind, picture.width // 8, picture.height // 8), old)  # imports and one-time costs
    data = path.read_bytes()
    copies = [bytes(bytearray(data)) for _ in range(uploads)]  # each user's own upload, as the server holds it
    start, results = threading.Barrier(uploads + 1), [""] * uploads

    def user(i: int) -> None:
        start.wait()
        results[i] = upload(copies[i], old)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(uploads)]
    for thread in threads:
        thread.start()
    before = peak_rss_mb()
    t0 = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - t0
    return {"increase_mb": peak_rss_mb() - before, "seconds": seconds, "results": sorted(set(results))}


def run_case(picture: Picture, old: bool, uploads: int, path: Path) -> dict:
    """measure() in a fresh Python process, so that no other case's peak is in it."""
    args = [sys.executable, __file__, "--child", json.dumps([asdict(picture), old, uploads, str(path)])]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"case {picture.label} ({'old' if old else 'new'}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


def run_worst(picture: Picture, old: bool, uploads: int, path: Path, repeats: int) -> dict:
    """run_case `repeats` times: the run with the largest peak, with the median time of all."""
    runs = [run_case(picture, old, uploads, path) for _ in range(repeats)]
    return {**max(runs, key=lambda run: run["increase_mb"]), "seconds": statistics.median(r["seconds"] for r in runs)}


def table(rows: list[tuple[str, str, dict, dict]], uploads: int) -> str:
    """One row a case: (pictures, path, its measure(), the old path's measure() on the same pictures)."""
    lines = ["| pictures | path | uploads | peak RSS increase MB | per upload MB | vs old path | time s | result |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for label, path, case, old in rows:
        lines.append(f"| {label} | {path} | {uploads} | {case['increase_mb']:,.0f} | "
                     f"{case['increase_mb'] / uploads:,.1f} | {case['increase_mb'] / old['increase_mb']:.2f}× | "
                     f"{case['seconds']:.2f} | {', '.join(case['results'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI: 2 uploads, 1 run a case, a 20 MP PNG over the cap")
    parser.add_argument("--uploads", type=int, help="uploads at once per case (default: 6, or 2 with --quick)")
    parser.add_argument("--repeats", type=int, help="runs a case, in fresh processes (default: 3, or 1 with --quick)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: one case, in a fresh process
    args = parser.parse_args(argv)
    if args.child:
        picture, old, uploads, path = json.loads(args.child)
        print(json.dumps(measure(Picture(**picture), old, uploads, Path(path))))
        return 0
    uploads = args.uploads or (2 if args.quick else 6)
    repeats = args.repeats or (1 if args.quick else 3)
    print(f"{os.cpu_count()} cores, Python {platform.python_version()}, Pillow {Image.__version__}; pixel cap "
          f"{MAX_PIXELS:,}; {uploads} uploads at once a case; the worst of {repeats} fresh process(es) a case\n")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for picture in pictures(args.quick):
            path = Path(folder) / f"{picture.kind}.bin"
            path.write_bytes(make_picture(picture.kind, picture.width, picture.height))
            label = f"{picture.label} ({path.stat().st_size / 2**10:,.0f} KB)"
            old = run_worst(picture, True, uploads, path, repeats)
            new = run_worst(picture, False, uploads, path, repeats)
            rows += [(label, "old: decoded whole", old, old), (label, "load_upload", new, old)]
    print(table(rows, uploads))
    worst = max(case["increase_mb"] for _, path, case, _ in rows if path == "load_upload") / uploads
    worst_old = max(case["increase_mb"] for _, path, case, _ in rows if path != "load_upload") / uploads
    print(f"\nload_upload: at most {worst:.0f} MB an upload (bound {BOUND_MB} MB); the old path: up to "
          f"{worst_old:.0f} MB an upload.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
