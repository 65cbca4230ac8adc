"""The one network policy every server roost starts follows (docs/security.md): Host allow-list, Origin check and
JSON content type on state changes, the token wherever one is configured, timeouts for slow clients, connection and
size limits. Base layer: it imports nothing of the capability packages, which all build their servers on it."""

from roost.netpolicy.auth import TokenAuth, bearer, new_token, token_ok
from roost.netpolicy.guard import (
    SAFE_METHODS,
    Guard,
    check,
    content_type_reason,
    cross_site_reason,
    refuse,
)
from roost.netpolicy.hosts import ANY_IP, LOOPBACK_NAMES, allowed_hosts, host_allowed

__all__ = [
    "ANY_IP",
    "LOOPBACK_NAMES",
    "SAFE_METHODS",
    "Guard",
    "TokenAuth",
    "allowed_hosts",
    "bearer",
    "check",
    "content_type_reason",
    "cross_site_reason",
    "host_allowed",
    "new_token",
    "refuse",
    "token_ok",
]
