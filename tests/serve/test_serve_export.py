"""`roost serve MODEL --export kserve OUT/`: the manifest against KServe's CRD schema, the recipe's command serves."""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jsonschema
import numpy as np
import pytest
import yaml
from servekit import breast_cancer, free_port, logreg_package, v2_body

import roost

# KServe 0.20's v1beta1 InferenceService openAPIV3Schema (kserve/kserve@aaac4e29,
# config/crd/full/serving.kserve.io_inferenceservices.yaml) trimmed by `crd_schema` below to the branches the
# export writes; every sibling field name is kept, and objects reject unknown fields (kubectl's strict field
# validation). Set ROOST_KSERVE_CRD=<that file> to validate against the whole CRD instead of this copy.
ISVC_SCHEMA_JSON = (
    '{"additionalProperties":false,"properties":{"apiVersion":{"type":"string"},"kind":{"type":"string"},"metadat'
    'a":{"type":"object"},"spec":{"additionalProperties":false,"properties":{"canary":{},"explainer":{},"predicto'
    'r":{"additionalProperties":false,"properties":{"activeDeadlineSeconds":{},"affinity":{},"annotations":{},"au'
    'toScaling":{},"automountServiceAccountToken":{},"batcher":{},"canaryTrafficPercent":{},"containerConcurrency'
    '":{},"containers":{"items":{"additionalProperties":false,"properties":{"args":{"items":{"type":"string"},"typ'
    'e":"array"},"command":{},"env":{"items":{"additionalProperties":false,"properties":{"name":{"type":"string"}'
    ',"value":{"type":"string"},"valueFrom":{}},"required":["name"],"type":"object"},"type":"array"},"envFrom":{}'
    ',"image":{"type":"string"},"imagePullPolicy":{},"lifecycle":{},"livenessProbe":{"additionalProperties":false'
    ',"properties":{"exec":{},"failureThreshold":{"type":"integer"},"grpc":{},"httpGet":{"additionalProperties":f'
    'alse,"properties":{"host":{},"httpHeaders":{},"path":{"type":"string"},"port":{"anyOf":[{"type":"integer"},{'
    '"type":"string"}]},"scheme":{}},"required":["port"],"type":"object"},"initialDelaySeconds":{"type":"integer"'
    '},"periodSeconds":{"type":"integer"},"successThreshold":{},"tcpSocket":{},"terminationGracePeriodSeconds":{}'
    ',"timeoutSeconds":{"type":"integer"}},"type":"object"},"name":{"type":"string"},"ports":{"items":{"additiona'
    'lProperties":false,"properties":{"containerPort":{"type":"integer"},"hostIP":{},"hostPort":{},"name":{"type"'
    ':"string"},"protocol":{"type":"string"}},"required":["containerPort"],"type":"object"},"type":"array"},"read'
    'inessProbe":{"additionalProperties":false,"properties":{"exec":{},"failureThreshold":{"type":"integer"},"grp'
    'c":{},"httpGet":{"additionalProperties":false,"properties":{"host":{},"httpHeaders":{},"path":{"type":"strin'
    'g"},"port":{"anyOf":[{"type":"integer"},{"type":"string"}]},"scheme":{}},"required":["port"],"type":"object"'
    '},"initialDelaySeconds":{"type":"integer"},"periodSeconds":{"type":"integer"},"successThreshold":{},"tcpSock'
    'et":{},"terminationGracePeriodSeconds":{},"timeoutSeconds":{"type":"integer"}},"type":"object"},"resizePolic'
    'y":{},"resources":{"additionalProperties":false,"properties":{"claims":{},"limits":{"additionalProperties":{'
    '"anyOf":[{"type":"integer"},{"type":"string"}],"pattern":"^(\\\\+|-)?(([0-9]+(\\\\.[0-9]*)?)|(\\\\.[0-9]+))(([KM'
    'GTPE]i)|[numkMGTPE]|([eE](\\\\+|-)?(([0-9]+(\\\\.[0-9]*)?)|(\\\\.[0-9]+))))?$"},"type":"object"},"requests":{"a'
    'dditionalProperties":{"anyOf":[{"type":"integer"},{"type":"string"}],"pattern":"^(\\\\+|-)?(([0-9]+(\\\\.[0-9]*'
    ')?)|(\\\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\\\+|-)?(([0-9]+(\\\\.[0-9]*)?)|(\\\\.[0-9]+))))?$"},"type":"ob'
    'ject"}},"type":"object"},"restartPolicy":{},"restartPolicyRules":{},"securityContext":{"additionalPropertie'
    's":false,"properties":{"allowPrivilegeEscalation":{"type":"boolean"},"appArmorProfile":{},"capabilities":{},'
    '"privileged":{},"procMount":{},"readOnlyRootFilesystem":{},"runAsGroup":{},"runAsNonRoot":{"type":"boolean"}'
    ',"runAsUser":{"type":"integer"},"seLinuxOptions":{},"seccompProfile":{}},"type":"object"},"startupProbe":{},'
    '"stdin":{},"stdinOnce":{},"terminationMessagePath":{},"terminationMessagePolicy":{},"tty":{},"volumeDevices"'
    ':{},"volumeMounts":{},"workingDir":{}},"required":["name"],"type":"object"},"type":"array"},"deploymentStrat'
    'egy":{},"dnsConfig":{},"dnsPolicy":{},"enableServiceLinks":{},"hostAliases":{},"hostIPC":{},"hostNetwork":{}'
    ',"hostPID":{},"hostUsers":{},"hostname":{},"hostnameOverride":{},"huggingface":{},"imagePullSecrets":{},"ini'
    'tContainers":{},"labels":{},"lightgbm":{},"logger":{},"maxReplicas":{"type":"integer"},"minReplicas":{"type"'
    ':"integer"},"model":{},"name":{},"nodeName":{},"nodeSelector":{},"onnx":{},"os":{},"overhead":{},"paddle":{}'
    ',"pmml":{},"preemptionPolicy":{},"priority":{},"priorityClassName":{},"pytorch":{},"readinessGates":{},"reso'
    'urceClaims":{},"resources":{},"restartPolicy":{},"runtimeClassName":{},"scaleMetric":{},"scaleMetricType":{}'
    ',"scaleTarget":{},"schedulerName":{},"schedulingGates":{},"securityContext":{},"serviceAccount":{},"serviceA'
    'ccountName":{},"setHostnameAsFQDN":{},"shareProcessNamespace":{},"sklearn":{},"storageContainerName":{},"sto'
    'rageUris":{},"subdomain":{},"tensorflow":{},"terminationGracePeriodSeconds":{},"timeout":{},"tolerations":{}'
    ',"topologySpreadConstraints":{},"triton":{},"volumes":{},"workerSpec":{},"xgboost":{}},"type":"object"},"tra'
    'nsformer":{}},"required":["predictor"],"type":"object"},"status":{}},"type":"object"}'
)
ISVC_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # KServe's webhook: IsvcNameFmt


