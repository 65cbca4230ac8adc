"""Lineage: from a served request (or a model version, or a run) back to the data and feature views behind it.

The chain is request → model version → run (config, params, git commit) → training data (source, fingerprint,
row counts, split) → feature views with the definition version used at training time → their sources.
Request ids are looked up in the request-log Parquet (``<dir>/<model>/<YYYY-MM-DD>/*.parquet``, see
roost.serve.reqlog); feature views come from the run's ``features.json`` artifact, written by training when the
rows came from the feature store (``data.entities``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from roost.errors import NotFoundError, RoostError

log = logging.getLogger(__name__)

FEATURES_ARTIFACT = "features.json"
REQUEST_LOG_SUBDIR = "request_logs"  # under the workspace's .roost/ (what `roost serve --log-requests` uses)
_MODEL_URI = re.compile(r"^[A-Za-z0-9_.-]+[@/][A-Za-z0-9_.-]+$")
_HEX = re.compile(r"^[0-9a-f]+$")
_DATA_KEYS = ("data.source", "data.entities", "data.features", "data.event_time", "data.sample")

__all__ = [
    "FEATURES_ARTIFACT",
    "definition_version",
    "training_features",
    "default_log_dir",
    "find_request",
    "lineage",
    "run_lineage",
    "version_lineage",
    "render_text",
]


def definition_version(spec: dict[str, Any]) -> str:
    """The version of a registered definition: sha256 of its canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def training_features(refs: list[str]) -> dict[str, Any]:
    """What a feature-store training read, per view: definition version, TTL, entity keys, fields and source (and
    per request view: definition version, request fields, sources, fields and transformation)."""
    from roost.features.refs import resolve

    sel = resolve(list(refs))
    views = []
    for v in sel.views:
        src = v.source
        views.append(
            {
                "name": v.name,
                "definition_version": definition_version(v.spec),
                "ttl_seconds": v.spec.get("ttl_seconds"),
                "entities": list(v.spec.get("entities") or []),
                "join_keys": dict(v.keys),
                "fields": {f: v.spec["fields"][f] for f in v.fields},
                "source": {
                    "name": src.get("name"),
                    "path": src.get("path"),
                    "sql": src.get("sql"),
                    "event_time": src.get("event_time"),
                    "created_time": src.get("created_time"),
                    "definition_version": definition_version(src),
                },
            }
        )
    requests = [
        {
            "name": r.name,
            "definition_version": definition_version(r.spec),
            "request": dict(r.request),
            "sources": list(r.spec.get("sources") or []),
            "fields": {f: r.spec["fields"][f] for f in r.fields},
            "transform": r.spec.get("transform"),
        }
        for r in sel.requests
    ]
    out: dict[str, Any] = {"refs": list(sel.refs), "views": views}
    if requests:
        out["request_views"] = requests
    return out


def default_log_dir() -> Path | None:
    """The workspace's request-log folder (the default of `roost serve --log-requests`), or None outside one."""
    from roost import workspace

    try:
        ws = workspace.current()
    except RoostError:
        return None
    return Path(ws.state_dir) / REQUEST_LOG_SUBDIR


def _log_files(log_dir: Path) -> list[Path]:
    """The finished request-log files under `log_dir` (in-progress `.part` files are not read)."""
    from roost.monitor.logfiles import find

    return find(log_dir, None, "--log-dir")


def _meta(schema: Any, key: str) -> Any:
    """A JSON value of the Parquet key-value metadata, or None."""
    raw = (schema.metadata or {}).get(key.encode())
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _iso(v: Any) -> str | None:
    """A timestamp as ISO text (None stays None)."""
    return None if v is None else v.isoformat()


_FIND_SQL = "SELECT DISTINCT filename FROM read_parquet(?, filename = true, union_by_name = true) WHERE _request_id = ?"


def _files_with(checked: Any, request_id: str) -> list[Path]:
    """The request-log files holding `request_id` among `checked.files` (a LogFiles); a file that fails while read
    is set aside in `checked`.

    One scan of all files (only the id column is read; row groups whose statistics exclude the id are skipped); when
    one file breaks it, the files are scanned one by one so the others are still searched.
    """
    import duckdb

    con = duckdb.connect()
    try:
        try:
            names = [str(f) for f in checked.files]
            return [Path(h[0]) for h in con.execute(_FIND_SQL, [names, request_id]).fetchall()]
        except duckdb.Error as exc:
            log.debug("request-log scan failed (%s); scanning file by file", exc)
        out: list[Path] = []
        for f in list(checked.files):
            try:
                out += [Path(h[0]) for h in con.execute(_FIND_SQL, [[str(f)], request_id]).fetchall()]
            except duckdb.Error as exc:
                checked.skip(f, exc)
        return out
    finally:
        con.close()


