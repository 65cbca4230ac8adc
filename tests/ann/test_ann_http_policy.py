"""`roost index serve` under roost's server policy (issue 30, item 3; docs/security.md): no cross-site or
text/plain upsert/delete/reload, no rebound Host names, the token where configured; JSON clients pass."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

LOCAL = "http://127.0.0.1:8090"
D = 8


@pytest.fixture
def state(ws):
    from roost.ann import build_index
    from roost.ann.serving import open_indexes

    x = np.random.default_rng(0).standard_normal((200, D)).astype(np.float32)
    pd.DataFrame({"item_id": np.arange(200), "embedding": list(x)}).to_parquet("emb.parquet")
    build_index("items", "emb.parquet", id_column="item_id")
    return open_indexes(["items"])


def _upsert() -> bytes:
    return json.dumps({"items": [{"id": 5000, "vector": [0.5] * D}]}).encode()


def _count(c: TestClient) -> int:
    return int(c.get("/v1/indexes/items").json()["count"])


def test_cross_site_and_text_plain_writes_are_refused(state) -> None:
    from roost.ann.http import app

    with TestClient(app(state), base_url=LOCAL) as c:
        before = _count(c)
        for headers in (
            {"origin": "http://evil.example", "content-type": "application/json"},
            {"origin": "null", "content-type": "application/json"},
        ):
            assert c.post("/v1/indexes/items/upsert", content=_upsert(), headers=headers).status_code == 403
        for ctype in ("text/plain", "application/x-www-form-urlencoded"):
            r = c.post("/v1/indexes/items/upsert", content=_upsert(), headers={"content-type": ctype})
            assert r.status_code == 415, ctype
        assert c.post("/v1/indexes/items/reload", headers={"content-type": "text/plain"}).status_code == 415
        assert _count(c) == before
        ok = c.post("/v1/indexes/items/upsert", content=_upsert(), headers={"content-type": "application/json"})
        assert ok.status_code == 200, ok.text
        assert _count(c) == before + 1


def test_foreign_host_is_refused(state) -> None:
    from roost.ann.http import app

    with TestClient(app(state), base_url=LOCAL) as c:
        assert c.get("/v1/indexes", headers={"host": "evil.example:8090"}).status_code == 400
        assert c.get("/healthz", headers={"host": "evil.example"}).status_code == 400
        assert c.get("/v1/indexes", headers={"host": "localhost:8090"}).status_code == 200


def test_token_where_configured(state) -> None:
    from roost.ann.http import app

    with TestClient(app(state, token="s3cret-tok"), base_url=LOCAL) as c:
        assert c.get("/healthz").status_code == 200  # liveness stays open
        assert c.post("/v1/indexes/items/search", json={"vector": [0.1] * D, "k": 2}).status_code == 401
        auth = {"authorization": "Bearer s3cret-tok"}
        r = c.post("/v1/indexes/items/search", json={"vector": [0.1] * D, "k": 2}, headers=auth)
        assert r.status_code == 200


def test_cli_binds_the_policy_of_its_address(state, monkeypatch) -> None:
    """`roost index serve --host H --allow-host N` answers the loopback names, H and N only."""
    import uvicorn
    from typer.testing import CliRunner

    from roost.cli.main import build_app

    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    res = CliRunner().invoke(
        build_app(), ["index", "serve", "items", "--host", "10.1.2.3", "--allow-host", "ann.example"]
    )
    assert res.exit_code == 0, res.output
    with TestClient(seen["app"], base_url="http://10.1.2.3:8090") as c:
        assert c.get("/v1/indexes").status_code == 200
        assert c.get("/v1/indexes", headers={"host": "ann.example"}).status_code == 200
        assert c.get("/v1/indexes", headers={"host": "evil.example"}).status_code == 400
