"""`model: auto`'s cross-validation under a time budget, step by step (budget.plan re-made as times come in).

Before each candidate's cross-validation the plan is made again over the candidates not yet tried, with the time
left and the estimates so far, and its most valuable candidate goes next (the best child first); after each fold
the candidate's estimate becomes its measured seconds per fold, it goes on only while its remaining folds fit, and
the other candidates of its kind (LightGBM, networks) take the same correction. A candidate that did not fit at
first is tried again whenever the plan made later fits it: no step whose estimate fits in the time left is skipped.
The clock is the Budget's, so the schedule can be tested on synthetic costs and a synthetic clock.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from roost.training.budget import CV_SLACK, SAFETY, Budget, plan

log = logging.getLogger(__name__)


@dataclass
class Schedule:
    """The cross-validation steps of one auto run under `budget`.

    `fold_costs[c]`: estimated seconds of one of c's fold models (from its child's fit, scaled by rows);
    `values[c]`: its expected value to the blend (budget.candidate_values); `fits`: fold models per candidate
    (folds × rounds); `exports[c]`: seconds one of c's members adds to the package's export; `refit_ratio`: a refit
    fold model's rows / a fold model's; `refit`: whether a refit may be planned; `kinds[c]`: the framework whose
    measured corrections c shares (default: c alone); `held`: seconds no step may use (the package's last steps)."""

    budget: Budget
    fold_costs: dict[str, float]
    values: dict[str, float]
    fits: int
    exports: dict[str, float] = field(default_factory=dict)
    refit_ratio: float = 1.25
    refit: bool = True
    kinds: dict[str, str] = field(default_factory=dict)
    held: float = 0.0  # seconds kept for the final package's fixed steps (budget.final_reserve)
    spent: dict[str, float] = field(default_factory=dict)  # seconds of each finished cross-validation
    cut: dict[str, str] = field(default_factory=dict)  # candidates whose cross-validation was stopped, and why
    log: list[str] = field(default_factory=list)  # each decision with its estimate and the time left

    def __post_init__(self) -> None:
        self.first = dict(self.fold_costs)  # the estimates before any fold ran
        self.est = dict(self.fold_costs)
        self.folds_done: dict[str, list[float]] = {}
        self.current: str | None = None
        self.contention0 = self.budget.contention()

    # --- choosing ---------------------------------------------------------------------------------------------
    def untried(self) -> list[str]:
        """Candidates neither cross-validated nor cut."""
        return [c for c in self.fold_costs if c not in self.spent and c not in self.cut and c != self.current]

    def planned(self, going: dict[str, float] | None = None) -> tuple[str, ...]:
        """The plan over the untried candidates with the time left (the finished ones in it at their cost);
        `going`: the started candidate with the seconds its remaining folds need, competing with them."""
        costs = {c: self.est[c] for c in self.untried()}
        costs |= {c: s / self.fits for c, s in (going or {}).items()}
        if not costs:
            return ()
        p = plan(
            self.budget.left(),
            costs,
            self.values,
            self.fits,
            refit_ratio=self.refit_ratio,
            export_costs=self.exports,
            refit=self.refit,
            done=dict(self.spent),
            every=list(self.fold_costs),
            fewer_folds=False,
            kept=self.reserved(),
        )
        return p.cv

    def next(self) -> str | None:
        """The candidate to cross-validate next: the most valuable of the plan made now; None when none fits."""
        chosen = self.planned()
        if not chosen:
            return None
        name = max(chosen, key=lambda c: (self.values.get(c, 0.0), -self.est[c]))
        self._say(f"cross-validate {name}: estimated {self.estimate(name):.1f} s")
        self.current = name
        self.folds_done[name] = []
        return name

    def estimate(self, name: str) -> float:
        """Seconds the cross-validation of `name` is estimated to take (all its fold models)."""
        return self.fits * self.est[name]

    def left(self) -> float:
        """Seconds the steps may use: the budget's time left less `held` (grown with the contention since)."""
        return self.budget.left() - self.reserved()

    def reserved(self) -> float:
        """`held`, scaled by how the run's contention moved since the schedule was made (a machine that got busier
        exports slower too)."""
        return self.held * max(1.0, self.budget.contention() / self.contention0)

    # --- running ----------------------------------------------------------------------------------------------
    def reserve(self, with_current: bool = True) -> float:
        """Seconds kept for exporting the members of the finished cross-validations (and of the current one)."""
        names = [*self.spent, *([self.current] if with_current and self.current else [])]
        return sum(self.exports.get(c, 0.0) * self.fits for c in names)

    def fold_allowance(self) -> float:
        """Seconds the current candidate's next fold model may take: CV_SLACK × its estimate + 1 s, or its even share
        of what its remaining folds may use of the time left where that is more, never more than all of it
        (math.inf without a budget)."""
        if self.budget.seconds is None:
            return math.inf
        assert self.current is not None
        room = max(0.0, self.left() * SAFETY - self.reserve())
        remaining = self.fits - len(self.folds_done[self.current])
        return min(room, max(CV_SLACK * self.est[self.current] + 1.0, room / max(remaining, 1)))

    def fold_done(self, seconds: float) -> bool:
        """Record one finished fold model of the current candidate; True to go on, False when its remaining folds
        (at its measured seconds per fold) no longer fit in the time left, or the plan made now prefers other
        candidates to them: it is cut, and its time freed."""
        name = self.current
        assert name is not None
        times = self.folds_done[name]
        times.append(seconds)
        self._correct(name, sum(times) / len(times))
        remaining = (self.fits - len(times)) * self.est[name]
        if remaining <= 0 or self.budget.seconds is None:
            return True
        room = self.left() * SAFETY - self.reserve()
        if remaining > room:
            self.stop(f"its {self.fits - len(times)} remaining folds need {remaining:.0f} s, {room:.0f} s left")
            return False
        if name not in self.planned({name: remaining}):
            self.stop(f"its {self.fits - len(times)} remaining folds need {remaining:.0f} s, better spent on others")
            return False
        return True

    def finished(self) -> None:
        """The current candidate's cross-validation completed."""
        assert self.current is not None
        self.spent[self.current] = sum(self.folds_done[self.current])
        self._say(f"{self.current} cross-validated in {self.spent[self.current]:.1f} s")
        self.current = None

    def stop(self, why: str) -> None:
        """The current candidate's cross-validation is cut (`why`); it leaves the plan."""
        assert self.current is not None
        self.cut[self.current] = why
        self._say(f"cut the cross-validation of {self.current}: {why}")
        self.current = None

    def _correct(self, name: str, per_fold: float) -> None:
        """`name`'s estimate per fold becomes the measured one; the untried candidates of its kind scale by the
        same measured / first-estimate ratio."""
        ratio = per_fold / max(self.first[name], 1e-9)
        self.est[name] = per_fold
        kind = self.kinds.get(name, name)
        for c in self.untried():
            if self.kinds.get(c, c) == kind:
                self.est[c] = self.first[c] * ratio

    # --- reporting --------------------------------------------------------------------------------------------
    def skipped(self) -> list[str]:
        """What the budget left out of cross-validation, one line each, with its estimate and the time left."""
        left = self.budget.left()
        out = [f"cross-validation of {c} ({why})" for c, why in self.cut.items()]
        out += [
            f"cross-validation of {c} (estimated {self.estimate(c):.0f} s, {max(0.0, left):.0f} s left)"
            for c in self.untried()
        ]
        return out

    def _say(self, what: str) -> None:
        line = f"{what} ({self.budget.left():.1f} s left)"
        self.log.append(line)
        log.info("auto budget: %s", line)
