"""The training stage end to end: real data, run-folder contents, Ctrl-C, --resume, the CLI's exit
codes and bad-input messages, and mirrored training on two logical CPU devices."""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
from typer.testing import CliRunner

from edgeseg.cli.main import app
from edgeseg.core.errors import DatasetError
from edgeseg.core.model_metadata import read_spec
from edgeseg.core.spec import ModelSpec
from edgeseg.train.fit import TrainConfig, train
from edgeseg.train.model_io import load_keras_model

runner = CliRunner()
TINY = ["--size", "32", "--depth", "2", "--filters", "4", "--batch", "4"]


def _history(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "history.csv").open() as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few generated scenes (5 classes, index masks): the built-in synthetic data, small."""
    from edgeseg.data.synthetic import generate_synthetic_dataset

    out = tmp_path_factory.mktemp("tiny") / "scenes"
    return generate_synthetic_dataset(out, count_train=8, count_val=3, size=(64, 64), seed=1)


@pytest.mark.slow
def test_membrane_run_beats_the_majority_class_baseline(membrane_run) -> None:
    # predicting cell_interior everywhere scores about 0.40 mIoU on this val split
    config = json.loads((membrane_run.run_dir / "config.json").read_text())
    assert config["val"]["miou"] > 0.6
    assert min(config["val"]["per_class_iou"].values()) > 0.35  # membrane is found, not just cells
    assert membrane_run.spec.float_miou == pytest.approx(config["val"]["miou"])
    assert membrane_run.spec.class_names == ("membrane", "cell_interior")
    assert config["train"]["size"] == [128, 128]
    rows = _history(membrane_run.run_dir)
    assert [int(r["epoch"]) for r in rows] == list(range(1, len(rows) + 1))
    assert max(float(r["val_miou"]) for r in rows) == pytest.approx(config["val"]["miou"])
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert (membrane_run.run_dir / "curves.png").stat().st_size > 1000
    model, spec = load_keras_model(membrane_run.model_path)
    assert model.input_shape == (None, 128, 128, 3) and spec == membrane_run.spec


@pytest.mark.slow
def test_multiclass_aerial_run_reports_every_class(aerial_data: Path, tmp_path: Path) -> None:
    result = train(
        TrainConfig(
            data=aerial_data,
            out=tmp_path / "run",
            size=(64, 64),
            epochs=2,
            batch=8,
            depth=3,
            filters=8,
            loss="ce+dice",
            resize="letterbox",
            verbose=0,
        )
    )
    names = tuple((aerial_data / "labels.txt").read_text().split())
    spec = ModelSpec.load(result.config_path)
    assert len(names) == 5 and spec.class_names == names and spec.resize == "letterbox"
    assert list(result.per_class_iou) == list(spec.class_names)
    assert all(v is None or 0.0 <= v <= 1.0 for v in result.per_class_iou.values())
    assert 0.0 < result.best_miou < 1.0 and result.epochs_run == 2 and not result.interrupted


class _InterruptAt(keras.callbacks.Callback):
    """Simulates Ctrl-C at the end of a given epoch (0-based)."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if epoch == self.epoch:
            raise KeyboardInterrupt


class _InterruptFirstBatch(keras.callbacks.Callback):
    """Simulates Ctrl-C after the first batch, before any checkpoint exists."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        raise KeyboardInterrupt


@pytest.mark.slow
def test_ctrl_c_before_the_first_checkpoint_is_told_apart(tiny_data: Path, tmp_path: Path) -> None:
    """The CLI says 'nothing new was saved' only for this type: any Ctrl-C escaping training
    was taken for it, one after a finished run's last write too."""
    from edgeseg.train.config import StoppedBeforeCheckpoint

    out = tmp_path / "run"
    config = TrainConfig(
        data=tiny_data, out=out, size=(32, 32), epochs=2, batch=4, depth=2, filters=4, verbose=0
    )
    with pytest.raises(StoppedBeforeCheckpoint):
        train(config, callbacks=[_InterruptFirstBatch()])
    assert not (out / "model.keras").exists()


