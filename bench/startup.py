"""Startup benchmark: `import roost` and `roost --help` vs `import mlflow` and `mlflow --help`.

Every sample is a fresh process (the OS file cache stays warm: "cold-ish"); best of 5, first sample shown too.
Targets: import roost < 0.3 s, roost --help < 0.5 s. Prints `ratio: X` last (mlflow --help / roost --help).

    .venv/bin/python bench/startup.py [-n 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine, mlflow_python

# the peer's telemetry off, as in bench/registry.py (no network here; keep its background work out of the figures)
os.environ.update({"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "GIT_PYTHON_REFRESH": "quiet"})
IMPORT_TIMER = "import time; t = time.perf_counter(); import {mod}; print(time.perf_counter() - t)"


def wall(cmd: list[str]) -> float:
    """Wall seconds of one subprocess run (output discarded; must exit 0)."""
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def import_time(py: Path, mod: str) -> float:
    """Seconds spent in `import mod` inside a fresh interpreter (interpreter start excluded)."""
    out = subprocess.run([str(py), "-c", IMPORT_TIMER.format(mod=mod)], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def samples(fn, n: int) -> tuple[float, float]:
    """(best, first) of n calls."""
    xs = [fn() for _ in range(n)]
    return min(xs), xs[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=5)
    n = ap.parse_args().n
    rpy = REPO / ".venv" / "bin" / "python"
    mpy = mlflow_python()
    rcli, mcli = REPO / ".venv" / "bin" / "roost", mpy.parent / "mlflow"
    print(f"machine: {machine()}")
    fig = {
        "python -c pass (roost venv)": samples(lambda: wall([str(rpy), "-c", "pass"]), n),
        "import roost (in-process)": samples(lambda: import_time(rpy, "roost"), n),
        "python -c 'import roost' (process)": samples(lambda: wall([str(rpy), "-c", "import roost"]), n),
        "roost --help (process)": samples(lambda: wall([str(rcli), "--help"]), n),
        "python -c pass (mlflow venv)": samples(lambda: wall([str(mpy), "-c", "pass"]), n),
        "import mlflow (in-process)": samples(lambda: import_time(mpy, "mlflow"), n),
        "python -c 'import mlflow' (process)": samples(lambda: wall([str(mpy), "-c", "import mlflow"]), n),
        "mlflow --help (process)": samples(lambda: wall([str(mcli), "--help"]), n),
    }
    for k, (best, first) in fig.items():
        print(f"{k:<38} best {best * 1000:7.1f} ms   (first {first * 1000:7.1f} ms)")
    ri, rh = fig["import roost (in-process)"][0], fig["roost --help (process)"][0]
    mi, mh = fig["import mlflow (in-process)"][0], fig["mlflow --help (process)"][0]
    ri_proc = fig["python -c 'import roost' (process)"][0]
    print(
        f"target import roost < 300 ms: {ri * 1000:.1f} ms in-process, {ri_proc * 1000:.1f} ms whole process -> "
        f"{'met' if ri_proc < 0.3 else 'MISSED'}   (import mlflow {mi * 1000:.1f} ms, x{mi / ri:.1f})"
    )
    print(
        f"target roost --help < 500 ms: {rh * 1000:.1f} ms -> {'met' if rh < 0.5 else 'MISSED'}   "
        f"(mlflow --help {mh * 1000:.1f} ms, x{mh / rh:.1f})"
    )
    print(f"ratio: {mh / rh:.1f}")


if __name__ == "__main__":
    main()
