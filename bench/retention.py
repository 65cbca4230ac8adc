"""Retention bench (#21 item 3): delete half of the runs by filter, gc them (rows + artifacts), store size.

Part 1, roost vs MLflow 3.17.2 (.bench/mlflow, created through _common.mlflow_python), both on SQLite with local
artifacts, the same N runs (3 params, 1 tag, 5 metric points, one 1 KB artifact each; populating is not timed):
  delete  the runs with params.parity = '0' (half): roost.delete_runs(filter=...) vs MLflow's search_runs + one
          delete_run per run (MLflow has no delete by filter);
  gc      roost.gc() vs `mlflow gc` (both remove rows and artifact folders of the deleted runs);
  size    the SQLite file before/after (roost: gc(vacuum=True); MLflow has no vacuum: its file stays).
Part 2, roost only, --scale M runs (bulk-inserted rows, 1 param, 1 tag, 2 metric points, no artifacts): delete half
by filter, gc, VACUUM; times and sizes.

    python bench/retention.py [--runs 2000] [--scale 100000]

Prints `ratio: X` last: MLflow (delete + gc net of the `mlflow gc` command's fixed cost, measured by running it
again with nothing left to remove) / roost (delete + gc, in-process), part 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import roost

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH, machine, measure, mlflow_python, row, run_driver

MLFLOW_DRIVER = (
    f"import sys; sys.path.insert(0, {str(BENCH)!r})\n"
    + r"""
import json, os, subprocess, sys, time
from pathlib import Path
from _common import measure  # the same timing code as roost's side
import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

n, root = int(sys.argv[1]), Path(sys.argv[2])
db = root / "mlflow.db"
uri = f"sqlite:///{db}"
client = MlflowClient(tracking_uri=uri)
eid = client.create_experiment("ret", artifact_location=(root / "mlartifacts").as_uri())
blob = root / "blob.bin"
blob.write_bytes(os.urandom(1024))
t0 = time.time()
for i in range(n):
    r = client.create_run(eid)
    rid = r.info.run_id
    client.log_batch(
        rid,
        metrics=[Metric("loss", 1.0 / (s + 1), int(t0 * 1000) + s, s) for s in range(5)],
        params=[Param("lr", str(i / n)), Param("depth", str(i % 7)), Param("parity", str(i % 2))],
        tags=[RunTag("team", "ads")],
    )
    client.log_artifact(rid, str(blob))
    client.set_terminated(rid)
size_full = db.stat().st_size
with measure() as m_delete:
    hits = client.search_runs([eid], "params.parity = '0'", max_results=50000)
    for r in hits:
        client.delete_run(r.info.run_id)
mlflow_bin = Path(sys.executable).parent / "mlflow"
with measure() as m_gc:
    gc = subprocess.run(
        [str(mlflow_bin), "gc", "--backend-store-uri", uri], capture_output=True, text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
    )
if gc.returncode != 0:
    raise SystemExit("mlflow gc failed: " + gc.stderr[-3000:])
with measure() as m_again:  # nothing left to remove: the command's fixed cost
    subprocess.run([str(mlflow_bin), "gc", "--backend-store-uri", uri], capture_output=True,
                   env={**os.environ, "MLFLOW_TRACKING_URI": uri})
t_delete, t_gc, t_gc_again = m_delete.wall, m_gc.wall, m_again.wall
left = sum(1 for p in (root / "mlartifacts").rglob("*") if p.is_file())
print(json.dumps({"deleted": len(hits), "delete_s": t_delete, "gc_s": t_gc, "gc_again_s": t_gc_again,
                  "size_full": size_full,
                  "size_after": db.stat().st_size, "artifact_dirs_left": left}))
