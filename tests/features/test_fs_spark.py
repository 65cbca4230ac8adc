"""The Spark offline engine on a real local SparkSession: training sets, `roost train` with data.entities and
`roost features materialize` equal the local engine's; DuckDB SQL that Spark cannot run, and a missing pyspark or
Java, are clear errors."""

from __future__ import annotations

import json
import sys
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pytest
from fs_helpers import ALL_REFS, T0, TYPED_DEFS, entity_rows_at, write_defs, write_typed_data

from roost.errors import RoostError

pytestmark = pytest.mark.slow

REFS = [*ALL_REFS, "by_region:score"]
USERS = list(range(45))  # 40..44 have no rows


def _entities(t_hours: list[float]) -> pa.Table:
    """Every user at each of the given hours after T0 (and one null time), with a region."""
    rows = [(u, T0 + timedelta(hours=h)) for h in t_hours for u in USERS] + [(3, None)]
    return pa.table(
        {
            "user_id": pa.array([u for u, _ in rows], pa.int64()),
            "region": pa.array([["eu", "us", "ap"][i % 3] for i in range(len(rows))]),
            "event_time": pa.array([t for _, t in rows], pa.timestamp("us", tz="UTC")),
        }
    )


def _use(monkeypatch, engine: str) -> None:
    monkeypatch.setenv("ROOST_OFFLINE_ENGINE", engine)


@pytest.fixture
def typed(fws):
    write_typed_data(fws.root)
    write_defs(fws.root, TYPED_DEFS)
    from roost.features import apply

    apply()
    return fws


def _jobs(spark, group: str) -> int:
    return len(spark.sparkContext.statusTracker().getJobIdsForGroup(group))


def test_training_set_equals_local(typed, spark, monkeypatch):
    """Typed fields, ties on a 10-minute grid, late arrivals, SQL and Python transformations, a static CSV view."""
    from roost.features import training_set

    ents = _entities([0.5, 6, 20.1, 47.99, 60])
    _use(monkeypatch, "local")
    want = training_set(ents, REFS, output="arrow", full_names=True)
    _use(monkeypatch, "spark")
    spark.sparkContext.setJobGroup("ts", "training set")
    got = training_set(ents, REFS, output="arrow", full_names=True)
    assert _jobs(spark, "ts") > 0
    assert got.schema == want.schema
    assert len(ents) - want.column("activity__n").null_count > 50  # the data exercise matches, not only misses
    for name in want.column_names:
        assert got.column(name).equals(want.column(name)), name
    # pandas in, pandas out, like the local engine
    got_pd = training_set(ents.to_pandas(), ["activity:score", "pyview:score_x2"])
    assert list(got_pd.columns) == ["user_id", "region", "event_time", "score", "score_x2"]
    want_score = want.column("activity__score").to_numpy(zero_copy_only=False)  # null -> NaN, as pandas has it
    np.testing.assert_array_equal(got_pd["score"].to_numpy(), want_score)


def test_spark_dataframe_in_spark_dataframe_out(typed, spark, monkeypatch):
    from roost.features import training_set

    ents = _entities([6, 20.1]).append_column("row", pa.array(range(2 * len(USERS) + 1), pa.int64()))
    _use(monkeypatch, "local")
    want = training_set(ents, ["activity:*", "profile:tier"], output="arrow")
    _use(monkeypatch, "local")  # a Spark DataFrame goes to Spark whatever the setting
    sdf = spark.createDataFrame(ents)
    out = training_set(sdf, ["activity:*", "profile:tier"])
    assert type(out).__name__ == "DataFrame" and out.columns == want.column_names
    got = out.toArrow().sort_by("row")
    for name in want.column_names:
        assert got.column(name).cast(want.schema.field(name).type).equals(want.column(name)), name


def _online(url: str) -> dict[str, list]:
    from roost.features import online

    tbl = online([*ALL_REFS], {"user_id": USERS}, output="arrow", online_store=url)
    ids = {"user_id": [1, 1, 2, 3], "region": ["eu", "us", "eu", "xx"]}
    reg = online(["by_region:score"], ids, output="arrow", online_store=url)
    return {**{n: tbl.column(n).to_pylist() for n in tbl.column_names}, "by_region": reg["score"].to_pylist()}


