"""Example requests printed when `roost serve` starts: one `curl` per model, KServe V2 and TF-Serving REST."""

from __future__ import annotations

from typing import Any


def example_requests(models: list[str], host: str, port: int, token: str | None = None) -> list[str]:
    """An example `curl` per served model, KServe V2 and TF-Serving REST, with one row of neutral values."""
    import json
    import shlex

    from roost.serve.export import sample_request
    from roost.serve.loader import parse_spec, resolve

    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
    auth = " -H 'Authorization: Bearer <token>'" if token else ""
    lines = []
    for spec in models:
        res = resolve(parse_spec(spec))
        v2 = entity_request(res.package) or sample_request(res.package)
        row = {t["name"]: t["data"][0] if len(t["data"]) == 1 else t["data"] for t in v2["inputs"]}
        base = f"http://{shown}:{port}"
        lines += [
            f"example requests for {res.spec.name} (one row; replace the values):",
            f"  curl -s{auth} -H 'Content-Type: application/json' -d {shlex.quote(json.dumps(v2))} "
            f"{base}/v2/models/{res.spec.name}/infer",
            f"  curl -s{auth} -d {shlex.quote(json.dumps({'instances': [row]}))} "
            f"{base}/v1/models/{res.spec.name}:predict",
        ]
    return lines


def entity_request(package: Any) -> dict[str, Any] | None:
    """For a model that reads its features from the online store: a V2 request with one entity id per join key
    (typed as the workspace's applied entity declares it), the inputs the store does not provide and the request
    fields of its request-time features; else None."""
    from roost.serve.export import sample_request

    if not package.feature_refs or not package.entities:
        return None
    fetched = {ref.rsplit(":", 1)[-1] for ref in package.feature_refs}  # "view:field" -> field (features.fill)
    types = _join_key_types()
    inputs: list[dict[str, Any]] = []
    for key in package.entities:
        if types.get(key) == "string":
            inputs.append({"name": key, "datatype": "BYTES", "shape": [1], "data": ["id-1"]})
        else:
            inputs.append({"name": key, "datatype": "INT64", "shape": [1], "data": [1]})
    rest = sample_request(package)["inputs"]
    inputs += [t for t in rest if t["name"] not in fetched and t["name"] not in package.entities]
    have = {t["name"] for t in inputs}
    for name, dtype in package.request_fields.items():  # inputs of request-time features
        if name not in have:
            datatype, value = _REQUEST_EXAMPLES.get(dtype, ("FP64", 0.0))
            inputs.append({"name": name, "datatype": datatype, "shape": [1], "data": [value]})
    return {"inputs": inputs}


# request field dtype -> (V2 datatype, neutral example value)
_REQUEST_EXAMPLES: dict[str, tuple[str, Any]] = {
    "int64": ("INT64", 0),
    "int32": ("INT32", 0),
    "float64": ("FP64", 0.0),
    "float32": ("FP32", 0.0),
    "bool": ("BOOL", False),
    "string": ("BYTES", ""),
    "timestamp": ("BYTES", "2024-01-01T00:00:00Z"),
}


def _join_key_types() -> dict[str, str]:
    """Join key name -> dtype of the entities applied in the current workspace ({} when none can be read)."""
    try:
        from roost.features import repo

        specs = repo.list_all("entity")
    except Exception:  # noqa: BLE001 - no workspace or store: the example falls back to integer ids
        return {}
    out: dict[str, str] = {}
    for spec in specs.values():
        keys = spec.get("join_keys")
        if isinstance(keys, dict):
            out.update((str(k), str(v)) for k, v in keys.items())
    return out
