"""roost's records in MLflow's JSON shapes (Experiment, Run, RegisteredModel, ModelVersion) and MLflow's artifact
URIs of a run (mlflow-artifacts:/EXPERIMENT/RUN/artifacts, served by the artifact proxy)."""

from __future__ import annotations

from typing import Any

from roost.registry.mlflow_compat import Point
from roost.registry.modelreg import ModelVersionInfo
from roost.registry.store import RunDict
from roost.server.mlflow.common import ms, seconds_to_ms

# roost's run statuses -> MLflow's (MLflow has no LOST: a run whose process stopped beating ended without a word)
STATUSES = {"RUNNING": "RUNNING", "FINISHED": "FINISHED", "FAILED": "FAILED", "KILLED": "KILLED", "LOST": "FAILED"}
RUN_NAME_TAG, USER_TAG = "mlflow.runName", "mlflow.user"


def artifact_uri(experiment_id: int, run_id: str) -> str:
    """Where an MLflow client reads and writes a run's artifacts (through /api/2.0/mlflow-artifacts/artifacts/)."""
    return f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"


def experiment_json(e: dict[str, Any]) -> dict[str, Any]:
    """An Experiment (roost experiments have int ids, MLflow's are strings of ints)."""
    created = ms(e["created_at"])
    return {
        "experiment_id": str(e["id"]),
        "name": e["name"],
        "artifact_location": f"mlflow-artifacts:/{e['id']}",
        "lifecycle_stage": "active",
        "creation_time": created,
        "last_update_time": created,
        "tags": [],
    }


def param_text(value: Any) -> str:
    """A param as the text MLflow clients see (roost keeps typed params; MLflow's are strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)


def run_info(run: RunDict) -> dict[str, Any]:
    """A RunInfo."""
    info = {
        "run_id": run["run_id"],
        "run_uuid": run["run_id"],
        "run_name": run.get("name") or "",
        "experiment_id": str(run["experiment_id"]),
        "user_id": run.get("user") or "",
        "status": STATUSES.get(run["status"], "FAILED"),
        "start_time": ms(run["start_time"]),
        "artifact_uri": artifact_uri(run["experiment_id"], run["run_id"]),
        "lifecycle_stage": "deleted" if run.get("lifecycle_stage") in ("deleted", "purging") else "active",
    }
    if run.get("end_time") is not None:
        info["end_time"] = ms(run["end_time"])
    return info


def run_json(run: RunDict, points: list[Point]) -> dict[str, Any]:
    """A Run: info, data (latest metrics with their step and time, params, tags) and empty inputs/outputs."""
    tags = dict(run.get("tags") or {})
    if run.get("name") and RUN_NAME_TAG not in tags:
        tags[RUN_NAME_TAG] = run["name"]
    if run.get("user") and USER_TAG not in tags:
        tags[USER_TAG] = run["user"]
    return {
        "info": run_info(run),
        "data": {
            "metrics": [
                {"key": k, "value": _value(v), "step": step, "timestamp": seconds_to_ms(ts)}
                for k, v, step, ts in points
            ],
            "params": [{"key": k, "value": param_text(v)} for k, v in sorted((run.get("params") or {}).items())],
            "tags": [{"key": k, "value": v} for k, v in sorted(tags.items())],
        },
        "inputs": {},
        "outputs": {},
    }


def _value(v: float) -> float | str:
    """A double as proto JSON writes it (NaN and the infinities as strings)."""
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def metric_json(point: dict[str, Any]) -> dict[str, Any]:
    """A Metric of a history."""
    return {
        "key": point["key"],
        "value": _value(point["value"]),
        "step": point["step"],
        "timestamp": seconds_to_ms(point["timestamp"]),
    }


def mlflow_source(v: ModelVersionInfo, run: RunDict | None) -> str:
    """A version's source as MLflow clients fetch it: inside its run's artifacts → mlflow-artifacts:/…"""
    if run is not None:
        root = str(run["artifact_uri"]).rstrip("/")
        if v.source == root or v.source.startswith(root + "/"):
            return artifact_uri(run["experiment_id"], run["run_id"]) + v.source[len(root) :]
    return v.source


def version_json(v: ModelVersionInfo, run: RunDict | None) -> dict[str, Any]:
    """A ModelVersion (stages are not roost's: every version is in stage "None"; aliases are)."""
    created = ms(v.created_at)
    out: dict[str, Any] = {
        "name": v.name,
        "version": str(v.version),
        "creation_timestamp": created,
        "last_updated_timestamp": created,
        "current_stage": "None",
        "description": "",
        "source": mlflow_source(v, run),
        "status": "READY",
        "tags": [],
        "aliases": list(v.aliases),
    }
    if v.run_id:
        out["run_id"] = v.run_id
    return out


def model_json(m: dict[str, Any], latest: list[dict[str, Any]]) -> dict[str, Any]:
    """A RegisteredModel with its latest version and aliases."""
    created = ms(m["created_at"])
    return {
        "name": m["name"],
        "creation_timestamp": created,
        "last_updated_timestamp": max([created or 0, *(v["creation_timestamp"] or 0 for v in latest)]),
        "description": m.get("description") or "",
        "latest_versions": latest,
        "aliases": [{"alias": a, "version": str(n)} for a, n in sorted(m.get("aliases", {}).items())],
        "tags": [],
    }
