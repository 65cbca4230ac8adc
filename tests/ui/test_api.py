"""The JSON API under /api/ and the artifact viewers."""

from __future__ import annotations

import roost


def test_api_runs_pages_and_counts(client, populated):
    r = client.get("/api/runs", params={"q": "metrics.auc > 0.5", "order": "metrics.auc DESC", "per_page": 1})
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 2 and body["pages"] == 2 and len(body["runs"]) == 1
    assert body["runs"][0]["run_id"] == populated["a"]
    assert body["runs"][0]["name"] == "<script>alert(1)</script>"  # JSON carries the raw string
    assert "lr" in body["param_keys"] and "auc" in body["metric_keys"]
    assert isinstance(body["runs"][0]["start_time"], str)


def test_api_filter_error_is_400_with_hint(client):
    r = client.get("/api/runs", params={"q": "params.lr = "})
    assert r.status_code == 400
    assert r.json()["error"].startswith("malformed filter") and r.json()["hint"].startswith("example")
    assert client.get("/api/runs", params={"page": "two"}).status_code == 400


def test_api_metric_history_matches_store(client, populated):
    body = client.get(f"/api/runs/{populated['a']}/metrics").json()
    hist = roost.registry.api.metric_history(populated["a"], "loss")
    assert body["metrics"]["loss"]["steps"] == [p["step"] for p in hist]
    assert body["metrics"]["loss"]["values"] == [p["value"] for p in hist]
    thin = client.get(f"/api/runs/{populated['a']}/metrics", params={"key": "auc", "max_points": 4}).json()
    assert list(thin["metrics"]) == ["auc"] and thin["metrics"]["auc"]["steps"] == [0, 4, 7, 11]
    assert client.get(f"/api/runs/{populated['a']}/metrics", params={"key": "nope"}).status_code == 404


def test_api_run_experiments_models_compare(client, populated):
    assert client.get(f"/api/runs/{populated['b']}").json()["params"]["model"] == "lgbm"
    assert client.get("/api/runs/0000").status_code == 404
    assert {e["name"] for e in client.get("/api/experiments").json()} == {"churn", "other"}
    m = client.get("/api/models/churn-model").json()
    assert [v["version"] for v in m["versions"]] == [1, 2] and m["versions"][1]["aliases"] == ["prod"]
    assert m["versions"][0]["run"]["run_id"] == populated["a"] and m["metric_keys"] == ["auc", "logloss"]
    cmp = client.get("/api/compare", params={"runs": f"{populated['a']},{populated['b']}"}).json()
    assert {p["key"]: p["differs"] for p in cmp["params"]} == {"layers": False, "lr": True, "model": True}
    files = {f["path"] for f in client.get(f"/api/runs/{populated['a']}/artifacts").json()["files"]}
    assert {"config.yaml", "plot.png", "report.ipynb"} <= files
    assert client.get("/api/feature-views").json() == {}


def test_download_and_viewers(client, populated):
    a = populated["a"]
    d = client.get(f"/runs/{a}/artifacts/download", params={"path": "blob.bin"})
    assert d.status_code == 200 and d.content == bytes(range(256))
    assert d.headers["content-disposition"].startswith("attachment")
    txt = client.get(f"/runs/{a}/artifacts/view", params={"path": "notes.txt"}).text
    assert "hello &lt;script&gt;alert(3)&lt;/script&gt;" in txt
    img = client.get(f"/runs/{a}/artifacts/view", params={"path": "plot.png"}).text
    assert f'src="/runs/{a}/artifacts/raw?path=plot.png"' in img
    raw = client.get(f"/runs/{a}/artifacts/raw", params={"path": "plot.png"})
    assert raw.headers["content-type"] == "image/png" and raw.content.startswith(b"\x89PNG")
    html_file = client.get(f"/runs/{a}/artifacts/raw", params={"path": "page.html"})
    # HTML reports render, but inside a CSP sandbox without scripts: the <script> in page.html cannot run
    assert html_file.headers["content-type"].startswith("text/html")
    csp = html_file.headers["content-security-policy"]
    assert csp.startswith("sandbox;") and "allow-scripts" not in csp and "default-src 'none'" in csp
    dl = client.get(f"/runs/{a}/artifacts/download", params={"path": "page.html"})
    assert dl.headers["content-type"].startswith("text/plain")
    assert "sandbox" in html_file.headers["content-security-policy"]
    nb = client.get(f"/runs/{a}/artifacts/view", params={"path": "report.ipynb"}).text
    assert "# Title &lt;img src=x onerror=alert(1)&gt;" in nb and "print(&#39;hi&#39;)" in nb
    assert 'src="data:image/png;base64,' in nb
    assert '<iframe class="html-out" sandbox srcdoc="&lt;script&gt;alert(2)&lt;/script&gt;' in nb
    assert "no preview" in client.get(f"/runs/{a}/artifacts/view", params={"path": "blob.bin"}).text.lower()
    assert client.get(f"/runs/{a}/artifacts/view", params={"path": "missing.txt"}).status_code == 404
