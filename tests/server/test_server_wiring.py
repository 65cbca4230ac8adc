"""The team server as one system: the public health answer, and one session secret shared by every worker."""

from __future__ import annotations

from typing import Any


def test_health_is_public(client: Any) -> None:
    r = client.get("/api/v1/health")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok"
