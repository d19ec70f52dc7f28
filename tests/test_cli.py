"""mnist_core.cli: `python -m mnist_core` run for real in subprocesses (plus a few in-process checks)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from mnist_core import cli
from mnist_core.evaluate import evaluate
from mnist_core.model import PRESETS
from mnist_core.predict import Predictor
from mnist_core.store import load_model
from mnist_core.training import TrainConfig

REPO = Path(__file__).resolve().parents[1]
TRAIN_FLAGS = ["--preset", "--epochs", "--batch-size", "--learning-rate", "--schedule", "--augment", "--augment-style",
               "--augment-slant", "--augment-stroke", "--average-weights", "--pen-digits", "--pen-skip-writers",
               "--my-digits", "--seed", "--train-subset", "--test-subset", "--precision", "--steps-per-execution",
               "--no-deterministic", "--data-path", "--out", "--dry-run"]
LAST_LINE = re.compile(r"^test_accuracy=\d\.\d{4} seconds=\d+\.\d$")
# TensorFlow's C++ log: "I0000 00:00:1795950384.998416   31016 port.cc:153] ...", and absl's note before it
TF_LOG_LINE = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\]|WARNING: All log messages before absl)")
DEFAULT_MODEL = REPO / "mnist_core" / "assets" / "default.keras"


def run_cli(*args: str, cwd: Path, timeout: float = 300, tf_log_level: str | None = "2") -> subprocess.CompletedProcess:
    """`tf_log_level` None leaves TF_CPP_MIN_LOG_LEVEL unset, as in a user's shell."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": tf_log_level}
    if tf_log_level is None:
        env.pop("TF_CPP_MIN_LOG_LEVEL")
    env.pop("MNIST_NPZ", None)
    return subprocess.run([sys.executable, "-m", "mnist_core", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def in_process(capsys, *args) -> subprocess.CompletedProcess:
    """The command run by cli.main in this process (TensorFlow already loaded): its exit status, an argparse exit
    included, and what it printed. run_cli's separate process is kept for what only a fresh one shows."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


def _flags_in(text: str) -> set[str]:
    return set(re.findall(r"--[a-z][a-z-]*", text))


# ---------------------------------------------------------------- help


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("train", "finetune", "digits", "evaluate", "devices", "benchmark"):
        assert command in out


def test_train_help_lists_every_flag(tmp_path, capsys):
    p = in_process(capsys, "train", "--help")
    assert p.returncode == 0, p.stderr
    assert _flags_in(p.stdout) >= set(TRAIN_FLAGS), set(TRAIN_FLAGS) - _flags_in(p.stdout)
    for name in ("seed", "fast", "best", "onecycle", "mixed_bfloat16"):
        assert name in p.stdout  # the choices are shown


def test_every_config_field_has_a_flag():
    commands = cli.build_parser()._subparsers._group_actions[0].choices
    help_text = commands["train"].format_help() + commands["finetune"].format_help()  # fine-tune fields there
    special = {"deterministic": "--no-deterministic", "parent": "--from"}
    for field in dataclasses.fields(TrainConfig):
        flag = special.get(field.name, "--" + field.name.replace("_", "-"))
        assert flag in help_text, f"TrainConfig.{field.name} cannot be set from the command line"


def test_train_a_designed_network_from_its_spec_string(tmp_path, capsys):
    out = tmp_path / "mine.keras"
    assert cli.main(["train", "--layers", "conv16k3, pool2, flatten, dense32", "--dry-run", "--out", str(out)]) == 0
    assert LAST_LINE.match(capsys.readouterr().out.strip().splitlines()[-1])
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["preset"] == "custom" and side["config"]["layers"] == "conv16k3,pool2,flatten,dense32"
    model = load_model(out)
    assert [type(layer).__name__ for layer in model.layers] == ["Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]


@pytest.mark.parametrize("argv, message", [
    (["train", "--layers", "conv32k3,dense64"], "error: Row 2 (dense 64): the input is still an image"),
    (["train", "--layers", "conv32k3,cnv64"], "error: Token 2 'cnv64': unknown layer"),
    (["train", "--preset", "seed", "--layers", "flatten"], "error: layers (a spec string, mnist_core.spec) go with"),
])
def test_a_design_that_cannot_work_is_one_line_naming_the_row(argv, message, capsys):
    assert cli.main([*argv, "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(message), err


def test_evaluate_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["evaluate", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "model" in out and "--data-path" in out and "--test-subset" in out and "--network-alone" in out


# ---------------------------------------------------------------- train, then evaluate what it saved


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    out = folder / "m.keras"
    p = run_cli("train", "--dry-run", "--out", out, cwd=folder)
    return p, out


def test_train_dry_run_saves_and_reports(dry_run):
    p, out = dry_run
    assert p.returncode == 0, p.stderr[-3000:]
    lines = p.stdout.strip().splitlines()
    assert LAST_LINE.match(lines[-1]), lines[-1]
    accuracy = float(lines[-1].split()[0].split("=")[1])
    assert 0.5 < accuracy <= 1.0  # 1 epoch on 1,000 images learns something
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert sorted(x.name for x in out.parent.iterdir()) == ["m.json", "m.keras"]  # no temporary files left
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["preset"] == "seed"
    assert side["config"]["epochs"] == 1
    assert side["config"]["train_subset"] == 1000 and side["config"]["test_subset"] == 500
    assert f"{side['test_accuracy']:.4f}" == f"{accuracy:.4f}"
    assert "Traceback" not in p.stderr
    assert "CPU only" in p.stderr or "GPU" in p.stderr  # the device line
    assert "epoch 1/1" in p.stderr  # the per-epoch line


def test_evaluate_with_the_network_alone_prints_the_accuracy_training_reported(dry_run, capsys):
    p, out = dry_run
    assert p.returncode == 0
    trained_accuracy = p.stdout.strip().splitlines()[-1].split()[0]
    e = in_process(capsys, "evaluate", out, "--test-subset", "500", "--network-alone")
    assert e.returncode == 0, e.stderr[-3000:]
    lines = e.stdout.strip().splitlines()
    assert lines[-1] == trained_accuracy
    digit_lines = [line for line in lines if line.startswith("digit ")]
    assert len(digit_lines) == 10
    counts = [int(re.search(r"\((\d+) images\)", line).group(1)) for line in digit_lines]
    assert sum(counts) == 500


def test_evaluate_reads_as_the_studio_answers_by_default(dry_run, test_digits, capsys):
    _, out = dry_run
    x, y = test_digits
    default = in_process(capsys, "evaluate", out, "--test-subset", "500").stdout.strip().splitlines()[-1]
    alone = in_process(capsys, "evaluate", out, "--test-subset", "500", "--network-alone").stdout.strip().splitlines()
    studio = evaluate(Predictor.load(out), x[:500], y[:500])
    assert default == f"test_accuracy={studio.accuracy:.4f}"
    assert default != alone[-1]  # a 1-epoch model is unsure of enough digits for the second look to change some


def test_evaluate_corrupt_model_file(tmp_path, capsys):
    path = tmp_path / "corrupt.keras"
    path.write_bytes(b"PK\x03\x04 this is not really a zip" * 50)
    p = in_process(capsys, "evaluate", path)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    error_lines = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert error_lines and str(path) in error_lines[0], p.stderr[-2000:]


def test_evaluate_missing_model_file(tmp_path, capsys):
    path = tmp_path / "missing.keras"
    assert cli.main(["evaluate", str(path)]) == 2
    assert f"error: Model file not found: {path}" in capsys.readouterr().err


def _bad_model_path(kind: str, folder: Path) -> tuple[Path, str]:
    """A model path that is wrong in the way `kind` says, and the words its error must hold."""
    if kind == "readme":
        path = folder / "README.md"
        path.write_text((REPO / "README.md").read_text())
        return path, f"error: {path} is not a Keras model file: model files end in .keras"
    if kind == "missing":
        return folder / "missing.keras", "error: Model file not found: "
    if kind == "truncated":
        path = folder / "truncated.keras"
        path.write_bytes(DEFAULT_MODEL.read_bytes()[:5000])
        return path, "is damaged: a .keras file is a zip archive, and this one is truncated"
    path = folder / "folder.keras"
    path.mkdir()
    return path, f"error: {path} is a folder, not a model file (.keras)"


@pytest.mark.parametrize("command", ["evaluate", "finetune"])
@pytest.mark.parametrize("kind", ["readme", "missing", "truncated", "folder"])
def test_a_bad_model_path_is_one_short_line(command, kind, tmp_path, capsys):
    path, words = _bad_model_path(kind, tmp_path)
    digits = tmp_path / "digits.sqlite"
    digits.touch()
    argv = {"evaluate": ["evaluate", str(path)],
            "finetune": ["finetune", "--from", str(path), "--digits", str(digits), "--out", str(tmp_path / "o.keras")]}
    assert cli.main(argv[command]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and words in err, err
    assert len(err) < len(str(path)) + 120  # no advice about Keras' other formats
    assert "TFSMLayer" not in err and "Traceback" not in err


def test_evaluate_readme_the_whole_output(tmp_path):
    p = run_cli("evaluate", "README.md", cwd=REPO, tf_log_level=None)
    assert p.returncode == 2
    lines = [line for line in p.stderr.splitlines() if not TF_LOG_LINE.match(line)]
    assert lines == ["error: README.md is not a Keras model file: model files end in .keras"], p.stderr[-2000:]
    assert p.stdout == ""


# ---------------------------------------------------------------- devices and bad flags


def test_devices(capsys):
    assert cli.main(["devices"]) == 0
    out = capsys.readouterr().out
    if tf.config.list_physical_devices("GPU"):
        assert re.match(r"(GPU |\d+ GPUs )", out) and "precision for auto: mixed_float16" in out
    else:
        assert out.startswith("CPU only")
        assert re.search(r"^precision for auto: (float32|mixed_bfloat16)$", out, re.M)


def test_bad_flag_value(tmp_path, capsys):
    p = in_process(capsys, "train", "--epochs", "0", "--out", tmp_path / "m.keras")
    assert p.returncode == 2
    assert "error: epochs must be at least 1, got 0" in p.stderr
    assert "Traceback" not in p.stderr
    assert list(tmp_path.iterdir()) == []  # nothing trained, nothing saved


@pytest.mark.parametrize("argv, words", [
    (["train", "--batch-size", "-1"], "batch_size must be at least 1"),
    (["train", "--steps-per-execution", "0"], "steps_per_execution"),
])
def test_bad_values_in_process(argv, words, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip().startswith("error:") and words in err


def test_a_bad_out_name_is_refused_before_training(tmp_path, capsys):
    out = tmp_path / "model.h5"
    assert cli.main(["train", "--dry-run", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip().startswith("error:") and "Model files end in .keras" in err
    assert "config:" not in err and "epoch" not in err  # refused up front: nothing was trained
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [
    ["train", "--preset", "huge"],
    ["train", "--epochs", "two"],
    ["train", "--schedule", "cyclic"],
    ["train", "--precision", "float64"],
    ["frobnicate"],
    [],
])
def test_argparse_rejections(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


LEARNING_RATE = "must be a positive finite number, got"
SUBSET = "must be a whole number of images, at least 1, or 'all'; got"
SHARE = "must be at least 0 and below 1, got"


@pytest.mark.parametrize("argv, message", [
    (["train", "--learning-rate", "inf"], f"train: error: argument --learning-rate: {LEARNING_RATE} 'inf'"),
    (["train", "--learning-rate=-inf"], f"train: error: argument --learning-rate: {LEARNING_RATE} '-inf'"),
    (["train", "--learning-rate", "nan"], f"train: error: argument --learning-rate: {LEARNING_RATE} 'nan'"),
    (["train", "--learning-rate", "0"], f"train: error: argument --learning-rate: {LEARNING_RATE} '0'"),
    (["train", "--learning-rate=-1e-3"], f"train: error: argument --learning-rate: {LEARNING_RATE} '-1e-3'"),
    (["train", "--learning-rate", "fast"], f"train: error: argument --learning-rate: {LEARNING_RATE} 'fast'"),
    (["finetune", "--learning-rate", "1e999"], f"finetune: error: argument --learning-rate: {LEARNING_RATE} '1e999'"),
    (["finetune", "--holdout", "1"], f"finetune: error: argument --holdout: {SHARE} '1'"),
    (["finetune", "--holdout", "-0.1"], f"finetune: error: argument --holdout: {SHARE} '-0.1'"),
    (["finetune", "--holdout", "nan"], f"finetune: error: argument --holdout: {SHARE} 'nan'"),
    (["train", "--train-subset", "0"], f"train: error: argument --train-subset: {SUBSET} '0'"),
    (["train", "--train-subset", "-3"], f"train: error: argument --train-subset: {SUBSET} '-3'"),
    (["train", "--train-subset", "many"], f"train: error: argument --train-subset: {SUBSET} 'many'"),
    (["train", "--test-subset", "0"], f"train: error: argument --test-subset: {SUBSET} '0'"),
    (["evaluate", "m.keras", "--test-subset", "-1"], f"evaluate: error: argument --test-subset: {SUBSET} '-1'"),
    (["digits", "list", "--limit", "0"],
     "digits: error: argument --limit: must be a whole number of at least 1, got '0'"),
])
def test_bad_numbers_are_refused_when_parsing(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"python -m mnist_core {message}"


def test_good_numbers_are_kept():
    args = cli.build_parser().parse_args(["train", "--learning-rate", "2e-3", "--train-subset", "ALL",
                                          "--test-subset", "7"])
    assert (args.learning_rate, args.train_subset, args.test_subset) == (2e-3, None, 7)
    args = cli.build_parser().parse_args(["finetune", "--from", "m.keras", "--digits", "d", "--out", "o.keras",
                                          "--holdout", "0", "--learning-rate", "1e-4"])
    assert (args.holdout, args.learning_rate) == (0.0, 1e-4)


def test_an_infinite_learning_rate_trains_nothing(tmp_path, capsys):
    p = in_process(capsys, "train", "--learning-rate", "inf", "--out", tmp_path / "m.keras")
    assert p.returncode == 2
    assert p.stderr.splitlines()[-1].endswith(f"error: argument --learning-rate: {LEARNING_RATE} 'inf'")
    assert "config:" not in p.stderr and p.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_train_with_missing_data_file(tmp_path, capsys):
    missing = tmp_path / "no-mnist.npz"
    assert cli.main(["train", "--dry-run", "--data-path", str(missing), "--out", str(tmp_path / "m.keras")]) == 2
    err = capsys.readouterr().err
    assert f"error: MNIST file not found: {missing}" in err
    assert not (tmp_path / "m.keras").exists()


def test_dry_run_flags_can_be_overridden():
    args = cli.build_parser().parse_args(["train", "--dry-run", "--train-subset", "2000", "--preset", "fast"])
    config = cli.config_from_args(args)
    assert (config.preset, config.epochs, config.train_subset, config.test_subset) == ("fast", 1, 2000, 500)
    assert config.batch_size == PRESETS["fast"].batch_size  # the rest is the preset's recipe
    args = cli.build_parser().parse_args(["train", "--no-deterministic", "--test-subset", "all"])
    config = cli.config_from_args(args)
    assert config.deterministic is False and config.test_subset is None and config.epochs == 10
    args = cli.build_parser().parse_args(["train", "--dry-run", "--train-subset", "all"])  # all, in a dry run
    config = cli.config_from_args(args)
    assert (config.epochs, config.train_subset, config.test_subset) == (1, None, 500)
    assert not config.pen_digits
    args = cli.build_parser().parse_args(["train", "--preset", "best", "--pen-digits", "--pen-skip-writers", "7", "8"])
    config = cli.config_from_args(args)
    assert config.pen_digits and config.pen_skip_writers == (7, 8) and config.augment_slant  # the rest: best's


# ---------------------------------------------------------------- TensorFlow's own log


def test_the_cli_imports_tensorflow_only_after_reading_the_command_line(tmp_path):
    code = "import sys, mnist_core.cli; print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "[]", p.stderr[-2000:]  # else --verbose would come too late


@pytest.mark.parametrize("argv", [["--verbose", "devices"], ["devices", "--verbose"]])
def test_verbose_turns_the_tensorflow_log_on(argv, monkeypatch, capsys):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")  # restored afterwards, for the tests' later subprocesses
    assert cli.main(["devices"]) == 0
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    assert cli.main(argv) == 0
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    assert "--verbose" in cli.build_parser().format_help()


def test_tensorflow_log_only_with_verbose(tmp_path):
    args = ("evaluate", DEFAULT_MODEL, "--test-subset", "20")
    quiet = run_cli(*args, cwd=tmp_path, tf_log_level=None)
    verbose = run_cli("--verbose", *args, cwd=tmp_path, tf_log_level=None)
    assert quiet.returncode == verbose.returncode == 0, quiet.stderr[-2000:] + verbose.stderr[-2000:]
    assert quiet.stdout == verbose.stdout
    quiet_log = [line for line in quiet.stderr.splitlines() if TF_LOG_LINE.match(line)]
    verbose_log = [line for line in verbose.stderr.splitlines() if TF_LOG_LINE.match(line)]
    assert not [line for line in quiet_log if re.match(r"[EWF]\d", line)], quiet.stderr  # e.g. cuInit's on a CPU
    # more with --verbose: device creation on a GPU, the cuInit error and CPU features on a CPU
    assert len(verbose_log) > len(quiet_log), verbose.stderr


# ---------------------------------------------------------------- the engine stays UI-free


def test_no_module_imports_streamlit(tmp_path):
    sources = sorted((REPO / "mnist_core").glob("*.py"))
    assert len(sources) >= 10
    for source in sources:
        assert not re.search(r"^\s*(import|from)\s+streamlit", source.read_text(), re.M), source.name
    code = (
        "import importlib, pkgutil, sys, mnist_core\n"
        "names = [m.name for m in pkgutil.iter_modules(mnist_core.__path__) if m.name != '__main__']\n"
        "for name in names: importlib.import_module('mnist_core.' + name)\n"
        "bad = sorted(m for m in sys.modules if m == 'streamlit' or m.startswith('streamlit.'))\n"
        "print(len(names), bad)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    count, bad = p.stdout.strip().splitlines()[-1].split(" ", 1)
    assert int(count) >= 10 and bad == "[]", p.stdout


# ---------------------------------------------------------------- your digits: digits, finetune


@pytest.fixture(scope="module")
def digits_db(tmp_path_factory, mnist):
    """A digits database with 12 real MNIST training digits (labels 0-9, then 0 and 1 again)."""
    from mnist_core.digits_db import DigitStore, encode_png

    (x_train, y_train), _ = mnist
    store = DigitStore(tmp_path_factory.mktemp("digits") / "digits.sqlite")
    for i in range(12):
        image = x_train[list(y_train).index(i % 10) + 100 * (i // 10)]
        store.add(i % 10, image, encode_png(image), "drawn")
    return store


def test_digits_list_export_and_import(digits_db, tmp_path, capsys):
    p = in_process(capsys, "digits", "list", "--db", digits_db.path, "--limit", "3")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines[0].endswith("12 digits · 0: 2 1: 2 2: 1 3: 1 4: 1 5: 1 6: 1 7: 1 8: 1 9: 1")
    assert [line.split()[0] for line in lines[1:]] == ["#12", "#11", "#10"]  # the newest first
    p = in_process(capsys, "digits", "export", tmp_path / "mine.zip", "--db", digits_db.path)
    assert p.returncode == 0 and "wrote 12 digits" in p.stdout, p.stderr
    p = in_process(capsys, "digits", "import", tmp_path / "mine.zip", "--db", tmp_path / "other.sqlite")
    assert p.returncode == 0 and "imported 12 digits" in p.stdout and "(0 skipped)" in p.stdout, p.stderr


def test_digits_commands_say_what_is_wrong(tmp_path, capsys):
    p = in_process(capsys, "digits", "list", "--db", tmp_path / "none.sqlite")
    assert p.returncode == 2 and "No digits database at" in p.stderr and "Traceback" not in p.stderr
    (tmp_path / "notes.zip").write_text("not a zip")
    p = in_process(capsys, "digits", "import", tmp_path / "notes.zip", "--db", tmp_path / "d.sqlite")
    assert p.returncode == 2 and "error:" in p.stderr and "Traceback" not in p.stderr
    p = in_process(capsys, "digits", "export", "--db", tmp_path / "d.sqlite")
    assert p.returncode == 2 and "needs the zip file's name" in p.stderr


@pytest.mark.parametrize("case", ["a garbage database", "a newer studio's database", "a missing zip to import",
                                  "a missing folder to export to"])
def test_digits_database_and_file_errors_are_one_line_and_exit_2(case, digits_db, tmp_path, capsys):
    db, missing = tmp_path / "digits.sqlite", tmp_path / "nonexistent"
    if case == "a garbage database":
        db.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)
        argv, message = ["list"], f"error: {db} cannot be opened as a digits database: file is not a database"
    elif case == "a newer studio's database":
        with contextlib.closing(sqlite3.connect(db)) as con:
            con.execute("PRAGMA user_version = 99")
            con.execute("CREATE TABLE later (x)")
        argv = ["export", str(tmp_path / "mine.zip")]
        message = (f"error: {db} was made by a newer studio (schema version 99; this one reads up to 2). Update the "
                   "studio to use it.")
    elif case == "a missing zip to import":
        argv = ["import", str(missing / "x.zip")]
        message = f"error: Cannot read {missing}/x.zip: No such file or directory"
    else:
        db = digits_db.path
        argv = ["export", str(missing / "x.zip")]
        message = f"error: Cannot write {missing}/x.zip: No such file or directory"
    before = db.read_bytes() if db.exists() else None
    assert cli.main(["digits", *argv, "--db", str(db)]) == 2
    assert capsys.readouterr().err.splitlines() == [message]
    assert (db.read_bytes() if db.exists() else None) == before  # nothing made, nothing changed
    assert not (tmp_path / "mine.zip").exists() and not missing.exists()


def test_finetune_reports_before_and_after_and_records_the_parent(dry_run, digits_db, tmp_path, capsys):
    _, parent = dry_run
    out = tmp_path / "mine.keras"
    p = in_process(capsys, "finetune", "--from", parent, "--digits", digits_db.path, "--out", out, "--epochs", "1")
    assert p.returncode == 0, p.stderr[-3000:]
    assert re.search(r"^your held-out digits: \d+\.\d\d% -> \d+\.\d\d%$", p.stdout, re.M), p.stdout
    assert re.search(r"^MNIST test: \d+\.\d\d% -> \d+\.\d\d%$", p.stdout, re.M), p.stdout
    assert "trained on 10 of your digits, 2 held out" in p.stderr
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["config"]["parent"] == str(parent) and side["personal"]["trained_on"] == 10


def test_finetune_without_a_database_is_a_clear_error(dry_run, tmp_path, capsys):
    _, parent = dry_run
    p = in_process(capsys, "finetune", "--from", parent, "--digits", tmp_path / "none.sqlite",
                   "--out", tmp_path / "m.keras")
    assert p.returncode == 2 and "No digits database at" in p.stderr and "Traceback" not in p.stderr


# ---------------------------------------------------------------- export

EXPORT_LINE = re.compile(r"^format=tflite-int8 agreement=(\d\.\d{4}) max_prob_diff=\d\.\d\de[-+]\d\d "
                         r"accuracy=(\d\.\d{4}) size_bytes=(\d+) latency_p50_ms=\d+\.\d{3}$")


def test_export_writes_checks_and_prints_one_line(tmp_path, capsys):
    out = tmp_path / "digits-int8.tflite"
    p = in_process(capsys, "export", DEFAULT_MODEL, "--format", "tflite-int8", "--out", out)
    assert p.returncode == 0, p.stderr[-3000:]
    match = EXPORT_LINE.match(p.stdout.strip())
    assert match and len(p.stdout.splitlines()) == 1, p.stdout
    agreement, accuracy, size = float(match[1]), float(match[2]), int(match[3])
    assert agreement >= 0.995 and accuracy >= 0.99  # on all 10,000 test digits (the Keras model: 99.58%)
    assert size == out.stat().st_size < DEFAULT_MODEL.stat().st_size / 4
    assert f"wrote {out}" in p.stderr and "Traceback" not in p.stderr
    assert sorted(tmp_path.iterdir()) == [out]  # no temporary file left


@pytest.mark.parametrize("argv, words", [(["--help"], "export"),
                                         (["export", "--help"], "tflite,tflite-int8,savedmodel")])
def test_export_help(argv, words, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 0 and words in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["readme", "missing", "truncated", "folder"])
def test_export_a_bad_model_path_is_one_short_line(kind, tmp_path, capsys):
    path, words = _bad_model_path(kind, tmp_path)
    out = tmp_path / "m.tflite"
    assert cli.main(["export", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and words in err, err
    assert "Traceback" not in err and not out.exists()


@pytest.mark.parametrize("where, fmt, message", [
    ("no/such/folder/m.tflite", "tflite", "error: Cannot write {out}: No such file or directory"),
    ("file.txt/m.tflite", "tflite", "error: Cannot write {out}: Not a directory"),
    ("folder.zip", "savedmodel", "error: {out} is a folder, not a file to write the export to"),
    ("m.zip", "tflite-int8", "error: tflite-int8 exports end in .tflite: {out}"),
    ("m.tflite", "savedmodel", "error: savedmodel exports end in .zip: {out}"),
])
def test_export_a_bad_out_path_is_one_line(where, fmt, message, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("not a folder")
    (tmp_path / "folder.zip").mkdir()
    out = tmp_path / where
    assert cli.main(["export", str(DEFAULT_MODEL), "--format", fmt, "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [message.format(out=out)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "folder.zip"]  # nothing written
