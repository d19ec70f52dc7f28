"""Command line: python -m mnist_core {train,finetune,digits,evaluate,export,devices,benchmark} ..."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sqlite3
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from mnist_core import finetune, load_tensorflow, show_tensorflow_log

if TYPE_CHECKING:
    from mnist_core.training import TrainConfig

# TensorFlow is imported only once the command line is read (build_parser), so --verbose can still
# change how much it logs: it reads its log level once, on import.

BAR_WIDTH = 30
PROG = "python -m mnist_core"


def _count(text: str) -> int | None:
    """A whole number of at least 1, or None when the text is not one."""
    try:
        count = int(text)
    except ValueError:
        return None
    return count if count >= 1 else None


def _subset_size(text: str) -> int | None:
    """A subset flag's value: a count of at least 1, or "all" (None)."""
    if text.lower() in ("all", "none"):
        return None
    count = _count(text)
    if count is None:
        raise argparse.ArgumentTypeError(f"must be a whole number of images, at least 1, or 'all'; got {text!r}")
    return count


def _at_least_one(text: str) -> int:
    """A count that must be a whole number of at least 1."""
    count = _count(text)
    if count is None:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return count


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan  # not a number: refused by the checks below, like nan


def _learning_rate(text: str) -> float:
    """A learning rate: positive and finite (inf or nan would train until the loss is NaN)."""
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")
    return value


def _share(text: str) -> float:
    """A share of the examples: from 0 up to, not including, 1 (nan fails both comparisons)."""
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {text!r}")
    return value


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a subcommand's default must not overwrite a --verbose given before the subcommand
    parser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show TensorFlow's own log messages (most are hidden by default)")


def _verbose_requested(argv: list[str]) -> bool:
    """Whether argv asks for --verbose, read without the full parser, whose choices import TensorFlow."""
    early = argparse.ArgumentParser(prog=PROG, add_help=False)
    _add_verbose(early)
    return getattr(early.parse_known_args(argv)[0], "verbose", False)


