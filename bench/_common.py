"""Shared helpers for bench scripts: peer venvs under .bench/, timing, peer drivers, machine line.

Stdlib only: peer drivers running in their own venvs import it too (`measure`), so both sides time alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BENCH_VENVS = REPO / ".bench"
BENCH_CACHE = REPO / ".bench-cache"  # results a bench reuses between runs (not venvs: .bench holds only those)


def peer_venv(name: str, requirements: list[str], check_import: str) -> Path:
    """The python of venv .bench/<name>, created and pip-installed with `requirements` if missing."""
    venv = BENCH_VENVS / name
    py = venv / "bin" / "python"
    if py.exists() and subprocess.run([str(py), "-c", f"import {check_import}"], capture_output=True).returncode == 0:
        return py
    print(f"[setup] creating peer venv {venv} ({' '.join(requirements)}) ...", file=sys.stderr, flush=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements], check=True)
    return py


def mlflow_python() -> Path:
    """The python of the MLflow benchmark venv (mlflow==3.17.2), created on first use."""
    return peer_venv("mlflow", ["mlflow==3.17.2"], "mlflow")


def mlflow_autolog_python() -> Path:
    """The python of MLflow 3.17.2 with the boosting libraries at the versions of roost's .venv (scikit-learn 1.9.1,
    LightGBM 4.7.0, XGBoost 3.2.0 — its CPU build, xgboost-cpu: the same library without the CUDA wheels),
    created on first use: bench/autolog.py and tests/autologging/test_vs_mlflow.py run MLflow's autolog in it."""
    return peer_venv(
        "mlflow_autolog",
        ["mlflow==3.17.2", "scikit-learn==1.9.1", "lightgbm==4.7.0", "xgboost-cpu==3.2.0"],
        "mlflow, lightgbm, xgboost, sklearn",
    )


def mlflow_server_python() -> Path:
    """The python of the MLflow server venv: mlflow[auth]==3.17.2 (its basic-auth app needs Flask-WTF) and the
    psycopg driver its PostgreSQL store needs."""
    return peer_venv("mlflow_server", ["mlflow[auth]==3.17.2", "psycopg[binary]==3.3.9"], "psycopg, flask_wtf")


def mlserver_python() -> Path:
    """The python of the MLServer benchmark venv (mlserver 1.7.1 + mlserver-sklearn), created on first use."""
    return peer_venv("mlserver", ["mlserver==1.7.1", "mlserver-sklearn==1.7.1"], "mlserver_sklearn")


def bentoml_python() -> Path:
    """The python of the BentoML benchmark venv (bentoml 1.4.40 + onnxruntime), created on first use."""
    return peer_venv("bentoml", ["bentoml==1.4.40", "onnxruntime", "numpy"], "bentoml, onnxruntime")


def litserve_python() -> Path:
    """The python of the LitServe benchmark venv (litserve 0.2.19 + onnxruntime), created on first use."""
    return peer_venv("litserve", ["litserve==0.2.19", "onnxruntime", "numpy", "orjson"], "litserve, onnxruntime")


def rayserve_python() -> Path:
    """The python of the Ray Serve benchmark venv (ray[serve] 2.60.0 + onnxruntime), created on first use."""
    return peer_venv("rayserve", ["ray[serve]==2.60.0", "onnxruntime", "numpy"], "ray.serve, onnxruntime")


def feast_python() -> Path:
    """The python of the Feast benchmark venv (feast[duckdb,redis]==0.67.0), created on first use."""
    return peer_venv("feast", ["feast[duckdb,redis]==0.67.0"], "feast, redis")


def run_driver(
    python: Path | str, source: str, args: list[str], cwd: Path, env: dict | None = None, timeout: float = 900
) -> dict:
    """Run `source` as a script under `python`; its last stdout line is JSON, returned as a dict."""
    with tempfile.NamedTemporaryFile("w", suffix="_driver.py", delete=False, dir=cwd) as f:
        f.write(source)
        path = f.name
    try:
        proc = subprocess.run(
            [str(python), path, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
    finally:
        Path(path).unlink(missing_ok=True)  # the driver was left in the repository root after every bench run
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"peer driver failed (exit {proc.returncode})")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    return json.loads(lines[-1])


def best_of(fn: Callable[[], float], n: int = 5) -> float:
    """The smallest of n calls to fn (each returns seconds)."""
    return min(fn() for _ in range(n))


def median_time(fn: Callable[[], Any], n: int = 7) -> tuple[float, Any]:
    """(median seconds over n calls, last result)."""
    times, out = [], None
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def rss_mb() -> float:
    """This process's resident set size now (VmRSS), MiB; NaN where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (ru_maxrss), MiB."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


@dataclass
class Measured:
    """What `measure()` saw: wall and CPU seconds of the block; RSS (MiB) before/after it and the peak."""

    wall: float = 0.0
    cpu: float = 0.0
    rss_start: float = 0.0
    rss_end: float = 0.0
    peak_start: float = 0.0
    peak: float = 0.0


@contextlib.contextmanager
def measure() -> Iterator[Measured]:
    """Time the `with` block: wall (perf_counter), CPU (this process's user+sys), RSS before/after, peak RSS.

    The peak is the process's high-water mark at the end (not reset at the start): run the block first, or
    compare `peak` with `peak_start`. The figures are filled in when the block ends, also when it raises.
    """
    m = Measured(rss_start=rss_mb(), peak_start=peak_rss_mb())
    w, c = time.perf_counter(), time.process_time()
    try:
        yield m
    finally:
        m.wall, m.cpu = time.perf_counter() - w, time.process_time() - c
        m.rss_end, m.peak = rss_mb(), peak_rss_mb()


def median_call_us(fn: Callable[[Any], Any], args: list[Any], reps: int, warmup: int = 20) -> float:
    """Median microseconds of `fn(arg)` over `reps` calls cycling through `args`, after `warmup` untimed calls."""
    for a in args[:warmup]:
        fn(a)
    times = []
    for k in range(reps):
        a = args[k % len(args)]
        t = time.perf_counter()
        fn(a)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def machine() -> str:
    """One line describing this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()} "
        f"{platform.release()}, load avg {load} at start"
    )


def fmt_s(x: float) -> str:
    """Seconds, human-sized."""
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def row(label: str, roost: float, peer: float, peer_name: str = "MLflow") -> str:
    """A figure line: roost, peer and peer/roost."""
    return f"{label:<42} roost {fmt_s(roost):>10}   {peer_name} {fmt_s(peer):>10}   x{peer / roost:,.1f}"
