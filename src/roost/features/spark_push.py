"""A view's rows on Spark as `sources.view_rows` gives them to the local engines: the source's rows
(`spark_rows.view_frame`), then the view's pushed rows (`push_log`) in push order."""

from __future__ import annotations

from datetime import datetime
from functools import reduce
from pathlib import Path
from typing import Any

from roost.features.spark_rows import SPARK_TYPES, spark_errors, view_frame

__all__ = ["PUSHED_FILE", "pushed_frame", "view_rows"]


def view_rows(
    spark: Any,
    view: dict[str, Any],
    src: dict[str, Any],
    root: Path,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Any:
    """`view_frame` (keys, __et, __ct, __file, __mid, fields) with the pushed rows after the source's."""
    rows = view_frame(spark, view, src, root, start=start, end=end)
    pushed = pushed_frame(spark, view, root, start, end) if src.get("event_time") else None
    return rows if pushed is None else rows.unionByName(pushed)


PUSHED_FILE = "\U0010ffff"  # __file of pushed rows (+ the push's id): sorts after every source file's path


def pushed_frame(spark: Any, view: dict[str, Any], root: Path, start: datetime | None, end: datetime | None) -> Any:
    """The view's pushed rows (`push_log`) in view_frame's columns, or None: deduplicated on (keys, event time,
    created time) with the last push winning, and ordered after the source's rows (the local engines' rule)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from roost.features.push_log import log_files

    files = log_files(root, view["name"])
    if not files:
        return None
    keys, fields = list(view["join_keys"]), view["fields"]
    with spark_errors(f"the push log of view {view['name']!r}"):
        df = spark.read.option("mergeSchema", "true").parquet(*files)
    where = [F.col(f"`{k}`").isNotNull() for k in keys]
    if start is not None:
        where.append(F.col("__et") >= F.lit(start))
    if end is not None:
        where.append(F.col("__et") <= F.lit(end))
    df = df.where(reduce(lambda a, b: a & b, where))
    last = Window.partitionBy(*[F.col(f"`{k}`") for k in keys], "__et", "__ct").orderBy(
        F.col("__batch").desc(), F.col("__row").desc()
    )
    df = df.withColumn("__n", F.row_number().over(last)).where(F.col("__n") == 1)
    have = set(df.columns)
    return df.select(
        *[F.col(f"`{k}`").cast(SPARK_TYPES[t]).alias(k) for k, t in view["join_keys"].items()],
        F.unix_micros(F.col("__et")).alias("__et"),
        F.unix_micros(F.col("__ct")).alias("__ct"),
        F.concat(F.lit(PUSHED_FILE), F.col("__batch")).alias("__file"),
        F.col("__row").cast("bigint").alias("__mid"),
        *[
            (F.col(f"`{f}`") if f in have else F.lit(None)).cast(SPARK_TYPES[t]).alias(f)  # (a field added later)
            for f, t in fields.items()
        ],
    )
