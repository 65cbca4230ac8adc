"""`roost.tune.Client`: a small blocking client of the ask/tell service, safe to retry across service restarts.

Asks carry the client's id, so retrying an ask whose answer was lost returns the same trial; a retried tell that
meets 409 with the value it was sending counts as done. For cheap objectives, `ask(study, n=K)` and
`tell_many(study, results)` move K trials per round trip (one store transaction each), with the same retry rules.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, overload

from roost.errors import ConfigError, ConflictError, NotFoundError, RoostError

MAX_REASON = 10_000  # the service's limit on a failure reason (roost.tune.service.MAX_REASON): longer ones are cut


@dataclass
class Trial:
    """A leased trial: its study, number and params."""

    study: str
    number: int
    params: dict[str, Any]
    lease_expires: float | None = None
    attempts: int = 1
    raw: dict[str, Any] = field(default_factory=dict[str, Any], repr=False)


class ServiceConflict(ConflictError):
    """409 from the service; `stored` is the outcome already recorded."""

    def __init__(self, message: str, stored: dict[str, Any] | None, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.stored = stored or {}


def same_outcome(stored: dict[str, Any], state: str, value: float | None) -> bool:
    """Whether a stored outcome is the one a (retried) tell was sending."""
    nonfinite = state == "complete" and value is not None and not math.isfinite(value)
    expected = "FAIL" if nonfinite else state.upper()
    return stored.get("state") == expected and (expected != "COMPLETE" or stored.get("value") == value)


class Client:
    """Blocking HTTP client of `roost tune serve`."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:8765",
        client_id: str | None = None,
        token: str | None = None,
        timeout: float = 60.0,
        retries: int = 8,
    ) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.client_id = client_id or uuid.uuid4().hex
        self.retries = retries
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request, retried on connection errors and 5xx with backoff; maps 4xx to roost errors."""
        import httpx

        data = None if body is None else json.dumps(body)  # NaN is sent as NaN, the service records a failure
        delay = 0.1
        for attempt in range(self.retries + 1):
            try:
                r = self._http.request(method, path, content=data)
            except httpx.TransportError:
                if attempt == self.retries:
                    raise RoostError(
                        f"cannot reach the tuning service at {self.url}", hint="start it with `roost tune serve`"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if r.status_code >= 500 and attempt < self.retries:
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if r.status_code < 400:
                answer: dict[str, Any] = r.json()  # every service answer is a JSON object
                return answer
            try:
                err = r.json()
            except ValueError:
                err = {"error": r.text}
            msg, hint = err.get("error", r.text), err.get("hint")
            nested: Any = msg
            if isinstance(nested, dict):  # the team server's own answers (401, 403): {"error": {"message", "hint"}}
                msg, hint = str(nested.get("message", r.text)), nested.get("hint")
            if r.status_code == 404:
                raise NotFoundError(msg, hint)
            if r.status_code == 409:
                raise ServiceConflict(msg, err.get("stored"), hint)
            if r.status_code == 422:
                raise ConfigError(msg, hint)
            raise RoostError(f"tuning service: {r.status_code} {msg}", hint)
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One service request (retried like every other), for callers that need the raw answer."""
        return self._call(method, path, body)

    # -- API --------------------------------------------------------------------------------------------
    def create_study(
        self,
        space: dict[str, Any],
        direction: str = "minimize",
        objective: str = "value",
        sampler: str = "auto",
        prune: str | None = None,
        max_trials: int | None = None,
        seed: int | None = None,
        lease_s: float | None = None,
        name: str | None = None,
    ) -> str:
        """Create a study; returns its id."""
        body: dict[str, Any] = {"space": space, "direction": direction, "objective": objective, "sampler": sampler}
        for k, v in (
            ("prune", prune),
            ("max_trials", max_trials),
            ("seed", seed),
            ("lease_s", lease_s),
            ("name", name),
        ):
            if v is not None:
                body[k] = v
        return str(self._call("POST", "/studies", body)["id"])

    def study(self, study: str) -> dict[str, Any]:
        """The study with counts, best trial and history."""
        return self._call("GET", f"/studies/{study}")

    @overload
    def ask(self, study: str, lease_s: float | None = None, wait: bool = True, n: None = None) -> Trial | None: ...

    @overload
    def ask(self, study: str, lease_s: float | None = None, wait: bool = True, *, n: int) -> list[Trial]: ...

    def ask(
        self, study: str, lease_s: float | None = None, wait: bool = True, n: int | None = None
    ) -> Trial | None | list[Trial]:
        """Lease a trial; None when the study is done (with wait, sleeps while others hold the last trials).

        With `n`, leases up to n trials in one round trip and returns them as a list ([] when the study is done);
        a retried batch ask returns the trials this client already holds."""
        while True:
            body: dict[str, Any] = {"client_id": self.client_id}
            if lease_s is not None:
                body["lease_s"] = lease_s
            if n is not None:
                body["n"] = n
            r = self._call("POST", f"/studies/{study}/ask", body)
            got = r.get("trials") if n is not None else [r["trial"]] if r.get("trial") is not None else []
            if got:
                trials = [
                    Trial(study, t["number"], t["params"], t.get("lease_expires"), t.get("attempts", 1), t) for t in got
                ]
                return trials if n is not None else trials[0]
            if r.get("done") or not wait:
                return [] if n is not None else None
            time.sleep(min(max(r.get("retry_after") or 1.0, 0.05), 5.0))

    def tell(
        self, study: str, number: int, value: float | None = None, state: str = "complete", reason: str | None = None
    ) -> dict[str, Any]:
        """Finish a trial; a 409 repeating our own outcome (a retried tell) counts as success."""
        body: dict[str, Any] = {"value": value, "state": state, "client_id": self.client_id}
        if reason:
            body["reason"] = reason[:MAX_REASON]
        try:
            return self._call("POST", f"/studies/{study}/trials/{number}/tell", body)
        except ServiceConflict as exc:
            if same_outcome(exc.stored, state, value):
                return exc.stored
            raise

    def tell_many(self, study: str, results: Iterable[tuple[int, float] | dict[str, Any]]) -> list[dict[str, Any]]:
        """Finish many trials in one round trip: (number, value) pairs or {number, value, state, reason} dicts.

        A result the service had already recorded with the same outcome (a retried batch) counts as done; any
        other conflict raises ServiceConflict after the rest of the batch is recorded."""
        items: list[dict[str, Any]] = [
            {"number": r[0], "value": r[1]} if isinstance(r, tuple) else dict(r) for r in results
        ]
        for item in items:
            if isinstance(item.get("reason"), str):
                item["reason"] = item["reason"][:MAX_REASON]
        body = {"results": items, "client_id": self.client_id}
        out: list[dict[str, Any]] = self._call("POST", f"/studies/{study}/tell", body)["results"]
        for sent, got in zip(items, out):
            if "error" in got and not same_outcome(
                got.get("stored") or {}, str(sent.get("state", "complete")), sent.get("value")
            ):
                raise ServiceConflict(got["error"], got.get("stored"), "each trial is told once")
        return [(got.get("stored") or {}) if "error" in got else got for got in out]

    def report(self, study: str, number: int, step: int, value: float) -> bool:
        """Send an intermediate value; True when the trial should be pruned."""
        body = {"step": step, "value": value, "client_id": self.client_id}
        return bool(self._call("POST", f"/studies/{study}/trials/{number}/report", body)["prune"])

    def add_trial(self, study: str, params: dict[str, Any], value: float | None = None) -> dict[str, Any]:
        """Enqueue a point (or record a known result with `value`)."""
        body: dict[str, Any] = {"params": params}
        if value is not None:
            body["value"] = value
        return self._call("POST", f"/studies/{study}/trials", body)

    def optimize(self, study: str, fn: Callable[[dict[str, Any]], float], n_trials: int | None = None) -> int:
        """Ask/evaluate/tell until the study is done (or n_trials here); an exception fails that trial."""
        n = 0
        while n_trials is None or n < n_trials:
            t = self.ask(study)
            if t is None:
                break
            try:
                value = float(fn(t.params))
            except Exception as exc:  # noqa: BLE001 - a failing evaluation fails the trial, not the loop
                self.tell(study, t.number, state="fail", reason=f"{type(exc).__name__}: {exc}")
            else:
                self.tell(study, t.number, value)
            n += 1
        return n
