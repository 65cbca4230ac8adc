"""Run ids by unique prefix: one lookup, one message for an ambiguous prefix (it lists the candidates)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from roost.errors import NotFoundError
from roost.registry.tables import Run

__all__ = ["SHOWN", "resolve_run_id"]

SHOWN = 5  # candidates named in the message


def resolve_run_id(s: Session, run_id: str, hint: str = "list runs with `roost runs list`") -> str:
    """The full id of the run whose id is `run_id` or starts with it; NotFoundError when none or several match."""
    if run_id and s.get(Run, run_id) is not None:
        return run_id
    # autoescape: `%` and `_` in what the user typed are literal characters, not LIKE wildcards
    match = Run.id.startswith(run_id, autoescape=True)
    ids = list(s.scalars(select(Run.id).where(match).order_by(Run.id).limit(SHOWN + 1)).all()) if run_id else []
    if len(ids) == 1:
        return str(ids[0])
    if not ids:
        raise NotFoundError(f"run {run_id!r} not found", hint=hint)
    total = len(ids) if len(ids) <= SHOWN else int(s.scalar(select(func.count()).select_from(Run).where(match)) or 0)
    raise NotFoundError(ambiguous_message(run_id, [str(i) for i in ids[:SHOWN]], total), hint="give more characters")


def ambiguous_message(prefix: str, ids: list[str], total: int) -> str:
    """'run id prefix 'd7' matches 2 runs: d7a1…, d7f3…' — each id cut where it differs from the others."""
    width = max(8, len(prefix) + 4)
    for a, b in zip(ids, ids[1:]):  # sorted: neighbours share the longest prefixes
        common = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        width = max(width, common + 2)
    shown = ", ".join(i[:width] + ("…" if len(i) > width else "") for i in ids)
    more = f" and {total - len(ids):,} more" if total > len(ids) else ""
    return f"run id prefix {prefix!r} matches {total:,} runs: {shown}{more} — give more characters"
