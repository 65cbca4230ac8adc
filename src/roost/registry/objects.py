"""Named JSON objects inside a caller's transaction: the records of a store's users that keep state of their own
(the tuning engine's studies and trials), read and written under one lock with other changes.

Each function takes the session of `Store.write()` / `Store.read()`; Store.put_object/get_object/list_objects are
the one-call forms with a transaction of their own.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Table, insert, select, update
from sqlalchemy.orm import Session

from roost.registry.store import utcnow
from roost.registry.tables import StoredObject

__all__ = ["get", "names_like", "put", "specs_under"]

_T = cast(Table, StoredObject.__table__)  # declared as a FromClause; it is the `objects` Table


def put(s: Session, kind: str, name: str, spec: dict[str, Any], new: bool = False) -> None:
    """Insert or update one object (`new`: insert without looking for it first)."""
    if not new:
        q = update(_T).where(_T.c.kind == kind, _T.c.name == name).values(spec=spec, updated_at=utcnow())
        if cast(CursorResult[Any], s.execute(q)).rowcount:
            return
    s.execute(insert(_T).values(kind=kind, name=name, spec=spec, updated_at=utcnow()))


def get(s: Session, kind: str, name: str, lock: bool = False) -> dict[str, Any] | None:
    """One object's spec, or None; `lock` holds its row until the transaction ends (FOR UPDATE on PostgreSQL)."""
    q = select(_T.c.spec).where(_T.c.kind == kind, _T.c.name == name)
    row = s.execute(q.with_for_update() if lock else q).first()
    return None if row is None else cast(dict[str, Any], row[0])


def specs_under(s: Session, kind: str, folder: str) -> list[dict[str, Any]]:
    """The specs of every object named `folder/...`, in name order."""
    q = select(_T.c.spec).where(_T.c.kind == kind, _T.c.name >= f"{folder}/", _T.c.name < f"{folder}0")
    return [cast(dict[str, Any], r[0]) for r in s.execute(q.order_by(_T.c.name)).all()]


def names_like(s: Session, kind: str, prefix: str, limit: int = 2) -> list[str]:
    """Names of objects that equal `prefix`, else up to `limit` that start with it (LIKE, wildcards escaped)."""
    if s.execute(select(_T.c.name).where(_T.c.kind == kind, _T.c.name == prefix)).first() is not None:
        return [prefix]
    if not prefix:
        return []
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    q = select(_T.c.name).where(_T.c.kind == kind, _T.c.name.like(pattern, escape="\\")).limit(limit)
    return [str(r[0]) for r in s.execute(q).all()]
