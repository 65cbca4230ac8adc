"""`roost pipeline run|show|export`: DAGs of ML tasks, run locally with caching or exported to Airflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

app_ = typer.Typer(
    help="Pipelines: run locally (cached, parallel, retried), show, export to Airflow.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add the pipeline group."""
    app.add_typer(app_, name="pipeline")


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """`-p key=value` pairs (values parsed as YAML scalars)."""
    import yaml

    from roost.errors import RoostError

    out = {}
    for item in items or []:
        if "=" not in item:
            raise RoostError(f"-p {item!r}: expected key=value", hint="e.g. -p rows=20000")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v) if v else ""
    return out


@app_.command("run")
def run_cmd(
    file: Path,
    param: list[str] | None = typer.Option(None, "-p", "--param", help="key=value"),
    parallel: int = typer.Option(4, "--parallel", "-j", help="tasks run at once"),
    no_cache: bool = typer.Option(False, "--no-cache", help="ignore cached task outputs"),
    experiment: str = typer.Option("pipelines", "--experiment", "-e", help="experiment of the pipeline's runs"),
    as_json: bool = typer.Option(False, "--json", help="print the pipeline run and its task runs as JSON"),
) -> None:
    """Run a pipeline locally; independent tasks in parallel, retries, cached outputs."""
    from rich.console import Console

    from roost.pipeline.loader import load_pipeline
    from roost.pipeline.runner import TaskState, run_pipeline

    con = Console(stderr=True, highlight=False)
    p = load_pipeline(file)
    colors = {"succeeded": "green", "cached": "cyan", "failed": "red", "skipped": "yellow", "retry": "magenta"}

    def event(ev: str, st: TaskState) -> None:
        if ev == "start":
            con.print(f"  [dim]…[/] {st.name} (attempt {st.attempts})")
        else:
            extra = f"  {st.error}" if st.error and ev in ("failed", "skipped", "retry") else ""
            con.print(f"  [{colors.get(ev, 'white')}]{ev:9s}[/] {st.name} {st.seconds:.1f}s{extra}")

    res = run_pipeline(
        p, parse_params(param), parallel=parallel, use_cache=not no_cache, experiment=experiment, on_event=event
    )
    _show(res.run_id, as_json)
    if res.status != "FINISHED":
        raise typer.Exit(1)


def _show(run_id: str, as_json: bool = False) -> None:
    from rich.markup import escape

    from roost.cli.output import echo, print_json, print_table
    from roost.registry import api

    prun = api.get_run(run_id)
    kids = api.search_runs(f"parent_run_id = '{prun['run_id']}'", limit=None, order_by="start_time")
    if as_json:
        print_json({**prun, "tasks": kids})
        return
    rows = [
        [
            k["tags"].get("roost.task"),
            k["tags"].get("roost.task.state", k["status"].lower()),
            k["tags"].get("roost.task.attempts", ""),
            k["metrics"].get("task_seconds"),
            (k["tags"].get("roost.task.error") or "")[:80],
            k["run_id"][:8],
        ]
        for k in kids
    ]
    print_table(
        f"pipeline {prun['name']} · run {prun['run_id'][:8]} · {prun['status']}",
        ["task", "state", "attempts", "seconds", "error", "task run"],
        rows,
    )
    for k in kids:  # what each task did (e.g. which version promote moved the alias to), one line each
        if k["tags"].get("roost.task.summary"):
            echo(escape(f"{k['tags'].get('roost.task')}: {k['tags']['roost.task.summary']}"))


@app_.command("show")
def show_cmd(
    run_id: str,
    as_json: bool = typer.Option(False, "--json", help="print the pipeline run and its task runs as JSON"),
) -> None:
    """Show a pipeline run and its task runs."""
    _show(run_id, as_json)


@app_.command("export")
def export_cmd(
    file: Path,
    airflow: Path = typer.Option(..., "--airflow", help="DAG file to write"),
    param: list[str] | None = typer.Option(None, "-p", "--param"),
) -> None:
    """Write an Airflow DAG file running the pipeline task by task with roost's interpreter."""
    from roost import workspace
    from roost.cli.output import echo
    from roost.pipeline.airflow import export_airflow
    from roost.pipeline.loader import load_pipeline

    p = load_pipeline(file)
    out = export_airflow(p, file, airflow, workspace.current().root, parse_params(param))
    echo(f"wrote {out} (dag_id roost_{p.name})")
