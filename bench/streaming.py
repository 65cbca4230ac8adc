"""Streaming features: push throughput and the online feature server, roost against Feast 0.67 on the same data.

Sections (`--only NAME`, repeatable; default all):
  push    rows/s pushed in batches of --batch rows, like for like per push mode: roost's `Pusher.push(to="online")`
          against Feast's `FeatureStore.push(to=ONLINE)` (Feast's default), and roost's default
          `to="online_and_offline"` (online store + offline log, all or none) against Feast's ONLINE_AND_OFFLINE, on
          the same online store kind: SQLite, then Redis (a redis-server started on loopback for the run). Both
          sides push one frame after another from one thread; a roost-only line adds --pushers threads sharing a
          Pusher (group commit, both).
  server  get-online-features req/s at c=16 (wrk, loopback, bounded -d): `roost features serve` against
          `feast serve`, both over the SQLite online store the push section filled; answers checked equal first.
  freshness  event produced → readable online, p50/p99, at --rate events/s for --seconds from a Redis Stream
          through `roost features stream` (bench/_streaming_freshness.py), SQLite and Redis online stores; no peer.
Feast runs in its own venv (.bench/feast, 'feast[duckdb,redis]==0.67.0', made by _common.feast_python on first
use). Each section prints its figures and a ratio line; `ratio: X` last is the push section's worst ratio (the
worst of both modes on both stores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

import roost

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, feast_python, machine
from _streaming_freshness import freshness_section

FIELDS = {"clicks": "int64", "ctr": "float64", "last_item": "int64", "label": "string"}
T0 = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=2)  # recent: roost applies the 30-day ttl at read time

DEFS = """from datetime import timedelta
from roost.features import Entity, Source, FeatureView
user = Entity("user", {"user_id": "int64"})
clicks_src = Source("clicks_src", path="data/clicks.parquet", event_time="event_time")
clicks = FeatureView("clicks", user, clicks_src, ttl=timedelta(days=30),
                     fields={"clicks": "int64", "ctr": "float64", "last_item": "int64", "label": "string"})
"""

FEAST_WORKER = r'''
import json, sys, time
from datetime import timedelta
from pathlib import Path
import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource, ValueType
from feast.data_source import PushMode
from feast.types import Float64, Int64, String

a = json.loads(Path(sys.argv[1]).read_text())
repo = Path(a["dir"])
online = (f"type: redis\n  connection_string: \"{a['redis']}\"" if a.get("redis")
          else f"type: sqlite\n  path: {repo}/online.db")
(repo / "feature_store.yaml").write_text(f"""project: bench
registry: {repo}/registry.db
provider: local
offline_store:
  type: duckdb
online_store:
  {online}
entity_key_serialization_version: 3
""")
user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
batch = FileSource(name="clicks_batch", path=a["batch"], timestamp_field="event_time")
push_src = PushSource(name="clicks_push", batch_source=batch)
types = {"float64": Float64, "int64": Int64, "string": String}
fv = FeatureView(name="clicks", entities=[user], ttl=timedelta(days=30), source=push_src, online=True,
                 schema=[Field(name=f, dtype=types[t]) for f, t in a["fields"].items()])
store = FeatureStore(repo_path=str(repo))
store.apply([user, fv])
frames = [pd.read_parquet(p) for p in a["frames"]]
out = {}
for mode in a["modes"]:
    to = getattr(PushMode, mode)
    store.push("clicks_push", frames[0], to=to)  # warm up
    t = time.perf_counter()
    rows = 0
    for f in frames[1:]:
        store.push("clicks_push", f, to=to)
        rows += len(f)
    out[mode] = rows / (time.perf_counter() - t)
print("FEAST_RESULT " + json.dumps(out))
'''


def _frames(n_batches: int, batch: int, entities: int, seed: int = 0) -> list[pd.DataFrame]:
    """Push batches: random users, increasing event times, the view's four fields."""
    rng = np.random.default_rng(seed)
    out = []
    for b in range(n_batches):
        out.append(
            pd.DataFrame(
                {
                    "user_id": rng.integers(0, entities, batch).astype("int64"),
                    "event_time": T0 + pd.to_timedelta(b * batch + np.arange(batch), unit="s"),
                    "clicks": rng.integers(0, 1000, batch).astype("int64"),
                    "ctr": rng.random(batch),
                    "last_item": rng.integers(0, 10**6, batch).astype("int64"),
                    "label": [f"item{int(x)}" for x in rng.integers(0, 1000, batch)],
                }
            )
        )
    return out


