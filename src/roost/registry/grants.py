"""Groups of accounts and the roles (grants) of accounts and groups on experiments, registered models and stored
objects — the data behind roost.server.permissions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, cast

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.exc import IntegrityError

from roost.errors import ConflictError, NotFoundError, RoostError, closest
from roost.registry import auth_cache
from roost.registry.accounts import check_name
from roost.registry.store import utcnow
from roost.registry.tables import Account, Grant, Group, GroupMember

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from roost.registry.store import Store

RESOURCE_KINDS = ("experiment", "model", "object")
GRANT_ROLES = ("none", "read", "edit", "manage")  # 'none' shuts an account out where the default role is read
GROUP_PREFIX = "group:"
T = TypeVar("T")


@dataclass(frozen=True)
class GroupRecord:
    """A group and the names of its members."""

    id: int
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class GrantRecord:
    """A role of a principal (an account name, or `group:NAME`) on one resource."""

    principal: str
    resource_kind: str
    resource_name: str
    role: str

    @property
    def resource(self) -> str:
        """`kind:name`, as the CLI writes it."""
        return f"{self.resource_kind}:{self.resource_name}"


def _group(s: Session, name: str) -> Group:
    g = s.execute(select(Group).where(Group.name == name)).scalar_one_or_none()
    if g is None:
        names = list(s.execute(select(Group.name)).scalars())
        near = closest(name, names)
        raise NotFoundError(
            f"no group named {name!r}", hint=f"did you mean {near!r}?" if near else "list them: roost groups list"
        )
    return g


def _account_id(s: Session, name: str) -> int:
    found = s.execute(select(Account.id).where(Account.name == name)).scalar_one_or_none()
    if found is None:
        raise NotFoundError(f"no account named {name!r}", hint="list them: roost users list")
    return found


def create_group(store: Store, name: str) -> GroupRecord:
    """Create an empty group."""
    check_name(name, "group")
    try:
        with store.write() as s:
            g = Group(name=name, created_at=utcnow())
            s.add(g)
            s.flush()
            return GroupRecord(g.id, g.name, ())
    except IntegrityError:
        raise ConflictError(f"a group named {name!r} exists", hint="choose another name") from None


def add_member(store: Store, group: str, account: str) -> None:
    """Add an account to a group (no-op when it is a member already)."""
    with store.write() as s:
        gid, aid = _group(s, group).id, _account_id(s, account)
        if s.get(GroupMember, (gid, aid)) is None:
            s.add(GroupMember(group_id=gid, account_id=aid))
            auth_cache.notify(s)


def remove_member(store: Store, group: str, account: str) -> None:
    """Remove an account from a group."""
    with store.write() as s:
        gid, aid = _group(s, group).id, _account_id(s, account)
        gone = s.execute(delete(GroupMember).where(GroupMember.group_id == gid, GroupMember.account_id == aid))
        if not getattr(gone, "rowcount", 0):
            raise NotFoundError(f"{account!r} is not a member of {group!r}", hint="roost groups list")
        auth_cache.notify(s)


def list_groups(store: Store) -> list[GroupRecord]:
    """Every group with its members, by name."""
    with store.read() as s:
        groups = list(s.execute(select(Group).order_by(Group.name)).scalars())
        rows = s.execute(
            select(GroupMember.group_id, Account.name)
            .join(Account, Account.id == GroupMember.account_id)
            .order_by(Account.name)
        ).all()
    members: dict[int, list[str]] = {}
    for gid, name in rows:
        members.setdefault(gid, []).append(name)
    return [GroupRecord(g.id, g.name, tuple(members.get(g.id, []))) for g in groups]


def group_ids_of(store: Store, account_id: int) -> tuple[int, ...]:
    """The ids of the groups an account belongs to."""
    with store.read() as s:
        q = select(GroupMember.group_id).where(GroupMember.account_id == account_id).order_by(GroupMember.group_id)
        return tuple(s.execute(q).scalars())


def parse_resource(resource: str) -> tuple[str, str]:
    """('experiment'|'model'|'object', name) of `kind:name`."""
    kind, sep, name = resource.partition(":")
    if not sep or kind not in RESOURCE_KINDS or not name:
        raise RoostError(
            f"invalid resource {resource[:200]!r}",
            hint="experiment:NAME, model:NAME or object:KIND (e.g. experiment:churn, model:ranker)",
        )
    return kind, name


def _principal(s: Session, principal: str) -> tuple[str, int]:
    if principal.startswith(GROUP_PREFIX):
        return "group", _group(s, principal[len(GROUP_PREFIX) :]).id
    return "account", _account_id(s, principal)


def _check_role(role: str) -> str:
    if role not in GRANT_ROLES:
        raise RoostError(f"unknown role {role!r}", hint="one of " + ", ".join(GRANT_ROLES))
    return role


def grant(store: Store, principal: str, kind: str, name: str, role: str) -> GrantRecord:
    """Give `principal` (an account name or `group:NAME`) `role` on (kind, name), replacing its former role."""
    _check_role(role)
    if kind not in RESOURCE_KINDS:
        parse_resource(f"{kind}:{name}")
    with store.write() as s:
        pkind, pid = _principal(s, principal)
        row = s.execute(
            select(Grant).where(
                Grant.principal_kind == pkind,
                Grant.principal_id == pid,
                Grant.resource_kind == kind,
                Grant.resource_name == name,
            )
        ).scalar_one_or_none()
        if row is None:
            s.add(Grant(principal_kind=pkind, principal_id=pid, resource_kind=kind, resource_name=name, role=role))
        else:
            row.role = role
        auth_cache.notify(s)
    return GrantRecord(principal, kind, name, role)


def revoke(store: Store, principal: str, kind: str, name: str) -> None:
    """Take back `principal`'s grant on (kind, name) (NotFoundError when it has none)."""
    with store.write() as s:
        pkind, pid = _principal(s, principal)
        gone = s.execute(
            delete(Grant).where(
                Grant.principal_kind == pkind,
                Grant.principal_id == pid,
                Grant.resource_kind == kind,
                Grant.resource_name == name,
            )
        )
        if not getattr(gone, "rowcount", 0):
            raise NotFoundError(f"{principal!r} has no grant on {kind}:{name}", hint="list them: roost grants")
        auth_cache.notify(s)