def crd_schema(crd: dict, instance: object) -> dict:
    """The CRD's v1beta1 openAPIV3Schema as JSON Schema, kept in full along the branches `instance` uses."""

    def conv(node: dict, inst: object) -> dict:
        out: dict = (
            {"anyOf": [{"type": "integer"}, {"type": "string"}]}
            if node.get("x-kubernetes-int-or-string")
            else ({"type": node["type"]} if "type" in node else {})
        )
        out.update({k: node[k] for k in ("required", "enum", "pattern", "minimum", "maximum") if k in node})
        if "properties" in node:
            out["properties"] = {
                k: conv(v, inst[k]) if isinstance(inst, dict) and k in inst else {}
                for k, v in sorted(node["properties"].items())
            }
            if not node.get("x-kubernetes-preserve-unknown-fields"):
                out["additionalProperties"] = False
        elif isinstance(node.get("additionalProperties"), dict):
            vals = list(inst.values()) if isinstance(inst, dict) else []
            out["additionalProperties"] = conv(node["additionalProperties"], vals[0] if vals else None)
        if "items" in node:
            merged: dict = {}
            for it in inst if isinstance(inst, list) else []:
                merged.update(it if isinstance(it, dict) else {})
            out["items"] = conv(node["items"], merged or (inst[0] if isinstance(inst, list) and inst else None))
        return out

    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    return conv(version["schema"]["openAPIV3Schema"], instance)


