"""Placeholder, replaced by identity: the permission rules of the team server (SERVER-CONTRACT.md, "Permissions").

This stand-in allows everything; the helper "identity" replaces it with the real rules (grants, groups, default
role). The signatures are the contract's.
"""

from __future__ import annotations

from roost.registry.store import Store
from roost.server.identity import Forbidden, Identity


def role_on(store: Store, identity: Identity, kind: str, name: str, default_role: str) -> str:
    """The caller's role on (kind, name) — placeholder: everyone manages everything."""
    return "manage"


def require(store: Store, identity: Identity, kind: str, name: str, role: str, default_role: str) -> None:
    """Raise Forbidden when the caller's role on (kind, name) is below `role` — placeholder: never."""


def require_admin(identity: Identity) -> None:
    """Raise Forbidden unless the caller is an admin."""
    if not identity.admin:
        raise Forbidden(f"{identity.name} is not an admin", hint="ask an admin")


def on_create(store: Store, identity: Identity, kind: str, name: str) -> None:
    """The creator of an experiment or registered model gets 'manage' on it — placeholder: nothing to record."""
