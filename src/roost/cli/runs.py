"""`roost runs|experiments|models ...`: query the model repository."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer

from roost.cli.output import LIMIT, ORDER_BY

runs_app = typer.Typer(
    help="Runs: list, show, tag, delete, archive, restore, gc (RUN_ID may be a unique prefix).", no_args_is_help=True
)
exp_app = typer.Typer(help="Experiments.", no_args_is_help=True)
models_app = typer.Typer(help="Registered models, versions and aliases.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the runs, experiments and models groups."""
    app.add_typer(runs_app, name="runs")
    app.add_typer(exp_app, name="experiments")
    app.add_typer(models_app, name="models")
    app.command("gc")(gc_cmd)


def _short(run_id: str | None) -> str:
    return (run_id or "")[:8]


@runs_app.command("list")
def runs_list(
    experiment: str | None = typer.Option(None, "--experiment", "-e", help="experiment name"),
    filter: str | None = typer.Option(None, "--filter", "-f", help='e.g. "metrics.auc >= 0.9 AND params.lr < 0.1"'),
    order_by: str | None = typer.Option(None, "--order-by", help='e.g. "metrics.auc DESC"'),
    limit: int = typer.Option(50, "--limit", "-n"),
    columns: str | None = typer.Option(
        None,
        "--columns",
        help="comma-separated columns, e.g. test_roc_auc,params.lr (default: headline"
        " metrics, then params that vary; constant and empty columns hidden)",
    ),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    all_runs: bool = typer.Option(False, "--all", help="include archived runs"),
    deleted: bool = typer.Option(False, "--deleted", help="list deleted runs only (restorable until `roost gc`)"),
) -> None:
    """List runs matching a filter; a filter naming a metric/param/tag no run has gets a note on stderr."""
    from roost.cli.output import print_json
    from roost.registry import api

    stages = ("deleted",) if deleted else ("active", "archived") if all_runs else ("active",)
    runs = api.search_runs(
        filter=filter, experiment=experiment, order_by=order_by, limit=limit, warn_unknown=False, stages=stages
    )
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
        "lifecycle_stage",
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
    from roost.registry.backend import default_store

    lost = default_store().mark_lost(timeout)
    if as_json:
        print_json({"lost": lost})
        return
    echo(f"marked {len(lost)} run(s) LOST" + "".join(f"\n  {_short(r)}" for r in lost))


