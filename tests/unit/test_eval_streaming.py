"""Opening evaluation data, streaming it with a trivial real predictor, and model-path errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeseg.core.errors import DatasetError, ModelError
from edgeseg.core.metrics import MetricAccumulator
from edgeseg.core.spec import ModelSpec
from edgeseg.eval.common import check_model_classes, iter_chunks, open_eval_data
from edgeseg.eval.evaluate import evaluate_predictor
from edgeseg.eval.predictor import Predictor, open_predictor


class ThresholdPredictor:
    """A real (if crude) segmenter: dark pixels are membrane. Exercises the streaming loop."""

    batch_size = 4

    def __init__(self) -> None:
        self.spec = ModelSpec(64, 64, ("membrane", "cell_interior"), channels=1)
        self.path = Path("threshold")
        self.calls: list[int] = []

    def predict(self, frame: np.ndarray) -> np.ndarray:
        return (frame > 110).astype(np.uint8)

    def predict_many(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        self.calls.append(len(frames))
        return [self.predict(f) for f in frames]


def test_data_root_and_val_folder_give_the_same_images(membrane_data: Path) -> None:
    ds_root, split, _ = open_eval_data(membrane_data)
    ds_val, _, _ = open_eval_data(membrane_data / "val")
    assert split == "val"
    assert [s.stem for s in ds_root.val] == [s.stem for s in ds_val.val]
    assert len(ds_val.val) == 6 and not ds_val.train
    chunks = list(iter_chunks(ds_val, "val", limit=5, size=2))
    assert [len(c) for c in chunks] == [2, 2, 1]


def test_a_valid_folder_is_the_split_eval_scores(membrane_data: Path, tmp_path: Path) -> None:
    """DATA with train/ + valid/ (as some sets publish it) is scored on valid/, as training
    validated, not on a seeded fifth of train/."""
    for name in ("train", "labels.txt"):
        (tmp_path / name).symlink_to(membrane_data / name)
    (tmp_path / "valid").symlink_to(membrane_data / "val")
    ds, split, _ = open_eval_data(tmp_path)
    assert split == "val" and len(ds.train) == len(list((membrane_data / "train/images").iterdir()))
    assert [s.stem for s in ds.val] == [s.stem for s in open_eval_data(membrane_data)[0].val]


def test_evaluate_predictor_matches_direct_metrics(membrane_data: Path, tmp_path: Path) -> None:
    pred = ThresholdPredictor()
    assert isinstance(pred, Predictor)
    result = evaluate_predictor(pred, membrane_data / "val", save_overlays=tmp_path / "ov", limit=5)
    ds, _, _ = open_eval_data(membrane_data / "val")
    acc = MetricAccumulator(2)
    for _, image, mask in list(ds.iter_split("val"))[:5]:
        acc.update(mask, pred.predict(image))
    assert result.images == 5
    assert result.miou == pytest.approx(acc.scores().miou)
    assert 0.2 < result.miou < 0.9
    assert pred.calls == [4, 1]  # batches of batch_size, stopped by limit
    overlays = sorted((tmp_path / "ov").glob("*.png"))
    assert len(overlays) == 5
    img = cv2.imread(str(overlays[0]))
    # input | ground truth | prediction side by side, legend beside, caption above
    assert img.shape[0] > 512 and img.shape[1] > 3 * 512 and img.std() > 10
    d = json.loads(result.write_json(tmp_path / "e.json").read_text())
    assert d["images"] == 5 and set(d["per_class_iou"]) == {"membrane", "cell_interior"}
    assert d["mean_latency_ms"] >= 0


def test_class_count_mismatch_names_both(membrane_data: Path) -> None:
    ds, _, _ = open_eval_data(membrane_data / "val")
    three = ModelSpec(64, 64, ("a", "b", "c"))
    with pytest.raises(DatasetError, match=r"dataset has 2 classes .* has 3"):
        check_model_classes(ds, three, Path("m.tflite"))
    renamed = ModelSpec(64, 64, ("x", "y"))
    with pytest.raises(DatasetError, match=r"labels\.txt: class names differ .*'x', 'y'"):
        check_model_classes(ds, renamed, Path("m.tflite"))  # scored under the wrong names
    assert check_model_classes(ds, ModelSpec(64, 64, ds.class_names), Path("m.tflite")) == []


def test_empty_or_missing_data_is_a_dataset_error(tmp_path: Path, membrane_data: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DatasetError, match="no image/mask pairs"):
        open_eval_data(tmp_path)
    with pytest.raises(DatasetError, match="not found"):
        open_eval_data(tmp_path / "nope")
    # DATA with train/ only: the seeded held-out split that `edgeseg train` validates on.
    only_train = tmp_path / "only_train"
    shutil.copytree(membrane_data / "val", only_train / "train")
    shutil.copy(membrane_data / "labels.txt", only_train)
    ds, split, _ = open_eval_data(only_train)
    assert split == "val" and len(ds.val) == 1 and len(ds.train) == 5


def test_model_paths_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        open_predictor(tmp_path / "missing.tflite")
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    with pytest.raises(ModelError, match=r"unsupported model type '\.onnx'"):
        open_predictor(onnx)
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ModelError, match=r"junk\.tflite"):
        open_predictor(junk)


def test_float_and_int8_models_with_different_class_names_are_refused() -> None:
    """Per-class drops under one model's names would compare other classes; a float model read
    without a spec (placeholder names class_0, ...) only gets a note."""
    from edgeseg.core.errors import ModelError
    from edgeseg.core.spec import ModelSpec
    from edgeseg.eval.common import check_compatible

    int8 = ModelSpec(32, 32, ("membrane", "cell"))
    with pytest.raises(ModelError, match=r"class names differ .*compare an int8 model"):
        check_compatible(ModelSpec(32, 32, ("cell", "membrane")), int8, Path("f"), Path("q"))
    bare = ModelSpec.from_shapes(32, 32, 3, 2)
    assert not bare.names_known and int8.names_known
    (note,) = check_compatible(bare, int8, Path("f.keras"), Path("q.tflite"))
    assert "class names differ" in note
    assert check_compatible(int8, int8, Path("f"), Path("q")) == []


def test_data_that_names_no_classes_is_read_with_the_models_names(tmp_path: Path) -> None:
    """A model trained with --classes on masks without labels.txt: eval and check (and train's
    `next: edgeseg check ... --data DATA`) score that data by the model's names."""
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    for i in range(5):
        mask = np.zeros((16, 16), np.uint8)
        mask[:, i + 2 :] = 2
        cv2.imwrite(str(tmp_path / "images" / f"s{i}.png"), np.full((16, 16, 3), 90, np.uint8))
        cv2.imwrite(str(tmp_path / "masks" / f"s{i}.png"), mask)
    spec = ModelSpec(16, 16, ("water", "land", "road"))
    ds, split, _ = open_eval_data(tmp_path, spec)
    assert ds.class_names == ("water", "land", "road") and split == "val"
    assert check_model_classes(ds, spec, Path("m.tflite")) == []
    with pytest.raises(DatasetError, match="class names"):
        open_eval_data(tmp_path)  # without a model, the data still has to name its classes
