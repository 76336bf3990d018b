"""Delegate names, platform checks and library loading errors (no Coral or GPU needed)."""

from __future__ import annotations

import ctypes.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgeseg.core.errors import DelegateError
from edgeseg.runtime.delegates import (
    EDGETPU_CUSTOM_OP,
    UnknownDelegateError,
    load_delegate,
    parse_delegate,
)
from edgeseg.runtime.interpreter import resolve_interpreter

COMPILED = b"TFL3...." + EDGETPU_CUSTOM_OP  # the bytes the Edge TPU check looks for
PLAIN = b"TFL3.... CONV_2D"


@pytest.mark.parametrize(
    ("text", "device"),
    [
        ("edgetpu", None),
        ("edgetpu:usb", "usb"),
        ("edgetpu:usb:1", "usb:1"),
        ("edgetpu:pci", "pci"),
        ("edgetpu:pci:0", "pci:0"),
        ("edgetpu:2", ":2"),
    ],
)
def test_edgetpu_device_options_follow_pycoral(text: str, device: str | None) -> None:
    req = parse_delegate(text, COMPILED)
    assert req.name == "edgetpu"
    assert req.library.startswith(("libedgetpu", "edgetpu"))
    assert req.options == ({"device": device} if device else {})


def test_edgetpu_refuses_a_model_that_is_not_compiled() -> None:
    with pytest.raises(DelegateError, match=r"not compiled for the Edge TPU.*edgetpu_compiler"):
        parse_delegate("edgetpu", PLAIN)


def test_unknown_names_list_the_valid_choices() -> None:
    with pytest.raises(UnknownDelegateError, match=r"valid choices: edgetpu.*nnapi, gpu"):
        parse_delegate("coral")
    with pytest.raises(UnknownDelegateError, match="expected edgetpu"):
        parse_delegate("edgetpu:usb:x", COMPILED)


@pytest.mark.skipif(sys.platform != "linux", reason="checks the non-Android message on Linux")
def test_nnapi_on_linux_says_android_only_and_what_to_use() -> None:
    with pytest.raises(DelegateError, match=r"only on Android.*XNNPACK.*edgetpu"):
        parse_delegate("nnapi")


def test_external_library_with_options() -> None:
    req = parse_delegate("/opt/lib/libvx_delegate.so:device=npu,cache=/tmp/c")
    assert req.library == "/opt/lib/libvx_delegate.so"
    assert req.options == {"device": "npu", "cache": "/tmp/c"}
    assert parse_delegate("libfoo.so.2").library == "libfoo.so.2"
    with pytest.raises(UnknownDelegateError, match="not key=value"):
        parse_delegate("/opt/lib/x.so:novalue")


def test_missing_library_is_a_clear_error(tmp_path: Path) -> None:
    _, load_fn, _ = resolve_interpreter()
    with pytest.raises(DelegateError, match="file not found"):
        load_delegate(parse_delegate(str(tmp_path / "libnothere.so")), load_fn)
    with pytest.raises(DelegateError, match=r"cannot load the edgetpu delegate.*libedgetpu"):
        load_delegate(parse_delegate("edgetpu", COMPILED), load_fn)


def _not_a_delegate(tmp_path: Path) -> Path:
    """A real shared library that is not a delegate: compiled here if gcc exists, else libm."""
    if shutil.which("gcc"):
        src = tmp_path / "fake.c"
        src.write_text("int edgeseg_fake(void) { return 42; }\n")
        lib = tmp_path / "libfake_delegate.so"
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
        return lib
    found = ctypes.util.find_library("m")
    if not found:
        pytest.skip("neither gcc nor libm available to stand in for a fake delegate")
    return Path(found)


def test_a_real_so_that_is_not_a_delegate(tmp_path: Path) -> None:
    _, load_fn, _ = resolve_interpreter()
    lib = _not_a_delegate(tmp_path)
    with pytest.raises(DelegateError, match=r"is not a TFLite delegate.*--fallback cpu"):
        load_delegate(parse_delegate(str(lib)), load_fn)
