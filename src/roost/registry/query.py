"""The run filter language, parsed into SQLAlchemy expressions (never string-built SQL).

    params.lr = 0.01 AND (metrics.auc >= 0.9 OR tags.team = 'ads') AND NOT status = 'FAILED'

Operators: = != < <= > >= LIKE, NOT LIKE, IN (...), NOT IN (...); AND binds tighter than OR; NOT tightest.
Attributes: status, name, start_time, end_time, experiment, run_id, user, git_commit, parent_run_id.
`metrics.X` is the latest value of metric X. Errors quote the offending token and its position.
"""

from __future__ import annotations

import functools
import math
import time
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    SQLColumnExpression,
    and_,
    exists,
    func,
    intersect,
    literal_column,
    not_,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.orm import aliased

from roost.errors import closest
from roost.registry.filter_lex import CACHED_CHARS, MAX_DEPTH, MAX_ORDER_TERMS, Tok, check_length, syntax_error, too_big
from roost.registry.filter_lex import KEYWORDS as KEYWORDS
from roost.registry.filter_lex import MAX_FILTER_CHARS as MAX_FILTER_CHARS
from roost.registry.filter_lex import MAX_FILTER_TERMS as MAX_FILTER_TERMS
from roost.registry.filter_lex import MAX_IN_VALUES as MAX_IN_VALUES
from roost.registry.filter_lex import MAX_PATTERN_CHARS as MAX_PATTERN_CHARS
from roost.registry.filter_lex import FilterError as FilterError
from roost.registry.filter_lex import tokenize as tokenize
from roost.registry.tables import Experiment, LatestMetric, Param, Run, Tag

ATTRIBUTES: dict[str, SQLColumnExpression[Any]] = {
    "status": Run.status,
    "name": Run.name,
    "start_time": Run.start_time,
    "end_time": Run.end_time,
    "run_id": Run.id,
    "user": Run.user,
    "git_commit": Run.git_commit,
    "parent_run_id": Run.parent_run_id,
    "experiment": Experiment.name,
}
OPS = ("<=", ">=", "!=", "<>", "=", "<", ">")