def build_parser() -> argparse.ArgumentParser:
    from mnist_core.benchmark_pen import FOLD_DIR
    from mnist_core.export import FORMATS
    from mnist_core.model import PRESETS
    from mnist_core.spec import CUSTOM, TOKEN_FORMS
    from mnist_core.precision import CHOICES as PRECISIONS
    from mnist_core.training import SCHEDULES

    parser = argparse.ArgumentParser(prog=PROG, description="Train, evaluate and inspect MNIST CNNs.")
    _add_verbose(parser)
    sub = parser.add_subparsers(dest="command", required=True)

    # A flag left out is absent from the namespace (SUPPRESS), so a TrainConfig field there is one the user gave,
    # even as None ("--train-subset all"); the few flags that are not fields get defaults of their own.
    t = sub.add_parser("train", help="train a model on MNIST and report its test accuracy",
                       description="Train a model. Unset flags take the preset's recipe "
                                   "(seed: the TensorFlow tutorial, batch 32, Adam 1e-3, 10 epochs).",
                       argument_default=argparse.SUPPRESS)
    t.add_argument("--preset", choices=[*PRESETS, CUSTOM], default=None,
                   help="network and default recipe (default: seed; custom with --layers)")
    t.add_argument("--layers", metavar="SPEC",
                   help="design the network, one comma-separated token a layer, e.g. "
                        "conv32k3,pool2,conv64k3,pool2,flatten,dense64 (the tutorial's); the 10-way output layer is "
                        f"added. Tokens: {TOKEN_FORMS}. Implies --preset custom, which trains with the seed recipe")
    t.add_argument("--epochs", type=int, help="full passes over the training images")
    t.add_argument("--batch-size", type=int, help="images per gradient step")
    t.add_argument("--learning-rate", type=_learning_rate, help="Adam learning rate (the peak for onecycle)")
    t.add_argument("--schedule", choices=SCHEDULES, help="constant rate, or onecycle: warm-up then cosine decay")
    t.add_argument("--augment", action=argparse.BooleanOptionalAction,
                   help="randomly rotate, zoom and shift training images (default: the preset's choice)")
    t.add_argument("--augment-style", action=argparse.BooleanOptionalAction,
                   help="give some training 1s a flag and some 7s a crossbar (default: the preset's choice)")
    t.add_argument("--augment-slant", action=argparse.BooleanOptionalAction,
                   help="randomly slant training images (default: the preset's choice)")
    t.add_argument("--augment-stroke", action=argparse.BooleanOptionalAction,
                   help="make the ink of training images randomly thinner or thicker (default: off)")
    t.add_argument("--average-weights", action=argparse.BooleanOptionalAction,
                   help="end with a moving average of the last ~1,000 steps' weights (default: the preset's choice)")
    t.add_argument("--pen-digits", action=argparse.BooleanOptionalAction,
                   help="also train on 7,494 real pen digits by 30 writers, drawn like the canvas draws (default: off)")
    t.add_argument("--pen-skip-writers", type=int, nargs="+", metavar="W",
                   help="leave these pen-digit writers (1-30) out, to measure on them later")
    t.add_argument("--my-digits", metavar="DB", help="also train on your labelled digits (a digits database)")
    t.add_argument("--seed", type=int, help="random seed for weights, shuffling and augmentation (default 42)")
    t.add_argument("--train-subset", type=_subset_size, help="use only the first N training images (or all)")
    t.add_argument("--test-subset", type=_subset_size, help="use only the first N test images (or all)")
    t.add_argument("--precision", choices=PRECISIONS, help="float32, mixed precision, or auto (per machine)")
    t.add_argument("--steps-per-execution", type=int, help="batches per compiled call")
    t.add_argument("--no-deterministic", dest="deterministic", action="store_false",
                   help="allow non-deterministic TensorFlow ops")
    t.add_argument("--data-path", help="MNIST .npz file (default: $MNIST_NPZ or the vendored copy)")
    t.add_argument("--out", default=None, help="save the trained model here (.keras, with a .json sidecar)")
    t.add_argument("--dry-run", action="store_true", default=False,
                   help="a fast check for CI: 1 epoch on 1,000 training and 500 test images")

    f = sub.add_parser("finetune", help="fine-tune a saved model on your labelled digits, mixed with replayed MNIST",
                       description="Start from MODEL's weights and train on the digits in DB (part held out to "
                                   "measure), mixed with as many MNIST training digits; prints before -> after.")
    f.add_argument("--from", required=True, metavar="MODEL", help="the .keras model to start from")
    f.add_argument("--digits", required=True, metavar="DB", help="the digits database (the studio's: "
                                                                 "runs/digits.sqlite)")
    f.add_argument("--out", required=True, help="save the fine-tuned model here (.keras, with a .json sidecar)")
    f.add_argument("--epochs", type=int, help=f"passes over the mix (default {finetune.EPOCHS})")
    f.add_argument("--learning-rate", type=_learning_rate, help=f"peak Adam rate (default {finetune.LEARNING_RATE:g})")
    f.add_argument("--holdout", type=_share, help=f"share of each digit's examples held out to measure "
                                                  f"(default {finetune.HOLDOUT_SHARE:g})")
    f.add_argument("--seed", type=int, help="random seed for the hold-out, the mix and augmentation (default 42)")
    f.add_argument("--data-path", help="MNIST .npz file (default: $MNIST_NPZ or the vendored copy)")

    d = sub.add_parser("digits", help="your labelled digits: list them, export them as a zip, import a zip")
    d.add_argument("action", choices=["list", "export", "import"])
    d.add_argument("file", nargs="?", help="export: the zip to write; import: the zip to read")
    d.add_argument("--db", help="the digits database (default: digits.sqlite in $MNIST_STUDIO_RUNS, else runs/)")
    d.add_argument("--limit", type=_at_least_one, default=20, help="list: how many of the newest digits to show")

    e = sub.add_parser("evaluate", help="test accuracy and per-class accuracy of a saved model")
    e.add_argument("model", help="a .keras file")
    e.add_argument("--data-path", help="MNIST .npz file (default: $MNIST_NPZ or the vendored copy)")
    e.add_argument("--test-subset", type=_subset_size, help="use only the first N test images (or all)")
    e.add_argument("--network-alone", action="store_true",
                   help="no second look at unsure digits: the network's own answers, as training and exports give "
                        "them (default: as the studio answers)")

    x = sub.add_parser("export", help="write a saved model as TFLite or a zipped SavedModel, and check it",
                       description="Write MODEL as --format to --out, then run that file on the 10,000 MNIST test "
                                   "digits beside the Keras model: prints the share of identical answers, the "
                                   "largest probability difference, accuracy, size and one-image latency.")
    x.add_argument("model", help="a .keras file")
    x.add_argument("--format", default="tflite", choices=FORMATS,
                   help="tflite: float32; tflite-int8: weights quantised to 8 bits (dynamic range); savedmodel: a "
                        "TensorFlow SavedModel folder, zipped (default: tflite)")
    x.add_argument("--out", required=True, help="the file to write: .tflite, or .zip for savedmodel")

    v = sub.add_parser("devices", help="the GPU set-up: devices seen, devices used, memory growth")

    b = sub.add_parser("benchmark", help="time the presets against the tutorial's recipe, the callbacks and inference; "
                                         "read real handwriting drawn like the canvas; fine-tune on each writer's "
                                         "own digits")
    b.add_argument("--quick", action="store_true", help="for CI: tiny runs that only prove the benchmark works")
    b.add_argument("--only", choices=["training", "callbacks", "inference", "handwriting", "writers"],
                   help="run one of the benchmarks")
    b.add_argument("--presets", nargs="+", choices=list(PRESETS), help="presets to train (default: all)")
    b.add_argument("--models", nargs="+", default=[],
                   help="handwriting: .keras files to read besides the shipped model")
    b.add_argument("--eval-dir", help="handwriting: the folder of the Semeion and HwD-1000 sets (default: "
                                      "$MNIST_EVAL_DIR or shared/eval beside the repository)")
    b.add_argument("--fold-dir", default=str(FOLD_DIR),
                   help="handwriting and writers: the pen-digits fold models, each trained without its 6 writers; "
                        f"missing ones are trained there first, 10-12 minutes each on 2 cores (default: {FOLD_DIR})")
    for command in (t, f, d, e, x, v, b):
        _add_verbose(command)
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    from mnist_core.spec import CUSTOM
    from mnist_core.training import TrainConfig

    given = vars(args)  # the flags given, and only those (the train parser's argument_default is SUPPRESS)
    overrides = {f.name: given[f.name] for f in dataclasses.fields(TrainConfig)
                 if f.name != "preset" and f.name in given}
    if args.dry_run:
        overrides = {"epochs": 1, "train_subset": 1000, "test_subset": 500, **overrides}
    preset = args.preset or (CUSTOM if given.get("layers") else "seed")
    return TrainConfig.for_preset(preset, **overrides)


