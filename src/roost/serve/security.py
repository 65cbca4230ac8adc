"""Who may call what on the inference server, and path-free error text. The Host allow-list, cross-site and
content-type checks and the token comparison are roost.netpolicy's, shared by every roost server."""

from __future__ import annotations

import re
from pathlib import PurePath

LOOPBACK_CLIENTS = {"127.0.0.1", "::1", "localhost"}
PUBLIC = frozenset({"/v2/health/live", "/v2/health/ready"})  # never need a token
ADMIN = ("/admin/",)  # always need the token when one is set; only loopback clients when none is
OPERATOR = frozenset({"/metrics"})  # need the token when set, even with public inference

# an absolute filesystem path (optionally a file:// URL) of two or more parts; API routes are not paths
_PATH = re.compile(r"(?<![\w/.:-])(?:file://)?/(?!v1/|v2/|admin/|versions/|labels/)[\w.~@+-]+(?:/[\w.~@+=,-]*)+")


def redact(text: str) -> str:
    """`text` with absolute filesystem paths replaced by '…/<last part>' (nothing about the host's layout)."""
    return _PATH.sub(lambda m: "…/" + (PurePath(m.group(0)).name or "…"), text)


def is_loopback(client: tuple[str, int] | list[object] | None) -> bool:
    """Whether an ASGI `client` address is this machine (no address: a Unix socket, also local)."""
    return client is None or str(client[0]) in LOOPBACK_CLIENTS
