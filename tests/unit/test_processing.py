"""The shared processing module against independently computed expectations (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeseg.core.processing import (
    Placement,
    class_map_from_output,
    class_map_to_frame,
    colorize,
    dequantize,
    draw_legend,
    normalize,
    overlay,
    placement_for,
    prepare_image,
    prepare_mask,
    quantize,
    read_image,
    to_input_tensor,
)
from edgeseg.core.spec import ModelSpec

NAMES = ("a", "b", "c")
PAL = ((255, 0, 0), (0, 255, 0), (0, 0, 255))  # RGB


def spec(h: int, w: int, **kw: object) -> ModelSpec:
    return ModelSpec(h, w, NAMES, palette=PAL, **kw)  # type: ignore[arg-type]


def upscale(a: np.ndarray, k: int) -> np.ndarray:
    return np.repeat(np.repeat(a, k, axis=0), k, axis=1)


@pytest.fixture
def mask() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 3, (32, 64)).astype(np.uint8)


# === Resize policies ===


def test_stretch_mask_round_trip_is_exact_for_integer_scale(mask: np.ndarray) -> None:
    s = spec(64, 128, resize="stretch")
    model_mask = prepare_mask(mask, s)
    assert np.array_equal(model_mask, upscale(mask, 2))
    placement = placement_for(mask.shape, s)
    assert placement == Placement(32, 64, 0, 0, 64, 128)
    assert np.array_equal(class_map_to_frame(model_mask, placement), mask)


def test_letterbox_wide_frame_pads_top_and_bottom(mask: np.ndarray) -> None:
    s = spec(128, 128, resize="letterbox")
    p = placement_for(mask.shape, s)
    # scale = min(128/32, 128/64) = 2 -> content 64x128 centred vertically
    assert (p.top, p.left, p.content_height, p.content_width) == (32, 0, 64, 128)
    model_mask = prepare_mask(mask, s)
    assert (model_mask[:32] == 255).all() and (model_mask[96:] == 255).all()
    assert np.array_equal(model_mask[32:96], upscale(mask, 2))
    assert np.array_equal(class_map_to_frame(model_mask, p), mask)


def test_letterbox_tall_frame_pads_left_and_right_and_image_fill_is_black() -> None:
    frame = np.full((60, 20, 3), 200, np.uint8)
    s = spec(120, 120, resize="letterbox")
    pixels, p = prepare_image(frame, s)
    assert (p.top, p.left, p.content_height, p.content_width) == (0, 40, 120, 40)
    assert pixels.shape == (120, 120, 3)
    assert (pixels[:, :40] == 0).all() and (pixels[:, 80:] == 0).all()
    assert (pixels[:, 40:80] == 200).all()
    cmap = np.zeros((120, 120), np.uint8)
    cmap[:, 40:80] = 2
    assert np.array_equal(class_map_to_frame(cmap, p), np.full((60, 20), 2, np.uint8))


def test_prepare_image_downscale_is_linear_up_to_3x_then_area() -> None:
    frame = np.random.default_rng(1).integers(0, 256, (96, 128, 3)).astype(np.uint8)
    pixels, _ = prepare_image(frame, spec(48, 64, color_order="bgr"))
    assert np.array_equal(pixels, cv2.resize(frame, (64, 48), interpolation=cv2.INTER_LINEAR))
    pixels, _ = prepare_image(frame, spec(24, 32, color_order="bgr"))  # 4x: averaging
    assert np.array_equal(pixels, cv2.resize(frame, (32, 24), interpolation=cv2.INTER_AREA))


# === Colour order and channels ===


def test_bgr_frame_becomes_rgb_or_stays_bgr() -> None:
    frame = np.zeros((4, 4, 3), np.uint8)
    frame[:] = (10, 20, 30)  # B, G, R
    rgb, _ = prepare_image(frame, spec(4, 4, color_order="rgb"))
    bgr, _ = prepare_image(frame, spec(4, 4, color_order="bgr"))
    assert rgb[0, 0].tolist() == [30, 20, 10]
    assert bgr[0, 0].tolist() == [10, 20, 30]


def test_gray_frame_is_replicated_to_three_channels() -> None:
    gray = np.arange(16, dtype=np.uint8).reshape(4, 4) * 10
    pixels, _ = prepare_image(gray, spec(4, 4))
    assert pixels.shape == (4, 4, 3)
    for c in range(3):
        assert np.array_equal(pixels[:, :, c], gray)


def test_single_channel_model_gets_luma_or_the_gray_frame_itself() -> None:
    frame = np.zeros((2, 2, 3), np.uint8)
    frame[:] = (200, 100, 50)  # B, G, R
    pixels, _ = prepare_image(frame, spec(2, 2, channels=1))
    assert pixels.shape == (2, 2, 1)
    luma = 0.299 * 50 + 0.587 * 100 + 0.114 * 200
    assert abs(int(pixels[0, 0, 0]) - luma) <= 1
    gray = np.full((2, 2), 77, np.uint8)
    assert np.array_equal(prepare_image(gray, spec(2, 2, channels=1))[0][:, :, 0], gray)


def test_normalize_maps_0_255_to_minus_one_one() -> None:
    out = normalize(np.array([0, 255], np.uint8), spec(2, 2))
    assert np.allclose(out, [-1.0, 1.0])


# === Quantisation ===


@pytest.mark.parametrize(
    ("dtype", "scale", "zp"), [(np.int8, 0.05, -3), (np.uint8, 0.02, 128), (np.int8, 1 / 256, -128)]
)
def test_quantize_dequantize_round_trip_within_half_a_step(
    dtype: type, scale: float, zp: int
) -> None:
    info = np.iinfo(dtype)
    lo, hi = (info.min - zp) * scale, (info.max - zp) * scale
    x = np.random.default_rng(2).uniform(lo, hi, 1000).astype(np.float32)
    q = quantize(x, scale, zp, dtype)
    assert q.dtype == dtype
    assert np.abs(dequantize(q, scale, zp) - x).max() <= scale / 2 + 1e-6
    assert quantize(np.float32([hi * 10]), scale, zp, dtype)[0] == info.max  # clipped, not wrapped


def test_dequantize_int8_negatives_do_not_wrap() -> None:
    q = np.array([-128, -1, 0, 127], np.int8)
    out = dequantize(q, 1 / 256, -128)
    assert np.allclose(out, [0.0, 127 / 256, 128 / 256, 255 / 256])


def test_uint8_unit_scale_input_passes_the_same_bytes() -> None:
    pixels = np.random.default_rng(3).integers(0, 256, (8, 8, 3)).astype(np.uint8)
    t = to_input_tensor(pixels, np.uint8, 1.0, 0)
    assert t.shape == (1, 8, 8, 3) and t.dtype == np.uint8
    assert np.shares_memory(t, pixels) and np.array_equal(t[0], pixels)


def test_general_input_quantisation() -> None:
    pixels = np.array([[[0, 1, 128, 255]]], np.uint8)
    int8 = to_input_tensor(pixels, np.int8, 1.0, -128)
    assert int8.dtype == np.int8 and int8[0].tolist() == [[[-128, -127, 0, 127]]]
    half = to_input_tensor(pixels, np.uint8, 2.0, 10)  # q = round(p / 2) + 10
    assert half[0].tolist() == [[[10, 10, 74, 138]]] and not np.shares_memory(half, pixels)
    f = to_input_tensor(pixels, np.float32, 0.0, 0)
    assert f.dtype == np.float32 and f[0].tolist() == [[[0.0, 1.0, 128.0, 255.0]]]


# === Output -> class map ===


@pytest.mark.parametrize(("scale", "zp"), [(1 / 256, -128), (0.1, 5), (0.02, -30)])
def test_int8_argmax_equals_argmax_of_dequantised(scale: float, zp: int) -> None:
    raw = np.random.default_rng(4).integers(-128, 128, (1, 16, 16, 5)).astype(np.int8)
    expected = np.argmax(dequantize(raw[0], scale, zp), axis=2)
    got = class_map_from_output(raw, "softmax", scale, zp)
    assert got.dtype == np.uint8 and np.array_equal(got, expected)


def test_int8_argmax_is_signed() -> None:
    raw = np.array([[[100, -5]]], np.int8)  # -5 would look like 251 if wrapped to uint8
    assert class_map_from_output(raw, "softmax", 1 / 256, -128)[0, 0] == 0


@pytest.mark.parametrize(
    ("dtype", "scale", "zp"), [(np.int8, 1 / 256, -128), (np.uint8, 1 / 255, 0)]
)
def test_sigmoid_threshold_on_quantised_scale(dtype: type, scale: float, zp: int) -> None:
    info = np.iinfo(dtype)
    raw = np.arange(info.min, info.max + 1).astype(dtype).reshape(16, 16, 1)
    expected = dequantize(raw[:, :, 0], scale, zp) > 0.5
    got = class_map_from_output(raw, "sigmoid", scale, zp)
    assert np.array_equal(got, expected.astype(np.uint8))
    assert 0 < got.sum() < got.size


def test_float_sigmoid_threshold() -> None:
    out = np.array([[[0.2], [0.7]]], np.float32)
    assert class_map_from_output(out, "sigmoid").tolist() == [[0, 1]]


# === Colour ===


def test_colorize_and_overlay_use_palette_colours() -> None:
    cmap = np.array([[0, 1], [2, 0]], np.uint8)
    color = colorize(cmap, PAL)
    assert color[0, 0].tolist() == [0, 0, 255]  # RGB red -> BGR
    assert color[0, 1].tolist() == [0, 255, 0]
    assert color[1, 0].tolist() == [255, 0, 0]
    frame = np.full((2, 2, 3), 100, np.uint8)
    assert np.array_equal(overlay(frame, cmap, PAL, alpha=1.0), color)
    assert np.array_equal(overlay(frame, cmap, PAL, alpha=0.0), frame)
    half = overlay(frame[:, :, 0], cmap, PAL, alpha=0.5)  # gray frames work too
    assert np.abs(half.astype(int) - (color.astype(int) + 100) / 2).max() <= 1


def test_draw_legend_draws_swatches_in_place() -> None:
    img = np.zeros((240, 320, 3), np.uint8)
    out = draw_legend(img, NAMES, PAL)
    assert out is img
    flat = img.reshape(-1, 3)
    for rgb in PAL:
        assert (flat == rgb[::-1]).all(axis=1).any()


def test_no_legend_on_a_frame_it_would_mostly_cover() -> None:
    """A 64x64 frame used to be mostly hidden under its own legend; 160 px and up keep it."""
    small = np.full((64, 64, 3), 7, np.uint8)
    assert (draw_legend(small, NAMES, PAL) == 7).all()
    large = np.full((160, 200, 3), 7, np.uint8)
    draw_legend(large, NAMES, PAL)
    assert (large != 7).any() and (large == 7).mean() > 0.6


# === Reading ===


def test_read_image_scales_16_bit_and_drops_alpha(tmp_path: Path) -> None:
    deep = np.array([[0, 256, 65535]], np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    assert read_image(tmp_path / "deep.png").tolist() == [[0, 1, 255]]
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[:] = (1, 2, 3, 4)
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    img = read_image(tmp_path / "rgba.png")
    assert img.shape == (2, 2, 3) and img[0, 0].tolist() == [1, 2, 3]