def cmd_train(args: argparse.Namespace) -> int:
    return _run_and_save(config_from_args(args), args.out)[0]


def cmd_finetune(args: argparse.Namespace) -> int:
    from mnist_core.store import keras_path, load_model
    from mnist_core.training import TrainConfig

    keras_path(args.out)
    if not Path(args.digits).is_file():
        raise ValueError(f"No digits database at {args.digits}: label some digits in the studio, or import a zip "
                         "with `python -m mnist_core digits import`")
    load_model(getattr(args, "from"))  # a missing or damaged --from says so, before its sidecar is read
    overrides = {name: getattr(args, name) for name in ("epochs", "seed", "holdout", "learning_rate", "data_path")
                 if getattr(args, name) is not None}
    config = TrainConfig.for_finetune(getattr(args, "from"), args.digits, **overrides)
    code, result = _run_and_save(config, args.out)
    report = None if result is None else result.personal
    if report is not None:
        print(f"trained on {report.trained_on} of your digits, {report.held_out} held out", file=sys.stderr)
        for name, before, after in (("your held-out digits", report.user_before, report.user_after),
                                    ("MNIST test", report.mnist_before, report.mnist_after)):
            if before is not None and after is not None:
                print(f"{name}: {before:.2%} -> {after:.2%}")
    return code


