"""`bench/scale.py --sections offline`: how the offline feature store's cost grows, local engine vs Spark local[2].

Per size (entity rows x feature rows, `--sizes 1Mx10M,3Mx30M,10Mx100M`; ids = entity rows / 10) the data of
bench/features.py is generated (5 fields, created times, ties, TTL 2 d) and each job runs in a fresh process:

  pit  training set: read the entity Parquet, point-in-time join, write the training set as Parquet
  mat  materialisation of every id's latest row (TTL 2 d) into the workspace's SQLite online store

engines: `local` (roost's default DuckDB + NumPy engine), `spark` (roost's Spark engine, ROOST_OFFLINE_ENGINE=spark,
on a local[2] session; run only when roost.features.spark_engine exists), `pyspark` (a plain PySpark window-function
PIT join/latest-row script on the same local[2] session settings: the reference a Spark user would write; its
`mat` writes Parquet, since plain Spark has no roost online store). Each job reports wall, CPU (the process and its
children, the JVM included), peak RSS of that process tree (sampled every 0.1 s), spill (Spark's stage metrics;
DuckDB's temp folder for local), and rows/matched/f0 sum so the engines can be compared.

Batch scoring (`score`): rows/s and rows/s per core of `roost.predict` local (every core) and spark (local[2]) vs
a plain pandas + onnxruntime loop on one core, same model package and Parquet input (`--score-rows`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import roost

BENCH = Path(__file__).resolve().parent
FIELDS = {"f0": "float64", "f1": "float64", "f2": "int64", "f3": "int64", "f4": "float64"}
END = "2024-01-31T00:00:00+00:00"
TTL_DAYS = 2
SCORE_FEATURES = [f"x{i}" for i in range(8)]


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """'1Mx10M,3Mx30M' -> [(1_000_000, 10_000_000), (3_000_000, 30_000_000)] (k/M/G suffixes)."""

    def num(s: str) -> int:
        mult = {"k": 10**3, "m": 10**6, "g": 10**9}.get(s[-1].lower(), 1)
        return int(float(s[:-1] if mult > 1 else s) * mult)

    return [(num(a), num(b)) for a, b in (p.lower().split("x") for p in text.split(",") if p.strip())]


def spark_engine_available() -> bool:
    """Whether roost has a Spark offline engine in this tree."""
    import importlib.util

    return importlib.util.find_spec("roost.features.spark_engine") is not None


# ------------------------------------------------------------------------------------------- measuring a job
class Tree:
    """Samples the RSS of this process and its descendants (peak of the sum) and their CPU seconds."""

    def __init__(self, spill_dirs: list[Path]) -> None:
        import psutil

        self.me = psutil.Process()
        self.spill_dirs = spill_dirs
        self.peak_rss = 0
        self.peak_spill = 0
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _procs(self) -> list[Any]:
        return [self.me, *self.me.children(recursive=True)]

    def sample(self) -> None:
        """One sample of RSS, CPU and spill-folder size."""
        import psutil

        rss = 0
        for p in self._procs():
            try:
                with p.oneshot():
                    rss += p.memory_info().rss
                    t = p.cpu_times()
                    self.cpu[p.pid] = t.user + t.system
            except psutil.Error:
                continue
        self.peak_rss = max(self.peak_rss, rss)
        spill = 0
        for d in self.spill_dirs:
            for dirpath, _, files in os.walk(d):
                for f in files:
                    try:
                        spill += os.path.getsize(os.path.join(dirpath, f))
                    except OSError:
                        pass
        self.peak_spill = max(self.peak_spill, spill)

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            self.sample()

    def __enter__(self) -> Tree:
        self.sample()
        self.cpu0 = dict(self.cpu)
        self.peak_rss = 0
        self.t0 = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self._stop.set()
        self._thread.join()
        self.sample()
        self.cpu_s = sum(v - self.cpu0.get(pid, 0.0) for pid, v in self.cpu.items())


# ------------------------------------------------------------------------------------------------ the worker
def _workspace(work: Path, name: str, feats: Path) -> Path:
    from roost import workspace
    from roost.features import apply

    ws = roost.init(work / name)
    workspace.use(ws)
    (ws.root / "features").mkdir(exist_ok=True)
    (ws.root / "features" / "bench.py").write_text(
        textwrap.dedent(f"""
        from datetime import timedelta
        from roost.features import Entity, FeatureView, Source
        user = Entity("user", {{"user_id": "int64"}})
        src = Source("bench_src", path={str(feats)!r}, event_time="event_timestamp", created_time="created")
        stats = FeatureView("stats", user, src, fields={FIELDS!r}, ttl=timedelta(days={TTL_DAYS}))
    """)
    )
    apply()
    return ws.root


def _spark(work: Path, memory: str) -> Any:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master("local[2]")
        .appName("roost-scale-offline")
        .config("spark.driver.memory", memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.local.dir", str(work / "spark-local"))
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


def _spark_spill(spark: Any) -> int:
    """Bytes spilled (memory + disk) over the session's stages so far, from Spark's status REST API."""
    import urllib.request

    sc = spark.sparkContext
    url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/stages"
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            stages = json.load(r)
    except OSError:
        return -1
    return int(sum(s.get("diskBytesSpilled", 0) + s.get("memoryBytesSpilled", 0) for s in stages))


def _plain_pit(spark: Any, feats: Path, ents: Path, out: Path) -> None:
    """The PIT join as a Spark user writes it: union entity and feature rows, last feature row per key over a
    window ordered by (time, feature before entity, created time), then the TTL check."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    f = spark.read.parquet(str(feats))
    e = spark.read.parquet(str(ents)).withColumn("__rid", F.monotonically_increasing_id())
    feat_struct = F.struct(F.col("event_timestamp").alias("et"), *[F.col(c) for c in FIELDS])
    fr = f.select(
        "user_id",
        F.col("event_timestamp").alias("__t"),
        F.lit(0).alias("__side"),
        F.col("created").alias("__ct"),
        F.lit(None).cast("long").alias("__rid"),
        feat_struct.alias("__f"),
    )
    er = e.select(
        "user_id",
        F.col("event_timestamp").alias("__t"),
        F.lit(1).alias("__side"),
        F.lit(None).cast("timestamp").alias("__ct"),
        "__rid",
        F.lit(None).cast(feat_struct_type(f)).alias("__f"),
    )
    w = Window.partitionBy("user_id").orderBy("__t", "__side", "__ct").rowsBetween(Window.unboundedPreceding, 0)
    j = fr.unionByName(er).withColumn("__m", F.last("__f", ignorenulls=True).over(w)).where("__side = 1")
    fresh = F.col("__m.et") >= F.col("__t") - F.expr(f"INTERVAL {TTL_DAYS} DAYS")
    j.select(
        "__rid",
        "user_id",
        F.col("__t").alias("event_timestamp"),
        *[F.when(fresh, F.col(f"__m.{c}")).alias(c) for c in FIELDS],
    ).write.mode("overwrite").parquet(str(out))


