"""`edgeseg info`: what a .tflite expects and contains, what training recorded for a .keras, and
what `edgeseg train` would find in a dataset folder; all without TensorFlow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from edgeseg.cli.common import console, fail, progress_bar, user_errors, warn, warn_if_stale
from edgeseg.cli.options import (
    IgnoreClassOption,
    UnlistedColorsOption,
    class_list,
    split_names,
)
from edgeseg.core.errors import (
    TRAIN_EXTRA_HINT,
    DatasetError,
    MissingStackError,
    NotADatasetError,
    first_line,
)
from edgeseg.core.fileio import ASIDE_FOLDER
from edgeseg.core.spec import ModelSpec
from edgeseg.train import CONFIG_NAME, FLOAT_MODEL
from edgeseg.train.qat_record import float_network_spec


def _arch_value(key: str, value: object) -> str:
    """An architecture setting as --help names it: weights None is 'random'."""
    if key == "weights" and value is None:
        return "random"
    return str(value)


def _cost(model: Path, spec: ModelSpec | None) -> str:
    """MACs per frame counted from the .tflite's ops; parameters as recorded at training."""
    from edgeseg.runtime.inspect import count_model_macs

    recorded = (spec.extra.get("cost") or {}) if spec is not None else {}
    params = recorded.get("params")
    try:
        macs = count_model_macs(model.read_bytes())
        shown = f"{macs / 1e9:.3f} GMAC per frame ({macs:,} multiply-accumulates)"
    except (ValueError, RuntimeError) as exc:  # e.g. an Edge TPU custom op without its delegate
        shown = f"MACs unknown ({first_line(exc)})"
    return shown + (f", {int(params):,} parameters" if params is not None else "")


def _spec_rows(table: Table, spec: ModelSpec) -> None:
    """The rows a .tflite's metadata and a .keras model's config.json share."""

    table.add_row("classes", escape(", ".join(spec.class_names)))
    if spec.ignored_classes:
        table.add_row("left out", escape(", ".join(spec.ignored_classes)))
    if spec.unlisted_colors == "ignore":
        # named as the data's list, which may be classes.csv, class_dict.csv, _classes.csv ...
        table.add_row("unlisted colours", "ignored (mask colours the class list does not name)")
    table.add_row("palette", " ".join("#" + "".join(f"{v:02X}" for v in c) for c in spec.palette))
    table.add_row(
        "input",
        f"{spec.input_height}x{spec.input_width}x{spec.channels} "
        f"{spec.color_order if spec.channels == 3 else 'gray'}, "
        f"resize {spec.resize}",
    )
    table.add_row(
        "normalisation",
        f"x * {spec.norm_scale:.6g} {'-' if spec.norm_offset < 0 else '+'} "
        f"{abs(spec.norm_offset):g} (inside the model)",
    )
    table.add_row("output kind", spec.output_kind)
    table.add_row("target", spec.target)
    arch = spec.extra.get("architecture")
    if isinstance(arch, dict):
        table.add_row(
            "architecture", ", ".join(f"{k} {_arch_value(k, v)}" for k, v in arch.items())
        )
    # percent, as `edgeseg eval` and `edgeseg check` report scores
    miou = "unknown" if spec.float_miou is None else f"{100 * spec.float_miou:.2f}%"
    qat = spec.extra.get("qat")
    if isinstance(qat, dict):  # the model checked against is the quantisation-aware one
        table.add_row("model mIoU", f"{miou} (quantisation-aware model)")
        float_miou = (qat.get("float_val") or {}).get("miou")
        if float_miou is not None:
            table.add_row("float mIoU", f"{100 * float_miou:.2f}% ({FLOAT_MODEL})")
    else:
        table.add_row("float mIoU", miou)
    table.add_row("edgeseg version", spec.edgeseg_version)


