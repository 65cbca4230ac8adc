"""The `serve` command (options → ServeConfig → fleet), shared by `roost serve` and `python -m roost.serve`.

It lives in the serve package so that `python -m roost.serve` does not import the CLI (layering: library code never
imports roost.cli); `roost.cli.serve` only registers it. Like every command, it prints; the library below logs.
The options are declared once below (typer's `Annotated` form); the command maps them onto a ServeConfig and runs
one of three steps: write a deployment bundle, write alerting rules, or serve.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from roost.console import echo, print_error
from roost.serve.config import ServeConfig, default_workspace, parse_recommend
from roost.serve.examples import entity_request, example_requests

__all__ = ["entity_request", "example_requests", "main", "serve"]

Models = Annotated[
    list[str] | None,
    typer.Argument(help="name@alias, name/VERSION, a package folder, or NAME=any of those to rename it"),
]
Replicas = Annotated[int, typer.Option("--replicas", help="worker processes behind the port")]
Port = Annotated[int, typer.Option("--port")]
GrpcPort = Annotated[
    int | None,
    typer.Option("--grpc-port", help="also serve KServe V2 gRPC (inference.GRPCInferenceService) on this port"),
]
Host = Annotated[str, typer.Option("--host", help="interface to bind (0.0.0.0 opens the server)")]
MaxBatch = Annotated[int, typer.Option("--max-batch", help="most rows merged into one model run")]
Threads = Annotated[
    int,
    typer.Option(
        "--threads", help="ONNX Runtime intra-op threads per worker (0: 1 for models < 8 MB, else cores/replicas)"
    ),
]
LogRequests = Annotated[float, typer.Option("--log-requests", help="fraction of requests logged to Parquet (0..1)")]
LogDir = Annotated[Path | None, typer.Option("--log-dir", help="request log folder (default: workspace)")]
MaxBodyMb = Annotated[float, typer.Option("--max-body-mb", help="largest request body accepted (413 above)")]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="ROOST_SERVE_TOKEN",
        help="require Authorization: Bearer TOKEN (admin and /metrics always; inference unless --public-inference)",
    ),
]
PublicInference = Annotated[
    bool,
    typer.Option("--public-inference", help="with --token: inference and metadata need no token (admin still does)"),
]
AllowHost = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-host",
        metavar="HOST",
        help="also answer this Host name, repeatable ('*' = any, '*.example.com' = subdomains); loopback names and "
        "the bound address always pass (docs/security.md)",
    ),
]
Poll = Annotated[float, typer.Option("--poll", help="seconds between registry checks of name@alias models")]
Grace = Annotated[float, typer.Option("--grace", help="seconds SIGTERM waits for in-flight requests")]
HeaderTimeout = Annotated[
    float,
    typer.Option(
        "--header-timeout", envvar="ROOST_HTTP_HEADER_TIMEOUT", help="seconds a request's headers may take (408)"
    ),
]
BodyTimeout = Annotated[
    float,
    typer.Option("--body-timeout", envvar="ROOST_HTTP_BODY_TIMEOUT", help="seconds a body may take, +1 s per 16 KiB"),
]
Keepalive = Annotated[
    float, typer.Option("--keepalive", envvar="ROOST_HTTP_KEEPALIVE", help="seconds an idle connection stays open")
]
MaxConnections = Annotated[
    int,
    typer.Option(
        "--max-connections", envvar="ROOST_HTTP_MAX_CONNECTIONS", help="open connections per worker (503 above)"
    ),
]
AlertRules = Annotated[
    Path | None, typer.Option("--alert-rules", help="write Prometheus alerting rules to this YAML file")
]
AlertP99Ms = Annotated[float, typer.Option("--alert-p99-ms", help="p99 latency alert threshold")]
AlertErrorRate = Annotated[float, typer.Option("--alert-error-rate", help="5xx ratio alert threshold")]
Index = Annotated[
    list[str] | None,
    typer.Option("--index", help="also serve a vector index (NAME, NAME@alias, NAME/3): POST /v1/indexes/NAME/search"),
]
Recommend = Annotated[
    list[str] | None,
    typer.Option(
        "--recommend", metavar="INDEX=USER_MODEL[,RANKER]", help="two-stage endpoint POST /v1/recommend/INDEX"
    ),
]
Canary = Annotated[
    list[str] | None,
    typer.Option(
        "--canary",
        metavar="MODEL=PERCENT",
        help="also serve MODEL (e.g. churn@candidate=10) and send it PERCENT % of the requests to its name",
    ),
]
RolloutSeed = Annotated[int, typer.Option("--rollout-seed", help="seed of the per-request canary and shadow draws")]
Shadow = Annotated[
    list[str] | None,
    typer.Option(
        "--shadow",
        metavar="MODEL[=PERCENT]",
        help="mirror PERCENT % (default 100) of requests to MODEL off the response path and record both answers",
    ),
]
ServeAll = Annotated[
    bool, typer.Option("--all", help="serve every registry model with an alias, each loaded on its first request")
]
Select = Annotated[
    list[str] | None,
    typer.Option("--models", metavar="GLOB", help="serve the registry models whose name matches (e.g. 'churn*')"),
]
AliasFilter = Annotated[
    list[str] | None,
    typer.Option(
        "--alias", metavar="NAME", help="serve only these registry aliases (the first: what a bare name means)"
    ),
]
MaxMemory = Annotated[
    str | None,
    typer.Option(
        "--max-memory",
        metavar="SIZE",
        help="with --all/--models/--alias: evict least-recently-used models "
        "above this much (e.g. 512MB; the fleet's, shared out over its workers)",
    ),
]
Export = Annotated[
    tuple[str, Path] | None,
    typer.Option(
        "--export",
        metavar="FORMAT OUT",
        help="write a deployment bundle instead of serving: `--export kserve OUT/` (see docs/kserve.md)",
    ),
]


def serve(
    models: Models = None,
    replicas: Replicas = 1,
    port: Port = 8080,
    grpc_port: GrpcPort = None,
    host: Host = "127.0.0.1",
    max_batch: MaxBatch = 64,
    threads: Threads = 0,
    log_requests: LogRequests = 0.0,
    log_dir: LogDir = None,
    max_body_mb: MaxBodyMb = 64.0,
    token: Token = None,
    public_inference: PublicInference = False,
    allow_host: AllowHost = None,
    poll: Poll = 2.0,
    grace: Grace = 30.0,
    header_timeout: HeaderTimeout = 10.0,
    body_timeout: BodyTimeout = 30.0,
    keepalive: Keepalive = 30.0,
    max_connections: MaxConnections = 2048,
    alert_rules: AlertRules = None,
    alert_p99_ms: AlertP99Ms = 100.0,
    alert_error_rate: AlertErrorRate = 0.01,
    index: Index = None,
    recommend: Recommend = None,
    canary: Canary = None,
    rollout_seed: RolloutSeed = 0,
    shadow: Shadow = None,
    export: Export = None,
    serve_all: ServeAll = False,
    select: Select = None,
    alias: AliasFilter = None,
    max_memory: MaxMemory = None,
) -> None:
    """Serve models over HTTP: KServe V2 (/v2/...), TF-Serving REST (/v1/...), /metrics, /openapi.json."""
    if export is not None:
        write_bundle(list(models or []), list(canary or []), export[0], export[1], replicas, grpc_port)
        return
    if alert_rules is not None:
        write_alerts(alert_rules, alert_error_rate, alert_p99_ms)
        if not models:
            return
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
        workspace=default_workspace(),
        indexes=list(index or []),
        recommend=parse_recommend(recommend),
        canary=list(canary or []),
        rollout_seed=rollout_seed,
        shadow=list(shadow or []),
        header_timeout_s=header_timeout,
        body_timeout_s=body_timeout,
        keepalive_s=keepalive,
        max_connections=max_connections,
        serve_all=serve_all,
        select=list(select or []),
        aliases=list(alias or []),
        max_memory=max_memory,
    )
    run_fleet(cfg)


def write_bundle(
    models: list[str], canary: list[str], fmt: str, out: Path, replicas: int, grpc_port: int | None
) -> None:
    """`--export FORMAT OUT`: write one model's deployment bundle (with at most one canary) and say what it holds."""
    from roost.errors import RoostError
    from roost.serve.export import export

    if len(models) != 1:
        raise RoostError("--export takes exactly one model", hint="roost serve MODEL --export kserve OUT/")
    if len(canary) > 1:
        raise RoostError("--export takes at most one --canary")
    ex = export(models[0], fmt, out, replicas=replicas, canary=canary[0] if canary else None, grpc_port=grpc_port)
    for note in ex.notes:
        echo(note)
    echo(f"wrote {ex.out}: inferenceservice.yaml ({ex.k8s_name}), Dockerfile ({ex.image}), model/, README.md")


