"""Scale-out figures: repository write throughput SQLite vs PostgreSQL with 1/4/16 writer processes
(online reads SQLite vs Redis and DDP epoch time are added by their sections below).

Each writer process opens the store, starts 4 runs and logs 500 steps × 4 metrics per run (buffered, as
training does), so rows/s counts durable metric rows in the database.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import create_database, postgres  # noqa: E402

WRITER = r"""
import sys, roost
from roost import workspace
workspace.use(sys.argv[1])
for r in range(4):
    with roost.start_run(experiment="scale", params={"r": r}) as run:
        for i in range(500):
            run.log_metrics({"a": i, "b": i / 2, "c": 1.0, "d": 0.5}, step=i)
"""
ROWS_PER_WRITER = 4 * 500 * 4


def _ws(store_url: str | None) -> Path:
    from roost import workspace

    d = Path(tempfile.mkdtemp(prefix="roost-scale-"))
    if store_url:
        os.environ["ROOST_STORE_URL"] = store_url
    else:
        os.environ.pop("ROOST_STORE_URL", None)
    workspace.init(d)
    return d


def writers(n: int, root: Path) -> float:
    """Seconds for n writer processes to finish (all rows durable)."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(root)], env=os.environ.copy()) for _ in range(n)]
    if any(p.wait() for p in procs):
        raise SystemExit("a writer failed")
    return time.perf_counter() - t0


def main() -> None:
    print(f"machine: {platform.node()} {os.cpu_count()} cpu, python {platform.python_version()}")
    print("registry write throughput (metric rows/s, higher is better)")
    print(f"{'writers':>8} {'sqlite':>12} {'postgresql':>12} {'pg/sqlite':>10}")
    last = 1.0
    with postgres() as base:
        for i, n in enumerate((1, 4, 16)):
            sq = writers(n, _ws(None))
            pg = writers(n, _ws(create_database(base, f"scale_{i}")))
            rs, rp = n * ROWS_PER_WRITER / sq, n * ROWS_PER_WRITER / pg
            last = rp / rs
            print(f"{n:>8} {rs:>12,.0f} {rp:>12,.0f} {last:>10.2f}")
    os.environ.pop("ROOST_STORE_URL", None)
    print(f"ratio: {last:.2f}")


if __name__ == "__main__":
    main()