def _roost_workspace(work: Path, frames: list[pd.DataFrame]) -> Path:
    """A fresh workspace with the 'clicks' view (its batch source: the first frame)."""
    from roost import workspace
    from roost.features import apply

    root = work / "roost"
    if root.exists():
        shutil.rmtree(root)
    roost.init(root)
    (root / "features").mkdir()
    (root / "data").mkdir()
    frames[0].to_parquet(root / "data" / "clicks.parquet")
    (root / "features" / "defs.py").write_text(DEFS)
    workspace.use(workspace.load(root))
    apply()
    return root


def roost_push(work: Path, frames: list[pd.DataFrame], url: str | None, to: str = "online_and_offline") -> float:
    """Rows/s of roost's Pusher over the frames, written where `to` says (the first one warms up)."""
    from roost.features import Pusher
    from roost.features.online_stores import reset_online_stores

    reset_online_stores()
    _roost_workspace(work, frames)
    p = Pusher("clicks", online_store=url)
    p.push(frames[0], to=to)
    t = time.perf_counter()
    rows = sum(p.push(f, to=to) for f in frames[1:])
    return rows / (time.perf_counter() - t)


def roost_push_concurrent(work: Path, frames: list[pd.DataFrame], url: str | None, pushers: int) -> float:
    """Rows/s of `pushers` threads pushing the frames round-robin through one Pusher (group commit; no peer
    figure: Feast's push has no concurrent path to compare with, so this line has no ratio)."""
    import threading

    from roost.features import Pusher
    from roost.features.online_stores import reset_online_stores

    reset_online_stores()
    _roost_workspace(work, frames)
    p = Pusher("clicks", online_store=url)
    p.push(frames[0])
    parts = [frames[1 + i :: pushers] for i in range(pushers)]
    threads = [threading.Thread(target=lambda fs=fs: [p.push(f) for f in fs]) for fs in parts]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return sum(len(f) for f in frames[1:]) / (time.perf_counter() - t)


def feast_push(feast_py: Path, work: Path, frames: list[pd.DataFrame], redis: str | None, modes: list[str]) -> dict:
    """Rows/s of Feast's FeatureStore.push per push mode, in Feast's venv on the same frames."""
    d = work / ("feast-redis" if redis else "feast-sqlite")
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    paths = []
    for i, f in enumerate(frames):
        p = d / f"frame{i}.parquet"
        f.to_parquet(p)
        paths.append(str(p))
    (d / "worker.py").write_text(FEAST_WORKER)
    args = {"dir": str(d), "batch": paths[0], "frames": paths, "fields": FIELDS, "redis": redis, "modes": modes}
    (d / "args.json").write_text(json.dumps(args))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROOST_", "PYTHONPATH"))}
    env["FEAST_USAGE"] = "False"
    p = subprocess.run(
        [str(feast_py), str(d / "worker.py"), str(d / "args.json")], capture_output=True, text=True, env=env, cwd=d
    )
    for line in p.stdout.splitlines():
        if line.startswith("FEAST_RESULT "):
            return dict(json.loads(line[len("FEAST_RESULT ") :]))
    raise RuntimeError(f"Feast worker failed (exit {p.returncode}):\n{p.stderr[-3000:]}")


