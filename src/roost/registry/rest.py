"""RestStore: the TrackingStore interface over a `roost server`'s REST API (/api/v1), for clients that hold only a
URL and a token. One pooled httpx client per store; connect errors, 5xx and 429 are retried with backoff, and every
write carries an Idempotency-Key, so a batch sent twice is applied once; a 4xx is the matching RoostError."""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from roost.errors import ConflictError, NotFoundError, RoostError
from roost.registry.interface import MetricPoint
from roost.registry.modelreg import ModelVersionInfo, fetch_package
from roost.registry.retention import GC_BATCH, GcReport, Progress, StageChange
from roost.registry.wire import dumps, loads

log = logging.getLogger(__name__)

RETRY_FOR_S = 30.0  # how long one call keeps retrying a server that is down or overloaded (ROOST_SERVER_RETRY_S)
_TIMES = ("start_time", "end_time", "heartbeat_at", "created_at", "changed_at")


class ServerUnavailable(RoostError):
    """The server could not be reached (or kept answering 5xx/429) for the whole retry window."""


def parse_times(d: dict[str, Any]) -> dict[str, Any]:
    """`d` with its ISO 8601 time fields as datetimes."""
    for k in _TIMES:
        v = d.get(k)
        if isinstance(v, str):
            d[k] = datetime.fromisoformat(v)
    return d


def version_info(d: dict[str, Any]) -> ModelVersionInfo:
    """A ModelVersionInfo from its JSON form."""
    parse_times(d)
    return ModelVersionInfo(
        d["name"], int(d["version"]), d.get("run_id"), d["source"], d.get("created_at"),
        list(d.get("aliases") or []), d.get("signature"), d.get("meta"),
    )  # fmt: skip


def _q(part: str) -> str:
    return quote(str(part), safe="")


