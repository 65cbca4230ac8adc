"""`roost index serve` under slow clients: header deadline, idle keep-alive, connection cap answered with 503,
counted on /metrics (as roost serve's)."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd

from slowkit import Process, check_slow_clients


def test_index_server_cuts_slow_clients_and_answers_503_when_full(ws) -> None:
    from roost.ann import build_index

    x = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    pd.DataFrame({"item_id": np.arange(50), "embedding": list(x)}).to_parquet(ws.root / "emb.parquet")
    build_index("items", str(ws.root / "emb.parquet"))
    srv = Process(["index", "serve", "items", "--poll", "0"], str(ws.root), "/healthz", str(ws.root / "ann.log"))
    try:
        check_slow_clients(srv.port, "/healthz", metrics=lambda: httpx.get(srv.url + "/metrics", timeout=10).text)
    finally:
        srv.stop()