class Redis:
    """A redis-server on a free loopback port for the run (no persistence), stopped on exit."""

    def __enter__(self) -> Redis:
        from serving import free_port

        self.dir = tempfile.mkdtemp(prefix="bench-redis-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(200):
            if (
                subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout.strip()
                == b"PONG"
            ):
                return self
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def flush(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "flushall"], capture_output=True, check=True)

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


ROOST_MODE = {"ONLINE": "online", "ONLINE_AND_OFFLINE": "online_and_offline", "OFFLINE": "offline"}


def push_section(a: argparse.Namespace, work: Path, feast_py: Path | None) -> list[float]:
    """Push throughput on SQLite and Redis per push mode; returns the ratios roost/Feast, mode for mode."""
    frames = _frames(a.pushes + 1, a.batch, a.entities)
    ratios = []
    print(f"push: {a.pushes} pushes of {a.batch} rows over {a.entities:,} entities (+1 warm-up push)")
    with Redis() as redis:
        for kind in ("sqlite", "redis"):
            url = f"redis://127.0.0.1:{redis.port}/0" if kind == "redis" else None
            ours = {}
            for mode in a.feast_modes:
                redis.flush()  # (harmless for the SQLite runs)
                ours[mode] = roost_push(work, frames, url, ROOST_MODE[mode])
                print(f"  {kind:<6} roost Pusher.push(to={ROOST_MODE[mode]!r}): {ours[mode]:>10,.0f} rows/s")
            if a.pushers > 1:
                redis.flush()
                c = roost_push_concurrent(work, frames, url, a.pushers)
                print(f"  {kind:<6} roost, {a.pushers} threads (group commit, both): {c:>10,.0f} rows/s  (no peer)")
            if feast_py is None:
                continue
            redis.flush()
            f = feast_push(feast_py, work, frames, f"127.0.0.1:{redis.port}" if url else None, a.feast_modes)
            for mode, v in f.items():
                print(
                    f"  {kind:<6} feast FeatureStore.push(to={mode}): {v:>10,.0f} rows/s   roost x{ours[mode] / v:,.1f}"
                )
                ratios.append(ours[mode] / v)
    return ratios


