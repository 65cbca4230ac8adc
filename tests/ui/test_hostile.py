"""Hostile input: every UI route answers a clean 4xx (never a 500), wrong methods are 405 with Allow, and no
error page shows an absolute filesystem path."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from roost.ui import create_app

HOSTILE = [
    "\x00",
    "a\x00b",
    "9" * 400,
    "x" * 5000,
    "ü漢字🙂",
    "..",
    "../../../../etc/passwd",
    "%00",
    "%ff%fe",
    "' OR 1=1 --",
    "`",
    "(",
    "-1",
    "1e309",
    " ",
]
QUERY_NAMES = ["q", "order", "page", "per_page", "experiment", "runs", "diff", "key", "max_points", "path", "filter"]
GET_ROUTES = [
    "/",
    "/experiments",
    "/runs",
    "/runs/{id}",
    "/compare",
    "/models",
    "/models/{name}",
    "/features",
    "/runs/{id}/artifacts/download",
    "/runs/{id}/artifacts/raw",
    "/runs/{id}/artifacts/view",
    "/api/experiments",
    "/api/runs",
    "/api/runs/{id}",
    "/api/runs/{id}/metrics",
    "/api/runs/{id}/artifacts",
    "/api/runs/{id}/artifacts/download",
    "/api/compare",
    "/api/models",
    "/api/models/{name}",
    "/api/feature-views",
    "/api/tensorboard",
    "/tb/{key}",
    "/tb/{key}/x",
    "/static/{file}",
]
ABS_PATH = re.compile(r"(?<![\w./])/(?:tmp|home|root|usr|etc|work|var|proc)/")


def _problem(r, what: object) -> str | None:
    """Why this response is wrong (a 5xx, or an absolute path in the body), or None."""
    shown = repr(what)[:160]
    if r.status_code >= 500:
        return f"{shown}: {r.status_code} {r.text[:200]!r}"
    if ABS_PATH.search(r.text):
        return f"{shown}: absolute path in {r.text[:300]!r}"
    return None


@pytest.fixture
def hostile_client(populated):
    with TestClient(create_app(), follow_redirects=False, raise_server_exceptions=False) as c:
        yield c


def test_hostile_path_segments_and_query_strings(hostile_client, populated):
    c, a = hostile_client, populated["a"]
    problems = []
    for route in GET_ROUTES:
        for bad in HOSTILE:
            seg = quote(bad, safe="")
            url = route.format(id=seg, name=seg, key=seg, file=seg)
            problems.append(_problem(c.get(url, params={"path": bad}), (url, "segment")))
            real = route.format(id=a, name="churn-model", key="0" * 12, file="style.css")
            problems.append(_problem(c.get(real, params=dict.fromkeys(QUERY_NAMES, bad)), (real, "query", bad)))
    problems = [p for p in problems if p]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])


def test_nul_artifact_path_is_400(hostile_client, populated):
    for route in ("download", "raw", "view"):
        r = hostile_client.get(f"/runs/{populated['a']}/artifacts/{route}?path=%00")
        assert r.status_code == 400, (route, r.status_code)
    r = hostile_client.get(f"/api/runs/{populated['a']}/artifacts/download?path=notes.txt%00.png")
    assert r.status_code == 400 and r.json()["error"]


def test_hostile_bodies(hostile_client, populated):
    c = hostile_client
    bodies = [
        b"\x00",
        b"{",
        b"[]",
        b'{"runs": {"a": 1}}',
        b'{"runs": [null, 1, {"x": 2}]}',
        b'{"runs": ["' + b"9" * 4000 + b'"]}',
        b"\xff\xfe\xfd",
        b'{"runs": "' + b"z," * 5000 + b'"}',  # not hex: "a" was a unique prefix of a run id in 1 of ~16 runs
        b'{"runs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # nesting past Python's recursion limit
        b"runs=x&" * 200_000,  # 1.4 MB
    ]
    problems = []
    for body in bodies:
        for ctype in ("application/json", "application/x-www-form-urlencoded", "text/plain", "multipart/form-data"):
            for url in ("/api/tensorboard", "/tensorboard"):
                r = c.post(url, content=body, headers={"content-type": ctype})
                problems.append(_problem(r, (url, ctype, body[:40])))
                if r.status_code not in (400, 403, 404, 413, 415):
                    problems.append(f"{(url, ctype, body[:40])}: {r.status_code}")
    problems = [p for p in problems if p]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])


def test_wrong_methods_are_405_with_allow(hostile_client, populated):
    c, a = hostile_client, populated["a"]
    cases = [
        (f"/runs/{a}", "POST", {"GET", "HEAD"}),
        ("/api/runs", "DELETE", {"GET", "HEAD"}),
        ("/api/tensorboard", "DELETE", {"GET", "HEAD", "POST"}),
        ("/api/tensorboard", "PUT", {"GET", "HEAD", "POST"}),
        ("/tensorboard", "GET", {"POST"}),
        ("/api/tensorboard/000000000000", "GET", {"DELETE"}),
        (f"/runs/{a}/artifacts/download", "PATCH", {"GET", "HEAD"}),
    ]
    for url, method, allowed in cases:
        r = c.request(method, url)
        assert r.status_code == 405, (method, url, r.status_code)
        assert {m.strip() for m in r.headers["allow"].split(",")} == allowed, (method, url, r.headers["allow"])


def test_error_pages_hide_absolute_paths(populated, tmp_path):
    """A TensorBoard that dies at start: its error names the failure, not the server's directories."""
    import sys

    crash = [sys.executable, "-c", "import os, sys; print('boom in', os.getcwd(), sys.argv); sys.exit(3)"]
    app = create_app(tb_command=crash, tb_log_dir=tmp_path / "tblogs")
    with TestClient(app, follow_redirects=False, raise_server_exceptions=False) as c:
        r = c.post("/api/tensorboard", json={"runs": [populated["a"]]})
        assert r.status_code == 400 and "exited with code 3" in r.json()["error"]
        assert "boom in" in r.json()["hint"]  # the log tail is still shown...
        assert not ABS_PATH.search(r.text), r.text  # ...with its paths cut to their last part


