"""Online stores, chosen by URL scheme: `sqlite:///path` (default) or `redis://host:port/db`.

SCHEMES maps each URL scheme to the "module:Class" of its store; every class implements `OnlineStore` (the
declared interface in `base.py`) and is imported only when a URL of its scheme is opened.
"""

from __future__ import annotations

import importlib
import threading

from roost.errors import ConfigError
from roost.features.online_stores.base import OnlineStore, ViewData, ViewReader

__all__ = [
    "SCHEMES",
    "OnlineStore",
    "ViewData",
    "ViewReader",
    "open_online_store",
    "reset_online_stores",
    "store_class",
]

SCHEMES: dict[str, str] = {
    "sqlite": "roost.features.online_stores.sqlite:SQLiteOnlineStore",
    "redis": "roost.features.online_stores.redis:RedisOnlineStore",
    "rediss": "roost.features.online_stores.redis:RedisOnlineStore",
    "unix": "roost.features.online_stores.redis:RedisOnlineStore",
}

_stores: dict[str, OnlineStore] = {}
_lock = threading.Lock()


def store_class(url: str) -> type[OnlineStore]:
    """The OnlineStore class that serves `url`, by its scheme (imported on first use)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    target = SCHEMES.get(scheme)
    if target is None:
        raise ConfigError(
            f"unknown online store URL {url!r}",
            hint="use "
            + " or ".join(f"{s}://..." for s in SCHEMES if s in ("sqlite", "redis"))
            + " (e.g. sqlite:///path/online.db, redis://127.0.0.1:6379/0) as online_store in roost.yaml "
            "or ROOST_ONLINE_STORE",
        )
    module, _, name = target.partition(":")
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, OnlineStore)):
        raise TypeError(f"{target} is not an OnlineStore")
    return cls


def open_online_store(url: str | None = None) -> OnlineStore:
    """The (cached, per process) online store for `url`, default the current workspace's."""
    if url is None:
        from roost import workspace

        url = workspace.current().online_store
    cls = store_class(url)
    project = _project()
    cache_key = f"{url}#{project}" if cls.per_project else url
    with _lock:
        st = _stores.get(cache_key)
        if st is None:
            st = cls.from_url(url, project)
            _stores[cache_key] = st
        return st


def _project() -> str:
    """The current workspace's project name (namespaces Redis keys), or 'default' outside a workspace."""
    from roost import workspace
    from roost.errors import RoostError

    try:
        return workspace.current().project
    except RoostError:
        return "default"


def reset_online_stores() -> None:
    """Close and forget cached stores (tests, workspace switches)."""
    with _lock:
        for st in _stores.values():
            st.close()
        _stores.clear()
