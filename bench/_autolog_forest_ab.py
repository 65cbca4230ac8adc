"""The forest's training predictions beside its fit or after it (issue 38): bench/autolog.py's 10k-row forest fit,
plain and autologged both ways (beside it forced, whatever the load), alternated in one process. For the fit's
thread also its time on a CPU, waiting for one (runqueue) and blocked (neither: the GIL, I/O), from
/proc/thread-self/schedstat (Linux).

    PYTHONPATH=$PWD/src .venv/bin/python bench/_autolog_forest_ab.py [--fits 14]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _autolog_steps import fits  # the same fits

warnings.filterwarnings("ignore")


def schedstat() -> tuple[float, float]:
    """(seconds on a CPU, seconds waiting for one) of this thread."""
    on_cpu, waiting, _slices = Path("/proc/thread-self/schedstat").read_text().split()
    return int(on_cpu) / 1e9, int(waiting) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fits", type=int, default=14)
    args = ap.parse_args()
    import roost
    from roost.autologging import forest
    from roost.registry import deferred

    tmp = tempfile.mkdtemp()
    os.chdir(tmp)
    roost.init(os.path.join(tmp, "ws"))
    roost.use_workspace(os.path.join(tmp, "ws"))
    fit = fits(10_000)["sklearn"]
    real = forest.spare_core
    fit()
    roost.autolog(silent=True)
    fit()
    deferred.wait()
    arms = ("plain", "after", "beside")
    ret: dict[str, list[float]] = {a: [] for a in arms}
    done: dict[str, list[float]] = {a: [] for a in arms}
    blocked: dict[str, list[float]] = {a: [] for a in arms}
    queued: dict[str, list[float]] = {a: [] for a in arms}
    print(f"load {os.getloadavg()[0]:.2f}; {args.fits} fits per arm")
    for i in range(args.fits):
        for arm in arms if i % 2 else arms[::-1]:
            if arm == "plain":
                roost.autolog(disable=True)
            # beside: whatever the load (forest.spare_core says no on a busy machine); after: never
            forest.spare_core = (lambda: True) if arm == "beside" else (lambda: False)
            c0, q0 = schedstat()
            t0 = time.perf_counter()
            fit()
            t1 = time.perf_counter()
            c1, q1 = schedstat()
            deferred.wait()
            t2 = time.perf_counter()
            if arm == "plain":
                roost.autolog(silent=True)
            ret[arm].append(t1 - t0)
            done[arm].append(t2 - t0)
            queued[arm].append(q1 - q0)
            blocked[arm].append((t1 - t0) - (c1 - c0) - (q1 - q0))
    forest.spare_core = real
    med = statistics.median
    plain = med(ret["plain"])
    for arm in ("after", "beside"):
        print(
            f"{arm:>6}: fit returns {(med(ret[arm]) - plain) * 1e3:+.1f} ms ({med(ret[arm]) / plain - 1:+.2%}), run"
            f" complete {(med(done[arm]) - plain) * 1e3:+.1f} ms ({med(done[arm]) / plain - 1:+.2%}); the fit's"
            f" thread waited for a CPU {med(queued[arm]) * 1e3:.1f} ms, blocked {med(blocked[arm]) * 1e3:.1f} ms"
        )
    print(
        f" plain: {plain * 1e3:.1f} ms; the fit's thread waited for a CPU {med(queued['plain']) * 1e3:.1f} ms,"
        f" blocked {med(blocked['plain']) * 1e3:.1f} ms; load {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
