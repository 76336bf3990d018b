"""`edgeseg convert` / `edgeseg info` through the CLI: bad input gives one-line errors and the right
exit codes with nothing half-written; Edge TPU compilation via a fake `edgetpu_compiler` on PATH."""

from __future__ import annotations

import os
import re
import shlex
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from edgeseg.cli.main import app
from edgeseg.convert.target import model_is_qat
from edgeseg.core.model_metadata import read_metadata, read_spec, strip_metadata
from edgeseg.core.spec import ModelSpec

pytestmark = pytest.mark.slow
runner = CliRunner()

FAKE_COMPILER = '''#!{python}
"""Stands in for Coral's edgetpu_compiler: same arguments, same output layout."""
import os, shutil, sys
args = sys.argv[1:]
out_dir = args[args.index("-o") + 1] if "-o" in args else "."
model = args[-1]
stem = os.path.splitext(os.path.basename(model))[0]
mode = os.environ.get("FAKE_EDGETPU_MODE", "partial")
if mode == "fail":
    print("Edge TPU Compiler version 16.0.384591198")
    print("Internal compiler error. Aborting!", file=sys.stderr)
    sys.exit(1)
shutil.copy(model, os.path.join(out_dir, stem + "_edgetpu.tflite"))
cpu = {{"partial": 4, "full": 0}}[mode]
print("Edge TPU Compiler version 16.0.384591198")
print("Started a compilation timeout timer of 180 seconds.\\n")
print("Model compiled successfully in 512 ms.\\n")
print("Input model: " + model)
print("Output model: " + os.path.join(out_dir, stem + "_edgetpu.tflite"))
print("Number of Edge TPU subgraphs: 1")
print("Total number of operations: 28")
print("Operation log: " + os.path.join(out_dir, stem + "_edgetpu.log") + "\\n")
if cpu:
    print("Model successfully compiled but not all operations are supported by the Edge TPU.")
    print("Number of operations that will run on Edge TPU: " + str(28 - cpu))
    print("Number of operations that will run on CPU: " + str(cpu) + "\\n")
print("Operator                       Count      Status\\n")
print("CONV_2D                        15         Mapped to Edge TPU")
print("MAX_POOL_2D                    3          Mapped to Edge TPU")
print("CONCATENATION                  3          Mapped to Edge TPU")
print("QUANTIZE                       1          Mapped to Edge TPU")
print("ADD                            1          Mapped to Edge TPU")
print("MUL                            1          Mapped to Edge TPU")
if cpu:
    print("TRANSPOSE_CONV                 3          Operation is otherwise supported, but not "
          "mapped due to some unspecified limitation")
    print("SOFTMAX                        1          More than one subgraph is not supported")
else:
    print("RESIZE_BILINEAR                3          Mapped to Edge TPU")
    print("SOFTMAX                        1          Mapped to Edge TPU")
'''


