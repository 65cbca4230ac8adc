"""Which TrackingStore client code talks to: a roost server (ROOST_SERVER + ROOST_TOKEN, or `roost login`) through
the RestStore, else the workspace's database through the SqlStore. Code that needs SQL itself (the UI, tuning
studies on the server side, the MLflow importer) keeps roost.registry.store.default_store, which refuses a server
client clearly; a server client tunes through the server (roost.tune.remote)."""

from __future__ import annotations

import threading

from roost import workspace
from roost.registry import credentials
from roost.registry.interface import TrackingStore
from roost.registry.rest import RestStore
from roost.registry.sqlstore import sql_store

_rest: dict[tuple[str, str | None], RestStore] = {}
_lock = threading.Lock()


def rest_store(url: str, token: str | None = None) -> RestStore:
    """The (cached, per process) RestStore of server `url` with `token` (default: the configured one)."""
    token = token if token is not None else credentials.token_for(url)
    with _lock:
        st = _rest.get((url, token))
        if st is None:
            st = _rest[(url, token)] = RestStore(url, token)
        return st


def open_store(url: str, create: bool = True) -> TrackingStore:
    """The store at `url`: a RestStore for http(s):// (a roost server), else the SQL store (migrated)."""
    if url.startswith(("http://", "https://")):
        return rest_store(url)
    return sql_store(url, create)


def default_store() -> TrackingStore:
    """The store this client uses: the configured roost server, else the current workspace's database."""
    found = credentials.server()
    if found is not None:
        return rest_store(found[0], found[1])
    return sql_store(workspace.current().store_url)


def reset() -> None:
    """Forget cached server clients (after switching workspace or credentials)."""
    with _lock:
        for st in _rest.values():
            st.close()
        _rest.clear()


workspace.on_switch(reset)
