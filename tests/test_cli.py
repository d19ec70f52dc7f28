"""mnist_core.cli: `python -m mnist_core` run for real in subprocesses (plus a few in-process checks)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from mnist_core import cli
from mnist_core.model import PRESETS
from mnist_core.training import TrainConfig

REPO = Path(__file__).resolve().parents[1]
TRAIN_FLAGS = ["--preset", "--epochs", "--batch-size", "--learning-rate", "--schedule", "--augment", "--augment-style",
               "--augment-stroke", "--my-digits", "--seed", "--train-subset",
               "--test-subset", "--precision", "--steps-per-execution", "--no-deterministic", "--data-path", "--out",
               "--dry-run"]
LAST_LINE = re.compile(r"^test_accuracy=\d\.\d{4} seconds=\d+\.\d$")


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("MNIST_NPZ", None)
    return subprocess.run([sys.executable, "-m", "mnist_core", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


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


def test_train_help_lists_every_flag(tmp_path):
    p = run_cli("train", "--help", cwd=tmp_path)
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


def test_evaluate_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["evaluate", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "model" in out and "--data-path" in out and "--test-subset" in out


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


def test_evaluate_prints_the_same_accuracy(dry_run):
    p, out = dry_run
    assert p.returncode == 0
    trained_accuracy = p.stdout.strip().splitlines()[-1].split()[0]
    e = run_cli("evaluate", out, "--test-subset", "500", cwd=out.parent)
    assert e.returncode == 0, e.stderr[-3000:]
    lines = e.stdout.strip().splitlines()
    assert lines[-1] == trained_accuracy
    digit_lines = [line for line in lines if line.startswith("digit ")]
    assert len(digit_lines) == 10
    counts = [int(re.search(r"\((\d+) images\)", line).group(1)) for line in digit_lines]
    assert sum(counts) == 500


def test_evaluate_corrupt_model_file(tmp_path):
    path = tmp_path / "corrupt.keras"
    path.write_bytes(b"PK\x03\x04 this is not really a zip" * 50)
    p = run_cli("evaluate", path, cwd=tmp_path)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    error_lines = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert error_lines and str(path) in error_lines[0], p.stderr[-2000:]


def test_evaluate_missing_model_file(tmp_path, capsys):
    path = tmp_path / "missing.keras"
    assert cli.main(["evaluate", str(path)]) == 2
    assert f"error: Model file not found: {path}" in capsys.readouterr().err


# ---------------------------------------------------------------- devices and bad flags


def test_devices(capsys):
    assert cli.main(["devices"]) == 0
    out = capsys.readouterr().out
    if tf.config.list_physical_devices("GPU"):
        assert out.startswith("GPU ") and "precision for auto: mixed_float16" in out
    else:
        assert out.startswith("CPU only")
        assert re.search(r"^precision for auto: (float32|mixed_bfloat16)$", out, re.M)


def test_bad_flag_value(tmp_path):
    p = run_cli("train", "--epochs", "0", "--out", tmp_path / "m.keras", cwd=tmp_path)
    assert p.returncode == 2
    assert "error: epochs must be at least 1, got 0" in p.stderr
    assert "Traceback" not in p.stderr
    assert list(tmp_path.iterdir()) == []  # nothing trained, nothing saved


@pytest.mark.parametrize("argv, words", [
    (["train", "--batch-size", "-1"], "batch_size must be at least 1"),
    (["train", "--learning-rate", "0"], "learning_rate must be positive"),
    (["train", "--train-subset", "-3"], "train_subset"),
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


def test_digits_list_export_and_import(digits_db, tmp_path):
    p = run_cli("digits", "list", "--db", digits_db.path, "--limit", "3", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines[0].endswith("12 digits · 0: 2 1: 2 2: 1 3: 1 4: 1 5: 1 6: 1 7: 1 8: 1 9: 1")
    assert [line.split()[0] for line in lines[1:]] == ["#12", "#11", "#10"]  # the newest first
    p = run_cli("digits", "export", tmp_path / "mine.zip", "--db", digits_db.path, cwd=tmp_path)
    assert p.returncode == 0 and "wrote 12 digits" in p.stdout, p.stderr
    p = run_cli("digits", "import", tmp_path / "mine.zip", "--db", tmp_path / "other.sqlite", cwd=tmp_path)
    assert p.returncode == 0 and "imported 12 digits" in p.stdout and "(0 skipped)" in p.stdout, p.stderr


def test_digits_commands_say_what_is_wrong(tmp_path):
    p = run_cli("digits", "list", "--db", tmp_path / "none.sqlite", cwd=tmp_path)
    assert p.returncode == 2 and "No digits database at" in p.stderr and "Traceback" not in p.stderr
    (tmp_path / "notes.zip").write_text("not a zip")
    p = run_cli("digits", "import", tmp_path / "notes.zip", "--db", tmp_path / "d.sqlite", cwd=tmp_path)
    assert p.returncode == 2 and "error:" in p.stderr and "Traceback" not in p.stderr
    p = run_cli("digits", "export", "--db", tmp_path / "d.sqlite", cwd=tmp_path)
    assert p.returncode == 2 and "needs the zip file's name" in p.stderr


def test_finetune_reports_before_and_after_and_records_the_parent(dry_run, digits_db, tmp_path):
    _, parent = dry_run
    out = tmp_path / "mine.keras"
    p = run_cli("finetune", "--from", parent, "--digits", digits_db.path, "--out", out, "--epochs", "1", cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert re.search(r"^your held-out digits: \d+\.\d\d% -> \d+\.\d\d%$", p.stdout, re.M), p.stdout
    assert re.search(r"^MNIST test: \d+\.\d\d% -> \d+\.\d\d%$", p.stdout, re.M), p.stdout
    assert "trained on 10 of your digits, 2 held out" in p.stderr
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["config"]["parent"] == str(parent) and side["personal"]["trained_on"] == 10


def test_finetune_without_a_database_is_a_clear_error(dry_run, tmp_path):
    _, parent = dry_run
    p = run_cli("finetune", "--from", parent, "--digits", tmp_path / "none.sqlite", "--out", tmp_path / "m.keras",
                cwd=tmp_path)
    assert p.returncode == 2 and "No digits database at" in p.stderr and "Traceback" not in p.stderr
