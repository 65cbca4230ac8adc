"""Indexes as versioned artifacts: each build is a run whose artifacts hold the index; versions live in the store."""

from __future__ import annotations

import logging
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from roost.ann.embeddings import Embeddings, read_embeddings
from roost.ann.index import Index
from roost.errors import NotFoundError, RoostError, closest

log = logging.getLogger(__name__)
OBJECT_KIND = "ann_index"
EXPERIMENT = "ann-index"
ARTIFACT_PATH = "index"
_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]*$")
Progress = Callable[[int, int], None]


def _store() -> Any:
    from roost.registry.backend import default_store  # the workspace's store, or the roost server's

    return default_store()


def check_name(name: str) -> str:
    """`name` when it is a valid index name."""
    if not _NAME.match(name or ""):
        raise RoostError(f"invalid index name {name!r}", hint="use letters, digits, '_', '-' or '.'")
    return name


def _spec(name: str, must_exist: bool = True) -> dict[str, Any]:
    spec = _store().get_object(OBJECT_KIND, name)
    if spec is None:
        if not must_exist:
            return {"name": name, "versions": [], "aliases": {}}
        near = closest(name, list(_store().list_objects(OBJECT_KIND)))
        raise NotFoundError(
            f"index {name!r} not found",
            hint=f"did you mean {near!r}?" if near else "build one with `roost index build NAME`",
        )
    return dict(spec)


def _fill(index: Index, emb: Embeddings, progress: Progress | None, chunk: int = 20_000) -> None:
    """Upsert the embeddings in chunks; an id on two rows is refused whichever chunks they fall in."""
    n = len(emb.ids)
    if n > chunk:  # within one chunk Index.upsert refuses it; across chunks the later row silently replaced the first
        uniq, first, counts = np.unique(np.asarray(emb.ids), return_index=True, return_counts=True)
        if (counts > 1).any():
            row = int(first[counts > 1].min())
            dup = emb.ids[row]
            raise RoostError(
                f"id {dup.item() if isinstance(dup, np.generic) else dup!r} appears on {int(counts[first == row][0])} "
                f"rows of the embeddings (first on row {row})",
                hint="deduplicate the items first (one row per id)",
            )
    for i in range(0, max(n, 1), chunk):
        sl = slice(i, i + chunk)
        if n:
            index.upsert(emb.ids[sl], emb.vectors[sl], {k: v[sl] for k, v in emb.attributes.items()})
        if progress:
            progress(min(i + chunk, n), n)


def _commit(
    name: str, index: Index, info: dict[str, Any], params: dict[str, Any], metrics: dict[str, float]
) -> dict[str, Any]:
    """Save the index as a run's artifacts and append the version record."""
    from roost.registry.api import start_run

    with start_run(EXPERIMENT, name=f"index {name}", params=params, tags={"roost.index": name}) as run:
        with tempfile.TemporaryDirectory(prefix="roost-index-") as tmp:
            index.save(tmp)
            uri = run.log_artifacts(tmp, ARTIFACT_PATH)
        run.log_metrics(metrics)
    record = {
        "run_id": run.id,
        "uri": uri,
        "created_at": time.time(),
        **info,
        **index.info(),
        "recall_at_10": metrics.get("recall_at_10"),
    }
    record.pop("name", None)

    def append(
        spec: dict[str, Any] | None,
    ) -> dict[str, Any]:  # the next version, taken atomically (concurrent builds each get one)
        spec = spec or {"name": name, "versions": [], "aliases": {}}
        record["version"] = max([v["version"] for v in spec["versions"]], default=0) + 1
        spec["versions"].append(dict(record))
        return spec

    _store().update_object(OBJECT_KIND, name, append)
    log.info("index %s version %d: %d items", name, record["version"], record["count"])
    return {"name": name, **record}