def feat_struct_type(f: Any) -> Any:
    """The Spark type of struct(event time, fields) of the feature frame."""
    from pyspark.sql import functions as F

    return f.select(F.struct(F.col("event_timestamp").alias("et"), *[F.col(c) for c in FIELDS])).schema[0].dataType


def _plain_mat(spark: Any, feats: Path, out: Path) -> None:
    """Latest row per id with event time in [end - TTL, end] (ties: latest created), written as Parquet."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    f = spark.read.parquet(str(feats)).where(
        f"event_timestamp >= TIMESTAMP '{END}' - INTERVAL {TTL_DAYS} DAYS AND event_timestamp <= TIMESTAMP '{END}'"
    )
    w = Window.partitionBy("user_id").orderBy(F.col("event_timestamp").desc(), F.col("created").desc())
    f.withColumn("__n", F.row_number().over(w)).where("__n = 1").drop("__n").write.mode("overwrite").parquet(str(out))


def worker(a: dict[str, Any]) -> dict[str, Any]:
    """Run one (engine, job) in this fresh process; return its figures."""
    import pyarrow.parquet as pq

    work, feats, ents = Path(a["work"]), Path(a["features"]), Path(a["entities"])
    engine, job = a["engine"], a["job"]
    run_dir = Path(tempfile.mkdtemp(prefix=f"{engine}-{job}-", dir=work))
    os.chdir(run_dir)  # DuckDB spills an in-memory database under ./.tmp
    out = run_dir / "out"
    spark = None
    if engine in ("spark", "pyspark"):
        spark = _spark(run_dir, a["spark_memory"])
        if engine == "spark":
            os.environ["ROOST_OFFLINE_ENGINE"] = "spark"
    if engine != "pyspark":
        _workspace(run_dir, "ws", feats)
    res: dict[str, Any] = {}
    spill0 = _spark_spill(spark) if spark is not None else 0
    refs = [f"stats:{f}" for f in FIELDS]
    with Tree([run_dir / ".tmp", run_dir / "spark-local"]) as tree:
        if job == "pit" and engine == "local":
            from roost.features import training_set

            tbl = training_set(pq.read_table(ents), refs, event_time="event_timestamp", output="arrow")
            out.mkdir()
            pq.write_table(tbl, out / "part-0.parquet")
            del tbl
        elif job == "pit" and engine == "spark":
            from roost.features import training_set

            sdf = training_set(spark.read.parquet(str(ents)), refs, event_time="event_timestamp")  # type: ignore[union-attr]
            sdf.write.mode("overwrite").parquet(str(out))
        elif job == "pit":
            _plain_pit(spark, feats, ents, out)
        elif engine == "pyspark":
            _plain_mat(spark, feats, out)
        else:
            from roost.features import materialize

            res["mat_entities"] = materialize(end=END)[0].rows
    res.update(wall_s=tree.wall, cpu_s=tree.cpu_s, peak_rss=tree.peak_rss, spill=tree.peak_spill, out=str(out))
    if spark is not None:
        res["spill"] = max(0, _spark_spill(spark) - spill0) + tree.peak_spill
    if job == "pit" or engine == "pyspark":  # checks, untimed
        import duckdb

        con = duckdb.connect()
        if job == "pit":
            row = con.sql(f"SELECT count(*), count(f0), sum(f0) FROM read_parquet('{out}/*.parquet')").fetchall()[0]
            res.update(rows=row[0], matched=row[1], f0_sum=float(row[2] or 0))
        else:
            res["mat_entities"] = con.sql(f"SELECT count(*) FROM read_parquet('{out}/*.parquet')").fetchall()[0][0]
    if spark is not None:
        spark.stop()
    return res


def run_job(py: str, args: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One job in a fresh process; {'error': ...} when it fails or runs past `timeout`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    try:
        p = subprocess.run(
            [py, str(Path(__file__).resolve()), "worker", json.dumps(args)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT ") :]))
    tail = (p.stderr or "").strip().splitlines()[-3:]
    return {"error": f"exit {p.returncode}: " + " | ".join(tail)[-300:]}


# ------------------------------------------------------------------------------------------------ the section
def offline(args: Any) -> float:
    """PIT join and materialisation per size and engine; returns pyspark/local wall of the largest PIT join."""
    sys.path.insert(0, str(BENCH))
    from features import generate

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if "spark" in engines and not spark_engine_available():
        print("  (roost has no Spark offline engine in this tree: measuring plain PySpark only)")
        engines.remove("spark")
    base = Path(args.work_dir or tempfile.mkdtemp(prefix="roost-scale-offline-"))
    print(
        f"offline features: TTL {TTL_DAYS} d, 5 fields; engines {engines}; Spark local[2], driver {args.spark_memory}"
    )
    print(
        f"{'size':>12} {'job':>4} {'engine':>8} {'wall s':>8} {'cpu s':>8} {'peak RSS GB':>12} {'spill MB':>9}  check"
    )
    ratio = 1.0
    for n_ent, n_feat in parse_sizes(args.sizes):
        work = base / f"{n_ent}x{n_feat}"
        work.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        feats, ents = work / "features.parquet", work / "entities.parquet"
        if not (feats.exists() and ents.exists()):
            generate(work, n_ent, n_feat, max(100_000, n_ent // 10), args.seed)
        label = f"{n_ent / 1e6:g}Mx{n_feat / 1e6:g}M"
        print(
            f"  {label}: data ready in {time.perf_counter() - t:.0f} s, {feats.stat().st_size / 1e9:.1f} GB", flush=True
        )
        walls: dict[tuple[str, str], float] = {}
        for job in ("pit", "mat"):
            for engine in engines:
                a = {
                    "work": str(work),
                    "features": str(feats),
                    "entities": str(ents),
                    "engine": engine,
                    "job": job,
                    "spark_memory": args.spark_memory,
                }
                r = run_job(sys.executable, a, args.job_timeout)
                if "error" in r:
                    print(f"{label:>12} {job:>4} {engine:>8}  FAILED: {r['error']}", flush=True)
                    continue
                walls[(job, engine)] = r["wall_s"]
                check = (
                    f"{r['rows']:,} rows, {r['matched']:,} matched, f0 sum {r['f0_sum']:.2f}"
                    if job == "pit"
                    else f"{r['mat_entities']:,} entities"
                )
                print(
                    f"{label:>12} {job:>4} {engine:>8} {r['wall_s']:>8.1f} {r['cpu_s']:>8.1f} "
                    f"{r['peak_rss'] / 1e9:>12.2f} {r['spill'] / 1e6:>9.0f}  {check}",
                    flush=True,
                )
        if ("pit", "local") in walls and ("pit", "pyspark") in walls:
            ratio = walls[("pit", "pyspark")] / walls[("pit", "local")]
    return ratio


# ---------------------------------------------------------------------------------------------- batch scoring
def score_worker(a: dict[str, Any]) -> dict[str, Any]:
    """Score the input once with one engine (roost local/spark, or the plain loop); figures + output path."""
    out = Path(a["out"])
    spark = _spark(out.parent, a["spark_memory"]) if a["engine"] == "spark" else None
    with Tree([]) as tree:
        if a["engine"] == "plain":
            _plain_score(a["package"], a["input"], out)
        else:
            import roost

            roost.predict(a["package"], a["input"], out, engine=a["engine"], columns=["id"], record=False, spark=spark)
    if spark is not None:
        spark.stop()
    return {"wall_s": tree.wall, "cpu_s": tree.cpu_s, "peak_rss": tree.peak_rss}


def _plain_score(package: str, src: str, out: Path) -> None:
    """pandas + onnxruntime, one thread: read row groups, run the graph, write Parquet."""
    import numpy as np
    import onnxruntime as ort
    import pyarrow as pa
    import pyarrow.parquet as pq

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(
        str(Path(package) / "model.onnx"), sess_options=opts, providers=["CPUExecutionProvider"]
    )
    names = [i.name for i in sess.get_inputs()]
    out.mkdir(parents=True)
    f = pq.ParquetFile(src)
    writer = None
    for batch in f.iter_batches(batch_size=65536):
        df = batch.to_pandas()
        feed = {n: df[n].to_numpy(np.float32 if "float" in t.type else None) for n, t in zip(names, sess.get_inputs())}
        prob = sess.run(["probability"], feed)[0]
        tbl = pa.table({"id": df["id"].to_numpy(), "probability": np.asarray(prob, np.float64).reshape(-1)})
        if writer is None:
            writer = pq.ParquetWriter(out / "part-00000.parquet", tbl.schema)
        writer.write_table(tbl)
    if writer is not None:
        writer.close()


def score(args: Any) -> float:
    """rows/s and rows/s per core: roost.predict local and spark vs plain pandas + onnxruntime; returns local/plain
    rows/s per core."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    import roost
    from roost import workspace
    from roost.scoring.api import resolve_package

    base = Path(args.work_dir or tempfile.mkdtemp(prefix="roost-scale-score-"))
    base.mkdir(parents=True, exist_ok=True)
    ws = roost.init(base / "ws")
    workspace.use(ws)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(args.seed)
    n = args.score_rows
    x = rng.normal(size=(n, len(SCORE_FEATURES)))
    import pandas as pd

    train = pd.DataFrame(x[:5000], columns=SCORE_FEATURES)
    y = (train["x0"] + 0.5 * train["x1"] - train["x2"] > 0).astype(int)
    m = Pipeline([("s", StandardScaler()), ("lr", LogisticRegression())]).fit(train, y)
    roost.log_model(m, name="scale_score", sample_input=train.head(100))
    package = str(resolve_package("scale_score/1")[0])
    src = base / "input.parquet"
    cols = {"id": pa.array(np.arange(n, dtype=np.int64))} | {c: x[:, i] for i, c in enumerate(SCORE_FEATURES)}
    pq.write_table(pa.table(cols), src, row_group_size=131072)
    cores = os.cpu_count() or 1
    print(f"batch scoring: {n:,} rows x {len(SCORE_FEATURES)} float64 features, logistic regression package")
    print(
        f"{'engine':>28} {'wall s':>7} {'cpu s':>7} {'rows/s':>11} {'cores':>5} {'rows/s/core':>12} {'rows/cpu-s':>11}"
    )
    per_core: dict[str, float] = {}
    outs: dict[str, Path] = {}
    for engine, label, used in (
        ("plain", "pandas + onnxruntime loop", 1),
        ("local", "roost.predict local", cores),
        ("spark", "roost.predict spark local[2]", 2),
    ):
        outs[engine] = base / f"out-{engine}"
        a = {"engine": engine, "package": package, "input": str(src), "out": str(outs[engine])}
        a["spark_memory"] = args.spark_memory
        r = run_job(sys.executable, {"score": a}, args.job_timeout)
        if "error" in r:
            print(f"{label:>28}  FAILED: {r['error']}", flush=True)
            continue
        rps = n / r["wall_s"]
        per_core[engine] = rps / used
        print(
            f"{label:>28} {r['wall_s']:>7.1f} {r['cpu_s']:>7.1f} {rps:>11,.0f} {used:>5} {rps / used:>12,.0f} "
            f"{n / r['cpu_s']:>11,.0f}",
            flush=True,
        )
    import duckdb

    con = duckdb.connect()
    ref = outs["plain"]
    for engine in ("local", "spark"):
        if engine in per_core and "plain" in per_core:
            d = con.sql(
                f"SELECT count(*), max(abs(a.probability - b.probability)) FROM read_parquet('{ref}/*.parquet') a "
                f"JOIN read_parquet('{outs[engine]}/part-*.parquet') b USING (id)"
            ).fetchall()[0]
            print(f"  {engine}: {d[0]:,} rows joined to the plain loop's, max |diff| {d[1]:.2e}")
    workspace.use(None)
    return per_core.get("local", 0.0) / per_core.get("plain", 1.0)


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    job = json.loads(sys.argv[2])
    result = score_worker(job["score"]) if "score" in job else worker(job)
    print("RESULT " + json.dumps(result), flush=True)
