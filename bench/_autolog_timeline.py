"""The timeline of an autologged fit (issue 38): when each part starts and ends, in ms relative to the moment `fit`
returns, on which thread, and its thread CPU — the wall time between `fit` returning and the run being complete,
accounted for.

Per library it runs `--fits` autologged 10k-row fits of bench/autolog.py (after a warm-up) with marks on: the fit's
start and return, `after` on the caller's thread, each hand-over to the background worker (`submit`) and the worker
picking the job up (queue wake-up), each step's start and end (worker, side thread; the steps started beside the fit
too), the side thread's pick-up, the run's end, and the caller's `deferred.wait()` returning (the run complete).
Medians over the fits; thread CPU (time.thread_time) is what each part computed whatever else ran.

    PYTHONPATH=$PWD/src .venv/bin/python bench/_autolog_timeline.py [--fits 20] [--libs sklearn,lightgbm,xgboost]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _autolog_steps import fits  # the same three fits

warnings.filterwarnings("ignore")


class Marks:
    """(name, thread, wall, thread CPU) events of the current fit; spans are a "name" start and end."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, float, float]] = []
        self.lock = threading.Lock()

    def mark(self, name: str) -> None:
        with self.lock:
            self.events.append((name, threading.current_thread().name, time.perf_counter(), time.thread_time()))

    def span(self, name: str, fn: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            self.mark(f"{name} [")
            try:
                return fn(*args, **kwargs)
            finally:
                self.mark(f"{name} ]")

        run.__dict__.update(getattr(fn, "__dict__", {}))  # autolog's marks (during_fit, alongside)
        return run


def instrument(m: Marks) -> None:
    """Marks around autolog's parts (module attributes replaced in this process only)."""
    from roost.autologging import core
    from roost.registry import deferred

    autologged, run_steps, on_side, end_owned, submit = (
        core.autologged, core._run_steps, core.on_side_thread, core.end_owned, deferred.submit,
    )  # fmt: skip

    def autologged_marked(flavor: str, name: str, fit: Any, before: Any, after: Any, key: object = None) -> Any:
        return autologged(flavor, name, m.span("fit", fit), m.span("before", before), m.span("after", after), key)

    def submit_marked(run: Any, fn: Any, what: str, key: Any = None) -> None:
        m.mark("submit")
        submit(run, m.span("job", fn), what, key)

    def run_steps_marked(conf: Any, steps: Any, failures: Any, filters: bool = True) -> None:
        run_steps(conf, [(what, m.span(f"step {what}", fn)) for what, fn in steps], failures, filters)

    def on_side_marked(fn: Any) -> Any:
        m.mark("side handed")
        return on_side(m.span("side", fn))

    core.autologged = autologged_marked
    core._run_steps = run_steps_marked
    core.on_side_thread = on_side_marked
    core.end_owned = m.span("run end", end_owned)
    deferred.submit = submit_marked


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fits", type=int, default=20)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--libs", default="sklearn,lightgbm,xgboost")
    args = ap.parse_args()
    import roost
    from roost.registry import deferred

    tmp = tempfile.mkdtemp()
    os.chdir(tmp)
    roost.init(os.path.join(tmp, "ws"))
    roost.use_workspace(os.path.join(tmp, "ws"))
    roost.autolog(silent=True)
    all_fits = fits(args.rows)
    m = Marks()
    instrument(m)
    print(f"load {'/'.join(f'{x:.1f}' for x in os.getloadavg())}; {args.fits} fits each; ms, medians")
    for lib in args.libs.split(","):
        fit = all_fits[lib]
        fit()
        deferred.wait()
        rel: dict[tuple[str, str], list[float]] = defaultdict(list)
        cpu: dict[tuple[str, str], list[float]] = defaultdict(list)
        fit_ms, done_ms = [], []
        for _ in range(args.fits):
            m.events.clear()
            fit()
            deferred.wait()
            m.mark("complete")
            ev = list(m.events)
            t0 = [t for n, _th, t, _c in ev if n == "fit ]"][-1]  # the outermost fit (a nested one returns first)
            ts = next(t for n, _th, t, _c in ev if n == "fit [")
            fit_ms.append((t0 - ts) * 1e3)
            stack: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
            seen: dict[tuple[str, str], int] = defaultdict(int)
            for name, thread, t, c in ev:
                th = thread.replace("roost-autolog-", "").replace("roost-", "").replace("MainThread", "main")
                base = name[:-2] if name[-2:] in (" [", " ]") else name
                if name.endswith(" ]"):
                    label, c0 = stack[(base, th)].pop()
                    rel[(label + " end", th)].append((t - t0) * 1e3)
                    cpu[(label, th)].append((c - c0) * 1e3)
                    continue
                seen[(base, th)] += 1
                label = f"{base} #{seen[(base, th)]}" if seen[(base, th)] > 1 else base
                if name.endswith(" ["):
                    stack[(base, th)].append((label, c))
                    rel[(label + " start", th)].append((t - t0) * 1e3)
                else:
                    rel[(label, th)].append((t - t0) * 1e3)
            done_ms.append(rel[("complete", "main")][-1])
        med = statistics.median
        print(f"\n{lib}: fit {med(fit_ms):.1f} ms wall; run complete {med(done_ms):+.2f} ms after fit returns")
        print(f"  {'event (thread)':<52} {'at ms':>8} {'CPU ms':>7}")
        for (name, th), xs in sorted(rel.items(), key=lambda kv: med(kv[1])):
            if len(xs) < args.fits // 2:
                continue
            c = ""
            if name.endswith(" end") and (name[:-4], th) in cpu:
                c = f"{med(cpu[(name[:-4], th)]):7.2f}"
            print(f"  {name + ' (' + th + ')':<52} {med(xs):8.2f} {c:>7}")


if __name__ == "__main__":
    main()
