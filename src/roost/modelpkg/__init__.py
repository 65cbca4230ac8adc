"""The roost model package: write it (train), load it with ONNX Runtime only (serve). Never imports torch."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.modelpkg.package import FORMAT_VERSION, read_meta, read_signature, write_package

if TYPE_CHECKING:
    from roost.modelpkg.predictor import Predictor

__all__ = ["FORMAT_VERSION", "write_package", "read_meta", "read_signature", "load", "load_model", "Predictor"]


def load(path: str | Path) -> Predictor:
    """Load a model package folder (or its model.onnx) as a Predictor."""
    from roost.modelpkg.predictor import Predictor

    return Predictor(path)


def load_model(uri: str | Path) -> Predictor:
    """Load by path, file:// URI, or registry reference (`name@alias`, `name/3`)."""
    from roost.errors import RoostError

    s = str(uri)
    if s.startswith("file://"):
        s = s[len("file://") :]
    p = Path(s).expanduser()
    if p.exists():
        return load(p)
    if "@" in s or re.fullmatch(r"[^/\s]+/\d+", s):
        from roost.registry.api import resolve_model

        version = resolve_model(s)
        local = getattr(version, "local_path", None)
        if not local:
            raise RoostError(f"model {s} has no local copy", hint="use a file:// artifact root or download it")
        return load(local)
    raise RoostError(f"no model package at {s!r}", hint="pass a package folder, `name@alias` or `name/VERSION`")


def __getattr__(name: str) -> Any:
    if name == "Predictor":
        from roost.modelpkg.predictor import Predictor

        return Predictor
    raise AttributeError(name)
