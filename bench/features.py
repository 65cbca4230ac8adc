"""Feature store benchmark: roost vs Feast (DuckDB offline store, SQLite online store) on the same generated data.

Measures the point-in-time join (entity rows x feature rows), materialisation into SQLite, and online reads of 1 and
100 entities (roost's OnlineFetcher vs hand-written raw SQLite vs Feast), once per feature-view TTL (default 2 and 7
days: Feast's range join gets cheaper as the TTL shrinks, roost's cost hardly moves, so the short TTL is the hard
case). Each side runs in a fresh process per TTL (roost in this script's `--roost-worker` mode, Feast in its own
venv, .bench/feast with 'feast[duckdb]==0.67.0', created on first use by bench/_common.peer_venv), so every PIT
join timed is its process's first: the cold first join. The generated files are synced to disk before anything is
timed; `--cold-cache` also drops them from the page cache before each side's join (posix_fadvise DONTNEED on
those two files only), so both sides read them from disk. roost's line splits the join's wall time into CPU
(user/sys), time the main thread waited for a core (run queue: load from other processes) and time it was blocked
(I/O, page faults, locks). Prints `ratio: X` last, X = the smallest over the TTLs of Feast PIT time / roost PIT time.

    .venv/bin/python bench/features.py --entity-rows 1000000 --feature-rows 10000000 --ttl-days 2 7
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import BENCH, feast_python, measure, median_call_us

import roost

ROOT = Path(__file__).resolve().parents[1]
FIELDS = {"f0": "float64", "f1": "float64", "f2": "int64", "f3": "int64", "f4": "float64"}
DAYS = 30
START = "2024-01-01 00:00:00+00"

FEAST_WORKER = r'''
import json, sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
import pandas as pd, pyarrow.parquet as pq
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64

a = json.loads(Path(sys.argv[1]).read_text())
sys.path.insert(0, a["bench"])
from _common import measure, median_call_us  # the same timing code as roost's side
repo = Path(a["dir"])
(repo / "feature_store.yaml").write_text(f"""project: bench
registry: {repo}/registry.db
provider: local
offline_store:
  type: duckdb
online_store:
  type: sqlite
  path: {repo}/online.db
