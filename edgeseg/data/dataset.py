"""Find image + mask pairs on disk, read class names, detect the mask encoding and validate it all
before any training starts, so bad input fails in a second with the offending path named.

Layout: ROOT/images + ROOT/masks (pairs by stem), optionally ROOT/train/... and ROOT/val/...
(also named as published datasets name them: TRAIN_DIRS, VAL_DIRS, MASK_DIRS); a split may
instead hold one folder per sample (train/iid000123/rgb.jpg + labels.png) or keep its masks in
a folder beside it (train/ + trainannot/);
class names from ROOT/labels.txt, ROOT/classes.csv (name,r,g,b) or an explicit list.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgeseg.core.errors import DatasetError, ModelError
from edgeseg.core.processing import IMAGE_EXTS, MaskEncoding, png_palette, read_image, read_mask
from edgeseg.core.spec import UnlistedColors, check_class_names

JPEG_EXTS = (".jpg", ".jpeg")
# the splits' and the mask folder's names, as published datasets give them
TRAIN_DIRS = ("train", "training")
VAL_DIRS = ("val", "valid", "validation")
MASK_DIRS = ("masks", "labels", "annotations")
MASK_EXTS = (".png", ".bmp", ".tif", ".tiff")  # lossless only: JPEG blends class ids


@dataclass(frozen=True)
class Sample:
    """One image and its mask, paired by file stem."""

    stem: str
    image: Path
    mask: Path


@dataclass(frozen=True)
class Dataset:
    """A validated dataset: class names, mask encoding and the train / val pairs."""

    root: Path
    class_names: tuple[str, ...]
    encoding: MaskEncoding
    ignore_index: int
    train: tuple[Sample, ...]
    val: tuple[Sample, ...]
    colors: np.ndarray | None = None  # RGB per listed class, for colour-coded masks
    names_source: str = ""  # where the class names came from, for error messages
    # listed classes left out (`--ignore-class`): their pixels become ignore_index, and
    # class_names holds the others, renumbered in their listed order
    ignored: tuple[str, ...] = ()
    lut: np.ndarray | None = field(default=None, repr=False, compare=False)  # listed id -> id
    unlisted_colors: UnlistedColors = "error"  # colour masks' colours not in classes.csv

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def read_mask(self, sample: Sample) -> np.ndarray:
        """The pair's mask as a uint8 class-index map in `class_names` ids (unchecked)."""
        return self._renumber(self._read_listed(sample))

    def load(self, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        """(OpenCV image, uint8 class-index mask) for one pair, checked for size and values."""
        image = read_image(sample.image)
        mask = self._read_listed(sample)
        listed = self.num_classes + len(self.ignored)
        check_pair(sample, image, mask, listed, self.ignore_index, self.names_source)
        return image, self._renumber(mask)

    def _read_listed(self, sample: Sample) -> np.ndarray:
        return read_mask(
            sample.mask,
            self.encoding,
            colors=self.colors,
            ignore_index=self.ignore_index,
            unlisted_colors=self.unlisted_colors,
        )

    def _renumber(self, mask: np.ndarray) -> np.ndarray:
        return mask if self.lut is None else self.lut[mask]

    def iter_split(self, split: str) -> Iterator[tuple[Sample, np.ndarray, np.ndarray]]:
        """Stream (sample, image, mask) for 'train', 'val' or 'all', one pair in memory at once."""
        samples = {"train": self.train, "val": self.val, "all": self.train + self.val}[split]
        for s in samples:
            image, mask = self.load(s)
            yield s, image, mask


def check_pair(
    sample: Sample,
    image: np.ndarray,
    mask: np.ndarray,
    num_classes: int,
    ignore: int,
    names_source: str = "",
) -> None:
    """Raise DatasetError naming the file when sizes differ or mask values exceed the classes."""
    if image.shape[:2] != mask.shape[:2]:
        raise DatasetError(
            f"{sample.mask}: mask is {mask.shape[1]}x{mask.shape[0]} but image "
            f"{sample.image.name} is {image.shape[1]}x{image.shape[0]}; a mask must match its image"
        )
    values = np.unique(mask)
    bad = values[(values >= num_classes) & (values != ignore)]
    if bad.size:
        raise DatasetError(
            f"{sample.mask}: mask values {bad.tolist()} are >= the number of classes ({num_classes}"
            f"{' in ' + names_source if names_source else ''}); fix the mask, add class names "
            f"(list a void class and train with --ignore-class NAME to leave it out), or use "
            f"{ignore} for ignored pixels"
        )


def _files(folder: Path, exts: tuple[str, ...]) -> list[Path]:
    """FOLDER's files with one of `exts`, sorted by name; hidden files (macOS ._*, .DS_Store) are
    skipped."""
    return [
        p
        for p in sorted(folder.iterdir())
        if not p.name.startswith(".") and p.suffix.lower() in exts and p.is_file()
    ]


def _by_stem(folder: Path, exts: tuple[str, ...]) -> dict[str, Path]:
    """FOLDER's files with one of `exts` (`_files`) keyed by stem; a repeated stem fails."""
    found: dict[str, Path] = {}
    for p in _files(folder, exts):
        if p.stem in found:
            raise DatasetError(f"{p}: same name as {found[p.stem].name}; keep one file per stem")
        found[p.stem] = p
    return found


def _one_of(root: Path, names: tuple[str, ...], what: str) -> Path | None:
    """The one folder of ROOT named one of NAMES, None when there is none; two are an error
    (which one the user meant is not ours to guess)."""
    found = [root / name for name in names if (root / name).is_dir()]
    if len(found) > 1:
        raise DatasetError(
            f"{root}: both {' and '.join(d.name + '/' for d in found)} found; keep one {what} "
            "folder (rename or move the other)"
        )
    return found[0] if found else None


def mask_dir(folder: Path) -> Path | None:
    """FOLDER's masks/ (or labels/ as Mapillary Vistas names it, or annotations/); None if none."""
    return _one_of(folder, MASK_DIRS, "mask")


def find_pairs(folder: Path) -> list[Sample]:
    """Pairs in FOLDER/images and FOLDER/masks (or labels/, annotations/), in one folder per
    sample (`_sample_folder_pairs`), or images in FOLDER with masks in a sibling folder
    (`_sibling_mask_dir`); an image without mask (or the reverse) fails."""
    if (pairs := _pairs_without_images_dir(folder)) is not None:
        return pairs
    img_dir, masks = folder / "images", mask_dir(folder)
    if folder.name == "images" and not img_dir.is_dir() and mask_dir(folder.parent) is not None:
        raise DatasetError(
            f"{folder}: this is a dataset's images/ folder; pass the dataset folder instead: "
            f"{_dataset_root(folder.parent)}"
        )
    if masks is None or not img_dir.is_dir():
        raise DatasetError(
            f"{img_dir if not img_dir.is_dir() else folder / 'masks'}: folder not found; a "
            "dataset needs images/ and masks/ side by side (or one folder per sample holding its "
            "image and mask, e.g. rgb.jpg + labels.png, or images with their masks in a folder "
            "beside, e.g. train/ + trainannot/ or train_labels/)"
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
    """FOLDER's pairs when it has neither images/ nor masks/ but one folder per sample or a
    mask folder beside it; None when it is not laid out either way."""
    if (folder / "images").is_dir() or mask_dir(folder) is not None:
        return None
    if (pairs := _sample_folder_pairs(folder)) is not None:
        return pairs
    if (beside := _sibling_mask_dir(folder)) is not None:
        return _pair_folders(folder, folder, beside)
    return None


def paired_images(root: Path) -> list[Path]:
    """The images of a dataset laid out without images/ folders (one folder per sample, or masks
    beside the images), in ROOT itself or its train/ and held-out split; [] otherwise."""
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
    if not _files(folder, IMAGE_EXTS):
        return None
    names = tuple(folder.name + suffix for suffix in MASK_DIR_SUFFIXES)
    return _one_of(folder.parent, names, "mask")


def _pair_folders(folder: Path, img_dir: Path, mask_dir: Path) -> list[Sample]:
    """Pairs of the images in IMG_DIR and the masks in MASK_DIR (FOLDER's) by file name."""
    images = _by_stem(img_dir, IMAGE_EXTS)
    masks = _by_stem(mask_dir, MASK_EXTS)
    if not images and not masks:
        raise DatasetError(
            f"{folder}: no image/mask pairs found (images: {'/'.join(IMAGE_EXTS)}, masks: "
            f"{'/'.join(MASK_EXTS)})"
        )
    if set(images) != set(masks) and (keyed := _pair_by_suffixes(images, masks)) is not None:
        images, masks = keyed
    lonely_images = sorted(set(images) - set(masks))
    if lonely_images and (lossy := _by_stem(mask_dir, JPEG_EXTS)):
        raise DatasetError(
            f"{next(iter(lossy.values()))}: JPEG masks are not read: lossy compression blends "
            "class ids at every edge; export the masks as PNG"
        )
    if lonely_images:
        raise DatasetError(
            f"{images[lonely_images[0]]}: image has no mask "
            f"{mask_dir / (lonely_images[0] + '.png')}"
            + (f" (and {len(lonely_images) - 1} more)" if len(lonely_images) > 1 else "")
        )
    lonely_masks = sorted(set(masks) - set(images))
    if lonely_masks:
        raise DatasetError(
            f"{masks[lonely_masks[0]]}: mask has no image in {img_dir}"
            + (f" (and {len(lonely_masks) - 1} more)" if len(lonely_masks) > 1 else "")
        )
    return [Sample(stem, images[stem], masks[stem]) for stem in sorted(images)]


# a file in a sample folder whose name holds one of these is the mask (labels.png, mask.png,
# gt.png, annotation.png, segmentation.png); the other image file is the image
MASK_NAME_HINTS = ("label", "mask", "gt", "annot", "seg")


def _sample_folder_pairs(folder: Path) -> list[Sample] | None:
    """Pairs laid out one folder per sample, every folder holding the same two file names, one
    of them named as a mask (MASK_NAME_HINTS): the off-road set YCOR's train/iid000123/rgb.jpg +
    labels.png. The sample's name is its folder's. None when FOLDER is not laid out so."""
    subdirs = [d for d in sorted(folder.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    if not subdirs:
        return None
    first = [p.name for p in _files(subdirs[0], IMAGE_EXTS)]
    masks = [n for n in first if _named_as_mask(Path(n).stem)]
    if len(first) != 2 or len(masks) != 1:
        return None
    mask_name = masks[0]
    image_name = first[1 - first.index(mask_name)]
    if Path(mask_name).suffix.lower() in JPEG_EXTS:
        raise DatasetError(
            f"{subdirs[0] / mask_name}: JPEG masks are not read: lossy compression blends "
            "class ids at every edge; export the masks as PNG"
        )
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


def _named_as_mask(stem: str) -> bool:
    """Whether a word of STEM starts like a mask's name: labels, gtFine, color_mask (not night)."""
    words = "".join(c if c.isalnum() else " " for c in stem.lower()).split()
    return any(w.startswith(MASK_NAME_HINTS) for w in words)


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


CLASS_CSV_NAMES = ("classes.csv", "class_dict.csv")  # name,r,g,b per class


def read_class_names(root: Path) -> tuple[tuple[str, ...], np.ndarray | None, Path] | None:
    """(names, RGB colours or None, file) from classes.csv (or class_dict.csv, the same columns
    as Kaggle's CamVid ships them) or labels.txt in root or its parent."""
    for folder in (root, root.parent):
        for csv_name in CLASS_CSV_NAMES:
            if (csv_path := folder / csv_name).is_file():
                return (*_read_classes_csv(csv_path), csv_path)
        txt = folder / "labels.txt"
        if txt.is_file():
            names = [line.strip() for line in txt.read_text().splitlines() if line.strip()]
            return tuple(names), None, txt
    return None


def _check_names(names: tuple[str, ...], source: str) -> None:
    """Class names must be unique and free of control characters (they reach the terminal)."""
    try:
        check_class_names(names, "class names")
    except ModelError as exc:
        raise DatasetError(f"{source}: {str(exc).replace('field ', '', 1)}") from None


def _read_classes_csv(csv_path: Path) -> tuple[tuple[str, ...], np.ndarray]:
    names: list[str] = []
    colors: list[list[int]] = []
    with csv_path.open(newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if not row or row[0].strip().lower() in ("name", "#") or row[0].startswith("#"):
                continue
            if len(row) != 4:
                raise DatasetError(f"{csv_path}:{lineno}: expected name,r,g,b, got {row}")
            try:
                rgb = [int(v) for v in row[1:]]
            except ValueError:
                rgb = [-1]
            if not all(0 <= v <= 255 for v in rgb):
                raise DatasetError(
                    f"{csv_path}:{lineno}: r,g,b must be integers 0..255, got {row[1:]}"
                )
            names.append(row[0].strip())
            colors.append(rgb)
    return tuple(names), np.array(colors, np.uint8).reshape(-1, 3)


HINT_MASKS = 16  # masks read to say what a dataset without class names holds
HINT_SHOWN = 8  # colours / ids listed in that message


def _naming_hint(samples: list[Sample]) -> str:
    """How to name the classes of a dataset that has no names yet, from what its first masks
    hold: the colours classes.csv must list, or the ids labels.txt must name in order."""
    generic = (
        "add labels.txt (one name per line) or classes.csv (name,r,g,b), or pass --classes a,b,c"
    )
    masks = [s.mask for s in samples[:HINT_MASKS]]
    if not masks:
        return generic
    if png_palette(masks[0]) is not None:
        return (
            f"its masks are palette PNGs (e.g. {masks[0]}): add labels.txt naming the classes in "
            "palette order (one per line), or pass --classes a,b,c"
        )
    colours: set[int] = set()  # 0xRRGGBB
    ids: set[int] = set()
    for path in masks:
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if raw is None or raw.dtype != np.uint8:
            return generic  # unreadable or 16-bit: open_dataset's checks name the problem
        if raw.ndim == 3:
            b, g, r = (raw[:, :, i].astype(np.int32) for i in range(3))  # alpha ignored
            if (b != g).any() or (g != r).any():
                colours |= set(np.unique((r << 16) | (g << 8) | b).tolist())
                continue
            raw = raw[:, :, 0]
        ids |= set(np.unique(raw).tolist())
    seen = f"in the first {len(masks)} mask(s)"
    if colours:
        shown = sorted(colours)[:HINT_SHOWN]
        listed = ", ".join(f"#{c:06X}" for c in shown)
        more = f" and {len(colours) - len(shown)} more" if len(colours) > len(shown) else ""
        rgb = f"{shown[0] >> 16},{(shown[0] >> 8) & 255},{shown[0] & 255}"
        return (
            f"its masks are colour-coded ({len(colours)} colour(s) {seen}: {listed}{more}): add "
            f"classes.csv with one name,r,g,b line per class colour, such as NAME,{rgb}"
        )
    if 255 in ids and ids <= {0, 255}:
        return (
            f"its masks are binary (0 and 255 {seen}): add labels.txt with 2 names, the 0 class "
            "first (e.g. background, then the object), or pass --classes background,object"
        )
    values = sorted(ids - {255})
    if not values:
        return generic
    listed = ", ".join(str(v) for v in values[:HINT_SHOWN]) + (
        " ..." if len(values) > HINT_SHOWN else ""
    )
    top = max(values, default=0)
    return (
        f"its masks hold class ids {listed} {seen}: add labels.txt with {top + 1} names, one per "
        f"line for ids 0..{top} (255 is 'ignore'), or pass --classes with {top + 1} names"
    )


def _detect_encoding(samples: list[Sample], num_classes: int, has_colors: bool) -> MaskEncoding:
    if has_colors:
        return "rgb"
    first = samples[0].mask
    if png_palette(first) is not None:
        return "palette"
    if num_classes == 2:
        seen: set[int] = set()
        for s in samples:
            raw = cv2.imread(str(s.mask), cv2.IMREAD_GRAYSCALE)
            if raw is None:
                raise DatasetError(
                    f"{s.mask}: cannot read mask (missing, corrupt or unsupported format)"
                )
            seen |= set(np.unique(raw).tolist())
            if not seen <= {0, 255}:
                return "index"
        if 255 in seen:
            return "binary"
    return "index"


def _leave_out(
    names: tuple[str, ...], ignored: tuple[str, ...], ignore_index: int, source: str
) -> tuple[tuple[str, ...], np.ndarray | None]:
    """(the classes kept, a 256-entry lookup table from listed ids to kept ids, with the ignored
    classes' ids mapped to `ignore_index`; None when nothing is ignored)."""
    if not ignored:
        return names, None
    unknown = [n for n in ignored if n not in names]
    if unknown:
        raise DatasetError(
            f"--ignore-class {', '.join(unknown)}: not a class in {source}; its classes are "
            f"{', '.join(names)}"
        )
    kept = tuple(n for n in names if n not in ignored)
    if len(kept) < 2:
        raise DatasetError(
            f"--ignore-class {', '.join(ignored)}: leaves {len(kept)} of the {len(names)} classes "
            f"in {source}; a model needs at least 2"
        )
    lut = np.arange(256, dtype=np.uint8)  # values past the listed classes stay as they are
    for i, name in enumerate(names):
        lut[i] = ignore_index if name in ignored else kept.index(name)
    return kept, lut


def split_dirs(root: Path) -> tuple[Path, Path | None] | None:
    """(ROOT/train, its held-out split folder or None) when ROOT is split into train/ (or
    training/) and val/ (or valid/, validation/); None when ROOT has no training split. Two
    folders for one split are an error naming both."""
    train = _one_of(root, TRAIN_DIRS, "training split")
    if train is None:
        return None
    return train, _one_of(root, VAL_DIRS, "held-out split")


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


def open_dataset(
    root: str | Path,
    *,
    classes: list[str] | tuple[str, ...] | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    ignore_index: int = 255,
    validate: bool = True,
    progress: Callable[[int, int], None] | None = None,
    ignore_classes: Sequence[str] = (),
    unlisted_colors: UnlistedColors = "error",
) -> Dataset:
    """Discover, pair, split and (by default) validate every pair of a dataset folder.

    ROOT may hold train/ and val/ (or valid/, validation/), or be a split itself; a split holds
    images/ + masks/, one folder per sample, or images with their masks in a folder beside it
    (`find_pairs`). A ROOT without train/ is split deterministically with `seed` (a folder like
    DATA/val is all 'val' when opened for evaluation: pass val_fraction=1.0).
    `ignore_classes`: listed class names whose pixels are not trained or scored (a dataset's
    'void' or 'unlabelled'); the model gets the others.
    `unlisted_colors='ignore'`: colour-mask pixels of colours not in classes.csv are ignored
    instead of refused (blended edges); index-coded masks have no colours to ignore.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    if (split := split_dirs(root)) is not None:
        train = find_pairs(split[0])
        if split[1] is not None:
            val = find_pairs(split[1])
        else:  # train/ alone: hold out a seeded fraction of it
            train, val = split_pairs(train, val_fraction, seed)
    else:
        train, val = split_pairs(find_pairs(root), val_fraction, seed)
    found = read_class_names(root)
    colors = None
    if classes:
        names, source = tuple(classes), "the given class list"
        if found and found[1] is not None and len(found[1]) == len(names):
            colors = found[1]
    elif found:
        names, colors, source_path = found
        source = str(source_path)
    else:
        raise DatasetError(f"{root}: no class names; {_naming_hint(train + val)}")
    if len(names) < 2:
        raise DatasetError(f"{source}: need at least 2 classes, got {len(names)}: {list(names)}")
    _check_names(names, source)
    everything = train + val
    encoding = _detect_encoding(everything, len(names), colors is not None)
    kept, lut = _leave_out(names, tuple(ignore_classes), ignore_index, source)
    ds = Dataset(
        root,
        kept,
        encoding,
        ignore_index,
        tuple(train),
        tuple(val),
        colors,
        source,
        ignored=tuple(n for n in names if n not in kept),
        lut=lut,
        unlisted_colors=unlisted_colors,
    )
    if validate:
        for i, s in enumerate(everything):
            ds.load(s)
            if progress:
                progress(i + 1, len(everything))
    return ds
