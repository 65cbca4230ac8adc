"""`roost.predict`: batch-score files or a query with a model package on the local, Spark or Ray engine, as a
recorded run (experiment `predict`), into an output folder of Parquet parts that a rerun resumes."""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from roost.errors import RoostError
from roost.modelpkg import resolve_package  # re-exported (roost.scoring.resolve_package): the package layer alone
from roost.scoring.local import Progress
from roost.scoring.sources import resolve_source

log = logging.getLogger(__name__)

ENGINES = ("local", "spark", "ray")
MANIFEST = "_roost_predict.json"
SUCCESS = "_SUCCESS"
MAX_BATCH = 1 << 24  # rows per model run: Arrow's readers take a C long, and memory is workers x batch


@dataclass
class PredictResult:
    """What a batch-scoring run did."""

    output: str
    engine: str
    model: str
    model_version: str
    fingerprint: str
    rows_in: int
    rows_out: int
    parts: int
    parts_skipped: int
    seconds: float
    run_id: str | None
    engine_start_seconds: float | None = None  # what starting Spark or Ray cost (None: local, or already running)
    engine_log: str | None = None  # where the started engine's own log went (Spark: the JVM's output)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return asdict(self)


def predict(
    model: str | Path,
    input: str | Path | list[str] | list[Path],
    output: str | Path,
    engine: str = "local",
    columns: list[str] | None = None,
    *,
    batch_size: int = 65536,
    rows_per_part: int = 1_000_000,
    workers: int | None = None,
    overwrite: bool = False,
    record: bool = True,
    experiment: str = "predict",
    progress: Progress | None = None,
    spark: Any = None,
    tables: dict[str, str | Path | list[str] | list[Path]] | None = None,
) -> PredictResult:
    """Score `input` with `model` into Parquet parts under `output`, keeping `columns` (default: every input column);
    an `sql:SELECT ...` input reads only the named inputs `tables` (name -> file, folder or glob).

    Parameters
    ----------
    model: a registry reference (`churn@prod`, `churn/3`, `runs:/ID`) or a package folder.
    input: a Parquet/CSV file, folder or glob, a list of them, or `sql:SELECT ...` over `tables`.
    output: the folder the Parquet parts go to; a rerun of the same job resumes there, another job's parts are
        refused unless `overwrite`.
    engine: "local", "spark" or "ray" (`ENGINES`); the same rows and answers on each.
    columns: input columns copied next to the predictions (default: every input column).
    batch_size: rows per model call (at most `MAX_BATCH`).
    rows_per_part: rows per output Parquet part.
    workers: local processes (default: every core); Spark and Ray size themselves.
    overwrite: replace what `output` holds.
    record: record the job as a run (lineage: model version, input fingerprint, rows, time).
    experiment: the experiment that run goes to.
    progress: called with (rows done, total rows or None) as parts are written (the CLI's bar).
    spark: an existing SparkSession for engine="spark" (default: roost starts a quiet local one).
    tables: for an `sql:` input, name -> file, folder or glob.
    """
    if engine not in ENGINES:
        raise RoostError(f"unknown engine {engine!r}", hint=f"choose one of {', '.join(ENGINES)}")
    if batch_size < 1 or rows_per_part < 1:
        raise RoostError("batch_size and rows_per_part must be positive", hint="e.g. --batch-size 65536")
    if batch_size > MAX_BATCH:
        raise RoostError(f"batch_size {batch_size} is above {MAX_BATCH:,} rows", hint="e.g. --batch-size 65536")
    if workers is not None and workers < 1:
        raise RoostError(f"workers must be at least 1, got {workers}", hint="e.g. --parallel 4 (default: all cores)")
    from roost.model_import.deferred import resolve  # roost.load_model's resolver: run refs, deferred packages

    package, version = resolve(model)
    source = resolve_source(input, tables)
    fingerprint = source.fingerprint()
    out = Path(output).expanduser()
    from roost.scoring.score import cached_predictor

    pred = cached_predictor(package)
    keep = list(dict.fromkeys(columns)) if columns is not None else _all_columns(source, pred.inputs)
    if engine != "local" and source.kind != "sql":
        _check_files(source, pred, keep)  # a torn file or a text model column: named here, not in a Java trace
    settings: dict[str, Any] = {"model_version": version, "fingerprint": fingerprint, "engine": engine, "columns": keep}
    settings["rows_per_part"] = rows_per_part
    complete = _prepare_output(out, settings, overwrite)
    params = {**settings, "model": str(model), "input": source.describe(), "columns": ",".join(keep)}
    if not record:
        return _execute(source, package, out, keep, settings, complete, batch_size, workers, progress, spark, None)
    from roost.registry.api import start_run

    with start_run(experiment=experiment, name=f"predict {model}", params=params) as run:
        res = _execute(source, package, out, keep, settings, complete, batch_size, workers, progress, spark, run.id)
        run.log_metrics(
            {
                "rows_in": res.rows_in,
                "rows_out": res.rows_out,
                "seconds": res.seconds,
                "rows_per_s": res.rows_out / res.seconds if res.seconds > 0 else 0.0,
                "parts": res.parts,
                "parts_skipped": res.parts_skipped,
                **({"engine_start_s": res.engine_start_seconds} if res.engine_start_seconds is not None else {}),
            }
        )
    return res


