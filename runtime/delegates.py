"""TFLite delegates by name: the ONLY module that knows how to find and load one.

`edgetpu[:usb|:usb:N|:pci|:pci:N|:N]`, `nnapi`, `gpu`, or `/path/lib.so[:key=value,...]` for any
external delegate. Unknown names raise DelegateError listing the valid choices.
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgeseg.core.errors import DelegateError, UnknownDelegateError, first_line

EDGETPU_CUSTOM_OP = b"edgetpu-custom-op"
_EDGETPU_LIB = {
    "Linux": "libedgetpu.so.1",
    "Darwin": "libedgetpu.1.dylib",
    "Windows": "edgetpu.dll",
}
_GPU_LIB = {
    "Linux": "libtensorflowlite_gpu_delegate.so",
    "Darwin": "libtensorflowlite_gpu_delegate.dylib",
    "Windows": "tensorflowlite_gpu_delegate.dll",
}
_NNAPI_LIB = "libnnapi_delegate.so"
_LIB_RE = re.compile(r"^(?P<lib>.+?\.(?:so(?:\.\d+)*|dylib|dll))(?::(?P<opts>.*))?$")


@dataclass(frozen=True)
class DelegateRequest:
    """A parsed --delegate value: which library to load and with what options."""

    name: str
    library: str
    options: dict[str, str] = field(default_factory=dict)


def _edgetpu(arg: str | None, model: bytes | None) -> DelegateRequest:
    if arg is not None and not re.fullmatch(r"(usb|pci)(:\d+)?|\d+", arg):
        raise UnknownDelegateError(
            f"--delegate edgetpu:{arg}: expected edgetpu, edgetpu:usb, edgetpu:usb:N, edgetpu:pci, "
            "edgetpu:pci:N or edgetpu:N"
        )
    if model is not None and EDGETPU_CUSTOM_OP not in model:
        raise DelegateError(
            "the model is not compiled for the Edge TPU (no edgetpu-custom-op in it): compile "
            "it with `edgeseg convert MODEL.keras --edgetpu` (or `edgetpu_compiler` on the int8 "
            ".tflite) and pass the *_edgetpu.tflite it writes"
        )
    device = None if arg is None else (f":{arg}" if arg.isdigit() else arg)
    return DelegateRequest(
        "edgetpu",
        _EDGETPU_LIB.get(platform.system(), "libedgetpu.so.1"),
        {"device": device} if device else {},
    )


def is_android() -> bool:
    """True on Android (Termux and friends), where NNAPI exists."""
    return (
        sys.platform == "android"
        or hasattr(sys, "getandroidapilevel")
        or "ANDROID_ROOT" in os.environ
    )


def _nnapi(arg: str | None, model: bytes | None) -> DelegateRequest:
    if not is_android():
        raise DelegateError(
            f"NNAPI exists only on Android, not on {platform.system()}: use the default CPU "
            "(XNNPACK, --threads auto) or --delegate edgetpu on a Raspberry Pi with a Coral"
        )
    return DelegateRequest("nnapi", _NNAPI_LIB, {})


def _gpu(arg: str | None, model: bytes | None) -> DelegateRequest:
    return DelegateRequest("gpu", _GPU_LIB.get(platform.system(), _GPU_LIB["Linux"]), {})


_REGISTRY: dict[str, Callable[[str | None, bytes | None], DelegateRequest]] = {
    "edgetpu": _edgetpu,
    "nnapi": _nnapi,
    "gpu": _gpu,
}
CHOICES = "edgetpu[:usb|:usb:N|:pci|:pci:N|:N], nnapi, gpu, /path/to/delegate.so[:key=value,...]"


def parse_delegate(text: str, model: bytes | None = None) -> DelegateRequest:
    """--delegate value -> DelegateRequest; given the model bytes, checks it suits the delegate."""
    match = _LIB_RE.match(text)
    if match:
        options: dict[str, str] = {}
        for item in filter(None, (match["opts"] or "").split(",")):
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise UnknownDelegateError(f"--delegate {text}: option {item!r} is not key=value")
            options[key.strip()] = value.strip()
        return DelegateRequest(os.path.basename(match["lib"]), match["lib"], options)
    name, _, arg = text.partition(":")
    builder = _REGISTRY.get(name.lower())
    if builder is None:
        raise UnknownDelegateError(f"unknown delegate {text!r}; valid choices: {CHOICES}")
    return builder(arg or None, model)


def load_delegate(request: DelegateRequest, load_fn: Callable[..., Any]) -> Any:
    """Load the delegate library through the interpreter package's load_delegate."""
    if os.path.sep in request.library and not os.path.exists(request.library):
        raise DelegateError(f"--delegate {request.library}: file not found")
    try:  # check first: the packages' Delegate() raises AttributeError and noisy __del__ errors
        library = ctypes.CDLL(request.library)
    except OSError as exc:
        raise DelegateError(
            f"cannot load the {request.name} delegate ({exc}){_hint(request)}"
        ) from None
    if not hasattr(library, "tflite_plugin_create_delegate"):
        raise DelegateError(
            f"{request.library} is not a TFLite delegate (it has no tflite_plugin_create_delegate)"
            f"{_hint(request)}"
        )
    try:
        return load_fn(request.library, request.options)
    except (ValueError, RuntimeError, OSError, AttributeError) as exc:
        raise DelegateError(
            f"cannot load the {request.name} delegate ({first_line(exc)}){_hint(request)}"
        ) from None


FALLBACK_HINT = "or pass --fallback cpu (fallback='cpu' in Python)"


def _hint(request: DelegateRequest) -> str:
    if request.name == "edgetpu":
        return (
            ": install libedgetpu (apt install libedgetpu1-std), plug the Coral in, add your user "
            f"to the plugdev group; {FALLBACK_HINT}"
        )
    if request.name == "gpu":
        return f": build or install {request.library} for this platform; {FALLBACK_HINT}"
    return f": check the path is a TFLite delegate library for this platform; {FALLBACK_HINT}"


@dataclass(frozen=True)
class DelegateReport:
    """How much of the graph a delegate (or XNNPACK on the CPU) took over."""

    partitions: int
    delegated_ops: int
    total_ops: int


def delegate_report(interpreter: Any) -> DelegateReport | None:
    """Count DELEGATE nodes and the original ops each one replaced; None if not exposed."""
    try:
        ops = interpreter._get_ops_details()
    except Exception:  # a private API: older/other packages may lack it
        return None
    originals = [o for o in ops if o["op_name"] != "DELEGATE"]
    producer = {int(t): i for i, o in enumerate(originals) for t in o["outputs"]}
    taken: set[int] = set()
    partitions = 0
    for node in ops:
        if node["op_name"] != "DELEGATE":
            continue
        partitions += 1
        boundary = {int(t) for t in node["inputs"]}
        stack = [int(t) for t in node["outputs"]]
        while stack:
            op = producer.get(stack.pop())
            if op is None or op in taken:
                continue
            taken.add(op)
            stack.extend(int(t) for t in originals[op]["inputs"] if int(t) not in boundary)
    return DelegateReport(partitions, len(taken), len(originals))
