"""The Spark offline engine: point-in-time joins and materialisation as Spark jobs, with the local engine's answers.

Point-in-time join, per key set (the views with the same join keys together): entity rows and the views' rows
are unioned and partitioned by join key; within a key they are ordered by (time, feature before entity, created
time, file, position in file), and each entity row takes each view's last row before it (`last(..., ignorenulls)`
over a running window): the latest row with event time <= the entity time, ties broken by created time (missing
= oldest) and then by source order, as `pit.py` and the ASOF SQL do. The TTL is then checked on that row. One
shuffle per key set, no range join.

Materialisation: the greatest (event time, created time, file, position) row per entity (`max` of a struct, a
hash aggregate), streamed to the driver one partition at a time as Arrow IPC batches (`toLocalIterator`) and
written to the online store in chunks of CHUNK_ROWS: the driver never holds more than a chunk and a partition.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.errors import RoostError, closest
from roost.features.checks import float_text_key
from roost.features.refs import Selection, ViewSelection, resolve
from roost.features.spark_push import view_rows
from roost.features.spark_rows import SPARK_TYPES, int_cast, spark_errors

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

MIN_US = -(2**63)  # the ordering value of -infinity: a static view's event time, a missing created time
CHUNK_ROWS = 100_000  # rows per online-store write when materialising

__all__ = ["CHUNK_ROWS", "SparkEngine", "require_spark", "session", "arrow_chunks"]


def require_spark() -> None:
    """Check pyspark and Java are there, or say exactly what to install."""
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise RoostError(
            "the spark offline engine needs pyspark",
            hint="pip install 'roost[spark]' (or set offline: {engine: local} in roost.yaml)",
        ) from exc
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        raise RoostError(
            "the spark offline engine needs Java 17+ and none was found",
            hint="install it (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME",
        )


def session(cfg: dict[str, Any]) -> Any:
    """The active SparkSession, or a new one on `cfg['master']` (default local[*]) with `cfg['conf']` set."""
    require_spark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    from roost.spark_session import start

    master = str(cfg.get("master") or "local[*]")
    conf = {"spark.sql.session.timeZone": "UTC", **{str(k): str(v) for k, v in (cfg.get("conf") or {}).items()}}
    log.info("spark offline engine: starting a session on %s", master)
    return start(master, "roost-features", conf).session  # quiet: the JVM's output goes to .roost/logs


@contextmanager
def utc(spark: Any) -> Iterator[None]:
    """Spark's session time zone set to UTC meanwhile (naive times are localised from it; Arrow results use it)."""
    key = "spark.sql.session.timeZone"
    old = spark.conf.get(key)
    spark.conf.set(key, "UTC")
    try:
        yield
    finally:
        spark.conf.set(key, old)


def arrow_chunks(df: Any, rows: int | None = None) -> Iterator[pa.Table]:
    """A DataFrame's rows on the driver as Arrow tables of at most `rows` rows, one partition fetched at a time."""
    import pyarrow as pa

    rows = rows or CHUNK_ROWS  # read at call time (tests lower it)

    def ipc(batches: Iterator[Any]) -> Iterator[Any]:
        for b in batches:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, b.schema) as w:
                w.write_batch(b)
            yield pa.RecordBatch.from_arrays([pa.array([sink.getvalue().to_pybytes()], pa.binary())], ["ipc"])

    from roost.spark_session import quiet_pyspark

    pending: list[pa.Table] = []
    n = 0
    with quiet_pyspark():  # PySpark's pandas-version warning: this path is Arrow only
        rows_df = df.mapInArrow(ipc, "ipc binary")
    for row in rows_df.toLocalIterator(prefetchPartitions=False):
        t = pa.ipc.open_stream(pa.py_buffer(bytes(row["ipc"]))).read_all()
        pending.append(t)
        n += t.num_rows
        if n >= rows:
            whole = pa.concat_tables(pending)
            cut = n - n % rows
            for off in range(0, cut, rows):
                yield whole.slice(off, rows)
            pending, n = [whole.slice(cut)], n - cut
    if n:
        yield pa.concat_tables(pending)


def _key(vs: ViewSelection, j: int, k: str, typ: str) -> Any:
    """Entity key column `k` (Spark type `typ`) cast to the view's key type, refusing fractional ids."""
    from pyspark.sql import functions as F

    dtype = vs.keys[k]
    c = F.col(f"`{k}`")
    if dtype in ("int64", "int32"):
        what = f"entity frame: join key {k!r} ({dtype})"
        hint = f"pass whole numbers (e.g. df[{k!r}].astype('int64') once they are), or declare the key 'string'"
        c = int_cast(c, typ, SPARK_TYPES[dtype], what, hint)
    elif dtype == "string" and typ in ("float", "double"):
        raise float_text_key("entity frame", k, typ)
    else:
        c = c.cast(SPARK_TYPES[dtype])
    return c.alias(f"__k{j}")


