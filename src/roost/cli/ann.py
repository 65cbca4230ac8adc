"""`roost embed` and `roost index build|query|list|versions|alias|update|serve` (also as `roost ann`)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer

from roost.cli.output import LIMIT, ORDER_BY

index_app = typer.Typer(name="index", help="Vector indexes: build, query, version and serve.", no_args_is_help=True)


@contextlib.contextmanager
def _progress(label: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A Rich progress bar fed by (done, total) callbacks; None when disabled."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
    ) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _csv(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def embed(
    model: str | None = typer.Argument(None, help="two-tower model: name@alias, name/VERSION or a folder"),
    items: Path = typer.Option(..., "--items", help="Parquet file with one row per item (or user)"),
    out: Path = typer.Option(..., "--out", "-o", help="Parquet file to write (id, kept columns, embedding)"),
    which: str = typer.Option("item", "--which", help="tower to run: item or user"),
    id_column: str | None = typer.Option(None, "--id-column", help="column carried as the id (e.g. item_id)"),
    keep: str | None = typer.Option(None, "--keep", help="comma-separated columns to carry along (attributes)"),
    batch_size: int = typer.Option(8192, "--batch-size", help="rows per model run"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Compute embeddings with a two-tower model's item (or user) tower, in batches."""
    from roost.ann.embeddings import embed as run_embed
    from roost.cli.output import echo, print_json
    from roost.errors import RoostError

    if model is None:
        raise RoostError("which model?", hint="roost embed MODEL --items ITEMS.parquet --out OUT.parquet")
    with _progress(f"embedding ({which} tower)", not quiet and not as_json) as cb:
        res = run_embed(
            model,
            items,
            out,
            which=which,
            id_column=id_column,
            keep=_csv(keep) or (),
            batch_size=batch_size,
            progress=cb,
        )
    if as_json:
        print_json(res)
    else:
        echo(f"wrote {res['rows']} embeddings of dimension {res['dim']} to {res['out']}")


