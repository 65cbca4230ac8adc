"""`model: auto`'s default candidates and the named variants among them (a model type with fixed parameters)."""

from __future__ import annotations

from typing import Any

from roost.training.lgbm import LightGBMModel

DEFAULT_CANDIDATES = ("logreg", "wide_deep", "lightgbm", "lightgbm_deep", "lightgbm_defaults")
# LightGBM's usual settings in roost (training/lgbm.py), without the run's own seed, threads and logging
_LGBM_USUAL = {k: v for k, v in LightGBMModel.DEFAULTS.items() if k not in ("seed", "n_jobs", "log_every")}
# Named variants of a model type with fixed parameters. `lightgbm_defaults` is LightGBM exactly as
# `LGBMClassifier()` / `LGBMRegressor()` fit it (100 rounds, learning rate 0.1, 31 leaves, no early stopping): a
# user's first baseline, so the blend can always fall back to it (issue 36: the small-table settings alone lost
# 0.016 ROC-AUC to it on a 5,000-row churn table).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "lightgbm_defaults": (
        "lightgbm",
        {
            "n_estimators": 100,
            "learning_rate": 0.1,
            "num_leaves": 31,
            "min_child_samples": 20,
            "subsample": 1.0,
            "colsample_bytree": 1.0,
            "reg_lambda": 0.0,
            "early_stopping_rounds": 0,
        },
    ),
    # LightGBM's usual capacity (31 leaves, learning rate 0.05) with early stopping, beside the small-table settings
    # `lightgbm` takes under 10,000 rows: tables with many interactions need the leaves (issue 36: computers,
    # 6,259 rows, child test RMSE 160.9 with 7 leaves, 154.2 with 31; tuned LightGBM 148.9). From 10,000 rows
    # `lightgbm` is this model already, and the default set drops it (table_candidates).
    "lightgbm_deep": ("lightgbm", {**_LGBM_USUAL, "n_estimators": 10_000}),
    # `lightgbm_deep` with leaves down to 3 rows (min_child_samples 3, LightGBM's usual 20): regression's default in
    # its place (table_candidates). Tuned LightGBM chose min_child_samples 2 on every computers split (6,259 PC
    # prices: exact configurations repeat a few times each), where auto was 1.0285 of the best reference over 5
    # splits; with this in lightgbm_deep's place 1.0045, the other five regression tables within noise, same fitting
    # time (issue 36, bench/RESULTS.md; bench/regression_replay.py). 63 leaves with min_child_samples 5: 1.0121.
    "lightgbm_fine": ("lightgbm", {**_LGBM_USUAL, "n_estimators": 10_000, "min_child_samples": 3}),
    # `lightgbm_deep` with row bagging (70 % of the rows per round) and half the columns per tree: multiclass's
    # default in its place (table_candidates). A multiclass model grows one tree per class each round, each on a
    # one-vs-rest signal; subsampling rows and columns decorrelates those trees and keeps the probabilities from
    # turning over-confident (log loss). Digits (1,797 rows, 10 classes), auto / best reference over 5 splits: 1.0986
    # with lightgbm_deep, 1.0101 with this (5 of 5 better; tuned LightGBM chose bagging 0.45-0.48 on each); the six
    # multiclass tables pooled 1.0143 -> 1.0003, cracker +0.005 (bench/multiclass_replay.py, bench/RESULTS.md).
    "lightgbm_bagged": (
        "lightgbm",
        {**_LGBM_USUAL, "n_estimators": 10_000, "subsample": 0.7, "colsample_bytree": 0.5},
    ),
    # Large trees with leaves down to 3 rows, a slower learning rate and row bagging (AutoGluon's "GBMLarge" settings
    # + bagging): beside the others in multiclass's default set (TASK_EXTRA). Where exact feature configurations
    # repeat (a brand choice at the week's shelf prices), tuned LightGBM chose min_child_samples 3-4 and 67-232
    # leaves on every split, and no default candidate could reach the configurations: yogurt (2,412 rows, 4 brands),
    # auto / best reference over 5 splits 1.0255 -> 1.0084 with this candidate; the six multiclass tables pooled
    # -0.0028 +- 0.0012, none worse by more than 0.0005 (bench/multiclass_replay.py, bench/RESULTS.md). Without the
    # bagging 1.0090 on yogurt; regression's `lightgbm_fine` (31 leaves) 1.0140.
    "lightgbm_large": (
        "lightgbm",
        {
            **_LGBM_USUAL,
            "n_estimators": 10_000,
            "num_leaves": 128,
            "min_child_samples": 3,
            "learning_rate": 0.03,
            "colsample_bytree": 0.9,
            "subsample": 0.7,
        },
    ),
    # The linear candidate on log(label): regression's default set trains it beside the others where every label
    # is above 0 (label_candidates). Prices and other positive amounts often have multiplicative effects (a house's
    # lot size and extras scale its price): on the housing table (546 Windsor house prices) a ridge on log(price)
    # scored 0.991 of the best reference over 5 splits where the ridge on price scored 1.018 (bench/RESULTS.md).
    "logreg_log": ("logreg", {"target": "log"}),
}
# Variants that need a label above 0 on every row (label_candidates drops them elsewhere).
POSITIVE_LABEL = ("logreg_log",)
# The variant a task's default set trains in `lightgbm_deep`'s place (the others: none, lightgbm_deep itself).
TASK_DEEP = {"regression": "lightgbm_fine", "multiclass": "lightgbm_bagged"}
# Variants a task's default set trains beside the others (measured on that task's suite only).
TASK_EXTRA: dict[str, tuple[str, ...]] = {"multiclass": ("lightgbm_large",), "regression": ("logreg_log",)}


