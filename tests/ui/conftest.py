"""UI fixtures: a workspace with runs, artifacts, TensorBoard events and a model; an in-process client."""

from __future__ import annotations

import base64
import json
import struct
import sys
import time
import zlib
from pathlib import Path

import pytest

FAKE_TB = r"""
import sys, http.server
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
for line in open(args.pop("--flagfile")):  # like TensorBoard's absl flags: one --name=value a line
    name, _, value = line.strip().partition("=")
    args[name] = value
prefix = args["--path_prefix"]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path.startswith(prefix + "/")
        body = (f"fake tensorboard {args['--logdir_spec']} path={self.path}" if ok else "not found").encode()
        self.send_response(200 if ok else 404)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer((args["--host"], int(args["--port"])), H).serve_forever()
"""


def _csrf_from(html: str) -> str:
    """The CSRF token in a page's form (what a browser submits with it)."""
    import re

    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "the page's form carries no csrf_token field"
    return m.group(1)


@pytest.fixture
def csrf_from():
    """A helper: html -> the CSRF token of its form."""
    return _csrf_from


def png_bytes(w: int = 4, h: int = 3) -> bytes:
    """A tiny valid red PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * w for _ in range(h))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def write_tb_events(logdir: Path, tag: str = "loss", n: int = 5) -> None:
    """Write a TensorBoard event file with a scalar series (what the training callback produces)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    w = EventFileWriter(str(logdir))
    for step in range(n):
        s = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=1.0 / (step + 1))])
        w.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=s))
    w.close()


NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {},
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Title <img src=x onerror=alert(1)>"]},
        {
            "cell_type": "code",
            "metadata": {},
            "execution_count": 1,
            "source": ["print('hi')"],
            "outputs": [
                {"output_type": "stream", "name": "stdout", "text": ["hi\n"]},
                {
                    "output_type": "display_data",
                    "metadata": {},
                    "data": {"image/png": base64.b64encode(png_bytes()).decode()},
                },
                {
                    "output_type": "execute_result",
                    "metadata": {},
                    "execution_count": 1,
                    "data": {"text/html": ["<script>alert(2)</script><b>table</b>"]},
                },
            ],
        },
    ],
}


@pytest.fixture
def populated(ws, tmp_path: Path) -> dict:
    """Runs in two experiments (one named <script>), artifacts of each kind, TB logs, a registered model."""
    import roost
    from roost.registry.store import default_store

    out: dict = {"ws": ws}
    files = tmp_path / "files"
    files.mkdir()
    (files / "config.yaml").write_text("model: mlp\nlr: 0.01\nnote: <b>not bold</b>\n")
    (files / "config.resolved.yaml").write_text("model: mlp\nlr: 0.01\nepochs: 10\n")
    (files / "notes.txt").write_text("hello <script>alert(3)</script>\n")
    (files / "plot.png").write_bytes(png_bytes())
    (files / "report.ipynb").write_text(json.dumps(NOTEBOOK))
    (files / "blob.bin").write_bytes(bytes(range(256)))
    (files / "page.html").write_text("<script>alert(4)</script>")
    with roost.start_run(
        experiment="churn", name="<script>alert(1)</script>", params={"lr": 0.01, "layers": 2, "model": "mlp"}
    ) as r:
        for i in range(12):
            r.log_metrics({"loss": 1.0 / (i + 1), "auc": 0.6 + i * 0.02}, step=i)
        r.set_tags({"team": "<i>ads</i>"})
        for f in (
            "config.resolved.yaml",
            "config.yaml",
            "notes.txt",
            "plot.png",
            "report.ipynb",
            "blob.bin",
            "page.html",
        ):
            r.log_artifact(files / f)
        write_tb_events(r.artifact_dir / "tensorboard")
        out["a"] = r.id
    with roost.start_run(experiment="churn", name="wide", params={"lr": 0.1, "layers": 2, "model": "lgbm"}) as r:
        for i in range(8):
            r.log_metrics({"loss": 2.0 / (i + 1), "auc": 0.55 + i * 0.03}, step=i)
        write_tb_events(r.artifact_dir / "tensorboard")
        out["b"] = r.id
    with roost.start_run(experiment="other", name="failed-one", params={"lr": 0.5}) as r:
        r.log_metric("auc", 0.3)
        r.end("FAILED")
        out["c"] = r.id
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "roost-model.yaml").write_text("framework: onnx\nmetrics:\n  auc: 0.81\n  logloss: 0.4\n")
    v1 = roost.register_model(None, "churn-model", str(pkg))
    roost.register_model(None, "churn-model", str(pkg))
    from roost.registry import modelreg

    with default_store().write() as s:  # tie version 1 to run a, as register_model(run_id, ...) would
        from roost.registry.tables import ModelVersion

        s.get(ModelVersion, ("churn-model", v1.version)).run_id = out["a"]
    modelreg.set_alias(default_store(), "churn-model", 2, "prod")
    return out


@pytest.fixture
def client(populated):
    """An in-process client of a fresh UI app over the populated workspace."""
    from starlette.testclient import TestClient

    from roost.ui import create_app

    with TestClient(create_app(), follow_redirects=False) as c:
        yield c


@pytest.fixture
def fake_tb_command(tmp_path: Path) -> list[str]:
    """A stand-in `tensorboard` (a tiny HTTP server taking the same flags) for fast manager tests."""
    script = tmp_path / "fake_tb.py"
    script.write_text(FAKE_TB)
    return [sys.executable, str(script)]


@pytest.fixture(scope="session")
def shots():
    """docs/img/make_screenshots.py as a module (its demo build, UI server and page list)."""
    img = Path(__file__).resolve().parents[2] / "docs" / "img"
    sys.path.insert(0, str(img))
    try:
        import make_screenshots
    finally:
        sys.path.remove(str(img))
    return make_screenshots


@pytest.fixture(scope="session")
def demo(shots, tmp_path_factory):
    """(workspace folder, UI base URL) of ONE demo workspace (examples/demo.py, as `make demo` runs it) served by
    `roost ui`, shared by every browser test of the session that needs it. The demo takes minutes: set
    ROOST_TEST_DEMO_WS to a folder a previous `ROOST_DEMO_DIR=... python examples/demo.py` wrote to reuse it."""
    import os

    given = os.environ.get("ROOST_TEST_DEMO_WS")
    if given and (Path(given) / "roost.yaml").is_file():
        ws = Path(given).resolve()
    else:
        ws = tmp_path_factory.mktemp("demo") / "demo-workspace"
        shots.build_demo(ws, 4000)
    with shots.ui_server(ws) as base:
        yield ws, base
