"""A dataset's meaning, checked before any training starts: class names (labels.txt,
classes.csv or an explicit list), the mask encoding, left-out classes, and every pair read and
validated, so bad input fails in a second with the offending path named. Where the pairs are on
disk is layout.py's.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeseg.core.errors import DatasetError, ModelError, shortlist
from edgeseg.core.processing import (
    TRAIN_DIRS,
    MaskEncoding,
    colour_keys,
    is_gray,
    is_palette_png,
    png_palette,
    read_image,
    read_mask,
    read_stored_mask,
)
from edgeseg.core.spec import UnlistedColors, check_class_names
from edgeseg.data.layout import (
    DEFAULT_VAL_FRACTION,
    Sample,
    find_pairs,
    find_splits,
    read_text,
    split_pairs,
)


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
    # val is a seeded fraction of the pairs (the data names no held-out split of its own)
    val_by_fraction: bool = False

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def summary(self) -> str:
        """One line on what was found, so a wrong layout, split or class list shows up front:
        '12 train / 4 val pairs, 5 classes from labelmap.txt, colour-coded masks'."""
        source = Path(self.names_source)
        if source.is_relative_to(self.root):  # "labels.txt", "train/_classes.csv"
            source = source.relative_to(self.root)
        left_out = f" ({len(self.ignored)} more left out)" if self.ignored else ""
        return (
            f"{len(self.train)} train / {len(self.val)} val pairs, {self.num_classes} classes"
            f"{left_out} from {source}, {ENCODING_WORDS[self.encoding]} masks"
        )

    def ignored_pixels(self) -> str:
        """What the ignored pixels of these masks are, for the lines that count them: a colour
        mask's unlisted colours (with --unlisted-colors ignore) are not 'value 255'."""
        parts = []
        if self.encoding == "rgb":
            if self.unlisted_colors == "ignore":
                parts.append(f"colours not in {Path(self.names_source).name or 'the class list'}")
        else:
            parts.append(f"value {self.ignore_index} in masks")
        if self.ignored:
            parts.append(f"left-out {', '.join(self.ignored)}")
        return " and ".join(parts) or "none"

    def void_hint(self) -> str | None:
        """A note when a kept class is named as datasets name unannotated pixels (CamVid's
        void, Cityscapes' unlabeled): trained as a class, it teaches the model to predict
        clutter; None when no class is named so."""
        void = [n for n in self.class_names if n.strip().lower().strip("_") in VOID_NAMES]
        if not void:
            return None
        return (
            f"class {void[0]!r} is trained and scored like the others; if it marks pixels no one "
            f"annotated, leave it out with --ignore-class {void[0]}"
        )

    def palette(self) -> tuple[tuple[int, int, int], ...] | None:
        """The dataset's own colour for each kept class (colour-coded masks: the class list's
        colours; palette PNGs: the first mask's palette), so overlays, the legend and the live
        page show the colours its labels use; None for index masks, which carry no colours."""
        listed: np.ndarray | None = None
        if self.encoding == "rgb":
            listed = self.colors
        elif self.encoding == "palette" and (first := self.train + self.val):
            listed = png_palette(first[0].mask)
        count = self.num_classes + len(self.ignored)
        if listed is None or len(listed) < count:
            return None
        lut = self.lut if self.lut is not None else np.arange(256, dtype=np.uint8)
        kept = [i for i in range(count) if lut[i] != self.ignore_index]
        return tuple((int(r), int(g), int(b)) for r, g, b in listed[kept])

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
            colors_source=self._colors_source(),
        )

    def _colors_source(self) -> str:
        """The file the mask colours come from, as errors name it (labelmap.txt, class_dict.csv);
        classes.csv when the names were given on the command line."""
        source = Path(self.names_source)
        return source.name if source.suffix in (".csv", ".txt") else "classes.csv"

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
        shown = str(bad[:8].tolist())[:-1] + (
            f", ... ({bad.size} values)]" if bad.size > 8 else "]"
        )
        if bad.size > 8:  # many stray values: edges blended by anti-aliasing or resizing
            raise DatasetError(
                f"{sample.mask}: mask values {shown} are >= the number of classes ({num_classes}"
                f"{' in ' + names_source if names_source else ''}); so many values look like "
                "edges blended by anti-aliasing or a resize: save masks without smoothing and "
                "resize them nearest-neighbour, so every pixel holds a class id"
            )
        raise DatasetError(
            f"{sample.mask}: mask values {shown} are >= the number of classes ({num_classes}"
            f"{' in ' + names_source if names_source else ''}); fix the mask, add class names "
            f"(list a void class and train with --ignore-class NAME to leave it out), or use "
            f"{ignore} for ignored pixels"
        )


