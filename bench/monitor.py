"""Monitoring benchmark: drift report roost vs Evidently 0.7.23, group metrics roost vs fairlearn 0.15, same data.

  (a) drift: reference and current tables of 1,000,000 rows × 20 features (15 numeric, 5 categorical; 8 of them
      shifted). Evidently: `Report([DataDriftPreset()]).run(...)` + `snapshot.dict()` (its default method per
      column: normed Wasserstein / Jensen–Shannon at this size). roost: `compare()` (KS, Wasserstein, PSI, JS, chi²
      for every column, same default method) + the HTML report + `to_dict()`. Scores are checked to agree.
  (b) fairness: 1,000,000 rows, two sensitive columns (3 × 5 = 15 intersectional groups); fairlearn: MetricFrame
      of count, selection rate, TPR, FPR, precision (predictions at 0.5) and ROC-AUC (scores), plus
      demographic-parity difference/ratio and equalised-odds difference; roost: `group_metrics` of the same
      intersection. Values are checked to agree.

Every side runs as its own process on the same Parquet files (loading is not timed): roost in .venv, Evidently and
fairlearn in .bench/evidently (created if missing; Evidently needs pandas < 3). Figures: CPU seconds of the timed
section (process time), peak RSS and its growth over the loaded data. Prints ratio = peer CPU / roost CPU; the last
line `ratio: X` is the drift ratio (Evidently / roost).

    .venv/bin/python bench/monitor.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH, REPO, machine, peer_venv

NUM, CAT = 15, 5

PROLOGUE = r"""
import json, os, sys, warnings
warnings.filterwarnings("ignore")
import pandas as pd
spec = json.loads(sys.argv[1])
sys.path.insert(0, spec["bench"])
from _common import measure  # the same timing code on both sides
def figures(m):
    return {"cpu": m.cpu, "wall": m.wall, "rss_base": m.rss_start, "rss_peak": m.peak}
"""

ROOST_DRIFT = (
    PROLOGUE
    + r"""
from roost.monitor.drift_compute import compare
from roost.monitor.html_report import drift_html
ref, cur = pd.read_parquet(spec["ref"]), pd.read_parquet(spec["cur"])
compare(ref.head(2000), cur.head(2000)); drift_html(compare(ref.head(2000), cur.head(2000)))  # imports, warm-up
with measure() as timed:
    rep = compare(ref, cur)
    html = drift_html(rep)
    out = rep.to_dict()
print(json.dumps({**figures(timed), "html_bytes": len(html),
                  "scores": {f["feature"]: [f["method"], f["score"], f["drifted"]] for f in out["features"]},
                  "drifted": out["drifted"]}))
"""
)

EVIDENTLY_DRIFT = (
    PROLOGUE
    + r"""
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
import evidently
ref, cur = pd.read_parquet(spec["ref"]), pd.read_parquet(spec["cur"])
dd = DataDefinition(numerical_columns=spec["num"], categorical_columns=spec["cat"])
def run(r, c):
    snap = Report([DataDriftPreset()]).run(Dataset.from_pandas(c, data_definition=dd),
                                           Dataset.from_pandas(r, data_definition=dd))
    return snap.dict()
run(ref.head(2000), cur.head(2000))  # imports, warm-up
with measure() as timed:
    d = run(ref, cur)
names = {"Wasserstein distance (normed)": "wasserstein", "Jensen-Shannon distance": "js", "K-S p_value": "ks",
         "chi-square p_value": "chi2", "PSI": "psi", "Z-test p_value": "z"}
scores, drifted = {}, None
for m in d["metrics"]:
    cfg = m["config"]
    if cfg.get("type", "").endswith("ValueDrift"):
        scores[cfg["column"]] = [names.get(cfg["method"], cfg["method"]), float(m["value"]),
                                 float(m["value"]) >= cfg["threshold"]]
    elif cfg.get("type", "").endswith("DriftedColumnsCount"):
        drifted = m["value"]["count"]
print(json.dumps({**figures(timed), "scores": scores,
                  "drifted": drifted, "version": evidently.__version__}))
