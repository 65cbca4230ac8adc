"""Running the team server: each uvicorn worker's setup (its UI reads the server's store, never a server client) and
the connection-limited HTTP protocol (roost.netpolicy.limits) uvicorn imports by name in every worker."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from roost.netpolicy.limits import ConnStats
from roost.server.settings import ENV, ServerSettings

STATS = ConnStats()  # this worker's connection counts (GET /metrics)
_protocol: Any = None


def server_env(settings: ServerSettings) -> dict[str, str]:
    """Environment of server processes: the settings, the store as the workspace's, no client credentials."""
    from roost.registry import credentials

    env = {k: v for k, v in os.environ.items() if k not in (credentials.SERVER_ENV, credentials.TOKEN_ENV)}
    env[credentials.IN_SERVER_ENV] = "1"
    env[ENV] = settings.to_env()
    env["ROOST_STORE_URL"] = settings.store_url
    env["ROOST_ARTIFACTS"] = settings.artifact_root
    return env


def prepare_process(settings: ServerSettings) -> None:
    """Make this process's workspace the server's store and artifacts (the UI mounted at / reads them)."""
    from roost import workspace
    from roost.registry import credentials

    os.environ[credentials.IN_SERVER_ENV] = "1"
    os.environ.pop(credentials.SERVER_ENV, None)
    os.environ.pop(credentials.TOKEN_ENV, None)
    os.environ["ROOST_STORE_URL"] = settings.store_url
    os.environ["ROOST_ARTIFACTS"] = settings.artifact_root
    if workspace.find_root() is None and not os.environ.get("ROOST_WORKSPACE"):
        ws = workspace.Workspace(root=Path.cwd(), store_url=settings.store_url, artifacts=settings.artifact_root)
        workspace.use(ws)
    else:
        workspace.use(None)  # found again with the overrides above


def __getattr__(name: str) -> Any:
    """`http_protocol`: the limited protocol class, built once per worker (uvicorn imports it by name)."""
    global _protocol
    if name != "http_protocol":
        raise AttributeError(name)
    if _protocol is None:
        from roost.netpolicy.limits import ConnLimits, uvicorn_options

        _protocol = uvicorn_options(ConnLimits.from_env(), "roost server", STATS)["http"]
    return _protocol
