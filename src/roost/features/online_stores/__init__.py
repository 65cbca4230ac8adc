"""Online stores, chosen by URL: `sqlite:///path` (default) or `redis://host:port/db`."""

from __future__ import annotations

import threading

from roost.errors import ConfigError
from roost.features.online_stores.base import OnlineStore, ViewData, ViewReader

__all__ = ["OnlineStore", "ViewData", "ViewReader", "open_online_store", "reset_online_stores"]

_stores: dict[str, OnlineStore] = {}
_lock = threading.Lock()


def open_online_store(url: str | None = None) -> OnlineStore:
    """The (cached, per process) online store for `url`, default the current workspace's."""
    if url is None:
        from roost import workspace

        url = workspace.current().online_store
    redis_url = url.startswith(("redis://", "rediss://", "unix://"))
    cache_key = f"{url}#{_project()}" if redis_url else url
    with _lock:
        st = _stores.get(cache_key)
        if st is None:
            if url.startswith("sqlite:///"):
                from roost.features.online_stores.sqlite import SQLiteOnlineStore

                st = SQLiteOnlineStore(url)
            elif redis_url:
                from roost.features.online_stores.redis import RedisOnlineStore

                st = RedisOnlineStore(url, prefix=f"roost:{_project()}")
            else:
                raise ConfigError(
                    f"unknown online store URL {url!r}",
                    hint="use sqlite:///path/online.db or redis://127.0.0.1:6379/0 (online_store in "
                    "roost.yaml or ROOST_ONLINE_STORE)",
                )
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