CLASS_CSV_NAMES = ("classes.csv", "class_dict.csv")  # name,r,g,b per class
# one name per line: ours, and labelme2voc.py's (whose first class is _background_)
CLASS_LIST_NAMES = ("labels.txt", "class_names.txt")
LABELMAP_NAME = "labelmap.txt"  # name:r,g,b:parts:actions per class, as CVAT's VOC export
PIXEL_CSV_NAME = "_classes.csv"  # "Pixel Value, Class" per class, as Roboflow exports masks
# names datasets give the pixels no one annotated (CamVid, Cityscapes, labelme's __ignore__)
VOID_NAMES = ("void", "unlabeled", "unlabelled", "ignore", "ignored", "unannotated", "unknown")
ENCODING_WORDS = {
    "rgb": "colour-coded",
    "palette": "palette PNG",
    "index": "class-index",
    "binary": "binary 0/255",
}


def read_class_names(root: Path) -> tuple[tuple[str, ...], np.ndarray | None, Path] | None:
    """(names, RGB colours or None, file) from classes.csv (or class_dict.csv, the same columns
    as Kaggle's CamVid ships them), labels.txt (or class_names.txt, labelme2voc's), or
    labelmap.txt (CVAT's Pascal VOC export) in root or its parent; or from the `_classes.csv`
    (pixel value, class) that Roboflow's mask export puts in root, its parent or its train/."""
    found = _read_class_files(root)
    if found is not None:
        return found
    splits = [root / d for d in TRAIN_DIRS]
    for folder in (root, root.parent, *splits):
        if (pixel_csv := folder / PIXEL_CSV_NAME).is_file():
            return _read_pixel_value_csv(pixel_csv), None, pixel_csv
    return None


def _read_pixel_value_csv(path: Path) -> tuple[str, ...]:
    """Class names by pixel value from Roboflow's `_classes.csv` (`Pixel Value, Class` header,
    then `0, background` ...); the values must be 0..N-1, as the masks' class ids."""
    by_value: dict[int, str] = {}
    rows = csv.reader(io.StringIO(read_text(path), newline=""), skipinitialspace=True)
    for lineno, row in enumerate(rows, start=1):
        if not row or (lineno == 1 and not row[0].strip().isdigit()):
            continue  # the header
        if len(row) != 2 or not row[0].strip().isdigit():
            raise DatasetError(f"{path}:{lineno}: expected 'pixel value, class', got {row}")
        by_value[int(row[0])] = row[1].strip()
    if sorted(by_value) != list(range(len(by_value))):
        raise DatasetError(
            f"{path}: pixel values must be 0..{len(by_value) - 1} (one per class), got "
            f"{sorted(by_value)}"
        )
    return tuple(by_value[v] for v in range(len(by_value)))


def _read_class_files(root: Path) -> tuple[tuple[str, ...], np.ndarray | None, Path] | None:
    """The class files of root, else of its parent: the first found in the order classes.csv,
    class_dict.csv, labels.txt, class_names.txt, labelmap.txt; one folder's files that name
    different classes are refused, naming both (which one a user edited is theirs to say)."""
    for folder in (root, root.parent):
        found = [_read_class_file(folder / name) for name in _CLASS_FILES]
        present = [f for f in found if f is not None]
        if not present:
            continue
        first = present[0]
        for other in present[1:]:
            if other[0] != first[0]:
                raise DatasetError(
                    f"{first[2]} and {other[2].name} name different classes "
                    f"({shortlist(first[0])} against {shortlist(other[0])}): "
                    "remove or correct one of them"
                )
        return first
    return None


_CLASS_FILES = (*CLASS_CSV_NAMES, *CLASS_LIST_NAMES, LABELMAP_NAME)


def _read_class_file(path: Path) -> tuple[tuple[str, ...], np.ndarray | None, Path] | None:
    """One class file's (names, RGB colours or None, path); None when it is not there."""
    if not path.is_file():
        return None
    if path.name in CLASS_CSV_NAMES:
        return (*_read_classes_csv(path), path)
    if path.name == LABELMAP_NAME:
        return (*_read_labelmap(path), path)
    names = [line.strip() for line in read_text(path).splitlines() if line.strip()]
    return tuple(names), None, path