class RestStore:
    """A roost server as a store: `RestStore("https://roost.example.com", token="roost_…")`."""

    remote = True

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 60.0) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.token = token
        headers = {"Accept": "application/json", "User-Agent": "roost-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            base_url=self.url + "/api/v1",
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=5.0),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
        )
        self._retry_for = float(os.environ.get("ROOST_SERVER_RETRY_S") or RETRY_FOR_S)
        self._experiment_ids: dict[str, int] = {}
        self._lock = threading.Lock()
        self._local = threading.local()  # per thread: the notices of the last search (see filter_notices)

    def __repr__(self) -> str:
        return f"RestStore({self.url!r})"

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    # -- transport ------------------------------------------------------------------------------------------
    def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
             key: str | None = None, retry: bool = True) -> Any:  # fmt: skip
        """One API call: JSON in and out; retried on connect errors (always) and 5xx/429 (when `retry`)."""
        import httpx

        headers = {"Content-Type": "application/json"} if body is not None else {}
        if key is not None:
            headers["Idempotency-Key"] = key
        content = dumps(body) if body is not None else None
        deadline = time.monotonic() + self._retry_for
        delay = 0.1
        while True:
            why: str
            try:
                resp = self._client.request(method, path, content=content, params=params, headers=headers)
            except httpx.ConnectError as exc:  # never reached the server: always safe to send again
                why = f"cannot connect: {exc}"
            except httpx.TransportError as exc:
                if not (retry or key is not None):
                    raise ServerUnavailable(f"{method} {self.url}{path} failed: {exc}") from None
                why = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code < 400:
                    return loads(resp.content) if resp.content else None
                if not (resp.status_code >= 500 or resp.status_code == 429) or not (retry or key is not None):
                    raise _error(resp, method, path)
                why = f"HTTP {resp.status_code}"
            if time.monotonic() + delay > deadline:
                raise ServerUnavailable(
                    f"the roost server {self.url} did not answer {method} {path} for {self._retry_for:g} s ({why})",
                    hint="check that `roost server` is up (ROOST_SERVER_RETRY_S sets how long clients wait)",
                )
            log.info("roost server %s: %s; retrying %s %s in %.1f s", self.url, why, method, path, delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    # -- experiments ----------------------------------------------------------------------------------------
    def get_or_create_experiment(self, name: str) -> int:
        """The id of experiment `name`, created if missing (cached)."""
        cached = self._experiment_ids.get(name)
        if cached is None:
            cached = int(self.call("POST", "/experiments", {"name": name})["id"])
            self._experiment_ids[name] = cached
        return cached

    def list_experiments(self) -> list[dict[str, Any]]:
        """Every experiment with its run count."""
        return [parse_times(e) for e in self.call("GET", "/experiments")["experiments"]]

    # -- runs -----------------------------------------------------------------------------------------------
    def insert_run(self, row: dict[str, Any], params: dict[str, Any], tags: dict[str, str]) -> None:
        """Create the run on the server; its artifact_uri (a proxy URI) and user come back into `row`."""
        out = self.call("POST", "/runs", {"row": row, "params": params, "tags": tags}, key=uuid.uuid4().hex)
        row["artifact_uri"], row["user"] = out["artifact_uri"], out["user"]

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set status / end_time / name of a run."""
        self.call("PATCH", f"/runs/{_q(run_id)}", fields)

    def log_batch(
        self,
        run_id: str,
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
        metrics: Iterable[MetricPoint] = (),
        heartbeat: bool = False,
        finish: tuple[str, datetime] | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        """Send params, tags and points in one request (applied once per key, however often it is retried)."""
        points = [[k, v if math.isfinite(v) else str(v), st, ts] for k, v, st, ts in metrics]
        body = {"params": params or {}, "tags": tags or {}, "metrics": points, "heartbeat": heartbeat,
                "finish": list(finish) if finish else None}  # fmt: skip
        self.call("POST", f"/runs/{_q(run_id)}/log-batch", body, key=idempotency_key or uuid.uuid4().hex)

    def get_run(self, run_id: str) -> dict[str, Any]:
        """A run by id or unique prefix."""
        return parse_times(self.call("GET", f"/runs/{_q(run_id)}"))

    def runs_by_ids(self, ids: Iterable[str], reap: bool = True) -> dict[str, dict[str, Any]]:
        """Runs by full id (unknown ids left out)."""
        wanted = [i for i in dict.fromkeys(ids) if i]
        if not wanted:
            return {}
        found = self.call("POST", "/runs/get", {"ids": wanted, "reap": reap})["runs"]
        return {k: parse_times(v) for k, v in found.items()}

    def heartbeat(self, run_ids: list[str]) -> None:
        """Record that the runs' process is alive."""
        if run_ids:
            self.call("POST", "/runs/heartbeat", {"run_ids": list(run_ids)})

    def mark_lost(self, timeout_s: float | None = None) -> list[str]:
        """Mark stale RUNNING runs LOST (on the server); returns their ids."""
        return list(self.call("POST", "/runs/mark-lost", {"timeout_s": timeout_s})["run_ids"])

    def search_runs(
        self,
        filter: str | None = None,
        experiment: str | list[str] | None = None,
        order_by: str | list[str] | None = None,
        limit: int | None = 1000,
        offset: int = 0,
        after: tuple[datetime, str] | None = None,
        stages: Iterable[str] = ("active",),
    ) -> list[dict[str, Any]]:
        """Runs matching a filter expression, ordered (keyset page with `after`)."""
        wants_notices = bool(filter and filter.strip())
        body = {"filter": filter, "experiment": experiment, "order_by": order_by, "limit": limit, "offset": offset,
                "after": list(after) if after else None, "stages": list(stages), "notices": wants_notices}  # fmt: skip
        out = self.call("POST", "/runs/search", body)
        if "notices" in out:  # kept for this thread's next filter_notices of the same filter (api.search_runs)
            self._local.notices = (filter, json.dumps(experiment), list(out["notices"]))
        return [parse_times(r) for r in out["runs"]]

    def metric_history(self, run_id: str, key: str | None = None) -> list[dict[str, Any]]:
        """Every point of a run's metrics."""
        params = {"key": key} if key is not None else None
        return list(self.call("GET", f"/runs/{_q(run_id)}/metrics", params=params)["points"])

    def delete_run(self, run_id: str) -> None:
        """Delete a run and its records."""
        self.call("DELETE", f"/runs/{_q(run_id)}")

    def delete_tags(self, run_id: str, keys: list[str]) -> None:
        """Remove tags of a run."""
        if keys:
            self.call("POST", f"/runs/{_q(run_id)}/tags/delete", {"keys": list(keys)})

    def filter_notices(self, filter: str | None, experiment: str | list[str] | None = None) -> list[str]:
        """Keys a filter names that no run has."""
        if not (filter and filter.strip()):
            return []
        kept = getattr(self._local, "notices", None)
        self._local.notices = None
        if kept is not None and kept[:2] == (filter, json.dumps(experiment)):
            return list(kept[2])  # came with the search just made: no second request
        return list(self.call("POST", "/runs/filter-notices", {"filter": filter, "experiment": experiment})["notices"])

    # -- objects --------------------------------------------------------------------------------------------
    def put_object(self, kind: str, name: str, spec: dict[str, Any]) -> None:
        """Insert or replace a named JSON object."""
        self.call("PUT", f"/objects/{_q(kind)}/{_q(name)}", {"spec": spec})

    def get_object(self, kind: str, name: str) -> dict[str, Any] | None:
        """A named JSON object or None."""
        found: dict[str, Any] | None = self.call("GET", f"/objects/{_q(kind)}/{_q(name)}")["spec"]
        return found

    def list_objects(self, kind: str) -> dict[str, dict[str, Any]]:
        """All objects of a kind, by name."""
        return dict(self.call("GET", f"/objects/{_q(kind)}")["objects"])

    def delete_object(self, kind: str, name: str) -> None:
        """Remove a named object."""
        self.call("DELETE", f"/objects/{_q(kind)}/{_q(name)}")

    def update_object(
        self, kind: str, name: str, change: Callable[[dict[str, Any] | None], dict[str, Any]]
    ) -> dict[str, Any]:
        """Read-modify-write: the server applies the new spec only if the object is still what was read (409 →
        read again, up to 20 times). A PUT is not resent on 5xx (only when it never reached the server), so a
        change is never applied twice."""
        for _ in range(20):
            current = self.get_object(kind, name)
            new = change(copy.deepcopy(current))
            try:
                body = {"spec": new, "expect": current, "check": True}
                self.call("PUT", f"/objects/{_q(kind)}/{_q(name)}", body, retry=False)
            except ConflictError:
                continue
            return new
        raise ConflictError(f"object {kind}/{name} kept changing under this update", hint="try again")

    # -- model registry -------------------------------------------------------------------------------------
    def register_model(self, name: str, source: str, run_id: str | None) -> ModelVersionInfo:
        """Create the next version of `name` from a run's artifacts (a source the server can read)."""
        if run_id is None and source.startswith("file://"):
            raise RoostError(
                f"cannot register {source} through the roost server: the server cannot read this machine's files",
                hint="log the package to a run (roost.log_artifact) and register it from the run",
            )
        out = self.call("POST", f"/models/{_q(name)}/versions", {"source": source, "run_id": run_id}, retry=False)
        return version_info(out)

    def set_alias(self, name: str, version: int, alias: str) -> bool:
        """Point name@alias at `version`; False (no move recorded) when it already points there."""
        out = self.call("PUT", f"/models/{_q(name)}/aliases/{_q(alias)}", {"version": version})
        return bool(out.get("moved", True))

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove name@alias."""
        self.call("DELETE", f"/models/{_q(name)}/aliases/{_q(alias)}")

    def get_version(self, name: str, version: int) -> ModelVersionInfo:
        """One version of a model."""
        return version_info(self.call("GET", f"/models/{_q(name)}/versions/{_q(str(version))}"))

    def list_models(self) -> list[dict[str, Any]]:
        """Registered models."""
        return [parse_times(m) for m in self.call("GET", "/models")["models"]]

    def list_versions(self, name: str) -> list[ModelVersionInfo]:
        """Versions of a model, oldest first."""
        return [version_info(v) for v in self.call("GET", f"/models/{_q(name)}/versions")["versions"]]

    def alias_history(self, name: str) -> list[dict[str, Any]]:
        """Every alias move of a model, oldest first."""
        return [parse_times(h) for h in self.call("GET", f"/models/{_q(name)}/alias-history")["history"]]

    def lookup_version(self, uri: str) -> ModelVersionInfo:
        """'name@alias' | 'name/3' | 'name' → its version (nothing downloaded)."""
        return version_info(self.call("GET", "/models/resolve", params={"uri": uri}))

    def resolve(self, uri: str, cache_root: Path | None = None) -> ModelVersionInfo:
        """The version with its package downloaded through the artifact proxy into `cache_root`."""
        return fetch_package(self.lookup_version(uri), cache_root)

    # -- retention ------------------------------------------------------------------------------------------
    def change_stage(
        self,
        action: str,
        run_ids: Iterable[str] | None = None,
        filter: str | None = None,
        experiment: str | list[str] | None = None,
        older_than: Any = None,
        dry_run: bool = False,
        force: bool = False,
        progress: Progress | None = None,
    ) -> StageChange:
        """Delete (soft), archive or restore matching runs on the server (manage on their experiments)."""
        body = {"run_ids": list(run_ids or []), "filter": filter, "experiment": experiment,
                "older_than": _age(older_than), "dry_run": dry_run, "force": force}  # fmt: skip
        out = StageChange(**self.call("POST", f"/retention/{_q(action)}", body, retry=False))
        if progress is not None:
            progress(len(out.run_ids), len(out.run_ids))
        return out

    def gc(
        self,
        older_than: Any = None,
        dry_run: bool = False,
        batch_size: int = GC_BATCH,
        vacuum: bool = False,
        progress: Progress | None = None,
    ) -> GcReport:
        """Permanently remove deleted runs on the server (admin only)."""
        body = {"older_than": _age(older_than), "dry_run": dry_run, "batch_size": batch_size, "vacuum": vacuum}
        out = GcReport(**self.call("POST", "/retention/gc", body, retry=False))
        if progress is not None:
            progress(len(out.run_ids), len(out.run_ids))
        return out


def _age(value: Any) -> Any:
    """An older_than for JSON: text as given, a timedelta as seconds ('123s')."""
    from datetime import timedelta

    return f"{value.total_seconds():g}s" if isinstance(value, timedelta) else value


def _error(resp: Any, method: str, path: str) -> RoostError:
    """The RoostError of a 4xx answer (its message and hint from the server's error body)."""
    try:
        err = json.loads(resp.content)["error"]
        message, hint = str(err["message"]), err.get("hint")
    except (ValueError, KeyError, TypeError):
        message, hint = f"{method} {path}: HTTP {resp.status_code}", None
    status = resp.status_code
    if status == 404:
        return NotFoundError(message, hint)
    if status == 409:
        return ConflictError(message, hint)
    if status == 401:
        return RoostError(message, hint or "sign in again: `roost login URL` (or set ROOST_TOKEN)")
    return RoostError(message, hint)