def _keras_info(model: Path) -> None:
    """A .keras model: what `edgeseg train` recorded in config.json beside it (no TensorFlow)."""
    from edgeseg.core.errors import EdgesegError, ModelError, check_model_file
    from edgeseg.train.config import load_train_config

    config = model.with_name(CONFIG_NAME)
    with user_errors():
        if not model.exists() and (model.parent / ASIDE_FOLDER / model.name).is_file():
            raise ModelError(
                f"{model}: not found; a training killed outright (kill -9, power loss) left the "
                f"previous run's in {model.parent / ASIDE_FOLDER}; `edgeseg train --out "
                f"{model.parent}` puts it back first (alone, it then stops; --resume continues "
                "it, --overwrite trains it anew)"
            )
        check_model_file(model, "a .keras model file")
        if not config.is_file():
            raise ModelError(
                f"{model}: no {CONFIG_NAME} beside it, which is what `edgeseg info` reads for a "
                ".keras model; convert it (edgeseg convert) and run info on the .tflite"
            )
        spec = ModelSpec.load(config)
    if model.name == FLOAT_MODEL:  # config.json describes model.keras, the quantisation-aware one
        spec = float_network_spec(spec)
    table = Table(title=str(model), show_header=False)
    table.add_column(style="bold")
    table.add_column()
    _spec_rows(table, spec)
    cost = spec.extra.get("cost")
    if isinstance(cost, dict) and {"params", "macs", "int8_bytes"} <= set(cost):
        table.add_row(
            "cost",
            f"{cost['macs'] / 1e9:.3f} GMAC per frame ({int(cost['macs']):,} multiply-"
            f"accumulates), {int(cost['params']):,} parameters, int8 .tflite about "
            f"{cost['int8_bytes'] / 1024:.0f} KiB",
        )
    try:  # the recipe the run resolved, as `edgeseg train` logged it
        trained = load_train_config(model.parent)
        table.add_row("training", trained.recipe_line().removeprefix("recipe: "))
        if trained.makes_qat_model and model.name != FLOAT_MODEL and "qat" not in spec.extra:
            # stopped (Ctrl-C) between the float training and the quantisation-aware step
            table.add_row(
                "quantisation-aware",
                escape(
                    f"not run yet: {model.name} is the float checkpoint; edgeseg train --out "
                    f"{model.parent} --resume runs that step"
                ),
            )
        gone = "" if trained.data.is_dir() else " (not found: moved or removed since)"
        table.add_row("data", escape(f"{trained.data}{gone}"))
    except (EdgesegError, ValueError):
        pass  # a config.json without (complete) training settings: the spec is what matters
    table.add_row("size", f"{model.stat().st_size / 1024:.0f} KiB (.keras, float32)")
    table.add_row("recorded in", str(config))
    console.print(table)


def _sizes(sizes: list[tuple[int, int]]) -> str:
    """The training images' sizes as WIDTHxHEIGHT: the one size they share, or the median size
    and the range (what the derived input size follows)."""
    import numpy as np

    if len(set(sizes)) == 1:
        h, w = sizes[0]
        every = "the one training image" if len(sizes) == 1 else f"all {len(sizes)} training images"
        return f"{w}x{h} (WxH, {every})"
    (h, w), (h0, w0), (h1, w1) = (
        (int(v) for v in np.median(sizes, axis=0)),
        min(sizes, key=lambda hw: hw[0] * hw[1]),
        max(sizes, key=lambda hw: hw[0] * hw[1]),
    )
    return f"median {w}x{h} (WxH, from {w0}x{h0} to {w1}x{h1}, {len(sizes)} training images)"


