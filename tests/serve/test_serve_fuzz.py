"""Fuzzing the server (issue #16): no request gets a 5xx, none makes a worker allocate what it did not send.

- a hand list of hostile bodies (fuzzkit.hand_list) for V2 JSON, V2 binary and TF-Serving REST: every one is a 4xx,
  in-process and against a real server whose worker RSS must stay bounded;
- 10,000 seeded random requests (fuzzkit.Generator) driven straight into the ASGI app: 0 responses >= 500 and a
  bounded test-process RSS, then 1,000 of them over loopback HTTP to the real server;
- Schemathesis fuzzes every operation of the server's own /openapi.json: no 5xx, documented codes and bodies.

Schemathesis' pytest plugin does not run under pytest 9 here (`Function` has no `_nodeid`), so each operation is
driven through its Hypothesis strategy directly, in positive and negative generation modes. For the inference
operations the "schema-valid data is accepted" check is off: JSON Schema cannot say "all 30 inputs, each with
len(data) == prod(shape) and the model's datatype", so a schema-valid body may rightly get a 400.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import httpx
import pytest
import requests
import schemathesis
from fuzzkit import Generator, Req, hand_list
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from servekit import InProcess, Server, column_package, iris_package, mixed_package, strings_package

from roost.serve.worker import create_app

GENERATED = 10_000  # in-process requests
OVER_HTTP = 1_000  # of those, also sent to the real server
RSS_GROWTH_MB = 200  # bound on worker / test-process RSS growth over a fuzz run (a 208-byte bomb used to add 2.3 GB)


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size of a process in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


@pytest.fixture(scope="module")
def fuzz_pkgs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The fuzz targets: strings, mixed (every dtype), column ([-1, 1]) and iris (four float32 columns)."""
    root = tmp_path_factory.mktemp("fuzzpkgs")
    return [
        strings_package(root / "strings"),
        mixed_package(root / "mixed"),
        column_package(root / "column"),
        iris_package(root / "iris"),
    ]


@pytest.fixture(scope="module")
def inproc(fuzz_pkgs: list[Path]):
    ip = InProcess(create_app([str(p) for p in fuzz_pkgs], max_body_mb=1))
    yield ip
    ip.close()


def call(ip: InProcess, r: Req) -> tuple[int, bytes]:
    path, _, query = r.path.partition("?")
    status, _, body = ip.request(r.method, path, r.body, r.headers, query=query.encode())
    return status, body


def test_hand_list_in_process(inproc):
    bad = []
    for r in hand_list():
        status, body = call(inproc, r)
        if not 400 <= status < 500 or "error" not in json.loads(body):
            bad.append(f"{status} {body[:200]!r} <- {r.short()}")
    assert not bad, "\n".join(bad)
    status, _ = call(inproc, Req("POST", "/v2/models/strings/infer", b"{}", {"content-length": "99999999999"}))
    assert status == 413


def test_generated_requests_in_process(inproc):
    """10,000 seeded random requests: no 5xx, every error a KServe {"error": ...} body, bounded memory."""
    gen = Generator(seed=16)
    for _ in range(200):  # warm-up: first-call allocations are not growth
        call(inproc, gen.request())
    before = rss_mb()
    codes: collections.Counter[int] = collections.Counter()
    bad = []
    for _ in range(GENERATED):
        r = gen.request()
        status, body = call(inproc, r)
        codes[status] += 1
        if status >= 500 or (status >= 400 and b'"error"' not in body):
            bad.append(f"{status} {body[:200]!r} <- {r.short()}")
    grown = rss_mb() - before
    assert not bad, f"{len(bad)} bad responses, first ones:\n" + "\n".join(bad[:10])
    assert sum(codes.values()) == GENERATED and codes[200] > GENERATED // 50, codes  # some reach the model
    assert grown < RSS_GROWTH_MB, f"test process RSS grew {grown:.0f} MiB over {GENERATED} requests ({codes})"


def test_real_server_hostile_and_generated_requests_keep_worker_rss_bounded(fuzz_pkgs, tmp_path):
    """The hand list + 1,000 generated requests over loopback HTTP: all < 500, worker RSS bounded."""
    srv = Server([str(p) for p in fuzz_pkgs], "--max-body-mb", "1", log=tmp_path / "server.log")
    try:
        srv.wait_ready()
        (worker,) = srv.worker_pids()
        gen = Generator(seed=18)
        with httpx.Client(base_url=srv.url, timeout=120.0) as c:
            for _ in range(50):
                r = gen.request()
                c.request(r.method, r.path, content=r.body, headers=r.headers)
            before = rss_mb(worker)
            bad = []
            reqs = hand_list() + [gen.request() for _ in range(OVER_HTTP)]
            for r in reqs:
                resp = c.request(r.method, r.path, content=r.body, headers=r.headers)
                if resp.status_code >= 500:
                    bad.append(f"{resp.status_code} {resp.text[:200]} <- {r.short()}")
            peak = rss_mb(worker)
            assert c.get("/v2/health/ready").status_code == 200
        assert not bad, "\n".join(bad[:10])
        assert srv.worker_pids() == [worker], "the worker died or was replaced during the fuzz run"
        assert peak - before < RSS_GROWTH_MB, f"worker RSS {before:.0f} -> {peak:.0f} MiB over {len(reqs)} requests"
    finally:
        srv.stop()


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_openapi_conformance(server, mode):
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    session = requests.Session()
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) == 17
    for op in ops:

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(
            max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
        )
        def fuzz(case: schemathesis.Case) -> None:
            infer = op.method == "post" and op.path.startswith(("/v1/", "/v2/"))
            case.call_and_validate(
                base_url=server.url, session=session, excluded_checks=[positive_data_acceptance] if infer else None
            )

        try:
            fuzz()
        except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
            assert mode is GenerationMode.NEGATIVE
        except Exception as exc:
            raise AssertionError(f"{op.method.upper()} {op.path} ({mode.value}): {exc}") from None


def test_server_still_healthy_after_fuzzing(server):
    with server.client() as c:
        assert c.get("/v2/health/ready").status_code == 200
        text = c.get("/metrics").text
        assert "roost_requests_total" in text and 'code="500"' not in text