"""
)

ROOST_FAIR = (
    PROLOGUE
    + r"""
import numpy as np
from roost.responsible.group_fairness import group_metrics
df = pd.read_parquet(spec["fair"])
group_metrics(df[["sex", "age"]].head(1000), y_true=df.y.head(1000), y_score=df.score.head(1000))  # warm-up
with measure() as timed:
    rep = group_metrics(df[["sex", "age"]], y_true=df["y"].to_numpy(), y_score=df["score"].to_numpy(),
                        marginals=False)
    t = rep.table(); disp = t.disparities()
bg = t.frame()
print(json.dumps({**figures(timed),
                  "groups": {"/".join(k): [float(v) for v in bg.loc[k, spec["metrics"]]] for k in bg.index},
                  "disp": disp}))
"""
)

FAIRLEARN_FAIR = (
    PROLOGUE
    + r"""
import numpy as np
import fairlearn
from fairlearn.metrics import (MetricFrame, count, false_positive_rate, selection_rate, true_positive_rate)
from sklearn.metrics import precision_score, roc_auc_score
df = pd.read_parquet(spec["fair"])
def run(d):
    sf, y, p = d[["sex", "age"]], d["y"].to_numpy(), d["score"].to_numpy()
    yhat = (p >= 0.5).astype(int)
    mf = MetricFrame(metrics={"count": count, "selection_rate": selection_rate, "tpr": true_positive_rate,
                              "fpr": false_positive_rate, "precision": precision_score},
                     y_true=y, y_pred=yhat, sensitive_features=sf)
    auc = MetricFrame(metrics={"roc_auc": roc_auc_score}, y_true=y, y_pred=p, sensitive_features=sf)
    diff, ratio = mf.difference(), mf.ratio()
    disp = {"demographic_parity_difference": float(diff["selection_rate"]),
            "demographic_parity_ratio": float(ratio["selection_rate"]),
            "equalized_odds_difference": float(max(diff["tpr"], diff["fpr"]))}
    return mf.by_group.join(auc.by_group), disp
run(df.head(5000))  # imports, warm-up
with measure() as timed:
    bg, disp = run(df)
print(json.dumps({**figures(timed), "disp": disp,
                  "groups": {"/".join(k): [float(v) for v in bg.loc[k, spec["metrics"]]] for k in bg.index},
                  "version": fairlearn.__version__}))
"""
)


def make_data(rows: int, d: Path) -> dict:
    """Reference/current drift tables and a fairness table as Parquet files; returns the driver spec."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)

    def table(shifted: bool) -> pd.DataFrame:
        """One drift table (the current one with shifted columns)."""
        cols = {}
        for i in range(NUM):
            s = 0.15 * (i % 3) if shifted and i < 6 else 0.0  # 4 numeric columns shifted
            base = rng.normal(s, 1 + s, rows) if i % 2 == 0 else rng.lognormal(s, 0.7, rows)
            cols[f"n{i}"] = base.round(3) if i % 5 == 4 else base
        for j in range(CAT):
            k = 6 + 3 * j
            p = np.linspace(1, 2, k) if shifted and j < 2 else np.ones(k)
            cols[f"c{j}"] = pd.Series(rng.choice([f"v{v}" for v in range(k)], rows, p=p / p.sum()), dtype="str")
        return pd.DataFrame(cols)

    table(False).to_parquet(d / "ref.parquet")
    table(True).to_parquet(d / "cur.parquet")
    score = rng.beta(2, 3, rows)
    sex = rng.choice(["female", "male", "nonbinary"], rows, p=[0.49, 0.48, 0.03])
    age = rng.choice(["18-24", "25-34", "35-44", "45-54", "55+"], rows)
    y = (rng.random(rows) < np.clip(score + (sex == "male") * 0.05, 0, 1)).astype(np.int64)
    pd.DataFrame(
        {"sex": pd.Series(sex, dtype="str"), "age": pd.Series(age, dtype="str"), "y": y, "score": score}
    ).to_parquet(d / "fair.parquet")
    return {
        "ref": str(d / "ref.parquet"),
        "cur": str(d / "cur.parquet"),
        "fair": str(d / "fair.parquet"),
        "num": [f"n{i}" for i in range(NUM)],
        "cat": [f"c{j}" for j in range(CAT)],
        "metrics": ["count", "selection_rate", "tpr", "fpr", "precision", "roc_auc"],
    }


