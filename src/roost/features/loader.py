"""Find feature definitions in a workspace (`features/*.py`) and load Python transformations again by reference."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from roost.errors import ConfigError, RoostError
from roost.features.definitions import LOADER_PREFIX, Definitions, Entity, FeatureView, Source

FEATURES_DIR = "features"


__all__ = ["import_file", "load_definitions", "load_function"]


def _module_name(path: Path) -> str:
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    return f"{LOADER_PREFIX}.{path.stem}_{digest}"


def import_file(path: Path) -> Any:
    """Import one definitions file under a private module name (its `__main__` block does not run)."""
    name = _module_name(path)
    if LOADER_PREFIX not in sys.modules:
        import types

        pkg = types.ModuleType(LOADER_PREFIX)
        pkg.__path__ = []
        sys.modules[LOADER_PREFIX] = pkg
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import feature definitions from {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except RoostError:
        sys.modules.pop(name, None)
        raise
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ConfigError(
            f"{path}: {type(exc).__name__}: {exc}",
            hint="fix the definitions file; it must import and run without errors",
        ) from exc
    return mod


def load_definitions(root: Path, folder: str | Path | None = None) -> Definitions:
    """Import every `*.py` in the workspace's features folder and collect its Entities, Sources, FeatureViews and
    RequestViews."""
    d = Path(folder) if folder else root / FEATURES_DIR
    if not d.is_absolute():
        d = root / d
    if not d.is_dir():
        raise RoostError(
            f"no feature definitions folder at {d}",
            hint=f"create {FEATURES_DIR}/ in the workspace with a .py file declaring Entity, "
            "Source and FeatureView objects (see docs/features.md)",
        )
    from roost.features.ondemand import RequestView

    defs = Definitions()
    files = sorted(p for p in d.glob("*.py") if not p.name.startswith("_"))
    if not files:
        raise RoostError(f"{d} holds no .py definition files", hint="add e.g. features/user.py (docs/features.md)")
    for path in files:
        mod = import_file(path)
        for value in list(vars(mod).values()):
            if isinstance(value, RequestView):
                defs.add_request(value, str(path))
            elif isinstance(value, (Entity, Source, FeatureView)):
                defs.add(value, str(path))
    return defs


def load_function(ref: dict[str, Any], root: Path) -> Callable[..., Any]:
    """Load a registered Python transformation and check it is the one that was applied."""
    fname = ref["function"]
    if "file" in ref:
        path = Path(ref["file"])
        path = path if path.is_absolute() else root / path
        if not path.is_file():
            raise RoostError(
                f"transformation file {path} has disappeared",
                hint="restore it, or change the definitions and run `roost features apply`",
            )
        mod = sys.modules.get(_module_name(path)) or import_file(path)
    else:
        mod = importlib.import_module(ref["module"])
    obj: Any = mod
    for part in fname.split("."):
        obj = getattr(obj, part, None)
    if not callable(obj):
        raise RoostError(
            f"transformation {fname!r} not found in {ref.get('file') or ref.get('module')}",
            hint="run `roost features apply` after changing definitions",
        )
    try:
        src = inspect.getsource(obj)
    except (OSError, TypeError):
        src = fname
    if hashlib.sha256(src.encode()).hexdigest()[:16] != ref.get("hash"):
        raise RoostError(
            f"transformation {fname!r} changed since it was applied",
            hint="run `roost features apply` so training and serving use the same code",
        )
    fn: Callable[..., Any] = obj
    return fn
