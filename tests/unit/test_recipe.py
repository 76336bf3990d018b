"""The training recipe: input size from the data, step budget, class weights, the augmentation
(image and mask cut by the same window with the frame's aspect ratio; masks never interpolated)
and the class-weighted loss that still skips ignored pixels."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeseg.core.errors import DatasetError
from edgeseg.data.dataset import open_dataset
from edgeseg.train.fit import TrainConfig, ensure_val_split, resolve_recipe
from edgeseg.train.recipe import (
    CROP_FROM_STEPS,
    CROP_MIN_SCALE,
    DEFAULT_STEPS,
    MAX_WEIGHT,
    MIN_EPOCH_STEPS,
    class_weights,
    count_pixels,
    default_min_scale,
    default_size,
    image_size,
    plan_steps,
)


def _dataset(root: Path, hw: tuple[int, int] = (60, 80), count: int = 3) -> Path:
    """Index masks: class 0 everywhere, class 2 in a block, 255 (ignore) in one row band."""
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for i in range(count):
            mask = np.zeros(hw, np.uint8)
            mask[10:40, 20 + i : 60 + i] = 2
            mask[: hw[0] // 10] = 255
            image = np.where(mask == 2, 200, 50).astype(np.uint8)
            cv2.imwrite(str(root / split / "images" / f"{i}.png"), image)
            cv2.imwrite(str(root / split / "masks" / f"{i}.png"), mask)
    (root / "labels.txt").write_text("bg\nunused\nblock\n")
    return root


# === default input size ===


def test_default_size_follows_the_median_aspect_ratio_with_long_side_256() -> None:
    assert default_size([(512, 512)] * 3, depth=4) == (256, 256)  # microscopy
    assert default_size([(512, 683), (512, 683), (683, 512)], depth=4) == (192, 256)  # 4:3 street
    assert default_size([(683, 512)], depth=4) == (256, 192)  # portrait
    assert default_size([(544, 1024)], depth=5) == (128, 256)  # off-road 1024x544, /32
    for h, w in [default_size([(480, 640)], depth=d) for d in (3, 4, 5)]:
        assert max(h, w) == 256
    # small images are not blown up past their own size (rounded up to a multiple of 2**depth)
    assert default_size([(100, 100)], depth=4) == (112, 112)


def test_default_size_needs_images() -> None:
    with pytest.raises(DatasetError, match="--size"):
        default_size([], depth=4)


def test_image_size_reads_the_header_of_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    cv2.imwrite(str(path), np.zeros((30, 50, 3), np.uint8))
    assert image_size(path) == (30, 50)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match=r"bad\.png"):
        image_size(tmp_path / "bad.png")


# === step budget ===


def test_step_budget_gives_small_datasets_as_many_steps_as_large_ones() -> None:
    per_epoch, epochs = plan_steps(24, 8, steps=2000, epochs=None)  # 24 membrane slices
    assert per_epoch == MIN_EPOCH_STEPS and per_epoch * epochs == 2000
    per_epoch, epochs = plan_steps(1000 * 8 + 1, 8, steps=2000, epochs=None)  # a pass: 1001
    assert per_epoch == 2000 and epochs == 1  # not 2 x 1001: the budget as asked
    per_epoch, epochs = plan_steps(1000, 8, steps=2000, epochs=None)
    assert per_epoch == 125 and epochs == 16
    assert plan_steps(1000, 8, steps=None, epochs=None)[0] * plan_steps(
        1000, 8, steps=None, epochs=None
    )[1] == max(DEFAULT_STEPS, 125)
    assert plan_steps(24, 8, steps=30, epochs=None) == (30, 1)  # fewer steps than one epoch
    # budgets that are no multiple of 100 are split into equal epochs, not rounded up to one more
    assert plan_steps(24, 8, steps=250, epochs=None) == (125, 2)
    assert plan_steps(24, 8, steps=236, epochs=None) == (118, 2)
    assert plan_steps(24, 8, steps=199, epochs=None) == (199, 1)
    for samples in range(8, 4000, 37):  # epochs of >= one pass and 100 steps, < epochs over
        per_epoch, epochs = plan_steps(samples, 8, steps=2000, epochs=None)
        assert (
            per_epoch >= max(100, -(-samples // 8)) and 2000 <= per_epoch * epochs < 2000 + epochs
        )
    assert plan_steps(24, 8, steps=2000, epochs=3) == (8, 3)  # epochs win: passes of >= 64


def test_resolve_recipe_fills_in_size_and_equal_epochs(tmp_path: Path) -> None:
    ds = ensure_val_split(open_dataset(_dataset(tmp_path / "d")), 0.2)
    resolved = resolve_recipe(TrainConfig(data=ds.root, out=tmp_path / "r", steps=250), ds)
    assert resolved.size == (64, 80)  # 60x80 images: their own size, rounded to 2**4
    assert resolved.steps_per_epoch == 125 and resolved.epochs == 2  # two equal epochs
    assert resolved.steps == 250  # the budget asked for, not rounded up to 3 x 100
    given = TrainConfig(data=ds.root, out=tmp_path / "r", size=(32, 32), steps_per_epoch=10)
    resolved = resolve_recipe(replace_steps(given, 45), ds)
    assert resolved.size == (32, 32) and resolved.epochs == 5 and resolved.steps == 50


def test_crops_come_with_long_budgets_unless_min_scale_is_given(tmp_path: Path) -> None:
    assert default_min_scale(CROP_FROM_STEPS - 1) == 1.0
    assert default_min_scale(CROP_FROM_STEPS) == CROP_MIN_SCALE < 1.0
    assert default_min_scale(DEFAULT_STEPS) == CROP_MIN_SCALE  # `edgeseg train DATA` crops
    ds = ensure_val_split(open_dataset(_dataset(tmp_path / "d")), 0.2)
    out = tmp_path / "r"
    short = resolve_recipe(TrainConfig(data=ds.root, out=out, steps=250), ds)
    assert short.min_scale == 1.0
    # the resolved budget decides: 950 steps are 9 epochs of 106 (954, whole frames); 1000 crop
    nine = resolve_recipe(TrainConfig(data=ds.root, out=out, steps=950), ds)
    assert (nine.epochs, nine.steps_per_epoch, nine.steps, nine.min_scale) == (9, 106, 954, 1.0)
    ten = resolve_recipe(TrainConfig(data=ds.root, out=out, steps=1000), ds)
    assert ten.steps == 1000 and ten.min_scale == CROP_MIN_SCALE
    given = resolve_recipe(TrainConfig(data=ds.root, out=out, steps=2000, min_scale=0.8), ds)
    assert given.min_scale == 0.8
    assert resolve_recipe(given, ds).min_scale == 0.8  # a resolved config (--resume) stays
    assert TrainConfig(data=ds.root, out=out).to_dict()["min_scale"] is None
    line = resolve_recipe(TrainConfig(data=ds.root, out=out, steps=2000), ds).recipe_line()
    assert line.startswith("recipe: input 64x80 (HxW), 2000 steps (20 epochs of 100), batch 8")
    assert "class weights sqrt, crops 0.5-1 of each side" in line
    assert "whole frames" in short.recipe_line()
    one = resolve_recipe(TrainConfig(data=ds.root, out=out, steps=2), ds)
    assert "2 steps (1 epoch of 2)" in one.recipe_line()
    assert "no augmentation" in replace(short, augment=False).recipe_line()
    with pytest.raises(ValueError, match="resolve_recipe"):
        TrainConfig(data=ds.root, out=out).recipe_line()


def test_a_size_typed_width_first_is_warned_about(tmp_path: Path) -> None:
    """--size is HEIGHTxWIDTH while cameras and image viewers say WIDTHxHEIGHT: 544x1024 frames'
    --size 256x128 would train portrait on landscape frames, so it is named with the fix."""
    from edgeseg.train.fit import size_orientation_warning

    ds = open_dataset(_dataset(tmp_path / "d", hw=(60, 112)))  # landscape, 112x60 (WxH)
    message = size_orientation_warning((128, 64), ds)
    assert message is not None and "--size 128x64 is HEIGHTxWIDTH: a portrait input" in message
    assert "landscape images (112x60, width x height)" in message
    assert message.endswith("pass --size 64x128")
    assert size_orientation_warning((64, 128), ds) is None  # the frames' orientation
    assert size_orientation_warning((64, 64), ds) is None  # square: no orientation to invert


def replace_steps(config: TrainConfig, steps: int) -> TrainConfig:
    return replace(config, steps=steps)


# === class weights ===


def test_class_weights_sqrt_and_median_frequency() -> None:
    f = [0.7, 0.2, 0.1, 0.0]
    assert class_weights(f, "none") == (1.0, 1.0, 1.0, 1.0)
    w = np.array(class_weights(f, "sqrt"))
    assert w[3] == 0.0  # a class absent from the data
    assert np.dot(f, w) == pytest.approx(1.0)  # the average pixel still weighs 1
    np.testing.assert_allclose(w[:3] / w[0], np.sqrt(0.7 / np.array(f[:3])))
    w = np.array(class_weights(f, "median"))  # median of the present classes' f is 0.2
    np.testing.assert_allclose(w[:3] / w[1], [0.2 / 0.7, 1.0, 2.0])
    assert np.dot(f, w) == pytest.approx(1.0)
    capped = class_weights([0.9999, 0.0001], "median")
    assert max(capped) == MAX_WEIGHT
    with pytest.raises(ValueError, match="sqrt"):
        class_weights(f, "inverse")


def test_pixel_counts_of_real_masks_keep_ignored_pixels_apart(tmp_path: Path) -> None:
    ds = open_dataset(_dataset(tmp_path / "d"))
    pixels = count_pixels(ds, ds.train)
    block = 30 * 40 / (54 * 80)  # the block's share of the 54 non-ignored rows
    np.testing.assert_allclose(pixels.frequencies, [1 - block, 0.0, block])
    assert pixels.ignored_share == pytest.approx(6 / 60)  # 6 of the 60 rows are 255
    assert pixels.absent(ds.class_names) == [ds.class_names[1]]


# === augmentation and loss (TensorFlow) ===


def _pair(hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A colour frame and a mask of classes 0 and 2 only, in blobs; the image encodes the label."""
    rng = np.random.default_rng(1)
    noise = cv2.resize(rng.uniform(0, 1, (hw[0] // 8, hw[1] // 8)), hw[::-1])
    mask = np.where(noise > 0.5, 2, 0).astype(np.uint8)
    image = np.zeros((*hw, 3), np.uint8)
    image[mask == 2] = (40, 160, 220)
    image[mask == 0] = (200, 90, 30)
    image = (image.astype(np.float32) + rng.normal(0, 3, image.shape)).clip(0, 255)
    return image.astype(np.uint8), mask


def test_augmentation_cuts_image_and_mask_by_the_same_window_and_flip() -> None:
    pytest.importorskip("tensorflow")
    from edgeseg.core.processing import prepare_image, prepare_mask
    from edgeseg.core.spec import ModelSpec
    from edgeseg.train.pipeline import augment_frame, random_window

    image, mask = _pair((300, 400))
    spec = ModelSpec(input_height=48, input_width=64, class_names=("a", "b", "c"))
    flips = set()
    for seed in range(8):
        pixels, labels = augment_frame(image, mask, spec, np.random.default_rng(seed))
        rng = np.random.default_rng(seed)  # replay the same draws
        top, left, ch, cw = random_window(mask.shape, rng)
        flip = rng.random() < 0.5
        flips.add(flip)
        want_mask = prepare_mask(mask[top : top + ch, left : left + cw], spec)
        want_px, _ = prepare_image(image[top : top + ch, left : left + cw], spec)
        if flip:
            want_mask, want_px = want_mask[:, ::-1], want_px[:, ::-1]
        np.testing.assert_array_equal(labels, want_mask)
        assert labels.dtype == np.uint8 and set(np.unique(labels).tolist()) <= {0, 2}
        assert pixels.shape == (48, 64, 3) and pixels.dtype == np.float32
        assert 0 <= pixels.min() and pixels.max() <= 255
        # colour jitter is a smooth per-image change: the pixels still follow the window's
        assert np.corrcoef(pixels.ravel(), want_px.astype(np.float32).ravel())[0, 1] > 0.95
    assert flips == {True, False}


def test_random_windows_keep_the_frame_aspect_ratio_and_stay_inside() -> None:
    pytest.importorskip("tensorflow")
    from edgeseg.train.pipeline import random_window

    rng = np.random.default_rng(0)
    scales = []
    for _ in range(200):
        top, left, ch, cw = random_window((360, 640), rng, min_scale=0.5)
        assert 0 <= top and top + ch <= 360 and 0 <= left and left + cw <= 640
        assert abs(ch / cw - 360 / 640) < 2 / cw
        scales.append(cw / 640)
    assert min(scales) >= 0.5 - 1e-3 and max(scales) <= 1.0
    assert max(scales) - min(scales) > 0.3  # the scale really varies


def test_augmented_masks_are_never_interpolated_even_when_upscaled() -> None:
    pytest.importorskip("tensorflow")
    from edgeseg.core.spec import ModelSpec
    from edgeseg.train.pipeline import augment_frame

    image, mask = _pair((64, 64))  # the model input is larger: the window is upscaled
    for resize in ("stretch", "letterbox"):
        spec = ModelSpec(
            input_height=96, input_width=128, class_names=("a", "b", "c"), resize=resize
        )  # type: ignore[arg-type]
        for seed in range(5):
            _, labels = augment_frame(image, mask, spec, np.random.default_rng(seed))
            allowed = {0, 2} if resize == "stretch" else {0, 2, 255}  # 255: letterbox padding
            assert set(np.unique(labels).tolist()) <= allowed


def test_weighted_cross_entropy_skips_ignored_pixels_and_weighs_by_class() -> None:
    pytest.importorskip("tensorflow")
    from edgeseg.train.losses import SegmentationLoss, masked_cross_entropy

    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, (2, 8, 8)).astype(np.uint8)
    probs = rng.dirichlet([1, 1, 1], (2, 8, 8)).astype(np.float32)
    weights = [0.5, 1.0, 3.0]
    picked = np.take_along_axis(probs, y[..., None].astype(np.int64), -1)[..., 0]
    w = np.array(weights)[y]
    want = float((w * -np.log(picked)).sum() / w.sum())
    assert float(masked_cross_entropy(y, probs, class_weights=weights)) == pytest.approx(want, 1e-5)
    ignored = y.copy()
    ignored[:, :3] = 255
    keep = ignored != 255
    want = float((w * -np.log(picked))[keep].sum() / w[keep].sum())
    got = SegmentationLoss("ce", class_weights=weights)(ignored, probs)
    assert float(got) == pytest.approx(want, 1e-5)
    assert float(masked_cross_entropy(np.full_like(y, 255), probs, class_weights=weights)) == 0.0
    loss = SegmentationLoss("ce+dice", class_weights=weights)
    assert SegmentationLoss.from_config(loss.get_config()).class_weights == weights
