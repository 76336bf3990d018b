"""Calibration sampling and conversion options: deterministic, honest about what was skipped."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeseg.convert.calibration import find_calibration_images, representative_dataset
from edgeseg.convert.options import ConvertOptions, IOType, Quant
from edgeseg.core.errors import ConversionError
from edgeseg.core.spec import ModelSpec

RGB = ModelSpec(input_height=32, input_width=32, class_names=("a", "b"), channels=3)
GRAY = RGB.with_updates(channels=1)


def _write_images(folder: Path, n: int, gray: bool = False, size: int = 40) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    paths = []
    for i in range(n):
        shape = (size, size) if gray else (size, size, 3)
        p = folder / f"img_{i:03d}.png"
        cv2.imwrite(str(p), rng.integers(10, 240, shape, dtype=np.uint8))
        paths.append(p)
    return paths


def test_sampling_is_deterministic_and_prepared_to_model_size(tmp_path: Path) -> None:
    _write_images(tmp_path / "calib", 30)
    a = representative_dataset(tmp_path / "calib", RGB, count=10, seed=3)
    b = representative_dataset(tmp_path / "calib", RGB, count=10, seed=3)
    c = representative_dataset(tmp_path / "calib", RGB, count=10, seed=4)
    assert len(a) == 10 and a.stats.candidates == 30
    assert all(np.array_equal(x, y) for x, y in zip(a.pixels, b.pixels, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a.pixels, c.pixels, strict=True))
    batches = list(a())
    assert len(batches) == 10
    assert batches[0][0].shape == (1, 32, 32, 3) and batches[0][0].dtype == np.float32
    # range pinned to 0..255 so a uint8 input gets scale 1 / zero point 0; real range recorded
    assert batches[0][0].min() == 0 and batches[0][0].max() == 255
    assert a.stats.input_range_pinned and 10 <= a.stats.value_min and a.stats.value_max < 240


def test_progress_is_reported_as_frames_are_consumed(tmp_path: Path) -> None:
    _write_images(tmp_path, 5)
    calls: list[tuple[int, int]] = []
    rep = representative_dataset(tmp_path, RGB, count=5, progress=lambda d, t: calls.append((d, t)))
    list(rep())
    assert calls[-1] == (5, 5) and len(calls) == 5


def test_unreadable_images_are_skipped_counted_and_replaced(tmp_path: Path) -> None:
    _write_images(tmp_path, 25)
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    rep = representative_dataset(tmp_path, RGB, count=200)
    assert rep.stats.used == 25 and len(rep.stats.skipped) == 1
    assert "broken.png" in rep.stats.skipped[0]
    assert any("skipped 1 unreadable" in w for w in rep.stats.warnings)


def test_gray_images_for_rgb_model_are_converted_with_a_warning(tmp_path: Path) -> None:
    _write_images(tmp_path, 21, gray=True)
    rep = representative_dataset(tmp_path, RGB)
    assert rep.stats.channel_mismatch == 21 and rep.pixels[0].shape == (32, 32, 3)
    said = "are grayscale and were repeated to the model's RGB input"
    assert any(said in w for w in rep.stats.warnings)
    rep = representative_dataset(tmp_path, GRAY)
    assert rep.stats.channel_mismatch == 0 and rep.pixels[0].shape == (32, 32, 1)
    # the very folder the model was trained on (membrane data, RGB model: gray is what it saw)
    trained_here = RGB.with_updates(extra={"split": {"data": str(tmp_path.resolve())}})
    rep = representative_dataset(tmp_path, trained_here)
    assert rep.stats.channel_mismatch == 21 and not any(said in w for w in rep.stats.warnings)


def test_too_few_images_warn_and_none_usable_fails(tmp_path: Path) -> None:
    _write_images(tmp_path / "few", 3)
    rep = representative_dataset(tmp_path / "few", RGB)
    assert any("only 3 calibration image(s)" in w and "clip" in w for w in rep.stats.warnings)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_bytes(b"garbage")
    with pytest.raises(ConversionError, match="no usable calibration images"):
        representative_dataset(bad, RGB)


def test_in_memory_frames_are_accepted() -> None:
    frames = [np.full((50, 60, 3), v, np.uint8) for v in range(0, 250, 10)]
    rep = representative_dataset(frames, RGB, count=8, seed=0)
    assert len(rep) == 8 and rep.stats.warnings and "only 8" in rep.stats.warnings[-1]


def test_calibration_folder_layouts(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="folder not found"):
        find_calibration_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match="no calibration images"):
        find_calibration_images(tmp_path / "empty")
    _write_images(tmp_path / "ds" / "train" / "images", 3)
    _write_images(tmp_path / "ds" / "val" / "images", 2)
    (tmp_path / "ds" / "labels.txt").write_text("a\nb\n")
    assert len(find_calibration_images(tmp_path / "ds")) == 5
    _write_images(tmp_path / "flat" / "images", 4)
    assert len(find_calibration_images(tmp_path / "flat")) == 4
    _write_images(tmp_path / "published" / "train" / "images", 3)
    _write_images(tmp_path / "published" / "validation" / "images", 2)
    assert len(find_calibration_images(tmp_path / "published")) == 5
    for sample in ("train/iid0", "train/iid1", "valid/iid9"):  # one folder per sample (YCOR)
        folder = tmp_path / "samples" / sample
        folder.mkdir(parents=True)
        assert cv2.imwrite(str(folder / "rgb.png"), np.zeros((8, 8, 3), np.uint8))
        assert cv2.imwrite(str(folder / "labels.png"), np.zeros((8, 8), np.uint8))
    for split in ("train", "val"):  # masks beside the images (SegNet's CamVid)
        for folder, array in ((split, np.zeros((8, 8, 3))), (f"{split}annot", np.zeros((8, 8)))):
            (tmp_path / "segnet" / folder).mkdir(parents=True)
            assert cv2.imwrite(str(tmp_path / "segnet" / folder / "a.png"), array)
    beside = find_calibration_images(tmp_path / "segnet")
    assert [p.relative_to(tmp_path / "segnet").as_posix() for p in beside] == [
        "train/a.png",
        "val/a.png",
    ]
    _write_images(tmp_path / "vistas" / "training" / "images", 2)  # Mapillary's names
    _write_images(tmp_path / "vistas" / "validation" / "images", 1)
    assert len(find_calibration_images(tmp_path / "vistas")) == 3
    found = find_calibration_images(tmp_path / "samples")
    assert [p.relative_to(tmp_path / "samples").as_posix() for p in found] == [
        "train/iid0/rgb.png",
        "train/iid1/rgb.png",
        "valid/iid9/rgb.png",
    ]
    _write_images(tmp_path / "published" / "val" / "images", 1)
    with pytest.raises(ConversionError, match="both val/ and validation/ found"):
        find_calibration_images(tmp_path / "published")


def test_options_validate_and_describe_io() -> None:
    assert ConvertOptions().input_type == "int8" and ConvertOptions().output_type == "int8"
    assert ConvertOptions(io=IOType.UINT8).input_type == "uint8"
    assert ConvertOptions(io=IOType.FLOAT32).output_type == "float32"
    f16 = ConvertOptions(quant=Quant.FLOAT16)
    assert f16.input_type == "float32" and not f16.needs_calibration
    assert ConvertOptions(quant="dynamic").quant is Quant.DYNAMIC  # type: ignore[arg-type]
    with pytest.raises(ConversionError, match="--quant 'int4'"):
        ConvertOptions(quant="int4")  # type: ignore[arg-type]
    with pytest.raises(ConversionError, match="--calib-count"):
        ConvertOptions(calib_count=0)
    with pytest.raises(ConversionError, match="float_layers only applies"):
        ConvertOptions(quant=Quant.FLOAT32, float_layers=("head",))


def test_convert_calibrates_without_calib_on_the_working_folders_frames_then_the_training_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --calib: ./calib_data/ first (the user's camera frames), then the folder
    config.json says the model was trained on, and the checkout's synthetic frames only last (a
    real model calibrated on them gets the wrong int8 ranges)."""
    import json

    from edgeseg.cli import convert_cmd
    from edgeseg.train.config import TrainConfig

    data = tmp_path / "street"
    _write_images(data / "images", 3)
    run = tmp_path / "runs" / "street"
    run.mkdir(parents=True)
    config = {"train": TrainConfig(data=data, out=run).to_dict()}
    (run / "config.json").write_text(json.dumps(config))
    model = run / "model.keras"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(convert_cmd, "CHECKOUT", tmp_path / "no checkout")

    assert convert_cmd.default_calib(model) == (
        data,
        "the data the model was trained on, as config.json records",
        False,
    )
    assert convert_cmd.default_calib(tmp_path / "elsewhere" / "model.keras") is None
    (tmp_path / "calib_data").mkdir()
    assert convert_cmd.default_calib(model) == (
        tmp_path / "calib_data",
        "calib_data/ in the working folder",
        False,
    )
    (tmp_path / "calib_data").rmdir()
    checkout = tmp_path / "checkout"
    (checkout / "calib_data").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("")
    monkeypatch.setattr(convert_cmd, "CHECKOUT", checkout)
    found = convert_cmd.default_calib(tmp_path / "elsewhere" / "model.keras")
    assert found is not None and found.path == checkout / "calib_data" and found.synthetic
    trained_on = convert_cmd.default_calib(model)
    assert trained_on is not None and trained_on.path == data and not trained_on.synthetic
    # the recorded data gone: the synthetic frames, and the warning says why they were taken
    from edgeseg.convert.source import choose_source

    shutil.rmtree(data)
    import zipfile

    with zipfile.ZipFile(model, "w") as archive:  # a .keras archive (what convert checks first)
        archive.writestr("config.json", "{}")
    chosen = choose_source(model, ConvertOptions(), None, None, checkout=checkout)
    assert chosen.calib == checkout / "calib_data"
    (said,) = chosen.warnings
    assert f"(the data {run / 'config.json'} records, {data}, is gone)" in said
    # a mode that does not calibrate says it did not use the frames given (it said nothing)
    half = choose_source(model, ConvertOptions(quant=Quant.FLOAT16), tmp_path, None)
    assert half.calib is None and half.notes == (
        "--quant float16 does not calibrate: --calib not used",
    )


