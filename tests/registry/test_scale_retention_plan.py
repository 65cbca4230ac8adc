"""The retention guard at scale: "which model versions came from these runs" is an index probe of
model_versions.run_id (migration 0006), not a scan of every model version per batch of runs deleted or gc'd."""

import uuid
from datetime import UTC, datetime, timedelta

from helpers import statements_sent
from roost.registry import retention
from roost.registry.store import default_store
from roost.registry.tables import ModelVersion, RegisteredModel

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _fill(runs: int, versions: int) -> list[str]:
    """`runs` finished runs; model versions registered from the first `versions` of them (10 models)."""
    st = default_store()
    eid = st.get_or_create_experiment("mv")
    ids = [uuid.uuid4().hex for _ in range(runs)]
    rows = [
        {
            "id": rid,
            "experiment_id": eid,
            "status": "FINISHED",
            "start_time": T0 + timedelta(seconds=i),
            "end_time": T0 + timedelta(seconds=i + 1),
            "artifact_uri": f"file:///x/{rid}/artifacts",
        }
        for i, rid in enumerate(ids)
    ]
    st.bulk_insert(rows)
    with st.write() as s:
        for m in range(10):
            s.add(RegisteredModel(name=f"m{m}", created_at=T0))
        s.flush()
        for i, rid in enumerate(ids[:versions]):
            s.add(ModelVersion(name=f"m{i % 10}", version=i // 10 + 1, run_id=rid, source="file:///x", created_at=T0))
    return ids


def _model_version_lookups(fn) -> list[tuple[str, object]]:
    """(SQL, params) of every SELECT against model_versions that fn() runs."""
    return statements_sent(
        default_store().engine, fn, lambda q: q.lstrip().upper().startswith("SELECT") and "model_versions" in q
    )


def test_the_delete_guard_finds_model_versions_of_runs_through_an_index(ws):
    st = default_store()
    ids = _fill(300, 200)
    with st.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    change = None

    def delete() -> None:
        nonlocal change
        change = retention.change_stage(st, "delete", run_ids=ids[190:210], force=True)

    stmts = _model_version_lookups(delete)
    assert change is not None and len(change.model_versions) == 10  # runs 190..199 have a version each
    assert stmts, "the guard did not read model_versions"
    stmt, params = stmts[0]
    with st.engine.connect() as conn:
        if st.engine.dialect.name == "sqlite":
            plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + stmt, params)]
            assert not any(step.startswith("SCAN model_versions") for step in plan), plan
            assert any("model_versions" in s and "ix_model_versions_run_id" in s for s in plan), plan
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")  # can an index serve it (a small table is read whole)
            plan = [row[0] for row in conn.exec_driver_sql("EXPLAIN " + stmt, params)]
            assert not any("Seq Scan on model_versions" in s for s in plan), plan
            assert any("ix_model_versions_run_id" in s for s in plan), plan


def test_the_index_is_in_the_migrated_schema(ws):
    from sqlalchemy import inspect

    idx = {i["name"]: i["column_names"] for i in inspect(default_store().engine).get_indexes("model_versions")}
    assert idx.get("ix_model_versions_run_id") == ["run_id"]
