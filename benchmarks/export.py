"""Export benchmark: a .keras model against its TFLite (float32, dynamic-range int8) and SavedModel exports.

python benchmarks/export.py [--model PATH]

Each format is converted from the model (default: the shipped one) in this run, and every row, the Keras
baseline included, is measured by the same code (mnist_core.export.measure) on the 10,000 MNIST test digits:

  size                  the file: the .keras file itself, the .tflite, the SavedModel's .zip
  accuracy              share of the test digits answered with their label
  agreement             share of the test digits where the answer is the Keras model's (through Predictor, the
                        network alone: an export carries no second look)
  max prob diff         the largest difference of any of the 10 probabilities from the Keras model's
  p50 / p95 ms          one image a call, 200 calls after a warm-up: Predictor.predict_proba for Keras,
                        the TFLite interpreter's signature runner, the reloaded SavedModel's signature
  export s              the conversion's time (convert(): SavedModel written, then converted)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from mnist_core.benchmark import machine_info  # noqa: E402
from mnist_core.export import FORMATS, ExportReport, check_export, convert, measure, mnist_test_set  # noqa: E402
from mnist_core.predict import Predictor  # noqa: E402
from mnist_core.store import DEFAULT_MODEL, load_model  # noqa: E402


def run(model_path: Path) -> str:
    model, digits = load_model(model_path), mnist_test_set()
    keras_row = measure("keras", Predictor(model, second_look=False).predict_proba, model_path.stat().st_size, model,
                        digits)
    rows, seconds = [keras_row], {}
    for fmt in FORMATS:
        start = time.perf_counter()
        blob = convert(model, fmt)
        seconds[fmt] = time.perf_counter() - start
        rows.append(check_export(blob, fmt, model, digits))
    machine = ["| machine | |", "|---|---|", *[f"| {k} | {v} |" for k, v in machine_info().items()],
               f"| model | `{model_path.name}` |"]
    return "\n".join(machine) + "\n\n" + table(rows, seconds)


def table(rows: list[ExportReport], seconds: dict[str, float]) -> str:
    """One row per format; ratios against the first row, the Keras baseline."""
    base = rows[0]
    lines = ["| format | size | size vs .keras | test accuracy | agreement with Keras | max prob diff "
             "| p50 ms | p95 ms | p50 vs Keras | export s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        export_s = f"{seconds[r.format]:.1f}" if r.format in seconds else "—"
        lines.append(f"| {r.format} | {r.size_bytes / 1024:,.0f} KB | {r.size_bytes / base.size_bytes:.2f}× "
                     f"| {r.accuracy:.2%} | {r.agreement:.2%} | {r.max_prob_diff:.1e} | {r.latency_p50_ms:.3f} "
                     f"| {r.latency_p95_ms:.3f} | {r.latency_p50_ms / base.latency_p50_ms:.2f}× | {export_s} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="a .keras file (default: the shipped one)")
    print(run(parser.parse_args().model))


if __name__ == "__main__":
    main()
