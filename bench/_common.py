"""Shared helpers for bench scripts: peer venvs under .bench/, timing, peer drivers, machine line."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH_VENVS = REPO / ".bench"


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


def mlserver_python() -> Path:
    """The python of the MLServer benchmark venv (mlserver 1.7.1 + mlserver-sklearn), created on first use."""
    return peer_venv("mlserver", ["mlserver==1.7.1", "mlserver-sklearn==1.7.1"], "mlserver_sklearn")


def feast_python() -> Path:
    """The python of the Feast benchmark venv (feast[duckdb]==0.67.0), created on first use."""
    return peer_venv("feast", ["feast[duckdb]==0.67.0"], "feast")


def run_driver(
    python: Path | str, source: str, args: list[str], cwd: Path, env: dict | None = None, timeout: float = 900
) -> dict:
    """Run `source` as a script under `python`; its last stdout line is JSON, returned as a dict."""
    with tempfile.NamedTemporaryFile("w", suffix="_driver.py", delete=False, dir=cwd) as f:
        f.write(source)
        path = f.name
    proc = subprocess.run(
        [str(python), path, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
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
