"""`roost serve` prints an example curl per model (V2 and TF-Serving); each one is a request the server answers."""

from __future__ import annotations

import json
import shlex
import urllib.request
from pathlib import Path
from typing import Any


def _send(curl: str) -> dict[str, Any]:
    """Send the request a printed `curl -s [-H ...] -d BODY URL` line describes; the JSON answer."""
    argv = shlex.split(curl)
    assert argv[0] == "curl"
    body = argv[argv.index("-d") + 1]
    req = urllib.request.Request(argv[-1], data=body.encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        assert r.status == 200
        return json.loads(r.read())


def test_printed_examples_are_answered(server: Any, pkgs: dict[str, Path]) -> None:
    from roost.serve.command import example_requests

    refs = [str(pkgs["bc"]), str(pkgs["iris"]), f"strings={pkgs['strings']}"]
    lines = example_requests(refs, "127.0.0.1", server.port)
    curls = [x.strip() for x in lines if x.strip().startswith("curl")]
    assert len(curls) == 2 * len(refs)
    for name in ("bc", "iris", "strings"):
        v2 = next(c for c in curls if f"/v2/models/{name}/infer" in c)
        tf = next(c for c in curls if f"/v1/models/{name}:predict" in c)
        out = _send(v2)
        assert out["model_name"] == name and out["outputs"]
        assert len(_send(tf)["predictions"]) == 1
    bc = json.loads(shlex.split(next(c for c in curls if "/v2/models/bc/" in c))[-2])
    assert len(bc["inputs"]) == 30  # every input of the signature, one row each