def drive(python: Path | str, source: str, spec: dict, cwd: Path) -> dict:
    """Run a driver script in its own process; its last stdout line is JSON."""
    script = cwd / "driver.py"
    script.write_text(source)
    env = {
        "DO_NOT_TRACK": "1",
        "PATH": "/usr/bin:/bin",
        "HOME": str(cwd),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO / "src"),
    }
    proc = subprocess.run(
        [str(python), str(script), json.dumps(spec)], cwd=cwd, capture_output=True, text=True, env=env, timeout=3600
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"driver failed (exit {proc.returncode})")
    return json.loads([ln for ln in proc.stdout.splitlines() if ln.strip()][-1])


def line(name: str, r: dict) -> str:
    """One figure line."""
    return (
        f"  {name:<22} CPU {r['cpu']:8.2f} s   wall {r['wall']:8.2f} s   peak RSS {r['rss_peak']:7.0f} MB "
        f"(+{max(r['rss_peak'] - r['rss_base'], 0):6.0f} MB over loaded data)"
    )


def main() -> None:
    """Run both benchmarks and print figures, agreement checks and ratios."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    print(f"machine: {machine()}", flush=True)
    peer = peer_venv("evidently", ["evidently==0.7.23", "fairlearn==0.15.0", "pandas<3"], "evidently")
    with tempfile.TemporaryDirectory(prefix="roost-bench-monitor-") as tmp:
        d = Path(tmp)
        spec = {**make_data(args.rows, d), "bench": str(BENCH)}
        print(
            f"data: {args.rows:,} rows × {NUM + CAT} features (reference and current); fairness {args.rows:,} "
            "rows, 15 groups",
            flush=True,
        )
        rd = drive(sys.executable, ROOST_DRIFT, spec, d)
        print(line("roost drift", rd), flush=True)
        ed = drive(peer, EVIDENTLY_DRIFT, spec, d)
        print(line(f"Evidently {ed['version']}", ed), flush=True)
        rf = drive(sys.executable, ROOST_FAIR, spec, d)
        print(line("roost group metrics", rf), flush=True)
        ff = drive(peer, FAIRLEARN_FAIR, spec, d)
        print(line(f"fairlearn {ff['version']}", ff), flush=True)
    worst = 0.0
    for col, (method, score, drifted) in ed["scores"].items():
        rm, rs, rdft = rd["scores"][col]
        if rm != method or rdft != drifted:
            raise SystemExit(f"drift disagrees on {col}: roost {rm} {rs} {rdft}, Evidently {method} {score} {drifted}")
        worst = max(worst, abs(rs - score) / max(abs(score), 1e-12))
    print(
        f"drift: same method and verdict on all {len(ed['scores'])} columns, {rd['drifted']} drifted; "
        f"max relative score difference {worst:.1e}"
    )
    fworst = max(abs(a - b) for k, vals in ff["groups"].items() for a, b in zip(vals, rf["groups"][k]))
    dworst = max(abs(ff["disp"][k] - rf["disp"][k]) for k in ff["disp"])
    print(
        f"fairness: {len(ff['groups'])} groups × {len(spec['metrics'])} metrics, max |roost − fairlearn| "
        f"{fworst:.1e}, disparities {dworst:.1e}"
    )
    r_drift, r_fair = ed["cpu"] / rd["cpu"], ff["cpu"] / rf["cpu"]
    print(f"drift ratio (Evidently / roost CPU): {r_drift:.1f}x   target >= 10x")
    print(f"fairness ratio (fairlearn / roost CPU): {r_fair:.1f}x   target >= 100x")
    print(f"ratio: {r_drift:.1f}")


if __name__ == "__main__":
    main()
