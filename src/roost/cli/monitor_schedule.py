"""`roost monitor schedule`: declare monitor checks on a cadence, run the due ones (--once), export Airflow DAGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

app_ = typer.Typer(
    name="schedule",
    help="Monitor checks on a cadence (pipeline runner or Airflow); --once runs the due ones now.",
    invoke_without_command=True,
)


@app_.callback()
def schedule_main(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="Run the checks that are due now, then exit."),
    name: list[str] | None = typer.Option(None, "--name", help="Only these schedules (with --once)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Without a subcommand: list the schedules, or with --once run the due checks (not-due ones are skipped)."""
    if ctx.invoked_subcommand is not None:
        return
    from roost.cli.output import echo, print_json, print_table
    from roost.pipeline import monitor_schedule as ms

    if not once:
        _list(as_json)
        return
    done = ms.run_due(names=list(name or []) or None)
    if as_json:
        print_json(done)
        return
    rows = []
    for d in done:
        checks = d.get("checks") or {}
        what = ", ".join(f"{c}: {o.get('verdict')} ({str(o.get('run_id'))[:8]})" for c, o in checks.items())
        errs = "; ".join(f"{c}: {e}" for c, e in (d.get("errors") or {}).items())
        rows.append([d["name"], d["status"], what or d.get("reason", ""), errs])
    print_table("monitor schedules", ["schedule", "status", "checks (monitor run)", "errors"], rows)
    if not done:
        echo("no monitor schedules: roost monitor schedule add MODEL --check drift --every 60")
    if any(d["status"] not in ("FINISHED", "skipped") for d in done):
        raise typer.Exit(1)


def _list(as_json: bool) -> None:
    from roost.cli.output import print_json, print_table
    from roost.pipeline import monitor_schedule as ms

    found = ms.schedules()
    if as_json:
        print_json(found)
        return
    print_table(
        "monitor schedules",
        ["name", "model", "checks", "cadence", "last run (UTC)", "due now"],
        [
            [
                n,
                s["model"],
                ", ".join(s["checks"]),
                f"every {s['every_minutes']:g} min" if s.get("every_minutes") is not None else f"cron {s['cron']}",
                (s.get("last_run") or "never")[:16].replace("T", " "),
                "yes" if ms.is_due(s) else "no",
            ]
            for n, s in found.items()
        ],
    )


@app_.command("add")
def add_cmd(
    model: str = typer.Argument(..., help="The registered model to watch."),
    check: list[str] = typer.Option(..., "--check", help="drift, skew, shadow or analysis (repeat)."),
    every: float | None = typer.Option(None, "--every", help="Run every N minutes."),
    cron: str | None = typer.Option(None, "--cron", help="Or a 5-field cron expression (UTC), e.g. '*/15 * * * *'."),
    name: str | None = typer.Option(None, "--name", help="Schedule name [the model's]."),
    reference: str | None = typer.Option(None, "--reference", help="drift: reference [MODEL@latest's training data]."),
    current: str | None = typer.Option(None, "--current", help="drift: current data [the workspace's request logs]."),
    logs: str | None = typer.Option(None, "--logs", help="skew/shadow: request-log folder [the workspace's]."),
    log_model: str | None = typer.Option(None, "--log-model", help="The model's folder in the request logs [MODEL]."),
    window: float | None = typer.Option(None, "--window", help="Only requests of the last N minutes [all]."),
    threshold: float | None = typer.Option(None, "--threshold", help="drift: threshold for the method."),
    max_mismatch: float | None = typer.Option(None, "--max-mismatch", help="skew: threshold per feature [0.01]."),
    min_agreement: float | None = typer.Option(None, "--min-agreement", help="shadow: minimum agreement."),
    data: str | None = typer.Option(None, "--data", help="analysis: labelled data, or logs with --labels."),
    labels: str | None = typer.Option(None, "--labels", help="analysis: delayed labels to join."),
    label: str | None = typer.Option(None, "--label", help="analysis: label column."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Declare (or replace) a schedule of monitor checks for a model."""
    from roost.cli.output import echo, print_json
    from roost.pipeline import monitor_schedule as ms

    given: dict[str, Any] = {
        "reference": reference,
        "current": current,
        "logs": logs,
        "log_model": log_model,
        "window_minutes": window,
        "threshold": threshold,
        "max_mismatch": max_mismatch,
        "min_agreement": min_agreement,
        "data": data,
        "labels": labels,
        "label": label,
    }
    checks = [c.strip() for item in check for c in item.split(",") if c.strip()]
    opts = {c: {k: v for k, v in given.items() if v is not None and k in ms.OPTIONS.get(c, set())} for c in checks}
    spec = ms.declare(model, checks, every, cron, name, opts)
    if as_json:
        print_json(spec)
        return
    cadence = f"every {spec['every_minutes']:g} min" if spec["every_minutes"] is not None else f"cron {spec['cron']}"
    echo(f"monitor schedule {spec['name']}: {', '.join(spec['checks'])} of {model}, {cadence}")


@app_.command("remove")
def remove_cmd(
    name: str = typer.Argument(..., help="The schedule's name."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Forget a schedule."""
    from roost.cli.output import echo, print_json
    from roost.pipeline import monitor_schedule as ms

    ms.remove(name)
    if as_json:
        print_json({"removed": name})
        return
    echo(f"removed monitor schedule {name}")


@app_.command("export")
def export_cmd(
    airflow: Path = typer.Option(..., "--airflow", help="Folder to write one Airflow DAG file per schedule into."),
) -> None:
    """Write the schedules as Airflow DAGs (their cadence as each DAG's schedule)."""
    from roost.cli.output import echo
    from roost.pipeline import monitor_schedule as ms

    for p in ms.export_dags(airflow):
        echo(f"wrote {p}")
