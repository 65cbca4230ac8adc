"""Who may call what on the inference server: bearer tokens, the Host allow-list, and path-free error text."""

from __future__ import annotations

import hmac
import re
from pathlib import PurePath

LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]
LOOPBACK_CLIENTS = {"127.0.0.1", "::1", "localhost"}
PUBLIC = frozenset({"/v2/health/live", "/v2/health/ready"})  # never need a token
ADMIN = ("/admin/",)  # always need the token when one is set; only loopback clients when none is
OPERATOR = frozenset({"/metrics"})  # need the token when set, even with public inference

# an absolute filesystem path (optionally a file:// URL) of two or more parts; API routes are not paths
_PATH = re.compile(r"(?<![\w/.:-])(?:file://)?/(?!v1/|v2/|admin/|versions/|labels/)[\w.~@+-]+(?:/[\w.~@+=,-]*)+")


def redact(text: str) -> str:
    """`text` with absolute filesystem paths replaced by '…/<last part>' (nothing about the host's layout)."""
    return _PATH.sub(lambda m: "…/" + (PurePath(m.group(0)).name or "…"), text)


def host_allowed(host_header: bytes | None, allowed: list[str]) -> bool:
    """Whether a Host header (port ignored) matches the allow-list ('*' = any, '*.example.com' = subdomains)."""
    if "*" in allowed:
        return True
    raw = (host_header or b"").decode("latin-1").strip().lower()
    if raw.startswith("["):  # [::1]:8080
        host = raw.split("]", 1)[0] + "]"
    else:
        host = raw.rsplit(":", 1)[0] if raw.count(":") == 1 else raw
    if not host:
        return False
    for pattern in allowed:
        p = pattern.lower()
        if host == p or (p.startswith("*.") and host.endswith(p[1:])):
            return True
    return False


def token_ok(header: bytes | None, expected: bytes | None) -> bool:
    """Whether the Authorization header carries the expected 'Bearer TOKEN' (constant-time compare)."""
    return expected is None or (header is not None and hmac.compare_digest(header, expected))


def is_loopback(client: tuple[str, int] | list[object] | None) -> bool:
    """Whether an ASGI `client` address is this machine (no address: a Unix socket, also local)."""
    return client is None or str(client[0]) in LOOPBACK_CLIENTS
