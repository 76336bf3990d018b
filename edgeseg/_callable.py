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

    _CallablePackage.__call__.__doc__ = f"Same as edgeseg.api.{function}."
    module = sys.modules[package]
    module.__class__ = _CallablePackage
    module.__doc__ = (
        f"{module.__doc__ or ''}\n\nCalling `{package}(...)` runs `edgeseg.api.{function}`: "
        f"help(edgeseg.api.{function}) for its parameters."
    )


def _api(function: str) -> Any:
    return getattr(importlib.import_module("edgeseg.api"), function)
