"""U-Net builder, masked losses and the tf.data pipeline (augmentation never invents labels)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from edgeseg.core.spec import ModelSpec  # noqa: E402
from edgeseg.data.dataset import open_dataset  # noqa: E402
from edgeseg.train.losses import (  # noqa: E402
    FOCAL_GAMMA,
    OHEM_MIN_KEPT,
    SegmentationLoss,
    masked_cross_entropy,
    masked_dice,
    masked_lovasz,
)
from edgeseg.train.model import build_unet  # noqa: E402
from edgeseg.train.pipeline import eval_dataset, load_prepared, train_dataset  # noqa: E402

LABEL_GRAY = (40, 130, 220)  # image intensity of each class in the toy dataset


def _toy_dataset(root: Path, count: int = 6, hw: tuple[int, int] = (48, 64)) -> Path:
    """Index masks with 3 classes; each class has its own gray level in the image."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for i in range(count if split == "train" else 2):
            mask = np.zeros(hw, np.uint8)
            y, x = rng.integers(0, hw[0] // 2), rng.integers(0, hw[1] // 2)
            mask[y : y + hw[0] // 2, x : x + hw[1] // 2] = 1
            mask[: hw[0] // 6, :] = 2
            image = np.array(LABEL_GRAY, np.uint8)[mask]
            cv2.imwrite(str(root / split / "images" / f"{i}.png"), image)
            cv2.imwrite(str(root / split / "masks" / f"{i}.png"), mask)
    (root / "labels.txt").write_text("bg\nbox\ntop\n")
    return root


@pytest.mark.parametrize("upsample", ["transpose", "resize"])
def test_both_decoders_build_and_train_one_step(upsample: str) -> None:
    model = build_unet((32, 32, 3), 3, depth=2, base_filters=4, upsample=upsample)
    assert model.output_shape == (None, 32, 32, 3)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=SegmentationLoss("ce"))
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    y = (x[..., 0] > 127).astype(np.uint8)
    before = [w.copy() for w in model.get_weights()]
    loss = float(model.train_on_batch(x, y))
    assert np.isfinite(loss) and loss > 0
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    probs = model.predict(x, verbose=0)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-4)


def test_size_not_divisible_by_depth_is_rejected() -> None:
    with pytest.raises(ValueError, match="divisible"):
        build_unet((40, 40, 3), 2, depth=4)


def _probs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    p = rng.uniform(0.05, 1, shape).astype(np.float32)
    return p / p.sum(-1, keepdims=True)


def test_cross_entropy_ignores_255_and_matches_keras_elsewhere() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, (2, 8, 8)).astype(np.uint8)
    p = _probs(rng, (2, 8, 8, 3))
    y_ignored = y.copy()
    y_ignored[:, :4] = 255
    valid = y_ignored != 255
    expected = keras.losses.sparse_categorical_crossentropy(y[valid], p[valid]).numpy().mean()
    assert float(masked_cross_entropy(y_ignored, p)) == pytest.approx(expected, rel=1e-5)
    # predictions under ignored pixels do not matter at all
    p2 = p.copy()
    p2[:, :4] = _probs(rng, p2[:, :4].shape)
    assert float(masked_cross_entropy(y_ignored, p2)) == pytest.approx(expected, rel=1e-5)
    # an all-ignored batch gives 0, not NaN
    assert float(masked_cross_entropy(np.full_like(y, 255), p)) == 0.0


def _jaccard_steps(fg: np.ndarray, err: np.ndarray) -> np.ndarray:
    """Each pixel's Jaccard increment in the paper's sort (Berman et al. 2018, Algorithm 1):
    errors in decreasing order, the i-th gets the loss's increase at position i; returned in the
    pixels' own order."""
    order = np.argsort(-err, kind="stable")
    f = fg[order]
    jaccard = 1 - (f.sum() - np.cumsum(f)) / (f.sum() + np.cumsum(1 - f))
    steps = np.empty_like(err)
    steps[order] = np.diff(jaccard, prepend=0.0)
    return steps


def _lovasz_reference(labels: np.ndarray, probs: np.ndarray) -> float:
    """Lovasz-softmax over the scored pixels, classes present, written from Berman et al. 2018
    (Algorithm 1 and the Jaccard loss's gradient), one class at a time."""
    scored = labels.ravel() != 255
    lab, pr = labels.ravel()[scored], probs.reshape(-1, probs.shape[-1])[scored]
    losses = []
    for c in range(pr.shape[1]):
        fg = (lab == c).astype(np.float64)
        if fg.sum():
            err = np.abs(fg - pr[:, c])
            losses.append(float(err @ _jaccard_steps(fg, err)))
    return float(np.mean(losses))