def _errors(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def _save_unet(run: Path, channels: int = 3) -> Path:
    from edgeseg.train.model import build_unet

    run.mkdir(parents=True)
    build_unet((64, 64, channels), 2, depth=2, base_filters=8).save(run / "model.keras")
    ModelSpec(input_height=64, input_width=64, channels=channels, class_names=("bg", "fg")).save(
        run / "config.json"
    )
    return run / "model.keras"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small RGB U-Net run, and calibration folders of gray and broken images."""
    root = tmp_path_factory.mktemp("convert_cli")
    _save_unet(root / "run")
    calib = root / "calib_gray"
    calib.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        cv2.imwrite(str(calib / f"g{i}.png"), rng.integers(0, 256, (70, 90), dtype=np.uint8))
    (calib / "broken.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    (calib / "notes.txt").write_text("ignored: not an image")
    return root


@pytest.fixture
def fake_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "edgetpu_compiler"
    exe.write_text(FAKE_COMPILER.format(python=sys.executable))
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return exe


def test_convert_with_fallbacks_strict_exits_1_and_keeps_both_models(
    workdir: Path, fake_compiler: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_EDGETPU_MODE", "partial")
    out = tmp_path / "m_int8.tflite"
    args = [
        "convert",
        str(workdir / "run" / "model.keras"),
        "--calib",
        str(workdir / "calib_gray"),
        "--out",
        str(out),
        "--calib-count",
        "5",
        "--edgetpu-strict",
    ]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert (
        "skipped 1 unreadable calibration image(s)" in result.stderr
        and "broken.jpg" in result.stderr
    )
    assert "are grayscale and were repeated to the model's RGB input" in result.stderr
    assert "only 5 calibration image(s)" in result.stderr
    assert "24/28 ops on the Edge TPU, 4 on the CPU" in result.stdout
    assert "TRANSPOSE_CONV x3: Operation is otherwise supported" in result.stdout
    assert _errors(result) == ["error: 2 op kind(s) fall back to the CPU (--edgetpu-strict)"]
    compiled = tmp_path / "m_int8_edgetpu.tflite"
    assert out.is_file() and compiled.is_file()
    assert read_spec(compiled) == read_spec(out) and read_metadata(compiled)["edgetpu"] is True
    import json

    report = json.loads((tmp_path / "m_int8.report.json").read_text())
    assert report["edgetpu"]["ops_on_cpu"] == 4
    assert {f["op"] for f in report["edgetpu"]["fallbacks"]} == {"TRANSPOSE_CONV", "SOFTMAX"}
    assert report["calibration"]["skipped"] == 1 and report["calibration"]["channel_mismatch"] == 5

    # the library call on the same model: fully mapped and a failing compiler
    from edgeseg.convert.edgetpu import compile_edgetpu
    from edgeseg.core.errors import ConversionError

    monkeypatch.setenv("FAKE_EDGETPU_MODE", "full")
    full = compile_edgetpu(out)
    assert (full.ops_on_tpu, full.ops_on_cpu, full.fallbacks) == (28, 0, [])
    monkeypatch.setenv("FAKE_EDGETPU_MODE", "fail")
    with pytest.raises(ConversionError, match=r"failed \(exit 1\).*Internal compiler error"):
        compile_edgetpu(out)


def test_max_drop_path_takes_the_same_edgetpu_step(
    workdir: Path, fake_compiler: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--edgetpu-strict after --max-drop: compiled, recorded in the report, exit 1 on fallbacks."""
    import json
    from dataclasses import replace

    import edgeseg.convert.repair as repair_mod
    from edgeseg.convert.options import ConvertOptions
    from edgeseg.convert.pipeline import convert_model
    from edgeseg.convert.repair import Attempt, RepairResult

    def full_int8_within_limit(model: Path, calib: Path, data: Path, out: Path, **kw: object):  # type: ignore[no-untyped-def]
        outcome = convert_model(model, out, ConvertOptions(calib_count=5), calib)
        a = Attempt((), 0.9, 0.1, outcome.report.size_bytes, 1.0)
        return RepairResult(out, True, 0.9, 1.0, a, a, (a,), report_path=outcome.report_path)

    monkeypatch.setattr(repair_mod, "repair", full_int8_within_limit)
    monkeypatch.setenv("FAKE_EDGETPU_MODE", "partial")
    out = tmp_path / "m_int8.tflite"
    model = str(workdir / "run" / "model.keras")
    calib = str(workdir / "calib_gray")
    args = ["convert", model, "--calib", calib, "--out", str(out), "--max-drop", "1"]
    result = runner.invoke(app, [*args, "--data", calib, "--edgetpu-strict"])
    assert result.exit_code == 1, result.output
    assert _errors(result) == ["error: 2 op kind(s) fall back to the CPU (--edgetpu-strict)"]
    report = json.loads((tmp_path / "m_int8.report.json").read_text())
    assert report["edgetpu"]["ops_on_cpu"] == 4
    assert (tmp_path / "m_int8_edgetpu.tflite").is_file()

    # a model that kept float layers is not compiled; strict says so with exit 1
    from edgeseg.convert.diagnose import LayerError

    head = LayerError(0, "CONV_2D", "head", "head", 50.0, 1.0, 1.0, 1.0, 0.1, 0)

    def mixed(model: Path, calib: Path, data: Path, out: Path, **kw: object):  # type: ignore[no-untyped-def]
        res = full_int8_within_limit(model, calib, data, out, **kw)
        return replace(res, chosen=replace(res.chosen, float_layers=(head,)))

    monkeypatch.setattr(repair_mod, "repair", mixed)
    out2 = tmp_path / "mixed.tflite"
    args[args.index(str(out))] = str(out2)
    result = runner.invoke(app, [*args, "--data", calib, "--edgetpu-strict"])
    assert result.exit_code == 1, result.output
    assert "not the Edge TPU (--edgetpu-strict)" in _errors(result)[0]
    assert not (tmp_path / "mixed_edgetpu.tflite").exists()

    # without --edgetpu a model within the limit ends as every conversion does: next: lines
    monkeypatch.setattr(repair_mod, "repair", full_int8_within_limit)
    args[args.index(str(out2))] = str(tmp_path / "kept.tflite")
    result = runner.invoke(app, [*args, "--data", calib], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert f"next: edgeseg check {model} {tmp_path / 'kept.tflite'} --data" in result.output


def test_convert_suggests_the_gate_then_the_camera(workdir: Path, tmp_path: Path) -> None:
    """After an int8 conversion: `check` against the .keras (DATA where config.json names no
    training data folder), then `run`, paths quoted for the shell; after float32 only `run`."""
    model = _save_unet(tmp_path / "my run")  # a space: the commands must still paste
    calib = ["--calib", str(workdir / "calib_gray")]
    for quant, out in (("int8", "m int8.tflite"), ("float32", "m.tflite")):
        tflite = str(model.with_name(out))
        result = runner.invoke(
            app, ["convert", str(model), *calib, "--quant", quant, "--out", tflite]
        )
        assert result.exit_code == 0, result.output
        hints = [line for line in result.output.splitlines() if line.startswith("next:")]
        run = f"next: edgeseg run {shlex.quote(tflite)} --camera 0"
        if quant == "int8":
            q_model = shlex.quote(str(model))
            check = f"next: edgeseg check {q_model} {shlex.quote(tflite)} --data DATA"
            assert hints == [check, run]
            assert "'" in check  # quoted
        else:
            assert hints == [run]


def test_float_miou_comes_from_the_spec_not_a_second_reading_of_config(tmp_path: Path) -> None:
    """config.json's spec is the one source of the float mIoU the converter embeds."""
    import json

    from edgeseg.convert.options import ConvertOptions, Quant
    from edgeseg.convert.pipeline import convert_model

    model = _save_unet(tmp_path / "run")
    config = tmp_path / "run" / "config.json"
    spec = ModelSpec.load(config).with_updates(float_miou=0.8)
    config.write_text(json.dumps({"spec": spec.to_dict(), "val": {"mean_iou": 0.5}}))
    out = tmp_path / "m.tflite"
    convert_model(model, out, ConvertOptions(quant=Quant.FLOAT32), measure_float32=False)
    assert read_spec(out).float_miou == 0.8


def test_missing_compiler_is_a_clear_error_but_the_int8_model_is_written(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no edgetpu_compiler anywhere
    out = tmp_path / "m.tflite"
    args = [
        "convert",
        str(workdir / "run" / "model.keras"),
        "--calib",
        str(workdir / "calib_gray"),
        "--out",
        str(out),
        "--calib-count",
        "5",
        "--edgetpu",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    (err,) = _errors(result)
    assert "edgetpu_compiler not found on PATH" in err and "apt-get install edgetpu-compiler" in err
    assert "Docker" in err
    assert out.is_file() and not (tmp_path / "m_edgetpu.tflite").exists()


def _bad_keras_files(root: Path) -> dict[str, Path]:
    import keras

    files = {"text": root / "notes.keras", "corrupt": root / "corrupt.keras", "h5": root / "m.h5"}
    files["text"].write_text("this is not a model")
    with zipfile.ZipFile(files["corrupt"], "w") as zf:
        zf.writestr("config.json", "{broken")
    files["h5"].write_bytes(b"\x89HDF\r\n")
    classifier = keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)]
    )
    files["classifier"] = root / "classifier.keras"
    classifier.save(files["classifier"])
    files["truncated"] = root / "truncated.keras"  # an interrupted copy
    files["truncated"].write_bytes(files["classifier"].read_bytes()[:2000])
    return files


def test_bad_models_fail_with_one_line_and_write_nothing(workdir: Path, tmp_path: Path) -> None:
    expected = {
        "text": "not a Keras model file",
        "corrupt": "cannot load Keras model",
        "h5": "not a Keras model file",
        "classifier": "not a per-pixel class map",
        "truncated": "a .keras archive cut short or corrupt",  # was "not a Keras model file"
    }
    for kind, path in _bad_keras_files(tmp_path).items():
        out = tmp_path / f"{kind}.tflite"
        result = runner.invoke(
            app, ["convert", str(path), "--calib", str(workdir / "calib_gray"), "--out", str(out)]
        )
        assert result.exit_code == 2, (kind, result.output)
        (err,) = _errors(result)
        assert str(path) in err and expected[kind] in err, err
        assert not out.exists()
    result = runner.invoke(
        app, ["convert", str(tmp_path / "missing.keras"), "--calib", str(tmp_path)]
    )
    assert result.exit_code == 2 and "model file not found" in result.stderr


def test_a_run_folders_config_passed_as_the_model_fails_before_anything_else(
    tmp_path: Path,
) -> None:
    """`edgeseg convert runs/x/config.json` (a slip of the tab key) in a quantisation-aware run's
    folder: the wrong path is the one and only message, not the QAT note read off that file."""
    run = tmp_path / "run"
    _save_unet(run)
    spec = ModelSpec.load(run / "config.json")
    spec.with_updates(extra={"qat": {"steps": 10}}).save(run / "config.json")
    # the model's own layers decide, not config.json's claim (model_float.keras shares it)
    assert not model_is_qat(run / "model.keras") and not model_is_qat(run / "config.json")
    result = runner.invoke(app, ["convert", str(run / "config.json"), "--calib", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "quantisation-aware" not in result.output
    (err,) = _errors(result)
    assert "not a Keras model file" in err and str(run / "config.json") in err


def test_bad_calibration_and_output_paths(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = str(workdir / "run" / "model.keras")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {
        f"--calib {tmp_path / 'nope'}: folder not found": ["--calib", str(tmp_path / "nope")],
        "--max-float-layers is only used with --max-drop": ["--max-float-layers", "3"],
        "no calibration images found": ["--calib", str(empty)],
        "--edgetpu needs --quant int8": ["--quant", "float16", "--edgetpu"],
        "--edgetpu-strict needs --quant int8": ["--quant", "float16", "--edgetpu-strict"],
        # an integer input a float or 16-bit mode would silently not have
        "--io uint8 (io= in Python) applies to --quant int8 only": [
            "--quant",
            "float32",
            "--io",
            "uint8",
        ],
        "models take int16 (or float32) input": ["--quant", "int16x8", "--io", "int8"],
    }
    for message, extra in cases.items():
        result = runner.invoke(app, ["convert", model, *extra])
        assert result.exit_code == 2, (message, result.output)
        (err,) = _errors(result)
        assert message in err, err
    # an option error comes before the calibration frames are chosen and announced
    result = runner.invoke(app, ["convert", model, "--quant", "int16x8", "--edgetpu"])
    assert result.exit_code == 2 and "needs --quant int8" in result.stderr, result.output
    assert "calibration" not in result.output, result.output
    # an output under a file cannot be written (exit 4, as every output); a missing folder is
    # no error: it is created with the file
    (tmp_path / "notes.txt").write_text("")
    result = runner.invoke(
        app,
        ["convert", model, "--calib", str(empty), "--out", str(tmp_path / "notes.txt/m.tflite")],
    )
    assert result.exit_code == 4, result.output
    assert f"--out {tmp_path / 'notes.txt/m.tflite'}" in result.stderr
    assert "notes.txt is not a folder" in result.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"nope")
    result = runner.invoke(
        app, ["convert", model, "--calib", str(broken), "--out", str(tmp_path / "b.tflite")]
    )
    assert result.exit_code == 2 and "no usable calibration images" in result.stderr
    import edgeseg.convert.source as source

    monkeypatch.setattr(source, "default_calib", lambda model, checkout=None: None)
    result = runner.invoke(app, ["convert", model, "--out", str(tmp_path / "c.tflite")])
    assert result.exit_code == 2 and "no calibration images: pass --calib DIR" in result.stderr
    result = runner.invoke(app, ["convert", model, "--quant", "int4"])
    assert result.exit_code == 2 and "int4" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "empty", "notes.txt"]


def test_info_on_models_without_metadata_and_non_tflite_files(tmp_path: Path) -> None:
    from edgeseg.convert.converter import export
    from edgeseg.convert.options import ConvertOptions, Quant
    from edgeseg.train.model import build_unet

    spec = ModelSpec(input_height=32, input_width=32, class_names=("a", "b"))
    model = build_unet((32, 32, 3), 2, depth=1, base_filters=4)
    path = export(model, spec, ConvertOptions(quant=Quant.FLOAT32), tmp_path / "f.tflite").path
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(strip_metadata(path.read_bytes()))
    result = runner.invoke(app, ["info", str(bare)], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "no edgeseg metadata" in result.stderr and "float32 [1, 32, 32, 3]" in result.stdout
    result = runner.invoke(app, ["info", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "a, b" in result.stdout
    assert re.search(r"conversion\s+│ float32 ", result.stdout), result.stdout
    for name, data in {
        "junk.tflite": b"\x00" * 64,
        "photo.tflite": b"\xff\xd8\xff\xe0JFIF",
    }.items():
        (tmp_path / name).write_bytes(data)
        result = runner.invoke(app, ["info", str(tmp_path / name)])
        assert result.exit_code == 2
        (err,) = _errors(result)
        assert name in err and "not a TFLite model" in err
    result = runner.invoke(app, ["info", str(tmp_path / "missing.tflite")])
    assert result.exit_code == 2 and "model file not found" in result.stderr


def test_help_texts() -> None:
    result = runner.invoke(app, ["convert", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--calib", "--quant", "--io", "--calib-count", "--edgetpu", "--edgetpu-strict"):
        assert option in result.stdout
    assert "int8" in result.stdout and "float16" in result.stdout
    result = runner.invoke(app, ["info", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "without TensorFlow" in result.stdout


def test_out_must_be_a_tflite_file_so_the_model_is_never_overwritten(
    workdir: Path, tmp_path: Path
) -> None:
    """`convert run/model.keras --out run/model.keras` replaced the trained model with the
    converted bytes and exited 0; `--out noext` wrote a model that eval then refused."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(workdir / "run", run)
    model = run / "model.keras"
    before = model.read_bytes()
    calib = ["--calib", str(workdir / "calib_gray")]
    for out in (model, tmp_path / "noext"):
        result = runner.invoke(app, ["convert", str(model), *calib, "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert _errors(result) == [
            f"error: --out {out}: give a .tflite file name, such as {out.with_suffix('.tflite')} "
            "(eval, run and info tell a model by its suffix)"
        ]
    assert model.read_bytes() == before and not (tmp_path / "noext").exists()
