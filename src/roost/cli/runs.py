"""`roost runs|experiments|models ...`: query the model repository."""

from __future__ import annotations

import sys

import typer

runs_app = typer.Typer(help="Runs: list, show, tag, gc, delete (RUN_ID may be a unique prefix).", no_args_is_help=True)
exp_app = typer.Typer(help="Experiments.", no_args_is_help=True)
models_app = typer.Typer(help="Registered models, versions and aliases.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the runs, experiments and models groups."""
    app.add_typer(runs_app, name="runs")
    app.add_typer(exp_app, name="experiments")
    app.add_typer(models_app, name="models")


def _short(run_id: str | None) -> str:
    return (run_id or "")[:8]


@runs_app.command("list")
def runs_list(
    experiment: str | None = typer.Option(None, "--experiment", "-e", help="experiment name"),
    filter: str | None = typer.Option(None, "--filter", "-f", help='e.g. "metrics.auc >= 0.9 AND params.lr < 0.1"'),
    order_by: str | None = typer.Option(None, "--order-by", help='e.g. "metrics.auc DESC"'),
    order_by_old: str | None = typer.Option(None, "-o", hidden=True, help="Deprecated spelling of --order-by."),
    limit: int = typer.Option(50, "--limit", "-n"),
    columns: str | None = typer.Option(
        None,
        "--columns",
        help="comma-separated columns, e.g. test_roc_auc,params.lr (default: headline"
        " metrics, then params that vary; constant and empty columns hidden)",
    ),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """List runs matching a filter; a filter naming a metric/param/tag no run has gets a note on stderr."""
    from roost.cli.output import deprecated, print_json
    from roost.registry import api

    order_by = deprecated("-o", "--order-by", order_by_old, order_by)
    runs = api.search_runs(filter=filter, experiment=experiment, order_by=order_by, limit=limit, warn_unknown=False)
    for note in api.filter_notices(filter, experiment):
        sys.stderr.write(f"note: {note}\n")
    if as_json:
        print_json(runs)
        return
    from roost.cli.runs_table import print_runs

    print_runs(runs, columns)


@runs_app.command("show")
def runs_show(run_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show one run: attributes, params, metrics, tags, artifacts."""
    from roost import artifacts
    from roost.cli.output import print_json, print_table
    from roost.registry import api

    r = api.get_run(run_id)
    files = artifacts.list_files(r["artifact_uri"])
    if as_json:
        print_json({**r, "artifacts": files})
        return
    attrs = [
        "run_id",
        "name",
        "experiment",
        "status",
        "start_time",
        "end_time",
        "user",
        "git_commit",
        "git_dirty",
        "source",
        "parent_run_id",
        "artifact_uri",
        "heartbeat_at",
    ]
    print_table(f"run {r['run_id']}", ["field", "value"], [[a, r[a]] for a in attrs])
    if r["params"]:
        print_table("params", ["key", "value"], sorted(r["params"].items()))
    if r["metrics"]:
        print_table("metrics (latest)", ["key", "value"], sorted(r["metrics"].items()))
    if r["tags"]:
        print_table("tags", ["key", "value"], sorted(r["tags"].items()))
    if files:
        print_table("artifacts", ["path", "bytes"], [[f["path"], f["size"]] for f in files])


@runs_app.command("tag")
def runs_tag(
    run_id: str = typer.Argument(..., help="run id or a unique prefix"),
    tags: list[str] | None = typer.Argument(None, help="KEY=VALUE pairs to set"),
    delete: list[str] | None = typer.Option(None, "--delete", help="remove this tag (repeatable)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Set or remove tags on a run (finished or not), e.g. `roost runs tag 3f2a reviewed=yes`."""
    from roost.cli.output import echo, print_json
    from roost.errors import RoostError
    from roost.registry import api

    pairs = {}
    for item in tags or []:
        if "=" not in item:
            raise RoostError(f"tag {item!r}: expected key=value", hint="e.g. roost runs tag RUN_ID reviewed=yes")
        key, value = item.split("=", 1)
        pairs[key.strip()] = value
    if not pairs and not delete:
        raise RoostError("nothing to tag", hint="give KEY=VALUE pairs or --delete KEY")
    r = api.tag_run(run_id, pairs, delete=list(delete or []))
    if as_json:
        print_json({"run_id": r["run_id"], "tags": r["tags"]})
        return
    echo(f"run {_short(r['run_id'])}: " + ", ".join(f"{k}={v}" for k, v in sorted(r["tags"].items())))


@runs_app.command("upload-staged")
def runs_upload_staged(run_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Upload the artifacts a run kept in .roost/staging when its upload to a remote store failed."""
    from roost.cli.output import echo, print_json
    from roost.registry import api

    sent = api.upload_staged(run_id)
    if as_json:
        print_json({"run_id": api.get_run(run_id)["run_id"], "uploaded": sent})
    else:
        echo(f"uploaded {len(sent)} file(s) of run {_short(api.get_run(run_id)['run_id'])}")


@runs_app.command("gc")
def runs_gc(
    timeout: float | None = typer.Option(
        None, "--timeout", help="seconds without a heartbeat (default: ROOST_HEARTBEAT_TIMEOUT_S or 300)"
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Mark RUNNING runs whose process stopped sending heartbeats (killed, crashed machine) as LOST."""
    from roost.cli.output import echo, print_json
    from roost.registry.store import default_store

    lost = default_store().mark_lost(timeout)
    if as_json:
        print_json({"lost": lost})
        return
    echo(f"marked {len(lost)} run(s) LOST" + "".join(f"\n  {_short(r)}" for r in lost))


@runs_app.command("delete")
def runs_delete(run_id: str) -> None:
    """Delete a run and everything logged to it."""
    from roost.cli.output import echo
    from roost.registry import api

    full = api.get_run(run_id)["run_id"]
    api.delete_run(full)
    echo(f"deleted run {full}")


@runs_app.command("import-mlflow")
def runs_import_mlflow(
    uri: str = typer.Argument(..., help="sqlite:///PATH/mlflow.db or an ./mlruns folder"),
    prefix: str = typer.Option("", "--prefix", help="put before each experiment name, e.g. 'mlflow/'"),
    include_deleted: bool = typer.Option(False, "--include-deleted", help="also import runs MLflow marked deleted"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Import an MLflow store's experiments and runs (params, tags, metric history) in bulk; artifacts stay put."""
    from dataclasses import asdict

    from roost.cli.output import echo, print_json
    from roost.registry import importer
    from roost.registry.store import default_store

    report = importer.import_mlflow(uri, default_store(), prefix=prefix, include_deleted=include_deleted)
    if as_json:
        print_json(asdict(report))
        return
    echo(
        f"imported {report.runs} run(s) into {len(report.experiments)} experiment(s), "
        f"{report.metric_points} metric point(s); skipped {report.skipped_existing} already here, "
        f"{report.skipped_deleted} deleted, {report.skipped_nan_points} NaN point(s)"
    )


@exp_app.command("list")
def experiments_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List experiments with their run counts."""
    from roost.cli.output import print_json, print_table
    from roost.registry import api

    exps = api.list_experiments()
    if as_json:
        print_json(exps)
        return
    print_table(
        "experiments",
        ["id", "name", "runs", "created"],
        [[e["id"], e["name"], e["runs"], e["created_at"]] for e in exps],
    )


@models_app.command("list")
def models_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List registered models with their latest version and aliases."""
    from roost.cli.output import print_json, print_table
    from roost.registry import api

    ms = api.list_models()
    if as_json:
        print_json(ms)
        return
    print_table(
        "models",
        ["name", "latest", "aliases"],
        [[m["name"], m["latest_version"], ", ".join(f"{a}→{v}" for a, v in sorted(m["aliases"].items()))] for m in ms],
    )


@models_app.command("versions")
def models_versions(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """List the versions of a model."""
    from roost.cli.output import print_json, print_table
    from roost.registry import api

    vs = api.list_versions(name)
    if as_json:
        print_json([v.to_dict() for v in vs])
        return
    mkeys = sorted({k for v in vs for k in ((v.meta or {}).get("metrics") or {})})[:5]
    print_table(
        f"{name}: {len(vs)} version(s)",
        ["version", "aliases", "run", "created", *mkeys],
        [
            [
                v.version,
                ", ".join(v.aliases),
                _short(v.run_id),
                v.created_at,
                *[((v.meta or {}).get("metrics") or {}).get(k) for k in mkeys],
            ]
            for v in vs
        ],
    )


@models_app.command("alias")
def models_alias(
    name: str, version: int, alias: str, delete: bool = typer.Option(False, "--delete", help="remove the alias instead")
) -> None:
    """Point NAME@ALIAS at VERSION (recorded in the alias history)."""
    from roost.cli.output import echo
    from roost.registry import api, modelreg
    from roost.registry.store import default_store

    if delete:
        modelreg.delete_alias(default_store(), name, alias)
        echo(f"removed {name}@{alias}")
        return
    api.set_alias(name, version, alias)
    echo(f"{name}@{alias} → version {version}")


@models_app.command("show")
def models_show(ref: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show a model version: NAME@ALIAS, NAME/VERSION or NAME (latest)."""
    from roost.cli.output import print_json, print_table
    from roost.registry import api, modelreg
    from roost.registry.store import default_store

    v = api.resolve_model(ref)
    hist = modelreg.alias_history(default_store(), v.name)
    if as_json:
        print_json({**v.to_dict(), "alias_history": hist})
        return
    meta = v.meta or {}
    rows: list[list[object]] = [
        ["name", v.name],
        ["version", v.version],
        ["aliases", ", ".join(v.aliases)],
        ["run", v.run_id],
        ["source", v.source],
        ["local path", v.local_path],
        ["created", v.created_at],
    ]
    for k in ("framework", "model_type", "task", "label", "parity_max_abs_diff"):
        if k in meta:
            rows.append([k, meta[k]])
    print_table(f"{v.name}/{v.version}", ["field", "value"], rows)
    if meta.get("metrics"):
        print_table("metrics", ["key", "value"], sorted(meta["metrics"].items()))
    if v.signature:
        print_table(
            "signature",
            ["io", "name", "dtype", "shape"],
            [
                [io, t["name"], t.get("dtype"), t.get("shape")]
                for io in ("inputs", "outputs")
                for t in v.signature.get(io, [])
            ],
        )
