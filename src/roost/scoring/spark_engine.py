"""The Spark engine: reads the input as a DataFrame, scores partitions on the executors with `mapInArrow` (Arrow
batches straight into ONNX Runtime, no pandas), and writes Parquet parts with Spark's own writer."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from roost.errors import RoostError
from roost.scoring.score import cached_predictor, output_schema, score_with_package
from roost.scoring.sources import Source, check_columns, sql_error

log = logging.getLogger(__name__)


def require_spark() -> Any:
    """Import pyspark, or say exactly what is missing (the package, or Java)."""
    try:
        import pyspark
    except ImportError as exc:
        raise RoostError(
            "the spark engine needs pyspark", hint="pip install 'roost[spark]' (or use --engine local)"
        ) from exc
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        raise RoostError(
            "the spark engine needs Java 17+ and none was found",
            hint="install it (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME",
        )
    return pyspark


def session(master: str | None = None) -> Any:
    """The active SparkSession, or a new local one (`local[*]`, UI off, quiet: see roost.spark_session)."""
    return _session(master)[0]


def _session(master: str | None) -> tuple[Any, float | None, Path | None]:
    """(session, seconds its start took or None when one was running, the JVM's log file or None)."""
    require_spark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, None, None
    from roost.spark_session import start

    conf = {"spark.sql.execution.arrow.pyspark.enabled": "true"}
    started = start(master or "local[*]", "roost-predict", conf)
    return started.session, started.seconds, started.log_path


def _score_partition(package: str, shipped: bool, keep: list[str], batches: Iterator[Any]) -> Iterator[Any]:
    """mapInArrow function: score each Arrow batch of a partition (the package is loaded once per worker)."""
    path = package
    if shipped:
        from pyspark import SparkFiles

        path = SparkFiles.get(package)
    for b in batches:
        yield score_with_package(path, keep, b)


def read_input(spark: Any, source: Source) -> Any:
    """The input as a Spark DataFrame (Parquet, CSV with a header, or a Spark SQL query)."""
    if source.kind == "sql":
        return _read_sql(spark, source)
    return _read_files(spark, source)


def _read_files(spark: Any, source: Source) -> Any:
    """Parquet or CSV files (with a header, types inferred) as a Spark DataFrame."""
    paths = [str(f.resolve()) for f in source.files]
    if source.kind == "csv":
        return spark.read.option("header", "true").option("inferSchema", "true").csv(paths)
    return spark.read.parquet(*paths)


def run_spark(
    source: Source,
    package: Path,
    out: Path,
    keep: list[str],
    spark: Any = None,
    master: str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> dict[str, Any]:
    """Score `source` into `out` as Parquet parts on Spark; returns rows_in, rows_out, parts, and start_seconds and
    log (the session's start cost and JVM log file, None for a session that was already running)."""
    from roost.spark_session import quiet_pyspark

    start_seconds: float | None = None
    log_path: Path | None = None
    if spark is None:
        spark, start_seconds, log_path = _session(master)
    with quiet_pyspark():
        stats = _run(spark, source, package, out, keep, progress)
    return {**stats, "start_seconds": start_seconds, "log": str(log_path) if log_path else None}


def _run(
    spark: Any, source: Source, package: Path, out: Path, keep: list[str], progress: Callable[..., None] | None
) -> dict[str, int]:
    """The scoring job itself (mapInArrow, then Spark's Parquet writer)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    pred = cached_predictor(package)
    df = read_input(spark, source)
    check_columns(list(df.columns), pred.inputs, keep, [pred_col(pred.task)])
    df = df.select(*dict.fromkeys([*pred.inputs, *keep]))
    # timestamps reach mapInArrow in the session time zone; without it PySpark refuses a kept timestamp column
    in_schema = to_arrow_schema(df.schema, timezone=spark.conf.get("spark.sql.session.timeZone"))
    schema = from_arrow_schema(output_schema(pa.schema(in_schema), keep, pred.task))
    sc = spark.sparkContext
    shipped = not str(sc.master).startswith("local")
    target = str(package.resolve())
    if shipped:  # a cluster: executors fetch the package folder through Spark's file server
        sc.addFile(target, recursive=True)
        target = package.resolve().name
    rows = sc.accumulator(0)

    def count(batches: Iterator[Any]) -> Iterator[Any]:
        for b in _score_partition(target, shipped, keep, batches):
            rows.add(b.num_rows)
            yield b

    log.info("spark: scoring on %s (package %s)", sc.master, "shipped with addFile" if shipped else "by path")
    scored = df.mapInArrow(count, schema)
    with track_tasks(sc, progress):
        scored.write.mode("overwrite").parquet(str(out))
    n = _parquet_rows(out)
    return {"rows_in": int(rows.value), "rows_out": n, "parts": len(list(out.glob("part-*.parquet")))}


GROUP = "spark.jobGroup.id"


@contextmanager
def track_tasks(sc: Any, progress: Callable[[int, int | None], None] | None, every: float = 0.25) -> Iterator[None]:
    """Report (tasks done, tasks known) of the jobs run meanwhile to `progress`, polling Spark's status tracker
    from a thread (the jobs are tagged with a job group of their own); one last report when they are done."""
    if progress is None:
        yield
        return
    group = f"roost-predict-{uuid.uuid4().hex}"
    before = sc.getLocalProperty(GROUP)
    sc.setJobGroup(group, "roost predict")
    tracker = sc.statusTracker()
    from roost.scoring.polling import polling

    try:
        with polling(lambda: _report(tracker, group, progress), every, "roost-spark-progress"):
            yield
    finally:
        sc.setLocalProperty(GROUP, before)
    _report(tracker, group, progress)


def _report(tracker: Any, group: str, progress: Callable[[int, int | None], None]) -> None:
    """One progress report: completed and total tasks over the stages of the group's jobs."""
    done = total = 0
    for job_id in tracker.getJobIdsForGroup(group):
        job = tracker.getJobInfo(job_id)
        for stage_id in job.stageIds if job else ():
            stage = tracker.getStageInfo(stage_id)
            if stage is not None:
                done, total = done + stage.numCompletedTasks, total + stage.numTasks
    if total:
        progress(done, total)


def pred_col(task: str) -> str:
    """The prediction column's name."""
    from roost.scoring.score import prediction_name

    return prediction_name(task)


def _parquet_rows(out: Path) -> int:
    """Rows in the Parquet files of `out` (from their footers; no data read)."""
    import pyarrow.parquet as pq

    return sum(int(pq.ParquetFile(f).metadata.num_rows) for f in out.glob("part-*.parquet"))


def _read_sql(spark: Any, source: Source) -> Any:
    """One Spark SQL query over the named inputs (temp views) and the session's catalog: Spark's parser must read
    it as a query (no command, no second statement), and files cannot be named in it (`parquet.`path``)."""
    from pyspark.errors import AnalysisException, ParseException

    query = source.query or ""
    for name, table in source.tables.items():
        _read_files(spark, table).createOrReplaceTempView(name)
    try:
        spark._jsparkSession.sessionState().sqlParser().parseQuery(query)
    except Exception as exc:  # py4j wraps Spark's ParseException
        text = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)[:300]
        raise RoostError(
            f"an sql: input is one query (SELECT, WITH ..., VALUES); Spark's parser refused: {text}",
            hint="no commands (CREATE, INSERT, SET, ...) and no second statement",
        ) from exc
    before = spark.conf.get("spark.sql.runSQLOnFiles", "true")
    spark.conf.set("spark.sql.runSQLOnFiles", "false")
    try:
        return spark.sql(query)
    except (ParseException, AnalysisException) as exc:  # Spark's message quotes the offending token
        raise sql_error(query, exc) from exc
    finally:
        spark.conf.set("spark.sql.runSQLOnFiles", before)


__all__ = ["require_spark", "session", "read_input", "run_spark"]
