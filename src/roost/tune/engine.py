"""Studies and trials persisted in the repository store, with leased ask/tell/report that is safe across processes.

Persistence — why roost's object table and not Optuna's RDB storage:
* one record per study (`tune.study`/<id>) and one per trial (`tune.trial`/<id>/<number>) in the repository's
  `objects` table, so studies live in the workspace database next to the runs, survive restarts, and need no
  second schema or migration;
* every state change (ask, tell, report, lease renewal) is ONE write transaction that first locks the study row
  (BEGIN IMMEDIATE on SQLite, SELECT ... FOR UPDATE on PostgreSQL). Leases, client ids and the trial counter are
  fields of the same records, so "is this trial free?" and "hand it out" can never interleave between clients,
  threads, worker processes or two service processes — Optuna's storage has no compare-and-set for leases;
* Optuna still chooses every point: bridge.py rebuilds an in-memory Optuna study from these records for each
  decision, so its samplers and pruners see exactly the persisted history.

A trial is WAITING (added, not yet handed out), RUNNING (leased to a client until `lease_expires`), or finished:
COMPLETE, PRUNED or FAIL. A RUNNING trial whose lease expired is handed to the next asker with the same params.
Ask is idempotent per client id: a client holding a running trial gets that trial back (its lease renewed).
A tell is accepted once, from whoever holds or held the lease (the params are the same); a second tell conflicts.
"""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from roost.errors import ConfigError, ConflictError, NotFoundError
from roost.registry import objects
from roost.registry.store import Store, default_store
from roost.tune import samplers as S
from roost.tune.search_space import Space, point_key

STUDY, TRIAL = "tune.study", "tune.trial"
DEFAULT_LEASE_S = 600.0
MAX_ASK = 1000  # trials one batch ask may lease: each is sampled inside one store transaction
MAX_SEED = 2**32 - 1  # NumPy's (and so Optuna's samplers') seed range


def check_seed(seed: Any) -> None:
    """Refuse a seed the samplers would refuse at the first ask, after the study was stored."""
    if seed is not None and (seed.__class__ is not int or not 0 <= seed <= MAX_SEED):
        raise ConfigError(f"seed: must be an integer from 0 to {MAX_SEED}, got {str(seed)[:40]!r}")


def check_lease(lease_s: Any) -> None:
    """Refuse a lease that is not a positive, finite number of seconds (a NaN or infinite lease never expires)."""
    if lease_s is not None and (
        isinstance(lease_s, bool) or not isinstance(lease_s, (int, float)) or not math.isfinite(lease_s) or lease_s <= 0
    ):
        raise ConfigError(f"lease_s: must be a positive, finite number of seconds, got {str(lease_s)[:40]!r}")


FINISHED = ("COMPLETE", "PRUNED", "FAIL")
DIRECTIONS = ("minimize", "maximize")


