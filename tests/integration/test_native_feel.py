"""Feels native, end to end on a tiny real model (built and converted here in seconds): quiet
native logs unless --verbose, one image in / one image out, masks named after their images, eval
overlays, the Python API, and the Edge TPU target carried from training into `convert`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from tiny_models import tiny_int8_model, tiny_run

import edgeseg
from edgeseg.core.processing import read_image

pytestmark = pytest.mark.slow
EDGESEG = str(Path(sys.executable).with_name("edgeseg"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # named like the membrane set: eval refuses data whose class names differ from the model's
    path = tmp_path_factory.mktemp("tiny") / "tiny_int8.tflite"
    return tiny_int8_model(path, names=("membrane", "cell_interior"))


@pytest.fixture(scope="module")
def images(aerial_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real aerial JPEGs of different sizes, with their original names."""
    folder = tmp_path_factory.mktemp("frames")
    for path in sorted((aerial_data / "val" / "images").iterdir())[:3]:
        shutil.copy(path, folder / path.name)
    return folder


def edgeseg_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EDGESEG, *map(str, args)], capture_output=True, text=True, timeout=300, check=False
    )


def test_native_logs_only_with_verbose(tiny: Path, images: Path, tmp_path: Path) -> None:
    image = sorted(images.iterdir())[0]
    args = ("run", tiny, "--source", image, "--save", tmp_path / "out.png")
    quiet = edgeseg_cli(*args)
    assert quiet.returncode == 0, quiet.stderr
    assert "XNNPACK" not in quiet.stderr and "INFO:" not in quiet.stderr
    loud = edgeseg_cli(*args, "--verbose")
    assert loud.returncode == 0, loud.stderr
    assert "Created TensorFlow Lite XNNPACK delegate" in loud.stderr
    # piped output is not wrapped mid-sentence at 80 columns
    assert any(len(line) > 80 for line in quiet.stdout.splitlines()), quiet.stdout


def test_one_image_in_one_image_out(tiny: Path, images: Path, tmp_path: Path) -> None:
    image = sorted(images.iterdir())[0]
    out = tmp_path / "seg.jpg"
    proc = edgeseg_cli("run", tiny, "--source", image, "--save", out)
    assert proc.returncode == 0, proc.stderr
    assert f"image: {out}" in proc.stdout
    saved = read_image(out)
    assert saved.shape == read_image(image).shape  # the overlay at the image's own size


def test_folder_masks_keep_their_source_names(tiny: Path, images: Path, tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    proc = edgeseg_cli("run", tiny, "--source", images, "--headless", "--save-masks", masks)
    assert proc.returncode == 0, proc.stderr
    sources = sorted(images.iterdir())
    assert sorted(p.name for p in masks.iterdir()) == sorted(f"{p.stem}.png" for p in sources)
    seg = edgeseg.Segmenter(tiny)
    for src in sources:
        expected = seg.predict_file(src)
        assert np.array_equal(cv2.imread(str(masks / f"{src.stem}.png"), 0), expected)


def test_segmenter_api_on_a_real_image(tiny: Path, images: Path) -> None:
    seg = edgeseg.Segmenter(tiny)
    frame = cv2.imread(str(sorted(images.iterdir())[0]))
    classes = seg.predict(frame)
    assert classes.shape == frame.shape[:2] and classes.dtype == np.uint8
    assert classes.max() < seg.spec.num_classes
    with pytest.raises(edgeseg.EdgesegError, match="got None"):
        seg.predict(cv2.imread("no-such-file.jpg"))
    drawn = edgeseg.overlay(frame, classes, seg)
    assert drawn.shape == frame.shape


def test_eval_overlays_show_input_truth_prediction(tiny: Path, membrane_data: Path) -> None:
    out = Path(str(tiny.parent)) / "overlays"
    result = edgeseg.evaluate(tiny, membrane_data, limit=2, save_overlays=out)
    pictures = sorted(out.iterdir())
    assert len(pictures) == result.images == 2
    stem = pictures[0].stem
    image = read_image(membrane_data / "val" / "images" / f"{stem}.png")
    picture = read_image(pictures[0])
    # three panels side by side plus the legend column, each at least the image's width
    assert picture.shape[1] > 3 * image.shape[1]
    assert picture.shape[0] > image.shape[0]  # the caption band above


def test_edgetpu_target_converts_with_uint8_input(tmp_path: Path, aerial_data: Path) -> None:
    model = tiny_run(tmp_path / "run", target="edgetpu")
    proc = edgeseg_cli("convert", model, "--calib", aerial_data, "--calib-count", "8")
    assert proc.returncode == 0, proc.stderr
    assert "--io uint8" in proc.stdout
    for step in ("export", "calibrate 8/8", "convert", "validate"):
        assert step in proc.stderr, proc.stderr
    assert "fully_quantize" not in proc.stderr + proc.stdout
    assert "calibrating 0/?" not in proc.stderr
    seg = edgeseg.Segmenter(model.with_name("model_int8.tflite"))
    assert seg.input["dtype"] == np.uint8 and seg.spec.target == "edgetpu"
    if shutil.which("edgetpu_compiler") is None:  # asked for: no "compile it with --edgetpu"
        strict = edgeseg_cli(
            "convert", model, "--calib", aerial_data, "--calib-count", "8", "--edgetpu-strict"
        )
        assert strict.returncode == 2 and "edgetpu_compiler" in strict.stderr, strict.stderr
        assert "compile it on x86-64 Linux with --edgetpu" not in strict.stdout


def test_convert_and_check_from_python(
    tmp_path: Path,
    aerial_data: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # no calib_data/ in the working folder
    model = tiny_run(tmp_path / "run")
    tflite = edgeseg.convert(model, calib=aerial_data, calib_count=8)
    assert tflite == model.with_name("model_int8.tflite") and tflite.is_file()
    with pytest.raises(edgeseg.EdgesegError, match=r"no calibration images: pass calib=DIR"):
        edgeseg.convert(model, tmp_path / "y.tflite")  # its config.json records no data
    # without calib= it calibrates where `edgeseg convert` does: on the data the run recorded
    # (it raised "needs calibration images" though the CLI found them)
    from edgeseg.train.config import TrainConfig

    config = json.loads(model.with_name("config.json").read_text())
    trained = {**config, "train": TrainConfig(data=aerial_data, out=model.parent).to_dict()}
    model.with_name("config.json").write_text(json.dumps(trained))
    with caplog.at_level("INFO", logger="edgeseg"):
        assert edgeseg.convert(model, tmp_path / "x.tflite").is_file()
    assert f"calibration frames: {aerial_data}" in caplog.text


def test_sigterm_stops_a_command_as_ctrl_c_does_and_says_so(
    tmp_path: Path, aerial_data: Path
) -> None:
    """SIGTERM (systemd, docker stop, kill) killed train, convert, eval ... at once: exit 143
    with nothing said and staged files (.model.x.tmp.keras) left behind. It now stops them as
    Ctrl-C does: one 'terminated' line, exit 143, nothing half-written."""
    import signal
    import time

    out = tmp_path / "run"
    proc = subprocess.Popen(
        [EDGESEG, "train", str(aerial_data), "--out", str(out), "--steps", "400", "--size", "64"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    for line in proc.stderr:  # once training runs: its files are being written
        if line.startswith("recipe:") or time.monotonic() > deadline:
            break
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 143, rest
    assert rest.strip().splitlines()[-1].startswith("terminated"), rest
    assert "Traceback" not in rest
    leftovers = [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
    assert leftovers == []
