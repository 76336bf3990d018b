"""Conversion stage end to end: real Keras model -> int8 TFLite, checked with the LiteRT interpreter
on the real membrane validation set through the shared processing."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeseg.convert.options import ConvertOptions, IOType, Quant
from edgeseg.core.errors import ConversionError, WriteError
from edgeseg.core.processing import class_map_from_output, prepare_image, to_input_tensor
from edgeseg.core.spec import ModelSpec

pytestmark = pytest.mark.slow

FORBIDDEN_OPS = {"SHAPE", "PACK", "STRIDED_SLICE", "GATHER", "RESHAPE", "DEQUANTIZE", "CAST"}


def _interpreter(path: Path):  # type: ignore[no-untyped-def]
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    return interp


def _tflite_class_map(interp, pixels: np.ndarray, spec: ModelSpec) -> np.ndarray:  # type: ignore[no-untyped-def]
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    scale, zp = inp["quantization"]
    interp.set_tensor(inp["index"], to_input_tensor(pixels, inp["dtype"], scale, zp))
    interp.invoke()
    oscale, ozp = out["quantization"]
    return class_map_from_output(interp.get_tensor(out["index"]), spec.output_kind, oscale, ozp)


@pytest.fixture(scope="module")
def membrane_int8(membrane_run, membrane_data, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The real membrane model converted with uint8 and with int8 (default) input (~15 s)."""
    from edgeseg.convert.pipeline import convert_model

    out = tmp_path_factory.mktemp("membrane_int8")
    uint8 = convert_model(
        membrane_run.model_path,
        out / "model_int8.tflite",
        ConvertOptions(io=IOType.UINT8),
        calib=membrane_data,
    )
    int8 = convert_model(
        membrane_run.model_path,
        out / "model_int8io.tflite",
        calib=membrane_data,
        measure_float32=False,
    )
    return uint8, int8


def test_int8_model_agrees_with_keras_on_real_validation_pixels(
    membrane_int8,
    membrane_run,
    membrane_data,  # type: ignore[no-untyped-def]
) -> None:
    from edgeseg.data.dataset import open_dataset
    from edgeseg.train.model_io import load_keras_model

    model, spec = load_keras_model(membrane_run.model_path)
    ds = open_dataset(membrane_data)
    pixels = [prepare_image(image, spec)[0] for _, image, _ in ds.iter_split("val")]
    keras_maps = np.argmax(model.predict(np.stack(pixels).astype(np.float32), verbose=0), axis=-1)
    for outcome, dtype in zip(membrane_int8, (np.uint8, np.int8), strict=True):
        interp = _interpreter(outcome.export.path)
        assert interp.get_input_details()[0]["dtype"] == dtype
        assert interp.get_output_details()[0]["dtype"] == np.int8
        lite_maps = np.stack([_tflite_class_map(interp, px, spec) for px in pixels])
        agreement = float((lite_maps == keras_maps).mean())
        assert agreement >= 0.99, f"{outcome.export.path.name}: argmax agreement {agreement:.4f}"


def test_uint8_input_passes_camera_bytes_straight_through(membrane_int8) -> None:  # type: ignore[no-untyped-def]
    info = membrane_int8[0].info
    assert info.inputs[0].dtype == "uint8"
    assert abs(info.inputs[0].scale - 1.0) < 1e-6 and info.inputs[0].zero_point == 0


def test_report_and_op_set_of_transpose_decoder(membrane_int8, membrane_run) -> None:  # type: ignore[no-untyped-def]
    outcome = membrane_int8[0]
    report = json.loads(outcome.report_path.read_text())
    assert outcome.report_path.name == "model_int8.report.json"
    assert report["size_ratio_vs_float32"] <= 0.3
    hist = report["op_histogram"]
    assert set(hist) <= {
        "QUANTIZE",
        "ADD",
        "MUL",
        "CONV_2D",
        "MAX_POOL_2D",
        "CONCATENATION",
        "TRANSPOSE_CONV",
    }
    assert hist["TRANSPOSE_CONV"] == 3 and not FORBIDDEN_OPS & set(hist)
    assert report["non_int8_ops"] == [] and report["unexpected_ops"] == []
    assert report["calibration"]["used"] == 30 and report["calibration"]["input_range"][1] > 200
    hints = {i["hint"] for i in report["edgetpu_precheck"] if i["op"] == "TRANSPOSE_CONV"}
    assert hints == {"retrain with --upsample resize"}
    kernels = [t for t in outcome.info.tensors.values() if t.per_channel and len(t.shape) == 4]
    assert kernels and all(t.dtype == "int8" for t in kernels)  # per-channel int8 conv weights


