"""`model: auto`'s time budget: parse it, and plan which candidates, folds and refit fit in the time left.

The planner is pure (costs and budget in, plan out): `plan` picks the cross-validation plan of the highest
utility whose estimated seconds fit; `Budget` is the clock the training loop asks. Costs come from the candidates'
own first fits (their child runs), scaled by rows: a fold model fits (k-1)/k of the cross-validated rows, a refit
fold model (k-1)/k of all rows.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from roost.errors import ConfigError

log = logging.getLogger(__name__)

# The default budget: 60 s for a table of up to 200,000 cells (rows × columns, e.g. 10,000 × 20), growing in
# proportion beyond that, at most one hour; for a K-class label K times that (3 classes 180 s, 10 classes 600 s):
# a K-class model learns K scores per row where a binary or regression one learns one (LightGBM grows K trees a
# round). Unbudgeted on a quiet 2-core machine cracker (3,292 × 13, 4 classes) took 54 s and digits (1,797 × 64, 10
# classes) 199 s; under 60 s their planned cuts (3 folds, lightgbm's cross-validation, the refit) cost 1-21 % of
# log loss, and under K/2 (300 s) digits was still cut to 3 folds (the planner's estimates run ~1.5x the time the
# folds then take there; issue 36, bench/RESULTS.md).
DEFAULT_SECONDS, DEFAULT_CELLS, DEFAULT_MAX_SECONDS = 60.0, 200_000, 3600.0
# Plans fill this share of the time left: the rest absorbs estimation error (fit times vary run to run).
SAFETY = 0.85
# Utility of the parts of a plan beyond the candidates' own values (each candidate: 0..1, the best one 1).
REFIT_VALUE = 0.6  # refit on all rows: +0.0031 ± 0.0013 ROC-AUC on the suite (bench/RESULTS.md)
FULL_FOLDS_VALUE = 0.3  # the configured folds rather than 3: steadier out-of-fold scores for the weights
MIN_FOLDS = 3
# The cheap strong candidates: under a budget they train (and cross-validate) first, whatever the others cost, so a
# slow candidate cannot starve them (issue 36: at load 23-44 one or two children used the whole minute and the
# budgeted runs lost 0.010-0.050 ROC-AUC).
SECURED = ("lightgbm_defaults", "logreg")
# The share of the time left that one child may use: a secured child half, a later one a quarter (its epochs or
# boosting rounds stop there, the best so far kept); a later child estimated to need more is skipped.
SECURED_SHARE, CHILD_SHARE = 0.5, 0.25
# Seconds a candidate adds to the final package's export on a quiet machine, where the children exported nothing
# (under a budget they do not): one LightGBM fold model's ONNX conversion and parity check; one network export
# (a candidate's fold networks export as one graph). Measured under load (bench/RESULTS.md, issue 36: chile at
# load 15, the two network exports took 25 s and 14 s, the LightGBM members 0.3-0.8 s each) they scale with the CPU
# contention (Budget.contention); the first network export of a process pays a warm-up on top.
EXPORT_PRIOR = {"lightgbm": 0.06, "torch": 1.5}
EXPORT_PER_COLUMN = {"torch": 0.06}  # a network's graph has a preprocessing branch per input column (digits: 64)
# A LightGBM member's export grows with its trees (rounds × classes): bench/lgbm_export.py, numpy path, quiet-ish:
# 1,000 trees 0.17 s, 5,000 trees 0.88 s, 17,990 (digits) 1.35 s; cracker's fold models at load 10: 0.48 s each.
EXPORT_PER_TREE = 0.00017
EXPORT_WARMUP = 1.0
# Seconds of the package's last steps on a quiet machine (the blend's parity check and package score, the
# monitoring reference: chile at load 15, 1.7 + 1.9 + 7.0 s), reserved before any cross-validation is planned.
FINAL_PRIOR = 1.5
# Budgeted runs train the children (after the SECURED ones) in order of expected value per second: (value, seconds
# per million cells) priors from the suite's runs (bench/RESULTS.md); the children's measured times correct them.
PRIORS: dict[str, tuple[float, float]] = {
    "lightgbm_defaults": (0.9, 10.0),
    "lightgbm": (1.0, 20.0),
    "lightgbm_deep": (0.9, 20.0),
    "lightgbm_fine": (0.9, 20.0),  # lightgbm_deep with min_child_samples 3 (regression): the same cost
    "lightgbm_large": (0.8, 30.0),  # 128 leaves of >= 3 rows, bagged (multiclass): 0.4-1.8x lightgbm_bagged's fit
    "lightgbm_bagged": (0.9, 28.0),  # lightgbm_deep with bagging (multiclass): 0.7-2x its fit on the suite, mean 1.4x
    "logreg": (0.6, 40.0),
    "wide_deep": (0.9, 50.0),
    "mlp": (0.7, 50.0),
    "dcn": (0.7, 60.0),
}
# A cross-validation may use at most this multiple of its estimate (+1 s) before it is stopped and dropped.
CV_SLACK = 2.0
UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_budget(value: Any, where: str = "--time-budget") -> float | None:
    """Seconds from '60s', '5m', '1.5h', '90' or a number; None for none/off (no budget); errors name `where`."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{where}: {value!r} is not a duration", hint="e.g. 60s, 5m, 1h or none")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        if text in ("none", "off", "unlimited"):
            return None
        m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(s|m|min|h)?", text)
        if not m:
            raise ConfigError(f"{where}: {value!r} is not a duration", hint="e.g. 60s, 5m, 1h or none (no budget)")
        seconds = float(m.group(1)) * UNITS[m.group(2) or ""]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{where}: {value!r} must be a positive duration", hint="e.g. 60s, 5m, 1h or none")
    return seconds