@pytest.mark.slow
def test_ctrl_c_keeps_the_checkpoint_then_resume_continues(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = TrainConfig(
        data=tiny_data,
        out=out,
        size=(32, 32),
        epochs=5,
        batch=4,
        depth=2,
        filters=4,
        steps_per_epoch=2,
        verbose=0,
    )
    result = train(config, callbacks=[_InterruptAt(1)])
    assert result.interrupted and result.epochs_run == 2
    assert result.model_path.is_file() and result.curves_path is not None
    assert [r["epoch"] for r in _history(out)] == ["1", "2"]
    load_keras_model(result.model_path)

    # a finished or interrupted run is never silently overwritten
    result_cli = runner.invoke(app, ["train", str(tiny_data), "--out", str(out), *TINY])
    assert result_cli.exit_code == 2 and "--resume" in result_cli.output

    # --resume takes the saved settings, the optimizer state and the epoch count
    resumed = runner.invoke(app, ["train", "--out", str(out), "--resume", "--epochs", "3"])
    assert resumed.exit_code == 0, resumed.output
    # the recipe line says what the budget chose: 3 epochs of 2 steps, too short for crops
    assert "recipe: input 32x32 (HxW), 6 steps (3 epochs of 2)" in resumed.output
    assert "whole frames" in resumed.output
    assert "bg" not in resumed.output and "vehicle" in resumed.output  # per-class IoU table
    assert [r["epoch"] for r in _history(out)] == ["1", "2", "3"]
    saved = json.loads((out / "config.json").read_text())
    assert saved["train"]["size"] == [32, 32] and saved["train"]["steps_per_epoch"] == 2
    assert saved["train"]["min_scale"] == 1.0  # resolved from the budget, recorded

    again = runner.invoke(app, ["train", "--out", str(out), "--resume", "--epochs", "3"])
    assert again.exit_code == 2 and "already trained 3 epochs" in again.output


def test_help_lists_the_options() -> None:
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    for option in (
        "--out",
        "--size",
        "--epochs",
        "--steps",
        "--warmup",
        "--class-weights",
        "--min-scale",
        "--batch",
        "--lr",
        "--depth",
        "--filters",
        "--upsample",
        "--loss",
        "--resize",
        "--classes",
        "--resume",
        "--strategy",
        "--xla",
    ):
        assert option in result.output


@pytest.mark.slow
def test_xla_auto_times_both_step_compilers_and_records_the_choice(
    tiny_data: Path, tmp_path: Path
) -> None:
    from edgeseg.train.xla import MIN_PROBE_BUDGET

    out = tmp_path / "run"
    steps = str(MIN_PROBE_BUDGET)
    result = runner.invoke(
        app, ["train", str(tiny_data), "--out", str(out), *TINY, "--steps", steps]
    )
    assert result.exit_code == 0, result.output
    assert "training step: " in result.output and "s with XLA" in result.output
    saved = json.loads((out / "config.json").read_text())
    step = saved["train_step"]  # kept through the quantisation-aware phase's rewrite
    assert saved["train"]["xla"] == "auto" and "qat" in saved
    assert isinstance(step["xla"], bool)
    graph, xla = step["seconds_per_step"]["graph"], step["seconds_per_step"]["xla"]
    assert 0 < graph < 5 and 0 < xla < 5
    assert step["xla"] is (xla < graph)
    assert [r["epoch"] for r in _history(out)] == ["1", "2"]  # the budget: 2 epochs of 100

    forced = runner.invoke(
        app,
        [
            "train",
            str(tiny_data),
            "--out",
            str(tmp_path / "forced"),
            *TINY,
            "--xla",
            "on",
            "--strategy",
            "mirrored",
        ],
    )
    assert forced.exit_code == 2 and "--xla on needs --strategy default" in forced.output


def _write_pair(root: Path, stem: str, image: np.ndarray, mask: np.ndarray) -> None:
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / "images" / f"{stem}.png"), image)
    cv2.imwrite(str(root / "masks" / f"{stem}.png"), mask)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", "dataset folder not found"),
        ("lonely_image", "has no mask"),
        ("size_mismatch", "mask is 32x16 but image p1.png is 32x32"),
        ("bad_value", "are >= the number of classes"),
        ("unreadable", "cannot read image"),
        ("one_class", "at least 2 classes"),
        ("no_pairs", "no image/mask pairs"),
        ("unknown_colour", "#00FF00 not listed in classes.csv"),
        ("bad_size", "divisible by 2**depth"),
    ],
)
def test_bad_input_exits_2_with_the_path_and_writes_nothing(
    tmp_path: Path, case: str, expected: str
) -> None:
    data = tmp_path / "data"
    img, mask = np.zeros((32, 32), np.uint8), np.zeros((32, 32), np.uint8)
    for i in range(3):
        _write_pair(data, f"p{i}", img, mask)
    (data / "labels.txt").write_text("a\nb\n")
    culprit = data
    if case == "missing":
        culprit = data = tmp_path / "nowhere"
    elif case == "lonely_image":
        culprit = data / "images" / "extra.png"
        cv2.imwrite(str(culprit), img)
    elif case == "size_mismatch":
        culprit = data / "masks" / "p1.png"
        cv2.imwrite(str(culprit), np.zeros((16, 32), np.uint8))
    elif case == "bad_value":
        culprit = data / "masks" / "p2.png"
        cv2.imwrite(str(culprit), np.full((32, 32), 3, np.uint8))
    elif case == "unreadable":
        culprit = data / "images" / "p0.png"
        culprit.write_bytes(b"not a png")
    elif case == "one_class":
        (data / "labels.txt").write_text("only\n")
    elif case == "no_pairs":
        for f in [*data.glob("images/*"), *data.glob("masks/*")]:
            f.unlink()
    elif case == "unknown_colour":
        (data / "classes.csv").write_text("a,0,0,0\nb,255,0,0\n")
        culprit = data / "masks" / "p1.png"
        colour = np.zeros((32, 32, 3), np.uint8)
        colour[5:9, 5:9] = (0, 255, 0)  # BGR green: not a listed class colour
        cv2.imwrite(str(culprit), colour)
    out = tmp_path / "run"
    size = "42" if case == "bad_size" else "32"
    result = runner.invoke(app, ["train", str(data), "--out", str(out), *TINY, "--size", size])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert case == "bad_size" or str(culprit) in result.output
    assert result.output.count("error:") == 1 and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_missing_validation_split_is_made_or_refused(tmp_path: Path) -> None:
    from dataclasses import replace

    from edgeseg.data.dataset import open_dataset
    from edgeseg.train.fit import ensure_val_split

    for i in range(10):
        eye = np.eye(8, dtype=np.uint8)
        _write_pair(tmp_path / "train", f"p{i}", np.zeros((8, 8), np.uint8), eye)
    (tmp_path / "labels.txt").write_text("a\nb\n")
    opened = open_dataset(tmp_path)
    ds = replace(opened, train=opened.train + opened.val, val=())
    split = ensure_val_split(ds, 0.2, seed=3)
    assert len(split.val) == 2 and len(split.train) == 8
    assert {s.stem for s in split.val + split.train} == {f"p{i}" for i in range(10)}
    assert ensure_val_split(ds, 0.2, seed=3) == split
    with pytest.raises(DatasetError, match="no validation pairs"):
        ensure_val_split(ds, 0.0)
    result = runner.invoke(
        app, ["train", str(tmp_path), "--out", str(tmp_path / "run"), "--val-fraction", "0"]
    )
    assert result.exit_code == 2 and "no validation pairs" in result.output


