"""Which Host header names a server answers: the allow-list that keeps DNS-rebinding pages out."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
LOOPBACK_BINDS = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", "[::]", ""})
ANY_IP = "<ip>"  # pattern: any IP-literal Host (a DNS-rebinding page always uses a name, never an address)
ANY = "*"


def _is_ip(name: str) -> bool:
    """Whether a Host name (port already cut, IPv6 maybe in brackets) is an IP address literal."""
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _machine_names() -> list[str]:
    """This machine's host name and fully qualified name (what a colleague types for an opened server)."""
    names = {socket.gethostname().lower()}
    try:
        names.add(socket.getfqdn().lower())
    except OSError:  # pragma: no cover - a resolver failure leaves the plain host name
        pass
    return sorted(n for n in names if n)


def allowed_hosts(bind: str, extra: Iterable[str] = ()) -> list[str]:
    """The Host allow-list of a server bound to `bind`: the loopback names, the bound address, `extra` names
    (--allow-host; '*' = any, '*.example.com' = subdomains) and, on a wildcard bind (0.0.0.0, ::), any IP
    literal and this machine's host names."""
    extra = [e.strip().lower() for e in extra if e.strip()]
    if ANY in extra:
        return [ANY]
    out = list(LOOPBACK_NAMES)
    b = bind.strip().lower()
    if b in WILDCARD_BINDS:
        out += [ANY_IP, *_machine_names()]
    elif b not in LOOPBACK_BINDS:
        out.append(f"[{b}]" if ":" in b and not b.startswith("[") else b)
    return list(dict.fromkeys(out + extra))


def host_name(host_header: bytes | str | None) -> str:
    """The name part of a Host header, lower-cased, without the port ('[::1]:80' gives '[::1]'); '' if none."""
    raw = host_header.decode("latin-1") if isinstance(host_header, bytes) else (host_header or "")
    raw = raw.strip().lower()
    if raw.startswith("["):
        return raw.split("]", 1)[0] + "]"
    return raw.rsplit(":", 1)[0] if raw.count(":") == 1 else raw


def host_allowed(host_header: bytes | str | None, allowed: Sequence[str]) -> bool:
    """Whether a Host header (port ignored) matches the allow-list ('*' = any, '*.example.com' = subdomains,
    '<ip>' = any IP literal)."""
    if ANY in allowed:
        return True
    host = host_name(host_header)
    if not host or any(c in host for c in "/\\@ \t"):
        return False
    for pattern in allowed:
        p = pattern.lower()
        if host == p or (p.startswith("*.") and host.endswith(p[1:])) or (p == ANY_IP and _is_ip(host)):
            return True
    return False
