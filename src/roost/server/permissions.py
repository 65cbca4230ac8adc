"""Who may do what on the team server: one rule set for the REST API, the MLflow API, the artifact proxy and the UI.

An admin may do anything. Anyone else holds, on an experiment, a registered model or a kind of stored object, the
highest role among their own grant and their groups' grants on it; with no grant at all, the server's default role
('read' or 'none'). On PostgreSQL a server process caches grants (roost.registry.auth_cache), and every grant or
membership change clears that cache in every process when it commits, so a revoke takes effect at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from roost.server.identity import ROLES, Forbidden, Identity, rank

if TYPE_CHECKING:
    from roost.registry.store import Store

KIND_NAMES = {"experiment": "experiment", "model": "registered model", "object": "stored objects of kind"}


def role_on(store: Store, identity: Identity, kind: str, name: str, default_role: str = "read") -> str:
    """The role of `identity` on (kind, name): 'manage' for an admin, else its best grant, else `default_role`."""
    from roost.registry.grants import roles_on

    if identity.admin:
        return "manage"
    granted = roles_on(store, identity.account_id, kind, name)
    if not granted:
        rank(default_role)  # an unknown default is a configuration error, said as one
        return default_role
    return max(granted, key=rank)


def require(store: Store, identity: Identity, kind: str, name: str, role: str, default_role: str = "read") -> str:
    """`identity`'s role on (kind, name) when it is at least `role`, else Forbidden (403) naming what is needed."""
    have = role_on(store, identity, kind, name, default_role)
    if rank(have) < rank(role):
        what = KIND_NAMES.get(kind, kind)
        raise Forbidden(
            f"{identity.name} needs the {role} role on {what} {name!r} (has {have})",
            hint=f"ask an admin: roost grant {identity.name} {role} {kind}:{name}",
        )
    return have


def sees_everything(store: Store, identity: Identity, default_role: str = "read") -> bool:
    """Whether `identity` may read every experiment and model: an admin, or anyone when the default role is read and
    no explicit 'none' grant shuts them out of something (the hosted web UI, which does not filter, needs this)."""
    from roost.registry.grants import has_none_grant

    if identity.admin:
        return True
    return rank(default_role) >= rank("read") and not has_none_grant(store, identity.account_id)


def require_admin(identity: Identity) -> None:
    """Forbidden (403) unless `identity` is an admin (accounts, tokens, groups, grants, gc, the audit log)."""
    if not identity.admin:
        raise Forbidden(f"{identity.name} is not an admin", hint="ask an admin: roost users set-admin NAME")


def on_create(store: Store, identity: Identity, kind: str, name: str) -> None:
    """Give the creator of an experiment or registered model the manage role on it (as MLflow does)."""
    from roost.registry.grants import grant

    grant(store, identity.name, kind, name, "manage")  # the account's own grant (its groups' stay as they are)


__all__ = ["ROLES", "on_create", "require", "require_admin", "role_on", "sees_everything"]