def test_materialize_equals_local_in_bounded_chunks(typed, spark, monkeypatch, tmp_path):
    from roost.features import materialize
    from roost.features import spark_engine as se
    from roost.features.online_stores import open_online_store

    t1 = T0 + timedelta(hours=20, minutes=5)
    local_url, spark_url = f"sqlite:///{tmp_path / 'local.db'}", f"sqlite:///{tmp_path / 'spark.db'}"
    _use(monkeypatch, "local")
    want = {r.view: r.rows for r in materialize(end=t1, online_store=local_url)}
    _use(monkeypatch, "spark")
    monkeypatch.setattr(se, "CHUNK_ROWS", 7)  # every view is written in several bounded chunks
    writes = []
    store = open_online_store(spark_url)
    real = store.write
    monkeypatch.setattr(store, "write", lambda views: writes.append(views[0].table.num_rows) or real(views))
    got = materialize(end=t1, online_store=spark_url)
    assert {r.view: r.rows for r in got} == want and sum(writes) == sum(want.values())
    assert max(writes) <= 7 and len(writes) > len(want)  # bounded chunks
    assert _online(spark_url) == _online(local_url)
    # incremental: the next run continues from the watermark on both engines and they still agree
    t2 = t1 + timedelta(hours=10)
    materialize(end=t2, online_store=spark_url)
    _use(monkeypatch, "local")
    materialize(end=t2, online_store=local_url)
    assert _online(spark_url) == _online(local_url)


def test_cli_materialize_and_train_from_roost_yaml(typed, spark, cli, monkeypatch):
    """`offline: {engine: spark}` in roost.yaml: the CLI's materialize and roost.train's training set run on Spark
    and give what the local engine gives (the same model metrics from the same rows)."""
    import roost
    from roost import workspace

    monkeypatch.delenv("ROOST_OFFLINE_ENGINE", raising=False)
    cfg = typed.config_path
    cfg.write_text(cfg.read_text() + 'offline:\n  engine: spark\n  master: "local[2]"\n')
    workspace.use(typed.root)
    assert workspace.current().offline["engine"] == "spark"
    spark.sparkContext.setJobGroup("cli", "cli")
    code, out, err = cli("features", "materialize", "--end", "2024-05-01T20:00:00Z", "--json")
    assert code == 0, err
    assert {r["view"] for r in json.loads(out)} >= {"activity", "pyview"} and _jobs(spark, "cli") > 0
    ents = _entities([6, 20.1, 30]).to_pandas()
    ents["label"] = (ents["user_id"] % 2 == 0).astype(int)
    ents.to_parquet(typed.root / "entities.parquet")
    train_cfg = {
        "data": {"entities": "entities.parquet", "features": ["activity:n", "activity:score", "profile:age"]},
        "label": "label",
        "model": "logreg",
        "trainer": {"epochs": 2, "seed": 0},
        "features": {"include": ["n", "score", "age"]},
    }
    spark.sparkContext.setJobGroup("train", "train")
    on_spark = roost.get_run(roost.train(train_cfg, progress=False).run_id)
    assert _jobs(spark, "train") > 0
    cfg.write_text(cfg.read_text().replace("engine: spark", "engine: local"))
    workspace.use(typed.root)
    on_local = roost.get_run(roost.train(train_cfg, progress=False).run_id)
    assert on_spark["params"]["data.rows"] == on_local["params"]["data.rows"] == len(ents)
    assert on_spark["metrics"] == pytest.approx(on_local["metrics"], abs=1e-9)


BAD_DEFS = """
user = Entity("user", {"user_id": "int64"})
events = Source("events", path="data/events.parquet", event_time="event_time", created_time="created_time")
duck_only = FeatureView("duck_only", user, events, fields={"yr": "string"},
                        transform={"yr": "strftime(seen_at, '%Y')"})
frac = FeatureView("frac", user, events, fields={"half": "int64"}, transform={"half": "n / 2"})
"""


def test_duckdb_only_sql_and_fractional_ints_are_clear_errors(fws, spark, monkeypatch):
    from roost.features import apply, training_set

    write_typed_data(fws.root)
    write_defs(fws.root, BAD_DEFS)
    apply()
    _use(monkeypatch, "spark")
    ents = entity_rows_at(T0 + timedelta(hours=30), [1, 2, 3, 4, 5, 6, 7, 8])
    with pytest.raises(RoostError, match="does not run as Spark SQL") as exc:
        training_set(ents, ["duck_only:yr"])
    assert "strftime" in str(exc.value) and "local engine" in exc.value.hint
    with pytest.raises(RoostError, match="'half' .*is not an integer") as exc:  # n / 2 is fractional for odd n
        training_set(ents, ["frac:half"])
    assert "float64" in exc.value.hint


def test_missing_pyspark_or_java_says_what_to_install(monkeypatch, tmp_path):
    from roost.features.spark_engine import require_spark

    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(RoostError, match="needs pyspark") as exc:
        require_spark()
    assert "roost[spark]" in exc.value.hint
    monkeypatch.delitem(sys.modules, "pyspark")
    pytest.importorskip("pyspark")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(RoostError, match="Java") as exc:
        require_spark()
    assert "openjdk-17-jre-headless" in exc.value.hint


