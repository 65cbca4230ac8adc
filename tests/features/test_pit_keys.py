"""The packed sort key at its 64-bit boundary: (code, step, position) needing all 64 bits stays on the packed sort,
(code, step) needing 64 bits stays on the NumPy engine (argsort), and both equal a brute-force reference.

At 100M feature rows the bench's key needed 64 bits, one more than a signed int64 holds; the join then took the
argsort path (CPU 9.9x for 3.3x the data). Here the same boundary is reached with a few rows: integer keys 0 and
2**40 - 1 give 40 bits of code (the top code's high bit lands in bit 63), microsecond event times over a fraction of
a second give the step bits, and the row count gives the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fs_helpers import write_defs

T0 = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")
HIGH = 2**40 - 1  # with key 0 among the entities: codes 0..2**40 - 1, 40 bits

DEFS = """
ent = Entity("ent", {"k": "int64"})
src = Source("wide", path="data/wide.parquet", event_time="et")
wide = FeatureView("wide", ent, src, fields={"v": "int64"})
wide_ttl = FeatureView("wide_ttl", ent, src, fields={"v": "int64"}, ttl=timedelta(microseconds=50_000))
"""


@pytest.fixture(scope="module")
def wide_ws(module_ws):
    """The views over data/wide.parquet, registered once."""
    from roost import workspace
    from roost.features import apply

    workspace.use(module_ws)
    _write(module_ws.root, _rows(8, 1_000, seed=0))
    write_defs(module_ws.root, DEFS)
    apply()
    workspace.use(None)
    return module_ws


def _rows(n: int, span_us: int, seed: int) -> list[tuple[int, int, int]]:
    """n feature rows (key, microseconds after T0, value): keys 0, HIGH and a few between, times spanning exactly
    span_us (so the step needs bit_length(span_us + 1) bits), some (key, time) ties."""
    rng = np.random.default_rng(seed)
    keys = [0, HIGH, 2**39, 2**39 + 7, HIGH - 3]
    rows = [(0, 0, 0), (HIGH, span_us, 1)]
    for i in range(2, n):
        k = keys[int(rng.integers(0, len(keys)))]
        us = int(rng.integers(0, span_us + 1)) if rng.random() < 0.8 else rows[-1][1]  # ties with the last row
        rows.append((k if us != rows[-1][1] else rows[-1][0], us, i))
    return rows


def _write(root, rows: list[tuple[int, int, int]]) -> None:
    tbl = pa.table(
        {
            "k": pa.array([r[0] for r in rows], pa.int64()),
            "et": pa.array([T0 + timedelta(microseconds=r[1]) for r in rows], TS),
            "v": pa.array([r[2] for r in rows], pa.int64()),
        }
    )
    pq.write_table(tbl, root / "data" / "wide.parquet")


def _entities(rows: list[tuple[int, int, int]], seed: int) -> list[tuple[int, int]]:
    """Entity rows (key, microseconds after T0): each row's own time, just before and after it, keys without rows."""
    rng = np.random.default_rng(seed)
    out = [(0, 0), (HIGH, 0)]
    for k, us, _ in rows:
        out += [(k, us), (k, us - 1), (k, us + int(rng.integers(1, 60_000)))]
    out += [(HIGH - 1, 5), (1, 10**9)]
    return out


def _brute(rows: list[tuple[int, int, int]], ents: list[tuple[int, int]], ttl: int | None) -> list[int | None]:
    """For each entity row: the value of the latest row of its key at or before its time (and not older than the
    TTL); among rows tied on (key, time) the later row in the file wins."""
    out: list[int | None] = []
    for k, t in ents:
        best: tuple[int, int] | None = None
        for pos, (rk, us, _v) in enumerate(rows):
            if rk == k and us <= t and (ttl is None or us >= t - ttl) and (best is None or (us, pos) > best):
                best = (us, pos)
        out.append(None if best is None else rows[best[1]][2])
    return out


def _join(ws, rows, ents, monkeypatch) -> tuple[pa.Table, list]:
    """training_set over `rows`, and the Sorted indexes the NumPy engine built (None: it fell back to SQL)."""
    from roost import workspace
    from roost.features import pit, training_set

    built: list = []
    real = pit.Sorted.build

    def spy(*args, **kwargs):
        idx = real(*args, **kwargs)
        built.append(idx)
        return idx

    monkeypatch.setattr(pit.Sorted, "build", spy)
    workspace.use(ws)
    try:
        _write(ws.root, rows)
        ent_tbl = pa.table(
            {
                "k": pa.array([e[0] for e in ents], pa.int64()),
                "event_time": pa.array([T0 + timedelta(microseconds=e[1]) for e in ents], TS),
            }
        )
        got = training_set(ent_tbl, ["wide:v", "wide_ttl:v"], full_names=True)
    finally:
        workspace.use(None)
    return got, built


def _bits(rows: list[tuple[int, int, int]]) -> tuple[int, int, int]:
    """(code, step, position) bits of the key for `rows` (codes 0..HIGH; microsecond steps from 1)."""
    span = max(r[1] for r in rows) - min(r[1] for r in rows)
    return HIGH.bit_length(), (span + 1).bit_length(), (len(rows) - 1).bit_length()


@pytest.mark.parametrize(
    ("n", "span_us", "path"),
    [
        (64, 200_000, "packed"),  # 40 + 18 + 6 = 64 bits: the packed sort (a signed key fell back to argsort)
        (33, 200_000, "packed"),  # 40 + 18 + 6 again, rows not a power of two
        (16, 10_000_000, "argsort"),  # 40 + 24 = 64 bits of (code, step): argsort (a signed key fell back to SQL)
        (40, 2**24, "sql"),  # 40 + 25 = 65 bits of (code, step): no exact key, the ASOF SQL
    ],
)
def test_64_bit_key_matches_brute_force(wide_ws, monkeypatch, n, span_us, path):
    rows = _rows(n, span_us, seed=n)
    c, s, r = _bits(rows)
    assert c == 40
    assert (c + s + r == 64) if path == "packed" else (c + s == 64 if path == "argsort" else c + s > 64)
    ents = _entities(rows, seed=n)
    got, built = _join(wide_ws, rows, ents, monkeypatch)
    assert len(built) == 2  # one index per view
    for idx in built:
        if path == "sql":
            assert idx is None
        else:
            assert idx is not None
            assert (idx.order is None) == (path == "packed"), "the key took the wrong tier"
    assert got.column("wide__v").to_pylist() == _brute(rows, ents, None)
    assert got.column("wide_ttl__v").to_pylist() == _brute(rows, ents, 50_000)


def test_key_bits_lowered_still_falls_back(wide_ws, monkeypatch):
    """KEY_BITS still bounds the key: lowered below what the data needs, the join takes the lower tiers."""
    from roost.features import pit

    rows = _rows(64, 200_000, seed=1)
    ents = _entities(rows, seed=1)
    for bits, tier in [(63, "argsort"), (57, "sql")]:
        monkeypatch.setattr(pit, "KEY_BITS", bits)
        got, built = _join(wide_ws, rows, ents, monkeypatch)
        assert all((i is None) if tier == "sql" else (i is not None and i.order is not None) for i in built)
        assert got.column("wide__v").to_pylist() == _brute(rows, ents, None)
        assert got.column("wide_ttl__v").to_pylist() == _brute(rows, ents, 50_000)
