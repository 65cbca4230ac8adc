"""Hostile `offline:` settings in roost.yaml: each mistake is a RoostError at load time that names the field
(`offline.engine`, `offline.master`, `offline.conf...`, an unknown key), instead of a silent fallback to the local
engine or a Spark/Java error when a session starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from roost import workspace
from roost.errors import RoostError


def _load(tmp_path: Path, offline: str) -> dict[str, object]:
    (tmp_path / "roost.yaml").write_text("project: p\n" + offline)
    return workspace.load(tmp_path).offline


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for var in ("ROOST_OFFLINE_ENGINE", "ROOST_STORE_URL", "ROOST_ARTIFACTS", "ROOST_WORKSPACE"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize(
    ("yaml", "field"),
    [
        ("offline: {engin: spark}\n", "engin"),  # a typo must not run the job on the local engine
        ("offline: {engine: spark, mastr: 'local[2]'}\n", "mastr"),
        ("offline: {engine: [spark]}\n", "offline.engine"),
        ("offline: {engine: spark, master: 123}\n", "offline.master"),
        ("offline: {engine: spark, master: [a, b]}\n", "offline.master"),
        ("offline: {engine: spark, master: 'banana://x'}\n", "offline.master"),
        ("offline: {engine: spark, master: 'local[two]'}\n", "offline.master"),
        ("offline: {engine: spark, master: ''}\n", "offline.master"),
        ("offline: {engine: spark, conf: {spark.x: {a: 1}}}\n", "spark.x"),
        ("offline: {engine: spark, conf: {spark.x: [1, 2]}}\n", "spark.x"),
        ("offline: {engine: bogus}\n", "bogus"),
        ("offline: {engine: spark, conf: [a]}\n", "offline.conf"),
    ],
)
def test_bad_offline_settings_name_the_field(tmp_path, yaml, field):
    with pytest.raises(RoostError) as exc:
        _load(tmp_path, yaml)
    assert field in str(exc.value)


def test_unknown_key_suggests_the_known_one(tmp_path):
    with pytest.raises(RoostError) as exc:
        _load(tmp_path, "offline: {engine: spark, mastr: 'local[2]'}\n")
    assert "master" in (exc.value.hint or "")


@pytest.mark.parametrize(
    "master",
    ["local", "local[*]", "local[2]", "local[4,2]", "local[*,3]", "local-cluster[2,1,1024]", "yarn"]
    + ["spark://host:7077", "spark://h1:7077,h2:7077", "k8s://https://api.example:6443"],
)
def test_spark_master_urls_load(tmp_path, master):
    cfg = _load(
        tmp_path, f"offline:\n  engine: spark\n  master: '{master}'\n  conf:\n    spark.sql.shuffle.partitions: 8\n"
    )
    assert cfg["master"] == master and cfg["engine"] == "spark"


def test_env_engine_overrides_and_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("ROOST_OFFLINE_ENGINE", "SPARK")
    assert _load(tmp_path, "")["engine"] == "spark"
    monkeypatch.setenv("ROOST_OFFLINE_ENGINE", "dask")
    with pytest.raises(RoostError, match="ROOST_OFFLINE_ENGINE"):
        _load(tmp_path, "")
