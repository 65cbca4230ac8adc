"""The team server's audit log: one row per write or refused request (who, what, when, from where, the answer)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select

from roost.errors import RoostError
from roost.registry.store import aware, utcnow
from roost.registry.tables import AuditEvent

if TYPE_CHECKING:
    from roost.registry.store import Store

MAX_LIMIT = 100_000


@dataclass(frozen=True)
class AuditRecord:
    """One audit event."""

    id: int
    at: datetime
    actor: str | None
    action: str
    resource: str | None
    status: int
    client: str | None
    detail: dict[str, Any] | None


def append(
    store: Store,
    action: str,
    status: int,
    actor: str | None = None,
    resource: str | None = None,
    client: str | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Add one event now (the caller makes sure no secret is in it: no tokens, passwords or request bodies)."""
    with store.write() as s:
        s.execute(insert(AuditEvent).values(**_row(action, status, actor, resource, client, detail, at)))


def submit(
    store: Store,
    action: str,
    status: int,
    actor: str | None = None,
    resource: str | None = None,
    client: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Queue one event for this process's batched writer (audit_writer): what the server's middleware uses."""
    from roost.registry.audit_writer import writer

    writer(store).submit(_row(action, status, actor, resource, client, detail, None))


def _row(
    action: str,
    status: int,
    actor: str | None,
    resource: str | None,
    client: str | None,
    detail: dict[str, Any] | None,
    at: datetime | None,
) -> dict[str, Any]:
    return {
        "at": at or utcnow(),
        "actor": actor[:128] if actor else actor,
        "action": action[:64],
        "resource": resource[:2000] if resource else resource,
        "status": status,
        "client": client[:128] if client else client,
        "detail": detail,
    }


def query(
    store: Store,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    status_min: int | None = None,
) -> list[AuditRecord]:
    """Events, newest first: of one actor ('-' for requests without one), one action, from `since` on, with a
    status of at least `status_min`, at most `limit` of them."""
    from roost.registry.audit_writer import flush_store

    if not 1 <= limit <= MAX_LIMIT:
        raise RoostError(f"limit must be 1..{MAX_LIMIT}, got {limit}", hint="e.g. --limit 100")
    flush_store(store)  # this process's queued rows first: it reads what it wrote
    q = select(AuditEvent)
    if actor == "-":
        q = q.where(AuditEvent.actor.is_(None))
    elif actor is not None:
        q = q.where(AuditEvent.actor == actor)
    if action is not None:
        q = q.where(AuditEvent.action == action)
    if since is not None:
        q = q.where(AuditEvent.at >= since)
    if status_min is not None:
        q = q.where(AuditEvent.status >= status_min)
    q = q.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
    with store.read() as s:
        rows = list(s.execute(q).scalars())
    out = []
    for r in rows:
        at = aware(r.at)
        assert at is not None
        out.append(AuditRecord(r.id, at, r.actor, r.action, r.resource, r.status, r.client, r.detail))
    return out


def parse_since(value: str | None) -> datetime | None:
    """A duration back from now ('1h', '7d') or an ISO 8601 date/time (UTC when it names no zone); None: None."""
    from roost.registry.selection import parse_age

    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
        return at if at.tzinfo else at.replace(tzinfo=UTC)
    except ValueError:
        pass
    try:
        age = parse_age(value)
    except RoostError:
        raise RoostError(
            f"since {value[:40]!r} is neither a duration nor a date", hint="e.g. 1h, 7d or 2026-12-01T09:00"
        ) from None
    assert age is not None
    return utcnow() - age
