"""How the runs page reads at a million runs: a page by walking an index, and a count that stops early.

A sort on one params.X / metrics.X / tags.X column is read as consecutive index walks (the runs that have the
field, by its value, then the runs without it, newest first), stopping at the page's end — the same order as
registry.query.apply_order, whose outer join would sort every run first. A param's runs that share a value come
newest first from the (key, value, run_start) index; ascending, where that index's order is not the page's, the
walk goes a chunk of values at a time (at most WALK_CHUNK params sorted, or one value's runs read in order).
A count reads at most COUNT_CAP + 1 matching runs: exact up to COUNT_CAP, else "10,000+" (as GitHub shows a
search's count), so a count never reads every run of a common condition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, RowMapping, Select, and_, exists, func, literal_column, select
from sqlalchemy.orm import aliased

from roost.registry.filter_lex import tokenize
from roost.registry.tables import LatestMetric, Param, Run, Tag

COUNT_CAP = 10_000  # counts are exact up to here; beyond, the page says "10,000+" (docs/ui.md)
COUNT_WINDOW = 10_000  # a count reads at most this many runs (the newest); beyond, it is estimated from them
WALK_CHUNK = 1_000  # an ascending param sort sorts at most this many params at a time (one value's runs: none)

# a sorted page's reads in order: index-ordered selects, or a walk that makes them as it goes (it probes values)
Segments = Sequence[Select[Any]] | Callable[[Connection], Iterable[Select[Any]]]

__all__ = [
    "COUNT_CAP",
    "COUNT_WINDOW",
    "WALK_CHUNK",
    "Count",
    "Segments",
    "capped_count",
    "read_page",
    "sort_segments",
    "sort_term",
]


@dataclass(frozen=True)
class Count:
    """How many runs match: `n` exactly; about `n` when `approx`; at least `n` when neither (the cap was hit)."""

    n: int
    exact: bool = True
    approx: bool = False

    def __str__(self) -> str:
        if self.exact:
            return f"{self.n:,}"
        return f"~{self.n:,}" if self.approx else f"{self.n:,}+"


def _rounded(x: float) -> int:
    """x to two significant digits (an estimate shown with a ~)."""
    if x < 100:
        return max(1, round(x))
    digits = len(str(int(x))) - 2
    return int(round(x, -digits))


def _in_window(
    conn: Connection, conds: Sequence[ColumnElement[bool]], scope: Sequence[ColumnElement[bool]], window: int, cap: int
) -> tuple[int, int | None]:
    """(matches among the newest `window` runs of scope, capped at cap + 1; runs in that window, None when the
    window holds every run in scope)."""
    runs = Run.__table__
    newest = select(runs.c.start_time).where(*scope).order_by(runs.c.start_time.desc())
    floor = conn.execute(newest.offset(window - 1).limit(1)).scalar()
    bounded = [*conds, *scope] + ([runs.c.start_time >= floor] if floor is not None else [])
    inner = select(literal_column("1")).select_from(runs).where(*bounded).limit(cap + 1).subquery()
    found = int(conn.execute(select(func.count()).select_from(inner)).scalar() or 0)
    if floor is None:
        return found, None
    in_window = select(func.count()).select_from(runs).where(*scope, runs.c.start_time >= floor)
    return found, int(conn.execute(in_window).scalar() or 0)


def capped_count(
    conn: Connection,
    conds: Sequence[ColumnElement[bool]],
    cap: int = COUNT_CAP,
    window: int | None = COUNT_WINDOW,
    experiment_ids: Sequence[int] | None = None,
) -> Count:
    """How many runs of the experiments (all when None) meet every condition, reading at most `window` runs (the
    newest of those experiments' runs).

    When every run in scope fits in the window: exact up to `cap`, else Count(cap) "10,000+". Otherwise the count
    in the window is scaled to the scope's size: Count(about n, approx) when that is at most `cap`, else "10,000+".
    A first look at the newest window / 5 runs settles common conditions ("10,000+" when it scales to twice the
    cap: a condition below the cap would have to be over-sampled ~4 standard deviations there).
    window=None reads every run in scope (exact up to `cap`; a full scan for a rare mix of common conditions).
    """
    runs = Run.__table__
    scope = [runs.c.experiment_id.in_(list(experiment_ids))] if experiment_ids else []
    if window is None:
        inner = select(literal_column("1")).select_from(runs).where(*conds, *scope).limit(cap + 1).subquery()
        found = int(conn.execute(select(func.count()).select_from(inner)).scalar() or 0)
        return Count(found) if found <= cap else Count(cap, exact=False)
    size: int | None = None
    for w, enough in ((max(1, window // 5), 2 * cap), (window, cap)):
        found, in_window = _in_window(conn, conds, scope, w, cap)
        if found > cap:
            return Count(cap, exact=False)
        if in_window is None:
            return Count(found)
        if size is None:  # the scope's size: an index-only count of the experiments' runs, else the table's
            size = (
                int(conn.execute(select(func.count()).select_from(runs).where(*scope)).scalar() or 0)
                if scope
                else (_table_size(conn))
            )
        estimate = found * size / max(1, in_window)
        if estimate > enough:
            return Count(cap, exact=False)
    return Count(max(found, _rounded(estimate)), exact=False, approx=True)


def _table_size(conn: Connection) -> int:
    """About how many rows runs has, without counting them: SQLite's largest rowid (rowids only grow), PostgreSQL's
    planner estimate (pg_class.reltuples; a count when the table was never analyzed)."""
    runs = Run.__table__
    if conn.dialect.name == "sqlite":
        return int(conn.execute(select(func.max(literal_column("rowid"))).select_from(runs)).scalar() or 0)
    est = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE oid = 'runs'::regclass").scalar()
    if est is not None and float(est) > 0:
        return int(float(est))
    return int(conn.execute(select(func.count()).select_from(runs)).scalar() or 0)


def sort_term(order_by: str | None) -> tuple[str, str, bool] | None:
    """(scope param|metric|tag, key, descending) when `order_by` is one `params.X / metrics.X / tags.X [ASC|DESC]`."""
    terms = [t for t in (order_by or "").split(",") if t.strip()]
    if len(terms) != 1:
        return None
    toks = tokenize(terms[0].strip())
    if not toks or toks[0].kind != "ident" or "." not in toks[0].text or len(toks) > 2:
        return None
    if len(toks) == 2 and not (toks[1].kind == "kw" and toks[1].value in ("ASC", "DESC")):
        return None
    scope, _, key = toks[0].text.partition(".")
    kind = {"params": "param", "param": "param", "metrics": "metric", "metric": "metric", "tags": "tag", "tag": "tag"}
    if scope.lower() not in kind or not key.strip("`"):
        return None
    return kind[scope.lower()], key.strip("`"), len(toks) == 2 and toks[1].value == "DESC"


def leads(run_id: Any) -> Any:
    """A sorted table's run_id as a join key that no index answers: the table must lead the join, read in its
    (key, value) index's order, with runs probed by id. With statistics (sqlite_stat1) SQLite may otherwise scan
    runs, probe the table by run id and sort every match, thousands of rows for a page of 50."""
    return run_id + ""


def sort_segments(q: Select[Any], order_by: str | None) -> Segments | None:
    """`q` (a select of runs columns) in apply_order's order as consecutive index-ordered selects, or None.

    metrics.X: the runs with X by value (the (key, value) index), then the runs without X; params.X: numeric values
    by number, then text values, then the runs without; tags.X: by value, then without. Ties and the runs without
    the field come newest first. None for any other order (apply_order then sorts in SQL). An ascending param sort
    is a walk (a function of the connection: see _param_walk).
    """
    term = sort_term(order_by)
    if term is None:
        return None
    scope, key, desc = term
    newest = (Run.start_time.desc(), Run.id)

    def by(col: Any) -> Any:
        return col.desc() if desc else col.asc()

    if scope == "metric":
        m, m2 = aliased(LatestMetric), aliased(LatestMetric)
        having = [q.join(m, and_(leads(m.run_id) == Run.id, m.key == key)).order_by(by(m.value), *newest)]
        without = q.where(~exists(select(m2.run_id).where(m2.run_id == Run.id, m2.key == key)))
    elif scope == "param":
        p, p2 = aliased(Param), aliased(Param)
        joined = q.join(p, and_(leads(p.run_id) == Run.id, p.key == key))
        without = q.where(~exists(select(p2.run_id).where(p2.run_id == Run.id, p2.key == key)))
        if not desc:
            return _param_walk(joined, p, key, without.order_by(*newest))
        tie = (p.run_start.desc(), Run.id)  # = newest: run_start is the run's start_time (a backward index read)
        having = [
            joined.where(p.num.is_not(None)).order_by(p.num.desc(), *tie),
            joined.where(p.num.is_(None)).order_by(p.value.desc(), *tie),
        ]
    else:
        t, t2 = aliased(Tag), aliased(Tag)
        having = [q.join(t, and_(leads(t.run_id) == Run.id, t.key == key)).order_by(by(t.value), *newest)]
        without = q.where(~exists(select(t2.run_id).where(t2.run_id == Run.id, t2.key == key)))
    return [*having, without.order_by(*newest)]


def _param_walk(joined: Select[Any], p: Any, key: str, without: Select[Any]) -> Segments:
    """An ascending sort by param `key` (numbers, then text, then the runs `without` it) as selects made on the way.

    The (key, num|value, run_start) index holds a value's runs oldest first; the page wants them newest first. So
    the walk takes the next WALK_CHUNK params by value (an index-only probe) and sorts just those, or, when one value
    has more params than that, reads that value's runs backwards on the index: a page reads what it shows plus at
    most a chunk, however many runs share a value.
    """
    tie = (p.run_start.desc(), Run.id)

    def walk(conn: Connection, col: Any, kind: ColumnElement[bool]) -> Iterator[Select[Any]]:
        mine = [p.key == key, kind]
        start = conn.execute(select(func.min(col)).select_from(p).where(*mine)).scalar()
        while start is not None:
            probe = select(col).select_from(p).where(*mine, col >= start).order_by(col)
            end = conn.execute(probe.offset(WALK_CHUNK).limit(1)).scalar()
            if end is None:  # fewer than a chunk left
                yield joined.where(kind, col >= start).order_by(col, *tie)
                return
            if end == start:  # one value with more than a chunk of params: its runs in index order
                yield joined.where(kind, col == start).order_by(*tie)
                start = conn.execute(select(func.min(col)).select_from(p).where(*mine, col > start)).scalar()
            else:  # several values, fewer than a chunk of params in all: sorted here
                yield joined.where(kind, col >= start, col < end).order_by(col, *tie)
                start = end

    def segments(conn: Connection) -> Iterator[Select[Any]]:
        yield from walk(conn, p.num, p.num.is_not(None))
        yield from walk(conn, p.value, p.num.is_(None))
        yield without

    return segments


def read_page(conn: Connection, segments: Segments, limit: int, offset: int = 0) -> list[RowMapping]:
    """Rows offset .. offset + limit of the segments read one after another (each stops at the page's end)."""
    rows: list[RowMapping] = []
    pos = 0  # where the current segment starts in the whole order
    for seg in segments(conn) if callable(segments) else segments:
        need = limit - len(rows)
        if need <= 0:
            break
        skip = max(0, offset - pos)
        part = list(conn.execute(seg.offset(skip or None).limit(need)).mappings())
        rows += part
        if len(part) == need:
            break
        if part or skip == 0:
            pos += skip + len(part)  # this segment ended inside the page
        else:  # the page starts after this segment: learn its length (at most `skip` rows read)
            inner = seg.with_only_columns(literal_column("1")).order_by(None).limit(skip).subquery()
            pos += int(conn.execute(select(func.count()).select_from(inner)).scalar() or 0)
    return rows
