"""`roost serve MODEL --export kserve OUT/`: a KServe InferenceService manifest and a container recipe.

OUT/ receives `inferenceservice.yaml` (serving.kserve.io/v1beta1, a custom-container predictor that runs
`roost serve`), a `Dockerfile` (python:3.11-slim, roost without torch, the package in /models/NAME, non-root),
the package under `model/`, `wheels/` (drop a roost wheel there to build without an index), `request.json` (a V2
request that matches the signature) and a `README.md` with the build and deploy commands. See docs/kserve.md.

Field names follow the v1beta1 CRD of KServe 0.20 (config/crd/full/serving.kserve.io_inferenceservices.yaml):
a custom predictor is `spec.predictor.containers`; `protocolVersion` exists only on the model-format specs
(`predictor.model`, `predictor.sklearn`, ...), so a custom container declares its protocol with the `PROTOCOL`
environment variable, which is what KServe's CustomPredictor.GetProtocol reads.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.errors import RoostError

FORMATS = ("kserve",)
PORT = 8080
UID = 10001
CONTAINER = "kserve-container"  # the name KServe gives (and looks for in) a single custom predictor container
NAME_MAX = 45  # KServe derives NAME-predictor-00001-deployment-... objects whose names must stay under 63
# what a serving process imports (measured: path-spec serving loads nothing else); torch is not among them
SERVE_DISTS = (
    "numpy",
    "onnx",  # the matrix serving graph of column models (roost.serve.matrixgraph; without it: the package's graph)
    "onnxruntime",
    "orjson",
    "prometheus-client",
    "pydantic",
    "pyyaml",
    "rich",
    "typer",
    "uvicorn[standard]",
)
SKIP_IN_COPY = ("native",)  # native checkpoints: serving reads model.onnx only
MARKER = "inferenceservice.yaml"


@dataclass
class Export:
    """What an export wrote."""

    out: Path
    name: str
    k8s_name: str
    version: str
    image: str
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def k8s_name(name: str) -> str:
    """A model name as an InferenceService name: lower-case DNS-1035 label (KServe's `[a-z]([-a-z0-9]*[a-z0-9])?`)."""
    s = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    s = re.sub(r"-{2,}", "-", s)
    if not s or not s[0].isalpha():
        s = f"m-{s}".rstrip("-")
    return s[:NAME_MAX].rstrip("-")


def image_ref(name: str, version: str) -> str:
    """The image the recipe builds: roost-serve-<name>:<version>."""
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(version)).lstrip(".-")[:128] or "latest"
    return f"roost-serve-{k8s_name(name)}:{tag}"


def serve_requirements() -> list[str]:
    """Requirement strings for a serving image: roost's own pins of SERVE_DISTS (from its installed metadata)."""
    import importlib.metadata as md

    want = {_norm(d.split("[")[0]): d for d in SERVE_DISTS}
    found: dict[str, str] = {}
    try:
        reqs = md.requires("roost") or []
    except md.PackageNotFoundError:
        reqs = []
    for r in reqs:
        m = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*?)\s*(;.*)?$", r)
        if m is None or m.group(4) or _norm(m.group(1)) not in want:  # markers: extras-only or conditional
            continue
        ours = want[_norm(m.group(1))]
        extras = ours[ours.index("[") :] if "[" in ours else (m.group(2) or "")
        found[_norm(m.group(1))] = ours.split("[")[0] + extras + m.group(3).replace(" ", "")
    return [found.get(k, v) for k, v in want.items()]


def _norm(dist: str) -> str:
    """A distribution name normalised (PEP 503)."""
    return re.sub(r"[-_.]+", "-", dist).lower()


def container_args(name: str, replicas: int, grpc_port: int | None = None) -> list[str]:
    """The command the container runs: serve the package at /models/<name> on 0.0.0.0:8080 (and gRPC), answering
    any Host name: a pod is reached through service and ingress names unknown here, and has no browser inside
    (docs/security.md; the token guards admin, the Origin check still refuses cross-site POSTs)."""
    src = f"/models/{name}" if name != "model" else "model=/models/model"  # a folder named model takes its parent's
    args = ["roost", "serve", src, "--host", "0.0.0.0", "--port", str(PORT), "--replicas", str(replicas)]
    args += ["--allow-host", "*"]
    return args if grpc_port is None else [*args, "--grpc-port", str(grpc_port)]


