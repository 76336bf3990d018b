"""ModelSpec validation and JSON round trip; metadata embedded in and stripped from model bytes."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgeseg.core.errors import ModelError
from edgeseg.core.model_metadata import embed_metadata, read_metadata, read_spec, strip_metadata
from edgeseg.core.spec import ModelSpec

SPEC = ModelSpec(
    96, 128, ("sky", "road", "car"), channels=3, color_order="bgr", resize="letterbox",
    palette=((1, 2, 3), (4, 5, 6), (7, 8, 9)), float_miou=0.71,
)  # fmt: skip
# Stand-in for a flatbuffer: the identifier, zero bytes and every byte value (a real .tflite is
# exercised by the conversion tests; the metadata code only ever sees bytes).
BLOB = b"\x1c\x00\x00\x00TFL3" + bytes(64) + bytes(range(256)) * 8


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"class_names": ("only",)}, "at least 2 classes"),
        ({"channels": 2}, "channels"),
        ({"resize": "crop"}, "resize"),
        ({"color_order": "rgba"}, "colour order"),
        ({"output_kind": "probabilities"}, "output kind"),
        ({"palette": ((0, 0, 0),)}, "palette"),
        ({"input_height": 0}, "input size"),
        ({"input_width": -4}, "input size"),
        ({"input_height": 1.5}, "input size"),
        ({"ignored_classes": ("road",)}, "both output classes and ignored classes"),
        ({"ignored_classes": ("void", "void")}, "repeats the name"),
        ({"unlisted_colors": "snap"}, "unlisted_colors must be one of error, ignore"),
    ],
)
def test_invalid_spec_is_a_model_error(changes: dict[str, object], needle: str) -> None:
    with pytest.raises(ModelError, match=needle):
        SPEC.with_updates(**changes)


def test_default_palette_has_one_distinct_colour_per_class() -> None:
    spec = ModelSpec(8, 8, tuple(f"c{i}" for i in range(12)))
    assert len(spec.palette) == 12 and len(set(spec.palette)) == 12


def test_numpy_sizes_are_stored_as_plain_ints() -> None:
    spec = ModelSpec(np.int64(32), np.int32(48), ("a", "b"))
    assert type(spec.input_height) is int and json.loads(spec.to_json())["input_width"] == 48


def test_per_class_float_iou_travels_with_the_spec(tmp_path: Path) -> None:
    per_class = {"sky": 0.9, "road": 0.75, "car": None}
    spec = SPEC.with_updates(float_per_class_iou=per_class)
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"spec": spec.to_dict(), "val": {"miou": 0.71}}))
    assert ModelSpec.load(path).float_per_class_iou == per_class
    read = read_spec(embed_metadata(BLOB, spec))
    assert read is not None and read.float_per_class_iou == per_class


def test_ignored_classes_travel_with_the_spec_and_older_specs_have_none(tmp_path: Path) -> None:
    spec = SPEC.with_updates(ignored_classes=("void",))
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"spec": spec.to_dict()}))
    assert ModelSpec.load(path).ignored_classes == ("void",)
    read = read_spec(embed_metadata(BLOB, spec))
    assert read is not None and read.ignored_classes == ("void",)
    older = {k: v for k, v in SPEC.to_dict().items() if k != "ignored_classes"}
    assert ModelSpec.from_dict(older).ignored_classes == ()


def test_unlisted_colours_travel_with_the_spec_and_older_specs_refuse_them(
    tmp_path: Path,
) -> None:
    spec = SPEC.with_updates(unlisted_colors="ignore")
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"spec": spec.to_dict()}))
    assert ModelSpec.load(path).unlisted_colors == "ignore"
    read = read_spec(embed_metadata(BLOB, spec))
    assert read is not None and read.unlisted_colors == "ignore"
    older = {k: v for k, v in SPEC.to_dict().items() if k != "unlisted_colors"}
    assert ModelSpec.from_dict(older).unlisted_colors == "error"


def test_json_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    SPEC.save(path)
    loaded = ModelSpec.load(path)
    assert loaded == SPEC
    assert loaded.palette == SPEC.palette and loaded.class_names == SPEC.class_names
    assert not list(tmp_path.glob("*.tmp"))


def test_load_nested_config_form(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"spec": SPEC.to_dict(), "history": {"loss": [1.0]}}))
    assert ModelSpec.load(path) == SPEC


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"spec": {"input_height": 4, "input_width": 4}}', "class_names"),
        ('{"input_height": 4, "input_width": 4, "class_names": ["a"]}', "at least 2"),
    ],
)
def test_bad_spec_files_name_the_file(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(ModelError, match=needle) as info:
        ModelSpec.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        ModelSpec.load(tmp_path / "nope.json")


def test_embed_read_strip_round_trip() -> None:
    data = embed_metadata(BLOB, SPEC, {"quantization": "int8", "float_miou": 0.71})
    assert data.startswith(BLOB)
    assert read_spec(data) == SPEC
    meta = read_metadata(data)
    assert meta is not None and meta["quantization"] == "int8"
    assert strip_metadata(data) == BLOB


def test_embedding_twice_replaces_the_old_metadata() -> None:
    once = embed_metadata(BLOB, SPEC)
    other = SPEC.with_updates(class_names=("x", "y", "z"))
    twice = embed_metadata(once, other)
    assert strip_metadata(twice) == BLOB
    assert read_spec(twice) == other
    assert len(twice) == len(embed_metadata(BLOB, other))


def test_metadata_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(embed_metadata(BLOB, SPEC))
    assert read_spec(path) == SPEC


def test_bytes_without_metadata_give_none(tmp_path: Path) -> None:
    assert read_metadata(BLOB) is None and read_spec(BLOB) is None
    assert strip_metadata(BLOB) == BLOB
    path = tmp_path / "bare.tflite"
    path.write_bytes(BLOB)
    assert read_spec(path) is None


def test_a_foreign_zip_is_not_edgeseg_metadata() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("labels.txt", "a\nb\n")  # what TFLite's own metadata writer appends
    data = BLOB + buf.getvalue()
    assert read_metadata(data) is None
    assert strip_metadata(data) == data


def test_from_shapes_defaults_for_models_without_a_spec() -> None:
    binary = ModelSpec.from_shapes(96, 128, 1, 1)
    assert binary.input_size == (96, 128) and binary.channels == 1
    assert binary.output_kind == "sigmoid" and binary.class_names == ("class_0", "class_1")
    multi = ModelSpec.from_shapes(64, 64, 3, 4, ("a", "b", "c", "d"))
    assert multi.output_kind == "softmax" and multi.class_names == ("a", "b", "c", "d")