@pytest.fixture(scope="module")
def pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The breast-cancer logreg package, with a native/ folder that the export leaves out."""
    p = logreg_package(tmp_path_factory.mktemp("exp") / "bc")
    (p / "native").mkdir()
    (p / "native" / "weights.bin").write_bytes(b"\0" * 1024)
    return p


def _export(cli, *args: str) -> dict:
    code, out, err = cli("serve", *args)
    assert code == 0, err
    return yaml.safe_load((Path(args[-1]) / "inferenceservice.yaml").read_text())


def test_manifest_is_a_valid_inferenceservice_for_the_package(ws, cli, pkg, tmp_path) -> None:
    out = tmp_path / "deploy"
    doc = _export(cli, str(pkg), "--replicas", "2", "--export", "kserve", str(out))
    jsonschema.validate(doc, json.loads(ISVC_SCHEMA_JSON))
    assert doc["apiVersion"] == "serving.kserve.io/v1beta1" and doc["kind"] == "InferenceService"
    assert doc["metadata"]["name"] == "bc" and ISVC_NAME.match(doc["metadata"]["name"])
    (c,) = doc["spec"]["predictor"]["containers"]
    assert c["name"] == "kserve-container" and c["image"] == "roost-serve-bc:1"
    assert c["args"] == [
        *["roost", "serve", "/models/bc", "--host", "0.0.0.0", "--port", "8080", "--replicas", "2"],
        *["--allow-host", "*"],  # pods are reached by service/ingress names
    ]
    assert {"name": "PROTOCOL", "value": "v2"} in c["env"]  # how KServe's CustomPredictor learns the protocol
    assert [p["containerPort"] for p in c["ports"]] == [8080]
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert c["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 8080}
    assert c["resources"]["requests"]["cpu"] == "2" and c["securityContext"]["runAsNonRoot"] is True
    # the schema is strict: the field the issue names does not exist on a custom-container predictor
    bad = json.loads(json.dumps(doc))
    bad["spec"]["predictor"]["protocolVersion"] = "v2"
    with pytest.raises(jsonschema.ValidationError, match="protocolVersion"):
        jsonschema.validate(bad, json.loads(ISVC_SCHEMA_JSON))
    # the bundle: the package (without native/), the recipe, a request, the instructions
    for f in ("model.onnx", "signature.json", "roost-model.yaml"):
        assert (out / "model" / f).read_bytes() == (pkg / f).read_bytes()
    assert not (out / "model" / "native").exists()
    docker = (out / "Dockerfile").read_text()
    assert docker.startswith("# roost") and "FROM python:3.11-slim" in docker and "EXPOSE 8080" in docker
    assert "COPY --chown=10001:10001 model/ /models/bc/" in docker and "\nUSER 10001\n" in docker
    assert "torch" not in docker.split("ARG ROOST_PIP", 1)[1].replace("roost without torch", "")
    assert json.loads(docker.split("\nCMD ", 1)[1]) == c["args"]  # the manifest runs what the image runs
    readme = (out / "README.md").read_text()
    assert "docker build -t roost-serve-bc:1 ." in readme and "kubectl apply -f inferenceservice.yaml" in readme
    names = [i["name"] for i in json.loads((out / "request.json").read_text())["inputs"]]
    assert names == breast_cancer()[2]
    # exporting again replaces the bundle; a folder holding other things is refused
    _export(cli, str(pkg), "--export", "kserve", str(out))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    code, _, err = cli("serve", str(pkg), "--export", "kserve", str(tmp_path / "busy"))
    assert code == 2 and "not empty" in err and (tmp_path / "busy" / "keep.txt").read_text() == "mine"


@pytest.mark.skipif(not os.environ.get("ROOST_KSERVE_CRD"), reason="set ROOST_KSERVE_CRD to KServe's CRD file")
def test_manifest_validates_against_the_full_crd(ws, cli, pkg, tmp_path) -> None:
    doc = _export(cli, str(pkg), "--export", "kserve", str(tmp_path / "d"))
    crd = yaml.safe_load(Path(os.environ["ROOST_KSERVE_CRD"]).read_text())
    jsonschema.validate(doc, crd_schema(crd, doc))


def test_registry_versions_names_and_errors(ws, cli, pkg, tmp_path) -> None:
    roost.register_model(None, "churn", str(pkg))
    roost.register_model(None, "churn", str(pkg))
    doc = _export(cli, "churn/2", "--export", "kserve", str(tmp_path / "a"))
    assert doc["spec"]["predictor"]["containers"][0]["image"] == "roost-serve-churn:2"
    assert doc["metadata"]["annotations"]["roost.model/version"] == "2"
    doc = _export(cli, f"Churn_Model.v2={pkg}", "--export", "kserve", str(tmp_path / "b"))
    c = doc["spec"]["predictor"]["containers"][0]
    assert doc["metadata"]["name"] == "churn-model-v2" and ISVC_NAME.match(doc["metadata"]["name"])
    assert c["args"][2] == "/models/Churn_Model.v2"  # served under its own name; only Kubernetes names change
    assert "COPY --chown=10001:10001 model/ /models/Churn_Model.v2/" in (tmp_path / "b" / "Dockerfile").read_text()
    jsonschema.validate(doc, json.loads(ISVC_SCHEMA_JSON))
    assert _export(cli, f"7up={pkg}", "--export", "kserve", str(tmp_path / "c"))["metadata"]["name"] == "m-7up"
    code, _, err = cli("serve", str(pkg), "--export", "helm", str(tmp_path / "x"))
    assert code == 2 and "kserve" in err
    code, _, err = cli("serve", str(pkg), str(pkg), "--export", "kserve", str(tmp_path / "y"))
    assert code == 2 and "one model" in err


TRACER = """
import atexit, os, sys
def _dump():
    with open(os.path.join(os.environ["ROOST_TEST_IMPORTS"], str(os.getpid())), "w") as f:
        f.write("\\n".join(sorted({m.split(".")[0] for m in list(sys.modules)})))