def build_index(
    name: str,
    embeddings: str | Path | Embeddings | Any,
    metric: str = "cosine",
    kind: str = "hnsw",
    library: str | None = None,
    id_column: str | None = None,
    vector_column: str | None = None,
    attributes: Sequence[str] | None = None,
    target_recall: float = 0.95,
    params: dict[str, Any] | None = None,
    progress: Progress | None = None,
    tune_queries: str | Path | np.ndarray | None = None,
) -> dict[str, Any]:
    """Build an index from embeddings, tune its search effort, store it as the next version of `name`.

    `tune_queries` (vectors, or an embeddings file such as user-tower output) are what the effort is tuned on;
    without them the index's own items are the queries.

    Parameters
    ----------
    name : str
        The index's registered name (a new version each build).
    embeddings : path, Embeddings or table
        The vectors with their ids (and attributes).
    metric : str
        cosine | l2 | ip.
    kind : str
        hnsw | ivf | flat.
    library : str, optional
        The backend library (default: the measured default for `kind`).
    id_column, vector_column : str, optional
        The columns holding ids and vectors in an embeddings file.
    attributes : sequence of str, optional
        Columns kept for filtered search.
    target_recall : float
        Recall@k the search effort is tuned to reach, in (0, 1].
    params : dict, optional
        Build parameters for the backend.
    progress : callable, optional
        Called with (items added, items in all) while the index fills.
    tune_queries : path or array, optional
        The queries the search effort is tuned on.
    """
    from roost.ann.tuning import tune

    check_name(name)
    if not 0 < target_recall <= 1:
        raise RoostError(f"target recall must be in (0, 1], got {target_recall}")
    started = time.time()
    emb = (
        embeddings
        if isinstance(embeddings, Embeddings)
        else read_embeddings(embeddings, id_column, vector_column, attributes)
    )
    src = emb.meta.get("source")
    snapshot = min(Path(src).stat().st_mtime, started) if src and Path(src).exists() else started
    if emb.vectors.shape[1] == 0:
        raise RoostError("the embeddings have no rows and no dimension", hint="pass a non-empty embeddings file")
    params = dict(params or {})
    if metric == "ip" and len(emb.vectors) and not params.get("ip_max_norm"):
        params["ip_max_norm"] = float(np.sqrt((emb.vectors.astype(np.float64) ** 2).sum(1).max()))
    index = Index(emb.vectors.shape[1], metric, kind, library, **params)
    t0 = time.perf_counter()
    _fill(index, emb, progress)
    build_s = time.perf_counter() - t0
    queries = None
    if tune_queries is not None:
        queries = (
            tune_queries
            if isinstance(tune_queries, np.ndarray)
            else read_embeddings(tune_queries, attributes=[]).vectors
        )
    tuned = (
        tune(index, target_recall, vectors=emb.vectors, ids=emb.ids, queries=queries)
        if len(emb.ids)
        else {"recall_at_k": 1.0}
    )
    index.meta = {
        "id_column": emb.id_column,
        "source": src,
        "model": emb.meta.get("model"),
        "snapshot_time": snapshot,
        "tuning": tuned,
    }
    run_params = {
        "metric": metric,
        "kind": kind,
        "library": index.library,
        "dim": index.dim,
        "id_column": emb.id_column or "",
        "source": str(src or ""),
        "target_recall": target_recall,
        **dict(index.params.items()),
    }
    metrics = {"build_seconds": build_s, "count": float(len(index)), "recall_at_10": float(tuned["recall_at_k"])}
    return _commit(
        name,
        index,
        {"snapshot_time": snapshot, "id_column": emb.id_column, "source": src, "tuning": tuned},
        run_params,
        metrics,
    )


def list_indexes() -> list[dict[str, Any]]:
    """Every index with its latest version, size and aliases."""
    out = []
    for name, spec in _store().list_objects(OBJECT_KIND).items():
        last = spec["versions"][-1] if spec["versions"] else {}
        out.append(
            {
                "name": name,
                "latest_version": last.get("version"),
                "count": last.get("count"),
                "dim": last.get("dim"),
                "metric": last.get("metric"),
                "kind": last.get("kind"),
                "aliases": spec.get("aliases", {}),
            }
        )
    return out


def list_versions(name: str) -> list[dict[str, Any]]:
    """Version records of an index, oldest first."""
    spec = _spec(name)
    rev: dict[int, list[str]] = {}
    for a, v in spec.get("aliases", {}).items():
        rev.setdefault(v, []).append(a)
    return [{"name": name, **v, "aliases": sorted(rev.get(v["version"], []))} for v in spec["versions"]]


