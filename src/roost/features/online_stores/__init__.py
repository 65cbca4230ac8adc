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
    with _lock:
        st = _stores.get(url)
        if st is None:
            if url.startswith("sqlite:///") or url == ":memory:":
                from roost.features.online_stores.sqlite import SQLiteOnlineStore

                st = SQLiteOnlineStore(url)
            elif url.startswith(("redis://", "rediss://", "unix://")):
                from roost.features.online_stores.redis import RedisOnlineStore

                st = RedisOnlineStore(url)
            else:
                raise ConfigError(f"unknown online store URL {url!r}",
                                  hint="use sqlite:///path/online.db or redis://127.0.0.1:6379/0 (online_store in "
                                       "roost.yaml or ROOST_ONLINE_STORE)")
            _stores[url] = st
        return st


def reset_online_stores() -> None:
    """Close and forget cached stores (tests, workspace switches)."""
    with _lock:
        for st in _stores.values():
            st.close()
        _stores.clear()