def write_alerts(path: Path, error_rate: float, p99_ms: float) -> None:
    """`--alert-rules FILE`: write the Prometheus alerting rules for these thresholds."""
    from roost.serve.metrics import write_alert_rules

    write_alert_rules(str(path), error_rate=error_rate, p99_seconds=p99_ms / 1000.0)
    echo(f"wrote Prometheus alerting rules to {path}")


def run_fleet(cfg: ServeConfig) -> None:
    """Print the example requests (and a warning for an open server without a token), then serve until stopped."""
    import logging

    from roost.serve.fleet import serve as serve_fleet

    if cfg.host not in ("127.0.0.1", "localhost", "::1") and not cfg.token:
        echo(f"warning: serving on {cfg.host} without --token: admin endpoints answer only local clients")
    if cfg.many:
        from roost.serve.catalog import Selection, Snapshot

        cfg.check()
        selection = Selection(tuple(cfg.select), tuple(cfg.aliases))
        echo(f"{len(Snapshot.read(selection).aliases)} registry models match: {selection.describe()}")
    print("\n".join(example_requests(cfg.models, cfg.host, cfg.port, cfg.token)), flush=True)  # JSON: no Rich markup
    logging.basicConfig(level=logging.INFO, format="%(asctime)s roost-serve %(levelname)s: %(message)s")
    code = serve_fleet(cfg, announce=lambda msg: echo(f"[green]{msg}[/]"))
    if code:
        raise typer.Exit(code)


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