def _execute(
    source: Any,
    package: Path,
    out: Path,
    keep: list[str],
    settings: dict[str, Any],
    complete: bool,
    batch_size: int,
    workers: int | None,
    progress: Progress | None,
    spark: Any,
    run_id: str | None,
) -> PredictResult:
    """Run the chosen engine (or nothing when the output is already complete) and mark the output complete."""
    engine = settings["engine"]
    t0 = time.perf_counter()
    stats: dict[str, Any]
    if complete:
        log.info("%s is complete for this model and input: nothing to do", out)
        stats = _completed_stats(out)
    elif engine == "local":
        from roost.scoring.local import run_local

        stats = run_local(source, package, out, keep, batch_size, settings["rows_per_part"], workers, progress)
    elif engine == "spark":
        from roost.scoring.spark_engine import run_spark

        _clear_parts(out)
        stats = run_spark(source, package, out, keep, spark=spark, progress=progress)
    else:
        from roost.scoring.ray_engine import run_ray

        _clear_parts(out)
        stats = run_ray(source, package, out, keep, batch_size, progress)
    seconds = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).write_text(json.dumps({**settings, "complete": True}, indent=1))
    (out / SUCCESS).touch()
    log.info("scored %d rows into %s in %.1fs (%s engine)", stats["rows_out"], out, seconds, engine)
    return PredictResult(
        output=str(out),
        engine=engine,
        model=str(package),
        model_version=settings["model_version"],
        fingerprint=settings["fingerprint"],
        rows_in=stats["rows_in"],
        rows_out=stats["rows_out"],
        parts=stats.get("parts", 0),
        parts_skipped=stats.get("parts_skipped", stats.get("parts", 0) if complete else 0),
        seconds=seconds,
        run_id=run_id,
        engine_start_seconds=_float_or_none(stats.get("start_seconds")),
        engine_log=str(stats["log"]) if stats.get("log") else None,
    )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _all_columns(source: Any, inputs: list[str]) -> list[str]:
    """Every input column (the default pass-through), as Spark's `transform` keeps them."""
    if source.kind == "sql":
        from roost.scoring import sql_input

        con = sql_input.connect(source)
        try:
            return list(sql_input.relation(con, source).columns)
        finally:
            con.close()
    from roost.scoring.sources import csv_schema, parquet_schema_names

    if source.kind == "csv":
        return list(csv_schema(source.files[0]).names)

    return parquet_schema_names(source.files)


def _check_files(source: Any, pred: Any, keep: list[str]) -> None:
    """Before Spark or Ray start: every Parquet footer readable, no empty CSV, model columns present and numeric."""
    import pyarrow.parquet as pq

    from roost.scoring.score import output_schema
    from roost.scoring.sources import check_columns, check_files_agree, check_types, csv_schema, read_guard

    if source.kind == "csv":
        schema = csv_schema(source.files[0])
        for f in source.files[1:]:
            if f.stat().st_size == 0:
                raise RoostError(f"cannot read {f}: Empty CSV file", hint="remove the empty file from the input")
    else:
        for f in source.files:
            with read_guard(f):
                pq.read_metadata(f)
        with read_guard(source.files[0]):
            schema = pq.read_schema(source.files[0])
    outputs = [output_schema(schema, [], pred.task).names[0]]
    check_columns(list(schema.names), pred.inputs, keep, outputs, where=str(source.files[0]))
    check_types(schema, pred.dtypes)
    check_files_agree(source, schema, pred.inputs, keep, pred.dtypes)


def _prepare_output(out: Path, settings: dict[str, Any], overwrite: bool) -> bool:
    """Check `out` against its manifest; True when a previous run already completed the same work."""
    manifest = out / MANIFEST
    if out.exists() and not out.is_dir():
        raise RoostError(f"--output {out} is a file, not a folder", hint="choose a new or empty folder for the parts")
    if overwrite and out.exists():
        _clear_parts(out)
        manifest.unlink(missing_ok=True)
    if manifest.is_file():
        old = json.loads(manifest.read_text())
        same = {k: old.get(k) for k in settings} == settings
        if not same:
            diff = [k for k in settings if old.get(k) != settings[k]]
            raise RoostError(
                f"{out} holds predictions of another run (different {', '.join(diff)})",
                hint="pass --overwrite to replace them, or choose another --output",
            )
        return bool(old.get("complete")) and (out / SUCCESS).is_file()
    if out.exists() and any(out.glob("*.parquet")) and not any(out.glob("part-*.parquet")):
        raise RoostError(f"{out} already holds other Parquet files", hint="choose an empty or new --output folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps({**settings, "complete": False}, indent=1))
    except OSError as exc:
        raise RoostError(
            f"cannot write the output folder {out}: {exc.strerror or exc}",
            hint="choose an --output folder you can write (its parents must be folders)",
        ) from exc
    return False


def _clear_parts(out: Path) -> None:
    """Remove the parts and markers a previous run left (engines that do not resume by part start clean)."""
    for f in [*out.glob("part-*.parquet"), *out.glob(".part-*.tmp"), out / SUCCESS]:
        f.unlink(missing_ok=True)
    for d in out.glob("_temporary"):
        shutil.rmtree(d, ignore_errors=True)


def _completed_stats(out: Path) -> dict[str, int]:
    import pyarrow.parquet as pq

    files = sorted(out.glob("part-*.parquet"))
    n = sum(int(pq.ParquetFile(f).metadata.num_rows) for f in files)
    return {"rows_in": n, "rows_out": n, "parts": len(files), "parts_skipped": len(files)}


__all__ = ["ENGINES", "PredictResult", "predict", "resolve_package"]
