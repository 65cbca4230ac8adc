"""`roost predict`: batch-score files or a query with a model package (local, Spark or Ray engine)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import typer


@contextlib.contextmanager
def _progress(enabled: bool, unit: str = "parts") -> Iterator[Callable[[int, int | None], None] | None]:
    """A Rich progress bar on stderr over parts (Spark, Ray: tasks), fed by (done, total) callbacks; None when
    disabled or when stderr is not a terminal (piped output stays the summary alone)."""
    from rich.console import Console

    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn(f"[bold]scoring {unit}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("parts", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def predict(
    model: str = typer.Argument(..., help="model: name@alias, name/VERSION or a package folder"),
    input: list[str] = typer.Option(
        ..., "--input", "-i", help="Parquet/CSV file, folder or glob (repeatable), or 'sql:SELECT ...' (DuckDB/Spark)"
    ),
    table: list[str] = typer.Option(
        [], "--table", "-t", help="NAME=PATH: a file, folder or glob an sql: input reads as NAME (repeatable)"
    ),
    output: str = typer.Option(..., "--out", "-o", "--output", help="folder of Parquet parts (a rerun resumes it)"),
    engine: str = typer.Option("local", "--engine", help="local, spark or ray"),
    columns: str | None = typer.Option(
        None, "--columns", help="comma-separated columns to pass through (ids) [default: all input columns]"
    ),
    batch_size: int = typer.Option(65536, "--batch-size", help="rows per model run"),
    rows_per_part: int = typer.Option(1_000_000, "--rows-per-part", help="rows per output part (local engine)"),
    workers: int | None = typer.Option(
        None, "--parallel", "-j", "--workers", help="parts scored at once (local) [all cores]"
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace predictions of another model or input"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
    experiment: str = typer.Option("predict", "--experiment", "-e", help="experiment of the recorded run"),
) -> None:
    """Batch-score Parquet/CSV/SQL input with a model into Parquet parts, as a recorded run."""
    from roost.cli.output import echo, print_json
    from roost.errors import RoostError
    from roost.scoring import predict as run_predict
    from roost.scoring.sql_input import parse_table_option

    keep = None if columns is None else [c.strip() for c in columns.split(",") if c.strip()]
    tables: dict[str, str | Path | list[str] | list[Path]] = {}
    for spec in table:
        name, path = parse_table_option(spec)
        if name in tables:
            raise RoostError(f"--table {name} is given twice", hint="name each input once")
        tables[name] = path
    unit = "parts" if engine == "local" else "tasks"
    with _progress(not quiet and not as_json, unit) as cb:
        res = run_predict(
            model,
            input if len(input) > 1 else input[0],
            output,
            engine=engine,
            columns=keep,
            batch_size=batch_size,
            rows_per_part=rows_per_part,
            workers=workers,
            overwrite=overwrite,
            experiment=experiment,
            progress=cb,
            tables=tables or None,
        )
    if as_json:
        print_json(res.to_dict())
        return
    skipped = f", {res.parts_skipped} already done" if res.parts_skipped else ""
    rate = res.rows_out / res.seconds if res.seconds > 0 else 0.0
    echo(
        f"scored {res.rows_out:,} rows with {res.model_version} into {res.output} "
        f"({res.parts} parts{skipped}; {res.seconds:.1f}s, {rate:,.0f} rows/s; run {res.run_id})"
    )
    if res.engine_start_seconds is not None:
        where = f"; its log: {res.engine_log}" if res.engine_log else ""
        what = "Spark session" if res.engine == "spark" else "Ray"
        echo(
            f"{what} started in {res.engine_start_seconds:.1f}s of the "
            f"{res.seconds:.1f}s{where} (for small inputs --engine local skips that start)"
        )


def register(app: typer.Typer) -> None:
    """Add `predict` to the CLI."""
    app.command("predict")(predict)


__all__ = ["register"]