def _run_and_save(config: TrainConfig, out: str | None):
    """Train in a worker thread with a progress bar (Ctrl-C stops after the batch); save to `out` if usable.

    Returns the exit code and the TrainResult (None if the worker died).
    """
    from mnist_core.gpu import configure_gpu
    from mnist_core.progress import TrainingProgress
    from mnist_core.runs import personal_dict
    from mnist_core.store import keras_path, save_model
    from mnist_core.training import train

    if out:
        keras_path(out)  # refuse a bad name now, not after the training
    print(configure_gpu().describe(), file=sys.stderr)
    print("config: " + " ".join(f"{k}={v}" for k, v in config.to_dict().items()), file=sys.stderr)
    progress, stop = TrainingProgress(), threading.Event()
    outcome: dict = {}

    def work():
        try:
            outcome["result"] = train(config, progress, stop)
        except Exception as exc:  # re-raised below, so a bad --data-path reads as a clear error, not a traceback
            outcome["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        _follow(progress, worker)
    except KeyboardInterrupt:
        stop.set()
        print("\nstopping after this batch...", file=sys.stderr)
        worker.join()
    if "error" in outcome:
        raise outcome["error"]
    if "result" not in outcome:
        return 1, None  # the worker died some other way
    result = outcome["result"]
    print(result.message, file=sys.stderr)
    if out:
        if result.usable:
            save_model(result.model, out, config=config.to_dict(), test_accuracy=result.test_accuracy,
                       seconds=result.seconds, personal=personal_dict(result))
            print(f"saved {out}", file=sys.stderr)
        else:
            print(f"not saved: {result.message}", file=sys.stderr)
    if result.test_accuracy is None:
        print(f"test_accuracy=nan seconds={result.seconds:.1f}")
        return 1, result
    print(f"test_accuracy={result.test_accuracy:.4f} seconds={result.seconds:.1f}")
    return (0 if result.status != "failed" else 1), result


def _follow(progress, worker: threading.Thread) -> None:
    """Draw a progress bar on stderr and print a line per finished epoch."""
    printed = 0
    while worker.is_alive():
        worker.join(0.25)
        snap = progress.snapshot()
        for point in snap.epochs_done[printed:]:
            print(f"\repoch {point.epoch}/{snap.epochs}: loss={point.loss:.4f} accuracy={point.accuracy:.4f} "
                  f"val_loss={point.val_loss:.4f} val_accuracy={point.val_accuracy:.4f}" + " " * 10,
                  file=sys.stderr)
        printed = len(snap.epochs_done)
        if snap.status == "running":
            filled = int(BAR_WIDTH * snap.fraction)
            eta = "" if snap.eta_seconds is None else f" ETA {snap.eta_seconds:4.0f}s"
            print(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] epoch {snap.epoch}/{snap.epochs} "
                  f"batch {snap.batch}/{snap.batches_per_epoch} {snap.images_per_sec:6.0f} img/s{eta} ",
                  end="", file=sys.stderr, flush=True)


