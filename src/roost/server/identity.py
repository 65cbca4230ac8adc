"""Who is asking: the authenticated identity of a request, roles and their order, and the errors of access."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from roost.errors import RoostError

ROLES = ("none", "read", "edit", "manage")  # each includes the ones before it; admin is above all of them
RESOURCE_KINDS = ("experiment", "model")
SCOPE_KEY = "roost.identity"  # where the auth middleware puts the Identity in the ASGI scope


def rank(role: str) -> int:
    """The order of a role: none 0 < read 1 < edit 2 < manage 3."""
    try:
        return ROLES.index(role)
    except ValueError:
        raise RoostError(f"unknown role {role!r}", hint="one of " + ", ".join(ROLES)) from None


@dataclass(frozen=True)
class Identity:
    """An authenticated account (person or service account), its groups and whether it is an admin."""

    name: str
    account_id: int
    kind: str = "user"  # 'user' | 'service'
    admin: bool = False
    group_ids: tuple[int, ...] = ()
    via: str = "token"  # 'token' | 'session' | 'basic'


class Unauthenticated(RoostError):
    """No valid credentials (HTTP 401)."""

    status = 401


class Forbidden(RoostError):
    """Authenticated, but the role on the resource is too low (HTTP 403)."""

    status = 403


def identity_of(scope: Any) -> Identity:
    """The Identity the auth middleware attached to a request (its scope or a Starlette Request)."""
    found = (scope.scope if hasattr(scope, "scope") else scope).get(SCOPE_KEY)
    if not isinstance(found, Identity):
        raise Unauthenticated(
            "not signed in", hint="send `Authorization: Bearer TOKEN` (create one: roost tokens create)"
        )
    return found