def _read_labelmap(path: Path) -> tuple[tuple[str, ...], np.ndarray | None]:
    """Names and RGB colours (None when no line gives one) from a Pascal VOC labelmap.txt:
    `name:r,g,b:parts:actions` per class in id order, `#` comments (CVAT, Datumaro)."""
    names: list[str] = []
    colors: list[list[int] | None] = []
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(":")
        rgb = fields[1].split(",") if len(fields) > 1 and fields[1].strip() else []
        try:
            values = [int(v) for v in rgb]
        except ValueError:
            values = [-1]
        if len(fields) != 4 or (
            rgb and (len(values) != 3 or not all(0 <= v <= 255 for v in values))
        ):
            raise DatasetError(
                f"{path}:{lineno}: expected name:r,g,b:parts:actions (r,g,b integers 0..255, "
                f"parts and actions may be empty), got {line.strip()!r}"
            )
        names.append(fields[0].strip())
        colors.append(values or None)
    _check_distinct_colours(names, colors, path)
    given = [c for c in colors if c is not None]
    if given and len(given) != len(colors):
        missing = names[colors.index(None)]
        raise DatasetError(
            f"{path}: class {missing!r} has no colour; give every class r,g,b, or none of them"
        )
    return tuple(names), (np.array(given, np.uint8).reshape(-1, 3) if given else None)


def _check_names(names: tuple[str, ...], source: str) -> None:
    """Class names must be unique and free of control characters (they reach the terminal)."""
    try:
        check_class_names(names, "class names")
    except ModelError as exc:
        raise DatasetError(f"{source}: {str(exc).replace('field ', '', 1)}") from None


def _read_classes_csv(csv_path: Path) -> tuple[tuple[str, ...], np.ndarray]:
    names: list[str] = []
    colors: list[list[int]] = []
    rows = csv.reader(io.StringIO(read_text(csv_path), newline=""))
    for lineno, row in enumerate(rows, start=1):
        if not row or row[0].strip().lower() in ("name", "#") or row[0].startswith("#"):
            continue
        if len(row) != 4:
            raise DatasetError(f"{csv_path}:{lineno}: expected name,r,g,b, got {row}")
        try:
            rgb = [int(v) for v in row[1:]]
        except ValueError:
            rgb = [-1]
        if not all(0 <= v <= 255 for v in rgb):
            raise DatasetError(f"{csv_path}:{lineno}: r,g,b must be integers 0..255, got {row[1:]}")
        names.append(row[0].strip())
        colors.append(rgb)
    _check_distinct_colours(names, colors, csv_path)
    return tuple(names), np.array(colors, np.uint8).reshape(-1, 3)


def _check_distinct_colours(
    names: list[str], colors: list[list[int]] | list[list[int] | None], path: Path
) -> None:
    """Two classes with one colour cannot be told apart in a colour mask: the second would never
    be trained (its pixels decode as the first), so the list is refused naming both."""
    seen: dict[tuple[int, ...], str] = {}
    for name, rgb in zip(names, colors, strict=True):
        if rgb is None:
            continue
        if (key := tuple(rgb)) in seen:
            hex_rgb = "#" + "".join(f"{v:02X}" for v in key)
            raise DatasetError(
                f"{path}: classes {seen[key]!r} and {name!r} share the colour {hex_rgb}; "
                "list each colour once (one class for pixels of that colour)"
            )
        seen[key] = name


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
        try:
            raw = read_stored_mask(path)
        except DatasetError:
            return generic  # the pairs' own checks name an unreadable mask
        if raw.ndim == 3:
            if not is_gray(raw):
                colours |= set(np.unique(colour_keys(raw[:, :, ::-1])).tolist())  # BGR -> RGB
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
    listed = shortlist(values, HINT_SHOWN)
    top = values[-1]
    if top == 0:  # one class: naming it would only lead to "need at least 2 classes"
        return (
            f"its masks hold only 0 {seen}: no class is marked in them; check that the masks "
            "are the label images (a mask drawn in 1, 2 ... looks black, but holds them)"
        )
    return (
        f"its masks hold class ids {listed} {seen}: add labels.txt with {top + 1} names, one per "
        f"line for ids 0..{top} (255 is 'ignore'), or pass --classes with {top + 1} names"
    )