class _Parser:
    def __init__(self, src: str, selective: frozenset[int] = frozenset(), hoist: frozenset[int] | None = None) -> None:
        self.src, self.toks, self.i = src, tokenize(src), 0
        self.selective = selective  # positions of params/metrics/tags conditions compiled as `run_id IN (...)`
        # PostgreSQL (see plan_filter): None = plain EXISTS; else these top-level conditions become one
        # `run_id IN (a INTERSECT b ...)` and every other one an EXISTS the planner keeps as a per-run check
        self.hoist = hoist
        self.leaves: list[tuple[int, Select[str]]] = []  # (position, the run ids it matches), for plan_filter
        self.nested: set[int] = set()  # positions of leaves under an OR or a NOT: not conditions every match meets
        self.depth = 0  # parentheses and NOTs open around the current token (bounded: recursion and SQL depth)

    def peek(self) -> Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> Tok | None:
        t = self.peek()
        self.i += 1
        return t

    def is_kw(self, word: str) -> bool:
        t = self.peek()
        return t is not None and t.kind == "kw" and t.value == word

    def parse(self) -> ColumnElement[bool]:
        e = self.or_expr()
        if self.peek() is not None:
            raise syntax_error(self.src, self.peek(), "expected AND, OR or the end of the filter")
        hoisted = [sub for pos, sub in self.leaves if self.hoist and pos in self.hoist]
        if hoisted:  # conditions every match meets: their run ids intersected once, then one hash probe per run
            # (IS TRUE keeps it a hashed subplan: pulled up into a join, a planner without statistics rescanned it
            # per run, runs x matches)
            e = and_(e, Run.id.in_(hoisted[0] if len(hoisted) == 1 else intersect(*hoisted)).is_(true()))
        return e

    def or_expr(self) -> ColumnElement[bool]:
        first = len(self.leaves)
        parts = [self.and_expr()]
        while self.is_kw("OR"):
            self.take()
            parts.append(self.and_expr())
        if len(parts) > 1:
            self.nested.update(pos for pos, _ in self.leaves[first:])
        return parts[0] if len(parts) == 1 else or_(*parts)

    def and_expr(self) -> ColumnElement[bool]:
        parts = [self.not_expr()]
        while self.is_kw("AND"):
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else and_(*parts)

    def not_expr(self) -> ColumnElement[bool]:
        t = self.peek()
        opens = t is not None and (t.kind == "lp" or (t.kind == "kw" and t.value == "NOT"))
        if not opens:
            return self.comparison()
        self.depth += 1  # one more parenthesis or NOT around what follows: the 64th is allowed, the 65th is not
        try:
            if self.depth > MAX_DEPTH:
                raise syntax_error(self.src, t, f"nested too deeply (at most {MAX_DEPTH} parentheses and NOTs)")
            return self._not_expr()
        finally:
            self.depth -= 1

    def _not_expr(self) -> ColumnElement[bool]:
        if self.is_kw("NOT"):
            self.take()
            first = len(self.leaves)
            inner = self.not_expr()
            self.nested.update(pos for pos, _ in self.leaves[first:])
            return not_(inner)
        self.take()  # '('
        e = self.or_expr()
        close = self.take()
        if close is None or close.kind != "rp":
            raise syntax_error(self.src, close, "expected ')'")
        return e

    def literal(self) -> Tok:
        t = self.take()
        if t is None or not (t.kind in ("num", "str") or (t.kind == "kw" and t.value in ("TRUE", "FALSE"))):
            raise syntax_error(self.src, t, "expected a value (number, 'string', true or false)")
        if t.kind == "kw":
            t.value = t.value == "TRUE"
        return t

    def comparison(self) -> ColumnElement[bool]:
        ident = self.take()
        if ident is None or ident.kind != "ident":
            raise syntax_error(self.src, ident, "expected a field such as params.X, metrics.X, tags.X or status")
        negate = False
        if self.is_kw("NOT"):
            self.take()
            negate = True
            if not (self.is_kw("IN") or self.is_kw("LIKE")):
                raise syntax_error(self.src, self.peek(), "expected IN or LIKE after NOT")
        t = self.take()
        if t is None:
            raise syntax_error(self.src, t, "expected an operator (= != < <= > >= LIKE IN)")
        if t.kind == "kw" and t.value == "IN":
            lp = self.take()
            if lp is None or lp.kind != "lp":
                raise syntax_error(self.src, lp, "expected '(' after IN")
            vals = [self.literal()]
            while (nxt := self.peek()) is not None and nxt.kind == "comma":
                self.take()
                vals.append(self.literal())
            rp = self.take()
            if rp is None or rp.kind != "rp":
                raise syntax_error(self.src, rp, "expected ',' or ')' in the IN list")
            e = self._leaf(ident, "IN", vals, negate)
        elif t.kind == "kw" and t.value == "LIKE":
            v = self.literal()
            if not isinstance(v.value, str):
                raise syntax_error(self.src, v, "LIKE needs a 'string' pattern")
            e = self._leaf(ident, "LIKE", [v], negate)
        elif t.kind == "op":
            e = self._leaf(ident, "!=" if t.text == "<>" else t.text, [self.literal()])
        else:
            raise syntax_error(self.src, t, "expected an operator (= != < <= > >= LIKE IN)")
        return e

    def _leaf(self, ident: Tok, op: str, vals: list[Tok], negate: bool = False) -> ColumnElement[bool]:
        cond = _condition(self.src, ident, op, vals, negate)
        if isinstance(cond, ColumnElement):
            return cond
        sub, correlated = cond
        self.leaves.append((ident.pos, sub))
        if self.hoist is not None:
            # `EXISTS (...) IS TRUE` (the same truth: EXISTS is never null) is not pulled up into a join, so a
            # planner without statistics cannot nest two conditions' index ranges (quadratic); it stays a probe
            # of the (run_id, key) key per run, or one hashed pass
            return true() if ident.pos in self.hoist else correlated.is_(true())
        return Run.id.in_(sub) if ident.pos in self.selective else correlated


def _cmp(col: SQLColumnExpression[Any], op: str, vals: list[Any], negate: bool = False) -> ColumnElement[bool]:
    if op == "IN":
        return col.not_in(vals) if negate else col.in_(vals)
    if op == "LIKE":
        return col.not_like(vals[0]) if negate else col.like(vals[0])
    v = vals[0]
    # comparisons of an untyped column are typed Any by SQLAlchemy; they are boolean clauses
    if op == "=":
        return cast("ColumnElement[bool]", col == v)
    if op == "!=":
        return cast("ColumnElement[bool]", col != v)
    if op == "<":
        return cast("ColumnElement[bool]", col < v)
    if op == "<=":
        return cast("ColumnElement[bool]", col <= v)
    if op == ">":
        return cast("ColumnElement[bool]", col > v)
    if op == ">=":
        return cast("ColumnElement[bool]", col >= v)
    raise FilterError(f"unknown operator {op!r}", hint="use = != < <= > >= LIKE IN")


def _time_value(src: str, tok: Tok) -> datetime:
    v = tok.value
    if isinstance(v, bool):
        raise syntax_error(src, tok, "a time needs an ISO date or a unix timestamp")
    if isinstance(v, (int, float)):
        return datetime.fromtimestamp(v / 1000 if v > 1e11 else v, tz=UTC).replace(tzinfo=None)
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        raise syntax_error(src, tok, "a time needs an ISO date like '2026-11-25T10:00'") from None
    return (dt.astimezone(UTC) if dt.tzinfo else dt).replace(tzinfo=None)


Leaf = ColumnElement[bool] | tuple[Select[str], ColumnElement[bool]]


