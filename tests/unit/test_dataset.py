"""Dataset discovery on real PNG/JPEG files written here: every mask encoding, both class-name
files, both split styles, and every kind of bad input (typed error, one line, offending path named).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from edgeseg.convert.calibration import find_calibration_images
from edgeseg.core.errors import DatasetError
from edgeseg.data.dataset import open_dataset
from edgeseg.eval.common import open_eval_data

RNG = np.random.default_rng(0)


def write_pair(
    root: Path,
    stem: str,
    mask: np.ndarray,
    *,
    split: str | None = "train",
    image: np.ndarray | None = None,
    ext: str = ".png",
) -> tuple[Path, Path]:
    """Write an image (random colour unless given) and a mask file; masks go through OpenCV."""
    folder = root / split if split else root
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    if image is None:
        image = RNG.integers(0, 256, (*mask.shape[:2], 3)).astype(np.uint8)
    img_path, mask_path = folder / "images" / f"{stem}{ext}", folder / "masks" / f"{stem}.png"
    assert cv2.imwrite(str(img_path), image) and cv2.imwrite(str(mask_path), mask)
    return img_path, mask_path


def labels(root: Path, *names: str) -> Path:
    path = root / "labels.txt"
    path.write_text("\n".join(names) + "\n")
    return path


def index_mask(h: int = 12, w: int = 16, classes: int = 3) -> np.ndarray:
    return RNG.integers(0, classes, (h, w)).astype(np.uint8)


def voc_colormap() -> np.ndarray:
    """Pascal VOC's palette, written out independently of edgeseg's default_palette."""
    cmap = np.zeros((256, 3), np.uint8)
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def raises(root_or_path: Path, match: str, **kw: object) -> DatasetError:
    """open_dataset(...) must fail with a one-line DatasetError matching `match`."""
    with pytest.raises(DatasetError, match=match) as info:
        open_dataset(root_or_path, **kw)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    return info.value


# === Encodings ===


def test_index_masks_with_ignore(tmp_path: Path) -> None:
    labels(tmp_path, "a", "b", "c")
    m = index_mask()
    m[0, :] = 255
    write_pair(tmp_path, "x", m)
    write_pair(tmp_path, "y", index_mask(), split="val")
    ds = open_dataset(tmp_path)
    assert ds.encoding == "index" and ds.class_names == ("a", "b", "c")
    assert [s.stem for s in ds.train] == ["x"] and [s.stem for s in ds.val] == ["y"]
    image, mask = ds.load(ds.train[0])
    assert image.shape == (12, 16, 3) and np.array_equal(mask, m)


def test_ignore_class_void_last_as_camvid_labels_it(tmp_path: Path) -> None:
    """CamVid's 11 classes + 'void' (id 11): the void pixels become 255, the model gets 11."""
    names = [f"c{i}" for i in range(11)]
    labels(tmp_path, *names, "void")
    m = index_mask(classes=12)
    write_pair(tmp_path, "x", m)
    write_pair(tmp_path, "y", index_mask(classes=12), split="val")
    ds = open_dataset(tmp_path, ignore_classes=["void"])
    assert ds.class_names == tuple(names) and ds.ignored == ("void",)
    _, mask = ds.load(ds.train[0])
    assert np.array_equal(mask, np.where(m == 11, 255, m))
    assert np.array_equal(ds.read_mask(ds.train[0]), mask)


def test_ignore_class_in_the_middle_of_colour_masks_renumbers_the_rest(tmp_path: Path) -> None:
    """An 'unlabelled' colour between real classes: later classes move down one id."""
    (tmp_path / "classes.csv").write_text(
        "name,r,g,b\nsky,0,0,255\nunlabelled,0,0,0\nroad,128,64,128\ncar,255,0,0\n"
    )
    idx = index_mask(classes=4)
    rgb = np.array([(0, 0, 255), (0, 0, 0), (128, 64, 128), (255, 0, 0)], np.uint8)[idx]
    write_pair(tmp_path, "a", rgb[:, :, ::-1].copy())
    ds = open_dataset(tmp_path, val_fraction=0, ignore_classes=("unlabelled",))
    assert ds.class_names == ("sky", "road", "car")
    expected = np.array([0, 255, 1, 2], np.uint8)[idx]
    assert np.array_equal(ds.load(ds.train[0])[1], expected)
    # the model's overlays use the data's own colours, for the classes it keeps
    assert ds.palette() == ((0, 0, 255), (128, 64, 128), (255, 0, 0))


def test_ignore_class_matches_the_listed_name_in_any_case(tmp_path: Path) -> None:
    """SegNet's CamVid lists 'Void': `--ignore-class void` (as the README's benchmark command
    types it) leaves it out under its listed name; two names equal but for case need the exact
    one."""
    from edgeseg.data.dataset import match_class_names

    labels(tmp_path, "Sky", "Road", "Void")
    write_pair(tmp_path, "a", index_mask(classes=3))
    ds = open_dataset(tmp_path, val_fraction=0, ignore_classes=["void"])
    assert ds.class_names == ("Sky", "Road") and ds.ignored == ("Void",)
    assert match_class_names(["VOID", "sky"], ["Sky", "Void"]) == (("Void", "Sky"), [])
    assert match_class_names(["void"], ["Void", "VOID"]) == ((), ["void"])
    assert match_class_names(["Void"], ["Void", "VOID"]) == (("Void",), [])


def test_ignore_class_keeps_catching_values_beyond_the_listed_classes(tmp_path: Path) -> None:
    names_file = labels(tmp_path, "a", "b", "void")
    m = index_mask()
    m[2, 2] = 3  # one past the listed classes (void included)
    _, mask = write_pair(tmp_path, "x", m)
    with pytest.raises(DatasetError, match=r"values \[3\] are >= the number of classes \(3 ") as e:
        open_dataset(tmp_path, val_fraction=0, ignore_classes=["void"])
    assert str(mask) in str(e.value) and str(names_file) in str(e.value)


@pytest.mark.parametrize(
    ("ignored", "message"),
    [
        (["sky"], r"--ignore-class sky: not a class in .*labels.txt; its classes are a, b, void"),
        (["a", "void"], r"leaves 1 of the 3 classes .*at least 2"),
    ],
)
def test_ignore_class_errors_name_the_option(
    tmp_path: Path, ignored: list[str], message: str
) -> None:
    labels(tmp_path, "a", "b", "void")
    write_pair(tmp_path, "x", index_mask())
    with pytest.raises(DatasetError, match=message):
        open_dataset(tmp_path, val_fraction=0, ignore_classes=ignored)


def test_binary_0_255_masks_become_0_1(tmp_path: Path) -> None:
    labels(tmp_path, "background", "object")
    m = (RNG.random((10, 10)) > 0.5).astype(np.uint8) * 255
    write_pair(tmp_path, "a", m)
    write_pair(tmp_path, "b", np.zeros((10, 10), np.uint8))
    ds = open_dataset(tmp_path, val_fraction=0)
    assert ds.encoding == "binary"
    assert np.array_equal(ds.load(ds.train[0])[1], (m == 255).astype(np.uint8))


def test_colour_masks_via_classes_csv(tmp_path: Path) -> None:
    (tmp_path / "classes.csv").write_text("name,r,g,b\nsky,0,0,255\nroad,128,64,128\ncar,255,0,0\n")
    idx = index_mask()
    rgb = np.array([(0, 0, 255), (128, 64, 128), (255, 0, 0)], np.uint8)[idx]
    write_pair(tmp_path, "a", rgb[:, :, ::-1].copy())  # OpenCV writes BGR
    ds = open_dataset(tmp_path)
    assert ds.encoding == "rgb" and ds.class_names == ("sky", "road", "car")
    assert ds.names_source.endswith("classes.csv")
    assert np.array_equal(ds.load(ds.train[0])[1], idx)


def test_class_files_that_disagree_are_refused_naming_both(tmp_path: Path) -> None:
    """classes.csv used to win over a labels.txt beside it without a word, so a user who edited
    labels.txt trained with the names they had replaced; files that agree are fine."""
    (tmp_path / "classes.csv").write_text("name,r,g,b\nsky,0,0,255\nroad,128,64,128\n")
    labels(tmp_path, "sky", "road")
    rgb = np.array([(0, 0, 255), (128, 64, 128)], np.uint8)[index_mask(classes=2)]
    write_pair(tmp_path, "a", rgb[:, :, ::-1].copy())
    assert open_dataset(tmp_path).class_names == ("sky", "road")
    labels(tmp_path, "sky", "street")
    raises(
        tmp_path,
        r"classes\.csv and labels\.txt name different classes \(sky, road against sky, street\)",
    )