def parse_ref(ref: str) -> tuple[str, str | None, int | None]:
    """'name@alias' | 'name/3' | 'name' → (name, alias, version)."""
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return check_name(name), alias, None
    if "/" in ref:
        name, v = ref.rsplit("/", 1)
        if not v.isdigit():
            raise RoostError(f"bad index reference {ref!r}", hint="use NAME, NAME/VERSION or NAME@ALIAS")
        return check_name(name), None, int(v)
    return check_name(ref), None, None


def resolve(ref: str) -> dict[str, Any]:
    """The version record for 'name', 'name/3' or 'name@alias'."""
    name, alias, version = parse_ref(ref)
    spec = _spec(name)
    if alias is not None:
        aliases = spec.get("aliases", {})
        if alias not in aliases:
            near = closest(alias, list(aliases))
            raise NotFoundError(
                f"index {name!r} has no alias {alias!r}",
                hint=(f"did you mean {name}@{near}? " if near else "")
                + f"set one with `roost index alias {name} VERSION {alias}`",
            )
        version = aliases[alias]
    if not spec["versions"]:
        raise NotFoundError(f"index {name!r} has no versions")
    if version is None:
        return {"name": name, **spec["versions"][-1]}
    for v in spec["versions"]:
        if v["version"] == version:
            return {"name": name, **v}
    raise NotFoundError(
        f"index {name!r} has no version {version}", hint=f"versions: {[v['version'] for v in spec['versions']]}"
    )


def set_alias(name: str, version: int, alias: str) -> None:
    """Point name@alias at a version."""
    if not _NAME.match(alias or "") or alias.isdigit():
        raise RoostError(f"invalid alias {alias!r}", hint="aliases are names like prod or staging")
    resolve(f"{name}/{int(version)}")

    def point(spec: dict[str, Any] | None) -> dict[str, Any]:
        spec = spec or _spec(name)
        spec.setdefault("aliases", {})[alias] = int(version)
        return spec

    _store().update_object(OBJECT_KIND, name, point)


def local_dir(record: dict[str, Any]) -> Path:
    """A local folder holding the version's files (downloaded to the workspace cache when remote)."""
    from roost import artifacts, workspace

    cache = workspace.current().state_dir / "cache" / "indexes" / record["name"] / str(record["version"])
    return artifacts.fetch(record["uri"], cache)


def load_index(ref: str, threads: int = 0) -> Index:
    """Load an index version from the repository ('name', 'name/3', 'name@alias') or a folder path."""
    p = Path(ref)
    if (p / "index.json").is_file():
        return Index.load(p, threads=threads)
    record = resolve(ref)
    index = Index.load(local_dir(record), threads=threads)
    index.meta.update(
        {
            "name": record["name"],
            "version": record["version"],
            "run_id": record["run_id"],
            "recall_at_10": record.get("recall_at_10"),
        }
    )
    return index


def update_index(
    ref: str,
    upsert: str | Path | Embeddings | Any | None = None,
    delete: Sequence[Any] = (),
    id_column: str | None = None,
    vector_column: str | None = None,
    attributes: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """A new version from an existing one plus upserted and deleted items, without a full rebuild."""
    record = resolve(ref)
    index = load_index(f"{record['name']}/{record['version']}")
    started = time.time()
    n_up = 0
    if upsert is not None:
        emb = (
            upsert if isinstance(upsert, Embeddings) else read_embeddings(upsert, id_column, vector_column, attributes)
        )
        _fill(index, emb, progress)
        n_up = len(emb.ids)
    missing = index.delete(index.items.coerce(list(delete), lenient=True)) if len(delete) else []
    index.meta.update({"snapshot_time": started, "base_version": record["version"]})
    for k in ("name", "version", "run_id", "recall_at_10"):
        index.meta.pop(k, None)
    params = {"base_version": record["version"], "upserted": n_up, "deleted": len(delete) - len(missing)}
    return _commit(
        record["name"],
        index,
        {
            "snapshot_time": started,
            "id_column": record.get("id_column"),
            "source": record.get("source"),
            "base_version": record["version"],
        },
        params,
        {"count": float(len(index))},
    )


__all__ = ["build_index", "update_index", "load_index", "list_indexes", "list_versions", "resolve", "set_alias", "np"]
