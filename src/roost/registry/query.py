"""Run search over the filter grammar (roost.registry.filter_sql): how each condition is planned, ORDER BY, notices.

plan_filter picks, per params/metrics/tags condition, the SQL form that is quick for how many runs match;
apply_order turns 'metrics.auc DESC, start_time' into ORDER BY terms; filter_keys and unknown_key_notice name the
keys a filter asks for that no run has.
"""

from __future__ import annotations

import math
import time
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    SQLColumnExpression,
    and_,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.orm import aliased

from roost.errors import closest
from roost.registry.filter_lex import MAX_ORDER_TERMS, FilterError, check_length, tokenize, too_big
from roost.registry.filter_sql import ATTRIBUTES, FilterParser, compile_filter
from roost.registry.tables import Experiment, LatestMetric, Param, Run, Tag


def selective_rows(runs: int) -> int:
    """Below this many matching index rows a condition is read from its index (run_id IN ...), else by EXISTS.

    Reading m matches costs ~m probes; EXISTS finds a page of 100 after ~100 * runs / m runs: equal at
    m = sqrt(100 * runs) (1,000 at 10k runs, 10,000 at 1M), never below 2,000.
    """
    return max(2000, math.isqrt(100 * max(0, runs)))


def plan_filter(src: str, conn: Connection, every: bool = False) -> ColumnElement[bool]:
    """compile_filter with each params/metrics/tags condition in the form that is quick for how many runs match.

    SQLite plans a correlated EXISTS as a scan of runs and an IN list as index probes whatever the value, so each
    condition's index range is counted up to selective_rows(runs) (one capped index read each; max(rowid)
    estimates the runs).

    PostgreSQL plans from its statistics, which lag a bulk of new runs (autovacuum analyzes a table up to a minute
    later): with none it took two conditions' index ranges for one row each and nested them, 643 x 412 rows
    compared for 2,000 runs (134 ms for a 1 ms search). So the form does not depend on them there: the top-level
    conditions (those every match meets) that count below selective_rows (one statement, capped) are intersected
    in one `run_id IN (... INTERSECT ...)` (hashed), and every other condition is an EXISTS that stays a per-run
    check of its (run_id, key) primary key (see FilterParser.hoist). every=True (the caller reads every match, no
    page): all top-level conditions are intersected, uncounted — a condition has at most one row per run, so its
    range costs no more than a pass over the runs.
    """
    if conn.dialect.name == "postgresql":
        return _plan_postgresql(src, conn, every)
    if conn.dialect.name != "sqlite":
        return compile_filter(src)
    parser = FilterParser(src)
    parser.parse()
    if not parser.leaves:
        return compile_filter(src)
    cap = selective_rows(int(conn.execute(select(func.max(literal_column("rowid"))).select_from(Run)).scalar() or 0))
    few = set()
    for pos, sub in parser.leaves:
        found = conn.execute(select(func.count()).select_from(sub.limit(cap).subquery())).scalar()
        if int(found or 0) < cap:
            few.add(pos)
    return compile_filter(src, frozenset(few))


def _plan_postgresql(src: str, conn: Connection, every: bool) -> ColumnElement[bool]:
    """plan_filter on PostgreSQL: the few-match top-level conditions hoisted into one intersection."""
    parser = FilterParser(src)
    parser.parse()
    top = [(pos, sub) for pos, sub in parser.leaves if pos not in parser.nested]
    if not top or every:
        return compile_filter(src, hoist=frozenset(pos for pos, _ in top))
    cap = selective_rows(_pg_runs_estimate(conn))
    counts = conn.execute(
        select(*(select(func.count()).select_from(sub.limit(cap).subquery()).scalar_subquery() for _, sub in top))
    ).one()
    few = frozenset(pos for (pos, _), n in zip(top, counts, strict=True) if int(n or 0) < cap)
    return compile_filter(src, hoist=few)


_runs_estimates: dict[str, tuple[float, int]] = {}  # database URL -> (monotonic expiry, runs)


def _pg_runs_estimate(conn: Connection) -> int:
    """The planner's own row count of runs (0 before the first ANALYZE), read at most every 10 s per database: it
    only sizes selective_rows' cap, as max(rowid) does on SQLite."""
    url, now = str(conn.engine.url), time.monotonic()
    kept = _runs_estimates.get(url)
    if kept is not None and kept[0] > now:
        return kept[1]
    runs = conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = 'runs'::regclass")).scalar()
    n = int(max(0.0, float(runs or 0)))
    _runs_estimates[url] = (now + 10.0, n)
    return n


def plan_filter_bounded(src: str, conn: Connection) -> tuple[ColumnElement[bool], bool]:
    """plan_filter's clause, and whether the filter is bounded: one condition that every match meets (not under OR
    or NOT) is read from its index and has fewer than selective_rows(runs) rows, so counting every match is cheap."""
    clause = plan_filter(src, conn)
    if conn.dialect.name != "sqlite":
        return clause, False
    parser = FilterParser(src)
    parser.parse()
    top = [(pos, sub) for pos, sub in parser.leaves if pos not in parser.nested]
    if not top:
        return clause, False
    cap = selective_rows(int(conn.execute(select(func.max(literal_column("rowid"))).select_from(Run)).scalar() or 0))
    for _, sub in top:
        if int(conn.execute(select(func.count()).select_from(sub.limit(cap).subquery())).scalar() or 0) < cap:
            return clause, True
    return clause, False


