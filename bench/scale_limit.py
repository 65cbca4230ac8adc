"""`bench/scale.py --sections limit`: the same PIT join on the local engine and on roost's Spark engine (local[2]),
each in a child process under the SAME hard memory cap, at sizes where the local engine dies and Spark finishes.

The cap is a memory cgroup made for each job (cgroup v2 `memory.max`, or v1 `memory.limit_in_bytes` on hosts that
mount v1; root needed): every process of the job (Python, DuckDB threads, the JVM, Spark's Python workers) counts
against it, and a job over it is killed by the kernel's OOM killer. Without a writable cgroup the bench falls back
to `RLIMIT_AS` for the local engine (a MemoryError instead of a kill) and to the JVM heap alone for Spark, and says
so. Spark runs with `spark.driver.memory` (`--limit-spark-memory`, the local[N] JVM's -Xmx) well under the cap so
that its execution memory spills to disk instead of growing; the rest of the cap is the JVM's off-heap memory and
Spark's Python workers. Data, jobs and figures are those of `--sections offline` (bench/scale_offline.py); on a
size both finish, the two training sets are compared row for row (as multisets over every column).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
V2 = Path("/sys/fs/cgroup")


def parse_bytes(text: str) -> int:
    """'2g' -> 2 GiB (k/m/g suffixes, powers of 1024)."""
    mult = {"k": 2**10, "m": 2**20, "g": 2**30}.get(text[-1].lower(), 1)
    return int(float(text[:-1] if mult > 1 else text) * mult)


class Cap:
    """A fresh memory cgroup of `limit` bytes for one job (v2 or v1), or None when none can be made."""

    def __init__(self, path: Path, v2: bool, limit: int) -> None:
        self.path, self.v2, self.limit = path, v2, limit

    @classmethod
    def make(cls, name: str, limit: int) -> Cap | None:
        """Create the cgroup under this process's own one; None without a writable memory controller."""
        v2 = (V2 / "cgroup.controllers").exists() and "memory" in (V2 / "cgroup.controllers").read_text().split()
        try:
            if v2:
                rel = next(
                    ln.split(":", 2)[2] for ln in Path("/proc/self/cgroup").read_text().splitlines() if ln[:3] == "0::"
                )
                base = V2 / rel.lstrip("/")
                path = base / name
                path.mkdir()
                (path / "memory.max").write_text(str(limit))
                if (path / "memory.swap.max").exists():
                    (path / "memory.swap.max").write_text("0")
            else:
                rel = next(
                    ln.split(":", 2)[2]
                    for ln in Path("/proc/self/cgroup").read_text().splitlines()
                    if ln.split(":")[1] == "memory"
                )
                path = V2 / "memory" / rel.lstrip("/") / name
                path.mkdir()
                (path / "memory.limit_in_bytes").write_text(str(limit))
        except (OSError, StopIteration):
            return None
        return cls(path, v2, limit)

    def enter(self) -> None:
        """Move the calling process (a child before exec) into the cgroup."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def stats(self) -> dict[str, int]:
        """Peak usage (page cache included) and OOM kills of the job's cgroup."""
        if self.v2:
            events = dict(ln.split() for ln in (self.path / "memory.events").read_text().splitlines())
            peak_file = self.path / "memory.peak"
            peak = int(peak_file.read_text()) if peak_file.exists() else -1
            return {"cg_peak": peak, "oom_kills": int(events.get("oom_kill", 0))}
        oom = dict(ln.split() for ln in (self.path / "memory.oom_control").read_text().splitlines())
        return {
            "cg_peak": int((self.path / "memory.max_usage_in_bytes").read_text()),
            "oom_kills": int(oom.get("oom_kill", 0)),
        }

    def remove(self) -> None:
        """Remove the (empty) cgroup."""
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.2)


def capped_job(args: dict[str, Any], limit: int, timeout: float) -> dict[str, Any]:
    """One bench/scale_offline.py worker job under the cap: its figures, or how it died (wall, CPU, peak)."""
    cap = Cap.make(f"roost-limit-{os.getpid()}-{args['engine']}-{time.monotonic_ns()}", limit)
    how = "cgroup v2 memory.max" if cap and cap.v2 else "cgroup v1 memory.limit_in_bytes" if cap else ""

    def enter() -> None:
        if cap is not None:
            cap.enter()
        elif args["engine"] == "local":  # no cgroup: address space of the one process (DuckDB + NumPy)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    if cap is None:
        how = "RLIMIT_AS" if args["engine"] == "local" else "JVM -Xmx only (no cgroup)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    cmd = [sys.executable, str(BENCH / "scale_offline.py"), "worker", json.dumps(args)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, preexec_fn=enter)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = None, str(e.stdout or ""), str(e.stderr or "")
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res: dict[str, Any] = {"cap": how, "rc": rc, "wall_total_s": wall}
    res["cpu_reaped_s"] = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if cap is not None:
        time.sleep(0.5)  # let killed descendants go before reading and removing the cgroup
        res.update(cap.stats())
        cap.remove()
    for line in reversed(out.splitlines()):
        if line.startswith("RESULT "):
            res.update(json.loads(line[len("RESULT ") :]))
            return res
    if rc is None:
        res["error"] = f"over {timeout:.0f} s"
    elif "MemoryError" in err or "OutOfMemory" in err or "Out of Memory" in err:
        res["error"] = (
            "out of memory: "
            + next((ln.strip() for ln in reversed(err.splitlines()) if "emory" in ln), "MemoryError")[-200:]
        )
    elif rc in (-9, 137) or res.get("oom_kills"):
        res["error"] = f"killed (signal 9) by the OOM killer at the cap ({res.get('oom_kills', '?')} OOM kills)"
    else:
        res["error"] = f"exit {rc}: " + " | ".join(err.strip().splitlines()[-3:])[-300:]
    return res