def default_budget(rows: int, cols: int, classes: int = 0) -> float:
    """The default budget in seconds for a table of `rows` × `cols` (60 s up to 200,000 cells, then in proportion),
    × `classes` for a label of more than two (multiclass: one score per class), at most an hour."""
    cells = max(1, rows) * max(1, cols)
    seconds = max(DEFAULT_SECONDS, DEFAULT_SECONDS * cells / DEFAULT_CELLS) * (classes if classes > 2 else 1)
    return min(DEFAULT_MAX_SECONDS, seconds)


@dataclass(frozen=True)
class Plan:
    """What auto runs after the children: cross-validate `cv` (in that order) with `folds` folds, then refit
    (`refit`) on all rows; `seconds` is the estimate; `skipped` says what the budget left out, and why."""

    cv: tuple[str, ...]
    folds: int
    refit: bool
    seconds: float
    skipped: tuple[str, ...] = field(default=())


def candidate_values(task_mode: str, scores: dict[str, float]) -> dict[str, float]:
    """Each candidate's expected value to the blend in (0, 1] from its validation score: 1 for the best, falling
    with its gap to the best (half at 0.01 ROC-AUC below it, or 2 % worse for a loss); NaN scores: 0.1."""
    finite = {c: s for c, s in scores.items() if s == s}
    if not finite:
        return dict.fromkeys(scores, 1.0)
    best = max(finite.values()) if task_mode == "max" else min(finite.values())
    out = {}
    for c, s in scores.items():
        if s != s:
            out[c] = 0.1
            continue
        gap = (best - s) / 0.01 if task_mode == "max" else (s - best) / max(abs(best) * 0.02, 1e-12)
        out[c] = 1.0 / (1.0 + max(0.0, gap))
    return out


def plan(
    left: float,
    fold_costs: dict[str, float],
    values: dict[str, float],
    folds: int,
    refit_ratio: float = 1.25,
    export_costs: dict[str, float] | None = None,
    refit: bool = True,
    done: dict[str, float] | None = None,
    every: Collection[str] | None = None,
    fewer_folds: bool = True,
    kept: float = 0.0,
) -> Plan:
    """The cross-validation plan of the highest utility whose estimated seconds fit in `left` (× SAFETY).

    `fold_costs[c]`: seconds to fit one of candidate c's fold models with `folds` folds (fewer folds: each fold
    model fits fewer rows, scaled); `values[c]`: its expected value to the blend (candidate_values); a refit fold
    model costs `refit_ratio` × a fold model (all rows instead of the training+validation rows);
    `export_costs[c]`: seconds to export one of c's fold models into the final package (each member pays it);
    `refit` false: never plan a refit. `done[c]`: seconds the cross-validation of an already cross-validated
    candidate took (in every plan: its refit and export still count, with `folds` fixed); `every`: the candidates
    a refit needs cross-validated (default: all of fold_costs and done); `fewer_folds` false: only `folds`;
    `kept`: seconds of `left` no plan may use (the final package's last steps, final_reserve).
    Utility: the values of the candidates cross-validated + REFIT_VALUE with a refit + FULL_FOLDS_VALUE with all
    `folds`; ties go to the cheaper plan. A refit counts only when every candidate is cross-validated: auto weighs
    a candidate left out on the validation rows, and a blend holding one cannot be refitted (auto_weights). No plan
    fits: no cross-validation (auto weighs the children on the validation rows). Cut order follows from the
    utilities: the refit, then folds, then the candidates of least value per second.
    """
    allowed = (left - kept) * SAFETY
    done = dict(done or {})
    exports = export_costs or {}
    needed = set(fold_costs) | set(done) if every is None else set(every)
    names = sorted(fold_costs, key=lambda c: (-values.get(c, 0.0) / max(fold_costs[c], 1e-9), c))
    fold_options = [folds] + ([MIN_FOLDS] if folds > MIN_FOLDS and fewer_folds and not done else [])
    best: tuple[float, float, Plan] | None = None
    for size in range(len(names), -1, -1):
        for subset in combinations(names, size):
            if not subset and not done:
                continue
            complete = needed <= set(subset) | set(done)
            for k in fold_options:
                for again in (True, False) if refit and complete else (False,):
                    secs = _cost(subset, fold_costs, k, folds, again, refit_ratio, exports)
                    if done:  # already paid for: only their refit and their members' export remain
                        secs += sum(done.values()) * refit_ratio * again + sum(exports.get(c, 0.0) * k for c in done)
                    if secs > allowed:
                        continue
                    util = sum(values.get(c, 0.0) for c in [*subset, *done])
                    util += (REFIT_VALUE if again else 0.0) + (FULL_FOLDS_VALUE if k == folds else 0.0)
                    cand = Plan(tuple(subset), k, again, secs)
                    if best is None or util > best[0] + 1e-12 or (abs(util - best[0]) <= 1e-12 and secs < best[1]):
                        best = (util, secs, cand)
    chosen = best[2] if best is not None else Plan((), folds if done else 0, False, 0.0)
    why = f"budget: {left:.0f} s left" + (f", {kept:.0f} s of them kept for the package" if kept else "")
    skipped = _skipped(chosen, names, folds, why, refit and bool(chosen.cv or done), bool(done))
    return Plan(chosen.cv, chosen.folds, chosen.refit, chosen.seconds, skipped)


