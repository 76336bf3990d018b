"""Make a stage package callable: `edgeseg.train(...)` runs `edgeseg.api.train` while
`edgeseg.train.fit` stays the package it always was (the name is both, as users expect)."""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


def make_callable(package: str, function: str) -> None:
    """Let calling the module `package` call `edgeseg.api.<function>` (imported on first call)."""

    class _CallablePackage(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return getattr(importlib.import_module("edgeseg.api"), function)(*args, **kwargs)

    _CallablePackage.__call__.__doc__ = f"Same as edgeseg.api.{function}."
    sys.modules[package].__class__ = _CallablePackage