def _detect_encoding(samples: list[Sample], num_classes: int, has_colors: bool) -> MaskEncoding:
    """How the masks encode classes: colours (a class file with colours), palette PNGs (all of
    them), 0/255 binary (a 2-class set whose masks hold only 0 and 255) or class ids. Masks
    that mix two encodings are refused naming one of each, rather than read one way."""
    if has_colors:
        return "rgb"
    palette = [s.mask for s in samples if is_palette_png(s.mask)]
    if palette:
        if len(palette) < len(samples):
            other = next(s.mask for s in samples if s.mask not in set(palette))
            raise DatasetError(
                f"masks mix palette PNGs ({palette[0]}) and others ({other}): save every mask "
                "the same way (all palette PNGs, or all class ids as gray values)"
            )
        return "palette"
    if num_classes != 2:
        return "index"
    only_255 = with_1 = None  # a mask of 0/255 values, a mask of 0/1 values
    for s in samples:
        raw = read_stored_mask(s.mask)
        if raw.ndim == 3:
            if not is_gray(raw):
                return "index"  # colour masks without colours: read_mask says what to add
            raw = raw[:, :, 0]
        values = set(np.unique(raw).tolist())
        if not values <= {0, 1, 255} or {1, 255} <= values:
            return "index"  # class ids (255 ignored), or stray values check_pair names
        if 255 in values:
            only_255 = only_255 or s.mask
        if 1 in values:
            with_1 = with_1 or s.mask
    if only_255 is not None and with_1 is not None:
        raise DatasetError(
            f"masks mix 0/255 ({only_255}) and 0/1 ({with_1}) values for 2 classes: save every "
            "mask the same way (255 means 'ignore' in 0/1 masks)"
        )
    return "binary" if only_255 is not None else "index"


def match_class_names(
    given: Sequence[str], names: Sequence[str]
) -> tuple[tuple[str, ...], list[str]]:
    """(the listed names the given ones mean, the given names that mean none): a name as listed,
    else the one listed name equal to it ignoring case (`--ignore-class void` for CamVid's
    'Void'); two listed names equal ignoring case need the exact one."""
    found: list[str] = []
    unknown: list[str] = []
    for name in given:
        same = [n for n in names if n.casefold() == name.casefold()]
        if name in names:
            found.append(name)
        elif len(same) == 1:
            found.append(same[0])
        else:
            unknown.append(name)
    return tuple(found), unknown


def _leave_out(
    names: tuple[str, ...], ignored: tuple[str, ...], ignore_index: int, source: str
) -> tuple[tuple[str, ...], np.ndarray | None]:
    """(the classes kept, a 256-entry lookup table from listed ids to kept ids, with the ignored
    classes' ids mapped to `ignore_index`; None when nothing is ignored)."""
    if not ignored:
        return names, None
    ignored, unknown = match_class_names(ignored, names)
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


def open_dataset(
    root: str | Path,
    *,
    classes: list[str] | tuple[str, ...] | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = 0,
    ignore_index: int = 255,
    validate: bool = True,
    progress: Callable[[int, int], None] | None = None,
    ignore_classes: Sequence[str] = (),
    unlisted_colors: UnlistedColors = "error",
) -> Dataset:
    """Discover, pair, split and (by default) validate every pair of a dataset folder.

    ROOT may hold train/ and val/ (or valid/, validation/), images/train + masks/train, a
    Pascal VOC layout, or be a split itself (`find_splits`); a split holds images/ + masks/, one
    folder per sample, images with their masks in a folder beside it or each mask beside its
    image (`find_pairs`). Without a named held-out split, a seeded fraction is held out (a
    folder like DATA/val is all 'val' when opened for evaluation: pass val_fraction=1.0).
    `ignore_classes`: listed class names whose pixels are not trained or scored (a dataset's
    'void' or 'unlabelled'); the model gets the others.
    `unlisted_colors='ignore'`: colour-mask pixels of colours not in classes.csv are ignored
    instead of refused (blended edges); index-coded masks have no colours to ignore.
    """
    root = Path(root)
    if not root.is_dir():
        what = "is a file, not a dataset folder" if root.exists() else "dataset folder not found"
        raise DatasetError(f"{root}: {what}")
    splits = find_splits(root)
    train, val = (splits.train, splits.val) if splits is not None else (find_pairs(root), None)
    by_fraction = val is None
    if val is None:  # no held-out split named: hold out a seeded fraction
        train, val = split_pairs(train, val_fraction, seed)
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
        val_by_fraction=by_fraction,
    )
    if validate:
        for i, s in enumerate(everything):
            ds.load(s)
            if progress:
                progress(i + 1, len(everything))
    return ds