def test_metadata_reads_back_without_tensorflow(membrane_int8, membrane_run) -> None:  # type: ignore[no-untyped-def]
    path = membrane_int8[0].export.path
    code = (
        "import sys, json; from edgeseg.core.model_metadata import read_spec, read_metadata;"
        f"s = read_spec({str(path)!r}); m = read_metadata({str(path)!r});"
        "print(json.dumps([list(s.class_names), s.float_miou, m['quant'], m['io'],"
        " m['calib_count'], 'tensorflow' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    names, miou, quant, io, count, tf_loaded = json.loads(out.stdout)
    assert names == list(membrane_run.spec.class_names)
    assert miou is not None and 0 < miou <= 1
    assert (quant, io, count, tf_loaded) == ("int8", "uint8", 30, False)


def info_in_a_fresh_interpreter(*models: Path) -> str:
    """`edgeseg info MODEL` for each model in one new Python process (wide terminal): each output,
    then `EXIT <code> <whether TensorFlow got imported>`."""
    code = "import sys; from typer.testing import CliRunner; from edgeseg.cli.main import app\n"
    for model in models:
        code += (
            f"r = CliRunner().invoke(app, ['info', {str(model)!r}])\n"
            "print(r.output); print('EXIT', r.exit_code, 'tensorflow' in sys.modules)\n"
        )
    env = {**os.environ, "COLUMNS": "250"}
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return res.stdout


def test_info_prints_metadata_and_ops_without_tensorflow(membrane_int8) -> None:  # type: ignore[no-untyped-def]
    stdout = info_in_a_fresh_interpreter(membrane_int8[0].export.path)
    assert "EXIT 0 False" in stdout
    for expected in (
        "membrane, cell_interior",
        "float mIoU",
        "uint8",
        "TRANSPOSE_CONV 3",
        "ai-edge-litert",
        "int8, uint8 input",
        "stretch",
        "logits",  # the softmax head is left out by default
    ):
        assert expected in stdout, expected
    # scores in percent, as `eval` and `check` print them
    assert re.search(r"mIoU\W+\d{1,3}\.\d\d%", stdout), stdout


def test_info_on_a_keras_model_reads_what_training_recorded_without_tensorflow(  # type: ignore[no-untyped-def]
    membrane_run, tmp_path: Path
) -> None:
    """`edgeseg info runs/x/model.keras`: config.json's spec, cost and recipe, TensorFlow unloaded;
    a .keras with no config.json beside it is a one-line error that says what info reads."""
    lone = tmp_path / "lone.keras"
    shutil.copy(membrane_run.model_path, lone)
    stdout = info_in_a_fresh_interpreter(membrane_run.model_path, lone)
    shown, lone_out = stdout.split("EXIT 0 False", 1)
    cost = json.loads((membrane_run.model_path.parent / "config.json").read_text())["cost"]
    for expected in (
        "membrane, cell_interior",
        f"{cost['params']:,} parameters",
        f"{cost['macs'] / 1e9:.3f} GMAC per frame",
        "softmax",  # the Keras model keeps its softmax head
        "steps (",
        "loss ",
        str(membrane_run.model_path.parent / "config.json"),
    ):
        assert expected in shown, (expected, shown)
    assert "no config.json beside it" in lone_out and "EXIT 2" in lone_out
    assert "quantisation-aware" not in shown  # trained with qat=False

    # a run stopped (Ctrl-C) before its quantisation-aware step: its recipe says the step comes,
    # its model.keras is the float checkpoint (info showed only the recipe)
    stopped = tmp_path / "stopped"
    shutil.copytree(membrane_run.model_path.parent, stopped)
    config = json.loads((stopped / "config.json").read_text())
    config["train"]["qat"] = True
    (stopped / "config.json").write_text(json.dumps(config))
    shown = info_in_a_fresh_interpreter(stopped / "model.keras")
    assert "then the quantisation-aware model" in shown, shown
    assert "not run yet: model.keras is the float checkpoint" in shown, shown


# === Small untrained models: decoder variants and quantisation modes ===


@pytest.fixture(scope="module")
def small_models(tmp_path_factory):  # type: ignore[no-untyped-def]
    """64x64 depth-2 U-Nets (transpose and resize decoders) saved as `edgeseg train` would."""
    from edgeseg.train.model import build_unet

    root = tmp_path_factory.mktemp("small_models")
    models = {}
    for up in ("transpose", "resize"):
        run = root / up
        run.mkdir()
        model = build_unet((64, 64, 3), 3, depth=2, base_filters=8, upsample=up)  # type: ignore[arg-type]
        model.save(run / "model.keras")
        spec = ModelSpec(input_height=64, input_width=64, class_names=("a", "b", "c"))
        spec.save(run / "config.json")
        models[up] = (model, spec, run)
    return models


def _frames(n: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (80, 80, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def small_int8(small_models, tmp_path_factory):  # type: ignore[no-untyped-def]
    """Both small variants converted to int8 once: {upsample: (path, calibration set)}."""
    from edgeseg.convert.calibration import representative_dataset
    from edgeseg.convert.converter import export

    out = tmp_path_factory.mktemp("small_int8")
    converted = {}
    for up, (model, spec, _) in small_models.items():
        rep = representative_dataset(_frames(), spec, count=8)
        converted[up] = (export(model, spec, ConvertOptions(), out / f"{up}.tflite", rep).path, rep)
    return converted


@pytest.mark.parametrize("upsample", ["transpose", "resize"])
def test_int8_op_set_of_both_decoder_variants(small_int8, small_models, upsample) -> None:  # type: ignore[no-untyped-def]
    from edgeseg.convert.validate import validate

    path, rep = small_int8[upsample]
    spec = small_models[upsample][1]
    report, info = validate(path, ConvertOptions())
    up_op = "TRANSPOSE_CONV" if upsample == "transpose" else "RESIZE_BILINEAR"
    # int8 input (the default --io): no QUANTIZE op at the input, everything int8 end to end
    expected = {
        "ADD",
        "MUL",
        "CONV_2D",
        "MAX_POOL_2D",
        "CONCATENATION",
        up_op,
    }
    assert set(report.op_histogram) == expected
    assert report.op_histogram[up_op] == 2
    assert report.non_int8_ops == [] and report.unexpected_ops == []
    activations = {i for op in info.ops for i in op.outputs}
    assert {info.tensors[i].dtype for i in activations} == {"int8"}
    if upsample == "resize":
        assert not any(i["op"] == "TRANSPOSE_CONV" for i in report.edgetpu_precheck)
    class_map = _tflite_class_map(_interpreter(path), rep.pixels[1], spec)
    assert class_map.shape == (64, 64) and class_map.max() < 3


@pytest.mark.parametrize("quant", [Quant.FLOAT16, Quant.DYNAMIC, Quant.FLOAT32])
def test_float_variants_convert_and_run(small_models, quant, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from edgeseg.convert.converter import export
    from edgeseg.convert.validate import validate

    model, spec, _ = small_models["resize"]
    opts = ConvertOptions(quant=quant)
    res = export(model, spec, opts, tmp_path / f"m_{quant}.tflite")
    report, info = validate(res.path, opts)
    assert info.inputs[0].dtype == "float32" and info.outputs[0].dtype == "float32"
    assert report.non_int8_ops  # float models are honest about it
    if quant == Quant.FLOAT16:
        assert any(t.dtype == "float16" for t in info.tensors.values())
    if quant == Quant.DYNAMIC:
        assert any(t.dtype == "int8" for t in info.tensors.values())
    frame = _frames(1)[0]
    pixels, _ = prepare_image(frame, spec)
    keras_map = np.argmax(model.predict(pixels[None].astype(np.float32), verbose=0)[0], axis=-1)
    lite_map = _tflite_class_map(_interpreter(res.path), pixels, spec)
    assert (lite_map == keras_map).mean() > 0.95


def test_softmax_head_is_left_out_unless_kept_and_masks_match(
    small_models, small_int8, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """By default the .tflite ends at the logits (no SOFTMAX op, spec "logits"); --keep-softmax
    keeps the probabilities. Both give the Keras model's class maps."""
    import keras

    from edgeseg.convert.converter import export
    from edgeseg.core.model_metadata import read_spec
    from edgeseg.runtime.inspect import inspect_tflite

    model, spec, _ = small_models["resize"]
    _, rep = small_int8["resize"]
    # an untrained head gives near-uniform probabilities, which the kept softmax's 1/256 steps
    # cannot tell apart (agreement then hung on the random draw): a decisive head, as a trained
    # model's, by scaling the last convolution's weights
    sharp = keras.models.clone_model(model)
    sharp.set_weights(model.get_weights())
    head = [layer for layer in sharp.layers if isinstance(layer, keras.layers.Conv2D)][-1]
    head.kernel.assign(head.kernel * 30.0)
    path = export(sharp, spec, ConvertOptions(), tmp_path / "d.tflite", rep).path
    kept = export(sharp, spec, ConvertOptions(keep_softmax=True), tmp_path / "k.tflite", rep).path
    dropped_info, kept_info = inspect_tflite(path), inspect_tflite(kept)
    assert "SOFTMAX" not in dropped_info.op_histogram and kept_info.op_histogram["SOFTMAX"] == 1
    assert kept_info.outputs[0].scale == pytest.approx(1 / 256)  # probabilities in [0, 1]
    assert dropped_info.outputs[0].scale != pytest.approx(1 / 256)  # logits
    dropped_spec, kept_spec = read_spec(path.read_bytes()), read_spec(kept.read_bytes())
    assert dropped_spec is not None and dropped_spec.output_kind == "logits"
    assert kept_spec is not None and kept_spec.output_kind == "softmax"
    probs = sharp.predict(np.stack(rep.pixels).astype(np.float32), verbose=0)
    for tflite in (path, kept):
        interp = _interpreter(tflite)
        maps = np.stack([_tflite_class_map(interp, px, spec) for px in rep.pixels])
        assert (maps == np.argmax(probs, axis=-1)).mean() > 0.97, tflite.name


def test_softmax_activation_of_a_conv_head_is_left_out_too(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A head written as Conv2D(..., activation="softmax") loses the activation, keeps weights."""
    from tiny_models import tiny_keras_model

    from edgeseg.convert.converter import serving_model

    model, spec = tiny_keras_model(classes=3)
    logits_model, logits_spec = serving_model(model, spec, ConvertOptions())  # type: ignore[arg-type]
    assert logits_spec.output_kind == "logits" and model.layers[-1].activation.__name__ == "softmax"
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.float32)
    probs, logits = model.predict(x, verbose=0), logits_model.predict(x, verbose=0)
    softmax = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(softmax, probs, atol=1e-5)
    same = serving_model(model, spec, ConvertOptions(keep_softmax=True))  # type: ignore[arg-type]
    assert same == (model, spec)


def test_float_layers_stay_float_inside_an_int8_model(small_models, small_int8, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from edgeseg.convert.converter import export
    from edgeseg.runtime.inspect import inspect_tflite

    model, spec, _ = small_models["resize"]
    path, rep = small_int8["resize"]
    plain = inspect_tflite(path)
    last_conv = next(
        plain.tensors[op.outputs[0]].name
        for op in plain.ops
        if op.name == "CONV_2D" and "dec0_conv2" in plain.tensors[op.outputs[0]].name
    )
    opts = ConvertOptions(float_layers=(last_conv,), io=IOType.UINT8)
    mixed = inspect_tflite(export(model, spec, opts, tmp_path / "b.tflite", rep).path)
    assert mixed.inputs[0].dtype == "uint8" and mixed.outputs[0].dtype == "int8"
    assert "DEQUANTIZE" in mixed.op_histogram
    assert any(name.startswith("CONV_2D") for name in mixed.non_int8_ops())


def test_interrupt_mid_convert_or_write_leaves_no_file(small_models, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import edgeseg.convert.converter as converter

    model, spec, _ = small_models["resize"]
    out = tmp_path / "m.tflite"

    def interrupted(*args: object, **kwargs: object) -> bytes:
        raise KeyboardInterrupt

    monkeypatch.setattr(converter, "run_converter", interrupted)
    with pytest.raises(KeyboardInterrupt):
        converter.export(model, spec, ConvertOptions(quant=Quant.FLOAT32), out)
    assert list(tmp_path.iterdir()) == []

    written: list[int] = []

    def interrupted_fsync(fd: int) -> None:
        written.append(os.fstat(fd).st_size)  # half the bytes are on disk in the temp file
        raise KeyboardInterrupt

    import edgeseg.core.fileio as fileio  # the one atomic writer the converter writes through

    monkeypatch.setattr(fileio.os, "fsync", interrupted_fsync)
    with pytest.raises(KeyboardInterrupt):
        converter.atomic_write_bytes(out, b"x" * 100_000)
    assert written and list(tmp_path.iterdir()) == []

    def crash_on_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(fileio.os, "fsync", lambda fd: None)
    monkeypatch.setattr(fileio.os, "replace", crash_on_replace)
    with pytest.raises(WriteError, match=r"m\.tflite: cannot write \(disk full\)"):
        converter.atomic_write_bytes(out, b"x" * 100)
    assert list(tmp_path.iterdir()) == []


def test_a_ctrl_c_at_the_end_publishes_nothing_and_an_old_model_never_meets_a_new_report(
    small_models, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """A Ctrl-C lost in a TensorFlow finaliser during validate let the conversion publish and
    exit 0; interrupted between the report and the model, a new report sat beside the old
    model. The last step ("write") lets the CLI stop it, and the old model goes first."""
    from edgeseg.convert.pipeline import convert_model

    _, _, run = small_models["resize"]
    out = tmp_path / "m.tflite"
    out.write_bytes(b"the old model")
    report = tmp_path / "m.report.json"
    report.write_text("{}")

    def stop_at_write(name: str) -> None:
        if name == "write":
            raise KeyboardInterrupt

    frames = tmp_path / "frames"
    frames.mkdir()
    for i, frame in enumerate(_frames(4)):
        assert cv2.imwrite(str(frames / f"f{i}.png"), frame)
    with pytest.raises(KeyboardInterrupt):
        convert_model(run / "model.keras", out, ConvertOptions(), frames, phase=stop_at_write)
    assert out.read_bytes() == b"the old model" and report.read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "m.report.json", "m.tflite"]
    steps: list[str] = []
    convert_model(run / "model.keras", out, ConvertOptions(), frames, phase=steps.append)
    assert steps[-1] == "write" and out.read_bytes()[4:8] == b"TFL3"
    assert json.loads(report.read_text())["model"] == str(out)


def test_a_model_rewritten_during_conversion_is_refused_not_published(
    small_models, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """`convert` while `train --resume` rewrote model.keras embedded a mix: one model's
    weights, another's config.json and a third's hash (what check trusts)."""
    from edgeseg.convert.pipeline import convert_model

    _, _, source = small_models["transpose"]
    run = tmp_path / "run"
    shutil.copytree(source, run)
    other, _, _ = small_models["resize"]

    def training_writes_a_checkpoint(name: str) -> None:
        if name == "validate":
            other.save(run / "model.keras")

    frames = tmp_path / "frames"
    frames.mkdir()
    for i, frame in enumerate(_frames(4)):
        assert cv2.imwrite(str(frames / f"f{i}.png"), frame)
    out = run / "model_int8.tflite"
    with pytest.raises(ConversionError, match=r"model\.keras: changed while it was being conv"):
        convert_model(
            run / "model.keras", out, ConvertOptions(), frames, phase=training_writes_a_checkpoint
        )
    assert not out.exists() and not (run / "model_int8.report.json").exists()