@contextlib.contextmanager
def _progress(label: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A Rich progress bar on stderr fed by (done, total) callbacks; None when disabled."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _stage_cmd(
    action: str,
    run_ids: list[str] | None,
    filter: str | None,
    experiment: str | None,
    older_than: str | None,
    dry_run: bool,
    yes: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Shared body of `roost runs delete|archive|restore`: select, confirm a selection by filter, change, report."""
    from dataclasses import asdict

    from roost.cli.output import echo, print_json
    from roost.errors import RoostError
    from roost.registry import api

    fn: dict[str, Callable[..., Any]] = {
        "delete": api.delete_runs,
        "archive": api.archive_runs,
        "restore": api.restore_runs,
    }
    kw: dict[str, Any] = {"run_ids": run_ids or None, "filter": filter, "experiment": experiment}
    kw["older_than"] = older_than
    if action != "restore":
        kw["force"] = force
    by_filter = not run_ids
    if not dry_run and by_filter and not yes:
        plan = fn[action](**kw, dry_run=True)
        if not plan.run_ids:
            echo(f"no run to {action}")
            return
        if not sys.stdin.isatty():
            raise RoostError(
                f"{len(plan.run_ids)} run(s) match; not changed without confirmation",
                hint=f"add --yes to {action} them (or --dry-run to list them)",
            )
        typer.confirm(f"{action} {len(plan.run_ids)} run(s)?", abort=True)
    with _progress(f"{action} runs", not as_json and not dry_run) as cb:
        res = fn[action](**kw, dry_run=dry_run, progress=cb)
    if as_json:
        print_json(asdict(res))
        return
    verb = {"delete": "deleted", "archive": "archived", "restore": "restored"}[action]
    lead = f"would be {verb}" if dry_run else verb
    echo(f"{len(res.run_ids)} run(s) {lead}" + "".join(f"\n  {r}" for r in res.run_ids[:20]))
    if len(res.run_ids) > 20:
        echo(f"  ... and {len(res.run_ids) - 20} more")
    if res.skipped_running:
        echo(f"{len(res.skipped_running)} RUNNING run(s) left alone (--force to include them)")
    if res.model_versions:
        echo("model version(s) registered from them: " + ", ".join(res.model_versions))
    if action == "delete" and res.run_ids and not dry_run:
        echo("restore with `roost runs restore RUN_ID`; `roost gc` removes deleted runs for good")


_IDS = typer.Argument(
    None, metavar="[RUN_ID]...", help="run ids or unique prefixes (or select with --filter/--experiment/--older-than)"
)
_FILTER = typer.Option(None, "--filter", "-f", help="e.g. \"params.lr < 0.01 and status = 'FAILED'\"")
_EXPERIMENT = typer.Option(None, "--experiment", "-e", help="experiment name")
_OLDER = typer.Option(None, "--older-than", help="runs started longer ago than this, e.g. 30d, 12h")
_DRY = typer.Option(False, "--dry-run", help="list what would change; change nothing")
_YES = typer.Option(False, "--yes", help="no confirmation for a selection by filter/experiment/age")
_JSON = typer.Option(False, "--json", help="machine-readable output")


@runs_app.command("delete")
def runs_delete(
    run_ids: list[str] | None = _IDS,
    filter: str | None = _FILTER,
    experiment: str | None = _EXPERIMENT,
    older_than: str | None = _OLDER,
    dry_run: bool = _DRY,
    yes: bool = _YES,
    force: bool = typer.Option(
        False, "--force", help="also RUNNING runs and runs a registered model version was made from"
    ),
    as_json: bool = _JSON,
) -> None:
    """Delete runs (soft: hidden from lists, search and UI; `roost runs restore` until `roost gc` removes them)."""
    _stage_cmd("delete", run_ids, filter, experiment, older_than, dry_run, yes, force, as_json)


@runs_app.command("archive")
def runs_archive(
    run_ids: list[str] | None = _IDS,
    filter: str | None = _FILTER,
    experiment: str | None = _EXPERIMENT,
    older_than: str | None = _OLDER,
    dry_run: bool = _DRY,
    yes: bool = _YES,
    force: bool = typer.Option(False, "--force", help="also RUNNING runs"),
    as_json: bool = _JSON,
) -> None:
    """Archive runs: kept as they are, hidden from default listings (`roost runs list --all` shows them)."""
    _stage_cmd("archive", run_ids, filter, experiment, older_than, dry_run, yes, force, as_json)


@runs_app.command("restore")
def runs_restore(
    run_ids: list[str] | None = _IDS,
    filter: str | None = _FILTER,
    experiment: str | None = _EXPERIMENT,
    older_than: str | None = _OLDER,
    dry_run: bool = _DRY,
    yes: bool = _YES,
    as_json: bool = _JSON,
) -> None:
    """Bring deleted (not yet garbage-collected) or archived runs back to the default listings."""
    _stage_cmd("restore", run_ids, filter, experiment, older_than, dry_run, yes, False, as_json)


def gc_cmd(
    older_than: str = typer.Option("0d", "--older-than", help="only runs deleted longer ago, e.g. 30d (0d: all)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="list what would be removed; remove nothing"),
    vacuum: bool = typer.Option(False, "--vacuum", help="then give the space back (SQLite VACUUM; PostgreSQL VACUUM)"),
    batch_size: int = typer.Option(100, "--batch-size", help="runs removed per transaction"),
    as_json: bool = _JSON,
) -> None:
    """Permanently remove deleted runs: their artifacts (local, S3), metrics, params and tags; resumable."""
    from dataclasses import asdict

    from roost.cli.output import echo, print_json
    from roost.registry import api

    with _progress("gc", not as_json and not dry_run) as cb:
        rep = api.gc(older_than, dry_run=dry_run, batch_size=batch_size, vacuum=vacuum, progress=cb)
    if as_json:
        print_json(asdict(rep))
        return
    lead = "would remove" if dry_run else "removed"
    echo(f"{lead} {len(rep.run_ids)} deleted run(s), artifacts of {rep.artifacts_removed}")
    if rep.resumed:
        echo(f"finished {rep.resumed} run(s) an interrupted gc had started")
    for kept in rep.artifacts_kept[:20]:
        echo(f"  artifacts kept: {kept}")
    if rep.size_before is not None and rep.size_after is not None:
        echo(f"store size {rep.size_before:,} → {rep.size_after:,} bytes")


@runs_app.command("import-mlflow")
def runs_import_mlflow(
    uri: str = typer.Argument(..., help="sqlite:///PATH/mlflow.db or an ./mlruns folder"),
    prefix: str = typer.Option("", "--prefix", help="put before each experiment name, e.g. 'mlflow/'"),
    include_deleted: bool = typer.Option(False, "--include-deleted", help="also import deleted runs (as deleted)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Import an MLflow store's experiments and runs (params, tags, metric history) in bulk; artifacts stay put."""
    from dataclasses import asdict

    from roost.cli.output import echo, print_json
    from roost.registry import importer
    from roost.registry.store import default_store

    report = importer.import_mlflow(
        uri, default_store("roost runs import"), prefix=prefix, include_deleted=include_deleted
    )
    if as_json:
        print_json(asdict(report))
        return
    echo(
        f"imported {report.runs} run(s) into {len(report.experiments)} experiment(s), "
        f"{report.metric_points} metric point(s); skipped {report.skipped_existing} already here, "
        f"{report.skipped_deleted} deleted, {report.skipped_nan_points} NaN point(s)"
    )


@exp_app.command("list")
def experiments_list(
    limit: int | None = LIMIT,
    order_by: str | None = ORDER_BY,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List experiments with their run counts."""
    from roost.cli.output import print_json, print_table, sort_limit
    from roost.registry import api

    exps = sort_limit(api.list_experiments(), order_by, limit)
    if as_json:
        print_json(exps)
        return
    print_table(
        "experiments",
        ["id", "name", "runs", "created"],
        [[e["id"], e["name"], e["runs"], e["created_at"]] for e in exps],
    )


@models_app.command("list")
def models_list(
    limit: int | None = LIMIT,
    order_by: str | None = ORDER_BY,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List registered models with their latest version and aliases."""
    from roost.cli.output import print_json, print_table, sort_limit
    from roost.registry import api

    ms = sort_limit(api.list_models(), order_by, limit)
    if as_json:
        print_json(ms)
        return
    print_table(
        "models",
        ["name", "latest", "aliases"],
        [[m["name"], m["latest_version"], ", ".join(f"{a}→{v}" for a, v in sorted(m["aliases"].items()))] for m in ms],
    )


@models_app.command("versions")
def models_versions(
    name: str,
    limit: int | None = LIMIT,
    order_by: str | None = ORDER_BY,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List the versions of a model (newest first unless --order-by)."""
    from roost.cli.output import print_json, sort_limit
    from roost.registry import api

    vs = sort_limit(api.list_versions(name), order_by, limit, lambda v: v.to_dict())
    if as_json:
        print_json([v.to_dict() for v in vs])
        return
    from roost.cli.versions_table import print_versions

    print_versions(name, vs)  # headline metric first, fitted to the terminal (#37)


@models_app.command("alias")
def models_alias(
    name: str = typer.Argument(..., metavar="NAME", help="the registered model"),
    version: str = typer.Argument(..., metavar="VERSION", help="the version to point at (with --delete: optional)"),
    alias: str | None = typer.Argument(None, metavar="ALIAS"),
    delete: bool = typer.Option(
        False, "--delete", help="remove NAME@ALIAS instead (NAME ALIAS, or NAME VERSION ALIAS)"
    ),
    as_json: bool = typer.Option(False, "--json", help='print {"name", "alias", "version", "changed"}'),
) -> None:
    """Point NAME@ALIAS at VERSION (recorded in the alias history); with --delete remove it — given a VERSION, only
    if the alias still points there."""
    from roost.cli.output import echo, print_json
    from roost.errors import RoostError
    from roost.registry import api, modelreg
    from roost.registry.backend import default_store

    if alias is None and not delete:
        raise RoostError(f"roost models alias {name} {version}: give NAME VERSION ALIAS", hint="or --delete NAME ALIAS")
    if delete:
        target, expected = (version, None) if alias is None else (alias, version)
        if expected is not None:
            current = api.resolve_model(f"{name}@{target}").version
            if current != modelreg.version_number(expected):
                raise RoostError(
                    f"{name}@{target} points at version {current}, not {expected}: not removed",
                    hint=f"roost models alias {name} {target} --delete removes it whatever it points at",
                )
        default_store().delete_alias(name, target)
        if as_json:
            print_json({"name": name, "alias": target, "version": None, "changed": True})
            return
        echo(f"removed {name}@{target}")
        return
    assert alias is not None
    from roost.model_import.deferred import set_alias  # a version logged for packaging later is built first

    changed = set_alias(name, modelreg.version_number(version), alias)
    if as_json:
        print_json({"name": name, "alias": alias, "version": modelreg.version_number(version), "changed": changed})
        return
    if not changed:
        echo(f"{name}@{alias} already points at version {version}: nothing changed (no move recorded)")
        return
    echo(f"{name}@{alias} → version {version}")


@models_app.command("show")
def models_show(ref: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show a model version: NAME@ALIAS, NAME/VERSION or NAME (latest)."""
    from roost.cli.output import print_json, print_table
    from roost.registry import api
    from roost.registry.backend import default_store

    v = api.resolve_model(ref)
    hist = default_store().alias_history(v.name)
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


@runs_app.command("import-tb")
def runs_import_tb(
    logdir: Path = typer.Argument(..., help="the folder TensorBoard reads (each sub-folder with event files: a run)"),
    experiment: str = typer.Option("tensorboard", "--experiment", "-e", help="experiment of the imported runs"),
    prefix: str = typer.Option("", "--prefix", help="put before each run name"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Import TensorBoard event files (scalars, hparams) as runs; folders imported before are skipped."""
    from dataclasses import asdict

    from roost.cli.output import echo, print_json
    from roost.registry.backend import default_store
    from roost.registry.tb_import import import_tensorboard

    report = import_tensorboard(logdir, default_store(), experiment=experiment, prefix=prefix)
    if as_json:
        print_json(asdict(report))
        return
    echo(
        f"imported {len(report.runs)} run(s) into {experiment!r}, {report.metric_points:,} metric point(s); "
        f"skipped {len(report.skipped)} folder(s) imported before, {report.skipped_nonfinite} non-finite point(s)"
    )