atexit.register(_dump)
"""


def _closure(requirements: list[str]) -> set[str]:
    """Normalised names of the distributions these requirements install here (with extras, transitively)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        key = name + str(sorted(req.extras))
        if key in seen:
            continue
        seen.update({key, name})
        try:
            deps = md.requires(req.name) or []
        except md.PackageNotFoundError:
            continue
        for d in map(Requirement, deps):
            if d.marker is None or any(d.marker.evaluate({"extra": e}) for e in (req.extras or {""})):
                todo.append(d)
    return {s for s in seen if "[" not in s}


@pytest.mark.slow
def test_the_recipe_command_serves_the_package(ws, cli, pkg, tmp_path) -> None:
    from packaging.utils import canonicalize_name

    out = tmp_path / "deploy"
    _export(cli, str(pkg), "--replicas", "2", "--export", "kserve", str(out))
    docker = (out / "Dockerfile").read_text()
    cmd = json.loads(docker.split("\nCMD ", 1)[1])
    # outside Docker: the package copied as COPY does (under a stand-in root), a free loopback port instead of
    # 0.0.0.0:8080, no workspace
    src, dest = re.search(r"^COPY --chown=\S+ (\S+) (\S+)$", docker, re.M).groups()
    root = tmp_path / "root"
    shutil.copytree(out / src, root / dest.strip("/"))
    port = free_port()
    args = [str(root) + a if a.startswith("/models/") else a for a in cmd[1:]]
    args[args.index("--port") + 1], args[args.index("--host") + 1] = str(port), "127.0.0.1"
    trace = tmp_path / "imports"
    trace.mkdir()
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(TRACER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    env.update(PYTHONPATH=str(tmp_path / "site"), ROOST_TEST_IMPORTS=str(trace))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / cmd[0]), *args],
        cwd=run_dir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        with httpx.Client(base_url=url, timeout=10) as client:
            while True:
                assert proc.poll() is None, (tmp_path / "server.log").read_text()
                assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                # every worker up (the supervisor's 'serving ... on http' line), not only the first to answer: a
                # worker still importing when the SIGTERM below comes exits with no hook run to report its imports
                text = (tmp_path / "server.log").read_text(errors="replace")
                if "serving " in text and " on http://" in text:
                    break
                time.sleep(0.2)
            assert client.get("/v2/health/ready").status_code == 200
            assert client.get("/v2/health/live").status_code == 200
            r = client.post(
                "/v2/models/bc/infer",
                content=(out / "request.json").read_bytes(),
                headers={"content-type": "application/json"},
            )
            assert r.status_code == 200, r.text
            X, _, cols = breast_cancer()
            r = client.post("/v2/models/bc/infer", json=v2_body(cols, X[:20]))
            assert r.status_code == 200, r.text
            got = {o["name"]: o for o in r.json()["outputs"]}["probability"]["data"]
        import onnxruntime as ort

        sess = ort.InferenceSession(str(out / "model" / "model.onnx"), providers=["CPUExecutionProvider"])
        want = sess.run(["probability"], {c: X[:20, i] for i, c in enumerate(cols)})[0]
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    finally:
        proc.send_signal(signal.SIGTERM)  # as Kubernetes stops a pod: the container's main process drains
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # nothing of the group may outlive the test
        except ProcessLookupError:
            pass
        log.close()
    # what the server processes imported is what the recipe installs: roost + its pip list, and never torch
    dumps = list(trace.iterdir())
    assert len(dumps) >= 3, "expected the supervisor and 2 workers to report their imports"
    modules = set().union(*(f.read_text().split() for f in dumps))
    assert "torch" not in modules
    pip_line = next(ln for ln in docker.splitlines() if "pip install" in ln and "--no-deps" not in ln)
    reqs = shlex.split(pip_line.split("pip install", 1)[1].rstrip("; \\"))
    allowed = _closure(reqs) | {"roost"}
    owners = md.packages_distributions()
    used = {canonicalize_name(d) for m in modules if m not in sys.stdlib_module_names for d in owners.get(m, [])}
    missing = used - allowed - {"setuptools"}  # setuptools: only its .pth hook, present in any Python image
    assert not missing, f"the server imported distributions the recipe does not install: {missing}"
