"""Self-describing `.tflite` files: the ModelSpec travels as `edgeseg.json` inside a zip appended to
the flatbuffer (the convention TFLite's own metadata writers use for associated files). The
interpreter ignores the trailing bytes; Python's zipfile reads them with no TensorFlow.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from enum import StrEnum
from pathlib import Path
from typing import Any

from edgeseg.core.errors import ModelError, first_line
from edgeseg.core.fileio import file_sha256, json_text
from edgeseg.core.spec import ModelSpec


class Quant(StrEnum):
    """How weights and activations are stored in the `.tflite`: what `edgeseg convert --quant`
    writes and the metadata's "quant" records (here, in core, so eval reads it without convert)."""

    INT8 = "int8"  # full integer: int8 weights (per channel) and activations; Edge TPU / NPU ready
    # 16-bit activations, 8-bit weights: higher fidelity than int8 on CPU kernels, not Edge TPU.
    INT16X8 = "int16x8"
    FLOAT16 = "float16"  # float16 weights, float32 compute; half the size, GPU delegates like it
    DYNAMIC = "dynamic"  # int8 weights, float activations; no calibration data needed
    FLOAT32 = "float32"  # plain float reference


METADATA_NAME = "edgeseg.json"
MAX_METADATA_BYTES = 1 << 20  # edgeseg.json is a few KiB; refuse anything past 1 MiB inflated
MAX_ENTRIES = 16
_CHUNK = 64 * 1024


def embed_metadata(
    tflite_bytes: bytes, spec: ModelSpec, extra: dict[str, Any] | None = None
) -> bytes:
    """Return flatbuffer bytes with the spec (plus optional extra fields) appended as a zip."""
    payload = {"spec": spec.to_dict(), **(extra or {})}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(METADATA_NAME, json_text(payload))
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
    except (zipfile.BadZipFile, ValueError, OSError):
        return None
    # zipfile already shifts header offsets by the prepended bytes, so compute the start directly:
    # start = EOCD position - central directory size - central directory offset (zip-relative).
    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65535))
    if eocd < 0 or eocd + 22 > len(data):
        return None
    size_cd, offset_cd = struct.unpack("<II", data[eocd + 12 : eocd + 20])
    start = eocd - size_cd - offset_cd
    return start if 0 <= start <= len(data) else None


def _read_capped(zf: zipfile.ZipFile, where: str) -> bytes:
    """edgeseg.json's bytes, refusing more than MAX_METADATA_BYTES whatever the header claims
    (a deflate bomb is stopped after 1 MiB of output, in bounded chunks)."""
    entries = zf.infolist()
    if len(entries) > MAX_ENTRIES:
        raise ModelError(
            f"{where}: refusing its metadata: the appended zip has {len(entries)} entries "
            f"(at most {MAX_ENTRIES})"
        )
    info = zf.getinfo(METADATA_NAME)
    limit = f"at most {MAX_METADATA_BYTES // 1024} KiB"
    if info.file_size > MAX_METADATA_BYTES:
        raise ModelError(
            f"{where}: refusing its metadata: {METADATA_NAME} is {info.file_size} bytes "
            f"uncompressed ({limit})"
        )
    chunks, total = [], 0
    with zf.open(info) as fh:
        while chunk := fh.read(_CHUNK):
            total += len(chunk)
            if total > MAX_METADATA_BYTES:
                raise ModelError(
                    f"{where}: refusing its metadata: {METADATA_NAME} inflates past {limit}"
                )
            chunks.append(chunk)
    return b"".join(chunks)


def _looks_like_edgeseg_zip(data: bytes) -> bool:
    """Whether the file's tail names edgeseg.json (so an unreadable zip is corrupt, not absent)."""
    return METADATA_NAME.encode() in data[-(1 << 16) :]


def read_metadata(
    source: str | Path | bytes, *, name: str | Path | None = None
) -> dict[str, Any] | None:
    """The embedded payload ({"spec": {...}, ...}) or None when the model carries none.

    Read with size limits; metadata that is present but damaged (bad zip, bad CRC, not UTF-8,
    not a JSON object) is a ModelError naming the file, never mistaken for "no metadata".
    """
    where = str(name or (source if not isinstance(source, bytes) else "model"))
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            if METADATA_NAME not in zf.namelist():
                return None
            raw = _read_capped(zf, where)
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        ValueError,
        OSError,
        NotImplementedError,
    ) as exc:
        if isinstance(exc, ModelError):
            raise
        if not _looks_like_edgeseg_zip(data):
            return None
        raise ModelError(f"{where}: its edgeseg metadata is corrupt ({first_line(exc)})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelError(
            f"{where}: its edgeseg metadata is corrupt (not UTF-8 at byte {exc.start})"
        ) from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(
            f"{where}: its edgeseg metadata is corrupt (not valid JSON: {exc.msg} at line "
            f"{exc.lineno})"
        ) from None
    if not isinstance(payload, dict):
        raise ModelError(
            f"{where}: its edgeseg metadata is corrupt (expected a JSON object, got "
            f"{type(payload).__name__})"
        )
    return payload


def read_spec(source: str | Path | bytes, *, name: str | Path | None = None) -> ModelSpec | None:
    """The embedded ModelSpec (validated field by field), or None when the model carries none."""
    payload = read_metadata(source, name=name)
    where = str(name or (source if not isinstance(source, bytes) else "model"))
    return None if payload is None else spec_from_payload(payload, where)


def spec_from_payload(payload: dict[str, Any], where: str | Path) -> ModelSpec | None:
    """The ModelSpec in a metadata payload (None without one); ModelError naming file and field."""
    spec = payload.get("spec")
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ModelError(f"{where}: metadata field 'spec' must be a JSON object")
    try:
        return ModelSpec.from_dict(spec)
    except ModelError as exc:
        sep = " " if str(exc).startswith("field") else ": "  # "metadata field 'x' ..."
        raise ModelError(f"{where}: metadata{sep}{exc}") from None


def stale_source(tflite: str | Path) -> Path | None:
    """The .keras file beside TFLITE that it was converted from, when that file has changed
    since (a run retrained with --overwrite or --resume and not converted again); None when
    it is unchanged, not there, or not recorded. Read from the SHA-256 the converter embeds."""
    path = Path(tflite)
    if not path.is_file():
        return None  # reading the model says what is wrong with it
    try:
        payload = read_metadata(path) or {}
    except (ModelError, OSError):
        return None
    recorded, name = payload.get("source_sha256"), payload.get("source_model")
    if not isinstance(recorded, str) or not isinstance(name, str) or not name:
        return None
    source = path.parent / Path(name).name
    if not source.is_file() or file_sha256(source) == recorded:
        return None
    return source
