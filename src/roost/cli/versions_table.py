"""The `roost models versions` table: version, aliases and the headline metric first, fitted to the terminal."""

from __future__ import annotations

from typing import Any

from roost.cli.runs_table import _cell, fit, print_fitted

LEAD = ("version", "aliases")


def versions_rows(versions: list[Any], width: int | None = None) -> tuple[list[str], list[list[str]], int]:
    """(headers, rows, columns left out to fit `width`): version, aliases, headline metrics, run, created, the
    other metrics by name; the headline metric is never dropped."""
    from roost.registry.columns import headline_metrics

    as_runs = [
        {"metrics": (v.meta or {}).get("metrics") or {}, "tags": {"roost.task": (v.meta or {}).get("task")}}
        for v in versions
    ]
    heads = headline_metrics(as_runs)
    others = sorted({k for r in as_runs for k in r["metrics"]} - set(heads))
    cols = [*LEAD, *heads[:1], "run", "created", *heads[1:], *others]
    rows = []
    for v, r in zip(versions, as_runs):
        base = {"version": str(v.version), "aliases": ", ".join(v.aliases), "run": (v.run_id or "")[:8]}
        base["created"] = _cell(v.created_at)
        rows.append([base[c] if c in base else _cell(r["metrics"].get(c)) for c in cols])
    keep = fit(cols, rows, len(LEAD) + min(1, len(heads)), width)
    return cols[:keep], [r[:keep] for r in rows], len(cols) - keep


def print_versions(name: str, versions: list[Any]) -> None:
    """Print a model's versions as a table that fits the terminal (full width in a pipe; --json for machines)."""
    from rich.console import Console

    console = Console()
    heads, rows, dropped = versions_rows(versions, console.width if console.is_terminal else None)
    print_fitted(f"{name}: {len(versions)} version(s)", heads, rows, len(LEAD), dropped, "--json")
