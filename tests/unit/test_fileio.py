"""The one atomic writer: renamed into place on success, nothing left on failure, errors named."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest

from edgeseg.core import fileio
from edgeseg.core.errors import WriteError


def test_write_json_lands_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    out = fileio.write_json(tmp_path / "a.json", {"x": 1})
    assert out.read_text() == '{\n  "x": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_failure_inside_block_keeps_old_file_and_removes_temp(tmp_path: Path) -> None:
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), fileio.atomic_open(target, "wb") as fh:
        fh.write(b"half")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin"]


def test_oserror_becomes_write_error_naming_path_and_cause(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    with pytest.raises(WriteError, match=r"--out .*out\.json: cannot write \(no space") as info:
        with fileio.atomic_open(target, "w", label="--out"):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert info.value.exit_code == 4
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_is_a_write_error(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match="folder does not exist"):
        fileio.write_text(tmp_path / "nope" / "a.txt", "x")


def test_write_image_is_checked_and_keeps_suffix_format(tmp_path: Path) -> None:
    img = np.arange(64, dtype=np.uint8).reshape(8, 8)
    out = fileio.write_image(tmp_path / "m.png", img)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(WriteError, match="cannot encode"):
        fileio.write_image(tmp_path / "m.unknownext", img)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.png"]
