"""Placeholder, replaced by identity: the permission rules of the team server (see SERVER-CONTRACT.md).

This stand-in allows everything when no Identity is in the request's scope, and otherwise applies the contract's
rule with admin → manage and everyone else → `default_role` (no grants are read)."""

from __future__ import annotations

from typing import Any

from roost.server.identity import Forbidden, Identity, rank


def role_on(store: Any, identity: Identity | None, kind: str, name: str, default_role: str) -> str:
    """The role `identity` holds on resource (kind, name)."""
    if identity is None or identity.admin:
        return "manage"
    return default_role


def require(store: Any, identity: Identity | None, kind: str, name: str, role: str, default_role: str) -> None:
    """Raise Forbidden when `identity`'s role on (kind, name) is below `role`."""
    if rank(role_on(store, identity, kind, name, default_role)) < rank(role):
        raise Forbidden(f"{role} role needed on {kind} {name!r}", hint="ask an admin or the owner for a grant")


def on_create(store: Any, identity: Identity | None, kind: str, name: str) -> None:
    """The creator of an experiment or model gets manage on it (placeholder: nothing recorded)."""


def require_admin(identity: Identity | None) -> None:
    """Raise Forbidden unless `identity` is an admin (or there is no identity: placeholder auth)."""
    if identity is not None and not identity.admin:
        raise Forbidden("admin role needed", hint="ask an admin")
