"""`roost tune CONFIG.yaml ...`, `roost tune serve`, `roost tune show STUDY`: hyperparameter tuning."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup


class _RunByDefault(TyperGroup):
    """`roost tune CONFIG ...` means `roost tune run CONFIG ...`."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """Show both forms in the usage line: the config shorthand and the subcommands."""
        return ["[CONFIG.yaml [RUN OPTIONS] | COMMAND [ARGS]...]"]

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """Route a first argument that is not a subcommand to `run`."""
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().resolve_command(ctx, args)


tune_app = typer.Typer(
    cls=_RunByDefault,
    no_args_is_help=True,
    help="Tune hyperparameters. `roost tune CONFIG.yaml --trials N` is short for `roost tune run CONFIG.yaml "
    "--trials N` (see `roost tune run --help` for its options); `serve` runs the ask/tell service, `show` lists "
    "studies or shows one (id prefixes work).",
)


def register(app: typer.Typer) -> None:
    """Add the tune group."""
    app.add_typer(tune_app, name="tune")


def _fmt(v: Any) -> str:
    """A compact cell."""
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.5g}"
    return str(v)


def trials_table(study: dict[str, Any], limit: int = 25) -> Any:
    """A Rich table of a study's trials (the latest `limit`, plus the best)."""
    from rich.table import Table

    trials = study["trials"]
    names = list(study["space"])[:6]
    best = study.get("best_trial")
    c = study["counts"]
    t = Table(
        title=f"study {study['id']} · {study['sampler_used']} · {study['direction']} {study['objective']}",
        caption=f"{c['COMPLETE']} complete · {c['PRUNED']} pruned · {c['FAIL']} failed · "
        f"{c['RUNNING']} running" + (f" · best {_fmt(best['value'])} (#{best['number']})" if best else ""),
    )
    for col in ("#", "state", "value", *names, "steps"):
        t.add_column(col, overflow="fold")
    shown = trials[-limit:]
    if best is not None and all(x["number"] != best["number"] for x in shown):
        shown = [best, *shown]
    colour = {"COMPLETE": "green", "PRUNED": "yellow", "FAIL": "red", "RUNNING": "cyan", "WAITING": "dim"}
    for x in shown:
        star = " ★" if best is not None and x["number"] == best["number"] else ""
        t.add_row(
            f"{x['number']}{star}",
            f"[{colour[x['state']]}]{x['state'].lower()}[/]",
            _fmt(x["value"]),
            *[_fmt(x["params"].get(n)) for n in names],
            str(len(x.get("intermediate") or {})),
        )
    return t


def _live(engine: Any, sid: str) -> Any:
    """A Rich live view of the study, refreshed from the store twice a second."""
    from rich.live import Live

    return Live(get_renderable=lambda: trials_table(engine.study(sid)), refresh_per_second=2)


