"""Tuning through a team server: the Engine's methods over the server's ask/tell service (/api/v1/tune), and
`open_engine`, the one place that picks it or the local SQL Engine, so the runner, its workers and the CLI drive
both the same way.

A workspace that is a server client (ROOST_SERVER + ROOST_TOKEN, or `roost login`) keeps its studies on the server:
the service there runs the same Engine over the server's store, in one transaction per request, so leases and
tells stay safe across the clients of a whole team. Trials' runs log through the RestStore like any other run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from roost.errors import NotFoundError
from roost.tune.client import Client, ServiceConflict, same_outcome
from roost.tune.engine import Engine

if TYPE_CHECKING:
    from roost.tune.search_space import Space

log = logging.getLogger(__name__)
TUNE_PATH = "/api/v1/tune"  # where the team server mounts the service (roost.server.tune_api)


def open_engine() -> AnyEngine:
    """The tuning engine of this workspace: the server's service for a server client, else the SQL Engine."""
    from roost.registry import credentials

    found = credentials.server()
    if found is not None:
        return RemoteEngine(found[0], found[1])
    return Engine()


class RemoteEngine:
    """The Engine's ask/tell/report API answered by a team server's tuning service (same arguments, same records)."""

    def __init__(self, server: str, token: str | None = None, timeout: float = 60.0) -> None:
        self.url = server.rstrip("/") + TUNE_PATH
        self._client = Client(self.url, token=token, timeout=timeout)

    def __repr__(self) -> str:
        return f"RemoteEngine({self.url!r})"

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def create_study(
        self,
        space: dict[str, Any] | Space,
        direction: str = "minimize",
        objective: str = "value",
        sampler: str = "auto",
        pruner: str | None = None,
        seed: int | None = None,
        max_trials: int | None = None,
        lease_s: float | None = None,
        name: str | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a study on the server; its record."""
        spec = space if isinstance(space, dict) else space.to_spec()
        body: dict[str, Any] = {"space": spec, "direction": direction, "objective": objective, "sampler": sampler}
        optional = {"prune": pruner, "seed": seed, "max_trials": max_trials, "lease_s": lease_s, "name": name}
        body.update({k: v for k, v in optional.items() if v is not None})
        if attrs:
            body["attrs"] = attrs
        return self._client.call("POST", "/studies", body)

    def list_studies(self) -> list[dict[str, Any]]:
        """Every study record the caller may read."""
        studies: list[dict[str, Any]] = self._client.call("GET", "/studies")["studies"]
        return studies

    def resolve_study(self, prefix: str) -> str:
        """The full id of the study whose id is `prefix` or starts with it (unique)."""
        ids = [s["id"] for s in self.list_studies() if str(s["id"]).startswith(prefix)]
        if prefix in ids:
            return prefix
        if len(ids) != 1:
            raise NotFoundError(
                f"study {prefix!r} " + ("is ambiguous" if ids else "not found"),
                hint="list studies with `roost tune show`",
            )
        return str(ids[0])

    def study(self, sid: str) -> dict[str, Any]:
        """The study with its trials, counts and best trial."""
        return self._client.call("GET", f"/studies/{sid}")

    def ask(self, sid: str, client_id: str | None = None, lease_s: float | None = None) -> dict[str, Any]:
        """Lease one trial: {trial | None, done, retry_after}."""
        return self._client.call("POST", f"/studies/{sid}/ask", self._ask_body(client_id, lease_s))

    def ask_many(self, sid: str, n: int, client_id: str | None = None, lease_s: float | None = None) -> dict[str, Any]:
        """Lease up to `n` trials: {trials, done, retry_after}."""
        return self._client.call("POST", f"/studies/{sid}/ask", {**self._ask_body(client_id, lease_s), "n": n})

    def _ask_body(self, client_id: str | None, lease_s: float | None) -> dict[str, Any]:
        body: dict[str, Any] = {"client_id": client_id or self._client.client_id}
        if lease_s is not None:
            body["lease_s"] = lease_s
        return body

    def add_trial(
        self, sid: str, params: dict[str, Any], value: Any = None, attrs: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Enqueue a point, or record a known result."""
        body: dict[str, Any] = {"params": params}
        if value is not None:
            body["value"] = value
        if attrs:
            body["attrs"] = attrs
        return self._client.call("POST", f"/studies/{sid}/trials", body)

    def tell(
        self,
        sid: str,
        number: int,
        value: Any = None,
        state: str = "complete",
        reason: str | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Finish a trial; a retried tell that meets its own stored outcome counts as done."""
        body: dict[str, Any] = {"value": value, "state": state}
        if reason:
            body["reason"] = reason
        if attrs:
            body["attrs"] = attrs
        try:
            return self._client.call("POST", f"/studies/{sid}/trials/{number}/tell", body)
        except ServiceConflict as exc:
            if same_outcome(exc.stored, state, value):
                return exc.stored
            raise

    def tell_many(self, sid: str, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Finish many trials in one request (one server transaction)."""
        out: list[dict[str, Any]] = self._client.call("POST", f"/studies/{sid}/tell", {"results": results})["results"]
        return out

    def report(self, sid: str, number: int, step: Any, value: Any, client_id: str | None = None) -> dict[str, Any]:
        """Record an intermediate value: {prune, number, step}."""
        return self._client.call("POST", f"/studies/{sid}/trials/{number}/report", {"step": step, "value": value})

    def abandon(self, sid: str, client_ids: list[str], reason: str = "interrupted") -> int:
        """Fail the running trials held by these clients; returns how many."""
        body = {"client_ids": client_ids, "reason": reason}
        return int(self._client.call("POST", f"/studies/{sid}/abandon", body)["failed"])


AnyEngine = Engine | RemoteEngine  # what the runner, its workers and objectives drive