FACADE = np.array([(0, 0, 0), (128, 0, 0), (128, 0, 128), (0, 128, 128)], np.uint8)


def facade_csv(root: Path) -> None:
    rows = "".join(f"c{i},{r},{g},{b}\n" for i, (r, g, b) in enumerate(FACADE))
    (root / "classes.csv").write_text("name,r,g,b\n" + rows)


def test_rgba_colour_masks_ignore_alpha(tmp_path: Path) -> None:
    """RGBA masks written by PIL (as annotation tools save them): alpha varies and is ignored."""
    facade_csv(tmp_path)
    idx = index_mask(classes=4)
    rgba = np.dstack([FACADE[idx], RNG.integers(0, 256, idx.shape).astype(np.uint8)])
    _, mask_path = write_pair(tmp_path, "a", np.zeros(idx.shape, np.uint8))
    Image.fromarray(rgba, "RGBA").save(mask_path)
    ds = open_dataset(tmp_path)
    assert ds.encoding == "rgb"
    assert np.array_equal(ds.load(ds.train[0])[1], idx)


def test_16_bit_rgba_colour_masks_as_labelmefacade_ships_them(tmp_path: Path) -> None:
    """16 bits per channel, each 8-bit colour stored as v * 257, alpha 65535."""
    facade_csv(tmp_path)
    idx = index_mask(classes=4)
    bgra = np.dstack([FACADE[idx][:, :, ::-1], np.full(idx.shape, 255, np.uint8)])
    write_pair(tmp_path, "a", bgra.astype(np.uint16) * 257)
    ds = open_dataset(tmp_path)
    assert cv2.imread(str(ds.train[0].mask), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert np.array_equal(ds.load(ds.train[0])[1], idx)


def test_unknown_colour_in_16_bit_rgba_mask_is_printed_as_rrggbb(tmp_path: Path) -> None:
    facade_csv(tmp_path)
    bgra = np.zeros((8, 8, 4), np.uint16)
    bgra[..., 3] = 65535
    bgra[1, 1, :3] = (0 * 257, 64 * 257, 128 * 257)  # BGR -> RGB #804000
    _, mask = write_pair(tmp_path, "x", bgra)
    err = raises(tmp_path, f"{mask}: mask colour.*#804000.*classes.csv")
    assert "#-" not in str(err)


def test_16_bit_index_masks_whose_values_fit(tmp_path: Path) -> None:
    labels(tmp_path, "a", "b", "c")
    m = index_mask()
    m[0, 0] = 255
    write_pair(tmp_path, "x", m.astype(np.uint16))
    write_pair(tmp_path, "y", index_mask().astype(np.uint16), split="val")
    ds = open_dataset(tmp_path)
    assert ds.encoding == "index"
    assert np.array_equal(ds.load(ds.train[0])[1], m)


def test_16_bit_binary_masks_0_65535(tmp_path: Path) -> None:
    labels(tmp_path, "background", "object")
    m = (RNG.random((10, 10)) > 0.5).astype(np.uint16) * 65535
    write_pair(tmp_path, "a", m)
    write_pair(tmp_path, "b", np.zeros((10, 10), np.uint16))
    ds = open_dataset(tmp_path, val_fraction=0)
    assert ds.encoding == "binary"
    assert np.array_equal(ds.load(ds.train[0])[1], (m > 0).astype(np.uint8))


def test_16_bit_index_mask_values_that_do_not_fit_name_the_file(tmp_path: Path) -> None:
    labels(tmp_path, "a", "b")
    m = np.zeros((8, 8), np.uint16)
    m[0, 0] = 300
    _, mask = write_pair(tmp_path, "x", m)
    raises(tmp_path, f"{mask}: 16-bit mask holds values up to 300, which do not fit 8 bits")


def test_palette_masks_as_pascal_voc_ships_them(tmp_path: Path) -> None:
    labels(tmp_path, "background", "aeroplane", "bicycle")
    idx = index_mask()
    idx[-1, :] = 255  # VOC's object border (ignored)
    write_pair(tmp_path, "a", idx)  # placeholder mask, replaced by a real 'P' PNG below
    pal = Image.frombytes("P", (idx.shape[1], idx.shape[0]), idx.tobytes())
    pal.putpalette(voc_colormap().ravel().tolist())
    pal.save(tmp_path / "train" / "masks" / "a.png")
    assert Image.open(tmp_path / "train" / "masks" / "a.png").mode == "P"
    ds = open_dataset(tmp_path)
    assert ds.encoding == "palette"
    assert np.array_equal(ds.load(ds.train[0])[1], idx)
    assert ds.palette() == tuple(tuple(int(v) for v in c) for c in voc_colormap()[:3])


def test_a_palette_that_repeats_a_colour_keeps_its_classes_apart(tmp_path: Path) -> None:
    """The palette index is the class: a palette giving two classes one colour (black for 0
    and 2) used to merge class 2 into class 0 without a word."""
    labels(tmp_path, "a", "b", "c")
    idx = index_mask()
    _, mask_path = write_pair(tmp_path, "a", idx)
    pal = Image.frombytes("P", (idx.shape[1], idx.shape[0]), idx.tobytes())
    pal.putpalette([0, 0, 0, 200, 10, 10, 0, 0, 0])
    pal.save(mask_path)
    ds = open_dataset(tmp_path)
    assert ds.encoding == "palette"
    assert np.array_equal(ds.load(ds.train[0])[1], idx)


def test_palette_and_gray_masks_mixed_are_refused_naming_one_of_each(tmp_path: Path) -> None:
    labels(tmp_path, "a", "b", "c")
    write_pair(tmp_path, "a", index_mask())
    idx = index_mask()
    _, mask_path = write_pair(tmp_path, "b", idx)
    pal = Image.frombytes("P", (idx.shape[1], idx.shape[0]), idx.tobytes())
    pal.putpalette([0, 0, 0, 200, 10, 10, 10, 200, 10])
    pal.save(mask_path)
    raises(tmp_path, r"masks mix palette PNGs \(.*b\.png\) and others \(.*a\.png\): save every")


def test_phone_photos_are_read_upright_as_their_exif_orientation_says(tmp_path: Path) -> None:
    """A phone stores a portrait photo landscape plus an EXIF tag; labelling tools (and
    cv2.imread) show it upright, so its mask is drawn upright. It used to be read sideways:
    'mask is 96x128 but image is 128x96', or on square photos a silently misaligned mask."""
    labels(tmp_path, "sky", "ground")
    upright = np.zeros((48, 32, 3), np.uint8)
    upright[:12] = 255  # white sky at the top of the upright photo
    mask = np.zeros((48, 32), np.uint8)
    mask[12:] = 1
    img_path, _ = write_pair(tmp_path, "IMG_0001", mask, ext=".jpg")
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1)))  # as the phone stores it
    exif = stored.getexif()
    exif[0x0112] = 6  # rotate 90 clockwise to display
    stored.save(img_path, exif=exif, quality=95)
    ds = open_dataset(tmp_path)
    image, loaded = ds.load(ds.train[0])
    assert image.shape[:2] == loaded.shape == (48, 32)
    assert image[:10].mean() > 200 and image[14:].mean() < 50  # sky on top, where the mask says


