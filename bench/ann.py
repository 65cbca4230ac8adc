"""ANN benchmark: roost vs raw hnswlib vs raw FAISS HNSW, 200k × 64 random vectors, cosine, same data.

For each contender, in its own process (so memory is its own): build with M=16, ef_construction=200 (all cores),
then find the smallest search effort (ef) whose recall@10 against numpy brute force is ≥ 0.95 (doubling, then
bisection to 5%), and measure queries per CPU-second there with one search thread: a batch call of all queries,
and one call per query. roost runs on each library (hnswlib, faiss) so its overhead is measured against the same
engine. Prints build time, memory (RSS growth over the loaded data), the effort, recall and throughput; the last
line is `ratio: X` = roost (default library) / the faster raw library, batch queries per CPU-second. Filtered
searches (an attribute `u`, uniform in [0, 1), filtered by u < s for selectivities s = 50%, 25%, 5%, 1%, 0.1%;
same ef) report recall@10 against brute force over the matching items, and queries per CPU-second at 25%: raw
hnswlib filters through a Python callback per visited node, raw FAISS through a C++ bitmap, roost plans per
filter (scaled over-fetch, or exact search when that is cheaper).

    .venv/bin/python bench/ann.py [--n 200000] [--dim 64] [--queries 1000] [--target 0.95] [--exact-limit 20000]

`--exact-limit 0` makes roost plan every filtered search on the index (no exact search by size), which is what a
reduced `--n` needs to measure the filtered plan rather than the exact search.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, measure, peak_rss_mb

M, EF_CONSTRUCTION, K = 16, 200, 10
SELECTIVITIES = (0.5, 0.25, 0.05, 0.01, 0.001)


def contender(name: str, dim: int, u: np.ndarray, exact_limit: int = 20_000):
    """(build(x), search(q, ef) -> labels [nq, K], filtered(q, ef, s) -> labels of items with u < s)."""
    if name == "hnswlib":
        import hnswlib

        idx = hnswlib.Index(space="cosine", dim=dim)

        def build(x: np.ndarray) -> None:
            idx.init_index(max_elements=len(x), M=M, ef_construction=EF_CONSTRUCTION, random_seed=100)
            idx.add_items(x, np.arange(len(x)), num_threads=os.cpu_count() or 1)

        def search(q: np.ndarray, ef: int) -> np.ndarray:
            idx.set_ef(ef)
            return idx.knn_query(q, k=K, num_threads=1)[0]

        def filtered(q: np.ndarray, ef: int, s: float) -> np.ndarray:
            idx.set_ef(ef)
            return idx.knn_query(q, k=K, num_threads=1, filter=(u < s).tolist().__getitem__)[0]

        return build, search, filtered
    if name == "faiss":
        import faiss

        idx = faiss.IndexHNSWFlat(dim, M, faiss.METRIC_INNER_PRODUCT)
        idx.hnsw.efConstruction = EF_CONSTRUCTION

        def build(x: np.ndarray) -> None:
            faiss.omp_set_num_threads(os.cpu_count() or 1)
            x = x / np.linalg.norm(x, axis=1, keepdims=True)
            idx.add(x)
            faiss.omp_set_num_threads(1)

        def search(q: np.ndarray, ef: int) -> np.ndarray:
            idx.hnsw.efSearch = ef
            return idx.search(q / np.linalg.norm(q, axis=1, keepdims=True), K)[1]

        def filtered(q: np.ndarray, ef: int, s: float) -> np.ndarray:
            bits = np.packbits(u < s, bitorder="little")  # referenced here until the search returns
            params = faiss.SearchParametersHNSW()
            params.sel = faiss.IDSelectorBitmap(len(u), faiss.swig_ptr(bits))
            params.efSearch = ef
            return idx.search(q / np.linalg.norm(q, axis=1, keepdims=True), K, params=params)[1]

        return build, search, filtered
    from roost.ann.index import Index

    library = name.split(":", 1)[1] if ":" in name else None
    index = Index(
        dim, "cosine", "hnsw", library, threads=1, exact_limit=exact_limit, M=M, ef_construction=EF_CONSTRUCTION
    )

    def rbuild(x: np.ndarray) -> None:
        index.threads = os.cpu_count() or 1
        index.upsert(np.arange(len(x)), x, {"u": u})
        index.threads = 1

    def rsearch(q: np.ndarray, ef: int) -> list:
        return index.search(q, K, ef=ef).ids

    def rfiltered(q: np.ndarray, ef: int, s: float) -> list:
        return index.search(q, K, filter={"u": {"lt": s}}, ef=ef).ids

    return rbuild, rsearch, rfiltered


def recall(found: list | np.ndarray, truth: np.ndarray) -> float:
    """Mean recall@K."""
    return float(np.mean([len(set(np.asarray(f).tolist()) & set(t.tolist())) / K for f, t in zip(found, truth)]))


def cpu_qps(fn, repeats: int = 5) -> float:
    """Queries per CPU-second of fn() -> number of queries (best of repeats: other load only ever slows a run)."""
    rates = []
    for _ in range(repeats):
        t = time.process_time()
        n = fn()
        rates.append(n / max(time.process_time() - t, 1e-9))
    return float(max(rates))


def worker(name: str, tmp: Path, target: float, exact_limit: int) -> dict:
    """Build and measure one contender; returns its figures."""
    x = np.load(tmp / "base.npy")
    q = np.load(tmp / "queries.npy")
    truth = np.load(tmp / "truth.npy")
    u = np.load(tmp / "u.npy")
    build, search, filtered = contender(name, x.shape[1], u, exact_limit)
    with measure() as m:
        build(x)
    build_wall, build_cpu, mem = m.wall, m.cpu, m.rss_end - m.rss_start
    tried: dict[int, float] = {}

    def rec(ef: int) -> float:
        if ef not in tried:
            tried[ef] = recall(search(q, ef), truth)
        return tried[ef]

    lo, hi = K, 32
    while rec(hi) < target and hi < 8192:
        lo, hi = hi, hi * 2
    while hi - lo > max(2, hi // 20):
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if rec(mid) < target else (lo, mid)
    ef = hi
    batch = cpu_qps(lambda: len(search(q, ef)) and len(q))
    sub = q[:300]
    one = cpu_qps(lambda: sum(1 for i in range(len(sub)) if search(sub[i : i + 1], ef) is not None))
    fsub = q[:200]
    frec = {}
    for s in SELECTIVITIES:
        try:
            frec[str(s)] = recall(filtered(fsub, ef, s), np.load(tmp / f"ftruth-{s}.npy"))
        except RuntimeError:  # raw hnswlib: fewer than K allowed items reached
            frec[str(s)] = float("nan")
    fqps = cpu_qps(lambda: len(filtered(fsub, ef, 0.25)) and len(fsub), repeats=3)
    return {
        "name": name,
        "build_wall_s": build_wall,
        "build_cpu_s": build_cpu,
        "index_mb": mem,
        "peak_rss_mb": peak_rss_mb(),
        "ef": ef,
        "recall": rec(ef),
        "qps_batch": batch,
        "qps_single": one,
        "filtered_recall": frec,
        "filtered_qps": fqps,
        "tried": tried,
    }


def main() -> None:
    """Generate data and truth, run each contender in its own process, print figures and the ratio."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--exact-limit", type=int, default=20_000, help="roost's Index(exact_limit=...)")
    ap.add_argument("--worker")
    ap.add_argument("--dir")
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker, Path(a.dir), a.target, a.exact_limit)))
        return
    from roost.ann.backends import DEFAULT_LIBRARY

    print(f"machine: {machine()}")
    default = DEFAULT_LIBRARY["hnsw"]
    print(
        f"data: {a.n:,} × {a.dim} float32 random normal, cosine, {a.queries} queries, recall@{K} ≥ {a.target}, "
        f"HNSW M={M} ef_construction={EF_CONSTRUCTION}; roost's default library for hnsw: {default}; "
        f"roost exact_limit {a.exact_limit}"
    )
    with tempfile.TemporaryDirectory(prefix="roost-bench-ann-") as d:
        tmp = Path(d)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((a.n, a.dim), dtype=np.float32)
        q = rng.standard_normal((a.queries, a.dim), dtype=np.float32)
        t = time.perf_counter()
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        truth = np.concatenate([np.argsort(-(qn[i : i + 100] @ xn.T), axis=1)[:, :K] for i in range(0, len(q), 100)])
        u = rng.random(a.n)  # the filtered searches: u < s
        np.save(tmp / "u.npy", u)
        for s in SELECTIVITIES:
            sub = np.flatnonzero(u < s)
            ftruth = sub[np.argsort(-(qn[:200] @ xn[sub].T), axis=1)[:, :K]]
            np.save(tmp / f"ftruth-{s}.npy", ftruth)
        print(f"brute-force truth: {time.perf_counter() - t:.1f} s (numpy)")
        np.save(tmp / "base.npy", x)
        np.save(tmp / "queries.npy", q)
        np.save(tmp / "truth.npy", truth)
        del x, xn
        res = {}
        for name in ("hnswlib", "faiss", "roost:hnswlib", "roost:faiss"):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    name,
                    "--dir",
                    d,
                    "--target",
                    str(a.target),
                    "--exact-limit",
                    str(a.exact_limit),
                ],
                capture_output=True,
                text=True,
            )
            if out.returncode != 0:
                sys.stderr.write(out.stderr[-3000:])
                raise SystemExit(f"{name} failed")
            r = res[name] = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{name:<14} build {r['build_wall_s']:6.1f} s wall / {r['build_cpu_s']:6.1f} s CPU   "
                f"index {r['index_mb']:6.1f} MiB (peak RSS {r['peak_rss_mb']:6.0f} MiB)   ef {r['ef']:5d}   "
                f"recall {r['recall']:.4f}   batch {r['qps_batch']:6.0f} q/CPU-s   single {r['qps_single']:6.0f} "
                f"q/CPU-s   filtered 25%: {r['filtered_qps']:6.0f} q/CPU-s",
                flush=True,
            )
            shown = "  ".join(f"{float(s):.1%} {v:.3f}" for s, v in r["filtered_recall"].items())
            print(f"{'':<14} filtered recall@{K} by selectivity: {shown}", flush=True)
    raw = max(res["hnswlib"]["qps_batch"], res["faiss"]["qps_batch"])
    raw_one = max(res["hnswlib"]["qps_single"], res["faiss"]["qps_single"])
    mine = res[f"roost:{default}"]
    for lib in ("hnswlib", "faiss"):
        r, o = res[f"roost:{lib}"], res[lib]
        print(
            f"roost on {lib} / raw {lib}: batch x{r['qps_batch'] / o['qps_batch']:.3f}, "
            f"single x{r['qps_single'] / o['qps_single']:.3f}, memory {r['index_mb'] - o['index_mb']:+.1f} MiB"
        )
    print(f"roost ({default}) / faster raw library, single queries: {mine['qps_single'] / raw_one:.3f}")
    print(f"ratio: {mine['qps_batch'] / raw:.3f}")


if __name__ == "__main__":
    main()