def _data_info(
    folder: Path, ignore_class: list[str] | None, unlisted: str | None, names: str | None
) -> None:
    """A dataset folder: what `edgeseg train` would find and do (layout, split, classes and their
    share of the training pixels, loss weights, the resolved recipe), without TensorFlow."""
    from edgeseg.train.config import TrainConfig
    from edgeseg.train.fit import absent_classes, prepare_data
    from edgeseg.train.recipe import class_weights

    config = TrainConfig(
        data=folder,
        out=Path("runs/unet"),
        ignore_classes=split_names(ignore_class),
        unlisted_colors=unlisted or "error",
        classes=class_list(names),
    )
    with user_errors(), progress_bar("checking the dataset's pairs") as progress:
        try:
            prepared = prepare_data(config, progress=progress)
        except NotADatasetError as exc:  # say what info takes (a bad pair is the data's error)
            raise DatasetError(
                f"{exc}; `edgeseg info` takes a .tflite or .keras model, or a dataset folder"
            ) from None
        except ImportError as exc:  # a part of the training stack the checks need
            raise MissingStackError(
                f"edgeseg info of a dataset needs the training stack ({exc.name} not "
                f"installed): {TRAIN_EXTRA_HINT}"
            ) from None
    ds, pixels, resolved = prepared.ds, prepared.pixels, prepared.config
    table = Table(title=str(folder), show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("data", escape(ds.summary()))
    if ds.ignored:
        table.add_row("left out", escape(", ".join(ds.ignored)) + " (not trained or scored)")
    if pixels.ignored:
        table.add_row(
            "ignored pixels",
            f"{100 * pixels.ignored_share:.2g}% of the training masks "
            f"({escape(ds.ignored_pixels())})",
        )
    table.add_row("image size", _sizes(list(prepared.sizes or ())))
    table.add_row("edgeseg train", resolved.recipe_line().removeprefix("recipe: "))
    console.print(table)
    weights = class_weights(pixels.frequencies, resolved.class_weighting)
    palette = ds.palette()  # colour-coded masks: the colour each class is read from
    classes = Table(title="classes in the training masks")
    columns = ("id", "class", *(("colour",) if palette else ()), "pixels", "loss weight")
    for column in columns:
        classes.add_column(column, justify="left" if column in ("class", "colour") else "right")
    for i, (name, share, weight) in enumerate(
        zip(ds.class_names, pixels.frequencies, weights, strict=True)
    ):
        hexa = "" if palette is None else "#{:02X}{:02X}{:02X}".format(*palette[i])
        colour = (f"[on {hexa}]  [/] {hexa}",) if hexa else ()  # a swatch on a terminal
        classes.add_row(str(i), escape(name), *colour, f"{100 * share:.2f}%", f"{weight:.2f}")
    console.print(classes)
    if message := absent_classes(pixels, ds):
        warn(message)
    if hint := ds.void_hint():
        console.print(f"note: {escape(hint)}", highlight=False)


def info(
    path: Annotated[
        Path,
        typer.Argument(
            help="A .tflite model, a .keras model with the config.json `edgeseg train` wrote, "
            "or a dataset folder.",
            show_default=False,
        ),
    ],
    ignore_class: IgnoreClassOption = None,
    unlisted_colors: UnlistedColorsOption = None,
    classes: Annotated[
        str | None,
        typer.Option(
            "--classes",
            help="For a dataset folder: class names a,b,c in mask-index order (instead of "
            "labels.txt), as `edgeseg train --classes` takes them.",
        ),
    ] = None,
) -> None:
    """Inspect a model or a dataset folder, without TensorFlow.

    A .tflite model: its metadata, tensors, quantisation, op histogram and cost. A .keras model:
    what training recorded beside it (classes, input, scores, cost). A dataset folder: what
    `edgeseg train` would find in it and do with it (pairs, split, classes with their share of
    the training pixels and loss weights, the recipe).

    Examples:
      edgeseg info runs/m/model_int8.tflite
      edgeseg info ../shared/data/labelmefacade
    """
    from edgeseg.core.model_metadata import spec_from_payload
    from edgeseg.runtime.inspect import check_model_shapes, describe_tensor, inspect_tflite

    if not path.exists() and path.suffix.lower() not in (".tflite", ".keras"):
        raise fail(f"{path}: not found; info takes a .tflite or .keras model, or a dataset folder")
    if path.is_dir() and (path / "model.keras").is_file() and (path / CONFIG_NAME).is_file():
        console.print(f"{path} is a training run: its model.keras", highlight=False)
        path = path / "model.keras"  # a run folder (`edgeseg train --out`), not a dataset
    if path.is_dir():
        _data_info(path, ignore_class, unlisted_colors, classes)
        return
    if ignore_class or unlisted_colors or classes:
        given = (
            "--ignore-class" if ignore_class else "--classes" if classes else "--unlisted-colors"
        )
        raise fail(f"{given}: applies to a dataset folder, and {path} is not one")
    if path.suffix.lower() == ".keras":
        _keras_info(path)
        return
    with user_errors():
        details = inspect_tflite(path)
        payload: dict[str, Any] = details.metadata or {}
        spec = spec_from_payload(payload, path)
        if spec is not None and len(details.inputs) == 1 and len(details.outputs) == 1:
            # metadata that contradicts the tensors: refused here as `run` and `eval` refuse it
            check_model_shapes(path, details.inputs[0].shape, details.outputs[0].shape, spec)
    table = Table(title=str(path), show_header=False)
    table.add_column(style="bold")
    table.add_column()
    warn_if_stale(path)
    if spec is None:
        warn(f"{path}: no edgeseg metadata; showing tensors only (runtime will use defaults)")
    else:
        _spec_rows(table, spec)
        keys = ("quant", "io", "calib_count", "quantisation_aware", "edgetpu")
        conv = {k: v for k, v in payload.items() if k in keys}
        if conv:
            table.add_row("conversion", escape(_conversion_text(conv)))
        if (accuracy := _accuracy_text(payload)) is not None:
            table.add_row("accuracy-aware", escape(accuracy))
    table.add_row("size", f"{details.size_bytes / 1024:.0f} KiB")
    table.add_row("cost", _cost(path, spec))
    table.add_row("interpreter", details.interpreter.split()[0])  # the package, as `run -v`
    for t in details.inputs:
        table.add_row("input tensor", f"{t.name}: {describe_tensor(t)}")
    for t in details.outputs:
        table.add_row("output tensor", f"{t.name}: {describe_tensor(t)}")
    table.add_row("ops", ", ".join(f"{k} {v}" for k, v in details.op_histogram.items()))
    for note in details.notes:
        table.add_row("note", note)
    console.print(table)


def _accuracy_text(payload: dict[str, Any]) -> str | None:
    """What `convert --max-drop` recorded: the layers kept in float, the measured drop against
    the limit (a best-effort model that missed it looked like a plain int8 one). The metadata
    is a file's word: a field of the wrong type is left out, not a traceback."""
    from edgeseg.convert.options import kept_in_float
    from edgeseg.core.metrics import points

    if "max_drop" not in payload:
        return None
    names = payload.get("float_layer_names") or payload.get("float_layers") or []
    if not isinstance(names, list):
        names = []
    kept = kept_in_float(len(names))
    if names:
        kept += f" ({', '.join(map(str, names))})"
    drop, limit = payload.get("miou_drop"), payload.get("max_drop")
    measured = (
        f"mIoU drop {points(drop):.2f} points"
        if isinstance(drop, int | float) and not isinstance(drop, bool)
        else "drop unknown"
    )
    verdict = "met" if payload.get("within_max_drop") is True else "NOT met (best effort)"
    where = f" on {payload['accuracy_data']}" if payload.get("accuracy_data") else ""
    if isinstance(limit, int | float) and not isinstance(limit, bool):
        return f"{kept}; {measured}{where}, --max-drop {limit:g} {verdict}"
    return f"{kept}; {measured}{where}"


def _conversion_text(conv: dict[str, Any]) -> str:
    """The conversion facts in words: 'int8, int8 input, 200 calibration frames', not keys."""
    parts = []
    if "quant" in conv:
        parts.append(str(conv["quant"]))
    if "io" in conv and conv.get("quant") == "int8":  # other modes take float (int16) input
        parts.append(f"{conv['io']} input")
    if conv.get("quantisation_aware"):
        parts.append("ranges from the quantisation-aware model")
    elif conv.get("calib_count"):  # 0 in the modes that do not calibrate
        parts.append(f"{conv['calib_count']} calibration frames")
    if conv.get("edgetpu"):
        parts.append("compiled for the Edge TPU")
    return ", ".join(parts)