def test_val_split_matches_open_dataset_even_for_a_small_fraction(tmp_path: Path) -> None:
    """ensure_val_split holds out what open_dataset would (at least one pair), never refusing a
    split that open_dataset makes (it used to round 10 * 0.05 down to 0 pairs and refuse)."""
    from dataclasses import replace

    from edgeseg.data.dataset import open_dataset
    from edgeseg.train.fit import ensure_val_split

    for i in range(10):
        _write_pair(
            tmp_path / "train", f"p{i}", np.zeros((8, 8), np.uint8), np.eye(8, dtype=np.uint8)
        )
    (tmp_path / "labels.txt").write_text("a\nb\n")
    opened = open_dataset(tmp_path, val_fraction=0.05, seed=1)
    assert len(opened.val) == 1
    ds = replace(opened, train=opened.train + opened.val, val=())
    split = ensure_val_split(ds, 0.05, seed=1)
    assert (split.train, split.val) == (opened.train, opened.val)


def test_classes_option_overrides_labels(tmp_path: Path) -> None:
    _write_pair(tmp_path, "p0", np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8))
    result = runner.invoke(
        app, ["train", str(tmp_path), "--out", str(tmp_path / "run"), "--classes", "only"]
    )
    assert result.exit_code == 2 and "at least 2 classes" in result.output
    assert "only" in result.output and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tiny_data: Path, tmp_path: Path) -> None:
    env = {**os.environ, "EDGESEG_LOGICAL_CPUS": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [
        sys.executable,
        "-c",
        "from edgeseg.cli.main import app; app()",
        "train",
        str(tiny_data),
        "--out",
        str(tmp_path / "run"),
        *TINY,
        "--epochs",
        "1",
        "--strategy",
        "mirrored",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "on 2 devices" in proc.stdout
    assert (tmp_path / "run" / "model.keras").is_file()


@pytest.mark.slow
def test_early_stopping_is_off_by_default_and_patience_turns_it_on(
    tiny_data: Path, tmp_path: Path
) -> None:
    """A learning rate too small to change anything keeps val mIoU flat: the default (no
    patience) still runs the whole budget, --patience 1 stops after one epoch without a gain."""
    base = TrainConfig(
        data=tiny_data,
        out=tmp_path / "full",
        size=(32, 32),
        epochs=4,
        batch=4,
        depth=2,
        filters=4,
        steps_per_epoch=2,
        lr=1e-12,
        lr_schedule="constant",
        verbose=0,
    )
    assert base.patience is None
    assert train(base).epochs_run == 4
    stopped = train(replace(base, out=tmp_path / "stop", patience=1))
    assert stopped.epochs_run < 4
    mious = [float(r["val_miou"]) for r in _history(tmp_path / "stop")]
    assert len(mious) == stopped.epochs_run and mious[-1] <= max(mious[:-1])


@pytest.mark.slow
def _next_steps(output: str) -> list[list[str]]:
    """The `next: edgeseg ...` commands a stage suggested, as argument lists without `edgeseg`."""
    prefix = "next: edgeseg "
    return [
        shlex.split(line[len(prefix) :]) for line in output.splitlines() if line.startswith(prefix)
    ]


def test_ignore_class_trains_without_it_and_eval_check_read_masks_the_same_way(
    tiny_data: Path, tmp_path: Path
) -> None:
    """--ignore-class road (a class in the middle of labels.txt): the model gets the other four,
    its spec records road, and eval / convert / check leave road's pixels out with no option."""
    import edgeseg

    out = tmp_path / "run"
    args = ["train", str(tiny_data), "--out", str(out), *TINY, "--epochs", "1", "--no-qat"]
    result = runner.invoke(app, [*args, "--ignore-class", "road"])
    assert result.exit_code == 0, result.output
    assert "road left out" in result.output
    assert _next_steps(result.output) == [["convert", str(out / "model.keras")]]
    spec = ModelSpec.load(out / "config.json")
    assert spec.class_names == ("background", "building", "vegetation", "vehicle")
    assert spec.ignored_classes == ("road",)
    assert json.loads((out / "config.json").read_text())["train"]["ignore_classes"] == ["road"]
    model, _ = load_keras_model(out / "model.keras")
    assert model.output_shape[-1] == 4

    scored = edgeseg.evaluate(out / "model.keras", tiny_data)
    masks = [
        cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in (tiny_data / "val" / "masks").iterdir()
    ]
    assert int(scored.confusion.sum()) == sum(int((m != 1).sum()) for m in masks)  # road is id 1
    assert set(scored.to_dict()["per_class_iou"]) == set(spec.class_names)
    # the same data already remapped (road -> 255, labels.txt without it) scores the same
    remapped = tmp_path / "remapped" / "val"
    shutil.copytree(tiny_data / "val", remapped)
    (remapped.parent / "labels.txt").write_text("\n".join(spec.class_names) + "\n")
    for path in (remapped / "masks").iterdir():
        m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        assert cv2.imwrite(
            str(path), np.where(m == 1, 255, np.where(m > 1, m - 1, m)).astype(np.uint8)
        )
    again = edgeseg.evaluate(out / "model.keras", remapped)
    assert np.array_equal(again.confusion, scored.confusion)

    int8 = tmp_path / "m_int8.tflite"
    convert = ["convert", str(out / "model.keras"), "--calib", str(tiny_data), "--out", str(int8)]
    result = runner.invoke(app, [*convert, "--calib-count", "4"])
    assert result.exit_code == 0, result.output
    # the gate it suggests, on the data config.json names, is the one run here
    check = ["check", str(out / "model.keras"), str(int8), "--data", str(tiny_data)]
    assert _next_steps(result.output) == [check, ["run", str(int8), "--camera", "0"]]
    result = runner.invoke(app, [*check, "--max-drop", "100", "--out-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert read_spec(int8.read_bytes()).ignored_classes == ("road",)  # in the int8 metadata
    result = runner.invoke(app, ["info", str(int8)], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "left out" in result.output and "road" in result.output


def _blended_colour_copy(index_data: Path, out: Path) -> tuple[Path, dict[str, int]]:
    """index_data laid out as the off-road set YCOR publishes it (train/ and valid/, one folder
    per sample holding rgb.jpg + labels.png) with colour masks (classes.csv) whose class edges
    carry blends of the two colours, as anti-aliased or resized masks do; returns the folder
    and the held-out masks' count of pixels in listed colours."""
    palette = np.array([[0, 0, 0], [128, 64, 128], [70, 70, 70], [107, 142, 35], [0, 0, 142]])
    names = (index_data / "labels.txt").read_text().split()
    rows = [f"{n},{r},{g},{b}" for n, (r, g, b) in zip(names, palette, strict=True)]
    (out / "classes.csv").parent.mkdir(parents=True)
    (out / "classes.csv").write_text("name,r,g,b\n" + "\n".join(rows) + "\n")
    listed: dict[str, int] = {}
    for split, published in (("train", "train"), ("val", "valid")):
        for path in sorted((index_data / split / "masks").iterdir()):
            sample = out / published / path.stem
            sample.mkdir(parents=True)
            shutil.copy(index_data / split / "images" / f"{path.stem}.jpg", sample / "rgb.jpg")
            m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            rgb = palette[m].astype(np.uint16)
            edge = np.zeros_like(m, bool)
            edge[:, 1:] = m[:, 1:] != m[:, :-1]  # the left neighbour is another class
            rgb[:, 1:][edge[:, 1:]] = (rgb[:, 1:] + rgb[:, :-1])[edge[:, 1:]] // 2
            assert cv2.imwrite(str(sample / "labels.png"), rgb[..., ::-1].astype(np.uint8))
            if split == "val":
                listed[path.stem] = int((~edge).sum())
    return out, listed


@pytest.mark.slow
def test_unlisted_colours_are_refused_by_default_and_ignored_on_request(
    tiny_data: Path, tmp_path: Path
) -> None:
    """An off-road set as published (one folder per sample, valid/) whose colour masks' class
    edges hold blended colours: the default stops naming the file, the share and the option;
    --unlisted-colors ignore trains without those pixels, records it in the spec, and eval,
    convert (calibration images and coverage) and check read the masks the same way."""
    import edgeseg

    data, listed = _blended_colour_copy(tiny_data, tmp_path / "colour")
    out = tmp_path / "run"
    args = ["train", str(data), "--out", str(out), *TINY, "--epochs", "1", "--no-qat"]
    result = runner.invoke(app, args, env={"COLUMNS": "400"})
    assert result.exit_code == 2, result.output
    assert (
        "not listed in classes.csv" in result.output and "--unlisted-colors ignore" in result.output
    )
    assert "% of its pixels" in result.output and not out.exists()

    result = runner.invoke(app, [*args, "--unlisted-colors", "ignore"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    train_masks = sorted((tiny_data / "train" / "masks").iterdir())
    edges = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in train_masks]
    share = sum(int((m[:, 1:] != m[:, :-1]).sum()) for m in edges) / sum(m.size for m in edges)
    # named by what they are: a colour mask holds no value 255
    said = f"ignored pixels (colours not in classes.csv; not trained or scored): {100 * share:.2g}%"
    assert said in result.output
    spec = ModelSpec.load(out / "config.json")
    assert spec.unlisted_colors == "ignore" and spec.num_classes == 5
    scored = edgeseg.evaluate(out / "model.keras", data)
    assert int(scored.confusion.sum()) == sum(listed.values())  # blended pixels not scored

    int8 = tmp_path / "m_int8.tflite"
    convert = ["convert", str(out / "model.keras"), "--calib", str(data), "--out", str(int8)]
    result = runner.invoke(app, [*convert, "--calib-count", "4"])
    assert result.exit_code == 0, result.output
    assert "calibration class coverage (4 masks)" in result.output  # read from the rgb.jpg folders
    check = ["check", str(out / "model.keras"), str(int8), "--data", str(data)]
    result = runner.invoke(app, [*check, "--max-drop", "100", "--out-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert read_spec(int8.read_bytes()).unlisted_colors == "ignore"
    result = runner.invoke(app, ["info", str(int8)], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "unlisted colours" in result.output
    # not 'colours not in classes.csv': the list may be class_dict.csv, _classes.csv ...
    assert "ignored (mask colours the class list does not name)" in result.output

    # index-coded masks have no colours to ignore: refused naming the option
    result = runner.invoke(
        app,
        [
            "train",
            str(tiny_data),
            "--out",
            str(tmp_path / "i"),
            *TINY,
            "--epochs",
            "1",
            "--unlisted-colors",
            "ignore",
        ],
    )
    assert result.exit_code == 2 and "applies to colour-coded masks" in result.output


@pytest.mark.slow
def test_a_listed_class_no_training_mask_holds_is_warned_about(
    tiny_data: Path, tmp_path: Path
) -> None:
    """labels.txt naming a class the masks never use (a typo, a wrong list, a split without it):
    the run says so before training, naming the class and the class list."""
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    with (data / "labels.txt").open("a") as fh:
        fh.write("puddle\n")
    args = ["train", str(data), "--out", str(tmp_path / "run"), *TINY, "--epochs", "1", "--no-qat"]
    result = runner.invoke(app, args, env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert (
        f"class(es) puddle: no pixels in the 8 training masks, so the model cannot learn them; "
        f"check the masks and {data / 'labels.txt'}" in " ".join(result.output.split())
    )
    assert "ignored pixels" not in result.output  # the synthetic masks label every pixel