def _condition(src: str, ident: Tok, op: str, vals: list[Tok], negate: bool = False) -> Leaf:
    """Translate `ident [NOT] op values` into a SQLAlchemy boolean expression.

    params/metrics/tags conditions give (the select of the run ids that match, the same as a correlated EXISTS).

    `x NOT IN (...)` / `x NOT LIKE p` / `x != v` match runs that have field x with another value (like MLflow);
    a leading `NOT (...)` is plain boolean negation and also matches runs without x.
    """

    def cmp(col: SQLColumnExpression[Any], op_: str, values: list[Any]) -> ColumnElement[bool]:
        return _cmp(col, op_, values, negate)

    name = ident.text
    if "." in name and name.split(".", 1)[0].lower() in (
        "params",
        "param",
        "metrics",
        "metric",
        "tags",
        "tag",
        "attributes",
        "attribute",
        "attr",
    ):
        scope, key = name.split(".", 1)
        scope = scope.lower().rstrip("s")
        key = key.strip("`")
    else:
        scope, key = "attribute", name.strip("`")
    raw = [v.value for v in vals]
    if scope in ("attribute", "attr"):
        col = ATTRIBUTES.get(key)
        if col is None:
            near = closest(key, list(ATTRIBUTES))
            raise FilterError(
                f"unknown field {name!r} at position {ident.pos + 1}",
                hint=(f"did you mean {near!r}? " if near else "")
                + "use params.X, metrics.X, tags.X or one of "
                + ", ".join(ATTRIBUTES),
            )
        if key in ("start_time", "end_time"):
            return cmp(col, op, [_time_value(src, v) for v in vals])
        if any(not isinstance(x, str) for x in raw):
            raise syntax_error(
                src, next(v for v in vals if not isinstance(v.value, str)), f"{key} compares with a 'string'"
            )
        if key == "experiment":
            return Run.experiment_id.in_(select(Experiment.id).where(cmp(Experiment.name, op, raw)))
        return cmp(col, op, raw)
    if scope == "metric":
        bad = [v for v in vals if isinstance(v.value, (str, bool))]
        if bad:
            raise syntax_error(src, bad[0], f"metrics are numbers; compare metrics.{key} with a number")
        if op == "LIKE":
            raise syntax_error(src, vals[0], "LIKE works on strings, not on metrics")
        m = aliased(LatestMetric)
        sub = select(m.run_id).where(m.key == key, cmp(m.value, op, raw))
        return sub, exists(sub.where(m.run_id == Run.id))
    if scope == "param":
        p = aliased(Param)
        nums = [isinstance(x, (int, float)) and not isinstance(x, bool) for x in raw]
        bools = [isinstance(x, bool) for x in raw]
        if all(nums) and op != "LIKE":
            cond = cmp(p.num, op, [float(x) for x in raw])
            cond = and_(p.type.in_(("int", "float")), cond)
        elif all(bools):
            cond = and_(p.type == "bool", cmp(p.value, op, ["true" if x else "false" for x in raw]))
        elif any(nums) and op != "LIKE":
            raise syntax_error(src, vals[0], "an IN list mixes numbers and strings")
        else:
            cond = cmp(p.value, op, [str(x) for x in raw])
        sub = select(p.run_id).where(p.key == key, cond)
        return sub, exists(sub.where(p.run_id == Run.id))
    # tags
    if any(not isinstance(x, str) for x in raw):
        raise syntax_error(
            src, next(v for v in vals if not isinstance(v.value, str)), "tags are strings; quote the value"
        )
    t = aliased(Tag)
    sub = select(t.run_id).where(t.key == key, cmp(t.value, op, raw))
    return sub, exists(sub.where(t.run_id == Run.id))


def compile_filter(
    src: str, selective: frozenset[int] = frozenset(), hoist: frozenset[int] | None = None
) -> ColumnElement[bool]:
    """Parse a filter string into a SQLAlchemy WHERE clause over Run (short filters cached: SQLAlchemy reuses its
    compiled SQL).

    A params/metrics/tags condition is a correlated EXISTS (checked run by run, newest first: quick when many runs
    match), or `run_id IN (...)` when its position is in `selective` (read from the key/value index: quick when
    few match). plan_filter picks per condition. `hoist` (PostgreSQL): those top-level conditions as one
    `run_id IN (INTERSECT ...)`, the others as EXISTS kept per run (see plan_filter). Past a size limit
    (MAX_FILTER_*) it is a FilterError, unparsed.
    """
    if len(src) > CACHED_CHARS:  # a long filter is not kept: 256 distinct ones would hold ~1 GB
        return _Parser(src, selective, hoist).parse()
    return _compile_cached(src, selective, hoist)


@functools.lru_cache(maxsize=256)
def _compile_cached(src: str, selective: frozenset[int], hoist: frozenset[int] | None) -> ColumnElement[bool]:
    return _Parser(src, selective, hoist).parse()


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
    check of its (run_id, key) primary key (see _Parser.hoist). every=True (the caller reads every match, no
    page): all top-level conditions are intersected, uncounted — a condition has at most one row per run, so its
    range costs no more than a pass over the runs.
    """
    if conn.dialect.name == "postgresql":
        return _plan_postgresql(src, conn, every)
    if conn.dialect.name != "sqlite":
        return compile_filter(src)
    parser = _Parser(src)
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
    parser = _Parser(src)
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
    parser = _Parser(src)
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