def _search(request_id: str, folder: Path | None) -> tuple[dict[str, Any] | None, Any]:
    """(the logged request or None, the LogFiles searched or None): unreadable files are skipped and listed."""
    from roost.monitor import logfiles

    if folder is None or not folder.is_dir():
        return None, None
    checked = logfiles.check(_log_files(folder), folder)
    hits = _files_with(checked, request_id) if checked.files else []
    if not hits:
        return None, checked
    req = _request(request_id, hits[0])
    req["skipped_files"] = checked.skipped_dicts()
    return req, checked


def find_request(request_id: str, log_dir: str | Path | None = None) -> dict[str, Any] | None:
    """The logged request with this id (model, version, time, entity keys, online feature times), or None; its
    `skipped_files` lists the log files that could not be read ({file, reason})."""
    return _search(request_id, Path(log_dir) if log_dir is not None else default_log_dir())[0]


def _request(request_id: str, path: Path) -> dict[str, Any]:
    """The record of `request_id` in the log file `path`."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    rows = table.filter(pc.equal(table["_request_id"], request_id))
    first = rows.slice(0, 1).to_pylist()[0]
    entities = _meta(table.schema, "roost.entities") or []
    refs = _meta(table.schema, "roost.feature_refs") or {}
    online: dict[str, Any] = {}
    for name in rows.column_names:
        if name.startswith("_fs_event_time."):
            view = name.split(".", 1)[1]
            ev, cr = rows[name].to_pylist(), rows.column(f"_fs_created_time.{view}").to_pylist()
            online[view] = {
                "event_time": [_iso(t) for t in ev],
                "created_time": [_iso(t) for t in cr],
                "missing_rows": sum(t is None for t in ev),
            }
    return {
        "request_id": request_id,
        "model": first["_model"],
        "version": str(first["_version"]),
        "served_at": _iso(first["_ts"]),
        "protocol": first.get("_protocol"),
        "latency_ms": first.get("_latency_ms"),
        "rows": rows.num_rows,
        "entities": {k: rows[k].to_pylist() for k in entities if k in rows.column_names},
        "feature_refs": refs,
        "online_features": online,
        "log_file": str(path),
    }


def _run_features(run: dict[str, Any]) -> dict[str, Any] | None:
    """The run's features.json (None when the run did not read the feature store)."""
    from roost.registry.run import local_artifact

    try:
        p = local_artifact(run, FEATURES_ARTIFACT)
    except NotFoundError:
        return None
    except RoostError as exc:  # e.g. a symlink leading out of the run's folder: not read
        log.warning("run %s: %s not read: %s", run["run_id"], FEATURES_ARTIFACT, exc.message)
        return None
    if not p.is_file():
        return None
    rec: dict[str, Any] = json.loads(p.read_text())
    return rec


def _current_versions(views: list[dict[str, Any]]) -> None:
    """Add each view's current definition version and whether it changed since training (in place)."""
    from roost.features import repo

    for v in views:
        spec = repo.get("view", v["name"])
        v["current_definition_version"] = definition_version(spec) if spec is not None else None
        v["changed_since_training"] = v["current_definition_version"] != v["definition_version"]