entity_key_serialization_version: 3
""")
user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
src = FileSource(path=a["features"], timestamp_field="event_timestamp", created_timestamp_column="created")
types = {"float64": Float64, "int64": Int64}
fv = FeatureView(name="stats", entities=[user], ttl=timedelta(days=a["ttl_days"]), source=src, online=True,
                 schema=[Field(name=f, dtype=types[t]) for f, t in a["fields"].items()])
store = FeatureStore(repo_path=str(repo))
store.apply([user, fv])
refs = [f"stats:{f}" for f in a["fields"]]
out = {}
ent = pq.read_table(a["entities"]).to_pandas()
with measure() as m:
    res = store.get_historical_features(entity_df=ent, features=refs).to_arrow()
out["pit_s"], out["pit_cpu"] = m.wall, m.cpu
out["pit_rows"] = res.num_rows
out["pit_matched"] = res.num_rows - res.column("f0").null_count
out["pit_f0_sum"] = float(pd.Series(res.column("f0").to_numpy(zero_copy_only=False)).sum())
del res, ent
end = datetime.fromisoformat(a["end"])
with measure() as m:
    store.materialize(start_date=end - timedelta(days=a["ttl_days"]), end_date=end)
out["mat_s"], out["mat_cpu"] = m.wall, m.cpu
for n, reps in ((1, a["reps1"]), (100, a["reps100"])):
    ids = [[{"user_id": int(i)} for i in batch] for batch in a["batches"][str(n)]]
    read = lambda rows: store.get_online_features(features=refs, entity_rows=rows).to_dict()
    out[f"read{n}_us"] = median_call_us(read, ids, reps, warmup=5)
    d = store.get_online_features(features=refs, entity_rows=ids[0]).to_dict()
    out[f"read{n}_found"] = sum(v is not None for v in d["f0"])
print("FEAST_RESULT " + json.dumps(out))
'''


def generate(work: Path, entity_rows: int, feature_rows: int, entities: int, seed: int) -> tuple[Path, Path]:
    """Write features.parquet (event + created times, ties, 5 fields) and entities.parquet with DuckDB."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute(f"SELECT setseed({(seed % 1000) / 1000})")
    feats, ents = work / "features.parquet", work / "entities.parquet"
    secs = DAYS * 86400
    con.execute(f"""COPY (
        SELECT (random() * {entities})::BIGINT AS user_id,
               TIMESTAMPTZ '{START}' + to_seconds((random() * {secs} / 60)::BIGINT * 60) AS event_timestamp,
               TIMESTAMPTZ '{START}' + to_seconds((random() * {secs})::BIGINT) AS created,
               random() AS f0, random() * 100 AS f1, (random() * 1000)::BIGINT AS f2,
               (random() * 10)::BIGINT AS f3, CASE WHEN random() < 0.05 THEN NULL ELSE random() END AS f4
        FROM range({feature_rows})) TO '{feats}' (FORMAT parquet)""")
    # entity rows: 5% unknown ids, times from a day before the data to a day after, 1% exact duplicates
    n_dup = entity_rows // 100
    con.execute(f"""CREATE TABLE e AS
        SELECT (random() * {int(entities * 1.05)})::BIGINT AS user_id,
               TIMESTAMPTZ '{START}' + to_seconds((random() * {secs + 2 * 86400} - 86400)::BIGINT) AS event_timestamp
        FROM range({entity_rows - n_dup})""")
    con.execute(f"COPY (SELECT * FROM e UNION ALL (SELECT * FROM e LIMIT {n_dup})) TO '{ents}' (FORMAT parquet)")
    con.close()
    return feats, ents


def roost_side(
    work: Path,
    feats: Path,
    ents: Path,
    end: str,
    batches: dict,
    reps1: int,
    reps100: int,
    ttl_days: float,
    cold_cache: bool = False,
) -> dict:
    """Time roost's training_set, materialize and OnlineFetcher reads; raw SQLite reads as the baseline."""
    import pyarrow.parquet as pq

    from roost import workspace
    from roost.features import OnlineFetcher, apply, materialize, training_set

    ws = roost.init(work / f"roost-ttl{ttl_days:g}d")
    workspace.use(ws)
    (ws.root / "features").mkdir(exist_ok=True)
    (ws.root / "features" / "bench.py").write_text(
        textwrap.dedent(f"""
        from datetime import timedelta
        from roost.features import Entity, FeatureView, Source
        user = Entity("user", {{"user_id": "int64"}})
        src = Source("bench_src", path={str(feats)!r}, event_time="event_timestamp", created_time="created")
        stats = FeatureView("stats", user, src, fields={FIELDS!r}, ttl=timedelta(days={ttl_days}))
    """)
    )
    apply()
    refs = [f"stats:{f}" for f in FIELDS]
    out: dict = {}
    ent = pq.read_table(ents)
    if cold_cache:
        evict(feats, ents)
    before = _usage()
    with measure() as m:
        res = training_set(ent, refs, event_time="event_timestamp", output="arrow")
    out["pit_s"], out["pit_cpu"] = m.wall, m.cpu
    out.update({f"pit_{k}": v - before[k] for k, v in _usage().items()})
    out["pit_rows"] = res.num_rows
    out["pit_matched"] = res.num_rows - res.column("f0").null_count
    out["pit_f0_sum"] = float(res.column("f0").to_pandas().sum())
    del res, ent
    with measure() as m:
        mat = materialize(end=end)
    out["mat_s"], out["mat_cpu"] = m.wall, m.cpu
    out["mat_entities"] = mat[0].rows
    fetcher = OnlineFetcher(refs, ["user_id"])
    db = ws.online_store[len("sqlite:///") :]
    raw = RawSQLite(db, list(FIELDS))
    import numpy as np

    for n, reps in ((1, reps1), (100, reps100)):
        arrays = [np.array(b, dtype=np.int64) for b in batches[str(n)]]
        got = fetcher.fetch({"user_id": arrays[0]})
        want = raw.read(arrays[0])
        assert all(_same(got[f], want[f]) for f in FIELDS), "roost and raw SQLite disagree"
        out[f"read{n}_us"] = median_call_us(lambda a: fetcher.fetch({"user_id": a}), arrays, reps)
        out[f"raw{n}_us"] = median_call_us(raw.read, arrays, reps)
        out[f"read{n}_found"] = int(np.sum(~np.isnan(got["f0"])))
    return out


