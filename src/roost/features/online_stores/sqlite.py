"""SQLite online store: a typed table per view, one row per entity, upserts in one transaction, prepared reads."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from roost.errors import RoostError
from roost.features.definitions import DTYPES
from roost.features.online_stores.base import MIN_I64, OnlineStore, ViewData, ViewReader
from roost.features.sources import q

META = "__roost_views"
CHUNK = 256
# The WAL is copied into the database (and the file synced) inside the COMMIT that crosses this many pages, on the
# writer's thread. A 100-row push of random entities rewrites most of a small table's pages (~60 of them), so
# SQLite's default mark (1,000 pages) checkpointed every ~16 pushes, ~40% of a push's online write under load;
# 4,000 pages (16 MB of WAL at most) checkpoints a quarter as often, each copy no larger (the same table pages).
WAL_PAGES = 4000


__all__ = ["table", "SQLiteOnlineStore"]


def table(view: str) -> str:
    """The table holding a view's rows."""
    return q(f"fv_{view}")


class SQLiteOnlineStore(OnlineStore):
    """Online store in one SQLite file (WAL mode: readers see the previous values while a run writes)."""

    @classmethod
    def from_url(cls, url: str, project: str) -> SQLiteOnlineStore:
        """Open `sqlite:///path` (one file holds every project's views: the workspace picks the path)."""
        if not url.startswith("sqlite:///"):
            from roost.errors import ConfigError

            raise ConfigError(f"online store URL {url!r} has no path", hint="use sqlite:///path/online.db")
        return cls(url)

    def __init__(self, url: str) -> None:
        self.url = url
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else url
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        con = self._con()
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(f"CREATE TABLE IF NOT EXISTS {META} (view TEXT PRIMARY KEY, schema TEXT NOT NULL)")

    def _con(self) -> sqlite3.Connection:
        """This thread's connection (autocommit; transactions are explicit)."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, cached_statements=512)
            con.execute("PRAGMA busy_timeout=10000")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
            self._local.con = con
        return con

    def _schema(self, con: sqlite3.Connection, view: str) -> dict[str, Any] | None:
        row = con.execute(f"SELECT schema FROM {META} WHERE view = ?", (view,)).fetchone()
        return None if row is None else json.loads(row[0])

    def _ensure(self, con: sqlite3.Connection, v: ViewData) -> None:
        """Create the view's table, or recreate it when its keys or field types changed."""
        schema = {"keys": v.keys, "fields": v.fields}
        if self._schema(con, v.name) == schema:
            return
        con.execute(f"DROP TABLE IF EXISTS {table(v.name)}")
        cols = [f"{q(k)} {DTYPES[t][1]} NOT NULL" for k, t in v.keys.items()]
        cols += [f"{q(f)} {DTYPES[t][1]}" for f, t in v.fields.items()]
        cols += ["__et INTEGER", "__ct INTEGER", f"PRIMARY KEY ({', '.join(q(k) for k in v.keys)})"]
        con.execute(f"CREATE TABLE {table(v.name)} ({', '.join(cols)}) WITHOUT ROWID")
        con.execute(f"INSERT OR REPLACE INTO {META} (view, schema) VALUES (?, ?)", (v.name, json.dumps(schema)))

    def write(self, views: list[ViewData]) -> dict[str, int]:
        """Upsert newer rows and expire old ones for every view in a single transaction."""
        con = self._con()
        written: dict[str, int] = {}
        con.execute("BEGIN IMMEDIATE")
        try:
            for v in views:
                self._ensure(con, v)
                names = [*v.keys, *v.fields, "__et", "__ct"]
                upd = ", ".join(f"{q(n)} = excluded.{q(n)}" for n in names if n not in v.keys)
                t = table(v.name)
                sql = (
                    f"INSERT INTO {t} ({', '.join(q(n) for n in names)}) VALUES ({', '.join('?' * len(names))}) "
                    f"ON CONFLICT ({', '.join(q(k) for k in v.keys)}) DO UPDATE SET {upd} "
                    f"WHERE (coalesce(excluded.__et, {MIN_I64}), coalesce(excluded.__ct, {MIN_I64})) >= "
                    f"(coalesce({t}.__et, {MIN_I64}), coalesce({t}.__ct, {MIN_I64}))"
                )
                before = con.total_changes
                con.executemany(sql, zip(*v.columns()))
                written[v.name] = con.total_changes - before
                if v.expire_before is not None:
                    con.execute(f"DELETE FROM {t} WHERE coalesce(__et, {MIN_I64}) < ?", (v.expire_before,))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return written

    def reader(
        self,
        view: str,
        keys: dict[str, str],
        fields: dict[str, str],
        with_time: bool = False,
        with_created: bool = False,
    ) -> ViewReader:
        """A prepared reader for `fields` of `view` (then __et / __ct when asked)."""
        schema = self._schema(self._con(), view)
        if schema is None:
            raise RoostError(
                f"view {view!r} has not been materialised into {self.url}", hint="run `roost features materialize`"
            )
        missing = [f for f in fields if f not in schema["fields"]]
        if missing or list(schema["keys"]) != list(keys):
            raise RoostError(
                f"online store {self.url} holds an older definition of view {view!r}",
                hint="run `roost features materialize` after `roost features apply`",
            )
        times = (["__et"] if with_time else []) + (["__ct"] if with_created else [])
        return _SQLiteReader(self, view, list(keys), list(fields) + times)

    def has_view(self, view: str) -> bool:
        """True when the view's table exists."""
        return self._schema(self._con(), view) is not None

    def drop_view(self, view: str) -> None:
        """Drop the view's table and metadata."""
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute(f"DROP TABLE IF EXISTS {table(view)}")
            con.execute(f"DELETE FROM {META} WHERE view = ?", (view,))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def stats(self, view: str) -> dict[str, Any] | None:
        """Rows and newest event time of a view (reads the whole table: call it at materialisation)."""
        con = self._con()
        if self._schema(con, view) is None:
            return None
        rows, newest = con.execute(f"SELECT count(*), max(__et) FROM {table(view)}").fetchone()
        return {"rows": int(rows), "newest_event": None if newest is None else int(newest)}

    def sample(self, view: str, n: int) -> list[dict[str, Any]]:
        """The first `n` rows of a view in key order (decoded as their dtypes)."""
        from roost.features.online_stores.base import decode

        con = self._con()
        schema = self._schema(con, view)
        if schema is None:
            return []
        types = {**schema["keys"], **schema["fields"], "__et": "int64"}
        cols = list(types)
        got = con.execute(f"SELECT {', '.join(q(c) for c in cols)} FROM {table(view)} LIMIT ?", (int(n),)).fetchall()
        return [{c: decode(v, types[c]) for c, v in zip(cols, row)} for row in got]

    def close(self) -> None:
        """Close this thread's connection."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None


class _SQLiteReader(ViewReader):
    """Reads with cached prepared statements: `k = ?` for one entity, `k IN (?, ...)` per batch size."""

    def __init__(self, store: SQLiteOnlineStore, view: str, keys: list[str], fields: list[str]) -> None:
        self.store, self.nk, self.nf = store, len(keys), len(fields)
        cols = ", ".join(q(c) for c in [*keys, *fields])
        self.head = f"SELECT {cols} FROM {table(view)} WHERE "
        self.kcols = keys
        self.single = self.head + " AND ".join(f"{q(k)} = ?" for k in keys)
        self._sql: dict[int, str] = {}

    def _batch_sql(self, n: int) -> str:
        sql = self._sql.get(n)
        if sql is None:
            if self.nk == 1:
                sql = self.head + f"{q(self.kcols[0])} IN ({', '.join('?' * n)})"
            else:
                tup = "(" + ", ".join("?" * self.nk) + ")"
                sql = self.head + f"({', '.join(q(k) for k in self.kcols)}) IN (VALUES {', '.join([tup] * n)})"
            self._sql[n] = sql
        return sql

    def read(self, key_cols: list[list[Any]]) -> list[list[Any]]:
        """One list per field, aligned with the requested keys (None where the entity has no row)."""
        con = self.store._con()
        nk, nf = self.nk, self.nf
        n = len(key_cols[0]) if key_cols else 0
        if n == 1:
            row = con.execute(self.single, [c[0] for c in key_cols]).fetchone()
            return [[None if row is None else row[nk + i]] for i in range(nf)]
        found: dict[Any, Any] = {}
        ids = key_cols[0] if nk == 1 else list(zip(*key_cols))
        for lo in range(0, n, CHUNK):
            part = ids[lo : lo + CHUNK]
            params = part if nk == 1 else [x for t in part for x in t]
            rows = con.execute(self._batch_sql(len(part)), params).fetchall()
            if nk == 1:
                found.update((r[0], r) for r in rows)
            else:
                found.update((r[:nk], r) for r in rows)
        got = [found.get(k) for k in ids]
        return [[None if r is None else r[nk + i] for r in got] for i in range(nf)]