def test_lovasz_matches_the_paper_skips_255_and_is_zero_when_perfect() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, (2, 6, 7)).astype(np.uint8)
    y[y == 3] = 1  # class 3 absent: not averaged in
    y[0, :2] = 255
    p = _probs(rng, (2, 6, 7, 4))
    assert float(masked_lovasz(y, p)) == pytest.approx(_lovasz_reference(y, p), rel=1e-5)
    p2 = p.copy()
    p2[0, :2] = _probs(rng, p2[0, :2].shape)  # predictions under ignored pixels do not matter
    assert float(masked_lovasz(y, p2)) == pytest.approx(float(masked_lovasz(y, p)), rel=1e-6)
    perfect = np.eye(4, dtype=np.float32)[np.where(y == 255, 0, y)]
    assert float(masked_lovasz(y, perfect)) == pytest.approx(0.0, abs=1e-6)
    both = SegmentationLoss("ce+lovasz")(y, p)
    assert float(both) == pytest.approx(
        float(masked_cross_entropy(y, p)) + float(masked_lovasz(y, p)), rel=1e-5
    )


def _lovasz_reference_gradient(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """d Lovasz / d probs with the paper's sort: pixel i of class c's sorted errors gets the
    Jaccard increment of position i, signed by d|fg - p| / dp."""
    flat_lab, flat_pr = labels.ravel(), probs.reshape(-1, probs.shape[-1]).astype(np.float64)
    scored = flat_lab != 255
    grad = np.zeros_like(flat_pr)
    present = [c for c in range(flat_pr.shape[1]) if (flat_lab[scored] == c).any()]
    for c in present:
        fg = (flat_lab[scored] == c).astype(np.float64)
        steps = _jaccard_steps(fg, np.abs(fg - flat_pr[scored, c]))
        grad[np.flatnonzero(scored), c] = steps * np.where(fg > 0, -1.0, 1.0) / len(present)
    return grad.reshape(probs.shape)


def test_lovasz_error_bins_give_the_sorted_gradient() -> None:
    """The binned Lovasz (no sort) must steer training as the paper's sorted one does: on
    confident, partly wrong predictions (many pixels share a bin at the low-error end) its
    gradient points the same way, with the same size, and the loss is the same."""
    import tensorflow as tf

    rng = np.random.default_rng(5)
    y = rng.integers(0, 5, (2, 48, 64)).astype(np.uint8)
    noisy = np.where(rng.random(y.shape) < 0.2, rng.integers(0, 5, y.shape), y)
    y[1, :6] = 255
    logits = 6.0 * np.eye(5)[noisy] + rng.normal(0, 1.0, (*y.shape, 5))
    p = tf.nn.softmax(logits.astype(np.float32)).numpy()
    want = _lovasz_reference_gradient(y, p)
    cosines = {}
    for bins in (1024, 16):
        probs = tf.constant(p)
        with tf.GradientTape() as tape:
            tape.watch(probs)
            loss = masked_lovasz(y, probs, bins=bins)
        got = tape.gradient(loss, probs).numpy().astype(np.float64)
        cosines[bins] = float((got * want).sum() / np.linalg.norm(got) / np.linalg.norm(want))
        if bins == 1024:  # the default
            assert np.linalg.norm(got) == pytest.approx(np.linalg.norm(want), rel=1e-2)
            assert float(loss) == pytest.approx(_lovasz_reference(y, p), rel=1e-3)
            assert not got[1, :6].any()  # ignored pixels get no gradient
    assert cosines[1024] > 0.9999
    assert cosines[16] < 0.99  # coarse bins are not the sort: the comparison can tell


def test_dice_ignores_255_and_is_zero_for_a_perfect_prediction() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, (2, 8, 8)).astype(np.uint8)
    perfect = np.eye(3, dtype=np.float32)[y]
    assert float(masked_dice(y, perfect)) == pytest.approx(0.0, abs=1e-3)
    y_ignored = y.copy()
    y_ignored[:, :4] = 255
    wrong_where_ignored = perfect.copy()
    wrong_where_ignored[:, :4] = np.roll(perfect[:, :4], 1, axis=-1)
    assert float(masked_dice(y_ignored, wrong_where_ignored)) == pytest.approx(0.0, abs=1e-3)
    assert float(masked_dice(y, wrong_where_ignored)) > 0.2
    both = SegmentationLoss("ce+dice")(y_ignored, wrong_where_ignored)
    assert float(both) == pytest.approx(float(masked_cross_entropy(y_ignored, perfect)), abs=1e-3)


def test_unknown_loss_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="ohem\\+dice"):
        SegmentationLoss("tversky")


def _two_pixel_kinds(easy: float, hard: float) -> tuple[np.ndarray, np.ndarray]:
    """Labels all 0 over a 2x8x8 batch; the true class gets `easy` on the left half of every
    image and `hard` on the right half; one ignored row holding a near-zero probability."""
    y = np.zeros((2, 8, 8), np.uint8)
    p = np.empty((2, 8, 8, 2), np.float32)
    p[..., :4, 0], p[..., 4:, 0] = easy, hard
    p[..., 1] = 1.0 - p[..., 0]
    y[:, 0], p[:, 0, :, 0], p[:, 0, :, 1] = 255, 0.01, 0.99  # ignored: never the hardest pixel
    return y, p