def test_a_file_that_is_no_keras_model_is_refused_before_calibration_is_chosen(
    tmp_path: Path,
) -> None:
    """`edgeseg convert notes.txt` (or a .keras cut short) first warned about the synthetic
    calibration frames it would use, then said the file was no model."""
    from edgeseg.convert.source import choose_source
    from edgeseg.core.errors import ModelError

    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    cut = tmp_path / "model.keras"
    cut.write_bytes(b"PK\x03\x04 and then nothing")
    for path, said in ((notes, "not a Keras model file"), (cut, "cut short or corrupt")):
        with pytest.raises(ModelError, match=said):
            choose_source(path, ConvertOptions(), None, None, checkout=tmp_path)


def test_out_is_checked_before_calibration_is_announced_and_a_folder_offered_the_right_name(
    tmp_path: Path,
) -> None:
    """`convert model.keras --out notes.txt` (or --out DIR) printed 'calibration frames: ...'
    before its error; --out DIR offered model_int8.tflite whatever was converted (a
    quantisation-aware model's --quant float32 writes model_float32.tflite, its --max-drop
    model_float_int8.tflite)."""
    import zipfile

    from edgeseg.convert.source import choose_source
    from edgeseg.core.errors import ConversionError, WriteError
    from edgeseg.train import QAT_PACKAGE

    def archive(path: Path, config: str) -> Path:
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("config.json", config)
        return path

    run = tmp_path / "run"
    run.mkdir()
    qat = archive(run / "model.keras", f'{{"layers": ["{QAT_PACKAGE}>FakeQuant"]}}')
    archive(run / "model_float.keras", "{}")
    folder = tmp_path / "outdir"
    folder.mkdir()
    with pytest.raises(ConversionError, match=r"give a \.tflite file name"):
        choose_source(qat, ConvertOptions(), tmp_path, tmp_path / "notes.txt")
    for options, post, name in (
        (ConvertOptions(), False, "model_int8.tflite"),
        (ConvertOptions(quant=Quant.FLOAT32), False, "model_float32.tflite"),
        (ConvertOptions(), True, "model_float_int8.tflite"),
    ):
        with pytest.raises(WriteError, match=re.escape(f"such as {folder / name}")):
            choose_source(qat, options, tmp_path, folder, post_training=post)


def test_out_is_checked_before_a_missing_calibration_set_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no calibration frames anywhere, `--out DIR` was reported only after --calib was
    fixed: the first error named the frames, the second the output."""
    import zipfile

    monkeypatch.chdir(tmp_path)  # no calib_data/ in the working folder either

    from edgeseg.convert.source import choose_source
    from edgeseg.core.errors import WriteError

    model = tmp_path / "model.keras"
    with zipfile.ZipFile(model, "w") as archive:  # a float model: it needs frames
        archive.writestr("config.json", "{}")
    (tmp_path / "outdir").mkdir()
    with pytest.raises(WriteError, match="is a folder"):
        choose_source(model, ConvertOptions(), None, tmp_path / "outdir", checkout=tmp_path)
