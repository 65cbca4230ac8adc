"""`roost train CONFIG.yaml` and `roost tensorboard RUN_ID`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer


def train(
    config: Path | None = typer.Argument(None, help="Training config (YAML); omit with --resume."),
    set_: list[str] = typer.Option([], "--set", "-s", help="Override a config value: a.b=value (repeatable)."),
    resume: str | None = typer.Option(None, "--resume", help="Continue a killed run from its last checkpoint."),
    tensorboard: bool = typer.Option(False, "--tensorboard", help="Start TensorBoard on the run's logs; print URL."),
    experiment: str | None = typer.Option(
        None, "--experiment", "-e", help="Experiment of the run [default: the config's `experiment:`, else default]."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    nproc: str = typer.Option(
        "1",
        "--nproc",
        help="Data-parallel worker processes (torch elastic; gloo on CPU, NCCL on GPU). Under torchrun, leave it at 1.",
    ),
    time_budget: str | None = typer.Option(
        None,
        "--time-budget",
        help="model: auto's wall time: 60s, 5m, 1h or none [default: the config's `time_budget:`, else 60 s per "
        "200,000 cells].",
    ),
) -> None:
    """Train a model from a config; record the run, its metrics and the model package."""
    from roost.cli.output import echo, print_json, print_table
    from roost.errors import RoostError
    from roost.training.api import Interrupted, print_tensorboard_url
    from roost.training.api import train as run_train

    if config is None and not resume:
        raise RoostError("no config given", hint="roost train CONFIG.yaml, or roost train --resume RUN_ID")
    overrides = [*set_, f"experiment={experiment}"] if experiment else list(set_)
    if time_budget is not None:
        from roost.training.budget import parse_budget

        seconds = parse_budget(time_budget, "--time-budget")
        overrides.append(f"time_budget={'none' if seconds is None else seconds}")
    try:
        res = run_train(
            config,
            overrides=overrides,
            resume=resume,
            tensorboard=tensorboard,
            progress=not quiet and not as_json,
            announce=print_tensorboard_url,
            nproc=nproc,
        )
    except Interrupted as exc:
        sys.stderr.write(
            f"interrupted: run {exc.run_id} marked KILLED; last checkpoint kept\n"
            f"continue with: roost train --resume {exc.run_id}\n"
        )
        raise typer.Exit(130) from None
    if res is None:  # a rank other than 0 under torchrun: rank 0 reports
        return
    if as_json:
        print_json(
            {
                "run_id": res.run_id,
                "task": res.task,
                "model_type": res.model_type,
                "metrics": res.metrics,
                "package": str(res.package_path),
                "model": res.model_name,
                "version": res.version,
                "tensorboard_url": res.tensorboard_url,
                **_auto_json(res),
            }
        )
    else:
        rows = [(k, v) for k, v in res.metrics.items() if k.startswith("test_")]
        print_table(f"{res.model_type} · {res.task} · run {res.run_id}", ["metric", "value"], rows)
        _print_auto(res)
        echo(f"[dim]package:[/] {res.package_path}")
        if res.version is not None:
            echo(f"[dim]registered:[/] {res.model_name}/{res.version}")
    if res.tensorboard_process is not None:
        _serve_until_ctrl_c(res.tensorboard_process, res.tensorboard_url or "")


def _auto_json(res: Any) -> dict[str, Any]:
    """`model: auto`'s candidates for --json: type, weight, metrics (nothing for a single model)."""
    if not res.candidates:
        return {}
    weights = res.weights or {}
    cands = [{"model_type": c, "weight": weights.get(c), "metrics": m} for c, m in res.candidates.items()]
    return {
        "candidates": cands,
        "criterion": res.criterion,
        "skipped": res.skipped,
        "refit": res.refit,
        "time_budget_s": res.budget_s,
        "seconds": res.elapsed_s,
    }


def _print_auto(res: Any) -> None:
    """`model: auto`'s summary: each candidate's validation score and blend weight, then what was chosen."""
    from roost.cli.output import echo, print_table

    if not res.candidates:
        return
    key, weights = f"val_{res.primary}", res.weights or {}
    rows = [[c, f"{m.get(key, float('nan')):.4f}", f"{weights.get(c, 0.0):.2f}"] for c, m in res.candidates.items()]
    print_table(f"auto: {len(rows)} candidates", ["candidate", key, "weight"], rows)
    echo(f"[dim]selected:[/] {res.model_type} (weights by {res.criterion or 'validation'})")
    if res.refit:
        echo(f"[dim]refit:[/] {res.refit}; test_* is the held-out blend's score (fitted without the test rows)")
    budget = "none" if res.budget_s is None else f"{res.budget_s:.0f} s"
    echo(f"[dim]time:[/] {res.elapsed_s or 0:.0f} s (budget {budget})")
    for line in res.skipped:
        echo(f"[dim]skipped:[/] {line}")


def _interrupt_on_term() -> None:
    """SIGTERM and SIGHUP act as Ctrl-C: `timeout`, a test or a closed terminal must not leave TensorBoard behind."""
    import signal

    def _term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _term)


def _serve_until_ctrl_c(proc: object, url: str) -> None:
    """Keep TensorBoard running until Ctrl-C, SIGTERM or SIGHUP, then stop it (it runs in its own session)."""
    from roost.cli.output import echo
    from roost.training.tensorboard import stop

    _interrupt_on_term()
    echo(f"TensorBoard: {url}  [dim](Ctrl-C to stop)[/]")
    try:
        proc.wait()  # type: ignore[attr-defined]
    except KeyboardInterrupt:
        pass
    finally:
        stop(proc)  # type: ignore[arg-type]


def tensorboard(
    run_id: str = typer.Argument(..., help="Run whose TensorBoard logs to show."),
    port: int | None = typer.Option(None, "--port", help="Port [default: a free one]."),
) -> None:
    """Start TensorBoard on a run's event files, print its URL, serve until Ctrl-C."""
    from roost.training.tensorboard import run_logdir, start, stop

    _interrupt_on_term()  # before TensorBoard starts: whoever sees it answer may stop us at once
    proc = None
    try:
        proc, url = start(run_logdir(run_id), port=port)  # a stop while it starts is a clean stop too (exit 0)
        print(url, flush=True)
        _serve_until_ctrl_c(proc, url)
    except KeyboardInterrupt:
        pass
    finally:
        if proc is not None:
            stop(proc)


def register(app: typer.Typer) -> None:
    """Add `train` and `tensorboard` to the CLI."""
    app.command("train")(train)
    app.command("tensorboard")(tensorboard)
