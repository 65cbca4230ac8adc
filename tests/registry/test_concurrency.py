"""Many processes writing one SQLite store: nothing lost, and SIGKILL never corrupts it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

WRITER = r"""
import sys, roost
from roost import workspace
workspace.use(sys.argv[1])
wid, n = int(sys.argv[2]), int(sys.argv[3])
for r in range(3):
    with roost.start_run(experiment="conc", name=f"w{wid}-r{r}", params={"wid": wid, "r": r}) as run:
        for i in range(n):
            run.log_metrics({"loss": 1.0 / (i + 1), "acc": i / n}, step=i)
            if i % 50 == 0:
                run.set_tag("progress", str(i))
"""

KILLED = r"""
import sys, roost
from roost import workspace
workspace.use(sys.argv[1])
with roost.start_run(experiment="kill", name="victim") as run:
    print(run.id, flush=True)
    i = 0
    while True:
        run.log_metrics({"loss": 1.0 / (i + 1)}, step=i)
        if i % 200 == 0:
            run.flush()
        i += 1
"""


class _Con:
    """Raw SQL on the workspace's store, whichever backend it is."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine

        self.engine = create_engine(url)

    def one(self, sql: str, *args):
        from sqlalchemy import text

        with self.engine.connect() as c:
            return tuple(c.execute(text(sql), dict(enumerate(args))).fetchone())

    def all(self, sql: str):
        from sqlalchemy import text

        with self.engine.connect() as c:
            return [tuple(r) for r in c.execute(text(sql)).fetchall()]


def test_concurrent_writer_processes_none_lost(ws):
    """8 processes on SQLite, 16 on PostgreSQL, each 3 runs × n steps × 2 metrics: every row is there."""
    writers = 16 if ws.store_url.startswith("postgresql") else 8
    n = 300
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(ws.root), str(w), str(n)]) for w in range(writers)]
    assert [p.wait(timeout=300) for p in procs] == [0] * writers
    con = _Con(ws.store_url)
    assert con.one("select count(*) from runs where status='FINISHED'")[0] == writers * 3
    assert con.one("select count(*) from metrics")[0] == writers * 3 * n * 2
    per_run = con.all("select run_id, count(*), count(distinct step) from metrics where key='loss' group by run_id")
    assert len(per_run) == writers * 3 and all(c == n and d == n for _, c, d in per_run)
    assert con.one("select count(*) from params")[0] == writers * 3 * 2
    cnt, lo, hi = con.one("select count(*), min(value), max(value) from latest_metrics where key='loss'")
    assert (cnt, lo, hi) == (writers * 3, 1.0 / n, 1.0 / n)
    con.engine.dispose()


def test_sigkill_mid_logging_leaves_a_consistent_store(ws):
    p = subprocess.Popen([sys.executable, "-c", KILLED, str(ws.root)], stdout=subprocess.PIPE, text=True)
    run_id = p.stdout.readline().strip()
    con = _Con(ws.store_url)
    deadline = time.time() + 120  # (only a hang guard)
    while time.time() < deadline:
        if con.one("select count(*) from metrics")[0] > 2000:
            break
        time.sleep(0.2)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    if ws.store_url.startswith("sqlite"):
        assert con.one("PRAGMA integrity_check")[0] == "ok"
    steps = [r[0] for r in con.all(f"select step from metrics where run_id='{run_id}' order by step")]
    assert len(steps) > 2000 and steps == list(range(len(steps)))  # a prefix, no holes
    assert con.one(f"select status from runs where id='{run_id}'")[0] == "RUNNING"
    con.engine.dispose()
    db = ws.store_url[len("sqlite:///") :] if ws.store_url.startswith("sqlite") else str(ws.root)
    import roost

    assert roost.get_run(run_id)["metrics"]["loss"] > 0
    with roost.start_run(name="after") as r:  # the store still takes writes
        r.log_metric("ok", 1.0)
    assert roost.get_run(r.id)["metrics"] == {"ok": 1.0}
    assert Path(db).exists()


REGISTER = r"""
import sys, roost
from roost import workspace
workspace.use(sys.argv[1])
for i in range(5):
    with roost.start_run(experiment=f"race-{i}") as run:
        d = run.artifact_dir / "model"
        d.mkdir()
        (d / "model.onnx").write_bytes(b"x")
    roost.register_model(run.id, "raced", "model")
"""


def test_concurrent_experiment_creation_and_registration(ws):
    """8 processes create the same experiments and register versions of one model at once: versions 1..40."""
    procs = [subprocess.Popen([sys.executable, "-c", REGISTER, str(ws.root)]) for _ in range(8)]
    assert [p.wait(timeout=300) for p in procs] == [0] * 8
    import roost

    assert [v.version for v in roost.list_versions("raced")] == list(range(1, 41))
    assert sorted(e["name"] for e in roost.list_experiments() if e["name"].startswith("race-")) == [
        f"race-{i}" for i in range(5)
    ]


UPDATER = r"""
import sys
from roost import workspace
from roost.registry.store import default_store
workspace.use(sys.argv[1])
wid, n = sys.argv[2], int(sys.argv[3])

def add(spec):
    spec = spec or {"items": []}
    spec["items"].append(f"{wid}-{len(spec['items'])}")
    return spec

for _ in range(n):
    default_store().update_object("counter", "shared", add)
"""


def test_update_object_read_modify_write_loses_nothing(ws):
    """Processes appending to one stored object at once (how index versions are taken): every append is there.

    A plain get_object + put_object pair in each process would lose appends whenever two interleave.
    """
    from roost.registry.store import default_store

    writers, n = 6, 25
    env = {**os.environ, "ROOST_STORE_URL": ws.store_url}
    procs = [
        subprocess.Popen([sys.executable, "-c", UPDATER, str(ws.root), f"w{i}", str(n)], env=env)
        for i in range(writers)
    ]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    items = default_store().get_object("counter", "shared")["items"]
    assert len(items) == writers * n
    # each append saw every earlier one: position k holds the (k)-th append, whoever made it
    assert [int(x.split("-")[1]) for x in items] == list(range(writers * n))
    assert sorted({x.split("-")[0] for x in items}) == sorted(f"w{i}" for i in range(writers))
