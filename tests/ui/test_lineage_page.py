"""/lineage without a browser: the chain's nodes for a registered version, links that open, hostile targets → 4xx."""

from __future__ import annotations

import re

import pytest


def _nodes(html: str) -> list[tuple[str, str]]:
    return [(k, h.replace("&amp;", "&")) for h, k in re.findall(r'<a href="([^"]+)" class="node (\w+)"', html)]


def test_version_lineage_nodes_link_to_their_pages(client, populated):
    r = client.get("/lineage", params={"target": "churn-model/1"})
    assert r.status_code == 200
    nodes = _nodes(r.text)
    assert nodes[:2] == [("model_version", "/models/churn-model#version-1"), ("run", f"/runs/{populated['a']}")]
    for _, href in nodes:
        assert client.get(href).status_code == 200, href
    # version 2 has no run: the picture stops at the version
    assert [k for k, _ in _nodes(client.get("/lineage", params={"target": "churn-model@prod"}).text)] == [
        "model_version"
    ]
    run_page = client.get(f"/runs/{populated['a']}").text
    assert f'href="/lineage?target={populated["a"]}"' in run_page


@pytest.mark.parametrize("target", ["\x00", "a" * 10_000, "../../etc/passwd", "x@y", "churn-model/999", "'; drop"])
def test_unknown_or_hostile_targets_are_4xx_with_a_hint(client, target):
    r = client.get("/lineage", params={"target": target})
    assert r.status_code in (400, 404)
    assert 'role="alert"' in r.text and "/tmp/" not in r.text and "Traceback" not in r.text
