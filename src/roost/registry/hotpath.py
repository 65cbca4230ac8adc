"""The run hot path's SQL: statements written once, run on the DBAPI cursor of a store write transaction.

Creating a run and writing its points are the most frequent writes (a tuning study makes thousands of runs), and
SQLAlchemy's per-statement work (compile cache lookup, parameter processing, result setup) cost more than SQLite
itself. These statements go straight to the driver inside the same transaction that `engine.write_connection`
opens (BEGIN IMMEDIATE on SQLite), with values converted by the dialect's own bind processors, so the stored rows
are byte-for-byte what the ORM writes. The SQL is the same on SQLite (>= 3.24) and PostgreSQL; only the
placeholder differs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from roost.registry.tables import Run

RUN_COLUMNS = (
    "id",
    "experiment_id",
    "name",
    "status",
    "start_time",
    "end_time",
    "heartbeat_at",
    "user",
    "git_commit",
    "git_dirty",
    "source",
    "parent_run_id",
    "artifact_uri",
)
_QUOTED = ", ".join(f'"{c}"' for c in RUN_COLUMNS)  # "user" is a reserved word on PostgreSQL
_Q_RUN = f"INSERT INTO runs ({_QUOTED}) VALUES ({', '.join('?' * len(RUN_COLUMNS))})"
# run_start copies the run's start_time as stored (the same bytes: a param sort orders ties by it, see models.Param)
_Q_PARAM = (
    "INSERT INTO params (run_id, key, value, type, num, run_start) "
    "VALUES (?, ?, ?, ?, ?, (SELECT start_time FROM runs WHERE id = ?))"
)
_Q_PARAMS_OF = "SELECT key, value, type FROM params WHERE run_id = ? AND key IN ({})"
_Q_TAG = (
    "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?) "
    "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value"
)
_Q_METRIC = 'INSERT INTO metrics (run_id, key, value, step, "timestamp") VALUES (?, ?, ?, ?, ?)'
# PostgreSQL: a batch of points as one statement over four arrays (executemany runs one INSERT per point: 10,000
# statements for a 10,000-point batch, ~5x slower through the server, see bench/RESULTS.md "Team server"). The
# arrays travel in binary (%b: no text to format here nor to parse there) and the run id once, not once per point.
_Q_METRIC_ARRAYS = (
    'INSERT INTO metrics (run_id, key, value, step, "timestamp") '
    "SELECT %s, * FROM unnest(%b::varchar[], %b::float8[], %b::integer[], %b::float8[])"
)
_Q_METRIC_ARRAYS_RUNS = (  # points of several runs (imports)
    'INSERT INTO metrics (run_id, key, value, step, "timestamp") '
    "SELECT * FROM unnest(%b::varchar[], %b::varchar[], %b::float8[], %b::integer[], %b::float8[])"
)
# keeps the point with the greatest (step, timestamp): a late point of an earlier step never wins
_Q_LATEST = (
    'INSERT INTO latest_metrics (run_id, key, value, step, "timestamp") VALUES (?, ?, ?, ?, ?) '
    'ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, step = excluded.step, "timestamp" = '
    'excluded."timestamp" WHERE excluded.step > latest_metrics.step OR (excluded.step = latest_metrics.step '
    'AND excluded."timestamp" >= latest_metrics."timestamp")'
)
# a heartbeat; a LOST run that beats again is RUNNING again, its end_time cleared
_Q_BEAT = (
    "UPDATE runs SET heartbeat_at = ?, "
    "end_time = CASE WHEN status = 'LOST' THEN NULL ELSE end_time END, "
    "status = CASE WHEN status = 'LOST' THEN 'RUNNING' ELSE status END "
    "WHERE id = ? AND status IN ('RUNNING', 'LOST')"
)
_Q_IDEM = "INSERT INTO idempotency_keys (key, created_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING"
_Q_IDEM_PRUNE = "DELETE FROM idempotency_keys WHERE created_at < ?"
_Q_FINISH = "UPDATE runs SET status = ?, end_time = ? WHERE id = ?"
_Q_FINISH_BEAT = "UPDATE runs SET status = ?, end_time = ?, heartbeat_at = ? WHERE id = ?"

Processor = Callable[[Any], Any]


class HotPath:
    """The hot-path statements of one engine, in its driver's placeholder style."""

    def __init__(self, engine: Engine) -> None:
        self.dialect = engine.dialect
        qmark = self.dialect.paramstyle == "qmark"
        self._sql: Callable[[str], str] = (lambda q: q) if qmark else (lambda q: q.replace("?", "%s"))
        cols = Run.__table__.c
        self._run_procs: list[Processor | None] = [
            cols[c].type._cached_bind_processor(self.dialect) for c in RUN_COLUMNS
        ]
        self._time: Processor | None = cols["start_time"].type._cached_bind_processor(self.dialect)
        self.insert_run_sql = self._sql(_Q_RUN)
        self.param_sql = self._sql(_Q_PARAM)
        self.tag_sql = self._sql(_Q_TAG)
        self.metric_sql = self._sql(_Q_METRIC)
        self.latest_sql = self._sql(_Q_LATEST)
        self.beat_sql = self._sql(_Q_BEAT)
        self.finish_sql = self._sql(_Q_FINISH)
        self.finish_beat_sql = self._sql(_Q_FINISH_BEAT)
        self.idem_sql = self._sql(_Q_IDEM)
        self.idem_prune_sql = self._sql(_Q_IDEM_PRUNE)
        self._arrays = self.dialect.name == "postgresql"

    def insert_metrics(self, cur: Cursor, rows: Sequence[tuple[str, str, float, int, float]]) -> None:
        """Insert metric points (run_id, key, value, step, timestamp): one statement on PostgreSQL."""
        if self._arrays and len(rows) > 1:
            runs, keys, values, steps, times = (list(col) for col in zip(*rows, strict=True))
            if runs.count(runs[0]) == len(runs):
                cur.execute(_Q_METRIC_ARRAYS, (runs[0], keys, values, steps, times))
            else:
                cur.execute(_Q_METRIC_ARRAYS_RUNS, (runs, keys, values, steps, times))
        elif rows:
            cur.executemany(self.metric_sql, rows)

    def run_values(self, row: dict[str, Any]) -> tuple[Any, ...]:
        """The INSERT parameters of a `runs` row (column values by name)."""
        return tuple(
            row.get(c) if p is None or row.get(c) is None else p(row[c])
            for c, p in zip(RUN_COLUMNS, self._run_procs, strict=True)
        )

    def time(self, value: datetime) -> Any:
        """A timestamp as the driver stores it (SQLite: SQLAlchemy's text form)."""
        return value if self._time is None else self._time(value)

    def params_of_sql(self, n: int) -> str:
        """SELECT of a run's stored params among `n` keys."""
        return self._sql(_Q_PARAMS_OF.format(", ".join("?" * n)))

    @contextlib.contextmanager
    def cursor(self, conn: Connection) -> Iterator[Cursor]:
        """A cursor on the driver connection under `conn` (in its transaction); driver errors become SQLAlchemy's."""
        raw = conn.connection.driver_connection
        assert raw is not None
        cur = Cursor(raw.cursor(), self.dialect)
        try:
            yield cur
        finally:
            cur.close()


class Cursor:
    """A driver cursor whose errors are raised as SQLAlchemy exceptions (IntegrityError, OperationalError...)."""

    def __init__(self, cur: Any, dialect: Any) -> None:
        self._cur = cur
        self._dialect = dialect

    def _wrap(self, sql: str, params: Any, exc: Exception) -> BaseException:
        return DBAPIError.instance(sql, params, exc, self._dialect.loaded_dbapi.Error, dialect=self._dialect)

    def execute(self, sql: str, params: Sequence[Any]) -> int:
        """Run one statement; returns the rows it changed."""
        try:
            self._cur.execute(sql, params)
        except self._dialect.loaded_dbapi.Error as exc:
            raise self._wrap(sql, params, exc) from exc
        return int(self._cur.rowcount)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each row of parameters."""
        try:
            self._cur.executemany(sql, rows)
        except self._dialect.loaded_dbapi.Error as exc:
            raise self._wrap(sql, rows, exc) from exc

    def fetchall(self) -> list[Any]:
        """The rows of the last SELECT."""
        return list(self._cur.fetchall())

    def close(self) -> None:
        """Release the cursor."""
        self._cur.close()
