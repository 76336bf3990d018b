"""Self-describing `.tflite` files: the ModelSpec travels as `edgeseg.json` inside a zip appended to
the flatbuffer (the convention TFLite's own metadata writers use for associated files). The
interpreter ignores the trailing bytes; Python's zipfile reads them with no TensorFlow.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path
from typing import Any

from edgeseg.core.spec import ModelSpec

METADATA_NAME = "edgeseg.json"


def embed_metadata(
    tflite_bytes: bytes, spec: ModelSpec, extra: dict[str, Any] | None = None
) -> bytes:
    """Return flatbuffer bytes with the spec (plus optional extra fields) appended as a zip."""
    payload = {"spec": spec.to_dict(), **(extra or {})}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(METADATA_NAME, json.dumps(payload, indent=2))
    return strip_metadata(tflite_bytes) + buf.getvalue()


def strip_metadata(tflite_bytes: bytes) -> bytes:
    """The bare flatbuffer, without any appended edgeseg zip."""
    start = _zip_start(tflite_bytes)
    return tflite_bytes if start is None else tflite_bytes[:start]


def _zip_start(data: bytes) -> int | None:
    """Offset where the appended edgeseg zip begins, from its end-of-central-directory record."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            if METADATA_NAME not in zf.namelist():
                return None
    except zipfile.BadZipFile:
        return None
    # zipfile already shifts header offsets by the prepended bytes, so compute the start directly:
    # start = EOCD position - central directory size - central directory offset (zip-relative).
    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65535))
    if eocd < 0 or eocd + 22 > len(data):
        return None
    size_cd, offset_cd = struct.unpack("<II", data[eocd + 12 : eocd + 20])
    start = eocd - size_cd - offset_cd
    return start if 0 <= start <= len(data) else None


def read_metadata(source: str | Path | bytes) -> dict[str, Any] | None:
    """The embedded payload ({"spec": {...}, ...}) or None when the model carries none."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            if METADATA_NAME not in zf.namelist():
                return None
            payload: dict[str, Any] = json.loads(zf.read(METADATA_NAME))
            return payload
    except (zipfile.BadZipFile, json.JSONDecodeError, KeyError):
        return None


def read_spec(source: str | Path | bytes) -> ModelSpec | None:
    """The embedded ModelSpec, or None when the model carries no edgeseg metadata."""
    payload = read_metadata(source)
    if payload is None or "spec" not in payload:
        return None
    return ModelSpec.from_dict(payload["spec"])
