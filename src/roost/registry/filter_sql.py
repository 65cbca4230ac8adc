"""The search filter grammar compiled to SQLAlchemy conditions (never string-built SQL).

    params.lr = 0.01 AND (metrics.auc >= 0.9 OR tags.team = 'ads') AND NOT status = 'FAILED'

Operators: = != < <= > >= LIKE, NOT LIKE, IN (...), NOT IN (...); AND binds tighter than OR; NOT tightest.
Attributes: status, name, start_time, end_time, experiment, run_id, user, git_commit, parent_run_id.
`metrics.X` is the latest value of metric X. Errors quote the offending token and its position. The tokens and
size limits are roost.registry.filter_lex's; how each condition is planned (EXISTS or IN) is roost.registry.query's.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    and_,
    exists,
    intersect,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.orm import aliased

from roost.errors import closest
from roost.registry.filter_lex import CACHED_CHARS, MAX_DEPTH, FilterError, Tok, syntax_error, tokenize
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


class FilterParser:
    """A recursive-descent parser of one filter that compiles it to a SQLAlchemy condition as it parses, and
    records its conditions' run-id selects (`leaves`) for the PostgreSQL planner (registry.query.plan_filter)."""

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
        return FilterParser(src, selective, hoist).parse()
    return _compile_cached(src, selective, hoist)


@functools.lru_cache(maxsize=256)
def _compile_cached(src: str, selective: frozenset[int], hoist: frozenset[int] | None) -> ColumnElement[bool]:
    return FilterParser(src, selective, hoist).parse()