def _wait_http(url: str, timeout: float = 180) -> None:
    """Wait until `url` answers (any status below 500)."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer")
        time.sleep(0.2)


def _post(url: str, body: dict) -> dict:
    import urllib.request

    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return dict(json.loads(r.read()))


def server_section(a: argparse.Namespace, work: Path, feast_py: Path | None) -> list[float]:
    """get-online-features at c=16: roost features serve vs feast serve over the same pushed SQLite data."""
    from serving import LUA, free_port, wrk

    if feast_py is None:
        print("server: skipped (needs Feast)")
        return []
    frames = _frames(a.pushes + 1, a.batch, a.entities)
    roost_push(work, frames, None)  # fills the roost workspace's SQLite store
    feast_push(feast_py, work, frames, None, ["ONLINE"])
    ids = sorted({int(x) for f in frames for x in f.user_id})[: a.entities]
    refs = [f"clicks:{f}" for f in FIELDS]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        rp, fp = free_port(), free_port()
        env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "ROOST_WORKSPACE": str(work / "roost")}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "roost", "features", "serve", "--port", str(rp)],
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
            )
        )
        fenv = {k: v for k, v in os.environ.items() if not k.startswith(("ROOST_", "PYTHONPATH"))}
        fenv["FEAST_USAGE"] = "False"
        feast_bin = Path(feast_py).parent / "feast"
        procs.append(
            subprocess.Popen(
                [str(feast_bin), "-c", str(work / "feast-sqlite"), "serve", "-h", "127.0.0.1", "-p", str(fp)],
                env=fenv,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        _wait_http(f"http://127.0.0.1:{rp}/health")
        _wait_http(f"http://127.0.0.1:{fp}/health")
        check = {"features": refs, "entities": {"user_id": [*ids[:200], -1]}}  # (-1: an id with no row)
        r = _post(f"http://127.0.0.1:{rp}/get-online-features", check)
        f = _post(f"http://127.0.0.1:{fp}/get-online-features", check)
        rv = dict(zip(r["metadata"]["feature_names"], (x["values"] for x in r["results"])))
        fv = dict(zip(f["metadata"]["feature_names"], (x["values"] for x in f["results"])))
        assert rv == fv, (rv, fv)  # (Feast orders the names its own way)
        print(f"server: answers equal for 201 entities; wrk -c{a.conns} for {a.duration}s each, {a.rows} row(s)")
        body = {"features": refs, "entities": {"user_id": ids[: a.rows]}}
        bf = work / "body.json"
        bf.write_text(json.dumps(body))
        lua = work / "post.lua"
        lua.write_text(LUA)
        res = {}
        for name, port in (("roost", rp), ("feast", fp)):
            wrk(f"http://127.0.0.1:{port}/get-online-features", bf, lua, a.conns, 1)  # warm up
            res[name] = wrk(f"http://127.0.0.1:{port}/get-online-features", bf, lua, a.conns, a.duration)
            m = res[name]
            lat = f"p50 {m['p50']:.2f} ms  p99 {m['p99']:.2f} ms"
            print(f"  {name:<6} {m['rps']:>9,.0f} req/s  {lat}  errors {m['errors']:.0f}")
        ratio = res["roost"]["rps"] / res["feast"]["rps"]
        print(f"  server ratio (req/s roost/feast): {ratio:.1f}")
        return [ratio]
    finally:
        for p in procs:
            with_pg(p, signal.SIGTERM)


def with_pg(p: subprocess.Popen[bytes], sig: int) -> None:
    """Signal a server's process group (it was started in its own session) and wait for it."""
    try:
        os.killpg(p.pid, sig)
        p.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(p.pid, signal.SIGKILL)


SECTIONS: dict[str, Callable[[argparse.Namespace, Path, Path | None], list[float]]] = {
    "push": push_section,
    "server": server_section,
    "freshness": freshness_section,
}


def main() -> None:
    """Run the chosen sections; `ratio: X` last (the push section's worst ratio, else the first section's)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=list(SECTIONS), help="run only this section (repeatable)")
    ap.add_argument("--pushes", type=int, default=200, help="timed pushes per side")
    ap.add_argument("--batch", type=int, default=100, help="rows per push")
    ap.add_argument("--entities", type=int, default=10_000)
    ap.add_argument("--pushers", type=int, default=4, help="push: threads of the extra roost-only concurrent line")
    ap.add_argument("--feast-modes", nargs="+", default=["ONLINE", "ONLINE_AND_OFFLINE"], choices=list(ROOST_MODE))
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--duration", type=int, default=10, help="seconds per measured wrk run")
    ap.add_argument("--rows", type=int, default=1, help="entity rows per get-online-features request")
    ap.add_argument("--skip-feast", action="store_true")
    ap.add_argument("--rate", type=int, default=10_000, help="freshness: events/s produced")
    ap.add_argument("--seconds", type=float, default=10.0, help="freshness: seconds of production")
    ap.add_argument("--stream-batch", type=int, default=1000, help="freshness: the consumer's --batch")
    a = ap.parse_args()
    print(machine())
    needs_feast = set(a.only or SECTIONS) & {"push", "server"}
    feast_py = None if a.skip_feast or not needs_feast else feast_python()
    ratios: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-streaming-") as tmp:
        work = Path(tmp)
        for name in a.only or list(SECTIONS):
            ratios[name] = SECTIONS[name](a, work, feast_py)
    first = ratios.get("push") or next((r for r in ratios.values() if r), [])
    print(f"ratio: {min(first):.1f}" if first else "ratio: n/a")


if __name__ == "__main__":
    main()