@index_app.command("build")
def build(
    name: str = typer.Argument(..., help="index name (each build is its next version)"),
    embeddings: Path | None = typer.Option(None, "--embeddings", help="Parquet from `roost embed` (or .npy)"),
    metric: str = typer.Option("cosine", "--metric", help="cosine, ip or l2"),
    kind: str = typer.Option("hnsw", "--kind", help="hnsw, ivf or flat (exact)"),
    library: str | None = typer.Option(
        None, "--library", help="hnswlib, faiss or numpy (flat only) [default: measured best per kind]"
    ),
    id_column: str | None = typer.Option(None, "--id-column", help="id column [default: from roost embed, or id]"),
    vector_column: str | None = typer.Option(None, "--vector-column", help="vector column [default: embedding]"),
    attributes: str | None = typer.Option(
        None, "--attributes", help="comma-separated filterable columns [default: all others; '' none]"
    ),
    target_recall: float = typer.Option(0.95, "--target-recall", help="recall@10 the search effort is tuned to"),
    tune_queries: Path | None = typer.Option(
        None, "--tune-queries", help="query vectors to tune on (e.g. `roost embed --which user`)"
    ),
    m: int | None = typer.Option(None, "--m", help="HNSW links per node [16]"),
    ef_construction: int | None = typer.Option(None, "--ef-construction", help="HNSW build effort [200]"),
    nlist: int | None = typer.Option(None, "--nlist", help="IVF lists [4·sqrt(N)]"),
    alias: str | None = typer.Option(None, "--alias", help="point NAME@ALIAS at the new version"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    as_json: bool = typer.Option(False, "--json", help="print the version record as JSON"),
) -> None:
    """Build an index from embeddings and store it as a new version in the repository."""
    from roost.ann.repo import build_index, check_name, set_alias
    from roost.cli.output import echo, print_json

    check_name(name)
    if embeddings is None:
        from roost.errors import RoostError

        raise RoostError("which embeddings?", hint="pass --embeddings FILE.parquet (from `roost embed`)")
    if not embeddings.exists():
        from roost.errors import NotFoundError

        raise NotFoundError(f"embeddings file {embeddings} not found", hint="create one with `roost embed`")
    params = {k: v for k, v in {"M": m, "ef_construction": ef_construction, "nlist": nlist}.items() if v is not None}
    with _progress(f"building {name}", not quiet and not as_json) as cb:
        rec = build_index(
            name,
            embeddings,
            metric=metric,
            kind=kind,
            library=library,
            id_column=id_column,
            vector_column=vector_column,
            attributes=_csv(attributes),
            target_recall=target_recall,
            params=params,
            progress=cb,
            tune_queries=tune_queries,
        )
    if alias:
        set_alias(name, rec["version"], alias)
    if as_json:
        print_json(rec)
        return
    t = rec.get("tuning") or {}
    echo(
        f"index [bold]{name}/{rec['version']}[/]: {rec['count']} items, dim {rec['dim']}, {rec['metric']}, "
        f"{rec['kind']} ({rec['library']}), recall@10 {t.get('recall_at_k', 1.0):.3f}"
        + (f" at {t['knob']}={t['value']}" if t.get("knob") else "")
        + f" · run {rec['run_id']}"
    )


def _vector(text: str) -> list[float]:
    s = text.strip()
    try:
        v = json.loads(s) if s.startswith("[") else [float(x) for x in s.split(",") if x.strip()]
    except ValueError:
        from roost.errors import RoostError

        raise RoostError(
            f"cannot read --vector {text[:40]!r}", hint="pass numbers: 0.1,0.2,... or [0.1, 0.2, ...]"
        ) from None
    return v


@index_app.command("query")
def query(
    name: str = typer.Argument(..., help="NAME, NAME/VERSION, NAME@ALIAS or an index folder"),
    vector: str | None = typer.Option(None, "--vector", help="query vector: 0.1,0.2,... or a JSON list"),
    id_: list[str] | None = typer.Option(None, "--id", help="query by a stored item's vector (repeatable)"),
    k: int = typer.Option(10, "-k", "--k", help="neighbours per query"),
    filter_: str | None = typer.Option(None, "--filter", help='JSON, e.g. {"category": "books"}'),
    ef: int | None = typer.Option(None, "--ef", help="search effort (ef_search / nprobe) [tuned at build]"),
    as_json: bool = typer.Option(False, "--json", help="print results as JSON"),
) -> None:
    """Nearest neighbours of a vector or of stored items."""
    from roost.ann.repo import load_index
    from roost.cli.output import print_json, print_table
    from roost.errors import RoostError

    if (vector is None) == (not id_):
        raise RoostError("pass either --vector or --id", hint="roost index query NAME --id 42 -k 10")
    try:
        flt = json.loads(filter_) if filter_ else None
    except ValueError as exc:
        raise RoostError(f"--filter is not valid JSON: {exc}", hint='e.g. --filter \'{"category": "books"}\'') from None
    index = load_index(name)
    if vector is not None:
        res, labels = index.search([_vector(vector)], k, flt, ef), ["vector"]
    else:
        res, labels = index.search_ids(id_ or [], k, flt, ef, lenient=True), list(id_ or [])
    if as_json:
        print_json(
            {"index": index.meta.get("name", name), "version": index.meta.get("version"), "results": res.to_list()}
        )
        return
    for label, hits in zip(labels, res.to_list()):
        print_table(
            f"{name} · nearest to {label}",
            ["rank", "id", "score"],
            [(i + 1, h["id"], h["score"]) for i, h in enumerate(hits)],
        )


@index_app.command("list")
def list_cmd(
    limit: int | None = LIMIT,
    order_by: str | None = ORDER_BY,
    as_json: bool = typer.Option(False, "--json", help="print as JSON"),
) -> None:
    """Indexes in the repository."""
    from roost.ann.repo import list_indexes
    from roost.cli.output import print_json, print_table, sort_limit

    rows = sort_limit(list_indexes(), order_by, limit)
    if as_json:
        print_json(rows)
    else:
        print_table(
            "indexes",
            ["name", "latest", "count", "dim", "metric", "kind", "aliases"],
            [
                (
                    r["name"],
                    r["latest_version"],
                    r["count"],
                    r["dim"],
                    r["metric"],
                    r["kind"],
                    ", ".join(f"{a}→{v}" for a, v in r["aliases"].items()),
                )
                for r in rows
            ],
        )


@index_app.command("versions")
def versions(
    name: str = typer.Argument(...),
    limit: int | None = LIMIT,
    order_by: str | None = ORDER_BY,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Versions of an index, with the run that built each."""
    import datetime as dt

    from roost.ann.repo import list_versions
    from roost.cli.output import print_json, print_table, sort_limit

    rows = sort_limit(list_versions(name), order_by, limit)
    if as_json:
        print_json(rows)
        return
    print_table(
        f"{name} versions",
        ["version", "created", "count", "kind", "recall@10", "aliases", "run"],
        [
            (
                r["version"],
                dt.datetime.fromtimestamp(r["created_at"]).isoformat(timespec="seconds"),
                r["count"],
                f"{r['kind']} ({r['library']})",
                r.get("recall_at_10"),
                ", ".join(r["aliases"]),
                r["run_id"][:12],
            )
            for r in rows
        ],
    )


@index_app.command("alias")
def alias_cmd(
    name: str = typer.Argument(...),
    version: int = typer.Argument(...),
    alias: str = typer.Argument(...),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Point NAME@ALIAS at VERSION (served aliases follow within --poll seconds)."""
    from roost.ann.repo import set_alias
    from roost.cli.output import echo, print_json

    set_alias(name, version, alias)
    if as_json:
        print_json({"name": name, "alias": alias, "version": version})
        return
    echo(f"{name}@{alias} → version {version}")


@index_app.command("update")
def update(
    name: str = typer.Argument(..., help="NAME, NAME/VERSION or NAME@ALIAS to start from"),
    upsert: Path | None = typer.Option(None, "--upsert", help="embeddings Parquet of items to add or replace"),
    delete: str | None = typer.Option(None, "--delete", help="comma-separated ids to remove"),
    id_column: str | None = typer.Option(None, "--id-column"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """A new version with items upserted and deleted, without rebuilding the index."""
    from roost.ann.repo import update_index
    from roost.cli.output import echo, print_json

    rec = update_index(name, upsert=upsert, delete=_csv(delete) or [], id_column=id_column)
    if as_json:
        print_json(rec)
    else:
        echo(
            f"index [bold]{rec['name']}/{rec['version']}[/]: {rec['count']} items (from version {rec['base_version']})"
        )


@index_app.command("serve")
def serve(
    names: list[str] = typer.Argument(..., help="indexes: NAME, NAME@ALIAS, NAME/VERSION, folder, or LABEL=ref"),
    port: int = typer.Option(8090, "--port"),
    host: str = typer.Option("127.0.0.1", "--host", help="interface to bind (0.0.0.0 opens the server)"),
    token: str | None = typer.Option(None, "--token", envvar="ROOST_SERVE_TOKEN", help="require a bearer token"),
    allow_host: list[str] | None = typer.Option(
        None, "--allow-host", help="also answer this Host name, repeatable ('*' = any); see docs/security.md"
    ),
    poll: float = typer.Option(2.0, "--poll", help="seconds between registry checks (0: never); new versions swap in"),
    user_model: str | None = typer.Option(None, "--user-model", help="two-tower model for /v1/recommend"),
    ranker: str | None = typer.Option(None, "--ranker", help="ranking model package for /v1/recommend"),
    recommend_index: str | None = typer.Option(None, "--recommend-index", help="index to recommend from [first]"),
    candidates: int = typer.Option(100, "--candidates", help="candidates ranked per user"),
    threads: int = typer.Option(0, "--threads", help="search threads per request (0: auto)"),
) -> None:
    """Serve indexes over HTTP (search, upsert, delete, reload, recommend) until Ctrl-C."""
    import logging

    import uvicorn

    from roost.ann.http import app
    from roost.ann.serving import open_indexes
    from roost.cli.output import echo
    from roost.errors import RoostError
    from roost.netpolicy.limits import ConnLimits, uvicorn_options

    limits = ConnLimits.from_env()  # a bad ROOST_HTTP_* value fails before the indexes load
    if ranker and not user_model:
        raise RoostError("--ranker needs --user-model", hint="the user tower makes the query vector")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s roost-index %(levelname)s: %(message)s")
    state = open_indexes(names, poll_s=poll, threads=threads, candidates=candidates)
    if user_model:
        from roost.ann.recommend import Recommender

        target = recommend_index or next(iter(state.slots))
        if target not in state.slots:
            raise RoostError(f"--recommend-index {target!r} is not served", hint=f"served: {sorted(state.slots)}")
        state.recommenders[target] = Recommender(state.slots[target], user_model, ranker, candidates)
    for s in state.slots.values():
        echo(
            f"[green]serving index {s.name} version {s.version} ({len(s.index)} items) "
            f"on http://{host}:{port}/v1/indexes/{s.name}/search[/]"
        )
    from roost.netpolicy import allowed_hosts

    guarded = app(state, token=token, allowed_hosts=allowed_hosts(host, allow_host or ()))
    opts = uvicorn_options(limits, "roost index serve", guarded.state.conn_stats)
    uvicorn.run(guarded, host=host, port=port, log_level="warning", **opts)


def register(app: typer.Typer) -> None:
    """Add `embed` and the `index` group to the CLI."""
    app.command("embed")(embed)
    app.add_typer(index_app, name="index")
    app.add_typer(index_app, name="ann", hidden=True)  # the package's name: `roost ann ...` is `roost index ...`


__all__ = ["register", "Any"]