def test_focal_loss_is_cross_entropy_times_one_minus_p_to_the_gamma() -> None:
    y, p = _two_pixel_kinds(0.9, 0.2)
    want = np.mean([-np.log(0.9) * 0.1**FOCAL_GAMMA, -np.log(0.2) * 0.8**FOCAL_GAMMA])
    got = masked_cross_entropy(y, p, gamma=FOCAL_GAMMA)
    assert float(got) == pytest.approx(want, rel=1e-4)
    # confident right pixels lose almost all their weight (x0.01), hard ones keep most (x0.64)
    easy, p_easy = _two_pixel_kinds(0.9, 0.9)
    ratio = masked_cross_entropy(easy, p_easy, gamma=2.0) / masked_cross_entropy(easy, p_easy)
    assert float(ratio) == pytest.approx(0.01, rel=1e-3)


def test_ohem_scores_only_pixels_below_the_threshold() -> None:
    y, p = _two_pixel_kinds(0.95, 0.2)  # half of the pixels hard: more than OHEM_MIN_KEPT
    assert float(masked_cross_entropy(y, p, ohem=True)) == pytest.approx(-np.log(0.2), rel=1e-4)
    weighted = masked_cross_entropy(y, p, class_weights=[2.0, 1.0], ohem=True)
    assert float(weighted) == pytest.approx(-np.log(0.2), rel=1e-4)  # a weighted mean


def test_ohem_keeps_the_hardest_share_when_few_pixels_are_hard() -> None:
    y, p = _two_pixel_kinds(0.95, 0.9)  # every pixel above the threshold
    p[:, 5, :, 0] = np.linspace(0.75, 0.85, 8)  # the 8 hardest of each image's 56 scored ones
    p[..., 1] = 1.0 - p[..., 0]
    p[:, 0, :, 0], p[:, 0, :, 1] = 0.01, 0.99
    kept = int(64 * OHEM_MIN_KEPT)
    assert kept == 8
    want = -np.log(np.linspace(0.75, 0.85, 8)).mean()
    assert float(masked_cross_entropy(y, p, ohem=True)) == pytest.approx(want, rel=1e-4)


@pytest.mark.parametrize("kind", ["focal+dice", "ohem+dice", "ce+lovasz"])
def test_focal_ohem_and_lovasz_losses_train_in_a_compiled_model(kind: str) -> None:
    model = build_unet((32, 32, 3), 3, depth=2, base_filters=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=SegmentationLoss(kind))
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    y = (x[..., 0] > 127).astype(np.uint8)
    y[:, :2] = 255
    history = model.fit(x, y, batch_size=2, epochs=3, verbose=0).history["loss"]
    assert all(np.isfinite(history)) and history[-1] < history[0]


def test_pipeline_without_augmentation_feeds_exactly_the_shared_preprocessing(
    tmp_path: Path,
) -> None:
    ds = open_dataset(_toy_dataset(tmp_path))
    spec = ModelSpec(
        input_height=32, input_width=32, class_names=ds.class_names, resize="letterbox"
    )
    batches = list(eval_dataset(ds, spec, batch=2))
    pixels = np.concatenate([p.numpy() for p, _ in batches])
    masks = np.concatenate([m.numpy() for _, m in batches])
    for i, sample in enumerate(ds.val):
        want_px, want_mask = load_prepared(ds, sample, spec)
        np.testing.assert_array_equal(pixels[i], want_px.astype(np.float32))
        np.testing.assert_array_equal(masks[i], want_mask)
    assert 255 in masks  # letterbox padding is ignored, not background


def test_augmentation_keeps_masks_integer_and_aligned_with_images(tmp_path: Path) -> None:
    ds = open_dataset(_toy_dataset(tmp_path))
    spec = ModelSpec(input_height=32, input_width=48, class_names=ds.class_names)
    originals = [load_prepared(ds, s, spec) for s in ds.train]
    d = train_dataset(ds, spec, batch=3, seed=3, augment=True)
    changed = False
    for pixels, masks in d.take(8):
        pixels, masks = pixels.numpy(), masks.numpy()
        assert masks.dtype == np.uint8 and pixels.dtype == np.float32
        assert set(np.unique(masks).tolist()) <= {0, 1, 2}
        assert pixels.min() >= 0 and pixels.max() <= 255
        for px, m in zip(pixels, masks, strict=True):
            changed |= not any(np.array_equal(m, o[1]) for o in originals)
            # the mask moved with the image: away from class borders (where the image, not the
            # mask, is interpolated) each class keeps its own gray level, in the original order
            eroded = [cv2.erode((m == k).astype(np.uint8), np.ones((5, 5))) for k in range(3)]
            levels = [np.median(px[..., 0][e > 0]) for e in eroded if e.sum() > 10]
            assert np.all(np.diff(levels) > 30)  # interiors of the classes are clearly apart
    assert changed  # augmentation did something