def join_views(spark: Any, ents: Any, views: list[ViewSelection], root: Path) -> Any:
    """`ents` (with __tu: entity time in UTC microseconds) plus the output columns of views that share one key
    set, as of each row's time: one union, one shuffle and one window for all of them."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = views[0].keys
    kk = [f"__k{j}" for j in range(len(keys))]
    feats = []
    for i, vs in enumerate(views):
        static = not vs.source.get("event_time")
        rows = view_rows(spark, vs.spec, vs.source, root)
        hit = F.struct(*[F.col(f"`{f}`").alias(f"__f{m}") for m, f in enumerate(vs.fields)], F.col("__et"))
        feats.append(
            rows.select(
                *[F.col(f"`{k}`").alias(kk[j]) for j, k in enumerate(keys)],
                (F.lit(MIN_US) if static else F.col("__et")).alias("__o"),
                F.lit(0).alias("__kind"),
                F.coalesce(F.col("__ct"), F.lit(MIN_US)).alias("__c"),
                F.col("__file").alias("__fp"),
                F.col("__mid").alias("__pos"),
                hit.alias(f"__hit{i}"),
            )
        )
    types = dict(ents.dtypes)
    payload = list(ents.columns)
    u = ents.select(
        "*",
        *[_key(views[0], j, k, types[k]) for j, k in enumerate(keys)],
        F.col("__tu").alias("__o"),
        F.lit(1).alias("__kind"),
    )
    for f in feats:
        u = u.unionByName(f, allowMissingColumns=True)
    w = (
        Window.partitionBy(*kk)
        .orderBy(F.col("__o").asc_nulls_first(), "__kind", "__c", "__fp", "__pos")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    got = [F.last(f"__hit{i}", ignorenulls=True).over(w).alias(f"__got{i}") for i in range(len(views))]
    u = u.select(*[F.col(f"`{c}`") for c in payload], "__kind", *got).where(F.col("__kind") == 1)
    outs = []
    for i, vs in enumerate(views):
        static = not vs.source.get("event_time")
        ttl = None if static or vs.spec.get("ttl_seconds") is None else round(float(vs.spec["ttl_seconds"]) * 1e6)
        g = F.col(f"__got{i}")
        ok = g.isNotNull() & F.col("__tu").isNotNull()
        if ttl is not None:  # the matched row must not be older than t - ttl
            ok = ok & (g.getField("__et") >= F.col("__tu") - F.lit(int(ttl)))
        for m, (f, out) in enumerate(zip(vs.fields, vs.outputs)):
            v = g.getField(f"__f{m}")
            if vs.spec["fields"][f] in ("float64", "float32"):  # NaN means missing, as on the local engine
                v = F.when(~F.isnan(v), v)
            outs.append(F.when(ok, v).alias(out))
    return u.select(*[F.col(f"`{c}`") for c in payload], *outs)


class SparkEngine:
    """Training sets and materialisation on Spark (`offline: {engine: spark, master: ..., conf: {...}}`)."""

    name = "spark"
    chunked = True

    def __init__(self, cfg: dict[str, Any] | None = None, spark: Any = None) -> None:
        self.cfg = dict(cfg or {})
        self._spark = spark

    def spark(self) -> Any:
        """The SparkSession (the active one, else a new one from the settings)."""
        if self._spark is None:
            self._spark = session(self.cfg)
        return self._spark

    def _join(self, spark: Any, ents: Any, sel: Selection, root: Path) -> Any:
        groups: dict[tuple[tuple[str, str], ...], list[ViewSelection]] = {}
        for vs in sel.views:  # views with the same join keys share one shuffle
            groups.setdefault(tuple(vs.keys.items()), []).append(vs)
        out = ents
        for views in groups.values():
            out = join_views(spark, out, views, root)
        return out

    def join(self, sel: Selection, ent: pa.Table, event_time: str, root: Path) -> dict[str, Any]:
        """Output column -> values for each row of `ent` (its __rid order), computed by Spark."""
        import numpy as np
        import pyarrow as pa
        from pyspark.sql import functions as F

        spark = self.spark()
        t = ent.column(event_time).cast(pa.timestamp("us", tz="UTC"))
        ent = ent.set_column(ent.column_names.index(event_time), event_time, t)
        with utc(spark), spark_errors("point-in-time join"):
            sdf = spark.createDataFrame(ent).withColumn("__tu", F.unix_micros(F.col(f"`{event_time}`")))
            got = self._join(spark, sdf, sel, root)
            outs = [o for vs in sel.views for o in vs.outputs]
            parts = list(arrow_chunks(got.select("__rid", *[f"`{o}`" for o in outs])))
        if not parts:
            return {o: pa.nulls(ent.num_rows) for o in outs}
        tbl = pa.concat_tables(parts)
        if tbl.num_rows != ent.num_rows:  # one row per entity row by construction
            raise RuntimeError(f"point-in-time join returned {tbl.num_rows} rows for {ent.num_rows} entity rows")
        order = np.argsort(tbl.column("__rid").to_numpy())
        tbl = tbl.take(pa.array(order))
        return {o: tbl.column(o) for o in outs}

    def latest(
        self, spec: dict[str, Any], src: dict[str, Any], root: Path, start: datetime | None, end: datetime | None
    ) -> Iterator[pa.Table]:
        """The view's latest row per entity in chunks of about CHUNK_ROWS rows."""
        from pyspark.sql import functions as F

        spark = self.spark()
        keys, fields = list(spec["join_keys"]), list(spec["fields"])
        with utc(spark), spark_errors(f"materialize {spec['name']!r}"):
            rows = view_rows(spark, spec, src, root, start=start, end=end)
            best = F.max(
                F.struct(
                    F.coalesce(F.col("__et"), F.lit(MIN_US)).alias("a"),
                    F.coalesce(F.col("__ct"), F.lit(MIN_US)).alias("b"),
                    F.col("__file").alias("c"),
                    F.col("__mid").alias("d"),
                    *[F.col(f"`{f}`").alias(f"__f{m}") for m, f in enumerate(fields)],
                    F.col("__et").alias("__et"),
                    F.col("__ct").alias("__ct"),
                )
            )
            agg = rows.groupBy(*[F.col(f"`{k}`") for k in keys]).agg(best.alias("__b"))
            out = agg.select(
                *[F.col(f"`{k}`") for k in keys],
                *[F.col("__b").getField(f"__f{m}").alias(f) for m, f in enumerate(fields)],
                F.col("__b.__et").alias("__et"),
                F.col("__b.__ct").alias("__ct"),
            )
            yield from arrow_chunks(out)

    def training_frame(self, sdf: Any, features: list[str] | str, event_time: str, full_names: bool) -> Any:
        """A Spark DataFrame of entity rows plus the features as of each row's time (lazy: nothing collected)."""
        from pyspark.sql import functions as F

        from roost import workspace

        sel = resolve(features, full_names=full_names)
        if sel.requests:
            raise RoostError(
                f"request view(s) {', '.join(r.name for r in sel.requests)} cannot run inside a Spark DataFrame",
                hint="pass a pandas or Arrow entity frame (collect the rows first): request-time features run their "
                "Python transformation on it, on either engine",
            )
        types = dict(sdf.dtypes)
        if event_time not in types:
            near = closest(event_time, list(types))
            raise RoostError(
                f"entity frame has no event-time column {event_time!r}",
                hint=(f"did you mean {near!r}? pass event_time={near!r}; " if near else "")
                + f"columns: {', '.join(types)}",
            )
        if types[event_time] != "timestamp":
            raise RoostError(
                f"entity frame: event-time column {event_time!r} has type {types[event_time]}, not a tz-aware "
                "timestamp (Spark TIMESTAMP)",
                hint=f"convert it, e.g. F.to_utc_timestamp(F.col({event_time!r}), 'UTC')",
            )
        missing = [k for k in sel.join_keys if k not in types]
        if missing:
            raise RoostError(
                f"entity frame lacks join key column(s) {missing} needed by {', '.join(v.name for v in sel.views)}",
                hint=f"entity frame columns: {', '.join(types)}",
            )
        clash = sorted(set(sel.dtypes) & set(types))
        if clash:
            raise RoostError(
                f"feature column(s) {clash} already exist in the entity frame",
                hint="rename those entity columns, or pass full_names=True for 'view__field' names",
            )
        spark = self.spark()
        with utc(spark), spark_errors("point-in-time join"):
            ents = sdf.withColumn("__tu", F.unix_micros(F.col(f"`{event_time}`")))
            got = self._join(spark, ents, sel, workspace.current().root)
            return got.select(
                *[F.col(f"`{c}`") for c in sdf.columns],
                *[F.col(f"`{o}`").cast(SPARK_TYPES[t]).alias(o) for o, t in sel.dtypes.items()],
            )