@tune_app.command("run")
def run_cmd(
    config: str = typer.Argument(..., help="training config (no search: block = the model's prescribed space)"),
    trials: int = typer.Option(20, "--trials", "-n", help="number of trials"),
    parallel: int | None = typer.Option(
        None, "--parallel", "-j", help="trials at once (default: 1 locally, the cluster's CPUs on Ray)"
    ),
    sampler: str | None = typer.Option(None, "--sampler", help="auto | grid | random | tpe | gp"),
    prune: str | None = typer.Option(None, "--prune", help="none | median | hyperband"),
    seed: int | None = typer.Option(None, "--seed"),
    register_as: str | None = typer.Option(None, "--register", help="register the best model under this name"),
    experiment: str | None = typer.Option(
        None, "--experiment", "-e", help="experiment of the tuning run and its trials [default: the config's]"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
    backend: str = typer.Option("local", "--backend", help="local (worker processes) | ray (one Ray task a trial)"),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="Ray cluster HOST:PORT (default: RAY_ADDRESS or a local Ray)"
    ),
) -> None:
    """Tune a training config: each trial is a child run of one tuning run; Ctrl-C keeps finished trials."""
    from roost.cli.output import echo, print_json
    from roost.tune import config as C

    spec = C.load(config)
    if experiment:
        spec.experiment = experiment
    if not as_json:
        echo(f"searching the {spec.source}, {trials} trial(s):")
        for line in C.describe_space(spec.space):
            echo(f"  {line}")
        if spec.start:
            echo(f"  first {min(len(spec.start), trials)} trial(s): the model defaults")

    res = C.tune_config(
        spec,
        trials,
        parallel=parallel,
        sampler=sampler,
        prune=prune,
        seed=seed,
        register=register_as,
        display=None if as_json else _live,
        backend=backend,
        ray_address=ray_address,
    )
    per_type = C.best_by_type(res.trials, spec.direction)
    done = [t for t in res.trials if t["state"] in ("COMPLETE", "PRUNED", "FAIL")]
    if as_json:
        print_json(
            {
                "study_id": res.study_id,
                "parent_run_id": res.parent_run_id,
                "sampler": res.sampler,
                "best": res.best,
                "finished": len(done),
                "interrupted": res.interrupted,
                "registered": res.registered,
                "final": res.final,
                "space_source": spec.source,
                "space": spec.space,
                "by_model_type": {k: {"trials": n, "best": b} for k, (n, b) in per_type.items()},
            }
        )
    else:
        echo("")
        echo(
            f"study [bold]{res.study_id}[/] · tuning run {res.parent_run_id} · sampler {res.sampler} · "
            f"{len(done)} trial(s) finished" + (" · [yellow]interrupted[/]" if res.interrupted else "")
        )
        for mt, (n, b) in per_type.items():
            echo(f"  {mt}: {n} trial(s), best {spec.metric} " + ("-" if b is None else f"{b:.6g}"))
        if res.best is not None:
            echo(
                f"best {spec.metric} = [bold]{res.best_value:.6g}[/] (trial {res.best['number']}, run "
                f"{res.best_run_id}) with {res.best_params}"
            )
        if res.final:
            blend = ", ".join(f"trial {n} × {w:.3f}" for n, w in res.final["weights"].items())
            echo(
                f"final model (tuning run {res.final['run_id']}): blend of {blend} by {res.final['criterion']}: "
                f"{spec.metric} {res.final['metrics'].get(spec.metric, float('nan')):.6g}"
            )
        if res.registered:
            echo(f"registered [bold]{res.registered}[/]")
    if res.interrupted:
        raise typer.Exit(130)


@tune_app.command("serve")
def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="bind address (loopback by default)"),
    port: int = typer.Option(8765, "--port"),
    token: str | None = typer.Option(None, "--token", envvar="ROOST_TUNE_TOKEN", help="require this bearer token"),
    allow_host: list[str] | None = typer.Option(
        None, "--allow-host", help="also answer this Host name, repeatable ('*' = any); see docs/security.md"
    ),
) -> None:
    """Run the ask/tell service; studies persist in the workspace's repository store."""
    from roost import workspace
    from roost.cli.output import echo
    from roost.tune.service import serve

    ws = workspace.current()
    echo(f"roost tune service on http://{host}:{port} (store {ws.store_url})")
    serve(host=host, port=port, token=token, allow_hosts=allow_host or ())


@tune_app.command("show")
def show_cmd(
    study: str | None = typer.Argument(None, help="study id or a unique prefix (omit to list studies)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show a study's trials and best trial, or list studies."""
    from rich.console import Console

    from roost.cli.output import print_json, print_table
    from roost.tune.remote import open_engine

    eng = open_engine()
    if study is None:
        studies = eng.list_studies()
        if as_json:
            print_json(studies)
            return
        print_table(
            f"{len(studies)} stud(ies)",
            ["id", "name", "sampler", "objective", "direction", "trials"],
            [
                [s["id"], s["name"], s["sampler_used"], s["objective"], s["direction"], s["next_number"]]
                for s in studies
            ],
        )
        return
    st = eng.study(eng.resolve_study(study))
    if as_json:
        print_json(st)
        return
    Console(soft_wrap=True).print(trials_table(st, limit=10_000))
