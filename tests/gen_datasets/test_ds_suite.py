"""The quality suites' regression and multiclass tables load offline with the label roost infers the right task
for, at least 300 rows, and no label-leaking column left (bench/quality.py trains on them)."""

from __future__ import annotations

import pandas as pd
import pytest

from roost.datasets.suite import LABEL, MULTICLASS_TABLES, REGRESSION_TABLES, SUITES, load_table
from roost.errors import RoostError
from roost.training.preprocess import infer_task


@pytest.mark.parametrize("name", [*REGRESSION_TABLES, *MULTICLASS_TABLES])
def test_a_task_table_loads_with_its_task(name: str) -> None:
    t = {**REGRESSION_TABLES, **MULTICLASS_TABLES}[name]
    df = load_table(name)
    assert len(df) >= 300 and df[LABEL].notna().all()
    assert infer_task(df[LABEL]) == t.task
    assert t.target not in df.columns and not set(t.drop) & set(df.columns)
    if t.task == "multiclass":
        assert df[LABEL].nunique() >= 3 and df[LABEL].value_counts().min() >= 20  # every class in every fold
    else:
        assert pd.api.types.is_float_dtype(df[LABEL])


def test_each_suite_has_six_tables_of_varied_size() -> None:
    for task in ("regression", "multiclass"):
        sizes = sorted(len(load_table(n)) for n in SUITES[task])
        assert len(sizes) >= 6 and sizes[-1] >= 5 * sizes[0] / 2, (task, sizes)


def test_an_unknown_table_names_the_nearest() -> None:
    with pytest.raises(RoostError, match="did you mean 'housing'"):
        load_table("housng")