def test_every_route_answers_a_wrong_method_with_405_and_its_allow(populated):
    """Walk the app's own route table: each route, called with a method it lacks, says which it has."""
    from starlette.routing import Route

    app = create_app()
    filled = {"run_id": populated["a"], "name": "churn-model", "key": "0" * 12, "path": "x"}
    seen = 0
    with TestClient(app, follow_redirects=False, raise_server_exceptions=False) as c:
        for route in app.routes:
            if not isinstance(route, Route) or route.methods is None:
                continue
            url = route.path.replace("{path:path}", "x").format(**filled)
            wrong = next(m for m in ("PATCH", "PUT", "DELETE", "POST") if m not in route.methods)
            r = c.request(wrong, url)
            assert r.status_code == 405, (wrong, url, r.status_code)
            assert {m.strip() for m in r.headers["allow"].split(",")} == route.methods, (url, r.headers["allow"])
            seen += 1
    assert seen >= 20


BIG = "9223372036854775809"  # 2**63 + 1: Python reads it, no 64-bit column or bind parameter holds it


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"page": BIG}, "page"),
        ({"page": "9" * 30}, "page"),
        ({"q": "(" * 500 + "metrics.loss > 0" + ")" * 500}, "nested"),
        ({"q": "(" * 500}, "nested"),
        ({"q": "NOT " * 2000 + "metrics.loss > 0"}, "nested"),
    ],
)
@pytest.mark.parametrize("route", ["/api/runs", "/runs"])
def test_out_of_range_pages_and_deep_filters_are_400(hostile_client, populated, route, query, words):
    """Each was a 500: OFFSET past SQLite's 64-bit range, or the filter parser's recursion limit. The JSON API
    refuses a page past 10**9 with a message; the HTML page, which reads any bad number as page 1, does that."""
    r = hostile_client.get(route, params=query)
    if route == "/runs" and "page" in query:  # the HTML page reads a bad number as the default, page 1
        assert r.status_code == 200 and "<html" in r.text
        return
    assert r.status_code == 400, (route, r.status_code, r.text[:200])
    if route.startswith("/api"):
        assert words in r.json()["error"], r.json()


@pytest.mark.parametrize("op", [">", "=", "!=", "<"])
def test_filter_numbers_beyond_64_bits_compare_like_floats(hostile_client, populated, op):
    """metrics.loss > -(2**63 + 1) was a 500 (SQLite refuses the bind parameter); it now answers what the same
    number written as a float does."""
    c = hostile_client
    for sign in ("", "-"):
        big = c.get("/api/runs", params={"q": f"metrics.loss {op} {sign}{BIG}", "per_page": 500})
        ref = c.get("/api/runs", params={"q": f"metrics.loss {op} {sign}{float(BIG)!r}", "per_page": 500})
        assert big.status_code == ref.status_code == 200, (big.text[:200], ref.text[:200])
        assert [x["run_id"] for x in big.json()["runs"]] == [x["run_id"] for x in ref.json()["runs"]]
        assert big.json()["total"] == ref.json()["total"]


def test_page_numbers_are_plain_digits(hostile_client, populated):
    """int() also reads '1_0', '+1' and Arabic-Indic digits; a page number is ASCII digits (a leading '-' is
    read as page 1, like page=0)."""
    for raw in ("1_0", "+1", "\u0661", " 1"):
        r = hostile_client.get("/api/runs", params={"page": raw})
        assert r.status_code == 400 and "page" in r.json()["error"], (raw, r.status_code)
    for raw in ("-5", "0"):
        r = hostile_client.get("/api/runs", params={"page": raw})
        assert r.status_code == 200 and r.json()["page"] == 1
    r = hostile_client.get("/api/runs", params={"per_page": "1000000000"})
    assert r.status_code == 200 and r.json()["per_page"] == 500  # a huge page size is cut to the limit, and says so
