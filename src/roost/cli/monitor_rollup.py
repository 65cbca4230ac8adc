"""`roost monitor rollup`: roll up request logs no fleet rolled up (a fleet killed before its last heartbeat)."""

from __future__ import annotations

from pathlib import Path

import typer

ROLLUP_FLEET = "catch-up"  # the fleet id the rolled-up rows are filed under (pages sum traffic over fleets)


def rollup_cmd(
    logs: Path | None = typer.Argument(
        None, help="Request-log folder (`roost serve --log-dir`); default: the workspace's .roost/request_logs."
    ),
    model: list[str] | None = typer.Option(None, "--model", help="Only these served models (repeatable)."),
    days: int = typer.Option(2, "--days", min=1, max=400, help="UTC day folders to read, today included."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Roll up the finished request-log files whose rows are not in the model page's traffic yet. Idempotent: the
    stored offsets say what is counted, so running it twice (or beside a live fleet) never counts a row twice.
    A restarted `roost serve` does this by itself at its first heartbeat."""
    from roost.cli.output import echo, print_json
    from roost.errors import RoostError
    from roost.registry.store import default_store
    from roost.serve import traffic

    if logs is None:
        from roost import workspace

        logs = workspace.current().root / ".roost" / "request_logs"
    if not logs.is_dir():
        raise RoostError(
            f"no request-log folder at {logs}",
            hint="pass the folder `roost serve --log-requests R --log-dir DIR` wrote to",
        )
    got = traffic.catch_up_dir(
        default_store("rolling up request logs"), ROLLUP_FLEET, logs, list(model or []) or None, days=days
    )
    if as_json:
        print_json({"log_dir": str(logs), "rows": got})
    else:
        echo(f"rolled up {got:,} request-log rows from {logs}" if got else f"nothing new to roll up in {logs}")
