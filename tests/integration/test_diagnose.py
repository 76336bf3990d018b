"""Issue 6 levers: the quantisation debugger report, the accuracy-aware float-fallback loop,
int16x8 and calibration class coverage. Real converter, real LiteRT interpreter, real PNGs.

The forced cases use a tiny hand-set model whose logits share one tensor with a huge spike: in int8
the informative +-0.05 signal rounds away (mIoU collapses) and only keeping the right layers in
float brings it back, so the loop has something real to repair.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from edgeseg.cli.main import app
from edgeseg.core.fileio import file_sha256
from edgeseg.core.model_metadata import read_metadata
from edgeseg.core.spec import ModelSpec
from edgeseg.runtime.inspect import inspect_tflite

SIZE = 32
runner = CliRunner()


# === Synthetic data and model ===


def make_dataset(root: Path, *, n: int = 6, absent_dark: bool = False) -> Path:
    """bright/dark blocks with a few saturated (255) pixels; mask 255 = 'dark' (binary masks)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    (root / "labels.txt").write_text("bright\ndark\n")
    for split in ("train", "val"):
        for sub in ("images", "masks"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            blocks = np.where(rng.random((SIZE // 4, SIZE // 4)) > 0.5, 190, 60)
            if absent_dark:
                blocks[:] = 190
            img = cv2.resize(blocks.astype(np.uint8), (SIZE, SIZE), interpolation=cv2.INTER_NEAREST)
            img = np.clip(img.astype(int) + rng.integers(-30, 30, img.shape), 0, 250).astype(
                np.uint8
            )
            img[rng.integers(0, SIZE, 3), rng.integers(0, SIZE, 3)] = 255
            mask = np.where(img < 128, 255, 0).astype(np.uint8)
            cv2.imwrite(str(root / split / "images" / f"{i}.png"), img)
            cv2.imwrite(str(root / split / "masks" / f"{i}.png"), mask)
    return root


def make_spiky_model(path: Path) -> Path:
    """logits = [s, -s] + spike: s = +-0.05 carries the class, the spike (up to 1500, only on
    saturated pixels) sets the int8 scale of the shared tensors, so int8 rounds s to zero."""
    import keras
    from keras import layers

    x = keras.Input((SIZE, SIZE, 1), name="image")
    a = layers.Conv2D(2, 1, name="signal")(x)
    b = layers.Conv2D(2, 1, activation="relu", name="spike")(x)
    out = layers.Softmax(name="probs")(layers.Add(name="logits")([a, b]))
    model = keras.Model(x, out)
    k = 0.05
    model.get_layer("signal").set_weights(
        [
            np.array([k / 127.5, -k / 127.5], np.float32).reshape(1, 1, 1, 2),
            np.array([-k, k], np.float32),
        ]
    )
    model.get_layer("spike").set_weights(
        [np.full((1, 1, 1, 2), 1000.0, np.float32), np.full(2, -253500.0, np.float32)]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    ModelSpec(SIZE, SIZE, ("bright", "dark"), channels=1).save(path.with_name("config.json"))
    return path


@pytest.fixture(scope="module")
def spiky(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("spiky")
    return make_spiky_model(root / "run" / "model.keras"), make_dataset(root / "data")


# === Debugger report ===


@pytest.mark.slow
def test_diagnose_cli_on_real_membrane_run(
    membrane_run, membrane_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "m_int8.tflite"
    res = runner.invoke(
        app,
        [
            "convert",
            str(membrane_run.model_path),
            "--calib",
            str(membrane_data),
            "--calib-count",
            "8",
            "--diagnose",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "worst" in res.output and "error %" in res.output
    assert not out.exists()  # --diagnose alone reports, it does not convert
    rows = list(csv.DictReader((tmp_path / "diagnose.csv").open()))
    # one row per quantised layer: the 3-level U-Net has 15 convs, 3 up-samplers, 3 pools, ...
    assert len(rows) >= 20
    assert len({r["node"] for r in rows}) == len(rows)
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    errors = [float(r["error_pct"]) for r in rows if not math.isnan(float(r["error_pct"]))]
    assert errors == sorted(errors, reverse=True) and errors[0] > 0
    assert "CONV_2D" in {r["op"] for r in rows}
    assert "SOFTMAX" not in {r["op"] for r in rows}  # the head ships as logits by default
    # readable Keras names, not TFLite node names
    assert any(r["layer"] == "head (output)" for r in rows)
    png = cv2.imread(str(tmp_path / "diagnose.png"))
    assert png is not None and png.shape[0] > 200 and png.std() > 10


@pytest.mark.slow
def test_diagnose_ranks_the_crushed_layer_first(spiky: tuple[Path, Path], tmp_path: Path) -> None:
    from edgeseg.convert.diagnose import diagnose
    from edgeseg.convert.options import ConvertOptions
    from edgeseg.train.model_io import load_keras_model

    model_path, data = spiky
    model, spec = load_keras_model(model_path)
    # the crafted head (spike + signal -> softmax) is the point here: keep its softmax
    result = diagnose(
        model, spec, data, tmp_path, options=ConvertOptions(keep_softmax=True), count=12
    )
    worst = result.worst(1)[0]
    assert worst.layer == "signal" and worst.error_pct > 90  # the +-0.05 signal is rounded away
    assert [e.index for e in result.layers] == list(range(len(result.layers)))
    assert result.csv_path is not None and result.csv_path.is_file()


# === Accuracy-aware loop ===


@pytest.mark.slow
def test_max_drop_keeps_layers_in_float_until_met(spiky: tuple[Path, Path], tmp_path: Path) -> None:
    from edgeseg.convert.options import ConvertOptions
    from edgeseg.convert.repair import repair
    from edgeseg.runtime.segmenter import Segmenter

    model_path, data = spiky
    out = tmp_path / "m.tflite"
    earlier = tmp_path / "m.best_effort.tflite"  # an earlier run's, which failed
    earlier.write_bytes(b"earlier")
    (tmp_path / "m.best_effort.report.json").write_text("{}")
    result = repair(
        model_path,
        data,
        data / "val",
        out,
        options=ConvertOptions(calib_count=12, keep_softmax=True),  # the crafted softmax head
        max_drop=1.0,
        max_float_layers=8,
        edgetpu=True,
    )
    assert result.baseline.drop > 20  # full int8 really fails here...
    assert result.passed and result.chosen.drop <= 1.0  # ...and float fallback repairs it
    assert result.path == out and out.is_file()
    assert not earlier.exists() and not (tmp_path / "m.best_effort.report.json").exists()
    assert {"logits", "probs (output)"} <= set(result.chosen.labels)
    assert len(result.attempts) >= 2 and result.chosen.latency_ms > 0
    meta = read_metadata(out)
    assert meta is not None
    assert meta["float_layers"] == [e.node for e in result.chosen.float_layers]
    assert meta["float_layer_names"] == result.chosen.labels
    assert meta["miou_drop"] <= 1.0 and meta["within_max_drop"] is True
    assert meta["spec"]["float_miou"] == pytest.approx(result.float_miou)
    # the source's hash, as a plain conversion records it: check tells a stale model by it
    assert meta["source_model"] == model_path.name
    assert meta["source_sha256"] == file_sha256(model_path)
    assert any("not Edge TPU compatible" in n for n in result.notes)
    frame = cv2.imread(str(data / "val" / "images" / "0.png"), cv2.IMREAD_GRAYSCALE)
    assert Segmenter(out).predict(frame).shape == frame.shape  # the mixed model runs


@pytest.mark.slow
def test_max_drop_unreachable_exits_1_with_best_effort(
    spiky: tuple[Path, Path], tmp_path: Path
) -> None:
    model_path, data = spiky
    out = tmp_path / "m.tflite"
    out.write_bytes(b"an earlier run's, which passed a looser --max-drop")
    (tmp_path / "m.report.json").write_text("{}")
    res = runner.invoke(
        app,
        [
            "convert",
            str(model_path),
            "--calib",
            str(data),
            "--data",
            str(data / "val"),
            "--max-drop",
            "1",
            "--max-float-layers",
            "2",
            "--calib-count",
            "12",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 1, res.output
    assert "cannot meet --max-drop 1" in res.output
    # the calibration's warnings, as a plain conversion prints them (--max-drop said none)
    assert "only 12 calibration image(s) from" in " ".join(res.output.split())
    assert not out.exists() and not (tmp_path / "m.report.json").exists()  # "nothing at OUT"
    best = tmp_path / "m.best_effort.tflite"
    assert best.is_file() and (tmp_path / "m.best_effort.report.json").is_file()
    meta = read_metadata(best)
    assert meta is not None and meta["within_max_drop"] is False and meta["miou_drop"] > 1.0
    # its softmax head left out, as a plain conversion leaves it: the metadata said "softmax"
    assert meta["spec"]["output_kind"] == "logits"
    shown = runner.invoke(app, ["info", str(best)])  # it looked like a plain int8 model
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert "accuracy-aware │ full int8; mIoU drop" in text and "NOT met (best effort)" in text
    assert "32x32x1 gray" in text  # not "rgb": one channel has no colour order
    assert "SOFTMAX" not in inspect_tflite(best.read_bytes()).op_histogram
    assert (tmp_path / "diagnose.csv").is_file()


def test_max_drop_needs_data(tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["convert", str(tmp_path / "m.keras"), "--calib", str(tmp_path), "--max-drop", "1"]
    )
    assert res.exit_code == 2
    assert "--max-drop needs --data" in res.output


# === int16x8 ===


@pytest.mark.slow
@pytest.mark.parametrize("upsample", ["transpose", "resize"])
def test_int16x8_converts_and_runs(upsample: str, tmp_path: Path) -> None:
    from edgeseg.convert.calibration import representative_dataset
    from edgeseg.convert.converter import export
    from edgeseg.convert.options import ConvertOptions
    from edgeseg.runtime.bench import invoke_latency_ms
    from edgeseg.runtime.inspect import inspect_tflite
    from edgeseg.runtime.segmenter import Segmenter
    from edgeseg.train.model import build_unet

    model = build_unet((SIZE, SIZE, 1), 2, depth=2, base_filters=4, upsample=upsample)  # type: ignore[arg-type]
    spec = ModelSpec(SIZE, SIZE, ("a", "b"), channels=1)
    frames = [np.random.default_rng(i).integers(0, 256, (SIZE, SIZE), np.uint8) for i in range(4)]
    out = tmp_path / "m16.tflite"
    export(model, spec, ConvertOptions(quant="int16x8"), out, representative_dataset(frames, spec))
    info = inspect_tflite(out)
    assert info.inputs[0].dtype == "int16" and info.outputs[0].dtype == "int16"
    up_op = "TRANSPOSE_CONV" if upsample == "transpose" else "RESIZE_BILINEAR"
    assert {up_op, "CONV_2D"} <= set(info.op_histogram) and "SOFTMAX" not in info.op_histogram
    assert invoke_latency_ms(out, runs=2, warmup=1) > 0  # raises ConversionError if unsupported
    assert Segmenter(out).predict(frames[0]).shape == (SIZE, SIZE)


# === Calibration class coverage ===


def test_coverage_warns_when_a_class_is_absent(tmp_path: Path) -> None:
    from edgeseg.convert.calib_coverage import class_coverage

    spec = ModelSpec(SIZE, SIZE, ("bright", "dark"), channels=1)
    cov = class_coverage(make_dataset(tmp_path / "d", absent_dark=True), spec, count=8)
    assert cov is not None and cov.frames == 8
    assert cov.absent == ("dark",) and cov.pixels[0] > 0
    assert any("'dark' never appear" in w for w in cov.warnings())
    full = class_coverage(make_dataset(tmp_path / "ok"), spec, count=8)
    assert full is not None and full.absent == () and full.warnings() == []
    assert sum(full.fractions) == pytest.approx(1.0)


def test_coverage_is_none_for_a_plain_image_folder(tmp_path: Path) -> None:
    from edgeseg.convert.calib_coverage import class_coverage

    root = make_dataset(tmp_path / "d")
    spec = ModelSpec(SIZE, SIZE, ("bright", "dark"), channels=1)
    assert class_coverage(root / "val" / "images", spec) is None


def test_coverage_of_another_sets_masks_is_not_counted_under_the_models_names(
    tmp_path: Path,
) -> None:
    """Calibrating an aerial model on the membrane set printed 'water 22%, land 78%': the
    other set's class ids counted as the model's classes. Data without class names of its own
    is still counted with the model's."""
    from edgeseg.convert.calib_coverage import class_coverage

    root = make_dataset(tmp_path / "d")
    spec = ModelSpec(SIZE, SIZE, ("water", "land"), channels=1)
    cov = class_coverage(root, spec, count=8)
    assert cov is not None and cov.frames == 0
    assert cov.other_names == ("bright", "dark")
    assert cov.warnings() == [
        "the calibration data's masks name other classes (bright, dark) than the model's (water, "
        "land); calibration frames should show what the model will see (class coverage not "
        "counted)"
    ]
    (root / "labels.txt").unlink()
    unnamed = class_coverage(root, spec, count=8)
    assert unnamed is not None and unnamed.frames == 8 and unnamed.other_names == ()
