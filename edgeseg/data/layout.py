"""Where a dataset's pairs are on disk: image + mask files paired by name in the layouts
datasets are published in, and the train / held-out split.

Layout: ROOT/images + ROOT/masks (pairs by stem), optionally ROOT/train/... and ROOT/val/...
(also named as published datasets name them: TRAIN_DIRS, VAL_DIRS, MASK_DIRS); a split may
instead hold one folder per sample (train/iid000123/rgb.jpg + labels.png) or keep its masks in
a folder beside it (train/ + trainannot/) or each mask beside its image (train/x.jpg +
x_mask.png, Roboflow's export). ROOT may also be laid out as Pascal VOC, which CVAT's
"Segmentation mask" export and labelme's labelme2voc.py write: JPEGImages/ + SegmentationClass/,
split by the lists in ImageSets/Segmentation/. What the masks mean is dataset.py's.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeseg.core.errors import DatasetError, NotADatasetError
from edgeseg.core.processing import (
    IMAGE_DIRS,
    IMAGE_EXTS,
    MASK_DIRS,
    MASK_NAME_ENDINGS,
    TRAIN_DIRS,
    VAL_DIRS,
    list_dirs,
    list_files,
    named_as_mask,
)

JPEG_EXTS = (".jpg", ".jpeg")
MASK_EXTS = (".png", ".bmp", ".tif", ".tiff")  # lossless only: JPEG blends class ids


def read_text(path: Path) -> str:
    """A class-name or list file's text: UTF-8 with or without the byte-order mark that Excel's
    "CSV UTF-8" and Notepad write, or UTF-16 with its mark (Notepad's "Unicode"); any other
    encoding is refused naming the file, rather than read as the wrong names."""
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{path}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}); save "
            "it as UTF-8"
        ) from None


@dataclass(frozen=True)
class Sample:
    """One image and its mask, paired by file stem."""

    stem: str
    image: Path
    mask: Path


def _by_stem(folder: Path, exts: tuple[str, ...]) -> dict[str, Path]:
    """FOLDER's files with one of `exts` (`_files`) keyed by stem; a repeated stem fails."""
    return _keyed(list_files(folder, exts))


def _keyed(files: list[Path]) -> dict[str, Path]:
    """FILES keyed by stem, in their order; a repeated stem fails naming both files."""
    found: dict[str, Path] = {}
    for p in files:
        if p.stem in found:
            raise DatasetError(f"{p}: same name as {found[p.stem].name}; keep one file per stem")
        found[p.stem] = p
    return found


def _jpeg_mask(path: Path) -> DatasetError:
    """The error for a JPEG mask, whichever layout it was found in."""
    return DatasetError(
        f"{path}: JPEG masks are not read: lossy compression blends class ids at every edge; "
        "export the masks as PNG"
    )


def _one_of(root: Path, names: tuple[str, ...], what: str) -> Path | None:
    """The one folder of ROOT named one of NAMES in any case, None when there is none; two are
    an error (which one the user meant is not ours to guess)."""
    if not root.is_dir():
        return None
    with os.scandir(root) as entries:
        found = sorted(
            (Path(e.path) for e in entries if e.is_dir() and e.name.lower() in names),
            key=lambda d: (names.index(d.name.lower()), d.name),
        )
    if len(found) > 1:
        raise DatasetError(
            f"{root}: both {' and '.join(d.name + '/' for d in found)} found; keep one {what} "
            "folder (rename or move the other)"
        )
    return found[0] if found else None


def mask_dir(folder: Path) -> Path | None:
    """FOLDER's masks/ (or labels/ as Mapillary Vistas names it, annotations/, gt/, ... in any
    case: MASK_DIRS); None if none."""
    return _one_of(folder, MASK_DIRS, "mask")


def image_dir(folder: Path) -> Path | None:
    """FOLDER's images/ (or image/, imgs/, img/, in any case); None if none."""
    return _one_of(folder, IMAGE_DIRS, "image")


def held_out_only(folder: Path) -> Path | None:
    """FOLDER's held-out split (val/, valid/, validation/) when that is all it holds (no train/,
    no images/): what evaluation scores when given the dataset folder."""
    if not folder.is_dir() or image_dir(folder) is not None:
        return None
    held_out = _one_of(folder, VAL_DIRS, "held-out split")
    if held_out is None or _one_of(folder, TRAIN_DIRS, "training split") is not None:
        return None
    return held_out


def find_pairs(folder: Path) -> list[Sample]:
    """Pairs in FOLDER/images and FOLDER/masks (or labels/, annotations/), in one folder per
    sample (`_sample_folder_pairs`), or images in FOLDER with masks in a sibling folder
    (`_sibling_mask_dir`); an image without mask (or the reverse) fails."""
    if (pairs := _pairs_without_images_dir(folder)) is not None:
        return pairs
    img_dir, masks = image_dir(folder), mask_dir(folder)
    if folder.name.lower() in IMAGE_DIRS and img_dir is None and mask_dir(folder.parent):
        raise DatasetError(
            f"{folder}: this is a dataset's images/ folder; pass the dataset folder instead: "
            f"{_dataset_root(folder.parent)}"
        )
    if folder.name in (VOC_IMAGES, *VOC_MASK_DIRS) and voc_dirs(folder.parent) is not None:
        raise DatasetError(
            f"{folder}: this is a Pascal VOC dataset's {folder.name}/ folder; pass the dataset "
            f"folder instead: {folder.parent}"
        )
    held_out = _one_of(folder, VAL_DIRS, "held-out split") if img_dir is None else None
    if held_out is not None and _one_of(folder, TRAIN_DIRS, "training split") is None:
        raise NotADatasetError(
            f"{folder}: holds {held_out.name}/ but no train/ folder; pass {held_out} to "
            "evaluate on it, or add train/ (laid out as it is) to train"
        )
    if masks is None or img_dir is None:
        raise NotADatasetError(
            f"{folder / ('images' if img_dir is None else 'masks')}: folder not found; a "
            "dataset needs images/ and masks/ side by side (or one folder per sample holding its "
            "image and mask, e.g. rgb.jpg + labels.png, or images with their masks in a folder "
            "beside, e.g. train/ + trainannot/ or train_labels/, or each mask beside its image, "
            "e.g. x.jpg + x_mask.png; or Pascal VOC's JPEGImages/ + SegmentationClass/)"
        )
    return _pair_folders(folder, img_dir, masks)


def _dataset_root(split: Path) -> Path:
    """The dataset folder SPLIT belongs to: its parent when SPLIT is that parent's train/ or
    held-out split, else SPLIT itself."""
    try:
        parent_split = split_dirs(split.parent)
    except DatasetError:
        return split
    return split.parent if parent_split is not None and split in parent_split else split


def _pairs_without_images_dir(folder: Path) -> list[Sample] | None:
    """FOLDER's pairs when it has neither images/ nor masks/ but one folder per sample, a mask
    folder beside it or each mask beside its image; None when it is not laid out so."""
    if image_dir(folder) is not None or mask_dir(folder) is not None:
        return None
    if (pairs := _sample_folder_pairs(folder)) is not None:
        return pairs
    if (beside := _sibling_mask_dir(folder)) is not None:
        return _pair_folders(folder, folder, beside)
    return _same_folder_pairs(folder)


def _same_folder_pairs(folder: Path) -> list[Sample] | None:
    """Pairs kept side by side in FOLDER, each mask named after its image plus one ending of
    MASK_NAME_ENDINGS (Roboflow's 'Semantic Segmentation Masks' export: train/X.jpg +
    train/X_mask.png); None unless FOLDER holds such masks. Every other image needs its mask."""
    files = list_files(folder, IMAGE_EXTS)
    for ending in MASK_NAME_ENDINGS:
        named = [p for p in files if p.stem.endswith(ending) and len(p.stem) > len(ending)]
        # about one mask per image, not a folder of pictures one of which is named x_seg.jpg
        if named and 2 * len(named) >= len(files) - len(named):
            break
    else:
        return None
    masks = {p.stem[: -len(ending)]: p for p in named}
    if lossy := [p for p in masks.values() if p.suffix.lower() in JPEG_EXTS]:
        raise _jpeg_mask(lossy[0])
    images = _keyed(sorted(set(files) - set(named)))
    return _matched(images, masks, lambda stem: folder / f"{stem}{ending}.png", folder)


def paired_images(root: Path) -> list[Path]:
    """The images of a dataset laid out without images/ folders (one folder per sample, masks
    beside the images, or Pascal VOC's JPEGImages/ with the images that have a mask), in ROOT
    itself or its train/ and held-out split; [] otherwise."""
    if (voc := voc_pairs(root, masks_required=False)) is not None:
        return [s.image for s in voc.train + (voc.val or [])]
    split = split_dirs(root)
    images: list[Path] = []
    for folder in [d for d in split if d is not None] if split else [root]:
        images += [s.image for s in _pairs_without_images_dir(folder) or []]
    return images


# the folder beside a split's images that holds its masks: SegNet's CamVid train/ + trainannot/,
# Kaggle's CamVid train/ + train_labels/
MASK_DIR_SUFFIXES = ("annot", "_annot", "_labels", "_label", "_masks", "_mask", "_gt")


def _sibling_mask_dir(folder: Path) -> Path | None:
    """FOLDER's mask folder beside it (FOLDER + one of MASK_DIR_SUFFIXES), when FOLDER itself
    holds images; None otherwise (two candidates: an error naming both)."""
    if not list_files(folder, IMAGE_EXTS):
        return None
    names = tuple(folder.name + suffix for suffix in MASK_DIR_SUFFIXES)
    return _one_of(folder.parent, names, "mask")


def _pair_folders(folder: Path, img_dir: Path, mask_dir: Path) -> list[Sample]:
    """Pairs of the images in IMG_DIR and the masks in MASK_DIR (FOLDER's) by file name."""
    images = _by_stem(img_dir, IMAGE_EXTS)
    masks = _by_stem(mask_dir, MASK_EXTS)
    if not images and not masks:
        raise NotADatasetError(
            f"{folder}: no image/mask pairs found (images: {'/'.join(IMAGE_EXTS)}, masks: "
            f"{'/'.join(MASK_EXTS)})"
        )
    if set(images) != set(masks) and (keyed := _pair_by_suffixes(images, masks)) is not None:
        images, masks = keyed
    if set(images) - set(masks) and (jpegs := _by_stem(mask_dir, JPEG_EXTS)):
        raise _jpeg_mask(next(iter(jpegs.values())))
    return _matched(images, masks, lambda stem: mask_dir / f"{stem}.png", img_dir)


def _matched(
    images: dict[str, Path],
    masks: dict[str, Path],
    mask_for: Callable[[str], Path],
    img_dir: Path,
) -> list[Sample]:
    """Samples of images and masks keyed by one name, in name order; the first image without
    its mask (`mask_for` names the file it needs) or mask without its image fails, with how
    many more there are."""
    lonely_images = sorted(set(images) - set(masks))
    if lonely_images:
        first = lonely_images[0]
        other_case = [m for stem, m in masks.items() if stem.lower() == first.lower()]
        raise DatasetError(
            f"{images[first]}: image has no mask {mask_for(first)}"
            + (f" (and {len(lonely_images) - 1} more)" if len(lonely_images) > 1 else "")
            + (
                f"; {other_case[0].name} differs only in case, and names pair exactly: rename one"
                if other_case
                else ""
            )
        )
    lonely_masks = sorted(set(masks) - set(images))
    if lonely_masks:
        raise DatasetError(
            f"{masks[lonely_masks[0]]}: mask has no image in {img_dir}"
            + (f" (and {len(lonely_masks) - 1} more)" if len(lonely_masks) > 1 else "")
        )
    return [Sample(stem, images[stem], masks[stem]) for stem in sorted(images)]


def _sample_folder_pairs(folder: Path) -> list[Sample] | None:
    """Pairs laid out one folder per sample, every folder holding the same two file names, one
    of them named as a mask (`named_as_mask`): the off-road set YCOR's train/iid000123/rgb.jpg +
    labels.png. The sample's name is its folder's. None when FOLDER is not laid out so."""
    subdirs = list_dirs(folder)
    namings: Counter[tuple[str, str]] = Counter()  # (image, mask) file names, per folder
    for d in subdirs:
        names = [p.name for p in list_files(d, IMAGE_EXTS)]
        masks = [n for n in names if named_as_mask(Path(n).stem)]
        if len(names) == 2 and len(masks) == 1:
            namings[(names[1 - names.index(masks[0])], masks[0])] += 1
    if not namings:
        return None
    (image_name, mask_name), count = namings.most_common(1)[0]
    if 2 * count < len(subdirs):  # most folders must be samples named alike
        return None
    if Path(mask_name).suffix.lower() in JPEG_EXTS:
        raise _jpeg_mask(next(d / mask_name for d in subdirs if (d / mask_name).is_file()))
    if Path(mask_name).suffix.lower() not in MASK_EXTS:
        return None
    pairs = []
    for d in subdirs:
        for name in (image_name, mask_name):
            if not (d / name).is_file():
                raise DatasetError(
                    f"{d}: no {name}; every sample folder in {folder} must hold its image "
                    f"{image_name} and mask {mask_name}"
                )
        pairs.append(Sample(d.name, d / image_name, d / mask_name))
    return pairs


SEPARATORS = "_-."


def _shared_suffixes(stems: list[str]) -> list[str]:
    """'' and every ending that starts at a separator (_ - .) and every stem has, leaving a
    non-empty rest, shortest first: ['', '_L'] for CamVid's 0001TP_006690_L label files."""
    first = stems[0]
    tails = [
        first[i:]
        for i, ch in enumerate(first)
        if i > 0 and ch in SEPARATORS and all(s.endswith(first[i:]) for s in stems)
    ]
    return ["", *sorted((t for t in tails if all(len(s) > len(t) for s in stems)), key=len)]


def _pair_by_suffixes(
    images: dict[str, Path], masks: dict[str, Path]
) -> tuple[dict[str, Path], dict[str, Path]] | None:
    """Images and masks keyed by their names without an ending all images (and all masks)
    share, when that pairs every file and plain names do not: CamVid's X.png + X_L.png,
    Cityscapes' X_leftImg8bit.png + X_gtFine_labelIds.png, BDD100K's X.jpg + X_train_id.png.
    The shortest such endings win (one image X_006690 with X_006690_L keeps its name); None
    when none pairs them all (the plain names' errors are clearer then)."""
    if not images or not masks:
        return None
    candidates = sorted(
        ((a, b) for a in _shared_suffixes(list(images)) for b in _shared_suffixes(list(masks))),
        key=lambda ab: len(ab[0]) + len(ab[1]),
    )
    for image_tail, mask_tail in candidates:
        keyed = [
            {stem[: len(stem) - len(tail)]: path for stem, path in files.items()}
            for files, tail in ((images, image_tail), (masks, mask_tail))
        ]
        if keyed[0].keys() == keyed[1].keys() and len(keyed[0]) == len(images) == len(masks):
            return keyed[0], keyed[1]
    return None


# === Pascal VOC layout ===

VOC_IMAGES = "JPEGImages"
# labelme2voc.py writes SegmentationClass/*.npy and the PNGs in SegmentationClassPNG/
VOC_MASK_DIRS = ("SegmentationClass", "SegmentationClassPNG")
VOC_LISTS = Path("ImageSets", "Segmentation")


def voc_dirs(root: Path, *, masks_required: bool = True) -> tuple[Path, Path] | None:
    """(JPEGImages/, the mask folder) when ROOT is laid out as Pascal VOC; None otherwise. A
    JPEGImages/ without masks fails unless `masks_required` is False (then None)."""
    images = root / VOC_IMAGES
    if not images.is_dir():
        return None
    for name in VOC_MASK_DIRS:
        if (masks := root / name).is_dir() and list_files(masks, MASK_EXTS):
            return images, masks
    if not masks_required:
        return None
    raise DatasetError(
        f"{root}: has {VOC_IMAGES}/ but no {' or '.join(d + '/' for d in VOC_MASK_DIRS)} with "
        "masks; a Pascal VOC layout keeps its class masks there (CVAT: export as 'Segmentation "
        "mask'; labelme: labelme2voc.py)"
    )


def _voc_list(root: Path, names: tuple[str, ...]) -> Path | None:
    """ROOT's ImageSets/Segmentation/NAME.txt for one of NAMES (any case), None when none."""
    lists = root / VOC_LISTS
    if not lists.is_dir():
        return None
    found = [p for p in list_files(lists, (".txt",)) if p.stem.lower() in names]
    if len(found) > 1:
        raise DatasetError(
            f"{lists}: both {' and '.join(p.name for p in found)} found; keep one list per split"
        )
    return found[0] if found else None


def voc_pairs(root: Path, *, masks_required: bool = True) -> Splits | None:
    """ROOT's pairs when it is laid out as Pascal VOC (`voc_dirs`), else None. The samples are
    the images with a mask (VOC's JPEGImages/ also holds images made for detection only), split
    by ImageSets/Segmentation/train.txt and val.txt (also training/valid/validation) when there
    is a train list; a listed name without its image or mask fails naming the list's line."""
    dirs = voc_dirs(root, masks_required=masks_required)
    if dirs is None:
        return None
    images, masks = _by_stem(dirs[0], IMAGE_EXTS), _by_stem(dirs[1], MASK_EXTS)

    def pair(stem: str, where: str) -> Sample:
        for files, folder, what in ((images, dirs[0], "image"), (masks, dirs[1], "mask")):
            if stem not in files:
                raise DatasetError(f"{where}: {stem!r} has no {what} in {folder}")
        return Sample(stem, images[stem], masks[stem])

    train_list = _voc_list(root, TRAIN_DIRS)
    if train_list is None:  # voc_dirs found masks
        return Splits([pair(stem, str(masks[stem])) for stem in sorted(masks)], None, named=False)

    def listed(path: Path) -> list[Sample]:
        stems = [ln.split()[0] if ln.split() else "" for ln in read_text(path).splitlines()]
        out = [pair(s, f"{path}:{n}") for n, s in enumerate(stems, start=1) if s]
        if not out:
            raise DatasetError(f"{path}: lists no samples (one image name per line)")
        return out

    val_list = _voc_list(root, VAL_DIRS)
    return Splits(listed(train_list), None if val_list is None else listed(val_list))


@dataclass(frozen=True)
class Splits:
    """A dataset's pairs as its layout splits them: `val` None means no held-out split is named
    (a fraction of `train` is held out); `named` is False when the layout names no training
    split either (a VOC folder without lists: all of it is one pool, like DATA/images + masks)."""

    train: list[Sample]
    val: list[Sample] | None
    named: bool = True


def find_splits(root: Path) -> Splits | None:
    """ROOT's pairs when its layout splits them (train/ + val/ folders, images/train +
    masks/train, or Pascal VOC), None when ROOT is one pool of pairs (`find_pairs`)."""
    if (voc := voc_pairs(root)) is not None:
        return voc
    if (nested := _nested_splits(root)) is not None:
        return nested
    if (split := split_dirs(root)) is not None:
        return Splits(find_pairs(split[0]), None if split[1] is None else find_pairs(split[1]))
    return None


def is_split(root: Path) -> bool:
    """Whether ROOT names its training split: then its held-out pairs are what evaluation
    scores, as `edgeseg train` validated on them."""
    return (splits := find_splits(root)) is not None and splits.named


def _nested_splits(root: Path) -> Splits | None:
    """Splits kept inside images/ and masks/: images/train + masks/train (images/val +
    masks/val), as ADE20K publishes them (images/training + annotations/training); None when
    images/ holds no training split."""
    images, masks = image_dir(root), mask_dir(root)
    if masks is None or images is None or (split := split_dirs(images)) is None:
        return None

    def pairs(folder: Path, names: tuple[str, ...]) -> list[Sample]:
        beside = _one_of(masks, names, "mask split")
        if beside is None:
            raise DatasetError(
                f"{masks}: no {' or '.join(n + '/' for n in names[:2])} folder for the masks of "
                f"{folder}; keep each split's masks in {masks.name}/ under the split's name"
            )
        return _pair_folders(folder, folder, beside)

    val = None if split[1] is None else pairs(split[1], VAL_DIRS)
    return Splits(pairs(split[0], TRAIN_DIRS), val)


def split_dirs(root: Path) -> tuple[Path, Path | None] | None:
    """(ROOT/train, its held-out split folder or None) when ROOT is split into train/ (or
    training/) and val/ (or valid/, validation/); None when ROOT has no training split. Two
    folders for one split are an error naming both."""
    train = _one_of(root, TRAIN_DIRS, "training split")
    if train is None:
        return None
    return train, _one_of(root, VAL_DIRS, "held-out split")


DEFAULT_VAL_FRACTION = 0.2
"""Share of pairs held out for validation when a dataset names no held-out split (the one
default `edgeseg train`, `open_dataset` and evaluation of a model that recorded no split share)."""


def split_pairs(
    pairs: list[Sample], val_fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """Deterministic (train, val) split: same seed, same split; val_fraction >= 1 -> all val."""
    if val_fraction >= 1.0:
        return [], list(pairs)
    shuffled = pairs[:]
    random.Random(seed).shuffle(shuffled)
    n_val = max(1, round(len(pairs) * val_fraction)) if len(pairs) > 1 and val_fraction > 0 else 0
    by_stem = lambda s: s.stem  # noqa: E731
    return sorted(shuffled[n_val:], key=by_stem), sorted(shuffled[:n_val], key=by_stem)


def pairs_fingerprint(samples: list[Sample] | tuple[Sample, ...]) -> str:
    """A short digest of the pairs' names, whatever their order: the same pool of pairs gives
    the same fingerprint wherever the folder is, so evaluation can tell the folder a model was
    trained on (and score the pairs training held out) from another one."""
    names = "\n".join(sorted(s.stem for s in samples))
    return hashlib.sha256(names.encode()).hexdigest()[:16]