class TellConflict(ConflictError):
    """A tell or report for a trial that is already finished; `stored` holds what was recorded."""

    def __init__(self, message: str, stored: dict[str, Any], hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.stored = stored


def _number(value: Any, what: str) -> float:
    """`value` as a float (NaN/inf allowed; the strings 'nan'/'inf' too), else a ConfigError naming `what`."""
    if isinstance(value, bool) or value is None:
        raise ConfigError(f"{what}: {value!r} is not a number")
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{what}: {value!r} is not a number") from None
    if not isinstance(value, (int, float)):
        raise ConfigError(f"{what}: {value!r} is not a number")
    return float(value)


def public(t: dict[str, Any]) -> dict[str, Any]:
    """A trial record as shown to clients."""
    keys = (
        "number",
        "state",
        "params",
        "value",
        "intermediate",
        "client_id",
        "lease_expires",
        "attempts",
        "reason",
        "attrs",
        "started",
        "finished",
    )
    return {k: t.get(k) for k in keys}


class Engine:
    """Ask/tell/report over one repository store; one instance per process is enough (it caches samplers)."""

    def __init__(self, store: Store | None = None, clock: Callable[[], float] = time.time) -> None:
        self.store = store or default_store("roost tune (its study tables)")
        self.clock = clock
        self._cache: dict[str, dict[str, Any]] = {}
        self._cache_lock = threading.Lock()

    # -- records ----------------------------------------------------------------------------------------
    @staticmethod
    def _put(s: Any, kind: str, name: str, spec: dict[str, Any], new: bool = False) -> None:
        """Insert or update one object row inside the caller's transaction."""
        objects.put(s, kind, name, spec, new)

    @staticmethod
    def _trial_name(sid: str, number: int) -> str:
        return f"{sid}/{number:07d}"

    def _lock_study(self, s: Any, sid: str, lock: bool = True) -> dict[str, Any]:
        """Load and lock a study row (the serialisation point of every change to that study)."""
        study = objects.get(s, STUDY, sid, lock=lock)
        if study is None:
            raise NotFoundError(f"study {sid!r} not found", hint="list studies with GET /studies")
        return study

    def _load_trials(self, s: Any, sid: str) -> list[dict[str, Any]]:
        """Every trial record of a study, by number."""
        return sorted(objects.specs_under(s, TRIAL, sid), key=lambda x: x["number"])

    def _space(self, study: dict[str, Any]) -> Space:
        """The parsed space of a study (cached per process)."""
        space: Space = self._entry(study)["space"]
        return space

    def _entry(self, study: dict[str, Any]) -> dict[str, Any]:
        """Per-process cache for a study: parsed space, sampler, pruner, grid order."""
        with self._cache_lock:
            e = self._cache.get(study["id"])
            if e is None:
                e = self._cache[study["id"]] = {"space": Space.parse(study["space"])}
            return e

    # -- studies ----------------------------------------------------------------------------------------
    def create_study(
        self,
        space: dict[str, Any] | Space,
        direction: str = "minimize",
        objective: str = "value",
        sampler: str = "auto",
        pruner: str | None = None,
        seed: int | None = None,
        max_trials: int | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        name: str | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a study; `auto` resolves to a concrete sampler now, from the space and `max_trials`."""
        sp = Space.parse(space)
        S.check_choice("direction", direction, DIRECTIONS)
        S.make_pruner(pruner)  # validates the name
        if max_trials is not None and (not isinstance(max_trials, int) or max_trials < 1):
            raise ConfigError(f"max_trials: must be a positive integer, got {max_trials!r}")
        check_lease(lease_s)
        check_seed(seed)
        used = S.resolve(sampler, sp, max_trials)
        reason = S.choose(sp, max_trials)[1] if sampler == "auto" else "requested"
        sid = uuid.uuid4().hex[:12]
        study = {
            "id": sid,
            "name": name or sid,
            "space": sp.to_spec(),
            "direction": direction,
            "objective": objective,
            "sampler": sampler,
            "sampler_used": used,
            "sampler_reason": reason,
            "pruner": pruner if pruner and pruner != "none" else None,
            "seed": int(seed) if seed is not None else random.randrange(2**31),
            "max_trials": max_trials,
            "lease_s": float(lease_s),
            "created": self.clock(),
            "next_number": 0,
            "attrs": attrs or {},
        }
        with self.store.write() as s:
            self._put(s, STUDY, sid, study, new=True)
        return study

    def list_studies(self) -> list[dict[str, Any]]:
        """Every study record."""
        return list(self.store.list_objects(STUDY).values())

    def resolve_study(self, prefix: str) -> str:
        """The full id of the study whose id is `prefix` or starts with it (unique), like run ids."""
        with self.store.read() as s:
            ids = objects.names_like(s, STUDY, prefix, limit=2)
        if len(ids) != 1:
            raise NotFoundError(
                f"study {prefix!r} " + ("is ambiguous" if ids else "not found"),
                hint="give more of the id; list studies with `roost tune show`",
            )
        return ids[0]

    def study(self, sid: str) -> dict[str, Any]:
        """A study with its trials, counts per state and best trial."""
        with self.store.read() as s:
            study = self._lock_study(s, sid, lock=False)
            trials = self._load_trials(s, sid)
        counts = dict.fromkeys(("WAITING", "RUNNING", *FINISHED), 0)
        for t in trials:
            counts[t["state"]] += 1
        best = self._best(study, trials)
        return {
            **study,
            "counts": counts,
            "best_trial": public(best) if best else None,
            "trials": [public(t) for t in trials],
        }

    @staticmethod
    def _best(study: dict[str, Any], trials: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The complete trial with the best finite value (earliest on ties)."""
        done = [t for t in trials if t["state"] == "COMPLETE" and t["value"] is not None and math.isfinite(t["value"])]
        if not done:
            return None
        sign = 1.0 if study["direction"] == "minimize" else -1.0
        return min(done, key=lambda t: (sign * t["value"], t["number"]))

    # -- ask --------------------------------------------------------------------------------------------
    def ask(self, sid: str, client_id: str | None = None, lease_s: float | None = None) -> dict[str, Any]:
        """Lease a trial: the client's own running one, an expired or waiting one, or a newly sampled one."""
        r = self.ask_many(sid, 1, client_id=client_id, lease_s=lease_s)
        trials = r.pop("trials")
        return {"trial": trials[0] if trials else None, **r}

    def ask_many(self, sid: str, n: int, client_id: str | None = None, lease_s: float | None = None) -> dict[str, Any]:
        """Lease up to `n` trials in ONE transaction: the client's own running ones first (so a retried ask gets
        the same trials back), then waiting or expired ones, then newly sampled ones (each sampled with the
        earlier ones of the batch shown as running, so TPE's constant liar spreads them out)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"n: must be a positive number of trials, got {str(n)[:40]!r}")
        if n > MAX_ASK:
            raise ConfigError(f"n: at most {MAX_ASK} trials per ask, got {n}", hint="ask in several batches")
        check_lease(lease_s)
        now = self.clock()
        with self.store.write() as s:
            study = self._lock_study(s, sid)
            trials = self._load_trials(s, sid)
            lease = float(lease_s or study["lease_s"])
            running = [t for t in trials if t["state"] == "RUNNING"]
            picks: list[dict[str, Any]] = []
            if client_id is not None:
                picks = [t for t in running if t.get("client_id") == client_id][:n]
            free = [t for t in trials if t["state"] == "WAITING"]
            free += sorted((t for t in running if t["lease_expires"] <= now), key=lambda t: t["lease_expires"])
            for t in free:
                if len(picks) >= n:
                    break
                if any(t is p for p in picks):
                    continue
                t["attempts"] = t.get("attempts", 0) + 1
                t["started"] = t.get("started") or now
                picks.append(t)
            for t in picks:
                t.update(state="RUNNING", client_id=client_id, lease_expires=now + lease)
                self._put(s, TRIAL, self._trial_name(sid, t["number"]), t)
            why = None
            want = n - len(picks)
            if want > 0:
                why = self._exhausted(study, trials)
                if why is None and study.get("max_trials") is not None:
                    want = min(want, study["max_trials"] - len(trials))
                points = self._sample_many(study, trials, want) if why is None else []
                if why is None and len(points) < want:
                    why = "the grid is exhausted: every point has been handed out"
                for params, sys_attrs in points:
                    t = self._new_trial(study, params, sys_attrs, client_id, now, lease)
                    self._put(s, TRIAL, self._trial_name(sid, t["number"]), t, new=True)
                    trials.append(t)
                    picks.append(t)
                if points:
                    self._put(s, STUDY, sid, study)
            if picks:
                return {"trials": [public(t) for t in picks], "done": False, "retry_after": None, "reason": None}
            pending = [t["lease_expires"] - now for t in trials if t["state"] == "RUNNING"]
            return {
                "trials": [],
                "done": not pending,
                "reason": why,
                "retry_after": max(0.0, min(pending)) if pending else None,
            }

    @staticmethod
    def _new_trial(
        study: dict[str, Any],
        params: dict[str, Any],
        sys_attrs: dict[str, Any],
        client_id: str | None,
        now: float,
        lease: float,
    ) -> dict[str, Any]:
        """A new running trial record numbered from the study's counter (which it advances)."""
        number = study["next_number"]
        study["next_number"] = number + 1
        return {
            "number": number,
            "state": "RUNNING",
            "params": params,
            "value": None,
            "intermediate": {},
            "system_attrs": sys_attrs,
            "attrs": {},
            "client_id": client_id,
            "lease_expires": now + lease,
            "attempts": 1,
            "reason": None,
            "started": now,
            "finished": None,
        }

    @staticmethod
    def _exhausted(study: dict[str, Any], trials: list[dict[str, Any]]) -> str | None:
        """Why no new trial may be sampled (budget used), or None."""
        if study.get("max_trials") is not None and len(trials) >= study["max_trials"]:
            return f"the budget of {study['max_trials']} trials is used"
        return None

    def _sample_many(
        self, study: dict[str, Any], trials: list[dict[str, Any]], n: int
    ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """The next `n` points from the study's sampler (grid: the first unvisited points in a seeded order);
        fewer when the grid runs out."""
        e = self._entry(study)
        space: Space = e["space"]
        if study["sampler_used"] == "grid":
            if "grid" not in e:
                pts = space.grid()
                random.Random(study["seed"]).shuffle(pts)
                e["grid"] = pts
            seen = {point_key(t["params"]) for t in trials}
            none: dict[str, Any] = {}
            return [(p, none) for p in e["grid"] if point_key(p) not in seen][:n]
        from roost.tune import bridge

        with self._cache_lock:
            if "sampler" not in e:
                # the first process to sample uses the study seed; later ones (restarts, workers) derive one
                k = study["next_number"]
                seed = study["seed"] if k == 0 else (study["seed"] * 1_000_003 + k * 7919 + len(self._cache)) % 2**31
                e["sampler"] = S.make_sampler(study["sampler_used"], space, seed)
                e["pruner"] = S.make_pruner(study.get("pruner"))
        return bridge.sample_many(study, space, trials, e["sampler"], n, e["pruner"])

    # -- add / tell / report ----------------------------------------------------------------------------
    def add_trial(
        self, sid: str, params: dict[str, Any], value: Any = None, attrs: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Add a point: with a value it is recorded as complete (warm start), without it waits to be asked."""
        now = self.clock()
        with self.store.write() as s:
            study = self._lock_study(s, sid)
            point = self._space(study).validate(params)
            number = study["next_number"]
            study["next_number"] = number + 1
            t = {
                "number": number,
                "state": "WAITING",
                "params": point,
                "value": None,
                "intermediate": {},
                "system_attrs": {},
                "attrs": attrs or {},
                "client_id": None,
                "lease_expires": None,
                "attempts": 0,
                "reason": None,
                "started": None,
                "finished": None,
            }
            if value is not None:
                self._finish(t, "complete", _number(value, "value"), None, now)
            self._put(s, TRIAL, self._trial_name(sid, number), t, new=True)
            self._put(s, STUDY, sid, study)
            return public(t)

    def _get_trial(self, s: Any, sid: str, number: int) -> dict[str, Any]:
        """One trial record (NotFoundError when absent)."""
        trial = (
            objects.get(s, TRIAL, self._trial_name(sid, number)) if isinstance(number, int) and number >= 0 else None
        )
        if trial is None:
            raise NotFoundError(f"study {sid!r} has no trial {number!r}", hint="ask for a trial first")
        return trial

    @staticmethod
    def _finish(t: dict[str, Any], state: str, value: float | None, reason: str | None, now: float) -> None:
        """Record a final state; a NaN or infinite objective becomes a failure, never a best."""
        state = state.lower()
        if state == "complete":
            if value is None:
                raise ConfigError("value: a complete trial needs a value", hint="or tell state 'fail'")
            if not math.isfinite(value):
                state, reason, value = "fail", f"objective is {value}", None
        elif value is not None and not math.isfinite(value):
            value = None
        t.update(state=state.upper(), value=value, reason=reason, finished=now, lease_expires=None)

    def tell(
        self,
        sid: str,
        number: int,
        value: Any = None,
        state: str = "complete",
        reason: str | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Finish a running trial with a value (complete) or as failed/pruned; a second tell conflicts."""
        state, val = self._tell_args(state, value)
        with self.store.write() as s:
            self._lock_study(s, sid)
            return self._tell_in(s, sid, number, val, state, reason, attrs, self.clock())

    @staticmethod
    def _tell_args(state: Any, value: Any) -> tuple[str, float | None]:
        """A tell's state (checked) and value (a float or None)."""
        st = str(state or "complete").lower()
        S.check_choice("state", st, ("complete", "fail", "pruned"))
        return st, None if value is None else _number(value, "value")

    def _tell_in(
        self,
        s: Any,
        sid: str,
        number: int,
        val: float | None,
        state: str,
        reason: str | None,
        attrs: dict[str, Any] | None,
        now: float,
    ) -> dict[str, Any]:
        """Finish one trial inside the caller's transaction (the study row already locked)."""
        t = self._get_trial(s, sid, number)
        self._check_running(sid, t, "told")
        if state == "pruned" and val is None:
            inter = t.get("intermediate") or {}
            val = inter[max(inter, key=int)] if inter else None
        self._finish(t, state, val, reason, now)
        t["attrs"] = {**(t.get("attrs") or {}), **(attrs or {})}
        self._put(s, TRIAL, self._trial_name(sid, number), t)
        return public(t)

    def tell_many(self, sid: str, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Finish many trials in ONE transaction; each result is {number, value, state?, reason?, attrs?}.

        Every result is checked before anything is written (a malformed one fails the whole batch); a result
        for an unknown or already finished trial gets {number, error, stored} in its place, the others are
        recorded, so a retried batch only reports conflicts for what the first attempt already recorded."""
        if not isinstance(results, list):
            raise ConfigError("results: must be a list of {number, value, state, reason, attrs}")
        checked = []
        for i, r in enumerate(results):
            if not isinstance(r, dict):
                raise ConfigError(f"results[{i}]: must be a mapping with number and value")
            extra = set(r) - {"number", "value", "state", "reason", "attrs"}
            if extra:
                raise ConfigError(
                    f"results[{i}].{sorted(extra)[0]}: unknown field", hint="number, value, state, reason, attrs"
                )
            n = r.get("number")
            if isinstance(n, bool) or not isinstance(n, int):
                raise ConfigError(f"results[{i}].number: must be a trial number, got {n!r}")
            try:
                state, val = self._tell_args(r.get("state"), r.get("value"))
            except ConfigError as exc:
                raise ConfigError(f"results[{i}].{exc.message}", hint=exc.hint) from None
            checked.append((n, val, state, r.get("reason"), r.get("attrs")))
        out: list[dict[str, Any]] = []
        now = self.clock()
        with self.store.write() as s:
            self._lock_study(s, sid)
            for n, val, state, reason, attrs in checked:
                try:
                    out.append(self._tell_in(s, sid, n, val, state, reason, attrs, now))
                except TellConflict as exc:
                    out.append({"number": n, "error": exc.message, "stored": exc.stored})
                except NotFoundError as exc:
                    out.append({"number": n, "error": exc.message, "stored": None})
        return out

    @staticmethod
    def _check_running(sid: str, t: dict[str, Any], verb: str) -> None:
        """Raise a conflict (with the stored outcome) unless the trial is running."""
        if t["state"] in FINISHED:
            raise TellConflict(
                f"trial {t['number']} of study {sid} was already {verb}: {t['state'].lower()}"
                + (f" with value {t['value']!r}" if t["value"] is not None else ""),
                stored={"number": t["number"], "state": t["state"], "value": t["value"], "reason": t.get("reason")},
                hint="each trial is told once; ask for a new trial",
            )
        if t["state"] != "RUNNING":
            raise TellConflict(
                f"trial {t['number']} of study {sid} has not been handed out yet",
                stored={"number": t["number"], "state": t["state"], "value": None},
                hint="ask for it first",
            )

    def report(self, sid: str, number: int, step: Any, value: Any, client_id: str | None = None) -> dict[str, Any]:
        """Record an intermediate value (renews the lease); returns the pruner's decision."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ConfigError(f"step: must be a non-negative integer, got {step!r}")
        val = _number(value, "value")
        now = self.clock()
        with self.store.write() as s:
            study = self._lock_study(s, sid)
            t = self._get_trial(s, sid, number)
            self._check_running(sid, t, "told")
            t.setdefault("intermediate", {})[str(step)] = val if math.isfinite(val) else None
            t["lease_expires"] = max(t.get("lease_expires") or 0.0, now + float(study["lease_s"]))
            prune = not math.isfinite(val)
            if study.get("pruner") and not prune:
                from roost.tune import bridge

                trials = self._load_trials(s, sid)
                trials[number] = t
                e = self._entry(study)
                with self._cache_lock:
                    if e.get("pruner") is None:
                        e["pruner"] = S.make_pruner(study["pruner"])
                prune, sys_attrs = bridge.should_prune(study, e["space"], trials, number, e["pruner"])
                t["system_attrs"] = {**(t.get("system_attrs") or {}), **sys_attrs}
            self._put(s, TRIAL, self._trial_name(sid, number), t)
            return {"prune": bool(prune), "number": number, "step": step}

    def abandon(self, sid: str, client_ids: list[str], reason: str = "interrupted") -> int:
        """Fail the running trials held by these clients (a stopped tuning job); returns how many."""
        now = self.clock()
        n = 0
        with self.store.write() as s:
            self._lock_study(s, sid)
            for t in self._load_trials(s, sid):
                if t["state"] == "RUNNING" and t.get("client_id") in client_ids:
                    self._finish(t, "fail", None, reason, now)
                    self._put(s, TRIAL, self._trial_name(sid, t["number"]), t)
                    n += 1
        return n
