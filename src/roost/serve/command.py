"""The `serve` command (options → ServeConfig → fleet), shared by `roost serve` and `python -m roost.serve`.

It lives in the serve package so that `python -m roost.serve` does not import the CLI (layering: library code never
imports roost.cli); `roost.cli.serve` only registers it. Like every command, it prints; the library below logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from roost.console import echo, print_error


def serve(
    models: list[str] | None = typer.Argument(
        None, help="name@alias, name/VERSION, a package folder, or NAME=any of those to rename it"
    ),
    replicas: int = typer.Option(1, "--replicas", help="worker processes behind the port"),
    port: int = typer.Option(8080, "--port"),
    grpc_port: int | None = typer.Option(
        None, "--grpc-port", help="also serve KServe V2 gRPC (inference.GRPCInferenceService) on this port"
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="interface to bind (0.0.0.0 opens the server)"),
    max_batch: int = typer.Option(64, "--max-batch", help="most rows merged into one model run"),
    threads: int = typer.Option(
        0, "--threads", help="ONNX Runtime intra-op threads per worker (0: 1 for models < 8 MB, else cores/replicas)"
    ),
    log_requests: float = typer.Option(0.0, "--log-requests", help="fraction of requests logged to Parquet (0..1)"),
    log_dir: Path | None = typer.Option(None, "--log-dir", help="request log folder (default: workspace)"),
    max_body_mb: float = typer.Option(64.0, "--max-body-mb", help="largest request body accepted (413 above)"),
    token: str | None = typer.Option(
        None,
        "--token",
        envvar="ROOST_SERVE_TOKEN",
        help="require Authorization: Bearer TOKEN (admin and /metrics always; inference unless --public-inference)",
    ),
    public_inference: bool = typer.Option(
        False, "--public-inference", help="with --token: inference and metadata need no token (admin still does)"
    ),
    allow_host: list[str] | None = typer.Option(
        None,
        "--allow-host",
        metavar="HOST",
        help="also answer this Host name, repeatable ('*' = any, '*.example.com' = subdomains); loopback names and "
        "the bound address always pass (docs/security.md)",
    ),
    poll: float = typer.Option(2.0, "--poll", help="seconds between registry checks of name@alias models"),
    grace: float = typer.Option(30.0, "--grace", help="seconds SIGTERM waits for in-flight requests"),
    header_timeout: float = typer.Option(
        10.0, "--header-timeout", envvar="ROOST_HTTP_HEADER_TIMEOUT", help="seconds a request's headers may take (408)"
    ),
    body_timeout: float = typer.Option(
        30.0, "--body-timeout", envvar="ROOST_HTTP_BODY_TIMEOUT", help="seconds a body may take, +1 s per 16 KiB"
    ),
    keepalive: float = typer.Option(
        30.0, "--keepalive", envvar="ROOST_HTTP_KEEPALIVE", help="seconds an idle connection stays open"
    ),
    max_connections: int = typer.Option(
        2048, "--max-connections", envvar="ROOST_HTTP_MAX_CONNECTIONS", help="open connections per worker (503 above)"
    ),
    alert_rules: Path | None = typer.Option(
        None, "--alert-rules", help="write Prometheus alerting rules to this YAML file"
    ),
    alert_p99_ms: float = typer.Option(100.0, "--alert-p99-ms", help="p99 latency alert threshold"),
    alert_error_rate: float = typer.Option(0.01, "--alert-error-rate", help="5xx ratio alert threshold"),
    index: list[str] | None = typer.Option(
        None, "--index", help="also serve a vector index (NAME, NAME@alias, NAME/3): POST /v1/indexes/NAME/search"
    ),
    recommend: list[str] | None = typer.Option(
        None, "--recommend", metavar="INDEX=USER_MODEL[,RANKER]", help="two-stage endpoint POST /v1/recommend/INDEX"
    ),
    canary: list[str] | None = typer.Option(
        None,
        "--canary",
        metavar="MODEL=PERCENT",
        help="also serve MODEL (e.g. churn@candidate=10) and send it PERCENT % of the requests to its name",
    ),
    rollout_seed: int = typer.Option(0, "--rollout-seed", help="seed of the per-request canary and shadow draws"),
    shadow: list[str] | None = typer.Option(
        None,
        "--shadow",
        metavar="MODEL[=PERCENT]",
        help="mirror PERCENT % (default 100) of requests to MODEL off the response path and record both answers",
    ),
    export: tuple[str, Path] | None = typer.Option(
        None,
        "--export",
        metavar="FORMAT OUT",
        help="write a deployment bundle instead of serving: `--export kserve OUT/` (see docs/kserve.md)",
    ),
) -> None:
    """Serve models over HTTP: KServe V2 (/v2/...), TF-Serving REST (/v1/...), /metrics, /openapi.json."""
    import logging
    import os

    from roost import workspace

    if export is not None:
        from roost.serve.export import export as write_export

        if len(models or []) != 1:
            from roost.errors import RoostError

            raise RoostError("--export takes exactly one model", hint="roost serve MODEL --export kserve OUT/")
        if len(canary or []) > 1:
            from roost.errors import RoostError

            raise RoostError("--export takes at most one --canary")
        ex = write_export(
            (models or [""])[0],
            export[0],
            export[1],
            replicas=replicas,
            canary=canary[0] if canary else None,
            grpc_port=grpc_port,
        )
        for note in ex.notes:
            echo(note)
        echo(f"wrote {ex.out}: inferenceservice.yaml ({ex.k8s_name}), Dockerfile ({ex.image}), model/, README.md")
        return
    if alert_rules is not None:
        from roost.serve.metrics import write_alert_rules

        write_alert_rules(str(alert_rules), error_rate=alert_error_rate, p99_seconds=alert_p99_ms / 1000.0)
        echo(f"wrote Prometheus alerting rules to {alert_rules}")
        if not models:
            return
    from roost.serve.config import ServeConfig
    from roost.serve.fleet import serve as run_fleet

    root = os.environ.get("ROOST_WORKSPACE") or workspace.find_root()
    cfg = ServeConfig(
        models=list(models or []),
        host=host,
        port=port,
        grpc_port=grpc_port,
        replicas=replicas,
        max_batch=max_batch,
        threads=threads,
        log_requests=log_requests,
        log_dir=str(log_dir) if log_dir else None,
        max_body_mb=max_body_mb,
        token=token,
        public_inference=public_inference,
        allowed_hosts=list(allow_host) if allow_host else None,
        poll_s=poll,
        grace_s=grace,
        workspace=str(root) if root else None,
        indexes=list(index or []),
        recommend=_recommend_map(recommend),
        canary=list(canary or []),
        rollout_seed=rollout_seed,
        shadow=list(shadow or []),
        header_timeout_s=header_timeout,
        body_timeout_s=body_timeout,
        keepalive_s=keepalive,
        max_connections=max_connections,
    )
    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        echo(f"warning: serving on {host} without --token: admin endpoints answer only local clients")
    print("\n".join(example_requests(list(models or []), host, port, token)), flush=True)  # JSON: no Rich markup
    logging.basicConfig(level=logging.INFO, format="%(asctime)s roost-serve %(levelname)s: %(message)s")
    code = run_fleet(cfg, announce=lambda msg: echo(f"[green]{msg}[/]"))
    if code:
        raise typer.Exit(code)


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
    (typed as the workspace's applied entity declares it) and the inputs the store does not provide; else None."""
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
    return {"inputs": inputs}


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


def _recommend_map(items: list[str] | None) -> dict[str, list[str | None]]:
    """`INDEX=USER_MODEL[,RANKER]` options as {index: [user model, ranker or None]}."""
    from roost.errors import RoostError

    out: dict[str, list[str | None]] = {}
    for item in items or []:
        if "=" not in item:
            raise RoostError(
                f"--recommend {item!r}: expected INDEX=USER_MODEL[,RANKER]",
                hint="e.g. --recommend items=two_tower@prod,ranker@prod",
            )
        idx, models = item.split("=", 1)
        parts = [m for m in models.split(",") if m]
        if not parts or len(parts) > 2:
            raise RoostError(f"--recommend {item!r}: give a user-tower model and optionally a ranker")
        out[idx] = [parts[0], parts[1] if len(parts) > 1 else None]
    return out


def main() -> None:
    """Run the serve command as a standalone Typer app (`python -m roost.serve`)."""
    from roost.errors import RoostError

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(serve)
    try:
        app(prog_name="roost serve")
    except RoostError as exc:
        print_error(exc)
        raise SystemExit(exc.exit_code) from None