def run_lineage(run_id: str, run: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run part of the chain: config, params, git commit, training data and feature views (`run`: the run's
    dict when the caller already read it, e.g. the model page reads all its versions' runs in one query)."""
    from roost.registry.api import get_run

    run = run if run is not None and run.get("run_id") == run_id else get_run(run_id)
    params = run["params"]
    data = {k.split(".", 1)[1]: params[k] for k in _DATA_KEYS if k in params}
    data.update(
        {
            "fingerprint": params.get("data.fingerprint"),
            "rows": params.get("data.rows"),
            "train_rows": params.get("data.train_rows"),
            "val_rows": params.get("data.val_rows"),
            "test_rows": params.get("data.test_rows"),
            "split": {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith("split.")},
        }
    )
    feats = _run_features(run)
    views = list(feats["views"]) if feats else []
    _current_versions(views)
    return {
        "run": {
            "run_id": run["run_id"],
            "name": run["name"],
            "experiment": run["experiment"],
            "status": run["status"],
            "lifecycle_stage": run.get("lifecycle_stage", "active"),
            "git_commit": run["git_commit"],
            "git_dirty": run["git_dirty"],
            "model_type": run["tags"].get("roost.model_type"),
            "task": params.get("task.resolved"),
            "config": f"{run['artifact_uri'].rstrip('/')}/config.yaml",
            "params": params,
        },
        "data": data,
        "feature_views": views,
    }


def model_views(model: str | None, version: str | int | None = None) -> list[str]:
    """The feature views a registered model version read in training ([] when unknown)."""
    if not model:
        return []
    try:
        from roost.registry.backend import default_store

        uri = f"{model}/{version}" if version not in (None, "") and str(version).isdigit() else model
        mv = default_store().lookup_version(uri)  # the record only: no package download
        if not mv.run_id:
            return []
        return sorted({str(v["name"]) for v in run_lineage(mv.run_id)["feature_views"]})
    except RoostError as exc:  # an unregistered model or a deleted run: no views, not an error
        log.debug("no feature views for %s: %s", model, exc)
        return []


def version_lineage(uri: str) -> dict[str, Any]:
    """The model-version part of the chain and everything below it ('name@alias' or 'name/3')."""
    from roost.registry.backend import default_store

    info = default_store().lookup_version(uri)
    meta = info.meta or {}
    out: dict[str, Any] = {
        "model_version": {
            "name": info.name,
            "version": info.version,
            "aliases": list(info.aliases),
            "source": info.source,
            "run_id": info.run_id,
            "feature_refs": meta.get("feature_refs"),
            "entities": meta.get("entities"),
            "data_source": meta.get("data_source"),
        }
    }
    gone: dict[str, Any] = {"run": None, "data": None, "feature_views": []}
    if info.run_id is None:
        out.update(gone)
        if meta.get("run_id") and not _run_exists(str(meta["run_id"])):  # its run was removed (roost gc)
            out["deleted_run_id"] = str(meta["run_id"])
    else:
        try:
            out.update(run_lineage(info.run_id))
        except NotFoundError:  # removed between the two reads
            out.update(gone, deleted_run_id=info.run_id)
    return out


def _run_exists(run_id: str) -> bool:
    """Whether the store still holds run `run_id` (any lifecycle stage)."""
    from roost.registry.api import get_run

    try:
        get_run(run_id)
    except NotFoundError:
        return False
    return True


def _candidates(log_dir: Path | None) -> list[str]:
    """Ids a mistyped target may have meant: model names, recent run ids and logged request ids."""
    from roost.registry.api import list_models, search_runs

    out = [m["name"] for m in list_models()]
    out += [r["run_id"] for r in search_runs(limit=500)]
    if log_dir is not None and log_dir.is_dir():
        import pyarrow.parquet as pq

        for f in sorted(_log_files(log_dir), key=lambda p: p.stat().st_mtime)[-20:]:
            try:
                out += [str(x) for x in set(pq.read_table(f, columns=["_request_id"])["_request_id"].to_pylist())]
            except Exception as exc:  # noqa: BLE001 - an unreadable file only loses suggestions
                log.debug("cannot read %s: %s", f, exc)
    return out


def lineage(target: str, log_dir: str | Path | None = None) -> dict[str, Any]:
    """The lineage of a request id, 'model@alias' / 'model/3', or a run id (a unique prefix is enough)."""
    import difflib

    target = target.strip()
    if not target:
        raise RoostError("nothing to trace", hint="roost lineage REQUEST_ID | MODEL@ALIAS | RUN_ID")
    folder = Path(log_dir) if log_dir is not None else default_log_dir()
    if log_dir is not None:
        given = Path(log_dir)
        if given.is_file():
            raise RoostError(f"--log-dir {log_dir} is a file, not a folder", hint="pass the request-log folder")
        _log_files(given)  # a missing or an unreadable folder: a RoostError naming --log-dir
    if _MODEL_URI.match(target):
        return {"kind": "model_version", "request": None, **version_lineage(target)}
    hexlike = _HEX.match(target) is not None  # run ids are hex; request ids are '<pid>-<seq>'
    searched = None
    for kind in ("run", "request") if hexlike else ("request", "run"):
        if kind == "request":
            req, searched = _search(target, folder)
            if req is not None:
                return {
                    "kind": "request",
                    "request": req,
                    **_request_version(req),
                    "skipped_files": req["skipped_files"],
                }
            continue
        try:
            return {"kind": "run", "request": None, "model_version": None, **run_lineage(target)}
        except NotFoundError:
            pass
    from roost.registry.api import list_models

    if any(m["name"] == target for m in list_models()):  # a model name alone: its latest version
        return {"kind": "model_version", "request": None, **version_lineage(target)}
    near = difflib.get_close_matches(target, _candidates(folder), n=3, cutoff=0.5)
    if searched is not None and searched.skipped and not searched.files:
        from roost.monitor.logfiles import all_unreadable

        raise all_unreadable(folder or "", searched)
    where = f"request logs in {folder}" if folder is not None else "no request-log folder (pass --log-dir)"
    if searched is not None and not searched.files:
        where += " (no request-log files there)"
    skipped = searched.note() if searched is not None else None
    raise NotFoundError(
        f"{target[:200]!r} is not a request id, model version or run id",
        hint=(f"did you mean {', '.join(near)}? " if near else "")
        + f"searched runs, models and {where}"
        + (f"; {skipped}" if skipped else "")
        + "; a model version is NAME@ALIAS or NAME/VERSION",
    )


def _request_version(req: dict[str, Any]) -> dict[str, Any]:
    """The model-version part below a logged request; a note instead when the registry has no such version."""
    try:
        return version_lineage(f"{req['model']}/{req['version']}")
    except RoostError as exc:  # served from a package folder, or a name the registry cannot hold
        return {
            "model_version": None,
            "run": None,
            "data": None,
            "feature_views": [],
            "note": f"model {req['model']} version {req['version']} is not in the model registry "
            f"(served from a package folder?): {exc.message}",
        }


def _short(v: Any, n: int = 12) -> str:
    """A hash or id cut to `n` characters (empty for None)."""
    return "" if v is None else str(v)[:n]


def render_text(lin: dict[str, Any]) -> list[str]:
    """The lineage as indented lines, request first, sources last (a note on unreadable log files first)."""
    from roost.monitor.logfiles import skipped_note

    lines: list[str] = []
    note = skipped_note(lin.get("skipped_files") or [])
    if note:
        lines.append(f"note: {note}")
    req = lin.get("request")
    if req:
        lines.append(f"request {req['request_id']}  served {req['served_at']}  rows {req['rows']}")
        for k, vals in req["entities"].items():
            lines.append(f"  entity {k}: {', '.join(map(str, vals[:10]))}{' …' if len(vals) > 10 else ''}")
        for view, o in req["online_features"].items():
            lines.append(f"  online {view}: {o['missing_rows']} of {req['rows']} row(s) missing online")
    mv = lin.get("model_version")
    if mv:
        alias = f" @{', @'.join(mv['aliases'])}" if mv["aliases"] else ""
        lines.append(f"model version {mv['name']}/{mv['version']}{alias}")
    run = lin.get("run")
    if run is None:
        if lin.get("note"):
            lines.append(f"  {lin['note']}")
        elif lin.get("deleted_run_id"):
            lines.append(
                f"  run {lin['deleted_run_id']} was deleted (roost gc): its params, data and feature views are gone"
            )
        else:
            lines.append("  run: none (the version was registered from a folder)")
        return lines
    dirty = " (dirty)" if run["git_dirty"] else ""
    named = f"{run['experiment']}/{run['name']}" if run["name"] else f"experiment {run['experiment']}"
    stage = run.get("lifecycle_stage", "active")
    hidden = {
        "deleted": f"  (deleted; `roost runs restore {run['run_id']}` brings it back until `roost gc`)",
        "archived": "  (archived)",
    }.get(stage, "")
    lines.append(f"run {run['run_id']}  {named}  {run['status']}{hidden}")
    lines.append(f"  model {run['model_type']}  task {run['task']}  git {run['git_commit'] or 'none'}{dirty}")
    lines.append(f"  config {run['config']}")
    d = lin["data"] or {}
    given = [d.get("source"), d.get("entities"), (lin.get("model_version") or {}).get("data_source")]
    source = next((str(x) for x in given if x not in (None, "", "null")), "unknown")
    lines.append(f"data {source}  fingerprint {d.get('fingerprint')}")
    lines.append(
        f"  rows {d.get('rows')} = train {d.get('train_rows')} + val {d.get('val_rows')} + test {d.get('test_rows')}"
        f"  split {', '.join(f'{k}={v}' for k, v in (d.get('split') or {}).items() if v is not None)}"
    )
    for v in lin.get("feature_views") or []:
        changed = "  (definition changed since)" if v.get("changed_since_training") else ""
        lines.append(
            f"feature view {v['name']}  version {_short(v['definition_version'])}{changed}"
            f"  ttl {_ttl(v['ttl_seconds'])}  keys {', '.join(v['join_keys'])}"
        )
        lines.append(f"  fields {', '.join(v['fields'])}")
        s = v["source"]
        lines.append(f"  source {s['name']}: {s['path'] or s['sql']}")
    if not lin.get("feature_views"):
        lines.append("feature views: none (the rows did not come from the feature store)")
    return lines


def _ttl(seconds: float | None) -> str:
    """A view's TTL for people: 'none' when the view keeps values forever."""
    return "none (values never expire)" if seconds is None else f"{seconds:g}s"