def _cost(
    subset: tuple[str, ...],
    fold_costs: dict[str, float],
    k: int,
    folds: int,
    refit: bool,
    refit_ratio: float,
    export_costs: dict[str, float],
) -> float:
    """Estimated seconds of cross-validating `subset` with k folds (+ refitting it) and exporting the blend."""
    scale = ((k - 1) / k) / ((folds - 1) / folds)  # rows per fold model relative to the configured folds
    cv = sum(k * fold_costs[c] * scale for c in subset)
    refit_s = cv * refit_ratio if refit else 0.0
    return cv + refit_s + sum(export_costs.get(c, 0.0) * k for c in subset)


def _skipped(
    chosen: Plan, names: list[str], folds: int, why: str, refit: bool, started: bool = False
) -> tuple[str, ...]:
    """What `chosen` leaves out, one line each, saying `why` (`started`: some candidates are cross-validated
    already, so leaving the rest out still keeps a cross-validated blend)."""
    out = [f"cross-validation of {c} ({why})" for c in names if c not in chosen.cv]
    if not chosen.cv and not started:
        out = [f"cross-validation ({why}; weights from the validation rows)"]
    elif chosen.folds < folds:
        out.append(f"folds {folds} → {chosen.folds} ({why})")
    if refit and not chosen.refit:
        out.append(f"refit on all rows ({why})")
    return tuple(out)


class Budget:
    """The clock of one auto run: `left()` seconds until the deadline (inf without a budget), and what was skipped."""

    def __init__(self, seconds: float | None, clock: Any = time.monotonic, say: Any = None) -> None:
        self.seconds, self.clock, self.say = seconds, clock, say
        self.start = clock()
        self.since, self.cpu_start = self.start, time.process_time()
        self.skipped: list[str] = []

    def measure_from_now(self) -> None:
        """Measure the contention from here on (after the imports: reading libraries from disk waits on I/O,
        not on the CPU, and made the contention look twice what the fits then met)."""
        self.since, self.cpu_start = self.clock(), time.process_time()

    def contention(self) -> float:
        """How much slower than its own CPU time this run's wall time passes (wall / CPU seconds since the start or
        measure_from_now, at least 1): ~1 on a free machine, ~6 for single-threaded work on 2 cores at load 12 (the
        load average of a container's host would say nothing of its own CPUs). 1 on a synthetic clock (synthetic
        costs) and in the first second."""
        wall = self.clock() - self.since
        if self.clock is not time.monotonic or wall < 1.0:
            return 1.0
        return float(max(1.0, wall / max(time.process_time() - self.cpu_start, 1e-3)))

    def left(self) -> float:
        """Seconds left (may be negative); inf without a budget."""
        if self.seconds is None:
            return math.inf
        return float(self.seconds - (self.clock() - self.start))

    def end(self) -> float | None:
        """When the budget ends, on the clock (None without a budget)."""
        return None if self.seconds is None else float(self.start + self.seconds)

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return float(self.clock() - self.start)

    def note(self) -> str:
        """' · budget 42 s left' (empty without a budget), for progress lines."""
        return "" if self.seconds is None else f" · budget {max(0.0, self.left()):.0f} s left"

    def skip(self, what: str) -> None:
        """Record something the budget left out."""
        self.skipped.append(what)

    def step(self, what: str) -> None:
        """Log the step auto starts, with the budget left; also to `say` (the progress output) when given."""
        line = f"auto: {what}{self.note()}"
        log.info("%s", line)
        if self.say is not None:
            self.say(line)


