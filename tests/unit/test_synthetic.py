"""The synthetic generator: deterministic, in the standard layout, every class present, atomic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeseg.core.errors import DatasetError
from edgeseg.data.dataset import open_dataset
from edgeseg.data.synthetic import (
    CLASS_NAMES,
    PALETTE,
    generate_frames,
    generate_synthetic_dataset,
    render_sample,
    write_calibration_frames,
)

SIZE = (64, 80)


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "data"
    return generate_synthetic_dataset(out, count_train=6, count_val=3, size=SIZE, seed=5)


def test_constants() -> None:
    assert len(CLASS_NAMES) == len(PALETTE) >= 4
    assert len(set(PALETTE)) == len(PALETTE)


def test_render_is_deterministic_per_seed_and_index() -> None:
    a, b = render_sample(0, 3, SIZE), render_sample(0, 3, SIZE)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], render_sample(1, 3, SIZE)[0])
    assert not np.array_equal(a[1], render_sample(0, 4, SIZE)[1])


def test_layout_is_accepted_and_every_class_appears_in_every_image(synth: Path) -> None:
    ds = open_dataset(synth)  # validates every pair: sizes match, values < 5
    assert ds.class_names == CLASS_NAMES and ds.encoding == "index"
    assert len(ds.train) == 6 and len(ds.val) == 3
    for s, image, mask in ds.iter_split("all"):
        assert image.shape == (*SIZE, 3) and image.dtype == np.uint8, s.image
        assert mask.dtype == np.uint8 and mask.max() < len(CLASS_NAMES), s.mask
        assert set(np.unique(mask).tolist()) == set(range(len(CLASS_NAMES))), s.mask
    assert (synth / "synthetic.json").is_file()
    assert not list(synth.parent.glob(".data.*")), "no temp folders left behind"


def test_dataset_files_are_reproducible(synth: Path, tmp_path: Path) -> None:
    again = generate_synthetic_dataset(
        tmp_path / "d", count_train=6, count_val=3, size=SIZE, seed=5
    )
    for name in ("train/images/train_0002.jpg", "val/masks/val_0001.png", "labels.txt"):
        assert (synth / name).read_bytes() == (again / name).read_bytes(), name


def test_interrupted_generation_leaves_nothing(tmp_path: Path) -> None:
    def stop(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_synthetic_dataset(
            tmp_path / "d", count_train=5, count_val=2, size=SIZE, progress=stop
        )
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_needs_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "d"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(DatasetError, match=f"{out}: already exists"):
        generate_synthetic_dataset(out, count_train=1, count_val=1, size=SIZE)
    assert (out / "keep.txt").exists()
    generate_synthetic_dataset(out, count_train=1, count_val=1, size=SIZE, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "labels.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_bad_arguments() -> None:
    with pytest.raises(DatasetError, match="image format"):
        generate_synthetic_dataset("x", image_format="gif")
    with pytest.raises(DatasetError, match="at least 32x32"):
        generate_synthetic_dataset("x", size=(16, 64))


def test_frames_form_a_coherent_video() -> None:
    frames = list(generate_frames(12, (48, 64), seed=2))
    assert len(frames) == 12
    for image, mask in frames:
        assert image.shape == (48, 64, 3) and image.dtype == np.uint8
        assert mask.shape == (48, 64) and mask.max() < len(CLASS_NAMES)
    step = np.mean([np.mean(frames[i][1] != frames[i + 1][1]) for i in range(11)])
    other = np.mean(frames[0][1] != render_sample(2, 0, (48, 64))[1])
    assert step < other / 3, "consecutive frames should be far closer than unrelated scenes"
    again = next(generate_frames(1, (48, 64), seed=2))
    assert np.array_equal(again[0], next(generate_frames(1, (48, 64), seed=2))[0])


def test_calibration_frames(tmp_path: Path) -> None:
    (tmp_path / "calib_099.jpg").write_bytes(b"stale")
    paths = write_calibration_frames(tmp_path, count=3, size=(64, 64))
    assert [p.name for p in paths] == ["calib_000.jpg", "calib_001.jpg", "calib_002.jpg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in paths]