def evict(*paths: Path) -> None:
    """Drop these files' pages from the page cache (written back first), so the next read comes from disk."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _usage() -> dict:
    """This process's user/sys CPU and page faults, and its main thread's run-queue wait and on-CPU seconds."""
    import resource
    import threading

    r = resource.getrusage(resource.RUSAGE_SELF)
    out = {"user": r.ru_utime, "sys": r.ru_stime, "minflt": r.ru_minflt, "majflt": r.ru_majflt}
    try:  # Linux: on-CPU ns, run-queue wait ns, time slices of the main thread
        with open(f"/proc/self/task/{threading.get_native_id()}/schedstat") as f:
            on_cpu, runq = (int(x) / 1e9 for x in f.read().split()[:2])
        out.update(main_cpu=on_cpu, main_runq=runq)
    except OSError:
        pass
    return out


def roost_process(
    work: Path,
    feats: Path,
    ents: Path,
    end: str,
    batches: dict,
    reps1: int,
    reps100: int,
    ttl_days: float,
    cold_cache: bool,
) -> dict:
    """`roost_side` in a fresh process (this script's --roost-worker mode), so its PIT join is the process's first."""
    arg = work / f"roost_args_ttl{ttl_days:g}.json"
    arg.write_text(
        json.dumps(
            {
                "work": str(work),
                "feats": str(feats),
                "ents": str(ents),
                "end": end,
                "batches": batches,
                "reps1": reps1,
                "reps100": reps100,
                "ttl_days": ttl_days,
                "cold_cache": cold_cache,
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    p = subprocess.run([sys.executable, __file__, "--roost-worker", str(arg)], capture_output=True, text=True, env=env)
    for line in p.stdout.splitlines():
        if line.startswith("ROOST_RESULT "):
            return json.loads(line[len("ROOST_RESULT ") :])
    raise RuntimeError(f"roost worker failed (exit {p.returncode}):\n{p.stderr[-3000:]}")


def _same(a, b) -> bool:
    import numpy as np

    return a.dtype == b.dtype and bool(
        np.all((a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else a == b)
    )


class RawSQLite:
    """The hand-written baseline: a prepared SELECT ... WHERE user_id IN (...), rows back in request order."""

    def __init__(self, path: str, fields: list[str]) -> None:
        self.con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.fields = fields
        self.head = f"SELECT user_id, {', '.join(fields)} FROM fv_stats WHERE user_id "

    def read(self, ids) -> dict:
        """Columns for `ids` (numpy int64), NaN where missing."""
        import numpy as np

        keys = ids.tolist()
        if len(keys) == 1:
            rows = self.con.execute(self.head + "= ?", keys).fetchall()
        else:
            rows = self.con.execute(self.head + f"IN ({','.join('?' * len(keys))})", keys).fetchall()
        found = {r[0]: r for r in rows}
        got = [found.get(k) for k in keys]
        out = {}
        for i, f in enumerate(self.fields, start=1):
            vals = [None if r is None else r[i] for r in got]
            dt = np.float64 if FIELDS[f] == "float64" or None in vals else np.int64
            out[f] = np.array(vals, dtype=dt)
        return out


def feast_side(
    feast_py: Path,
    work: Path,
    feats: Path,
    ents: Path,
    end: str,
    batches: dict,
    reps1: int,
    reps100: int,
    ttl_days: float,
) -> dict:
    """Run the Feast worker in Feast's own venv on the same files; returns its figures."""
    d = work / f"feast-ttl{ttl_days:g}d"
    d.mkdir(exist_ok=True)
    script = work / "feast_worker.py"
    script.write_text(FEAST_WORKER)
    arg = d / "feast_args.json"
    arg.write_text(
        json.dumps(
            {
                "dir": str(d),
                "bench": str(BENCH),
                "features": str(feats),
                "entities": str(ents),
                "fields": FIELDS,
                "ttl_days": ttl_days,
                "end": end,
                "batches": batches,
                "reps1": reps1,
                "reps100": reps100,
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROOST_", "PYTHONPATH"))}
    env["FEAST_USAGE"] = "False"
    p = subprocess.run([str(feast_py), str(script), str(arg)], capture_output=True, text=True, env=env, cwd=d)
    for line in p.stdout.splitlines():
        if line.startswith("FEAST_RESULT "):
            return json.loads(line[len("FEAST_RESULT ") :])
    raise RuntimeError(f"Feast worker failed (exit {p.returncode}):\n{p.stderr[-3000:]}")


def main() -> None:
    """Generate data, run both sides per TTL, print figures and `ratio: X` (the worst TTL's PIT ratio) last."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entity-rows", type=int, default=1_000_000)
    ap.add_argument("--feature-rows", type=int, default=10_000_000)
    ap.add_argument("--entities", type=int, default=100_000, help="distinct ids (= entities materialised)")
    ap.add_argument("--reps1", type=int, default=2000)
    ap.add_argument("--reps100", type=int, default=500)
    ap.add_argument(
        "--ttl-days",
        type=float,
        nargs="+",
        default=[2.0, 7.0],
        help="feature view TTLs, each a full run (Feast's PIT cost grows with the TTL)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-feast", action="store_true")
    ap.add_argument("--work-dir", default=None)
    ap.add_argument("--cold-cache", action="store_true", help="drop the data files from the page cache before joins")
    ap.add_argument("--roost-worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.roost_worker:  # the roost side in a fresh process
        w = json.loads(Path(a.roost_worker).read_text())
        paths = {k: Path(w[k]) for k in ("work", "feats", "ents")}
        rest = {k: w[k] for k in ("end", "batches", "reps1", "reps100", "ttl_days", "cold_cache")}
        print("ROOST_RESULT " + json.dumps(roost_side(**paths, **rest)), flush=True)
        return
    import random

    feast_py = None if a.skip_feast else feast_python()  # create Feast's venv before anything is timed
    work = Path(a.work_dir or tempfile.mkdtemp(prefix="roost-bench-features-"))
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    feats, ents = generate(work, a.entity_rows, a.feature_rows, a.entities, a.seed)
    print(
        f"data: {a.entity_rows:,} entity rows x {a.feature_rows:,} feature rows, {a.entities:,} ids "
        f"({time.perf_counter() - t:.1f} s to generate) in {work}",
        flush=True,
    )
    os.sync()  # the generated files reach the disk now, not as write-back during a timed join
    end = "2024-01-31T00:00:00+00:00"
    rng = random.Random(a.seed)
    batches = {str(n): [[rng.randrange(a.entities) for _ in range(n)] for _ in range(200)] for n in (1, 100)}
    ratios: dict[float, float] = {}
    summary = []
    for ttl in a.ttl_days:
        print(f"--- TTL {ttl:g} d", flush=True)
        r = roost_process(work, feats, ents, end, batches, a.reps1, a.reps100, ttl, a.cold_cache)
        _print_roost(r)
        if feast_py is None:
            continue
        if a.cold_cache:
            evict(feats, ents)
        f = feast_side(feast_py, work, feats, ents, end, batches, a.reps1, a.reps100, ttl)
        _print_feast(a, r, f)
        ratios[ttl] = f["pit_s"] / r["pit_s"]
        summary.append(
            f"cold first PIT join, TTL {ttl:g} d: roost {r['pit_s']:.2f} s (cpu {r['pit_cpu']:.2f} s) vs Feast "
            f"{f['pit_s']:.2f} s (cpu {f['pit_cpu']:.2f} s) -> {ratios[ttl]:.2f}x"
        )
    if feast_py is None:
        print("feast: skipped (--skip-feast)")
        print(f"ratio: {r['read1_us'] / r['raw1_us']:.2f}")
        return
    print("---")
    print("\n".join(summary))
    print(f"ratio: {min(ratios.values()):.2f}")


def _print_roost(r: dict) -> None:
    print(
        f"roost  PIT join (fresh process, cold first join): {r['pit_s']:.2f} s (cpu {r['pit_cpu']:.2f} s), "
        f"{r['pit_rows']:,} rows out ({r['pit_matched']:,} matched, f0 sum {r['pit_f0_sum']:.3f})",
        flush=True,
    )
    if "pit_main_runq" in r:
        blocked = r["pit_s"] - r["pit_main_cpu"] - r["pit_main_runq"]
        print(
            f"roost  PIT join wall split: cpu user {r['pit_user']:.2f} s + sys {r['pit_sys']:.2f} s (all threads); "
            f"main thread on cpu {r['pit_main_cpu']:.2f} s, waiting for a core {r['pit_main_runq']:.2f} s, "
            f"blocked {blocked:.2f} s; page faults {r['pit_minflt']:,} minor, {r['pit_majflt']:,} major",
            flush=True,
        )
    print(f"roost  materialize: {r['mat_s']:.2f} s (cpu {r['mat_cpu']:.2f} s) for {r['mat_entities']:,} entities")
    for n in (1, 100):
        print(
            f"online read {n:>3}: roost {r[f'read{n}_us']:.1f} us, raw SQLite {r[f'raw{n}_us']:.1f} us "
            f"-> {r[f'read{n}_us'] / r[f'raw{n}_us']:.2f}x raw ({r[f'read{n}_found']} of last batch found)"
        )


def _print_feast(a: argparse.Namespace, r: dict, f: dict) -> None:
    dropped = a.entity_rows - f["pit_rows"]
    print(
        f"feast  PIT join: {f['pit_s']:.2f} s (cpu {f['pit_cpu']:.2f} s), {f['pit_rows']:,} rows out "
        f"({f['pit_matched']:,} matched, f0 sum {f['pit_f0_sum']:.3f}); {dropped:,} entity rows dropped",
        flush=True,
    )
    print(f"feast  materialize: {f['mat_s']:.2f} s (cpu {f['mat_cpu']:.2f} s)")
    for n in (1, 100):
        print(f"feast  online read {n:>3}: {f[f'read{n}_us']:.1f} us ({f[f'read{n}_found']} found)")
    print(
        f"PIT join: roost {r['pit_s']:.2f} s vs Feast {f['pit_s']:.2f} s -> {f['pit_s'] / r['pit_s']:.2f}x "
        f"(cpu time {f['pit_cpu'] / r['pit_cpu']:.2f}x)"
    )
    print(f"materialize: roost {r['mat_s']:.2f} s vs Feast {f['mat_s']:.2f} s -> {f['mat_s'] / r['mat_s']:.2f}x")
    for n in (1, 100):
        print(
            f"online read {n}: roost/raw SQLite {r[f'read{n}_us'] / r[f'raw{n}_us']:.2f}x, "
            f"Feast/roost {f[f'read{n}_us'] / r[f'read{n}_us']:.1f}x"
        )
    print(f"rows: entity {a.entity_rows:,}, roost out {r['pit_rows']:,}, Feast out {f['pit_rows']:,}")


if __name__ == "__main__":
    sys.exit(main())
