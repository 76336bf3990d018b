"""Make a stage package callable: `edgeseg.train(...)` runs `edgeseg.api.train` while
`edgeseg.train.fit` stays the package it always was (the name is both, as users expect)."""

from __future__ import annotations

import importlib
import inspect
import sys
import types
from typing import Any


def make_callable(package: str, function: str) -> None:
    """Let calling the module `package` call `edgeseg.api.<function>` (imported on first call)."""

    class _CallablePackage(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return _api(function)(*args, **kwargs)

        @property
        def __signature__(self) -> inspect.Signature:
            """inspect.signature(edgeseg.train) (IDEs, help()) shows the API function's
            parameters, not (*args, **kwargs); the API is imported only when asked."""
            return inspect.signature(_api(function))

        @property
        def __doc__(self) -> str:  # type: ignore[override]
            """help(edgeseg.train) teaches the call: the API function's signature and docstring
            first, then the package's own; read (and the API imported) only when asked."""
            return _call_doc(package, function, self.__dict__.get("__doc__"))

    _CallablePackage.__call__.__doc__ = f"Same as edgeseg.api.{function}."
    sys.modules[package].__class__ = _CallablePackage


def _call_doc(package: str, function: str, package_doc: str | None) -> str:
    """The call's signature and docstring, then the package's docstring under a heading; a
    pointer to edgeseg.api alone where the API cannot be imported (a broken install)."""
    tail = (
        f"Calling `{package}(...)` runs `edgeseg.api.{function}` (help(edgeseg.api.{function})); "
        f"{package} is also the package:\n\n{package_doc or ''}"
    ).rstrip()
    try:
        fn = _api(function)
    except ImportError:
        return tail
    return f"{package}{inspect.signature(fn)}\n\n{inspect.getdoc(fn) or ''}\n\n{tail}"


def _api(function: str) -> Any:
    return getattr(importlib.import_module("edgeseg.api"), function)
