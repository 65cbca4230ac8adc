"""Schemathesis fuzzes every operation of the server's own /openapi.json: no 5xx, documented codes and bodies.

Schemathesis' pytest plugin does not run under pytest 9 here (`Function` has no `_nodeid`), so each operation is
driven through its Hypothesis strategy directly, in positive and negative generation modes. For the inference
operations the "schema-valid data is accepted" check is off: JSON Schema cannot say "all 30 inputs, each with
len(data) == prod(shape) and the model's datatype", so a schema-valid body may rightly get a 400.
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance


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