def test_unknown_engine_is_a_config_error(fws, monkeypatch):
    from roost.features import training_set

    monkeypatch.setenv("ROOST_OFFLINE_ENGINE", "sparkk")
    write_typed_data(fws.root)
    write_defs(fws.root, TYPED_DEFS)
    from roost.features import apply

    apply()
    with pytest.raises(RoostError, match="unknown offline engine 'sparkk'"):
        training_set(entity_rows_at(T0, [1]), ["activity:n"])


MULTI_DEFS = """
user = Entity("user", {"user_id": "int64"})
multi = Source("multi", path="data/multi/*.parquet", event_time="et")
tied = FeatureView("tied", user, multi, fields={"v": "int64"})
"""


def test_source_order_across_files_breaks_ties_like_duckdb(fws, spark, monkeypatch):
    """Rows tied on (key, event time) in three files of different sizes (Spark packs big files first): the last
    row of the last file in path order wins on both engines."""
    import pyarrow.parquet as pq

    from roost.features import apply, training_set

    d = fws.root / "data" / "multi"
    d.mkdir()
    for i, n in enumerate([3, 2, 400]):  # c.parquet is the biggest
        et = [T0 if j % 2 == 0 else T0 + timedelta(minutes=1) for j in range(n)]
        tbl = pa.table(
            {
                "user_id": pa.array([j % 2 for j in range(n)], pa.int64()),
                "et": pa.array(et, pa.timestamp("us", tz="UTC")),
                "v": pa.array([1000 * i + j for j in range(n)], pa.int64()),
            }
        )
        pq.write_table(tbl, d / f"{'abc'[i]}.parquet", row_group_size=50)
    write_defs(fws.root, MULTI_DEFS)
    apply()
    ents = entity_rows_at(T0 + timedelta(minutes=5), [0, 1])
    _use(monkeypatch, "local")
    want = training_set(ents, ["tied:v"], output="arrow").column("v").to_pylist()
    assert want == [2398, 2399]  # the brute-force answer: the last row of c.parquet for each key
    _use(monkeypatch, "spark")
    assert training_set(ents, ["tied:v"], output="arrow").column("v").to_pylist() == want


def test_pushed_rows_reach_spark_training_sets_and_materialize(fws, spark, monkeypatch, tmp_path):
    """Source rows + pushes (late, out of order, tied with source rows, re-pushed with new values): the Spark
    engine's training set (with and without a ttl) equals a brute-force PIT join with the local engines' tie rule,
    and its materialisation the brute-force latest row."""
    import pandas as pd
    from push_helpers import DEFS, FIELDS, all_rows, brute_latest, brute_pit, rows

    from roost.features import apply, materialize, online, push, training_set

    rng = np.random.default_rng(3)
    batch = rows(rng, 80)
    batch.to_parquet(fws.root / "data" / "events.parquet")
    write_defs(fws.root, DEFS)
    apply()
    pushes = []
    for i in range(4):
        tie = batch.sample(5, random_state=i)[["user_id", "event_time", "created_time"]]
        parts = [rows(rng, 20), tie.assign(clicks=rng.integers(0, 9, 5), score=0.5 + i, label=f"tie{i}")]
        if pushes:
            parts.append(pushes[-1].head(3).assign(clicks=-i, label=f"again{i}"))
        pushes.append(pd.concat(parts, ignore_index=True))
        push("clicks", pushes[-1])
        push("clicks_ttl", pushes[-1])
    held = all_rows(batch, pushes)
    times = [T0 + timedelta(minutes=int(m)) for m in rng.integers(-60, 32 * 60, 200)]
    ent = pd.DataFrame({"user_id": rng.integers(0, 13, 200), "event_time": pd.to_datetime(times, utc=True)})
    _use(monkeypatch, "spark")
    for view, ttl in (("clicks", None), ("clicks_ttl", timedelta(hours=3))):
        got = training_set(ent, [f"{view}:{f}" for f in FIELDS], output="arrow")
        for f in FIELDS:
            exp = [
                None
                if (r := brute_pit(held, int(u), t.to_pydatetime(), None if ttl is None else ttl)) is None
                else r[f]
                for u, t in zip(ent.user_id, ent.event_time)
            ]
            assert got.column(f).to_pylist() == exp, (view, f)
    url = f"sqlite:///{tmp_path / 'spark.db'}"
    materialize(end=T0 + timedelta(days=3), start=T0 - timedelta(days=1), views=["clicks"], online_store=url)
    users = list(range(13))
    on = online([f"clicks:{f}" for f in FIELDS], {"user_id": users}, online_store=url, output="arrow")
    for f in FIELDS:
        assert on.column(f).to_pylist() == [None if (r := brute_latest(held, u)) is None else r[f] for u in users]
