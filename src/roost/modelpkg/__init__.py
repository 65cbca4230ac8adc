"""The roost model package: write it (train), load it with ONNX Runtime only (serve). Never imports torch."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.modelpkg.package import FORMAT_VERSION, check_built, read_meta, read_signature, write_package

if TYPE_CHECKING:
    from roost.modelpkg.predictor import Predictor

__all__ = [
    "FORMAT_VERSION",
    "write_package",
    "read_meta",
    "read_signature",
    "load",
    "load_model",
    "resolve_package",
    "Predictor",
]


def load(path: str | Path) -> Predictor:
    """Load a model package folder (or its model.onnx) as a Predictor."""
    from roost.modelpkg.predictor import Predictor

    check_built(path)
    return Predictor(path)


def resolve_package(uri: str | Path) -> tuple[Path, str]:
    """(package folder, version label): a folder/file:// path as is, `name@alias` / `name/3` via the registry."""
    from roost.errors import RoostError
    from roost.modelpkg.package import package_root

    s = str(uri)
    if s.startswith("file://"):
        s = s[len("file://") :]
    p = Path(s).expanduser()
    if p.exists():
        return package_root(p), str(p.resolve())
    if "@" in s or re.fullmatch(r"[^/\s]+/\d+", s):
        from roost.registry.api import resolve_model

        version = resolve_model(s)
        local = getattr(version, "local_path", None)
        if not local:
            raise RoostError(f"model {s} has no local copy", hint="use a file:// artifact root or download it")
        return package_root(local), f"{getattr(version, 'name', s)}/{getattr(version, 'version', '?')}"
    raise RoostError(f"no model package at {s!r}", hint="pass a package folder, `name@alias` or `name/VERSION`")


def load_model(uri: str | Path) -> Predictor:
    """Load by path, file:// URI, or registry reference (`name@alias`, `name/3`)."""
    return load(resolve_package(uri)[0])


def __getattr__(name: str) -> Any:
    if name == "Predictor":
        from roost.modelpkg.predictor import Predictor

        return Predictor
    raise AttributeError(name)