"""
)


def _db_size(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def _delete_gc_vacuum(run_filter: str, store: Any) -> dict[str, float]:
    """Delete the runs matching `run_filter`, gc them, VACUUM the store: counts and wall seconds of each step."""
    import roost
    from roost.registry import retention

    with measure() as m_delete:
        res = roost.delete_runs(filter=run_filter)
    with measure() as m_gc:
        rep = roost.gc()
    with measure() as m_vac:
        retention.run_vacuum(store)
    return {
        "deleted": len(res.run_ids),
        "removed": len(rep.run_ids),
        "delete_s": m_delete.wall,
        "gc_s": m_gc.wall,
        "vacuum_s": m_vac.wall,
    }


def roost_part(n: int, root: Path) -> dict[str, float]:
    """Part 1 for roost: populate n runs, delete half by filter, gc with VACUUM."""
    import roost
    from roost import workspace

    w = roost.init(root / "ws")
    workspace.use(w)
    blob = root / "blob.bin"
    blob.write_bytes(os.urandom(1024))
    for i in range(n):
        with roost.start_run(
            experiment="ret", params={"lr": i / n, "depth": i % 7, "parity": str(i % 2)}, tags={"team": "ads"}
        ) as r:
            for s in range(5):
                r.log_metric("loss", 1.0 / (s + 1), step=s)
            r.log_artifact(blob)
    db = Path(w.store_url.split("sqlite:///", 1)[1])
    from roost.registry.store import default_store

    default_store().engine.dispose()
    size_full = _db_size(db)
    steps = _delete_gc_vacuum("params.parity = '0'", default_store())
    left = sum(1 for p in Path(w.artifacts).rglob("*") if p.is_file())
    workspace.use(None)
    return {
        **steps,
        "size_full": size_full,
        "size_after": _db_size(db),
        "artifact_dirs_left": left,
    }


def scale_part(m: int, root: Path) -> dict[str, float]:
    """Part 2: m bulk-inserted runs in roost's store; delete half by filter, gc, VACUUM."""
    from datetime import UTC, datetime, timedelta

    from roost import workspace
    from roost.registry.store import default_store
    from roost.registry.tables import Base

    w = roost.init(root / "scale")
    workspace.use(w)
    st = default_store()
    eid = st.get_or_create_experiment("scale")
    t_tab = {k: Base.metadata.tables[k] for k in ("runs", "params", "tags", "metrics", "latest_metrics")}
    start = datetime.now(UTC) - timedelta(days=1)
    with measure() as m_fill:
        _fill(st, t_tab, eid, w.artifacts, start, m)
    db = Path(w.store_url.split("sqlite:///", 1)[1])
    st.engine.dispose()
    size_full = _db_size(db)
    steps = _delete_gc_vacuum("params.parity = 0", st)
    workspace.use(None)
    return {
        "runs": m,
        "fill_s": m_fill.wall,
        **steps,
        "size_full": size_full,
        "size_after": _db_size(db),
    }


def _fill(st: Any, t_tab: dict[str, Any], eid: str, artifacts: str, start: Any, m: int) -> None:
    """Bulk-insert m runs (1 param, 1 tag, 2 metric points each) in batches of 10,000."""
    from datetime import timedelta

    for lo in range(0, m, 10000):
        runs, params, tags, metrics, latest = [], [], [], [], []
        for i in range(lo, min(m, lo + 10000)):
            rid = uuid.uuid4().hex
            runs.append(
                {
                    "id": rid,
                    "experiment_id": eid,
                    "name": f"r{i}",
                    "status": "FINISHED",
                    "start_time": start + timedelta(milliseconds=i),
                    "end_time": start + timedelta(milliseconds=i + 1),
                    "artifact_uri": f"file://{artifacts}/{eid}/{rid}/artifacts",
                    "source": "bench",
                }
            )
            params.append({"run_id": rid, "key": "parity", "value": str(i % 2), "type": "int", "num": float(i % 2)})
            tags.append({"run_id": rid, "key": "team", "value": "ads"})
            for s in range(2):
                metrics.append({"run_id": rid, "key": "loss", "value": 1.0 / (s + 1), "step": s, "timestamp": 0.0})
            latest.append({"run_id": rid, "key": "loss", "value": 0.5, "step": 1, "timestamp": 0.0})
        with st.write() as s:
            conn = s.connection()
            for name, rows in (
                ("runs", runs),
                ("params", params),
                ("tags", tags),
                ("metrics", metrics),
                ("latest_metrics", latest),
            ):
                conn.execute(t_tab[name].insert(), rows)


def main() -> None:
    """Run both parts and print the figures, `ratio:` last."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2000, help="runs for the roost vs MLflow part (0 skips it)")
    ap.add_argument("--scale", type=int, default=100000, help="runs for the roost-only part (0 skips it)")
    a = ap.parse_args()
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.chdir(root)
        if a.scale:
            sc = scale_part(a.scale, root / "b")
            print("scale:", json.dumps(sc), flush=True)
        if not a.runs:
            return
        ro = roost_part(a.runs, root / "r")
        print("roost:", json.dumps(ro), flush=True)
        (root / "m").mkdir()
        ml = run_driver(mlflow_python(), MLFLOW_DRIVER, [str(a.runs), str(root / "m")], cwd=root / "m", timeout=7200)
        print("mlflow:", json.dumps(ml), flush=True)
    print(row(f"delete {ro['deleted']} of {a.runs} runs by filter", ro["delete_s"], ml["delete_s"]))
    print(row("gc of those runs (rows + artifacts)", ro["gc_s"], ml["gc_s"]))
    print(f"MLflow gc again with nothing to remove (its fixed cost): {ml['gc_again_s']:.2f} s")
    print(f"artifact files left: roost {ro['artifact_dirs_left']}, MLflow {ml['artifact_dirs_left']} (of {a.runs})")
    print(
        f"store file: roost {ro['size_full']:,} -> {ro['size_after']:,} B (VACUUM {ro['vacuum_s']:.2f} s); "
        f"MLflow {ml['size_full']:,} -> {ml['size_after']:,} B"
    )
    net = max(ml["gc_s"] - ml["gc_again_s"], 0.0)  # MLflow's gc without its CLI start-up (roost's is in-process)
    print(f"MLflow gc net of that fixed cost: {net:.2f} s")
    print(f"ratio: {(ml['delete_s'] + net) / (ro['delete_s'] + ro['gc_s']):.1f}")


if __name__ == "__main__":
    main()
