"""The team server's settings: where the store and artifacts live, the default role, limits and TLS."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from roost.registry.store import Store

ENV = "ROOST_SERVER_SETTINGS"  # the settings as JSON, for worker processes (uvicorn --workers imports the app)


@dataclass
class ServerSettings:
    """Everything one server process needs; `roost server` builds it from flags and hands it to every worker."""

    store_url: str
    artifact_root: str  # file:///… or s3://…; runs' artifacts live under it, clients reach them through the proxy
    default_role: str = "read"  # role of a signed-in account on a resource without a grant: 'read' or 'none'
    allowed_hosts: list[str] | None = None  # Host allow-list (None: no check)
    public_url: str | None = None  # how clients reach the server (behind a proxy); else taken from the request
    trusted_proxies: list[str] = field(default_factory=list)  # peers whose X-Forwarded-* headers are believed
    max_upload_bytes: int = 5 * 1024**3  # one artifact file through the proxy
    max_body_bytes: int = 32 * 1024**2  # one JSON request
    session_secret: str | None = None  # signs UI session cookies; None: random per start (sessions end at restart)
    login_attempts_per_minute: int = 10  # per account name and per client address
    limiter_path: str | None = None  # SQLite file the workers share failed sign-ins in (None: count per process)
    secure_cookies: bool = False  # set when served over TLS (or behind a TLS proxy)
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None

    def store(self) -> Store:
        """The SQL store behind the server (opened once per process)."""
        from roost.registry.store import open_store

        return open_store(self.store_url)

    def to_env(self) -> str:
        """The settings as JSON (for ROOST_SERVER_SETTINGS)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServerSettings:
        """The settings a parent `roost server` put in ROOST_SERVER_SETTINGS."""
        return cls(**json.loads(os.environ[ENV]))
