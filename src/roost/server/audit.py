"""The audit middleware: every write (a method other than GET/HEAD/OPTIONS) and every refused request (status ≥
400) leaves one row in the audit log — who (the authenticated account, or none), what (method or a named action,
and the path), when, from where (the peer address; X-Forwarded-For only from trusted proxies) and the answer.

Never a secret: no headers, no query strings (they may carry tokens), no bodies. The row is written after the
response went out (queued for the batched writer, roost.registry.audit_writer); a failing insert is logged and the
response is not affected.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from roost.netpolicy.auth import ASGIApp, Receive, Scope, Send
from roost.server.identity import SCOPE_KEY, Identity
from roost.server.settings import ServerSettings

log = logging.getLogger(__name__)

# scope entry where routes name their action, actor and detail ({"action", "actor", "detail"}; "always": record a
# successful GET too, as a sign-in through the OIDC provider's redirect)
AUDIT_KEY = "roost.audit"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_Net = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=64)
def _networks(trusted: tuple[str, ...]) -> tuple[_Net, ...]:
    nets = []
    for t in trusted:
        try:
            nets.append(ipaddress.ip_network(t.strip(), strict=False))
        except ValueError:
            log.warning("trusted proxy %r is not an IP address or network; ignored", t)
    return tuple(nets)


def _is_trusted(addr: str, nets: tuple[_Net, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(addr.strip())
    except ValueError:
        return False
    return any(ip in n for n in nets)


def client_address(scope: Mapping[str, Any], trusted_proxies: list[str] | tuple[str, ...]) -> str | None:
    """The client's address: the TCP peer, or — when the peer is a trusted proxy — the nearest X-Forwarded-For hop
    that is not itself a trusted proxy (a client can prepend anything to the header, so it is read from the right)."""
    peer = scope.get("client")
    addr: str | None = str(peer[0]) if peer else None
    nets = _networks(tuple(trusted_proxies)) if trusted_proxies else ()
    if addr is None or not nets or not _is_trusted(addr, nets):
        return addr
    raw = b",".join(v for k, v in scope.get("headers", []) if k == b"x-forwarded-for").decode("latin-1")
    hops = [h.strip() for h in raw.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, nets):
            return hop[:128]
    return hops[0][:128] if hops else addr


class AuditMiddleware:
    """Record every write and every refused request in the audit log (outermost middleware: sees every answer)."""

    def __init__(self, app: ASGIApp, settings: ServerSettings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [0]

        async def watched(msg: dict[str, Any]) -> None:
            if msg["type"] == "http.response.start":
                status[0] = int(msg["status"])
            await send(msg)

        try:
            await self.app(scope, receive, watched)
        except BaseException:
            status[0] = status[0] or 500
            await self._record(scope, status[0])
            raise
        named = scope.get(AUDIT_KEY) or {}
        write = scope["method"] not in SAFE_METHODS and not named.get("read")  # a search POST only reads
        if write or status[0] >= 400 or named.get("always"):
            await self._record(scope, status[0])

    async def _record(self, scope: Scope, status: int) -> None:
        try:
            self._submit(scope, status)  # queued: audit_writer writes it within milliseconds, batched
        except Exception:  # the audit log failing must not turn an answer into an error
            log.exception("audit log insert failed for %s %s -> %s", scope.get("method"), scope.get("path"), status)

    def _submit(self, scope: Scope, status: int) -> None:
        from roost.registry.audit_log import submit

        named: dict[str, Any] = scope.get(AUDIT_KEY) or {}
        who = scope.get(SCOPE_KEY)
        actor = who.name if isinstance(who, Identity) else named.get("actor")
        detail = {"method": scope["method"], **(named.get("detail") or {})}
        if isinstance(who, Identity):
            detail["via"] = who.via
        submit(
            self.settings.store(),
            action=named.get("action") or scope["method"],
            status=status,
            actor=actor,
            resource=scope["path"],
            client=client_address(scope, self.settings.trusted_proxies),
            detail=detail,
        )