def cmd_digits(args: argparse.Namespace) -> int:
    from mnist_core.digits_db import DB_NAME, MAX_ZIP_BYTES, DigitStore
    from mnist_core.runs import RunStore
    from mnist_core.store import write_atomically

    path = Path(args.db) if args.db else RunStore().root / DB_NAME
    if args.action != "import" and not path.is_file():
        raise ValueError(f"No digits database at {path}: label digits in the studio's Draw tab first")
    if args.action != "list" and not args.file:
        raise ValueError(f"digits {args.action} needs the zip file's name")
    if args.action == "list":
        store = DigitStore(path)
        counts = store.counts()
        print(f"{path}: {counts.sum()} digits · " + " ".join(f"{d}: {n}" for d, n in enumerate(counts)))
        for digit in store.page(limit=args.limit):
            reading = digit.reading and f" read as {digit.reading.digit} ({digit.reading.confidence:.0%})"
            print(f"#{digit.id} {digit.created_at} label {digit.label} {digit.source}{reading or ''}")
    elif args.action == "export":
        store = DigitStore(path)
        try:
            write_atomically(args.file, store.export_zip())  # a failure leaves a file already there as it was
        except OSError as exc:
            raise ValueError(f"Cannot write {args.file}: {exc.strerror or exc}") from exc
        print(f"wrote {store.count()} digits to {args.file}")
    else:
        try:  # read before the database is made: one byte over the limit is enough for import_zip to refuse it
            with open(args.file, "rb") as f:
                data = f.read(MAX_ZIP_BYTES + 1)
        except OSError as exc:
            raise ValueError(f"Cannot read {args.file}: {exc.strerror or exc}") from exc
        store = DigitStore(path)
        report = store.import_zip(data)
        for line in report.skipped:
            print(f"skipped {line}", file=sys.stderr)
        print(f"imported {report.added} digits into {path} ({len(report.skipped)} skipped)")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from mnist_core import data
    from mnist_core.evaluate import evaluate
    from mnist_core.predict import Predictor

    predictor = Predictor.load(args.model, second_look=not args.network_alone)
    _, test_split = data.load_mnist(args.data_path)
    x, y = data.subset(test_split, args.test_subset)
    result = evaluate(predictor, data.to_float_images(x)[..., 0], y)
    for digit, (recall, precision) in enumerate(zip(result.recall, result.precision)):
        print(f"digit {digit}: accuracy={recall:.4f} precision={precision:.4f} "
              f"({result.confusion[digit].sum()} images)")
    print(f"test_accuracy={result.accuracy:.4f}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from mnist_core.export import check_export, export_path, write_export
    from mnist_core.store import load_model

    out = export_path(args.out, args.format)  # a bad name is refused before the model is read
    model = load_model(args.model)
    write_export(model, args.format, out)
    print(f"wrote {out}", file=sys.stderr)
    print(check_export(out.read_bytes(), args.format, model).line())  # the file as written, not a copy in memory
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from mnist_core.gpu import configure_gpu
    from mnist_core.precision import resolve_precision

    info = configure_gpu()
    print(info.describe())
    for name in info.gpus_seen:
        print(f"seen: {name}")
    for note in info.notes:
        print(f"note: {note}")
    print(f"precision for auto: {resolve_precision('auto')}")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from mnist_core.benchmark import run

    print(run(quick=args.quick, only=args.only, presets=args.presets, models=args.models, eval_dir=args.eval_dir,
              fold_dir=Path(args.fold_dir)))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if _verbose_requested(argv):
        show_tensorflow_log()  # before build_parser imports TensorFlow
    load_tensorflow()
    args = build_parser().parse_args(argv)
    handler = {"train": cmd_train, "finetune": cmd_finetune, "digits": cmd_digits, "evaluate": cmd_evaluate,
               "export": cmd_export, "devices": cmd_devices, "benchmark": cmd_benchmark}[args.command]
    try:
        return handler(args)
    except (ValueError, RuntimeError, sqlite3.DatabaseError) as exc:  # clear messages for bad flags, data, model
        # files or digits databases (DigitsDatabaseError is an sqlite3.DatabaseError)
        print(f"error: {exc}", file=sys.stderr)
        return 2