def prior(cand: str, base: str) -> tuple[float, float]:
    """(expected value, seconds per million cells) of candidate `cand` of model type `base` before it has run."""
    return PRIORS.get(cand) or PRIORS.get(base) or (0.5, 50.0)


def export_seconds(framework: str, columns: int, contention: float = 1.0) -> float:
    """Estimated seconds of one export: a LightGBM member, or a network candidate's graph (all its fold networks),
    EXPORT_PRIOR + EXPORT_PER_COLUMN × `columns`, × `contention` (Budget.contention)."""
    return (EXPORT_PRIOR.get(framework, 1.0) + EXPORT_PER_COLUMN.get(framework, 0.0) * columns) * contention


def export_cost(child: Any, model: Any, members: int = 1, contention: float = 1.0) -> float:
    """Seconds one of a candidate's `members` fold models adds to the final package's export: its child run's (a
    TrainResult) export time, or where the child exported nothing (under a budget) export_seconds, plus for
    LightGBM EXPORT_PER_TREE × the child's trees (a network: one export for all the members, so its share)."""
    if child.package_path.exists():
        secs = float(child.seconds.get("export", 0.0))
    else:
        spec = getattr(model, "spec_", None)
        secs = export_seconds(model.framework, len(spec.columns) if spec is not None else 0, contention)
        secs += EXPORT_PER_TREE * _trees(model) * contention
    return secs / max(members, 1) if model.framework == "torch" else secs


def _trees(model: Any) -> int:
    """A fitted LightGBM model's trees (0 for anything else)."""
    try:
        return int(model.model_.booster_.num_trees())
    except AttributeError:
        return 0


def final_reserve(frameworks: Collection[str], contention: float = 1.0) -> float:
    """Seconds kept for the final package's fixed steps (FINAL_PRIOR, and a network export's warm-up when a
    candidate is one), × `contention` (Budget.contention)."""
    return (FINAL_PRIOR + (EXPORT_WARMUP if "torch" in frameworks else 0.0)) * contention


def warm_imports(model_types: list[str]) -> None:
    """Import the candidates' libraries before the first child is timed: a cold import (torch: ~3 s quiet, ~20 s at
    load 30) counted as that child's fit and scaled every later estimate with it."""
    import importlib

    for module in sorted({"lightgbm" if t.startswith("lightgbm") else "torch" for t in model_types}):
        importlib.import_module(module)


def child_order(cands: list[str], value_per_second: dict[str, float]) -> list[str]:
    """The order children train in under a budget: the SECURED candidates first (in their SECURED order), then the
    others by expected value per second, highest first."""
    first = [c for c in SECURED if c in cands]
    rest = sorted((c for c in cands if c not in first), key=lambda c: -value_per_second.get(c, 0.0))
    return first + rest


def child_allowance(left: float, secured: bool) -> float:
    """Seconds one child may use of the `left` seconds (SECURED_SHARE or CHILD_SHARE of them, at least 0)."""
    return max(0.0, left) * (SECURED_SHARE if secured else CHILD_SHARE)


def cv_allowance(estimate: float, left: float) -> float:
    """Seconds one candidate's cross-validation may use: CV_SLACK × its estimate + 1 s, within SAFETY × `left`."""
    return max(0.0, min(left * SAFETY, CV_SLACK * estimate + 1.0))


_DEADLINE: ContextVar[float | None] = ContextVar("roost_train_deadline", default=None)


@contextmanager
def deadline(at: float | None) -> Iterator[None]:
    """Fits inside stop at `at` (time.monotonic(); None: no deadline of its own) or an enclosing deadline, the
    earlier: a network after the epoch, LightGBM after the round that passes it, each keeping its best so far."""
    outer = _DEADLINE.get()
    inner = at if outer is None else outer if at is None else min(at, outer)
    token = _DEADLINE.set(inner)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def current_deadline() -> float | None:
    """The deadline fits run under now (time.monotonic()), or None."""
    return _DEADLINE.get()


def past_deadline() -> bool:
    """True once the current deadline has passed (never without one)."""
    at = _DEADLINE.get()
    return at is not None and time.monotonic() >= at