def resources(replicas: int, model_bytes: int) -> dict[str, dict[str, str]]:
    """Requests/limits: a CPU per worker; memory for the runtime plus the model, per worker."""
    per_worker = 192 + 3 * (model_bytes >> 20)
    mem = -(-(128 + replicas * per_worker) // 64) * 64
    return {
        "requests": {"cpu": str(replicas), "memory": f"{mem}Mi"},
        "limits": {"cpu": str(replicas), "memory": f"{2 * mem}Mi"},
    }


def manifest(
    name: str,
    version: str,
    image: str,
    replicas: int = 1,
    model_bytes: int = 0,
    min_replicas: int = 1,
    max_replicas: int = 3,
    source: str | None = None,
    canary_percent: float | None = None,
    grpc_port: int | None = None,
) -> dict[str, Any]:
    """The InferenceService (serving.kserve.io/v1beta1) that runs the image as a custom V2 predictor.

    With `grpc_port` the container's one declared port is that port named `h2c`, which is how KServe (Knative
    takes one port per container) learns to route gRPC to it; HTTP keeps serving on 8080 in the pod, for the
    probes."""
    isvc = k8s_name(name)
    probe = {"periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 3}
    annotations = {"roost.model/name": name, "roost.model/version": str(version)}
    if source:
        annotations["roost.model/source"] = source
    doc: dict[str, Any] = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": isvc,
            "labels": {"app.kubernetes.io/name": isvc, "app.kubernetes.io/managed-by": "roost"},
            "annotations": annotations,
        },
        "spec": {
            "predictor": {
                "minReplicas": min_replicas,
                "maxReplicas": max_replicas,
                "containers": [
                    {
                        "name": CONTAINER,
                        "image": image,
                        "args": container_args(name, replicas, grpc_port),
                        "env": [{"name": "PROTOCOL", "value": "v2"}],
                        "ports": [
                            {"name": "http1", "containerPort": PORT, "protocol": "TCP"}
                            if grpc_port is None
                            else {"name": "h2c", "containerPort": grpc_port, "protocol": "TCP"}
                        ],
                        "readinessProbe": {
                            "httpGet": {"path": "/v2/health/ready", "port": PORT},
                            "initialDelaySeconds": 2,
                            **probe,
                        },
                        "livenessProbe": {
                            "httpGet": {"path": "/v2/health/live", "port": PORT},
                            "initialDelaySeconds": 10,
                            **probe,
                            "periodSeconds": 10,
                        },
                        "resources": resources(replicas, model_bytes),
                        "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "allowPrivilegeEscalation": False},
                    }
                ],
            }
        },
    }
    if canary_percent is not None:  # KServe sends this share to this (latest) revision, the rest to the last one
        doc["spec"]["predictor"]["canaryTrafficPercent"] = int(round(canary_percent))
    return doc


def dockerfile(
    name: str, replicas: int, requirements: list[str], roost_version: str, grpc_port: int | None = None
) -> str:
    """A container recipe: python:3.11-slim, roost without torch, the package in /models/<name>, non-root."""
    reqs = " ".join(json.dumps(r) for r in requirements)
    cmd = json.dumps(container_args(name, replicas, grpc_port))
    ports = f"{PORT}" if grpc_port is None else f"{PORT} {grpc_port}"
    return f"""# roost serving image for model {name!r} (written by `roost serve --export kserve`)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# roost itself without its dependencies (training pulls torch; serving never imports it), then exactly what
# serving imports. A roost wheel dropped in wheels/ is used; else roost=={roost_version} from the package index.
ARG ROOST_PIP="roost=={roost_version}"
COPY wheels/ /wheels/
RUN set -eux; \\
    if ls /wheels/roost-*.whl >/dev/null 2>&1; then pip install --no-deps /wheels/roost-*.whl; \\
    else pip install --no-deps "$ROOST_PIP"; fi; \\
    pip install {reqs}; \\
    rm -rf /wheels

RUN useradd --uid {UID} --create-home --shell /usr/sbin/nologin roost
COPY --chown={UID}:{UID} model/ /models/{name}/
USER {UID}
WORKDIR /home/roost

EXPOSE {ports}
CMD {cmd}
"""