def list_grants(store: Store, principal: str | None = None, resource: str | None = None) -> list[GrantRecord]:
    """Grants, optionally of one principal and/or on one `kind:name` resource."""
    with store.read() as s:
        q = select(Grant)
        if principal is not None:
            pkind, pid = _principal(s, principal)
            q = q.where(Grant.principal_kind == pkind, Grant.principal_id == pid)
        if resource is not None:
            kind, name = parse_resource(resource)
            q = q.where(Grant.resource_kind == kind, Grant.resource_name == name)
        grants = list(s.execute(q.order_by(Grant.resource_kind, Grant.resource_name, Grant.id)).scalars())
        accounts = {int(i): str(n) for i, n in s.execute(select(Account.id, Account.name))}
        groups = {int(i): str(n) for i, n in s.execute(select(Group.id, Group.name))}
    out = []
    for g in grants:
        who = accounts.get(g.principal_id) if g.principal_kind == "account" else groups.get(g.principal_id)
        label = (GROUP_PREFIX if g.principal_kind == "group" else "") + (who or f"#{g.principal_id}")
        out.append(GrantRecord(label, g.resource_kind, g.resource_name, g.role))
    return out


def roles_on(store: Store, account_id: int, kind: str, name: str) -> list[str]:
    """The roles granted on (kind, name) to the account itself and to every group it belongs to — one query, or the
    server process's auth cache, which every grant and membership change clears at once (roost.registry.auth_cache)."""
    member_of = select(GroupMember.group_id).where(GroupMember.account_id == account_id)
    q = select(Grant.role).where(
        Grant.resource_kind == kind,
        Grant.resource_name == name,
        or_(
            and_(Grant.principal_kind == "account", Grant.principal_id == account_id),
            and_(Grant.principal_kind == "group", Grant.principal_id.in_(member_of)),
        ),
    )
    return list(_cached(store, ("roles", account_id, kind, name), lambda s: tuple(s.execute(q).scalars())))


def has_none_grant(store: Store, account_id: int) -> bool:
    """Whether the account, or a group it belongs to, holds an explicit 'none' grant on anything (one query, or the
    auth cache as roles_on)."""
    member_of = select(GroupMember.group_id).where(GroupMember.account_id == account_id)
    q = select(Grant.id).where(
        Grant.role == "none",
        or_(
            and_(Grant.principal_kind == "account", Grant.principal_id == account_id),
            and_(Grant.principal_kind == "group", Grant.principal_id.in_(member_of)),
        ),
    )
    return bool(_cached(store, ("none", account_id), lambda s: s.scalar(q.limit(1)) is not None))


def _cached(store: Store, key: tuple[object, ...], read: Callable[[Session], T]) -> T:
    """`read` in a read session, through this process's auth cache when the server runs one."""
    cache = auth_cache.cache_for(store.url)
    if cache is not None:
        found = cache.get(key)
        if found is not None:
            return cast(T, found)
    generation = None if cache is None else cache.generation()
    with store.read() as s:
        value = read(s)
    if cache is not None:
        cache.put(generation, key, value)
    return value