def test_a_truncated_jpeg_is_refused_not_trained_half_gray(tmp_path: Path) -> None:
    """OpenCV decodes a JPEG cut short with its missing rows flat gray and only a warning on
    stderr: an interrupted download trained against its full mask. A JPEG with data after
    its end (motion photos) still reads."""
    labels(tmp_path, "a", "b", "c")
    photo = cv2.GaussianBlur(RNG.integers(0, 256, (64, 64, 3)).astype(np.uint8), (9, 9), 3)
    img_path, _ = write_pair(tmp_path, "x", index_mask(64, 64), image=photo, ext=".jpg")
    whole = img_path.read_bytes()
    img_path.write_bytes(whole + b"trailing data a camera appends")
    assert open_dataset(tmp_path).load(open_dataset(tmp_path).train[0])[0].shape == (64, 64, 3)
    img_path.write_bytes(whole[: len(whole) // 2])
    ds = open_dataset(tmp_path, validate=False)
    with pytest.raises(DatasetError, match=r"x\.jpg: truncated JPEG"):
        ds.load(ds.train[0])


def test_mixed_0_255_and_0_1_masks_are_refused_not_read_as_ignore(tmp_path: Path) -> None:
    """One 0/1 mask among 0/255 ones made the set 'class ids', and the others' objects (255)
    silently became ignored pixels."""
    labels(tmp_path, "background", "object")
    for i in range(3):
        write_pair(tmp_path, f"w{i}", (index_mask(classes=2) * 255).astype(np.uint8))
    write_pair(tmp_path, "z", index_mask(classes=2))
    raises(tmp_path, r"masks mix 0/255 \(.*w0\.png\) and 0/1 \(.*z\.png\) values for 2 classes")
    with_ignore = index_mask(classes=2)
    with_ignore[0] = 255  # class ids with an ignored border: index masks, as before
    write_pair(tmp_path, "z", with_ignore)
    assert open_dataset(tmp_path).encoding == "index"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_class_files_from_excel_and_notepad_are_read(tmp_path: Path, encoding: str) -> None:
    """Excel's "CSV UTF-8" and Notepad write a byte-order mark; the first name became
    '\\ufeffsky' (refused as a control character) or the header a row of bad numbers."""
    (tmp_path / "classes.csv").write_text(
        "name,r,g,b\ncafé,0,0,255\nroad,128,64,128\n", encoding=encoding
    )
    rgb = np.array([(0, 0, 255), (128, 64, 128)], np.uint8)[index_mask(classes=2)]
    write_pair(tmp_path, "a", rgb[:, :, ::-1].copy())
    assert open_dataset(tmp_path).class_names == ("café", "road")
    (tmp_path / "classes.csv").unlink()
    (tmp_path / "labels.txt").write_text("sky\nroad\n", encoding=encoding)
    write_pair(tmp_path, "a", index_mask(classes=2))
    assert open_dataset(tmp_path).class_names == ("sky", "road")


def test_a_class_file_in_another_encoding_is_one_error(tmp_path: Path) -> None:
    """Latin-1 text used to crash with a UnicodeDecodeError traceback."""
    (tmp_path / "labels.txt").write_bytes(b"bg\ncaf\xe9\n")
    write_pair(tmp_path, "a", index_mask(classes=2))
    raises(tmp_path, r"labels\.txt: not UTF-8 text \(byte 0xe9 at offset 6\); save it as UTF-8")


def test_masks_of_zeros_only_do_not_ask_for_one_class_name(tmp_path: Path) -> None:
    """The hint said 'add labels.txt with 1 names', which then failed 'need at least 2 classes'."""
    write_pair(tmp_path, "a", np.zeros((8, 8), np.uint8))
    err = raises(tmp_path, r"its masks hold only 0 in the first 1 mask\(s\): no class is marked")
    assert "labels.txt with 1" not in str(err)


def test_a_dataset_with_only_val_points_at_it(tmp_path: Path) -> None:
    labels(tmp_path, "a", "b", "c")
    write_pair(tmp_path, "x", index_mask(), split="val")
    raises(tmp_path, rf"holds val/ but no train/ folder; pass {tmp_path / 'val'} to evaluate on it")
    dataset, _, _ = open_eval_data(tmp_path / "val")
    assert [s.stem for s in dataset.train + dataset.val] == ["x"]


def test_anti_aliased_binary_masks_are_said_to_be_blended(tmp_path: Path) -> None:
    """52 stray values used to be listed in full; the cause (smoothed edges) was not said."""
    labels(tmp_path, "background", "object")
    mask = np.zeros((16, 64), np.uint8)
    mask[:, 32:] = 255
    mask[:, 4:28] = np.arange(2, 26, dtype=np.uint8)  # a smoothed edge
    write_pair(tmp_path, "x", mask)
    err = raises(tmp_path, r"x\.png: mask values \[2, 3, 4, 5, 6, 7, 8, 9, \.\.\. \(24 values\)\]")
    assert "anti-aliasing" in str(err) and "24, 25" not in str(err)


def test_names_that_differ_in_case_are_pointed_out(tmp_path: Path) -> None:
    labels(tmp_path, "a", "b", "c")
    _, mask = write_pair(tmp_path, "IMG_0", index_mask(), ext=".JPG")
    mask.rename(mask.with_name("img_0.png"))
    raises(tmp_path, r"IMG_0\.JPG: image has no mask .*; img_0\.png differs only in case")


def test_a_broken_link_is_named_as_one(tmp_path: Path) -> None:
    labels(tmp_path, "a", "b", "c")
    write_pair(tmp_path, "x", index_mask())
    _, mask_path = write_pair(tmp_path, "y", index_mask())
    mask_path.unlink()
    mask_path.symlink_to(tmp_path / "gone.png")
    raises(tmp_path, r"y\.png: broken symbolic link \(its target .*gone\.png is missing\)")


def test_explicit_classes_override_labels_txt(tmp_path: Path) -> None:
    labels(tmp_path, "a", "b")
    write_pair(tmp_path, "x", index_mask(classes=4))
    ds = open_dataset(tmp_path, classes=["p", "q", "r", "s"])
    assert ds.class_names == ("p", "q", "r", "s")
    assert ds.palette() is None  # index masks carry no colours: the model gets the default


def test_grayscale_and_colour_images_of_varying_sizes(tmp_path: Path) -> None:
    labels(tmp_path, "a", "b", "c")
    gray = RNG.integers(0, 256, (20, 30)).astype(np.uint8)
    write_pair(tmp_path, "g", index_mask(20, 30), image=gray)
    write_pair(tmp_path, "c", index_mask(17, 41), ext=".jpg")
    ds = open_dataset(tmp_path, val_fraction=0)
    shapes = {s.stem: ds.load(s)[0].shape for s in ds.train}
    assert shapes == {"g": (20, 30), "c": (17, 41, 3)}


# === Splits ===


def make_flat(root: Path, n: int = 10) -> None:
    labels(root, "a", "b", "c")
    for i in range(n):
        write_pair(root, f"s{i:02d}", index_mask(), split=None)


def stems(samples: tuple) -> list[str]:  # type: ignore[type-arg]
    return [s.stem for s in samples]


def test_seeded_split_is_deterministic(tmp_path: Path) -> None:
    make_flat(tmp_path)
    a, b = open_dataset(tmp_path, seed=0), open_dataset(tmp_path, seed=0)
    assert stems(a.val) == stems(b.val) and len(a.val) == 2 and len(a.train) == 8
    assert sorted(stems(a.train) + stems(a.val)) == [f"s{i:02d}" for i in range(10)]
    others = {tuple(stems(open_dataset(tmp_path, seed=s, validate=False).val)) for s in range(1, 6)}
    assert others - {tuple(stems(a.val))}, "a different seed should give a different split"


def test_val_fraction_one_is_all_val_and_parent_labels_are_found(tmp_path: Path) -> None:
    labels(tmp_path, "a", "b", "c")
    for i in range(3):
        write_pair(tmp_path, f"v{i}", index_mask(), split="val")
    ds = open_dataset(tmp_path / "val", val_fraction=1.0)
    assert len(ds.val) == 3 and not ds.train and ds.class_names == ("a", "b", "c")


def test_train_folder_alone_is_split(tmp_path: Path) -> None:
    labels(tmp_path, "a", "b", "c")
    for i in range(5):
        write_pair(tmp_path, f"t{i}", index_mask())
    ds = open_dataset(tmp_path, val_fraction=0.4)
    assert len(ds.train) == 3 and len(ds.val) == 2


@pytest.mark.parametrize("name", ["valid", "validation"])
def test_held_out_split_named_as_datasets_publish_it(tmp_path: Path, name: str) -> None:
    """valid/ (the off-road sets) and validation/ (ADE20K) are the val split, not ignored while
    a random fifth of train/ is held out instead."""
    labels(tmp_path, "a", "b", "c")
    for i in range(5):
        write_pair(tmp_path, f"t{i}", index_mask())
    write_pair(tmp_path, "v0", index_mask(), split=name)
    ds = open_dataset(tmp_path)
    assert [s.stem for s in ds.val] == ["v0"] and len(ds.train) == 5
    assert ds.val[0].image.parent.parent == tmp_path / name


def test_two_held_out_split_folders_are_an_error_naming_both(tmp_path: Path) -> None:
    labels(tmp_path, "a", "b", "c")
    write_pair(tmp_path, "t0", index_mask())
    write_pair(tmp_path, "v0", index_mask(), split="val")
    write_pair(tmp_path, "v1", index_mask(), split="valid")
    raises(tmp_path, rf"{tmp_path}: both val/ and valid/ found; keep one held-out split folder")


def write_sample_folder(
    split_dir: Path, name: str, mask: np.ndarray, files: tuple[str, str] = ("rgb.jpg", "labels.png")
) -> Path:
    """One sample as the off-road set YCOR publishes it: SPLIT/NAME/rgb.jpg + labels.png."""
    folder = split_dir / name
    folder.mkdir(parents=True)
    image = RNG.integers(0, 256, (*mask.shape[:2], 3)).astype(np.uint8)
    assert cv2.imwrite(str(folder / files[0]), image) and cv2.imwrite(str(folder / files[1]), mask)
    return folder


def test_one_folder_per_sample_as_off_road_sets_publish_it(tmp_path: Path) -> None:
    """train/iid000001/rgb.jpg + labels.png (colour) and valid/...: no images/ or masks/."""
    (tmp_path / "classes.csv").write_text("sky,1,88,255\ntrail,156,76,30\n")
    truth = index_mask(classes=2)
    colour = np.array([[255, 88, 1], [30, 76, 156]], np.uint8)[truth]  # BGR for OpenCV
    for i in range(3):
        write_sample_folder(tmp_path / "train", f"iid{i:06d}", colour)
    write_sample_folder(tmp_path / "valid", "iid000100", colour)
    ds = open_dataset(tmp_path)
    assert [s.stem for s in ds.train] == ["iid000000", "iid000001", "iid000002"]
    assert [s.stem for s in ds.val] == ["iid000100"] and ds.encoding == "rgb"
    _, mask = ds.load(ds.val[0])
    assert ds.val[0].image.name == "rgb.jpg" and np.array_equal(mask, truth)
    # a night-time image's name is not a mask's; the mask may be named any of the usual ways
    write_sample_folder(tmp_path / "other", "a", truth, ("night.png", "gtFine.png"))
    (tmp_path / "other" / "labels.txt").write_text("sky\ntrail\n")
    only = open_dataset(tmp_path / "other", val_fraction=1.0)
    assert only.val[0].image.name == "night.png" and only.val[0].mask.name == "gtFine.png"


def test_sample_folders_are_told_by_most_folders_not_the_first(tmp_path: Path) -> None:
    """An incomplete first sample folder, or a NAS's @eaDir / an archive's __MACOSX beside the
    samples, used to give 'images: folder not found' instead of naming the folder."""
    labels(tmp_path, "a", "b", "c")
    for name in ("s1", "s2", "s3"):
        write_sample_folder(tmp_path / "train", name, index_mask())
    (tmp_path / "train" / "@eaDir" / "s1").mkdir(parents=True)
    (tmp_path / "train" / "__MACOSX").mkdir()
    ds = open_dataset(tmp_path, val_fraction=0.34)
    assert sorted(s.stem for s in ds.train + ds.val) == ["s1", "s2", "s3"]
    first = write_sample_folder(tmp_path / "train", "s0", index_mask())
    (first / "labels.png").unlink()
    raises(tmp_path, rf"{first}: no labels.png; every sample folder")


def test_sample_folders_missing_a_file_or_with_jpeg_masks_are_named(tmp_path: Path) -> None:
    labels(tmp_path, "a", "b", "c")
    write_sample_folder(tmp_path / "train", "s0", index_mask())
    broken = write_sample_folder(tmp_path / "train", "s1", index_mask())
    (broken / "labels.png").unlink()
    raises(
        tmp_path,
        rf"{broken}: no labels.png; every sample folder in .* must hold its image "
        r"rgb.jpg and mask labels.png",
    )
    jpeg = tmp_path / "jpeg"
    first = write_sample_folder(jpeg / "train", "s0", index_mask(), ("rgb.png", "labels.jpg"))
    labels(jpeg, "a", "b", "c")
    raises(jpeg, rf"{first / 'labels.jpg'}: JPEG masks are not read")
    unclear = tmp_path / "unclear"  # two images, neither named as a mask: not this layout
    write_sample_folder(unclear / "train", "s0", index_mask(), ("left.png", "right.png"))
    labels(unclear, "a", "b", "c")
    raises(
        unclear,
        r"images: folder not found; a dataset needs images/ and masks/ side by side \(or one "
        r"folder per sample holding its image and mask, e.g. rgb.jpg \+ labels.png, or images "
        r"with their masks in a folder beside, e.g. train/ \+ trainannot/ or train_labels/, or "
        r"each mask beside its image, e.g. x.jpg \+ x_mask.png; or Pascal VOC's JPEGImages/ \+ "
        r"SegmentationClass/\)$",
    )


def test_training_validation_and_labels_folders_as_mapillary_names_them(tmp_path: Path) -> None:
    """training/images + training/labels, validation/...: the same as train/, val/, masks/."""
    labels(tmp_path, "a", "b", "c")
    for split, stem in (("training", "t0"), ("validation", "v0")):
        write_pair(tmp_path, stem, index_mask(), split=split)
        (tmp_path / split / "masks").rename(tmp_path / split / "labels")
    ds = open_dataset(tmp_path)
    assert [s.stem for s in ds.train] == ["t0"] and [s.stem for s in ds.val] == ["v0"]
    assert ds.val[0].mask.parent == tmp_path / "validation" / "labels"
    (tmp_path / "training" / "masks").mkdir()
    raises(tmp_path, rf"{tmp_path / 'training'}: both masks/ and labels/ found; keep one mask")
    (tmp_path / "training" / "masks").rmdir()
    (tmp_path / "train").mkdir()
    raises(tmp_path, rf"{tmp_path}: both train/ and training/ found; keep one training split")


def write_flat(folder: Path, name: str, array: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(folder / name), array)
    return folder / name


def test_masks_beside_the_images_as_segnet_camvid_ships_them(tmp_path: Path) -> None:
    """SegNet's CamVid: train/ + trainannot/, val/ + valannot/ (and test/ + testannot/, unused),
    index masks with void as id 11."""
    names = [f"c{i}" for i in range(11)]
    labels(tmp_path, *names, "void")
    for split, stems in (("train", ["0001TP_006690", "0001TP_006720"]), ("val", ["0016E5_07959"])):
        for stem in stems:
            write_flat(tmp_path / split, f"{stem}.png", RNG.integers(0, 256, (12, 16, 3)))
            write_flat(tmp_path / f"{split}annot", f"{stem}.png", index_mask(classes=12))
    write_flat(tmp_path / "test", "x.png", RNG.integers(0, 256, (12, 16, 3)))
    ds = open_dataset(tmp_path, ignore_classes=["void"])
    assert [s.stem for s in ds.train] == ["0001TP_006690", "0001TP_006720"]
    assert [s.stem for s in ds.val] == ["0016E5_07959"]
    assert ds.val[0].mask == tmp_path / "valannot" / "0016E5_07959.png"
    assert ds.class_names == tuple(names)
    only_val = open_dataset(tmp_path / "val", val_fraction=1.0, ignore_classes=["void"])
    assert [s.mask for s in only_val.val] == [s.mask for s in ds.val]
    assert ds.void_hint() is None  # left out, as it should be
    kept = open_dataset(tmp_path)  # void trained like a class: say how to leave it out
    assert kept.void_hint() == (
        "class 'void' is trained and scored like the others; if it marks pixels no one "
        "annotated, leave it out with --ignore-class void"
    )
    assert open_dataset(tmp_path, classes=[f"c{i}" for i in range(12)]).void_hint() is None


def test_colour_masks_beside_the_images_as_kaggle_camvid_ships_them(tmp_path: Path) -> None:
    """Kaggle's CamVid: train/X.png + train_labels/X_L.png colour masks, class_dict.csv."""
    (tmp_path / "class_dict.csv").write_text("name,r,g,b\nSky,128,128,128\nRoad,128,64,128\n")
    truth = index_mask(classes=2)
    colour = np.array([[128, 128, 128], [128, 64, 128]], np.uint8)[truth][..., ::-1]
    for split in ("train", "val"):
        write_flat(tmp_path / split, "0001TP_006690.png", RNG.integers(0, 256, (12, 16, 3)))
        write_flat(tmp_path / f"{split}_labels", "0001TP_006690_L.png", colour)
    ds = open_dataset(tmp_path)
    assert ds.class_names == ("Sky", "Road") and ds.names_source.endswith("class_dict.csv")
    _, mask = ds.load(ds.val[0])
    assert ds.val[0].stem == "0001TP_006690" and np.array_equal(mask, truth)
    (tmp_path / "train_masks").mkdir()
    raises(tmp_path, rf"{tmp_path}: both train_labels/ and train_masks/ found; keep one mask")


CVAT_LABELMAP = (
    "# label:color_rgb:parts:actions\nbackground:0,0,0::\nroad:128,64,128::\ncar:0,0,142::\n"
)
CVAT_RGB = np.array([[0, 0, 0], [128, 64, 128], [0, 0, 142]], np.uint8)


def write_voc(root: Path, masked: list[str], *, unmasked: tuple[str, ...] = ()) -> np.ndarray:
    """A Pascal VOC layout as CVAT's 'Segmentation mask' export writes it: JPEGImages/*.jpg,
    SegmentationClass/*.png in labelmap.txt's RGB colours, SegmentationObject/ (instances, not
    read); `unmasked` images have no class mask (VOC's detection-only images). Returns the ids."""
    truth = index_mask(classes=3)
    colour = CVAT_RGB[truth][..., ::-1]  # BGR for OpenCV
    for stem in [*masked, *unmasked]:
        write_flat(root / "JPEGImages", f"{stem}.jpg", RNG.integers(0, 256, (12, 16, 3)))
    for stem in masked:
        write_flat(root / "SegmentationClass", f"{stem}.png", colour)
        write_flat(root / "SegmentationObject", f"{stem}.png", colour)
    (root / "labelmap.txt").write_text(CVAT_LABELMAP)
    return truth


def voc_list(root: Path, name: str, *stems: str) -> Path:
    path = root / "ImageSets" / "Segmentation" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{s}\n" for s in stems))
    return path


def test_pascal_voc_layout_as_cvat_exports_it(tmp_path: Path) -> None:
    """JPEGImages/ + SegmentationClass/ split by ImageSets/Segmentation/train.txt and val.txt,
    class names and colours from labelmap.txt; images without a class mask are not samples."""
    truth = write_voc(tmp_path, ["a", "b", "c", "d"], unmasked=("e",))
    voc_list(tmp_path, "train.txt", "a", "c", "b")
    voc_list(tmp_path, "val.txt", "d")
    ds = open_dataset(tmp_path)
    assert ds.summary() == "3 train / 1 val pairs, 3 classes from labelmap.txt, colour-coded masks"
    assert stems(ds.train) == ["a", "c", "b"] and stems(ds.val) == ["d"]
    assert ds.class_names == ("background", "road", "car") and ds.encoding == "rgb"
    assert ds.names_source.endswith("labelmap.txt")
    image, mask = ds.load(ds.val[0])
    assert ds.val[0].image == tmp_path / "JPEGImages" / "d.jpg"
    assert image.shape == (12, 16, 3) and np.array_equal(mask, truth)
    # evaluation scores the val list; calibration uses the images that have masks
    evaluated, split, _ = open_eval_data(tmp_path)
    assert split == "val" and stems(evaluated.val) == ["d"]
    assert sorted(p.stem for p in find_calibration_images(tmp_path)) == ["a", "b", "c", "d"]
    # a colour the labelmap does not list is named with the file that lists the colours
    write_flat(tmp_path / "SegmentationClass", "d.png", np.full((12, 16, 3), 7, np.uint8))
    raises(tmp_path, r"d.png: mask colour\(s\) #070707 not listed in labelmap.txt \(1 colour")


def test_pascal_voc_layout_without_lists_or_with_a_train_list_alone_is_split(
    tmp_path: Path,
) -> None:
    write_voc(tmp_path, [f"s{i}" for i in range(10)])
    voc_list(tmp_path, "default.txt", *[f"s{i}" for i in range(10)])  # CVAT's one subset
    ds = open_dataset(tmp_path, seed=0)
    assert len(ds.train) == 8 and len(ds.val) == 2
    assert sorted(stems(ds.train + ds.val)) == [f"s{i}" for i in range(10)]
    assert len(open_eval_data(tmp_path)[0].val) == 10  # no split named: all of it is for eval
    voc_list(tmp_path, "Train.txt", *[f"s{i}" for i in range(6)])  # any case, as CVAT names it
    listed = open_dataset(tmp_path, seed=0)
    assert len(listed.train) == 5 and len(listed.val) == 1  # the train list's held-out fifth
    assert set(stems(listed.train + listed.val)) == {f"s{i}" for i in range(6)}
    assert stems(open_eval_data(tmp_path)[0].val) == stems(listed.val)


def test_labelme2voc_output_with_palette_pngs_and_class_names_txt(tmp_path: Path) -> None:
    """labelme2voc.py: class_names.txt (_background_ first), SegmentationClass/*.npy and the
    palette PNGs in SegmentationClassPNG/, unlabelled pixels (-1) stored as 255."""
    (tmp_path / "class_names.txt").write_text("_background_\nperson\ncar")  # no final newline
    idx = index_mask(classes=3)
    idx[0, :] = 255
    write_flat(tmp_path / "JPEGImages", "2011_000003.jpg", RNG.integers(0, 256, (12, 16, 3)))
    (tmp_path / "SegmentationClass").mkdir()
    np.save(tmp_path / "SegmentationClass" / "2011_000003.npy", idx.astype(np.int32))
    (tmp_path / "SegmentationClassPNG").mkdir()
    pal = Image.frombytes("P", (idx.shape[1], idx.shape[0]), idx.tobytes())
    pal.putpalette(voc_colormap().ravel().tolist())
    pal.save(tmp_path / "SegmentationClassPNG" / "2011_000003.png")
    ds = open_dataset(tmp_path, val_fraction=1.0, ignore_classes=["car"])
    assert ds.summary() == (
        "0 train / 1 val pairs, 2 classes (1 more left out) from class_names.txt, palette PNG masks"
    )
    ds = open_dataset(tmp_path, val_fraction=1.0, classes=["bg", "person", "car"])
    assert ds.summary().endswith("3 classes from the given class list, palette PNG masks")
    ds = open_dataset(tmp_path, val_fraction=1.0)
    assert ds.class_names == ("_background_", "person", "car") and ds.encoding == "palette"
    assert np.array_equal(ds.load(ds.val[0])[1], idx)


def test_pascal_voc_layout_errors_name_the_file_and_line(tmp_path: Path) -> None:
    write_voc(tmp_path, ["a", "b"])
    voc_list(tmp_path, "train.txt", "a", "zz")
    raises(tmp_path, rf"{tmp_path / 'ImageSets/Segmentation/train.txt'}:2: 'zz' has no image in")
    voc_list(tmp_path, "train.txt", "")
    raises(tmp_path, r"train.txt: lists no samples \(one image name per line\)")
    voc_list(tmp_path, "train.txt", "a")
    voc_list(tmp_path, "training.txt", "b")
    raises(tmp_path, r"Segmentation: both train.txt and training.txt found; keep one list")
    (tmp_path / "ImageSets" / "Segmentation" / "training.txt").unlink()
    raises(
        tmp_path / "JPEGImages",
        rf"this is a Pascal VOC dataset's JPEGImages/ folder; pass the dataset folder instead: "
        rf"{tmp_path}$",
    )
    (tmp_path / "labelmap.txt").write_text("background:0,0,0::\nroad:128,64::\n")
    raises(tmp_path, r"labelmap.txt:2: expected name:r,g,b:parts:actions .*got 'road:128,64::'")
    (tmp_path / "labelmap.txt").write_text("background:0,0,0::\nroad:::\n")
    raises(tmp_path, r"labelmap.txt: class 'road' has no colour; give every class r,g,b")
    for png in (tmp_path / "SegmentationClass").iterdir():
        png.unlink()
    raises(tmp_path, rf"{tmp_path}: has JPEGImages/ but no SegmentationClass/ or Segmentation")


def test_folder_names_in_any_case_and_their_singular_and_gt_forms(tmp_path: Path) -> None:
    """Kaggle's Train/Images + Train/Masks and Validation/...; img/ + gt/ side by side."""
    labels(tmp_path, "a", "b", "c")
    for split, stem in (("Train", "t0"), ("Validation", "v0")):
        write_flat(tmp_path / split / "Images", f"{stem}.jpg", RNG.integers(0, 256, (12, 16, 3)))
        write_flat(tmp_path / split / "Masks", f"{stem}.png", index_mask())
    ds = open_dataset(tmp_path)
    assert stems(ds.train) == ["t0"] and stems(ds.val) == ["v0"]
    assert ds.val[0].mask == tmp_path / "Validation" / "Masks" / "v0.png"
    assert [p.name for p in find_calibration_images(tmp_path)] == ["t0.jpg", "v0.jpg"]
    flat = tmp_path / "flat"
    write_flat(flat / "img", "a.jpg", RNG.integers(0, 256, (12, 16, 3)))
    write_flat(flat / "gt", "a.png", index_mask())
    labels(flat, "a", "b", "c")
    assert open_dataset(flat, val_fraction=1.0).val[0].mask == flat / "gt" / "a.png"
    (flat / "masks").mkdir()
    raises(flat, rf"{flat}: both masks/ and gt/ found; keep one mask folder")


def test_splits_inside_images_and_masks_as_ade20k_publishes_them(tmp_path: Path) -> None:
    """images/training + annotations/training (ADE20K), images/val + masks/val (many Kaggle
    sets): the split folders sit inside the image and mask folders."""
    labels(tmp_path, "other", "wall", "floor")
    truth = index_mask()
    for split, stems_ in (("training", ["ADE_train_1", "ADE_train_2"]), ("validation", ["v1"])):
        for stem in stems_:
            write_flat(
                tmp_path / "images" / split, f"{stem}.jpg", RNG.integers(0, 256, (12, 16, 3))
            )
            write_flat(tmp_path / "annotations" / split, f"{stem}.png", truth)
    ds = open_dataset(tmp_path, ignore_classes=["other"])
    assert stems(ds.train) == ["ADE_train_1", "ADE_train_2"] and stems(ds.val) == ["v1"]
    assert ds.val[0].mask == tmp_path / "annotations" / "validation" / "v1.png"
    evaluated, _, _ = open_eval_data(tmp_path)
    assert stems(evaluated.val) == ["v1"]
    assert len(find_calibration_images(tmp_path)) == 3
    (tmp_path / "annotations" / "validation" / "v1.png").rename(tmp_path / "v1.png")
    (tmp_path / "annotations" / "validation").rmdir()
    raises(
        tmp_path,
        rf"{tmp_path / 'annotations'}: no val/ or valid/ folder for the masks of "
        rf"{tmp_path / 'images' / 'validation'}; keep each split's masks in annotations/",
    )


def write_roboflow(root: Path, split: str, stems: list[str]) -> np.ndarray:
    """Roboflow's 'Semantic Segmentation Masks' export: SPLIT/X.jpg + SPLIT/X_mask.png (class
    ids) and SPLIT/_classes.csv ('Pixel Value, Class')."""
    truth = index_mask(classes=3)
    (root / split).mkdir(parents=True, exist_ok=True)
    for stem in stems:
        write_flat(root / split, f"{stem}.jpg", RNG.integers(0, 256, (12, 16, 3)))
        write_flat(root / split, f"{stem}_mask.png", truth)
    (root / split / "_classes.csv").write_text(
        "Pixel Value, Class\n0, background\n1, weed\n2, crop\n"
    )
    return truth


def test_masks_beside_their_images_in_one_folder_as_roboflow_exports_them(tmp_path: Path) -> None:
    write_roboflow(tmp_path, "train", ["a_jpg.rf.1f2e", "b_jpg.rf.9c0d"])
    truth = write_roboflow(tmp_path, "valid", ["c_jpg.rf.77aa"])
    write_roboflow(tmp_path, "test", ["d_jpg.rf.0000"])
    ds = open_dataset(tmp_path)
    assert stems(ds.train) == ["a_jpg.rf.1f2e", "b_jpg.rf.9c0d"] and stems(ds.val) == [
        "c_jpg.rf.77aa"
    ]
    assert ds.class_names == ("background", "weed", "crop") and ds.encoding == "index"
    assert (
        ds.summary()
        == "2 train / 1 val pairs, 3 classes from train/_classes.csv, class-index masks"
    )
    _, mask = ds.load(ds.val[0])
    assert ds.val[0].mask.name == "c_jpg.rf.77aa_mask.png" and np.array_equal(mask, truth)
    assert len(open_dataset(tmp_path / "valid", val_fraction=1.0).val) == 1  # names beside it
    calib = find_calibration_images(tmp_path)
    assert sorted(p.name for p in calib) == [
        "a_jpg.rf.1f2e.jpg",
        "b_jpg.rf.9c0d.jpg",
        "c_jpg.rf.77aa.jpg",
    ]


def test_one_folder_pairs_fail_naming_the_file_and_pictures_are_not_taken_for_it(
    tmp_path: Path,
) -> None:
    write_roboflow(tmp_path, "train", ["a", "b"])
    (tmp_path / "train" / "b_mask.png").unlink()
    raises(tmp_path, rf"{tmp_path / 'train' / 'b.jpg'}: image has no mask .*b_mask.png$")
    jpeg = tmp_path / "jpeg" / "train"
    write_flat(jpeg, "a.jpg", RNG.integers(0, 256, (12, 16, 3)))
    write_flat(jpeg, "a_mask.jpg", index_mask())
    labels(tmp_path / "jpeg", "a", "b", "c")
    raises(tmp_path / "jpeg", rf"{jpeg / 'a_mask.jpg'}: JPEG masks are not read: lossy")
    write_roboflow(tmp_path / "pics", "train", [])
    for i in range(4):  # four pictures, one of them named like a mask: not this layout
        write_flat(tmp_path / "pics" / "train", f"p{i}.jpg", RNG.integers(0, 256, (12, 16, 3)))
    write_flat(tmp_path / "pics" / "train", "p0_seg.png", index_mask())
    raises(tmp_path / "pics", r"train/images: folder not found; a dataset needs images/")
    (tmp_path / "train" / "_classes.csv").write_text("Pixel Value, Class\n0, bg\n2, weed\n")
    write_flat(tmp_path / "train", "b_mask.png", index_mask())
    raises(tmp_path, r"_classes.csv: pixel values must be 0..1 \(one per class\), got \[0, 2\]")


def test_discovery_reads_no_images_and_reports_progress(tmp_path: Path) -> None:
    make_flat(tmp_path, 4)
    (tmp_path / "images" / "s00.png").write_bytes(b"broken")
    (tmp_path / "images" / "._s01.png").write_bytes(b"macOS resource fork")  # hidden: skipped
    ds = open_dataset(tmp_path, validate=False)
    assert len(ds.train) + len(ds.val) == 4
    calls: list[tuple[int, int]] = []
    (tmp_path / "images" / "s00.png").unlink()
    write_pair(tmp_path, "s00", index_mask(), split=None)
    open_dataset(tmp_path, progress=lambda i, n: calls.append((i, n)))
    assert calls[-1] == (4, 4) and len(calls) == 4


# === Bad input ===


def test_missing_folder(tmp_path: Path) -> None:
    raises(tmp_path / "nope", str(tmp_path / "nope"))


def test_missing_masks_folder(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    raises(tmp_path, str(tmp_path / "masks"))


def test_no_pairs(tmp_path: Path) -> None:
    labels(tmp_path, "a", "b")
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    raises(tmp_path, f"{tmp_path}: no image/mask pairs")


def test_image_without_mask(tmp_path: Path) -> None:
    labels(tmp_path, "a", "b", "c")
    write_pair(tmp_path, "ok", index_mask())
    img, mask = write_pair(tmp_path, "lonely", index_mask())
    mask.unlink()
    raises(tmp_path, f"{img}: image has no mask")


def test_mask_without_image(tmp_path: Path) -> None:
    labels(tmp_path, "a", "b", "c")
    write_pair(tmp_path, "ok", index_mask())
    img, mask = write_pair(tmp_path, "lonely", index_mask())
    img.unlink()
    raises(tmp_path, f"{mask}: mask has no image")


def _rename(path: Path, stem: str) -> Path:
    return path.rename(path.with_name(stem + path.suffix))


@pytest.mark.parametrize(
    ("image_end", "mask_end"),
    [
        ("", "_L"),  # CamVid: 0001TP_006690.png + 0001TP_006690_L.png
        ("_leftImg8bit", "_gtFine_labelIds"),  # Cityscapes
        ("", "_train_id"),  # BDD100K
    ],
)
def test_images_and_masks_pair_by_the_ending_their_names_share(
    tmp_path: Path, image_end: str, mask_end: str
) -> None:
    labels(tmp_path, "a", "b", "c")
    written = {}
    for stem in ("0001TP_006690", "0001TP_006720", "Seq05VD_f00000"):
        m = index_mask()
        img, mask = write_pair(tmp_path, stem, m, split=None)
        _rename(img, stem + image_end), _rename(mask, stem + mask_end)
        written[stem] = m
    ds = open_dataset(tmp_path, val_fraction=0)
    assert [s.stem for s in ds.train] == sorted(written)
    for sample in ds.train:
        assert sample.image.stem == sample.stem + image_end
        assert sample.mask.stem == sample.stem + mask_end
        assert np.array_equal(ds.load(sample)[1], written[sample.stem])


def test_an_ending_that_does_not_pair_every_file_pairs_nothing(tmp_path: Path) -> None:
    """f1 + f1_L, f2 + f2_L, f3 without a mask: no guessing, the plain names' error."""
    labels(tmp_path, "a", "b", "c")
    first = None
    for stem in ("f1", "f2", "f3"):
        img, mask = write_pair(tmp_path, stem, index_mask())
        if stem == "f3":
            mask.unlink()
        else:
            _rename(mask, stem + "_L")
        first = first or img
    raises(tmp_path, rf"{first}: image has no mask .*f1\.png \(and 2 more\)")


def test_tiff_and_bmp_masks_are_read_and_jpeg_masks_refused(tmp_path: Path) -> None:
    labels(tmp_path, "a", "b", "c")
    written = {}
    for stem, ext in (("t", ".tif"), ("b", ".bmp")):
        m = index_mask()
        _, mask = write_pair(tmp_path, stem, m, split=None)
        assert cv2.imwrite(str(mask.with_suffix(ext)), m)
        mask.unlink()
        written[stem] = m
    ds = open_dataset(tmp_path, val_fraction=0)
    assert {s.mask.suffix for s in ds.train} == {".tif", ".bmp"}
    for sample in ds.train:
        assert np.array_equal(ds.load(sample)[1], written[sample.stem])
    _, mask = write_pair(tmp_path, "j", index_mask(), split=None)
    jpeg = mask.with_suffix(".jpg")
    mask.rename(jpeg)
    raises(tmp_path, f"{jpeg}: JPEG masks are not read: .* export the masks as PNG")


def test_two_images_with_one_stem(tmp_path: Path) -> None:
    labels(tmp_path, "a", "b", "c")
    img, _ = write_pair(tmp_path, "x", index_mask())
    dup = img.with_suffix(".jpg")
    cv2.imwrite(str(dup), np.zeros((12, 16, 3), np.uint8))
    raises(tmp_path, "same name as")


def test_size_mismatch(tmp_path: Path) -> None:
    labels(tmp_path, "a", "b", "c")
    _, mask = write_pair(tmp_path, "x", index_mask(), image=np.zeros((13, 16, 3), np.uint8))
    err = raises(tmp_path, "must match")
    assert str(mask) in str(err) and "16x12" in str(err) and "16x13" in str(err)


def test_mask_value_beyond_classes(tmp_path: Path) -> None:
    names_file = labels(tmp_path, "a", "b", "c")
    m = index_mask()
    m[3, 3] = 7
    _, mask = write_pair(tmp_path, "x", m)
    err = raises(tmp_path, r"values \[7\]")
    assert str(mask) in str(err) and str(names_file) in str(err)


@pytest.mark.parametrize("which", ["image", "mask"])
def test_corrupt_files(tmp_path: Path, which: str) -> None:
    labels(tmp_path, "a", "b", "c")
    img, mask = write_pair(tmp_path, "x", index_mask())
    bad = img if which == "image" else mask
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    raises(tmp_path, f"{bad}: cannot read")


def test_colour_not_in_classes_csv(tmp_path: Path) -> None:
    (tmp_path / "classes.csv").write_text("a,0,0,0\nb,255,255,255\n")
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[2, 2] = (0, 0, 200)  # BGR -> RGB #C80000
    _, mask = write_pair(tmp_path, "x", rgb)
    raises(tmp_path, f"{mask}: mask colour.*#C80000.*classes.csv")


def test_blended_edge_colours_are_refused_with_their_share_or_ignored_on_request(
    tmp_path: Path,
) -> None:
    """Anti-aliased class edges (colours between two listed ones): by default an error naming
    the file, the colours (first five), their share of the pixels and the option; with
    unlisted_colors='ignore' those pixels become ignore_index and the rest decode as listed."""
    (tmp_path / "classes.csv").write_text("a,0,0,0\nb,255,255,255\n")
    truth = np.zeros((10, 10), np.uint8)
    truth[:, 5:] = 1
    rgb = np.where(truth[..., None] == 1, 255, 0).astype(np.uint8).repeat(3, axis=2)
    for row, grey in enumerate((40, 80, 120, 160, 200, 220, 230, 240, 250, 100)):
        rgb[row, 5] = grey  # the edge column: ten different blends
    _, mask = write_pair(tmp_path, "x", rgb)
    raises(
        tmp_path,
        rf"{mask}: mask colour\(s\) #282828, #505050, #646464, #787878, #A0A0A0 \.\.\. not "
        r"listed in classes.csv \(10 colour\(s\) on 10% of its pixels\); .* train with "
        r"--unlisted-colors ignore",
    )
    ds = open_dataset(tmp_path, val_fraction=0, unlisted_colors="ignore")
    _, decoded = ds.load(ds.train[0])
    expected = truth.copy()
    expected[:, 5] = 255
    assert np.array_equal(decoded, expected)


def test_a_class_missing_from_classes_csv_is_not_offered_to_be_ignored(tmp_path: Path) -> None:
    """81% of a mask in colours classes.csv lacks: a missing class, which the error offered
    to leave unscored with --unlisted-colors ignore (it would train on a fifth of the mask)."""
    (tmp_path / "classes.csv").write_text("a,0,0,0\nb,255,255,255\n")
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[:, 2:] = (0, 128, 0)  # a third class, not listed
    write_pair(tmp_path, "x", rgb)
    with pytest.raises(DatasetError) as refused:
        ds = open_dataset(tmp_path, val_fraction=0)
        ds.load(ds.train[0])
    message = str(refused.value)
    assert "#008000" in message and "on 80% of its pixels" in message, message
    assert "list the missing class's colour in classes.csv" in message
    assert "--unlisted-colors ignore" not in message


def test_bad_classes_csv_row(tmp_path: Path) -> None:
    csv = tmp_path / "classes.csv"
    csv.write_text("a,0,0,0\nb,300,0,0\n")
    write_pair(tmp_path, "x", np.zeros((4, 4, 3), np.uint8))
    raises(tmp_path, f"{csv}:2: r,g,b must be integers 0..255")


def test_colour_mask_without_classes_csv(tmp_path: Path) -> None:
    labels(tmp_path, "a", "b", "c")
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 2] = 1
    _, mask = write_pair(tmp_path, "x", rgb)
    raises(tmp_path, f"{mask}: mask is colour")


def test_fewer_than_two_classes(tmp_path: Path) -> None:
    names_file = labels(tmp_path, "only")
    write_pair(tmp_path, "x", np.zeros((4, 4), np.uint8))
    raises(tmp_path, f"{names_file}: need at least 2 classes")
    raises(tmp_path, "need at least 2 classes", classes=["one"])


def test_no_class_names_says_what_the_masks_hold(tmp_path: Path) -> None:
    """Without labels.txt / classes.csv the error says what to write, from the masks themselves:
    the ids to name, in order, for index masks."""
    write_pair(tmp_path, "x", np.array([[0, 1], [3, 255]], np.uint8))
    write_pair(tmp_path, "y", np.array([[0, 2], [2, 2]], np.uint8))
    raises(
        tmp_path,
        rf"{tmp_path}: no class names; its masks hold class ids 0, 1, 2, 3 in the first 2 "
        r"mask\(s\): add labels.txt with 4 names, one per line for ids 0..3 \(255 is 'ignore'\), "
        "or pass --classes with 4 names",
    )


@pytest.mark.parametrize("bits", [8, 16])
def test_no_class_names_lists_the_colours_of_colour_masks(tmp_path: Path, bits: int) -> None:
    """Colour masks (RGBA here, alpha ignored; at 16 bits as LabelMeFacade publishes them) name
    their colours as #RRGGBB, the first as a classes.csv line to copy; --classes cannot name
    colours, so it is not offered."""
    rgba = np.zeros((2, 3, 4), np.uint16 if bits == 16 else np.uint8)
    rgba[..., 3] = 255
    rgba[0, :, :3] = (128, 64, 0)  # BGR: #004080
    rgba[1, :, :3] = (0, 0, 255)  # #FF0000
    write_pair(tmp_path, "x", rgba * 257 if bits == 16 else rgba)
    err = str(raises(tmp_path, f"{tmp_path}: no class names; its masks are colour-coded"))
    assert "(2 colour(s) in the first 1 mask(s): #004080, #FF0000)" in err
    assert err.endswith(
        "add classes.csv with one name,r,g,b line per class colour, such as NAME,0,64,128"
    )


def test_no_class_names_for_binary_masks(tmp_path: Path) -> None:
    write_pair(tmp_path, "x", np.array([[0, 255]], np.uint8))
    raises(
        tmp_path, r"its masks are binary \(0 and 255 .*labels.txt with 2 names, the 0 class first"
    )


def test_pointing_at_a_datasets_images_folder_names_the_dataset_folder(tmp_path: Path) -> None:
    """`edgeseg train DATA/train/images` (an easy slip) names DATA, the folder to pass, whether
    the images/ folder sits in a split or at the top of an unsplit dataset."""
    labels(tmp_path, "a", "b", "c")
    write_pair(tmp_path, "t0", index_mask())
    write_pair(tmp_path, "v0", index_mask(), split="val")
    for split in ("train", "val"):
        raises(
            tmp_path / split / "images",
            rf"{tmp_path / split / 'images'}: this is a dataset's images/ folder; pass the "
            rf"dataset folder instead: {tmp_path}$",
        )
    flat = tmp_path / "flat"
    write_pair(flat, "f0", index_mask(), split=None)
    labels(flat, "a", "b", "c")
    raises(flat / "images", rf"pass the dataset folder instead: {flat}$")
    assert len(open_dataset(flat, val_fraction=0.0).train) == 1  # and that folder opens


def test_two_classes_with_one_colour_are_refused_naming_both(tmp_path: Path) -> None:
    """The second would never be trained: its pixels decode as the first class."""
    csv = tmp_path / "classes.csv"
    csv.write_text("name,r,g,b\nbuilding,128,0,0\nsky,0,0,255\nextra,128,0,0\n")
    write_pair(tmp_path, "x", np.zeros((4, 4, 3), np.uint8))
    raises(tmp_path, f"{csv}: classes 'building' and 'extra' share the colour #800000")
    csv.unlink()
    labelmap = tmp_path / "labelmap.txt"
    labelmap.write_text("background:0,0,0::\nroad:128,64,128::\nlane:128,64,128::\n")
    raises(tmp_path, f"{labelmap}: classes 'road' and 'lane' share the colour #804080")


def test_the_dataset_says_whether_its_val_pairs_are_a_seeded_fraction(tmp_path: Path) -> None:
    """What `train` records, so `eval` on a flat copy of data that had its own val/ does not
    claim to score 'the pairs training held out' by a fraction it never used."""
    for root in (tmp_path / "flat", tmp_path / "split"):
        root.mkdir()
        labels(root, "a", "b")
    for i in range(5):
        mask = np.zeros((4, 4), np.uint8)
        write_pair(tmp_path / "flat", f"s{i}", mask, split=None)
        write_pair(tmp_path / "split", f"s{i}", mask, split="val" if i == 4 else "train")
    assert open_dataset(tmp_path / "flat").val_by_fraction
    assert not open_dataset(tmp_path / "split").val_by_fraction


def test_class_colours_swapped_since_training_are_refused(tmp_path: Path) -> None:
    """Swapping two rows' colours in classes.csv scored every pixel of both classes under the
    other's name, without a word; a model that learned other colours altogether is not
    compared, nor is one without a colour palette of its own."""
    from edgeseg.core.spec import ModelSpec
    from edgeseg.eval.common import check_model_classes

    colours = [(0, 0, 255), (128, 64, 128), (255, 0, 0)]
    rgb = np.array(colours, np.uint8)[index_mask()]
    write_pair(tmp_path, "a", rgb[:, :, ::-1].copy())
    names = ("sky", "road", "car")
    learned = ModelSpec(8, 8, names, palette=tuple(colours))
    rows = "".join(f"{n},{r},{g},{b}\n" for n, (r, g, b) in zip(names, colours, strict=True))
    (tmp_path / "classes.csv").write_text(rows)
    assert check_model_classes(open_dataset(tmp_path), learned, Path("m.tflite")) == []
    swapped = [colours[1], colours[0], colours[2]]
    rows = "".join(f"{n},{r},{g},{b}\n" for n, (r, g, b) in zip(names, swapped, strict=True))
    (tmp_path / "classes.csv").write_text(rows)
    with pytest.raises(DatasetError, match=r"gives sky, road the colours m\.tflite learned"):
        check_model_classes(open_dataset(tmp_path), learned, Path("m.tflite"))
    assert check_model_classes(open_dataset(tmp_path), ModelSpec(8, 8, names), Path("m")) == []


def test_a_model_without_class_names_is_said_to_need_its_config_json(tmp_path: Path) -> None:
    """It told the user to rename their data's classes to class_0, class_1 ..."""
    from edgeseg.core.spec import ModelSpec, default_class_names
    from edgeseg.eval.common import check_model_classes

    labels(tmp_path, "a", "b", "c")
    write_pair(tmp_path, "x", index_mask())
    placeholder = ModelSpec(8, 8, default_class_names(3))
    with pytest.raises(DatasetError, match=r"m\.tflite: records no class names .*convert it again"):
        check_model_classes(open_dataset(tmp_path), placeholder, Path("m.tflite"))
    with pytest.raises(DatasetError, match=r"m\.keras: no class names .*beside the \.keras$"):
        check_model_classes(open_dataset(tmp_path), placeholder, Path("m.keras"))
    with pytest.raises(DatasetError, match=r"'b' \(model 'sidewalk'\) \(dataset \['a', 'b'"):
        check_model_classes(
            open_dataset(tmp_path), ModelSpec(8, 8, ("a", "sidewalk", "c")), Path("m")
        )


def test_ignored_pixels_are_named_by_what_makes_them_so(tmp_path: Path) -> None:
    """`info DATA --unlisted-colors ignore` counted a colour mask's unlisted colours as
    'ignored pixels (255)', a value such masks do not hold."""
    from edgeseg.data.dataset import Dataset

    def ds(encoding: str, **kw: object) -> Dataset:
        return Dataset(tmp_path, ("a", "b"), encoding, 255, (), (), **kw)  # type: ignore[arg-type]

    names = str(tmp_path / "classes.csv")
    assert ds("index").ignored_pixels() == "value 255 in masks"
    colour = ds("rgb", names_source=names, unlisted_colors="ignore")
    assert colour.ignored_pixels() == "colours not in classes.csv"
    left = ds("rgb", names_source=names, ignored=("sky",)).ignored_pixels()
    assert left == "left-out sky"
