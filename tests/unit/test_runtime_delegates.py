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


def test_threads_follow_the_cores_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """`taskset -c 0 edgeseg run` (or Docker --cpuset-cpus) still tried 2 threads, and
    --threads 2 gave no 'beyond the cores' warning: the machine's cores were counted."""
    from edgeseg.runtime import interpreter

    monkeypatch.setattr(interpreter.os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert interpreter.default_threads() == 1
    monkeypatch.setattr(interpreter.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    quota = interpreter.Path("/sys/fs/cgroup/cpu.max")
    real_read = interpreter.Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        return "150000 100000\n" if self == quota else real_read(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(interpreter.Path, "read_text", read_text)
    assert interpreter.usable_cpus() == 2  # --cpus 1.5: two cores, each part of the time


def test_a_thread_count_above_the_interpreters_limit_is_one_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--threads 300 first warned 'on 2 core(s): threads beyond the cores only take turns',
    then failed 'threads=300: at most 256' naming the Python parameter; bench --threads ''
    ran the default silently."""
    import typer

    from edgeseg.cli.bench_cmd import _threads
    from edgeseg.cli.options import parse_threads

    for parse, text in ((parse_threads, "300"), (_threads, "1,300"), (_threads, "")):
        with pytest.raises(typer.Exit) as stopped:
            parse(text)
        assert stopped.value.exit_code == 2
    said = capsys.readouterr().err
    assert "--threads '300': expected 'auto' or a number of threads, 1..256" in said
    assert "--threads '': expected a comma list" in said
    assert parse_threads("256") == 256 and _threads(None) is None
