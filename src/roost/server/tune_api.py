"""The tuning service (roost.tune.service) inside the team server, at /api/v1/tune, behind the server's accounts.

Who may do what: a study belongs to the experiment its tuning run and trials log into (the `experiment` attr the
runner stores on it), so it takes that experiment's roles — reading a study needs read on the experiment; creating
one, asking, telling, reporting, adding points and abandoning need edit (what logging its trials' runs needs
anyway). A study created without an experiment (a bare ask/tell client) is guarded like the stored objects it is:
the role on kind 'object' named 'tune.study', as /api/v1/objects guards that kind. Every write is audited by the
server's audit middleware (each is a POST).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute

from roost.server import permissions
from roost.server.common import who
from roost.server.settings import ServerSettings
from roost.tune.engine import STUDY, Engine
from roost.tune.service import Handlers, routes

OBJECT_KIND = "tune.study"  # the permission name of studies without an experiment: kind 'object', like /objects


class ServerHandlers(Handlers):
    """The service's handlers, each first checking the caller's role on the study's experiment."""

    def __init__(self, settings: ServerSettings) -> None:
        super().__init__(None)
        self.settings = settings
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        """The Engine over the server's store (made on first use, once per worker)."""
        with self._lock:
            if self._engine is None:
                from roost.registry.sqlstore import sql_store

                self._engine = Engine(sql_store(self.settings.store_url))
            return self._engine

    @staticmethod
    def resource(study: dict[str, Any] | None) -> tuple[str, str]:
        """(kind, name) whose roles guard `study`: its experiment, else the 'tune.study' objects."""
        exp = ((study or {}).get("attrs") or {}).get("experiment")
        if isinstance(exp, str) and exp:
            return "experiment", exp
        return "object", OBJECT_KIND

    def _check(self, request: Request, role: str, study: dict[str, Any] | None) -> None:
        kind, name = self.resource(study)
        permissions.require(self.engine.store, who(request), kind, name, role, self.settings.default_role)

    def _check_study(self, request: Request, role: str) -> None:
        """Require `role` on the study of the request's path (an unknown study is left to the handler: 404)."""
        from roost.registry import objects

        with self.engine.store.read() as s:
            study = objects.get(s, STUDY, request.path_params["sid"])
        if study is not None:
            self._check(request, role, study)

    def health(self, request: Request, raw: bytes) -> dict[str, Any]:
        """Liveness (for a signed-in account)."""
        who(request)
        return super().health(request, raw)

    def list_studies(self, request: Request, raw: bytes) -> dict[str, Any]:
        """The studies the caller may read."""
        ident = who(request)
        store, default = self.engine.store, self.settings.default_role
        readable: dict[tuple[str, str], bool] = {}
        out = []
        for study in self.engine.list_studies():
            key = self.resource(study)
            if key not in readable:
                role = permissions.role_on(store, ident, key[0], key[1], default)
                readable[key] = role != "none"
            if readable[key]:
                out.append(study)
        return {"studies": out}

    def create(self, request: Request, raw: bytes) -> dict[str, Any]:
        """Create a study: edit on the experiment its attrs name (else on the 'tune.study' objects)."""
        try:
            b = json.loads(raw) if raw.strip() else {}
        except (ValueError, RecursionError):
            b = {}  # the handler answers 422 for it, once the caller may create studies at all
        attrs = b.get("attrs") if isinstance(b, dict) else None
        self._check(request, "edit", {"attrs": attrs if isinstance(attrs, dict) else {}})
        return super().create(request, raw)

    def get_study(self, request: Request, raw: bytes) -> dict[str, Any]:
        """A study with its trials (read)."""
        self._check_study(request, "read")
        return super().get_study(request, raw)

    def ask(self, request: Request, raw: bytes) -> dict[str, Any]:
        """Lease trials (edit)."""
        self._check_study(request, "edit")
        return super().ask(request, raw)

    def add(self, request: Request, raw: bytes) -> dict[str, Any]:
        """Enqueue a point (edit)."""
        self._check_study(request, "edit")
        return super().add(request, raw)

    def tell(self, request: Request, raw: bytes) -> dict[str, Any]:
        """Finish a trial (edit)."""
        self._check_study(request, "edit")
        return super().tell(request, raw)

    def tell_many(self, request: Request, raw: bytes) -> dict[str, Any]:
        """Finish many trials (edit)."""
        self._check_study(request, "edit")
        return super().tell_many(request, raw)

    def report(self, request: Request, raw: bytes) -> dict[str, Any]:
        """An intermediate value (edit)."""
        self._check_study(request, "edit")
        return super().report(request, raw)

    def abandon(self, request: Request, raw: bytes) -> dict[str, Any]:
        """Fail a stopped job's running trials (edit)."""
        self._check_study(request, "edit")
        return super().abandon(request, raw)


def tune_routes(settings: ServerSettings) -> list[BaseRoute]:
    """The tuning service's routes over the server's store, each checking the caller's role first."""
    return list(routes(ServerHandlers(settings)))
