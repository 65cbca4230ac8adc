"""Lazy package attributes: `import roost.x` stays cheap; each public name imports its module on first use."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_api(
    package: str, api: dict[str, str], submodules: set[str] | frozenset[str] = frozenset()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`(__getattr__, __dir__)` for `package`: `api` maps a public name to "module:attribute"."""

    def __getattr__(name: str) -> Any:
        mod = sys.modules[package]
        if name in api:
            modname, attr = api[name].split(":")
            value = getattr(importlib.import_module(modname), attr)
        elif name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(mod, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(api) | set(submodules))

    return __getattr__, __dir__