def sample_request(package: Any) -> dict[str, Any]:
    """A KServe V2 request with one row of neutral values for every input of the signature."""
    zero = {"BYTES": "", "BOOL": False}
    inputs = []
    for t in package.inputs:
        rest = [d if d > 0 else 1 for d in t.shape[1:]]
        n = 1
        for d in rest:
            n *= d
        v = zero.get(t.v2_datatype, 0.0 if t.v2_datatype.startswith("FP") else 0)
        inputs.append({"name": t.name, "datatype": t.v2_datatype, "shape": [1, *rest], "data": [v] * n})
    return {"inputs": inputs}


def readme(ex: Export, replicas: int, feature_refs: list[str], grpc_port: int | None = None) -> str:
    """Build and deploy commands for the exported folder."""
    notes = "".join(f"\n> {n}\n" for n in ex.notes)
    grpc = (
        ""
        if grpc_port is None
        else f"""
## gRPC

The container also serves KServe V2 gRPC (`inference.GRPCInferenceService`) on port {grpc_port}, declared as the
container's `h2c` port so KServe routes gRPC to it (Knative routes one port per container: the V2 HTTP API stays
on {PORT} inside the pod, where the probes use it). Locally: `docker run --rm -p {grpc_port}:{grpc_port} {ex.image}`
and any KServe V2 gRPC client (e.g. `tritonclient.grpc`) on `localhost:{grpc_port}`.
"""
    )
    return f"""# Serving `{ex.name}` (version {ex.version}) on KServe

Written by `roost serve --export kserve`. Contents: `inferenceservice.yaml` (the KServe resource), `Dockerfile`,
`model/` (the model package), `wheels/` (optional roost wheel), `request.json` (an example V2 request).
{notes}
## 1. Build the image (serving never imports torch, so the image stays small)

    # if roost is not on your package index, put a wheel next to the Dockerfile first:
    #   pip wheel --no-deps /path/to/roost -w wheels/
    docker build -t {ex.image} .

Try it locally: `docker run --rm -p {PORT}:{PORT} {ex.image}`, then

    curl -s localhost:{PORT}/v2/health/ready
    curl -s -H 'Content-Type: application/json' -d @request.json localhost:{PORT}/v2/models/{ex.name}/infer

## 2. Push it where the cluster can pull it

    docker tag {ex.image} REGISTRY/{ex.image}
    docker push REGISTRY/{ex.image}

and set `spec.predictor.containers[0].image` in `inferenceservice.yaml` to `REGISTRY/{ex.image}`.

## 3. Deploy (a cluster with KServe installed)

    kubectl apply -f inferenceservice.yaml
    kubectl get inferenceservice {ex.k8s_name}     # READY=True, URL=...
    SERVICE_HOST=$(kubectl get inferenceservice {ex.k8s_name} -o jsonpath='{{.status.url}}' | cut -d/ -f3)
    curl -s -H "Host: $SERVICE_HOST" -H 'Content-Type: application/json' -d @request.json \\
        http://$INGRESS_HOST:$INGRESS_PORT/v2/models/{ex.name}/infer

Each pod runs `roost serve` with {replicas} worker process(es) (`--replicas`); KServe scales pods between
`minReplicas` and `maxReplicas`. The predictor speaks the KServe V2 protocol (`PROTOCOL=v2`), and also answers
TF-Serving REST under `/v1/models/{ex.name}:predict`. Metrics for Prometheus are at `/metrics`.
{grpc}""" + (
        ""
        if not feature_refs
        else f"""
## Online features

This model was trained from the feature store ({", ".join(feature_refs[:5])}). The image serves requests that carry
raw feature values; for requests with entity ids, mount a roost workspace and set `ROOST_WORKSPACE` and
`ROOST_ONLINE_STORE` (e.g. `redis://...`) in the container's `env`.
"""
    )


