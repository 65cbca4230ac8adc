"""MLflow's search syntax as roost's filter grammar: what each MLflow form becomes (written out by hand)."""

from __future__ import annotations

import pytest

from roost.server.mlflow.common import MlflowError
from roost.server.mlflow.filters import order_by, run_filter


@pytest.mark.parametrize(
    ("mlflow", "roost"),
    [
        ("metrics.acc > 0.5 and params.lr = '0.1'", "metrics.acc > 0.5 AND params.lr = '0.1'"),
        ("attributes.run_name LIKE 'cv-%'", "name LIKE 'cv-%'"),
        ('attribute.status = "FINISHED"', 'status = "FINISHED"'),
        ('metrics."val loss" < 1', "metrics.`val loss` < 1"),
        ("tags.`my tag` != 'x'", "tags.`my tag` != 'x'"),
        ("tags.mlflow.source.type = 'LOCAL'", "tags.mlflow.source.type = 'LOCAL'"),
        ("attributes.user_id = 'alice'", "user = 'alice'"),
        ("attributes.start_time > 1700000000000", "start_time > '2023-11-14T22:13:20+00:00'"),
        ("run_id IN ('a', 'b')", "run_id IN ( 'a' , 'b' )"),
        ("", None),
    ],
)
def test_filters_translate(mlflow: str, roost: str | None) -> None:
    assert run_filter(mlflow) == roost


@pytest.mark.parametrize(
    "bad",
    [
        "tags.x ILIKE 'a%'",
        "metrics.acc IS NULL",
        "datasets.name = 'd'",
        "attributes.artifact_uri = 'x'",
        "params.a = ;",
    ],
)
def test_what_roost_cannot_answer_is_refused_by_name(bad: str) -> None:
    with pytest.raises(MlflowError) as err:
        run_filter(bad)
    assert err.value.code == "INVALID_PARAMETER_VALUE"


def test_order_by() -> None:
    assert order_by(["metrics.acc DESC", "attributes.start_time", "params.lr asc"]) == [
        "metrics.acc DESC",
        "start_time ASC",
        "params.lr ASC",
    ]
    with pytest.raises(MlflowError):
        order_by(["metrics.acc sideways"])
