"""Plumbing shared by `evaluate` and `compare`: open the evaluation images, stream them in small
chunks, check a model against the dataset's classes, write files atomically."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.core.errors import DatasetError, ModelError, path_argument
from edgeseg.core.spec import ModelSpec, default_palette
from edgeseg.data.dataset import Dataset, open_dataset, read_class_names
from edgeseg.data.layout import (
    DEFAULT_VAL_FRACTION,
    Sample,
    held_out_only,
    is_split,
    pairs_fingerprint,
    split_pairs,
)

Progress = Callable[[int, int], None]
Item = tuple[Sample, np.ndarray, np.ndarray]


def open_eval_data(
    data_dir: str | Path, spec: ModelSpec | None = None
) -> tuple[Dataset, str, list[str]]:
    """(dataset, split, notes): DATA -> its val split; DATA/val (images/ + masks/) -> every pair
    in it; the folder a model was trained on, when it names no held-out split -> the pairs
    training held out (told by the pairs' fingerprint `edgeseg train` recorded), with a note.

    DATA with train/ but no val/ (or Pascal VOC's train list without a val list) gives the seeded
    held-out split `edgeseg train` validated on (its --seed and --val-fraction, as recorded).
    Masks are read as the model was trained: classes it left out (`spec.ignored_classes`) and
    colours missing from classes.csv (`spec.unlisted_colors`) ignored.

    Pairs are checked as they stream (not all up front) so thousands of images are read once.
    """
    root = path_argument(data_dir, "--data", "a dataset folder")
    root = held_out_only(root) or root  # DATA with val/ alone (a committed check set): val/
    # the classes the model left out, where this data still lists them (data already remapped
    # to 255 lists only the model's classes)
    found = read_class_names(root)
    listed = found[0] if found is not None else ()
    ignored = tuple(n for n in spec.ignored_classes if n in listed) if spec is not None else ()
    unlisted = spec.unlisted_colors if spec is not None else "error"
    recorded = _split_record(spec)
    seed, fraction = (
        (recorded["seed"], recorded["val_fraction"]) if recorded else (0, DEFAULT_VAL_FRACTION)
    )

    # data that names no classes (a model trained with --classes): the model's names, which are
    # the mask ids in order when training left none out
    named_by_model = (
        spec.class_names if found is None and spec and not spec.ignored_classes else None
    )

    def opened(val_fraction: float) -> Dataset:
        return open_dataset(
            root,
            classes=named_by_model,
            val_fraction=val_fraction,
            seed=seed,
            validate=False,
            ignore_classes=ignored,
            unlisted_colors=unlisted,
        )

    def trained_on(
        base: Dataset, pool: Sequence[Sample], how: str = "", instead: str = ""
    ) -> tuple[Dataset, str, list[str]]:
        """The pairs training held out of POOL, split as open_dataset split them, with a note."""
        train, val = split_pairs(list(pool), fraction, seed)
        ds = replace(base, train=tuple(train), val=tuple(val))
        note = (
            f"{root} holds the pairs the model was trained on{how}: scores the {len(ds.val)} "
            f"that training held out (--val-fraction {fraction:g}, --seed {seed}), not "
            f"{instead or f'the {len(ds.train)} it learned from'}"
        )
        return ds, "val", [note]

    if is_split(root):
        everything = opened(fraction)
        pool = sorted((*everything.train, *everything.val), key=lambda s: s.stem)
        if recorded and recorded["pairs"] == pairs_fingerprint(pool):
            # the very pairs the model was trained on, laid out anew into train/ + val/: its
            # val/ holds pairs it learned from
            return trained_on(everything, pool, " (split into train/ and val/ since)", "its val/")
        if not everything.val:
            raise DatasetError(
                f"{root}: no val/ (valid/, validation/) split to evaluate on; pass the folder "
                "holding the evaluation images/ and masks/ (e.g. DATA/val)"
            )
        return everything, "val", []
    everything = opened(1.0)
    if recorded and recorded["pairs"] == pairs_fingerprint(everything.val):
        return trained_on(everything, everything.val)
    if recorded and recorded.get("data") == str(root.resolve()):
        # the folder trained on, with pairs added or removed since: the held-out pairs can no
        # longer be told apart (the split is recorded as a fingerprint of every name)
        note = (
            f"{root} is the folder the model was trained on, but its pairs have changed since: "
            f"the {len(everything.val)} scored include pairs the model learned from (scores "
            "read high); keep held-out pairs in DATA/val to evaluate on them alone"
        )
        return everything, "val", [note]
    return everything, "val", []


def _split_record(spec: ModelSpec | None) -> dict[str, Any] | None:
    """The split `edgeseg train` recorded in the model's spec, when it is whole."""
    record = spec.extra.get("split") if spec is not None else None
    if not isinstance(record, dict):
        return None
    ok = isinstance(record.get("pairs"), str) and isinstance(record.get("seed"), int)
    fraction = record.get("val_fraction")
    return record if ok and isinstance(fraction, int | float) and 0 < fraction < 1 else None


def check_apart_from_data(output: Path, ds: Dataset, label: str) -> None:
    """Refuse an output folder that is (or is inside) a folder of the images or masks being
    scored: `check --out-dir DATA/val/images` put disagreement.png among the images, and the
    next check failed 'image has no mask'."""
    folders = {p.parent.resolve() for s in (*ds.train, *ds.val) for p in (s.image, s.mask)}
    target = output.resolve()
    if any(target == folder or folder in target.parents for folder in folders):
        raise DatasetError(
            f"{label} {output}: is inside a folder of the images or masks it scores; choose a "
            "folder outside the data"
        )


def check_model_classes(ds: Dataset, spec: ModelSpec, model: Path) -> list[str]:
    """Raise when dataset and model disagree on the classes (count or names): scoring by index
    against differently named classes would report per-class IoU under the wrong names."""
    if ds.num_classes != spec.num_classes:
        raise DatasetError(
            f"{ds.root}: dataset has {ds.num_classes} classes {list(ds.class_names)} but model "
            f"{model.name} has {spec.num_classes} {list(spec.class_names)}; evaluate with the data "
            "the model was trained for"
        )
    if tuple(ds.class_names) != tuple(spec.class_names):
        if not spec.names_known and model.suffix.lower() == ".keras":  # no config.json
            raise DatasetError(
                f"{model}: no class names (class_0, class_1 ...): the config.json `edgeseg "
                f"train` writes beside it is missing; put it back beside the .keras"
            )
        if not spec.names_known:  # placeholders: the model was converted without config.json
            raise DatasetError(
                f"{model}: records no class names (class_0, class_1 ...: converted without the "
                f"config.json `edgeseg train` writes beside the .keras); convert it again from "
                f"its run folder"
            )
        differ = [
            f"{d!r} (model {m!r})"
            for d, m in zip(ds.class_names, spec.class_names, strict=True)
            if d != m
        ]
        raise DatasetError(
            f"{ds.names_source or ds.root}: class names differ from those of {model.name}: "
            f"{', '.join(differ[:3])}{' ...' if len(differ) > 3 else ''} (dataset "
            f"{list(ds.class_names)} vs model {list(spec.class_names)}); fix the names (or their "
            "order) to match the model's"
        )
    _check_colours(ds, spec, model)
    return []


def _check_colours(ds: Dataset, spec: ModelSpec, model: Path) -> None:
    """Colour masks whose class file gives the model's colours to other classes (two rows'
    colours swapped) would be scored under the wrong classes without a word: refused. A model
    that learned the data's own colours records them as its palette; other colours altogether
    (a model trained on index masks, a re-coloured set) are not compared."""
    colours = ds.palette() if ds.encoding == "rgb" else None
    if colours is None or spec.palette == default_palette(spec.num_classes):
        return
    learned = tuple(tuple(c) for c in spec.palette)
    given = tuple(tuple(c) for c in colours)
    if given == learned or sorted(given) != sorted(learned):
        return
    moved = [name for name, a, b in zip(ds.class_names, given, learned, strict=False) if a != b]
    raise DatasetError(
        f"{ds.names_source or ds.root}: gives {', '.join(moved[:4])} the colours {model.name} "
        "learned for other classes (colours swapped between rows?); list each class with the "
        "colour its masks use, as when the model was trained"
    )


def check_compatible(
    float_spec: ModelSpec, int8_spec: ModelSpec, float_path: Path, int8_path: Path
) -> list[str]:
    """Both models must agree on class count, input size and class names; a model without a
    spec (placeholder names class_0, ...) gets a note instead, as its names are unknown."""
    pair = f"{float_path.name} vs {int8_path.name}"
    if float_spec.num_classes != int8_spec.num_classes:
        raise ModelError(
            f"models have different class counts: {float_spec.num_classes} vs "
            f"{int8_spec.num_classes} ({pair}); compare an int8 model with the float model it "
            "came from"
        )
    if float_spec.input_size != int8_spec.input_size or float_spec.channels != int8_spec.channels:
        raise ModelError(
            "models have different input sizes: "
            f"{float_spec.input_height}x{float_spec.input_width}x{float_spec.channels} vs "
            f"{int8_spec.input_height}x{int8_spec.input_width}x{int8_spec.channels} ({pair}); "
            "compare an int8 model with the float model it came from"
        )
    if float_spec.class_names != int8_spec.class_names:
        if float_spec.names_known and int8_spec.names_known:  # per-class drops would be nonsense
            raise ModelError(
                f"class names differ ({pair}): {list(float_spec.class_names)} vs "
                f"{list(int8_spec.class_names)}; compare an int8 model with the float model it "
                "came from"
            )
        return [
            f"class names differ ({pair}): {list(float_spec.class_names)} vs "
            f"{list(int8_spec.class_names)}"
        ]
    return []


def count_items(ds: Dataset, split: str, limit: int | None) -> int:
    n = len(ds.val if split == "val" else ds.train)
    return n if limit is None else min(n, max(0, limit))


def iter_chunks(ds: Dataset, split: str, limit: int | None, size: int) -> Iterator[list[Item]]:
    """Stream (sample, image, mask) in lists of at most `size`, stopping after `limit` images."""
    chunk: list[Item] = []
    total = count_items(ds, split, limit)
    for i, item in enumerate(ds.iter_split(split)):
        if i >= total:
            break
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