def _check_out(out: Path) -> None:
    """OUT must be new, empty, or an earlier export (which is replaced)."""
    if out.exists() and not out.is_dir():
        raise RoostError(f"--export: {out} is a file", hint="pass a folder, e.g. --export kserve deploy/")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise RoostError(f"--export: {out} is not empty and holds no earlier export", hint="pass a new or empty folder")


def export(
    model: str,
    fmt: str,
    out: str | Path,
    replicas: int = 1,
    canary: str | None = None,
    grpc_port: int | None = None,
) -> Export:
    """Write the deployment bundle for one model spec (a path, name/VERSION or name@alias) into `out`; with
    `canary` (MODEL=PERCENT) the bundle holds the canary model and the manifest its canaryTrafficPercent; with
    `grpc_port` the container also serves gRPC there, declared as KServe's h2c port."""
    import importlib.metadata as md

    import yaml

    from roost.serve.loader import parse_spec, resolve

    if fmt not in FORMATS:
        raise RoostError(f"--export: unknown format {fmt!r}", hint=f"one of: {', '.join(FORMATS)}")
    if replicas < 1:
        raise RoostError(f"--replicas must be at least 1, got {replicas}")
    if grpc_port is not None and not (0 < grpc_port < 65536 and grpc_port != PORT):
        raise RoostError(
            f"--grpc-port {grpc_port} cannot be exported", hint=f"pick a port in 1..65535 other than {PORT} (HTTP)"
        )
    out = Path(out).expanduser().resolve()
    _check_out(out)
    percent: float | None = None
    if canary is not None:
        from roost.serve.rollout import parse_canary

        c = parse_canary(canary)
        if c.spec.name != parse_spec(model).name:
            raise RoostError(f"--canary {canary!r} is not a version of {model!r}", hint="e.g. churn@candidate=10")
        model, percent = c.spec.source, c.percent
    res = resolve(parse_spec(model))
    pkg, name = res.package, res.spec.name
    try:
        roost_version = md.version("roost")
    except md.PackageNotFoundError:
        roost_version = "0.1.0"
    ex = Export(out, name, k8s_name(name), res.version, image_ref(name, res.version))
    if ex.k8s_name != name:
        ex.notes.append(
            f"The InferenceService is named `{ex.k8s_name}` (Kubernetes names are lower-case DNS "
            f"labels); the model is still served as `{name}`."
        )
    out.mkdir(parents=True, exist_ok=True)
    dest = out / "model"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(pkg.path, dest, ignore=shutil.ignore_patterns(*SKIP_IN_COPY), symlinks=False)
    model_bytes = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    (out / "wheels").mkdir(exist_ok=True)
    (out / "wheels" / ".keep").write_text("")
    doc = manifest(
        name,
        res.version,
        ex.image,
        replicas,
        model_bytes,
        source=res.spec.source,
        canary_percent=percent,
        grpc_port=grpc_port,
    )
    if percent is not None:
        ex.notes.append(
            f"canaryTrafficPercent: {doc['spec']['predictor']['canaryTrafficPercent']}: KServe sends that share to "
            f"this revision (version {res.version}) and the rest to the last fully rolled-out one; apply the "
            "primary's export first, promote by removing the field (or setting 100)."
        )
    files = {
        MARKER: yaml.safe_dump(doc, sort_keys=False),
        "Dockerfile": dockerfile(name, replicas, serve_requirements(), roost_version, grpc_port),
        "request.json": json.dumps(sample_request(pkg), indent=2) + "\n",
        "README.md": readme(ex, replicas, pkg.feature_refs, grpc_port),
        ".dockerignore": "README.md\ninferenceservice.yaml\nrequest.json\n",
    }
    for fname, text in files.items():
        (out / fname).write_text(text)
    ex.files = [out / f for f in files] + [dest]
    return ex
