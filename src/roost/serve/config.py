"""Settings of a serving fleet, passed from the supervising parent to its workers as JSON."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from roost.errors import RoostError
from roost.machine import usable_cores
from roost.netpolicy.limits import ConnLimits

CONFIG_ENV = "ROOST_SERVE_CONFIG"
SMALL_MODEL_BYTES = 8 << 20


@dataclass
class ServeConfig:
    """What `roost serve` was asked to do."""

    models: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 8080
    grpc_port: int | None = None  # also serve KServe V2 gRPC on this port (same workers and models)
    replicas: int = 1
    max_batch: int = 64
    threads: int = 0  # intra-op threads per worker; 0 = auto (1 for models < 8 MB, else cores / replicas)
    log_requests: float = 0.0
    log_dir: str | None = None
    max_body_mb: float = 64.0
    token: str | None = None  # bearer token: admin and /metrics always need it, inference unless public_inference
    public_inference: bool = False  # with a token: inference, metadata and /openapi.json stay open
    allowed_hosts: list[str] | None = None  # extra Host names (--allow-host) besides loopback and the bound address
    poll_s: float = 2.0
    grace_s: float = 30.0
    workspace: str | None = None
    indexes: list[str] = field(default_factory=list)  # vector indexes served next to the models (/v1/indexes)
    recommend: dict[str, list[str | None]] = field(default_factory=dict)  # index -> [user-tower model, ranker or None]
    canary: list[str] = field(default_factory=list)  # MODEL=PERCENT: a canary of the model served under its name
    rollout_seed: int = 0  # seed of the per-request canary draw
    shadow: list[str] = field(default_factory=list)  # MODEL[=PERCENT]: mirrored copies of requests, compared
    header_timeout_s: float = 10.0  # slow clients (roost.netpolicy.limits): a request's headers, from its first byte
    body_timeout_s: float = 30.0  # ... its body, from the end of its headers (+ 1 s per 16 KiB received)
    keepalive_s: float = 30.0  # an idle connection (no request in progress) is closed after this long
    max_connections: int = 2048  # per worker; over it a new connection gets a 503 (kept below the fd limit)
    serve_all: bool = False  # --all: every registry model with an alias, loaded on first request (serve.lazy)
    select: list[str] = field(default_factory=list)  # --models GLOB: only registry models matching one
    aliases: list[str] = field(default_factory=list)  # --alias NAME: only these aliases (the first: bare names)
    max_memory: str | None = None  # --max-memory SIZE: the fleet's budget for loaded models (split over workers)

    @property
    def many(self) -> bool:
        """Whether this fleet serves a registry selection on demand (--all, --models, --alias)."""
        return self.serve_all or bool(self.select) or bool(self.aliases)

    def worker_budget(self) -> int | None:
        """Bytes of loaded models each worker may keep (--max-memory shared out equally), or None."""
        from roost.serve.catalog import parse_size

        return None if self.max_memory is None else parse_size(self.max_memory) // max(1, self.replicas)

    def check(self) -> None:
        """Raise RoostError on impossible settings."""
        if self.many or self.max_memory is not None:
            self._check_many()
        elif not self.models:
            raise RoostError(
                "no model to serve",
                hint="roost serve NAME@ALIAS | NAME/VERSION | PATH [...] "
                "(vector indexes alone: roost index serve NAME)",
            )
        if self.replicas < 1:
            raise RoostError(f"--replicas must be at least 1, got {self.replicas}")
        if self.max_batch < 1:
            raise RoostError(f"--max-batch must be at least 1, got {self.max_batch}")
        if not 0.0 <= self.log_requests <= 1.0:
            raise RoostError(f"--log-requests is a sampling rate in 0..1, got {self.log_requests}")
        if not 0 <= self.port < 65536:
            raise RoostError(f"--port must be in 0..65535, got {self.port}")
        if self.grpc_port is not None and not 0 <= self.grpc_port < 65536:
            raise RoostError(f"--grpc-port must be in 0..65535, got {self.grpc_port}")
        if self.max_body_mb <= 0:
            raise RoostError("--max-body-mb must be positive")
        if self.token is not None and (not self.token or not self.token.isprintable() or " " in self.token):
            raise RoostError(
                "--token must be printable characters without spaces",
                hint="e.g. --token $(python -c 'import secrets; print(secrets.token_urlsafe())')",
            )
        if self.canary or self.shadow:
            from roost.serve.loader import parse_spec
            from roost.serve.rollout import parse_canary, parse_shadow

            served = {parse_spec(m).name for m in self.models}
            for flag, item, c in [("--canary", i, parse_canary(i)) for i in self.canary] + [
                ("--shadow", i, parse_shadow(i)) for i in self.shadow
            ]:
                if c.spec.name not in served:
                    raise RoostError(
                        f"{flag} {item!r}: no model is served as {c.spec.name!r}",
                        hint=f"serve the primary too: roost serve {c.spec.name}@prod {flag} {item}",
                    )
        self.limits().check()
        if self.public_inference and not self.token:
            raise RoostError("--public-inference only makes sense with --token (admin endpoints need one)")

    def _check_many(self) -> None:
        """--all / --models / --alias / --max-memory: a registry selection, without explicit models or rollouts."""
        if not self.many:
            raise RoostError("--max-memory applies to registry selections", hint="roost serve --all --max-memory 512MB")
        if self.models:
            raise RoostError(
                f"--all, --models and --alias serve registry models on demand; they do not mix with {self.models[0]!r}",
                hint="drop the model arguments, or run a second `roost serve` for them",
            )
        if self.canary or self.shadow:
            raise RoostError("--canary and --shadow need explicit models", hint="roost serve churn@prod --canary ...")
        self.worker_budget()

    def host_allow_list(self) -> list[str]:
        """The Host header allow-list (docs/security.md): the loopback names, the bound address (on 0.0.0.0/::
        any IP literal and this machine's names) and the --allow-host names ('*' = any)."""
        from roost.netpolicy import allowed_hosts

        return allowed_hosts(self.host, self.allowed_hosts or ())

    def limits(self) -> ConnLimits:
        """The slow-client deadlines and the connection cap of each worker."""
        return ConnLimits(self.header_timeout_s, self.body_timeout_s, self.keepalive_s, self.max_connections)

    @property
    def max_body(self) -> int:
        """The body size limit in bytes."""
        return int(self.max_body_mb * (1 << 20))

    def intra_op_threads(self, model_bytes: int | None = None) -> int:
        """ONNX Runtime intra-op threads per worker: explicit; else 1 for small models (thread-pool handoffs cost
        more than they save on tabular graphs), else the cores shared out among replicas."""
        if self.threads > 0:
            return self.threads
        if model_bytes is not None and model_bytes < SMALL_MODEL_BYTES:
            return 1
        return max(1, usable_cores() // max(1, self.replicas))

    def request_log_dir(self) -> Path | None:
        """Where sampled request logs go: --log-dir, else <workspace>/.roost/request_logs, else None."""
        if self.log_requests <= 0:
            return None
        if self.log_dir:
            return Path(self.log_dir).expanduser().resolve()
        if self.workspace:
            return Path(self.workspace) / ".roost" / "request_logs"
        raise RoostError("--log-requests needs a place to write", hint="pass --log-dir DIR or run inside a workspace")

    def shadow_log_dir(self) -> Path:
        """Where shadow comparisons go: the request-log folder (--log-dir, else <workspace>/.roost/request_logs)."""
        if self.log_dir:
            return Path(self.log_dir).expanduser().resolve()
        if self.workspace:
            return Path(self.workspace) / ".roost" / "request_logs"
        raise RoostError(
            "--shadow needs a place to write its comparisons", hint="pass --log-dir DIR or use a workspace"
        )

    def to_json(self) -> str:
        """Serialise for the worker processes."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        """Read the settings a parent passed."""
        return cls(**json.loads(text))


def parse_recommend(items: list[str] | None) -> dict[str, list[str | None]]:
    """`INDEX=USER_MODEL[,RANKER]` options as {index: [user model, ranker or None]}."""
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


def default_workspace() -> str | None:
    """The workspace the fleet serves from: ROOST_WORKSPACE, else the one above the current folder, else None."""
    from roost import workspace

    root = os.environ.get("ROOST_WORKSPACE") or workspace.find_root()
    return str(root) if root else None