def table_candidates(
    cands: list[str], n_rows: int, n_cols: int, default: bool = True, task: str | None = None
) -> list[str]:
    """The candidates for a `task` table of `n_rows` training rows: the default set (`default`) without
    `lightgbm_deep` where `lightgbm` takes LightGBM's usual settings itself (10,000 rows up: the same model twice);
    for regression with `lightgbm_fine` in its place at every size (leaves of 3 rows), for multiclass with
    `lightgbm_bagged` in its place where it is kept (each measured on its own task only, so binary keeps
    `lightgbm_deep`), plus the task's extra variants (TASK_EXTRA: multiclass `lightgbm_large`); a list the user
    wrote is kept as written."""
    from roost.training.lgbm import table_defaults

    if not default:
        return list(cands)
    if task != "regression" and "lightgbm" in cands and not table_defaults(n_rows, n_cols):
        cands = [c for c in cands if c != "lightgbm_deep"]
    out = task_variants(list(cands), task)
    return out + [c for c in TASK_EXTRA.get(task or "", ()) if c not in out]


def task_variants(names: list[str], task: str | None) -> list[str]:
    """`names` with the variant a `task` trains by default in `lightgbm_deep`'s place (TASK_DEEP: regression
    `lightgbm_fine`, multiclass `lightgbm_bagged`) and without the other tasks' variants, theirs in place of
    lightgbm_deep or extra (binary and an unknown task: `lightgbm_deep` itself, no extra)."""
    mine = TASK_DEEP.get(task or "", "lightgbm_deep")
    extras = TASK_EXTRA.get(task or "", ())
    others = (set(TASK_DEEP.values()) | {c for cs in TASK_EXTRA.values() for c in cs}) - {mine, *extras}
    out: list[str] = []
    for c in names:
        name = mine if c == "lightgbm_deep" else c
        if name not in others and name not in out:
            out.append(name)
    return out


def label_candidates(cands: list[str], labels: Any, default: bool = True) -> list[str]:
    """`cands` without the variants that need a label above 0 on every row (POSITIVE_LABEL: `logreg_log`) where
    `labels` (every row's: the refit fits on the test rows too) has one ≤ 0 or missing; a list the user wrote is
    kept as written (the candidate then says what is wrong)."""
    import numpy as np

    if not default or not any(c in POSITIVE_LABEL for c in cands):
        return list(cands)
    y = np.asarray(labels, dtype=np.float64)
    if y.size and bool(np.all(y > 0)):
        return list(cands)
    return [c for c in cands if c not in POSITIVE_LABEL]
