"""The README's serve example promises the fields a real `roost serve` answers (#37 item 7: it promised a logit).

The README's two curl bodies (KServe V2 and TF-Serving REST) are sent, as written, to `roost serve` started as a
subprocess on a binary engagement model (LightGBM, and a torch logreg); the output names the README states must
be exactly the ones in the responses.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _bodies() -> dict[str, dict]:
    """URL path -> JSON body of each `curl ... -d '...' URL` in the README's serve example."""
    out = {}
    for body, url in re.findall(r"-d '(\{.*?\})'\s*\\?\s*(http://\S+)", README, re.S):
        out[re.sub(r"^http://[^/]+", "", url)] = json.loads(body)
    return out


def _claims() -> tuple[list[str], dict, list[str]]:
    """(the V2 output names, the TF-Serving example response, the names a neural model adds) the README states."""
    sentence = re.search(r"Both answer (.*?)\n\n", README, re.S)
    assert sentence, "the README describes what the serve example answers ('Both answer ...')"
    text = " ".join(sentence.group(1).split())
    v2 = re.search(r"V2 `outputs` named ((?:`\w+`(?:, | and )?)+)", text)
    tf = re.search(r"TF-Serving `(\{.*?\})`", text)
    neural = re.search(r"neural model .*? also answers its ((?:`\w+`(?:, | and )?)+)", text)
    assert v2 and tf and neural, text
    return re.findall(r"`(\w+)`", v2.group(1)), json.loads(tf.group(1)), re.findall(r"`(\w+)`", neural.group(1))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def test_readme_has_both_examples_and_a_claim() -> None:
    paths = set(_bodies())
    assert {"/v2/models/engagement/infer", "/v1/models/engagement:predict"} <= paths, paths
    names, tf, extra = _claims()
    assert names and tf["predictions"] and set(tf["predictions"][0]) == set(names) and extra


@pytest.mark.parametrize("model_type", ["lightgbm", "logreg"])
def test_readme_serve_example_matches_the_real_response(tmp_path: Path, model_type: str) -> None:
    from roost.datasets.engagement import make_engagement_flat
    from roost.training.models import make_model

    bodies = _bodies()
    v2_body = bodies["/v2/models/engagement/infer"]
    inputs = [i["name"] for i in v2_body["inputs"]]
    df = make_engagement_flat(1500, seed=0)
    X, y = df[inputs], df["clicked"]
    params = {"n_estimators": 20} if model_type == "lightgbm" else {"epochs": 2}
    model = make_model(model_type, "binary", **params).fit(X.iloc[:1200], y.iloc[:1200], X.iloc[1200:], y.iloc[1200:])
    pkg = model.save_package(tmp_path / "engagement", X.head(200), label="clicked")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "roost", "serve", str(pkg), "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/v2/health/ready", timeout=2)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.2)
        v2 = _post(f"{base}/v2/models/engagement/infer", v2_body)
        tf = _post(f"{base}/v1/models/engagement:predict", bodies["/v1/models/engagement:predict"])
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    names, claimed, extra = _claims()
    want = set(names) | (set(extra) if model_type != "lightgbm" else set())
    assert {o["name"] for o in v2["outputs"]} == want, v2
    assert set(tf["predictions"][0]) == want and set(claimed["predictions"][0]) == set(names), tf
