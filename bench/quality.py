"""Model quality: roost's torch models (untuned defaults) vs LightGBM (defaults and a small tuned grid).

Every number comes from a real `roost.train` run (config dict → run → model package), in a throwaway workspace.
Prints the table model × dataset × metric, the gap of the best torch model to tuned LightGBM, and `ratio: X` last
(best torch ROC-AUC / tuned LightGBM ROC-AUC, worst data set).

    python bench/quality.py                      # breast_cancer, engagement (200k), flights (time split)
    python bench/quality.py --quick              # smaller engagement, no grid: a smoke run
    python bench/quality.py --datasets flights --models logreg,dcn
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TORCH_MODELS = ["logreg", "mlp", "wide_deep", "dcn", "two_tower"]
GRID = {"num_leaves": [7, 15, 31, 63, 127], "learning_rate": [0.03, 0.1], "min_child_samples": [20, 200]}
METRICS = ["roc_auc", "pr_auc", "rce", "log_loss", "ece"]
TOWERS = {
    "type": "two_tower",
    "params": {  # engagement columns: who sees the impression / what is shown
        "user_features": [
            "user_id",
            "country",
            "device",
            "age_group",
            "gender",
            "clicks_7d",
            "sessions_7d",
            "avg_session_min",
            "account_age_days",
        ],
        "item_features": [
            "item_id",
            "category",
            "price",
            "quality_score",
            "popularity_7d",
            "item_clicks_7d",
            "item_ctr_7d",
        ],
    },
}


def datasets(tmp: Path, engagement_rows: int) -> dict[str, dict[str, Any]]:
    """Base configs per data set (fixed seeds and splits)."""
    from roost.datasets.flights import FEATURES, delay_frame

    flights = tmp / "flights_delay.parquet"
    delay_frame().to_parquet(flights)
    return {
        "breast_cancer": {"data": "sklearn:breast_cancer", "label": "target", "split": {"method": "random", "seed": 0}},
        "engagement": {
            "data": f"engagement:{engagement_rows}:0",
            "label": "clicked",
            "split": {"method": "time", "column": "event_time"},
        },  # last 20% of the log is the test
        # train Jan-Oct, test Nov-Dec (local midnight of Nov 1 is 04:00 UTC)
        "flights": {
            "data": str(flights),
            "label": "delayed",
            "features": FEATURES,
            "split": {"method": "time", "column": "sched_dep_time", "test_start": "2013-11-01T04:00:00Z"},
        },
    }


def run(cfg: dict[str, Any], model: Any, overrides: list[str] = ()) -> dict[str, Any]:
    """One roost.train run; returns its test/val metrics and wall time."""
    import roost

    full = dict(cfg)
    if model is not None:
        full["model"] = model
    t = time.perf_counter()
    res = roost.train(full, overrides=list(overrides), progress=False)
    return {"run_id": res.run_id, "model": res.model_type, "seconds": time.perf_counter() - t, **res.metrics}


def grid(cfg: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """LightGBM over GRID, chosen by validation ROC-AUC; returns (best row, its params)."""
    best, best_params = None, {}
    for values in itertools.product(*GRID.values()):
        params = dict(zip(GRID, values))
        row = run(cfg, {"type": "lightgbm", "params": params})
        print(
            f"  grid {params}: val_roc_auc {row['val_roc_auc']:.4f} test_roc_auc {row['test_roc_auc']:.4f}",
            file=sys.stderr,
            flush=True,
        )
        if best is None or row["val_roc_auc"] > best["val_roc_auc"]:
            best, best_params = row, params
    assert best is not None
    return best, best_params


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="breast_cancer,engagement,flights")
    ap.add_argument("--models", default=",".join(TORCH_MODELS))
    ap.add_argument("--engagement-rows", type=int, default=200_000)
    ap.add_argument("--no-grid", action="store_true", help="skip the LightGBM grid")
    ap.add_argument("--quick", action="store_true", help="50k engagement rows, no grid")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    ap.add_argument("--seeds", type=int, default=1, help="run the default model with trainer seeds 0..N-1")
    args = ap.parse_args(argv)
    if args.quick:
        args.engagement_rows, args.no_grid = 50_000, True
    logging.basicConfig(level=logging.WARNING)
    import roost.workspace as ws

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="roost-bench-quality-") as d:
        tmp = Path(d)
        ws.use(ws.init(tmp / "ws"))
        configs = datasets(tmp, args.engagement_rows)
        for name in args.datasets.split(","):
            cfg = configs[name]
            print(f"== {name}", file=sys.stderr, flush=True)
            plan: list[tuple[str, Any]] = [("default (auto: logreg | wide_deep by val)", None)]
            plan += [
                (m, TOWERS if m == "two_tower" else m)
                for m in args.models.split(",")
                if m and not (m == "two_tower" and name != "engagement")
            ]
            plan.append(("lightgbm (defaults)", "lightgbm"))
            for label, model in plan:
                r = run(cfg, model)
                rows.append({"dataset": name, "name": label, **r})
                if model is None:
                    for seed in range(1, args.seeds):
                        rs = run(cfg, None, [f"trainer.seed={seed}"])
                        rows.append({"dataset": name, "name": f"default, trainer.seed={seed}", **rs})
                print(
                    f"  {label}: test_roc_auc {r['test_roc_auc']:.4f} ({r['seconds']:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
            if not args.no_grid:
                best, params = grid(cfg)
                rows.append({"dataset": name, "name": f"lightgbm (grid: {params})", **best})
        ws.use(None)
    print("| dataset | model | " + " | ".join(f"test {m}" for m in METRICS) + " | val roc_auc | seconds |")
    print("|---|---|" + "---|" * (len(METRICS) + 2))
    for r in rows:
        cells = [f"{r.get('test_' + m, float('nan')):.4f}" for m in METRICS]
        print(
            f"| {r['dataset']} | {r['name']} | "
            + " | ".join(cells)
            + f" | {r.get('val_roc_auc', float('nan')):.4f} | {r['seconds']:.0f} |"
        )
    ratios = []
    for name in args.datasets.split(","):
        part = [r for r in rows if r["dataset"] == name]
        torch_rows = [r for r in part if r["model"] in TORCH_MODELS and not r["name"].startswith("default")]
        ref = [r for r in part if r["name"].startswith("lightgbm (grid")] or [
            r for r in part if r["model"] == "lightgbm"
        ]
        if not torch_rows or not ref:
            continue
        best = max(torch_rows, key=lambda r: r["test_roc_auc"])
        lgb = max(ref, key=lambda r: r["val_roc_auc"])
        default = next(r for r in part if r["name"].startswith("default"))
        gap = lgb["test_roc_auc"] - best["test_roc_auc"]
        dgap = lgb["test_roc_auc"] - default["test_roc_auc"]
        print(
            f"{name}: best torch {best['name']} {best['test_roc_auc']:.4f} vs {lgb['name']} "
            f"{lgb['test_roc_auc']:.4f}: gap {gap:+.4f} ({'ok' if gap <= 0.005 else 'MISS'} ≤ 0.005); "
            f"roost default (auto picked {default['model']}) gap {dgap:+.4f} ({'ok' if dgap <= 0.005 else 'MISS'})"
        )
        ratios.append(best["test_roc_auc"] / lgb["test_roc_auc"])
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    print(f"ratio: {min(ratios):.4f}" if ratios else "ratio: n/a")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
