"""Every role × every API endpoint × resource kind, on SQLite and PostgreSQL, against the independent table in
matrix_table.py (issue 31, "Done when"): an allowed request answers 2xx, a refused one 403/404 and changes nothing
(every table but the audit log and token bookkeeping, and the artifact folder, compared before and after); a
listing shows a resource exactly to those who may read it; without credentials every endpoint answers 401.

Principals: for each role none/read/edit/manage, granted on one kind's resource (experiment, model, object) either
to the account itself or to a group it belongs to (24 accounts), one account without any grant and an admin — each
walked with the server's default role 'none' and 'read'. A route of the app that the table does not cover fails.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from matrix_table import OB as O
from matrix_table import Case, E, M, Req, all_cases

ROLES = ("none", "read", "edit", "manage")
KINDS = (E, M, O)
CASES = all_cases()
SKIP_TABLES = {"audit_events", "access_tokens", "idempotency_keys", "alembic_version"}


def rank(role: str) -> int:
    return ROLES.index(role)


@dataclass(frozen=True)
class Principal:
    """A test account: `role` granted on the `kind` resource (via its own grant or its group's), or nothing."""

    name: str
    token: str
    kind: str | None = None
    role: str | None = None
    via: str | None = None  # 'account' | 'group'
    admin: bool = False

    def role_on(self, kind: str, default: str) -> str:
        """The role the issue's rules give this principal on `kind`'s resource (independent of the server)."""
        if self.admin:
            return "manage"
        if self.kind == kind and self.role is not None:
            return self.role
        return default

    @property
    def grantee(self) -> str:
        return f"group:g-{self.name}" if self.via == "group" else self.name


class World:
    """One store with the resources the table names, its principals and two apps (default role none / read)."""

    def __init__(self, store_url: str, root: Path) -> None:
        from starlette.testclient import TestClient

        from roost.registry import accounts, grants, modelreg
        from roost.registry import mlflow_compat as mc
        from roost.server.app import create_server_app
        from roost.server.settings import ServerSettings

        self.root = root / "artifacts"
        self.root.mkdir(parents=True)
        self.clients: dict[str, Any] = {}
        for default in ("none", "read"):
            settings = ServerSettings(store_url, f"file://{self.root}", default_role=default)
            app = create_server_app(settings)
            self.clients[default] = TestClient(
                app, base_url="http://127.0.0.1", client=("127.0.0.1", 40000), follow_redirects=False
            )
        self.store = settings.store()
        self._n = itertools.count()
        self.exp, self.model, self.okind = "mx-exp", "mx-model", "mx-kind"
        self.eid = self.store.get_or_create_experiment(self.exp)
        self.run0 = self.new_run()
        self.store.log_batch(self.run0, params={"mark": "run0"}, tags={"t": "0"}, metrics=[("m", 0.5, 0, 1.0)])
        self.source = f"file://{self.root}/{self.eid}/{self.run0}/artifacts/model"
        mc.create_registered_model(self.store, self.model)
        for _ in range(2):
            modelreg.register(self.store, self.model, self.source, self.run0)
        modelreg.set_alias(self.store, self.model, 1, "champion")
        self.store.put_object(self.okind, "o1", {"a": 0})
        self.logged = self.new_logged()

        self.principals: list[Principal] = []
        for role, via, kind in itertools.product(ROLES, ("account", "group"), KINDS):
            name = f"{role}-{via}-{kind}"
            accounts.create_user(self.store, name, None)
            p = Principal(name, accounts.create_token(self.store, name).token, kind, role, via)
            if via == "group":
                grants.create_group(self.store, f"g-{name}")
                grants.add_member(self.store, f"g-{name}", name)
            grants.grant(self.store, p.grantee, kind, self.resource(kind), role)
            self.principals.append(p)
        for name, admin in (("nogrant", False), ("boss", True)):
            accounts.create_user(self.store, name, None, admin=admin)
            self.principals.append(Principal(name, accounts.create_token(self.store, name).token, admin=admin))

    def resource(self, kind: str) -> str:
        return {E: self.exp, M: self.model, O: self.okind}[kind]

    # -- fresh values and targets (destructive cases act on their own) --------------------------------------
    def fresh(self) -> str:
        return f"f{next(self._n)}"

    def step(self) -> int:
        return next(self._n)

    def run_row(self, run_id: str | None = None) -> dict[str, Any]:
        import uuid

        rid = run_id or uuid.uuid4().hex
        return {"id": rid, "experiment_id": self.eid, "name": None, "start_time": None, "git_commit": None}

    def new_run(self, finished: bool = False, deleted: bool = False) -> str:
        import uuid

        from roost.registry.store import utcnow

        rid, now = uuid.uuid4().hex, utcnow()
        art = f"file://{self.root}/{self.eid}/{rid}/artifacts"
        row = {
            "id": rid, "experiment_id": self.eid, "name": "r", "status": "FINISHED" if finished else "RUNNING",
            "start_time": now, "end_time": now if finished else None, "heartbeat_at": now, "user": "x",
            "git_commit": None, "git_dirty": None, "source": None, "parent_run_id": None, "artifact_uri": art,
        }  # fmt: skip
        self.store.insert_run(row, {}, {})
        folder = self.root / str(self.eid) / rid / "artifacts" / "model"
        folder.mkdir(parents=True)
        (folder / "MLmodel").write_text("flavors: {}\n")
        if deleted:
            from roost.registry import retention

            retention.change_stage(self.store, "delete", run_ids=[rid], force=True)
        return rid

    def new_tag(self) -> str:
        key = self.fresh()
        self.store.log_batch(self.run0, tags={key: "v"})
        return key

    def new_alias(self) -> str:
        from roost.registry import modelreg

        alias = self.fresh()
        modelreg.set_alias(self.store, self.model, 1, alias)
        return alias

    def new_object(self) -> str:
        name = self.fresh()
        self.store.put_object(self.okind, name, {"a": 1})
        return name

    def new_artifact(self) -> str:
        rel = f"gone/{self.fresh()}.txt"
        path = self.root / str(self.eid) / self.run0 / "artifacts" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
        return rel

    def new_logged(self) -> str:
        mid = f"m-{self.fresh()}"
        spec = {
            "model_id": mid, "experiment_id": self.eid, "name": "lm", "source_run_id": self.run0, "path": "model",
            "model_type": None, "status": "LOGGED_MODEL_PENDING", "created_ms": 1, "updated_ms": 1, "params": {},
            "tags": {"k": "v"},
        }  # fmt: skip
        self.store.put_object("mlflow.logged_model", mid, spec)
        return mid

    def new_model(self, p: Principal) -> str:
        """A fresh registered model on which `p` holds what it holds on mx-model."""
        from roost.registry import grants
        from roost.registry import mlflow_compat as mc

        name = self.fresh()
        mc.create_registered_model(self.store, name)
        if p.kind == M and p.role is not None:
            grants.grant(self.store, p.grantee, M, name, p.role)
        return name

    def new_version(self) -> int:
        from roost.registry import modelreg

        return modelreg.register(self.store, self.model, self.source, self.run0).version

    # -- what a refused write must leave alone ------------------------------------------------------------------
    def snapshot(self) -> dict[str, str]:
        from sqlalchemy import inspect, text

        engine = self.store.engine
        out = {}
        with engine.connect() as c:
            for t in sorted(set(inspect(engine).get_table_names()) - SKIP_TABLES):
                rows = sorted(repr(tuple(r)) for r in c.execute(text(f'SELECT * FROM "{t}"')))
                out[t] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
        files = sorted(
            (str(f.relative_to(self.root)), hashlib.sha256(f.read_bytes()).hexdigest())
            for f in self.root.rglob("*")
            if f.is_file()
        )
        out["<artifacts>"] = hashlib.sha256(repr(files).encode()).hexdigest()
        return out

    def send(self, default: str, req: Req, token: str | None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.clients[default].request(
            req.method, req.url, json=req.json, content=req.content, params=req.params, headers=headers
        )


def _new_pg_database(base_url: str) -> str:
    import psycopg

    name = f"roost_matrix_{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(base_url.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return f"{base_url}/{name}"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp(f"matrix-{request.param}")
    if request.param == "postgresql":
        url = _new_pg_database(request.getfixturevalue("postgres_server"))
    else:
        url = f"sqlite:///{root / 'server.db'}"
    with pytest.MonkeyPatch.context() as mp:
        for var in [v for v in os.environ if v.startswith("ROOST_")]:
            mp.delenv(var)
        started = time.perf_counter()
        w = World(url, root)
        w.setup_s = time.perf_counter() - started
        yield w


def expected(case: Case, p: Principal, default: str) -> str:
    """'ok', 'refused', 'unknown' (404) or 'unsupported' (501), from the table alone."""
    needs = case.needs
    if needs in ("public", "signed"):
        return "ok"
    if needs == "admin":
        return "ok" if p.admin else "refused"
    if isinstance(needs, str):
        return needs
    return "ok" if all(rank(p.role_on(kind, default)) >= rank(role) for kind, role in needs) else "refused"


def _app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every API route the app declares (Mounts walked), HEAD aside (it is GET's)."""
    from starlette.routing import Mount, Route

    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for r in routes:
            if isinstance(r, Mount) and (prefix + r.path).startswith(("/api", "/admin", "/ajax-api")):
                walk(list(r.routes), prefix + r.path)
            elif isinstance(r, Route) and (prefix + r.path).startswith(("/api/", "/admin/", "/ajax-api/")):
                found.update((m, prefix + r.path) for m in r.methods or () if m != "HEAD")

    walk(list(app.routes), "")
    return found


def test_the_table_covers_every_route(world: World) -> None:
    declared = _app_routes(world.clients["none"].app)
    covered = {(c.method, c.route) for c in CASES}
    assert declared - covered == set(), "routes without a row in matrix_table.py"
    assert covered - declared == set(), "rows of matrix_table.py for routes the app does not have"
    assert len(declared) > 150


def walkers(world: World, case: Case, default: str) -> list[Principal]:
    """The principals worth walking on `case` (to keep the matrix fast): all of them on the kinds the case names;
    of the other kinds the managers (a grant on the wrong kind must not help); the account without grants; the
    admin. Under the default role 'read', grants of read and above on a single-kind case answer as under 'none'
    (walked there), so only the explicit 'none' grants and those without a grant on that kind are walked."""
    kinds = {k for k, _ in case.needs} if isinstance(case.needs, tuple) else set()
    if case.shows:
        kinds.add(case.shows[0])
    out = []
    for p in world.principals:
        if p.kind is None:
            out.append(p)
        elif p.kind in kinds:
            single = len(kinds) == 1 and default == "read" and p.role != "none"
            lite = case.lite and p.via == "group"
            if not single and not lite:
                out.append(p)
        elif p.role == "manage" and p.via == ("group" if case.lite else "account"):
            out.append(p)
    return out


@pytest.mark.parametrize("default", ["none", "read"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_role_on_the_endpoint(world: World, case: Case, default: str) -> None:
    wrong = []
    for p in walkers(world, case, default):
        want = expected(case, p, default)
        req = case.build(world, p)
        before = world.snapshot() if case.writes and want != "ok" else None
        r = world.send(default, req, p.token)
        got = r.status_code
        if want == "ok":
            good = got == case.ok if case.ok else 200 <= got < 300
        else:
            good = got in {"refused": (403, 404), "unknown": (404,), "unsupported": (501,)}[want]
        if not good:
            wrong.append(f"{p.name}: want {want}, got {got} {r.text[:160]}")
            continue
        if case.shows is not None and want == "ok":
            kind, marker = case.shows
            marker = {"RUN0": world.run0, "LOGGED": world.logged}.get(marker, marker)
            visible = marker in r.text
            if visible != (rank(p.role_on(kind, default)) >= 1):
                wrong.append(
                    f"{p.name}: {marker} {'shown' if visible else 'hidden'} with role {p.role_on(kind, default)}"
                )
        if before is not None:
            after = world.snapshot()
            changed = [t for t in before if before[t] != after[t]]
            if changed:
                wrong.append(f"{p.name}: refused with {got} but changed {changed}")
    assert not wrong, f"{case.id} (default role {default}):\n" + "\n".join(wrong)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_without_credentials_401(world: World, case: Case) -> None:
    p = world.principals[-1]  # the fresh targets of an admin's request
    req = case.build(world, p)
    before = world.snapshot() if case.writes else None
    r = world.send("none", req, None)
    if case.needs == "public":
        assert r.status_code == 200, r.text[:300]
    elif case.route.startswith("/admin/"):  # a page: the browser is sent to sign in
        assert (r.status_code, r.headers["location"]) == (303, "/login?next=%2Fadmin%2Faudit")
    else:
        assert r.status_code == 401, r.text[:300]
        assert r.headers["content-type"].startswith("application/json")
    if before is not None:
        assert world.snapshot() == before
