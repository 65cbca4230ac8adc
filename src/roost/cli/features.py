"""`roost features apply|list|materialize|push|compact|serve|get`: the feature store from the command line."""

from __future__ import annotations

import typer

features_app = typer.Typer(
    help="Feature store: apply definitions, materialise, read online values.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add the `features` group."""
    app.add_typer(features_app, name="features")
    from roost.cli.features_stream import register as register_stream

    register_stream(features_app)


@features_app.command("apply")
def apply_cmd(
    folder: str | None = typer.Option(None, "--dir", help="definitions folder (default: <workspace>/features)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="validate and print the diff without registering"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Validate feature definitions and register them; prints what was added, changed and removed."""
    from roost.cli.output import echo, print_json
    from roost.features.apply import apply

    d = apply(folder, dry_run=dry_run)
    if as_json:
        print_json({**d.as_dict(), "dry_run": dry_run})
        return
    if d.empty:
        echo("no changes: the registered definitions match the files")
        return
    colors = {"+": "green", "~": "yellow", "-": "red"}
    for line in d.lines():
        c = colors[line[0]]
        echo(f"[{c}]{line}[/]")
    if dry_run:
        echo("(dry run: nothing registered)")


@features_app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """List registered entities, sources, feature views (with their watermarks) and request views."""
    from roost.cli.output import print_json, print_table
    from roost.features.apply import list_definitions

    defs = list_definitions()
    if as_json:
        print_json(defs)
        return
    print_table(
        "entities",
        ["entity", "join keys"],
        [[n, ", ".join(f"{k}: {t}" for k, t in s["join_keys"].items())] for n, s in defs["entity"].items()],
    )
    print_table(
        "sources",
        ["source", "path / sql", "event time", "created time"],
        [
            [n, s.get("path") or s.get("sql"), s.get("event_time") or "(static)", s.get("created_time") or ""]
            for n, s in defs["source"].items()
        ],
    )
    rows = []
    for n, s in defs["view"].items():
        tr = (s.get("transform") or {}).get("kind", "")
        wm = (defs["watermark"].get(n) or {}).get("watermark", "")
        rows.append(
            [
                n,
                ", ".join(s["entities"]),
                ", ".join(f"{f}: {t}" for f, t in s["fields"].items()),
                "" if s.get("ttl_seconds") is None else _ttl(s["ttl_seconds"]),
                tr,
                wm,
            ]
        )
    print_table("feature views", ["view", "entities", "fields", "ttl", "transform", "materialized up to"], rows)
    requests = defs.get("request_view") or {}
    if requests:
        print_table(
            "request views (computed per request)",
            ["view", "request fields", "sources", "fields", "transform"],
            [
                [
                    n,
                    ", ".join(f"{f}: {t}" for f, t in s["request"].items()),
                    ", ".join(s["sources"]),
                    ", ".join(f"{f}: {t}" for f, t in s["fields"].items()),
                    (s.get("transform") or {}).get("function", ""),
                ]
                for n, s in requests.items()
            ],
        )


def _ttl(seconds: float) -> str:
    from datetime import timedelta

    return str(timedelta(seconds=seconds))


@features_app.command("materialize")
def materialize_cmd(
    start: str | None = typer.Option(None, "--start", help="ISO time with offset (default: each view's watermark)"),
    end: str | None = typer.Option(None, "--end", help="ISO time with offset (default: now)"),
    view: list[str] | None = typer.Option(None, "--view", "-v", help="only these views (repeatable)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Load the latest feature values into the online store, incrementally from the last watermark."""
    from rich.console import Console

    from roost.cli.output import echo, print_json, print_table
    from roost.features.materialize import materialize

    if as_json:
        res = materialize(start=start, end=end, views=view or None)
        print_json([r.as_dict() for r in res])
        return
    with Console(stderr=True).status("materializing..."):
        res = materialize(start=start, end=end, views=view or None)
    print_table(
        "materialized",
        ["view", "from", "to", "entities", "written"],
        [[r.view, "" if r.start is None else r.start.isoformat(), r.end.isoformat(), r.rows, r.written] for r in res],
    )
    for r in res:
        if r.note:  # an empty window: say what it means and what was (not) done
            echo(f"[yellow]{r.note}[/]")


@features_app.command("push")
def push_cmd(
    view: str = typer.Argument(..., help="feature view name"),
    file: str = typer.Argument(..., help=".parquet, .csv or .jsonl rows: join keys, event time, every field"),
    to: str = typer.Option(
        "online_and_offline", "--to", help="online, offline or online_and_offline (training reads the offline log)"
    ),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Push rows of a view's features into the online store and/or the view's offline log (all or none)."""
    from roost.cli.output import echo, print_json
    from roost.errors import RoostError
    from roost.features.push import MODES, push

    if to.strip().lower() not in MODES:
        raise RoostError(
            f"--to {to!r} is not a push mode; nothing was written",
            hint="use --to online, offline or online_and_offline (the default: training reads the offline log)",
        )
    n = push(view, file, to=to)
    if as_json:
        print_json({"view": view, "rows": n, "to": to.strip().lower()})
    else:
        echo(f"pushed {n} rows to {view} ({to.strip().lower().replace('_', ' ')})")


@features_app.command("compact")
def compact_cmd(
    view: str = typer.Argument(..., help="feature view name"),
    day: str = typer.Option(None, "--day", help="only this event day (YYYY-MM-DD); default every day"),
    grace: float = typer.Option(
        300.0, "--grace", help="seconds merged-away files stay for readers that listed them (0: delete now)"
    ),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Merge each event day's pushed files of a view into one (last push wins); readers never see a gap."""
    from roost.cli.output import echo, print_json
    from roost.features.push_compact import compact

    st = compact(view, day=day, grace_s=grace)
    if as_json:
        print_json(st)
    else:
        echo(
            f"compacted {st['files_merged']} files of {view} over {st['days']} day(s): {st['rows_kept']} rows kept, "
            f"{st['rows_dropped']} superseded rows dropped; {st['files_deleted']} merged-away files deleted"
        )


@features_app.command("serve")
def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="bind address (loopback by default)"),
    port: int = typer.Option(6566, "--port"),
    token: str | None = typer.Option(None, "--token", envvar="ROOST_FEATURES_TOKEN", help="require this bearer token"),
    allow_host: list[str] | None = typer.Option(
        None, "--allow-host", help="also answer this Host name, repeatable ('*' = any); see docs/security.md"
    ),
    max_body: int = typer.Option(16 << 20, "--max-body", help="largest request body in bytes"),
) -> None:
    """Run the online feature server: get-online-features, push, health and metrics over HTTP."""
    from roost import workspace
    from roost.cli.output import echo
    from roost.features.feature_server import serve

    ws = workspace.current()
    echo(f"roost feature server on http://{host}:{port} (online store {ws.online_store})")
    serve(host=host, port=port, token=token, allow_hosts=allow_host or (), max_body=max_body)


def _parse_entities(specs: list[str]) -> dict[str, list[str]]:
    from roost.errors import RoostError

    out: dict[str, list[str]] = {}
    for s in specs:
        if "=" not in s:
            raise RoostError(f"--entity {s!r} is not KEY=V1,V2,...", hint="e.g. --entity user_id=1,2,3")
        k, v = s.split("=", 1)
        out[k.strip()] = [x.strip() for x in v.split(",") if x.strip()]
    return out


@features_app.command("get")
def get_cmd(
    view: str = typer.Option(..., "--view", help="feature view name, or view:field"),
    entity: list[str] = typer.Option([], "--entity", help="KEY=V1,V2,... (repeat for composite keys)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    as_of: str | None = typer.Option(
        None, "--as-of", help="apply the views' ttl as of this ISO time (e.g. 2024-01-15T00:00:00Z), not now"
    ),
) -> None:
    """Read online feature values of some entities."""
    from datetime import datetime

    from roost.cli.output import echo, print_json, print_table
    from roost.errors import RoostError
    from roost.features.serving import online

    if not entity:
        raise RoostError("which entities?", hint="pass --entity KEY=V1,V2,...")
    if as_of is not None:
        try:
            aware = datetime.fromisoformat(as_of.strip().replace("Z", "+00:00")).tzinfo is not None
        except ValueError:
            aware = False
        if not aware:
            raise RoostError(
                f"--as-of {as_of!r} is not an ISO 8601 time with an offset", hint="e.g. 2024-01-15T00:00:00Z"
            )
    ref = view if ":" in view else f"{view}:*"
    when = None if as_of is None else datetime.fromisoformat(as_of.strip().replace("Z", "+00:00"))
    tbl = online([ref], _parse_entities(entity), output="arrow", as_of=when)
    rows = tbl.to_pylist()
    if as_json:
        print_json(rows)
        return
    keys = [k for k in tbl.column_names if k in _parse_entities(entity)]
    fields = [c for c in tbl.column_names if c not in keys]
    missing = [r for r in rows if all(r[f] is None for f in fields)]
    cells = [
        [r[k] for k in keys] + (["(no value)"] + ["-"] * (len(fields) - 1) if r in missing else [r[f] for f in fields])
        for r in rows
    ]
    print_table(f"{view} ({len(rows)} entities)", keys + fields, cells)
    if missing:
        echo(
            f"{len(missing)} of {len(rows)} entities have no online value in {view.split(':')[0]!r}: not materialized "
            "yet, or older than the view's ttl now (read as of an earlier time with --as-of); see `roost features "
            "list` for what was materialized up to when"
        )
