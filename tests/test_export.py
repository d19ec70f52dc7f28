"""mnist_core.export: the shipped model exported to real files, run by TFLite and TensorFlow on all 10,000
MNIST test digits next to the Keras model."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from mnist_core import export
from mnist_core.model import build_model
from mnist_core.predict import Predictor
from mnist_core.store import DEFAULT_MODEL, load_model

MIN_AGREEMENT = {"tflite": 0.999, "tflite-int8": 0.995, "savedmodel": 0.999}  # the bars
# float32 exports compute what Predictor computes; int8 weights move a probability by a few hundredths
MAX_PROB_DIFF = {"tflite": 1e-4, "tflite-int8": 0.2, "savedmodel": 1e-4}


@pytest.fixture(scope="module")
def shipped():
    return load_model(DEFAULT_MODEL)


CHECKED = 2_500  # test digits each export is checked on here (the CLI checks all 10,000)


@pytest.fixture(scope="module")
def digits():
    x, labels = export.mnist_test_set()
    return x[:CHECKED], labels[:CHECKED]


@pytest.fixture(scope="module")
def exported(shipped, digits, tmp_path_factory):
    """Each format written once to a file and checked from that file: {format: (path, report)}."""
    folder = tmp_path_factory.mktemp("export")
    result = {}
    for fmt in export.FORMATS:
        path = export.write_export(shipped, fmt, folder / export.file_name(DEFAULT_MODEL, fmt))
        result[fmt] = path, export.check_export(path.read_bytes(), fmt, shipped, digits)
    return result


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_each_format_answers_like_the_keras_model(exported, fmt):
    path, report = exported[fmt]
    assert report.format == fmt and report.images == CHECKED
    assert report.agreement >= MIN_AGREEMENT[fmt], report
    assert report.max_prob_diff < MAX_PROB_DIFF[fmt], report
    assert report.accuracy >= 0.99, report  # the shipped model: 99.58% on all 10,000
    assert report.size_bytes == path.stat().st_size
    assert 0 < report.latency_p50_ms <= report.latency_p95_ms


def test_int8_is_much_smaller_than_float32(exported):
    assert exported["tflite-int8"][1].size_bytes < exported["tflite"][1].size_bytes / 2


def test_report_line(exported):
    line = exported["tflite"][1].line()
    assert line.startswith("format=tflite agreement=1.0000 max_prob_diff=") and "\n" not in line
    assert "accuracy=0.99" in line and "size_bytes=" in line and "latency_p50_ms=" in line


@pytest.mark.parametrize("fmt", ["tflite", "tflite-int8"])
def test_download_is_a_file_the_litert_interpreter_runs(shipped, digits, fmt):
    blob, name = export.download(DEFAULT_MODEL, fmt)
    assert name == {"tflite": "default.tflite", "tflite-int8": "default-int8.tflite"}[fmt]
    interpreter = Interpreter(model_content=blob)  # LiteRT, as a phone would run it
    assert interpreter.get_signature_list() == {"serving_default": {"inputs": ["image"], "outputs": ["probabilities"]}}
    images = digits[0][:8]
    probabilities = interpreter.get_signature_runner()(image=images)["probabilities"]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert (probabilities.argmax(axis=1) == Predictor(shipped, second_look=False).predict(images)).all()


def test_download_savedmodel_is_a_zip_of_a_loadable_savedmodel(shipped, digits, tmp_path):
    blob, name = export.download(DEFAULT_MODEL, "savedmodel")
    assert name == "default-savedmodel.zip"
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        assert "saved_model/saved_model.pb" in z.namelist()
        assert {n.split("/")[0] for n in z.namelist()} == {"saved_model"}  # unzips into one folder
        z.extractall(tmp_path)
    serve = tf.saved_model.load(str(tmp_path / "saved_model")).signatures["serving_default"]
    images = digits[0][:8]
    probabilities = serve(image=tf.constant(images))["probabilities"].numpy()
    np.testing.assert_allclose(probabilities, Predictor(shipped, second_look=False).predict_proba(images), atol=1e-5)


def test_download_names_a_missing_model_like_load_model(tmp_path):
    with pytest.raises(RuntimeError, match="^Model file not found: "):
        export.download(tmp_path / "missing.keras", "tflite")


@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_other_precisions_export_too(trained, digits, policy):
    """The shipped model computes in bfloat16; a float32 one and one trained with float16 (on a GPU) export alike."""
    model = build_model(trained.config.preset, policy)
    model.set_weights(trained.result.model.get_weights())
    images, labels = digits
    report = export.check_export(export.convert(model, "tflite"), "tflite", model, (images[:1000], labels[:1000]))
    assert report.agreement == 1.0 and report.max_prob_diff < 1e-4, report


def test_refused_names_and_folders(shipped, tmp_path):
    with pytest.raises(ValueError, match=r"^tflite exports end in \.tflite: .*m\.zip$"):
        export.write_export(shipped, "tflite", tmp_path / "m.zip")
    with pytest.raises(ValueError, match=r"^savedmodel exports end in \.zip: "):
        export.export_path(tmp_path / "m.tflite", "savedmodel")
    folder = tmp_path / "d.tflite"
    folder.mkdir()
    with pytest.raises(ValueError, match=f"^{folder} is a folder, not a file to write the export to$"):
        export.write_export(shipped, "tflite", folder)
    out = tmp_path / "no" / "such" / "m.tflite"
    with pytest.raises(export.ExportError, match=f"^Cannot write {out}: No such file or directory$"):
        export.write_export(shipped, "tflite", out)
    with pytest.raises(ValueError, match="^Unknown export format 'onnx'; choose one of tflite, tflite-int8, "):
        export.convert(shipped, "onnx")
    assert list(tmp_path.iterdir()) == [folder] and not any(folder.iterdir())  # nothing written, nothing left
