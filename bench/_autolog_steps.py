"""Where autolog's time goes (issue 38): the per-step cost of roost.autolog() on the 10k-row fits of bench/autolog.py.

Per library it runs `--fits` autologged fits (after a warm-up) and reports, in ms per fit, the median thread CPU time
and wall time of each part: on the caller's thread the run's start, `before` (params, fingerprint snapshot), `after`
(summary metrics, search results) and the rest of the wrapper; on the background worker each step (params, the data
fingerprint, training metrics, eval metrics, feature importance, the model) and the run's end. Thread CPU
(time.thread_time) is what the step itself computed, whatever else ran on the machine; wall includes waiting.

`--profile` also prints cProfile's top functions by cumulative time with the background steps run inline on the
caller's thread (so one profiler sees them), over the same fits.

    PYTHONPATH=$PWD/src .venv/bin/python bench/_autolog_steps.py [--fits 20] [--libs sklearn,lightgbm,xgboost]
        [--profile] [--log-models 0]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from typing import Any

warnings.filterwarnings("ignore")


def fits(rows: int) -> dict[str, Callable[[], Any]]:
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(n_samples=rows + rows // 5, n_features=20, n_informative=10, random_state=0)
    Xt, yt, Xv, yv = X[:rows], y[:rows], X[rows:], y[rows:]
    return {  # the fits of bench/autolog.py
        "sklearn": lambda: RandomForestClassifier(n_estimators=50, max_depth=10, random_state=0, n_jobs=1).fit(Xt, yt),
        "lightgbm": lambda: lgb.LGBMClassifier(n_estimators=200, num_leaves=31, verbose=-1, n_jobs=1).fit(
            Xt, yt, eval_set=[(Xv, yv)]
        ),
        "xgboost": lambda: xgb.XGBClassifier(n_estimators=200, max_depth=6, n_jobs=1).fit(
            Xt, yt, eval_set=[(Xv, yv)], verbose=False
        ),
    }


class Timings:
    """Thread CPU and wall seconds per named part, one list entry per fit."""

    def __init__(self) -> None:
        self.cpu: dict[str, list[float]] = defaultdict(list)
        self.wall: dict[str, list[float]] = defaultdict(list)

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            c, t = time.thread_time(), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.cpu[name].append(time.thread_time() - c)
                self.wall[name].append(time.perf_counter() - t)

        run.__dict__.update(getattr(fn, "__dict__", {}))  # autolog's marks (steps run beside the fit or the others)
        return run


def instrument(tm: Timings) -> None:
    """Wrap autolog's parts so that each records its time (module attributes replaced for this process only)."""
    from roost.autologging import core
    from roost.registry.run import Run

    original_autologged = core.autologged
    original_run_later = core._run_later
    original_open = core._open_run
    original_end = core.end_owned

    def autologged(flavor: str, name: str, fit: Any, before: Any, after: Any, key: object = None) -> Any:
        return original_autologged(
            flavor, name, tm.timed("fit itself", fit), tm.timed("before (caller)", before),
            tm.timed("after (caller)", after), key,
        )  # fmt: skip

    def run_later(run: Run, owned: bool, conf: Any, later: Any, *rest: Any) -> None:
        steps = [(what, tm.timed(f"bg: {what}", fn)) for what, fn in later]
        tm.timed("bg: steps after the fit + run end", original_run_later)(run, owned, conf, steps, *rest)

    core.autologged = autologged
    core._run_later = run_later
    if hasattr(core, "_run_steps"):  # the steps started beside the fit
        original_run_steps = core._run_steps

        def run_steps(conf: Any, steps: Any, failures: Any, *rest: Any) -> None:
            if any(getattr(fn, "__roost_during_fit__", False) for _what, fn in steps):
                steps = [(what, tm.timed(f"bg beside the fit: {what}", fn)) for what, fn in steps]
            original_run_steps(conf, steps, failures, *rest)

        core._run_steps = run_steps
    core._open_run = tm.timed("start run (caller)", original_open)
    core.end_owned = tm.timed("bg: run end", original_end)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fits", type=int, default=20)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--libs", default="sklearn,lightgbm,xgboost")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--log-models", type=int, default=1)
    ap.add_argument("--top", type=int, default=45)
    args = ap.parse_args()
    import roost
    from roost.registry import deferred

    tmp = tempfile.mkdtemp()
    os.chdir(tmp)
    roost.init(os.path.join(tmp, "ws"))
    roost.use_workspace(os.path.join(tmp, "ws"))
    conf = {"silent": True, "log_models": bool(args.log_models)}
    roost.autolog(**conf)
    all_fits = fits(args.rows)
    print(f"load {os.getloadavg()[0]:.2f}; {args.fits} fits each; ms per fit, median (thread CPU / wall)")
    for lib in args.libs.split(","):
        fit = all_fits[lib]
        fit()
        deferred.wait()
        tm = Timings()
        instrument(tm)
        total_cpu, total_wall = [], []
        for _ in range(args.fits):
            c, t = time.process_time(), time.perf_counter()
            fit()
            deferred.wait()
            total_cpu.append(time.process_time() - c)
            total_wall.append(time.perf_counter() - t)
        _restore()
        roost.autolog(disable=True)
        plain = []
        for _ in range(max(3, args.fits // 4)):
            c = time.process_time()
            fit()
            plain.append(time.process_time() - c)
        roost.autolog(**conf)
        med = statistics.median
        print(
            f"\n{lib}: plain fit {med(plain) * 1e3:.1f} ms CPU; autologged fit + complete"
            f" {med(total_wall) * 1e3:.1f} ms wall, {med(total_cpu) * 1e3:.1f} ms process CPU"
        )
        for name in sorted(tm.cpu, key=lambda n: -med(tm.cpu[n])):
            print(f"  {name:<32} {med(tm.cpu[name]) * 1e3:8.2f} / {med(tm.wall[name]) * 1e3:8.2f}")
        if args.profile:
            profile(lib, fit, args.fits, args.top)


_saved: dict[str, Any] = {}


def _save() -> None:
    from roost.autologging import core

    for n in ("autologged", "_run_later", "_run_steps", "_open_run", "end_owned"):
        if not hasattr(core, n):
            continue
        _saved[n] = getattr(core, n)


def _restore() -> None:
    from roost.autologging import core

    for n, v in _saved.items():
        setattr(core, n, v)


def profile(lib: str, fit: Callable[[], Any], n: int, top: int) -> None:
    """cProfile over n autologged fits with the background jobs run inline on this thread."""
    from roost.registry import deferred

    original = deferred.submit

    def inline(run: Any, fn: Callable[[], None], what: str, key: Any = None) -> None:
        fn()

    deferred.submit = inline
    try:
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(n):
            fit()
        prof.disable()
    finally:
        deferred.submit = original
    print(f"\n{lib}: cProfile, cumulative ms per fit (background inline)")
    st = pstats.Stats(prof)
    rows = []
    for (file, line, func), (_cc, _nc, _tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        rows.append((ct / n * 1e3, f"{os.path.relpath(file) if file.startswith('/') else file}:{line}({func})"))
    for ms, name in sorted(rows, reverse=True)[:top]:
        if ms >= 0.5:
            print(f"  {ms:8.2f}  {name[-110:]}")


if __name__ == "__main__":
    _save()
    sys.exit(main())
