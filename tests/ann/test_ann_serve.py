"""`roost index serve` as a real server process: search, mutations, alias swap under load, recommend."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

D = 16


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(ws):
    """Start `roost index serve ARGS...` in the workspace; yields a function returning the base URL."""
    procs: list[subprocess.Popen] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}

    def start(*args: str) -> str:
        port = _free_port()
        log = open(Path(ws.root) / f"serve-{port}.log", "wb")
        p = subprocess.Popen(
            [sys.executable, "-m", "roost.cli.main", "index", "serve", *args, "--port", str(port)],
            cwd=ws.root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(p)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if p.poll() is not None:
                pytest.fail(f"server exited: {Path(log.name).read_text()[-2000:]}")
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                time.sleep(0.2)
        pytest.fail("server did not answer /healthz")

    yield start
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(p.pid, signal.SIGKILL)


def _emb(path: str, n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, D)).astype(np.float32)
    pd.DataFrame(
        {"item_id": np.arange(n), "cat": np.where(np.arange(n) % 2, "odd", "even"), "embedding": list(x)}
    ).to_parquet(path)
    return x


def test_alias_swap_under_load_fails_no_query(server) -> None:
    from roost.ann import build_index, set_alias

    x = _emb("v1.parquet", 3000, 0)
    build_index("items", "v1.parquet")
    set_alias("items", 1, "prod")
    url = server("items@prod", "--poll", "0.2")
    with httpx.Client(base_url=url, timeout=30) as c:
        r = c.post("/v1/indexes/items/upsert", json={"ids": [50_000], "vectors": [[1.0] * D]})
        assert r.status_code == 200 and r.json()["count"] == 3001
        assert c.post("/v1/indexes/items/delete", json={"ids": [1]}).json()["deleted"] == 1
        hits = c.post("/v1/indexes/items/search", json={"vector": x[1].tolist(), "k": 5}).json()["results"][0]
        assert 1 not in [h["id"] for h in hits]
    seen: list[tuple[int, int, int, int]] = []  # (client, status, version, hits)
    errors: list[str] = []  # transport failures are failed queries too (and must not stall the loops below)
    stop = threading.Event()

    def hammer(i: int) -> None:
        q = np.random.default_rng(i).standard_normal((4, D)).tolist()
        with httpx.Client(base_url=url, timeout=30) as c:
            while not stop.is_set():
                body = {"vectors": q, "k": 10, "filter": {"cat": "odd"}} if i % 2 else {"vector": q[0], "k": 10}
                try:
                    r = c.post("/v1/indexes/items/search", json=body)
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                    return
                js = r.json() if r.status_code == 200 else {}
                hits = min(len(h) for h in js.get("results", [[]]))
                seen.append((i, r.status_code, js.get("version", -1), hits))

    def wait_for(cond, what: str) -> None:  # the deadline only guards against a hang
        deadline = time.monotonic() + 120
        while not cond():
            assert not errors, errors
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    threads = [threading.Thread(target=hammer, args=(i,), daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(seen) >= 30, "load running")
        _emb("v2.parquet", 3500, 1)
        build_index("items", "v2.parquet")
        set_alias("items", 2, "prod")
        # every client sees v2: appends from different clients interleave in no set order (a reply read
        # before the swap can be appended after others' v2 replies), so the order is checked per client
        wait_for(lambda: {c for c, _, v, _ in seen if v == 2} == set(range(3)), "every client answered by v2")
        n_at_swap = len(seen)
        wait_for(lambda: len(seen) >= n_at_swap + 30, "load after the swap")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors
    assert all(s == 200 for _, s, _, _ in seen), {s for _, s, _, _ in seen}
    assert all(h == 10 for _, _, _, h in seen)
    assert 1 in [v for _, _, v, _ in seen]
    for client in range(3):  # one client's queries are sequential: once it is answered by v2, never by v1 again
        versions = [v for c, _, v, _ in seen if c == client]
        assert versions == sorted(versions) and versions[-1] == 2, (client, versions)
    info = httpx.get(url + "/v1/indexes/items").json()
    assert info["version"] == 2 and info["swaps"] == 1
    # the live upsert/delete predate v2.parquet (its snapshot), so they are not replayed: v2 rules
    assert info["count"] == 3500


def test_recommend_endpoint_end_to_end(server, models) -> None:
    from roost.ann import build_index, embed
    from roost.ann.serving import open_indexes

    embed(
        models["two_tower"],
        models["items_path"],
        "emb.parquet",
        id_column="item_id",
        keep=["category", "price", "quality_score"],
    )
    build_index("items", "emb.parquet", metric="ip", kind="flat")
    url = server(
        "items",
        "--user-model",
        str(models["two_tower"]),
        "--ranker",
        str(models["ranker"]),
        "--candidates",
        "40",
        "--poll",
        "0",
    )
    users = [
        {"user_id": int(u.user_id), "country": u.country, "age_group": u.age_group, "device": u.device}
        for u in models["users"].iloc[:3].itertuples()
    ]
    r = httpx.post(url + "/v1/recommend/items", json={"users": users, "k": 5}, timeout=30)
    assert r.status_code == 200, r.text
    local = open_indexes(
        ["items"], recommend={"items": (str(models["two_tower"]), str(models["ranker"]))}, candidates=40
    )
    want = local.recommenders["items"].recommend(users, k=5)
    assert [[h["id"] for h in row] for row in r.json()["results"]] == [[h["id"] for h in row] for row in want]
    r = httpx.post(url + "/v1/recommend/items", json={"user": {"user_id": 1}}, timeout=30)
    assert r.status_code == 400 and "user features missing" in r.json()["error"]
