"""The offline engine's name is read one way wherever it is read (roost.yaml at load time, `get_engine` at join
time): ROOST_OFFLINE_ENGINE and `offline.engine` are trimmed of whitespace and case-folded, and an empty or blank
value means unset (as an empty environment variable does for Spark's own SPARK_* settings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from roost import workspace
from roost.errors import RoostError


def _write(root: Path, offline: str) -> None:
    (root / "roost.yaml").write_text("project: p\n" + offline)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for var in ("ROOST_OFFLINE_ENGINE", "ROOST_STORE_URL", "ROOST_ARTIFACTS", "ROOST_WORKSPACE"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize(
    ("env", "yaml", "want"),
    [
        (" spark ", "", "spark"),
        ("Spark\n", "", "spark"),
        ("\tLOCAL ", "offline: {engine: spark}\n", "local"),
        ("", "offline: {engine: spark}\n", "spark"),  # empty = unset: the file decides
        ("  ", "offline: {engine: spark}\n", "spark"),
        ("\n", "", "local"),
        (None, "offline: {engine: ' Spark '}\n", "spark"),
        (None, "offline: {engine: ''}\n", "local"),
        (None, "offline: {engine: '   '}\n", "local"),
    ],
)
def test_engine_name_is_trimmed_and_empty_is_unset(tmp_path, monkeypatch, env, yaml, want):
    from roost.features.engines import get_engine

    if env is not None:
        monkeypatch.setenv("ROOST_OFFLINE_ENGINE", env)
    _write(tmp_path, yaml)
    ws = workspace.load(tmp_path)
    assert ws.offline["engine"] == want  # at load time
    if want == "spark":
        pytest.importorskip("pyspark")  # SparkEngine's constructor starts nothing, but imports the module
    assert get_engine(ws).name == want  # and at join time, from the same settings and environment


@pytest.mark.parametrize("env", ["dask", " sparkk ", "spark local"])
def test_unknown_engine_is_refused_by_both_readers(tmp_path, monkeypatch, env):
    from roost.features.engines import get_engine

    _write(tmp_path, "")
    ws = workspace.load(tmp_path)  # loaded before the variable is set: get_engine reads it again
    monkeypatch.setenv("ROOST_OFFLINE_ENGINE", env)
    for read in (lambda: workspace.load(tmp_path), lambda: get_engine(ws)):
        with pytest.raises(RoostError, match=f"unknown offline engine {env.strip().lower()!r}") as exc:
            read()
        assert "ROOST_OFFLINE_ENGINE" in str(exc.value) and "local" in exc.value.hint


def test_one_parser():
    """engines.get_engine and workspace load share workspace.offline_engine (one function, not two copies)."""
    from roost.features import engines

    assert workspace.offline_engine(" Spark\n", None) == "spark"
    assert workspace.offline_engine("", " local ") == "local"
    assert workspace.offline_engine(None, None) == "local"
    assert engines.offline_engine is workspace.offline_engine