def same_rows(a: str, b: str, cols: list[str]) -> tuple[int, int, int]:
    """(rows of a, rows of b, rows in one and not the other, as multisets) over `cols` of two Parquet outputs."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    sel = ", ".join(f"epoch_us({c}) AS {c}" if c == "event_timestamp" else c for c in cols)
    na = con.sql(f"SELECT count(*) FROM read_parquet('{a}/*.parquet')").fetchall()[0][0]
    nb = con.sql(f"SELECT count(*) FROM read_parquet('{b}/*.parquet')").fetchall()[0][0]
    qa, qb = f"SELECT {sel} FROM read_parquet('{a}/*.parquet')", f"SELECT {sel} FROM read_parquet('{b}/*.parquet')"
    diff = con.sql(f"SELECT count(*) FROM (({qa} EXCEPT ALL {qb}) UNION ALL ({qb} EXCEPT ALL {qa}))").fetchall()[0][0]
    return int(na), int(nb), int(diff)


def limit(args: Any) -> float:
    """The PIT join per size, local vs roost Spark, each under the same cap; returns the largest size at which
    Spark finished divided by the largest at which the local engine finished (feature rows)."""
    sys.path.insert(0, str(BENCH))
    from scale_offline import FIELDS, parse_sizes

    from features import generate

    cap = parse_bytes(args.limit_mem)
    base = Path(args.work_dir or tempfile.mkdtemp(prefix="roost-scale-limit-"))
    print(
        f"memory limit: PIT join (TTL 2 d, 5 fields) under a {cap / 2**30:g} GiB cap per job; Spark local[2] with "
        f"spark.driver.memory={args.limit_spark_memory}; load average {os.getloadavg()[0]:.1f} at start"
    )
    print(
        f"{'size':>10} {'engine':>6} {'outcome':>9} {'wall s':>7} {'cpu s':>7} {'tree RSS GB':>11} "
        f"{'cgroup GB':>9} {'spill MB':>8}  check / error"
    )
    done: dict[str, int] = {}
    for n_ent, n_feat in parse_sizes(args.limit_sizes):
        work = base / f"{n_ent}x{n_feat}"
        work.mkdir(parents=True, exist_ok=True)
        feats, ents = work / "features.parquet", work / "entities.parquet"
        if not (feats.exists() and ents.exists()):
            generate(work, n_ent, n_feat, max(100_000, n_ent // 10), args.seed)
        label = f"{n_ent / 1e6:g}Mx{n_feat / 1e6:g}M"
        outs: dict[str, str] = {}
        for engine in ("local", "spark"):
            a = {
                "work": str(work),
                "features": str(feats),
                "entities": str(ents),
                "engine": engine,
                "job": "pit",
                "spark_memory": args.limit_spark_memory,
            }
            r = capped_job(a, cap, args.job_timeout)
            peak = r.get("cg_peak", -1) / 1e9
            if "error" in r:
                print(
                    f"{label:>10} {engine:>6} {'FAILED':>9} {r['wall_total_s']:>7.1f} {r['cpu_reaped_s']:>7.1f} "
                    f"{'':>11} {peak:>9.2f} {'':>8}  {r['error']} [{r['cap']}]",
                    flush=True,
                )
                continue
            outs[engine] = r["out"]
            done[engine] = max(done.get(engine, 0), n_feat)
            print(
                f"{label:>10} {engine:>6} {'finished':>9} {r['wall_s']:>7.1f} {r['cpu_s']:>7.1f} "
                f"{r['peak_rss'] / 1e9:>11.2f} {peak:>9.2f} {r['spill'] / 1e6:>8.0f}  {r['rows']:,} rows, "
                f"{r['matched']:,} matched, f0 sum {r['f0_sum']:.2f} [{r['cap']}]",
                flush=True,
            )
        if len(outs) == 2:
            na, nb, diff = same_rows(outs["local"], outs["spark"], ["user_id", "event_timestamp", *FIELDS])
            print(f"{label:>10}  local vs spark: {na:,} / {nb:,} rows, {diff:,} rows differ (multiset, every column)")
    return done.get("spark", 0) / max(done.get("local", 0), 1)
