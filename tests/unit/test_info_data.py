"""`edgeseg info DATA`: what `edgeseg train` would find in a dataset folder and do with it, read
from real PNG files, without TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from edgeseg.cli.main import app

runner = CliRunner()


def make_dataset(root: Path) -> Path:
    """12 pairs at 120x160: 'road' on the top quarter, 'car' on one 10x10 block per mask, 255
    (ignored) on one row, and a listed 'puddle' no mask holds."""
    root.mkdir(parents=True)
    (root / "labels.txt").write_text("road\ngrass\ncar\npuddle\n")
    rng = np.random.default_rng(0)
    for split, count in (("train", 10), ("val", 2)):
        for folder in ("images", "masks"):
            (root / split / folder).mkdir(parents=True)
        for i in range(count):
            mask = np.ones((120, 160), np.uint8)
            mask[:30] = 0
            mask[50:60, 50:60] = 2
            mask[-1] = 255
            image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
            assert cv2.imwrite(str(root / split / "images" / f"s{i}.jpg"), image)
            assert cv2.imwrite(str(root / split / "masks" / f"s{i}.png"), mask)
    return root


def test_info_on_a_dataset_shows_the_split_classes_shares_weights_and_recipe(
    tmp_path: Path,
) -> None:
    data = make_dataset(tmp_path / "data")
    result = runner.invoke(app, ["info", str(data)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "10 train / 2 val pairs, 4 classes from labels.txt, class-index masks" in out
    assert "160x120 (WxH, all 10 training images)" in out
    assert "input 128x160 (HxW), 2000 steps (20 epochs of 100)" in out  # 4:3, at most 160
    scored = 119 * 160  # the last row is ignored
    road, car = 30 * 160 / scored, 100 / scored
    assert f"{100 * road:.2f}%" in out and f"{100 * car:.2f}%" in out
    assert "ignored pixels" in out and "0.83% of the training masks (value 255 in masks)" in out
    assert "class(es) puddle: no pixels in the 10 training masks" in out
    rows = {line.split("│")[2].strip(): line for line in out.splitlines() if line.count("│") == 5}
    car_weight = float(rows["car"].split("│")[4])
    assert car_weight > float(rows["grass"].split("│")[4])  # rarer classes weigh more
    assert rows["puddle"].split("│")[3].strip() == "0.00%"

    left_out = runner.invoke(app, ["info", str(data), "--ignore-class", "puddle"])
    assert left_out.exit_code == 0 and "puddle (not trained or scored)" in left_out.output
    assert "class(es) puddle" not in left_out.output


def test_info_options_for_data_are_refused_for_a_model_and_tensorflow_stays_out(
    tmp_path: Path,
) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(b"not read")
    result = runner.invoke(app, ["info", str(model), "--ignore-class", "void"])
    assert result.exit_code == 2
    assert "--ignore-class: applies to a dataset folder" in result.output
    data = make_dataset(tmp_path / "data")
    code = (
        "import sys; from typer.testing import CliRunner; from edgeseg.cli.main import app; "
        f"r = CliRunner().invoke(app, ['info', {str(data)!r}]); "
        "assert r.exit_code == 0, r.output; print('tensorflow' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_mixed_image_sizes_show_the_median_and_the_range() -> None:
    from edgeseg.cli.info_cmd import _sizes

    sizes = [(480, 640), (360, 480), (1080, 1920)]  # (height, width), as the recipe reads them
    assert _sizes(sizes) == "median 640x480 (WxH, from 480x360 to 1920x1080, 3 training images)"


def test_a_bad_pair_is_the_datas_error_not_a_question_of_what_info_takes(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data")
    bad = np.full((120, 160), 7, np.uint8)  # beyond the 4 listed classes
    assert cv2.imwrite(str(data / "train" / "masks" / "s3.png"), bad)
    result = runner.invoke(app, ["info", str(data)])
    assert result.exit_code == 2
    assert "s3.png: mask values [7] are >= the number of classes (4" in result.output
    assert "`edgeseg info` takes" not in result.output


def test_a_folder_laid_out_as_no_dataset_says_what_info_takes(tmp_path: Path) -> None:
    """Only a folder with no dataset shape gets the hint; an image without its mask is the data's
    own error (the layout was recognised)."""
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("x")
    result = runner.invoke(app, ["info", str(tmp_path / "notes")])
    assert result.exit_code == 2
    assert "`edgeseg info` takes a .tflite or .keras model, or a dataset folder" in result.output
    data = make_dataset(tmp_path / "data")
    (data / "train" / "masks" / "s3.png").unlink()
    result = runner.invoke(app, ["info", str(data)])
    assert result.exit_code == 2
    assert "s3.jpg: image has no mask" in result.output
    assert "`edgeseg info` takes" not in result.output


def test_colour_coded_masks_show_the_colour_each_class_is_read_from(tmp_path: Path) -> None:
    """A wrong row in classes.csv shows as a wrong colour next to its class (index masks have no
    colour column)."""
    root = tmp_path / "colour"
    root.mkdir()
    (root / "classes.csv").write_text("name,r,g,b\nsky,30,60,90\ntrail,200,10,10\n")
    for split in ("train", "val"):
        for folder in ("images", "masks"):
            (root / split / folder).mkdir(parents=True)
        mask = np.zeros((32, 32, 3), np.uint8)
        mask[:] = (90, 60, 30)  # BGR of sky
        mask[16:] = (10, 10, 200)  # BGR of trail
        assert cv2.imwrite(str(root / split / "masks" / "a.png"), mask)
        assert cv2.imwrite(str(root / split / "images" / "a.png"), mask)
    result = runner.invoke(app, ["info", str(root)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[2].strip(): line for line in result.output.splitlines() if "%" in line}
    assert "#1E3C5A" in rows["sky"] and "#C80A0A" in rows["trail"]
    index = runner.invoke(app, ["info", str(make_dataset(tmp_path / "index"))])
    assert "#" not in index.output and "┃ colour" not in index.output


def test_info_takes_the_class_names_a_dataset_without_labels_needs(tmp_path: Path) -> None:
    """Its hint for such data says to pass --classes; info has it, as train does."""
    data = make_dataset(tmp_path / "street")
    (data / "labels.txt").unlink()
    bare = runner.invoke(app, ["info", str(data)])
    assert bare.exit_code == 2 and "--classes" in bare.stderr
    named = runner.invoke(app, ["info", str(data), "--classes", "road,grass,car,puddle"])
    assert named.exit_code == 0, named.output
    assert "4 classes from the given class list" in " ".join(named.output.split())
    elsewhere = runner.invoke(app, ["info", str(tmp_path / "m.tflite"), "--classes", "a,b"])
    assert elsewhere.exit_code == 2 and "--classes: applies to a dataset folder" in elsewhere.stderr


def test_info_names_a_random_encoder_as_help_does() -> None:
    """`weights None` in info's architecture row; --help calls it random."""
    from edgeseg.cli.info_cmd import _arch_value

    assert _arch_value("weights", None) == "random"
    assert _arch_value("weights", "imagenet") == "imagenet" and _arch_value("depth", 4) == "4"


def test_accuracy_row_survives_metadata_of_the_wrong_type() -> None:
    """`info` read `convert --max-drop`'s record as trusted: max_drop "1" was a ValueError and
    float_layer_names 3 a TypeError, both tracebacks (exit 1); a drop a hair below zero
    printed -0.00."""
    from edgeseg.cli.info_cmd import _accuracy_text

    good = {"max_drop": 1.0, "miou_drop": -0.001, "within_max_drop": True}
    assert _accuracy_text(good) == "full int8; mIoU drop 0.00 points, --max-drop 1 met"
    kept = _accuracy_text({**good, "float_layer_names": ["dec1", "head"]})
    assert kept is not None and kept.startswith("2 layer(s) kept in float (dec1, head);")
    assert _accuracy_text({**good, "max_drop": "1"}) == "full int8; mIoU drop 0.00 points"
    odd = _accuracy_text({**good, "float_layer_names": 3, "miou_drop": "x"})
    assert odd == "full int8; drop unknown, --max-drop 1 met"
    assert _accuracy_text({"miou_drop": 0.5}) is None
