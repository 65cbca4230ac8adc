"""Workspace discovery: roost.yaml + .roost/, settings with ROOST_* environment overrides."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.errors import ConfigError, RoostError, closest

CONFIG_NAME = "roost.yaml"
STATE_DIR = ".roost"

DEFAULT_CONFIG = """\
# roost workspace. Paths are relative to this file; ROOST_STORE_URL / ROOST_ARTIFACTS override.
project: {project}
store_url: sqlite:///.roost/roost.db
artifacts: .roost/artifacts
online_store: sqlite:///.roost/online.db
"""


@dataclass
class Workspace:
    """A roost workspace: its root folder and resolved settings."""

    root: Path
    project: str = "default"
    store_url: str = ""
    artifacts: str = ""
    online_store: str = ""
    offline: dict[str, Any] = field(default_factory=lambda: {"engine": "local"})
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        """The .roost folder of this workspace."""
        return self.root / STATE_DIR

    @property
    def config_path(self) -> Path:
        """The roost.yaml of this workspace."""
        return self.root / CONFIG_NAME


def _resolve_url(value: str, root: Path) -> str:
    """Make sqlite/file URLs and bare paths relative to the workspace root absolute."""
    if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
        rel = value[len("sqlite:///") :]
        if rel and rel != ":memory:" and not Path(rel).is_absolute():
            return "sqlite:///" + str((root / rel).resolve())
        return value
    if "://" not in value:
        p = Path(value)
        return str(p if p.is_absolute() else (root / p).resolve())
    return value


OFFLINE_ENGINES = ("local", "spark")
OFFLINE_KEYS = ("engine", "master", "conf")
# Spark's master URL forms (SparkContext's own parser): local[N|*[,F]], local-cluster[..], yarn, spark://, k8s://
_MASTER = re.compile(r"local(\[(\*|\d+)(,\d+)?\])?|local-cluster\[\d+, *\d+, *\d+\]|yarn|(spark|k8s|mesos)://\S+")


def offline_engine(env: str | None, configured: object, where: str = CONFIG_NAME) -> str:
    """The offline engine's name: `env` (ROOST_OFFLINE_ENGINE) else `configured` (offline.engine) else local,
    trimmed and case-folded; empty or blank means unset. Raises ConfigError for a name not in OFFLINE_ENGINES."""
    name = "local"
    for value in (configured, env):  # the variable, when set, overrides the file
        if value is not None and str(value).strip():
            name = str(value).strip().lower()
    if name not in OFFLINE_ENGINES:
        raise ConfigError(
            f"unknown offline engine {name!r} (from ROOST_OFFLINE_ENGINE or offline.engine in {where})",
            hint="use one of: " + ", ".join(OFFLINE_ENGINES),
        )
    return name


def _offline(value: Any, cfg_path: Path) -> dict[str, Any]:
    """The `offline:` settings ({engine: local|spark, master, conf}); ROOST_OFFLINE_ENGINE overrides the engine."""
    if value is None:
        value = {}
    if isinstance(value, str):
        value = {"engine": value}
    if not isinstance(value, dict):
        raise RoostError(
            f"{cfg_path}: offline must be a mapping, got {value!r}",
            hint='e.g. offline: {engine: spark, master: "local[*]"}',
        )
    out = dict(value)
    unknown = [str(k) for k in out if k not in OFFLINE_KEYS]
    if unknown:
        near = closest(unknown[0], OFFLINE_KEYS)
        raise RoostError(
            f"{cfg_path}: unknown key offline.{unknown[0]}",
            hint=(f"did you mean offline.{near}? " if near else "") + "known keys: " + ", ".join(OFFLINE_KEYS),
        )
    if not isinstance(out.get("engine", ""), str):
        raise RoostError(f"{cfg_path}: offline.engine must be a name, got {out['engine']!r}", hint="local or spark")
    master = out.get("master")
    if master is not None and not (isinstance(master, str) and _MASTER.fullmatch(master.strip())):
        raise RoostError(
            f"{cfg_path}: offline.master {master!r} is not a Spark master URL",
            hint='e.g. "local[*]", "local[4]", spark://HOST:7077, yarn or k8s://https://HOST:PORT',
        )
    out["engine"] = offline_engine(os.environ.get("ROOST_OFFLINE_ENGINE"), out.get("engine"), str(cfg_path))
    if not isinstance(out.get("conf", {}), dict):
        raise RoostError(
            f"{cfg_path}: offline.conf must be a mapping of Spark settings", hint="spark.executor.memory: 4g"
        )
    for k, v in (out.get("conf") or {}).items():
        if not isinstance(v, (str, int, float, bool)):
            raise RoostError(
                f"{cfg_path}: offline.conf.{k} must be one value (text, number or true/false), got {v!r}",
                hint="Spark settings are single values, e.g. spark.executor.memory: 4g",
            )
    return out


def find_root(start: Path | None = None) -> Path | None:
    """Walk up from `start` (default cwd) to the first folder holding roost.yaml."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / CONFIG_NAME).is_file():
            return d
    return None


