"""Datasets as labelling tools export them, through train, convert and eval with no manual step:
CVAT's 'Segmentation mask' (Pascal VOC layout: JPEGImages/, SegmentationClass/ in labelmap.txt's
colours, ImageSets/Segmentation/ lists) and Roboflow's 'Semantic Segmentation Masks' (X.jpg +
X_mask.png per split, _classes.csv). These are what people who label their own field data get.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from edgeseg.cli.main import app
from edgeseg.core.model_metadata import read_spec
from edgeseg.data.synthetic import generate_synthetic_dataset

pytestmark = pytest.mark.slow
runner = CliRunner()
TINY = ["--size", "64", "--depth", "2", "--filters", "8", "--batch", "8", "--epochs", "1"]
COLOURS = [(0, 0, 0), (128, 64, 128), (70, 70, 70), (107, 142, 35), (0, 0, 142)]  # RGB
NAMES = ["background", "road", "building", "vegetation", "vehicle"]  # the synthetic scenes'


def cvat_export(tmp_path: Path) -> Path:
    """Synthetic scenes rewritten as CVAT writes a VOC export: colour masks, labelmap.txt, lists
    for the train and val subsets, and one image with no class mask (detection only)."""
    src = generate_synthetic_dataset(tmp_path / "synthetic", count_train=12, count_val=4)
    names = (src / "labels.txt").read_text().split()
    root = tmp_path / "cvat_export"
    for d in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / d).mkdir(parents=True)
    palette = np.array(COLOURS, np.uint8)[:, ::-1]  # BGR for OpenCV
    for split in ("train", "val"):
        stems = []
        for image in sorted((src / split / "images").iterdir()):
            shutil.copy(image, root / "JPEGImages" / image.name)
            index = cv2.imread(str(src / split / "masks" / f"{image.stem}.png"), 0)
            assert cv2.imwrite(
                str(root / "SegmentationClass" / f"{image.stem}.png"), palette[index]
            )
            stems.append(image.stem)
        (root / "ImageSets/Segmentation" / f"{split}.txt").write_text("\n".join(stems) + "\n")
    shutil.copy(image, root / "JPEGImages" / "detection_only.jpg")
    lines = [f"{n}:{r},{g},{b}::" for n, (r, g, b) in zip(names, COLOURS, strict=True)]
    (root / "labelmap.txt").write_text("# label:color_rgb:parts:actions\n" + "\n".join(lines))
    return root


def train_convert_eval(data: Path, tmp_path: Path, found: str) -> dict[str, object]:
    """`edgeseg train` (which must say `found` about the data), `convert --calib DATA`,
    `eval --data DATA`; returns the scores eval wrote."""
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(data), "--out", str(run), *TINY])
    assert result.exit_code == 0, result.output
    assert f"data: {found}" in result.output
    saved = json.loads((run / "config.json").read_text())
    assert saved["spec"]["class_names"] == NAMES
    tflite = tmp_path / "model_int8.tflite"
    convert = ["convert", str(run / "model.keras"), "--calib", str(data), "--out", str(tflite)]
    result = runner.invoke(app, [*convert, "--calib-count", "8"])
    assert result.exit_code == 0, result.output
    assert read_spec(tflite) is not None
    scores = tmp_path / "scores.json"
    result = runner.invoke(app, ["eval", str(tflite), "--data", str(data), "--out", str(scores)])
    assert result.exit_code == 0, result.output
    out: dict[str, object] = json.loads(scores.read_text())
    return out


def test_a_cvat_voc_export_trains_converts_and_evaluates(tmp_path: Path) -> None:
    found = "12 train / 4 val pairs, 5 classes from labelmap.txt, colour-coded masks"
    scores = train_convert_eval(cvat_export(tmp_path), tmp_path, found)
    assert scores["images"] == 4  # the val list, nothing else
    spec = read_spec(tmp_path / "model_int8.tflite")
    assert spec is not None and spec.palette == tuple(COLOURS)  # the labels' own colours


def roboflow_export(tmp_path: Path) -> Path:
    """Synthetic scenes rewritten as Roboflow exports masks: train/ and valid/ each holding
    X.jpg + X_mask.png (class ids) and _classes.csv, and a test/ split that is not used."""
    src = generate_synthetic_dataset(tmp_path / "synthetic", count_train=12, count_val=4)
    names = (src / "labels.txt").read_text().split()
    root = tmp_path / "roboflow_export"
    for split, folder in (("train", "train"), ("val", "valid"), ("val", "test")):
        (root / folder).mkdir(parents=True)
        for image in sorted((src / split / "images").iterdir()):
            stem = f"{image.stem}_jpg.rf.0a1b2c"
            shutil.copy(image, root / folder / f"{stem}{image.suffix}")
            shutil.copy(
                src / split / "masks" / f"{image.stem}.png", root / folder / f"{stem}_mask.png"
            )
        rows = "".join(f"{i}, {n}\n" for i, n in enumerate(names))
        (root / folder / "_classes.csv").write_text("Pixel Value, Class\n" + rows)
    return root


def test_a_roboflow_mask_export_trains_converts_and_evaluates(tmp_path: Path) -> None:
    found = "12 train / 4 val pairs, 5 classes from train/_classes.csv, class-index masks"
    scores = train_convert_eval(roboflow_export(tmp_path), tmp_path, found)
    assert scores["images"] == 4  # valid/, not test/
