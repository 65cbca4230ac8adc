"""Many processes writing one SQLite store: nothing lost, and SIGKILL never corrupts it."""
import os
import signal
import sqlite3
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


def test_eight_processes_log_concurrently_none_lost(ws):
    n = 400
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(ws.root), str(w), str(n)]) for w in range(8)]
    assert [p.wait(timeout=300) for p in procs] == [0] * 8
    db = ws.store_url[len("sqlite:///"):]
    con = sqlite3.connect(db)
    assert con.execute("select count(*) from runs where status='FINISHED'").fetchone()[0] == 24
    assert con.execute("select count(*) from metrics").fetchone()[0] == 8 * 3 * n * 2
    per_run = con.execute("select run_id, count(*), count(distinct step) from metrics where key='loss' "
                          "group by run_id").fetchall()
    assert len(per_run) == 24 and all(c == n and d == n for _, c, d in per_run)
    assert con.execute("select count(*) from params").fetchone()[0] == 48
    assert con.execute("select count(*), min(value), max(value) from latest_metrics where key='loss'").fetchone() \
        == (24, 1.0 / n, 1.0 / n)


def test_sigkill_mid_logging_leaves_a_consistent_store(ws):
    p = subprocess.Popen([sys.executable, "-c", KILLED, str(ws.root)], stdout=subprocess.PIPE, text=True)
    run_id = p.stdout.readline().strip()
    db = ws.store_url[len("sqlite:///"):]
    deadline = time.time() + 60
    while time.time() < deadline:
        con = sqlite3.connect(db)
        n = con.execute("select count(*) from metrics").fetchone()[0]
        con.close()
        if n > 2000:
            break
        time.sleep(0.2)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    steps = [r[0] for r in con.execute("select step from metrics where run_id=? order by step", (run_id,))]
    assert len(steps) > 2000 and steps == list(range(len(steps)))  # a prefix, no holes
    assert con.execute("select status from runs where id=?", (run_id,)).fetchone()[0] == "RUNNING"
    con.close()
    import roost

    assert roost.get_run(run_id)["metrics"]["loss"] > 0
    with roost.start_run(name="after") as r:  # the store still takes writes
        r.log_metric("ok", 1.0)
    assert roost.get_run(r.id)["metrics"] == {"ok": 1.0}
    assert Path(db).exists()