def load(start: Path | None = None, store_url: str | None = None, artifacts: str | None = None) -> Workspace:
    """Find and load the workspace; explicit arguments beat ROOST_* variables beat roost.yaml."""
    import yaml

    env_root = os.environ.get("ROOST_WORKSPACE")
    if start is None and env_root:  # an explicit folder (roost.use, roost init DIR) beats the variable
        env_path = Path(env_root).resolve()
        if not (env_path / CONFIG_NAME).is_file():
            raise RoostError(
                f"ROOST_WORKSPACE={env_root} has no {CONFIG_NAME}",
                hint=f"run `roost init {env_root}` to create the workspace there, or unset ROOST_WORKSPACE",
            )
        root: Path | None = env_path
    else:
        root = find_root(start)
    if root is None:
        raise RoostError(
            f"no roost workspace found in {Path(start or Path.cwd()).resolve()} or any parent folder",
            hint="run `roost init` here (or `roost init DIR`) to create one",
        )
    cfg_path = root / CONFIG_NAME
    try:
        data = yaml.safe_load(cfg_path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RoostError(f"{cfg_path} is not valid YAML: {exc}", hint="fix the file or re-run `roost init`") from None
    if not isinstance(data, dict):
        raise RoostError(f"{cfg_path} must be a mapping of settings", hint="re-run `roost init` to rewrite it")
    known = {"project", "store_url", "artifacts", "online_store", "offline"}
    su = store_url or os.environ.get("ROOST_STORE_URL") or data.get("store_url") or "sqlite:///.roost/roost.db"
    ar = artifacts or os.environ.get("ROOST_ARTIFACTS") or data.get("artifacts") or ".roost/artifacts"
    on = os.environ.get("ROOST_ONLINE_STORE") or data.get("online_store") or "sqlite:///.roost/online.db"
    return Workspace(
        root=root,
        project=str(data.get("project", root.name)),
        store_url=_resolve_url(str(su), root),
        artifacts=_resolve_url(str(ar), root),
        online_store=_resolve_url(str(on), root),
        offline=_offline(data.get("offline"), cfg_path),
        extra={k: v for k, v in data.items() if k not in known},
    )


def create(directory: Path | str | None = None) -> Workspace:
    """Write a workspace's files in `directory` (roost.yaml, .roost/, the local artifact root); idempotent.

    Files only: the registry's schema is created by `roost.init` (roost.registry.api.init), the layer above.
    """
    root = Path(directory or Path.cwd()).resolve()
    root.mkdir(parents=True, exist_ok=True)
    cfg = root / CONFIG_NAME
    if not cfg.exists():
        cfg.write_text(DEFAULT_CONFIG.format(project=root.name))
    (root / STATE_DIR).mkdir(exist_ok=True)
    gi = root / STATE_DIR / ".gitignore"
    if not gi.exists():
        gi.write_text("*\n")
    ws = load(root)
    if ws.artifacts.startswith("/"):
        Path(ws.artifacts).mkdir(parents=True, exist_ok=True)
    return ws


_current: Workspace | None = None
_on_switch: list[Callable[[], None]] = []


def on_switch(callback: Callable[[], None]) -> None:
    """Call `callback` whenever `use` switches the current workspace (e.g. the registry forgets cached stores)."""
    if callback not in _on_switch:
        _on_switch.append(callback)


def current() -> Workspace:
    """The workspace for this process (found once from the cwd, or set by `use`)."""
    global _current
    if _current is None:
        _current = load()
    return _current


def use(ws: Workspace | str | Path | None) -> Workspace | None:
    """Set (or with None, forget) the process's current workspace; returns it."""
    global _current
    if ws is None or isinstance(ws, Workspace):
        _current = ws
    else:
        _current = load(Path(ws))
    for callback in list(_on_switch):
        callback()
    return _current