def apply_order(q: Select[Run], order_by: str | list[str] | None) -> Select[Run]:
    """Add ORDER BY terms such as 'metrics.auc DESC, start_time' to a select(Run); newest first by default."""
    terms: list[str] = []
    if isinstance(order_by, str):
        check_length(order_by, what="order-by")
        terms = [t for t in order_by.split(",") if t.strip()]
    elif order_by:
        terms = list(order_by)
    if len(terms) > MAX_ORDER_TERMS:
        raise too_big(
            f"{len(terms):,} order-by terms (at most {MAX_ORDER_TERMS})", "order by the few fields that matter"
        )
    for term in terms:
        col: SQLColumnExpression[Any]
        toks = tokenize(term.strip())
        if (
            not toks
            or toks[0].kind != "ident"
            or len(toks) > 2
            or (len(toks) == 2 and not (toks[1].kind == "kw" and toks[1].value in ("ASC", "DESC")))
        ):
            raise FilterError(
                f"malformed order-by term {term.strip()!r}",
                hint="use FIELD [ASC|DESC], e.g. 'metrics.auc DESC, start_time'",
            )
        desc = len(toks) == 2 and toks[1].value == "DESC"
        name = toks[0].text
        scope, _, key = name.partition(".")
        scope = scope.lower().rstrip("s")
        key = key.strip("`")
        if scope == "metric" and key:
            m = aliased(LatestMetric)
            q = q.outerjoin(m, and_(m.run_id == Run.id, m.key == key))
            col = m.value
        elif scope == "param" and key:
            p = aliased(Param)
            q = q.outerjoin(p, and_(p.run_id == Run.id, p.key == key))
            col = p.num  # numeric params sort numerically; others fall back to text below
            q = q.order_by(col.is_(None), col.desc() if desc else col.asc())
            col = p.value
        elif scope == "tag" and key:
            t = aliased(Tag)
            q = q.outerjoin(t, and_(t.run_id == Run.id, t.key == key))
            col = t.value
        else:
            key = name.strip("`")
            if key not in ATTRIBUTES:
                near = closest(key, list(ATTRIBUTES))
                raise FilterError(
                    f"unknown order-by field {name!r}",
                    hint=f"did you mean {near!r}?" if near else "use metrics.X, params.X, tags.X",
                )
            if key == "experiment":
                e = aliased(Experiment)
                q = q.outerjoin(e, e.id == Run.experiment_id)
                col = e.name
            else:
                col = ATTRIBUTES[key]
        q = q.order_by(col.is_(None), col.desc() if desc else col.asc())
    return q.order_by(Run.start_time.desc(), Run.id)


def single_metric_order(order_by: str | list[str] | None) -> tuple[str, bool] | None:
    """(key, descending) when `order_by` is one `metrics.X [ASC|DESC]` term, else None."""
    terms = [t for t in order_by.split(",") if t.strip()] if isinstance(order_by, str) else list(order_by or [])
    if len(terms) != 1:
        return None
    toks = tokenize(terms[0].strip())
    if not toks or toks[0].kind != "ident" or len(toks) > 2:
        return None
    if len(toks) == 2 and not (toks[1].kind == "kw" and toks[1].value in ("ASC", "DESC")):
        return None
    scope, _, key = toks[0].text.partition(".")
    if scope.lower().rstrip("s") != "metric" or not key:
        return None
    return key.strip("`"), len(toks) == 2 and toks[1].value == "DESC"


_KEY_SCOPES = {
    "params": "param",
    "param": "param",
    "metrics": "metric",
    "metric": "metric",
    "tags": "tag",
    "tag": "tag",
}


def filter_keys(src: str) -> list[tuple[str, str]]:
    """The (scope, key) pairs of the params.X / metrics.X / tags.X a filter names, scope in param|metric|tag."""
    out: list[tuple[str, str]] = []
    for tok in tokenize(src):
        if tok.kind != "ident" or "." not in tok.text:
            continue
        scope, key = tok.text.split(".", 1)
        kind = _KEY_SCOPES.get(scope.lower())
        if kind is not None and (kind, key.strip("`")) not in out:
            out.append((kind, key.strip("`")))
    return out


def similar_keys(key: str, known: list[str], n: int = 3) -> list[str]:
    """Up to n known names closest to `key`: names containing it first (roc_auc → test_roc_auc), then similar."""
    import difflib

    low = key.lower()
    contains = sorted((k for k in known if low in k.lower() and k != key), key=len)
    near = difflib.get_close_matches(key, known, n=n, cutoff=0.5)
    return list(dict.fromkeys([*contains, *near]))[:n]


def unknown_key_notice(scope: str, key: str, known: list[str]) -> str:
    """One line saying no run has scope.key, with the closest names."""
    near = similar_keys(key, known)
    where = f"no run in the searched experiments has {scope}s.{key}"
    if near:
        return where + "; did you mean " + " or ".join(f"{scope}s.{k}" for k in near) + "?"
    return where + (f" (known {scope}s: {', '.join(sorted(known)[:10])})" if known else f" (no run has any {scope}s)")
