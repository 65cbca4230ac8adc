"""The permission table of the team server, written from issue 31's rules — never from the code under test.

read: see it. edit: log to runs, create runs, set tags, register versions, create aliases. manage: delete, restore
and archive runs, move or delete aliases, delete models, versions and objects. gc, marking runs lost, the audit
log: admin only. Creating an experiment or a registered model: any signed-in account. A run is governed by its
experiment, a version and an alias by its model, a logged model by its run's experiment, a stored object by
(object, its kind). Each case names the route it exercises ((method, path template) as the app declares it), what
the caller needs, and how to build the request on a `World` (test_permission_matrix.py) for one principal;
destructive cases build a fresh target first, so an allowed answer does not change what the next case sees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

E, M, OB = "experiment", "model", "object"
V1 = "/api/v1"
ML = "/api/2.0/mlflow"
MLA = "/api/2.0/mlflow-artifacts/artifacts"


@dataclass
class Req:
    """One request: method, URL, and a JSON body / raw content / query parameters."""

    method: str
    url: str
    json: Any = None
    content: bytes | None = None
    params: dict[str, Any] | None = None


@dataclass
class Case:
    """One row of the table. needs: ((kind, role), …) all required; or 'signed' (any account), 'admin', 'public',
    'unknown' (404 for everyone), 'unsupported' (501 for everyone). shows: (kind, marker) — an answer listing
    resources must show the marker exactly when the caller may read that kind's resource. ok: the status an allowed
    request gets when it is not 2xx (a request the endpoint refuses for another reason than permission)."""

    method: str
    route: str
    needs: tuple[tuple[str, str], ...] | str
    build: Callable[[Any, Any], Req]
    shows: tuple[str, str] | None = None
    ok: int | None = None
    lite: bool = False  # a second path to the same handler (/ajax-api/…): fewer principals walk it
    writes: bool = field(init=False)

    def __post_init__(self) -> None:
        self.writes = self.method not in ("GET", "HEAD")

    @property
    def id(self) -> str:
        return f"{self.method} {self.route}" + (f" [{self.needs}]" if isinstance(self.needs, str) else "")


def _c(method: str, route: str, needs: Any, build: Callable[[Any, Any], Req], **kw: Any) -> Case:
    return Case(method, route, needs, build, **kw)


READ_E, EDIT_E, MANAGE_E = ((E, "read"),), ((E, "edit"),), ((E, "manage"),)
READ_M, EDIT_M, MANAGE_M = ((M, "read"),), ((M, "edit"),), ((M, "manage"),)
READ_O, EDIT_O, MANAGE_O = ((OB, "read"),), ((OB, "edit"),), ((OB, "manage"),)


def rest_cases() -> list[Case]:
    """/api/v1 and its artifact proxy."""
    return [
        _c("GET", "/api/v1/health", "public", lambda w, p: Req("GET", f"{V1}/health")),
        _c("GET", "/api/v1/whoami", "signed", lambda w, p: Req("GET", f"{V1}/whoami")),
        _c("POST", "/api/v1/experiments", "signed", lambda w, p: Req("POST", f"{V1}/experiments", {"name": w.fresh()})),
        _c("POST", "/api/v1/experiments", READ_E, lambda w, p: Req("POST", f"{V1}/experiments", {"name": w.exp})),
        _c("GET", "/api/v1/experiments", "signed", lambda w, p: Req("GET", f"{V1}/experiments"), shows=(E, "mx-exp")),
        _c("POST", "/api/v1/runs", EDIT_E, lambda w, p: Req("POST", f"{V1}/runs", {"row": w.run_row()})),
        _c(
            "POST",
            "/api/v1/runs/get",
            "signed",
            lambda w, p: Req("POST", f"{V1}/runs/get", {"ids": [w.run0]}),
            shows=(E, "RUN0"),
        ),
        _c(
            "POST",
            "/api/v1/runs/heartbeat",
            EDIT_E,
            lambda w, p: Req("POST", f"{V1}/runs/heartbeat", {"run_ids": [w.run0]}),
        ),
        _c(
            "POST",
            "/api/v1/runs/mark-lost",
            "admin",
            lambda w, p: Req("POST", f"{V1}/runs/mark-lost", {"timeout_s": 1e9}),
        ),
        _c(
            "POST",
            "/api/v1/runs/search",
            READ_E,
            lambda w, p: Req("POST", f"{V1}/runs/search", {"experiment": w.exp, "limit": 3}),
        ),
        _c(
            "POST",
            "/api/v1/runs/search",
            "signed",
            lambda w, p: Req("POST", f"{V1}/runs/search", {"filter": "params.mark = 'run0'"}),
            shows=(E, "RUN0"),
        ),
        _c(
            "POST",
            "/api/v1/runs/filter-notices",
            READ_E,
            lambda w, p: Req("POST", f"{V1}/runs/filter-notices", {"experiment": w.exp, "filter": "metrics.zz > 1"}),
        ),
        _c("GET", "/api/v1/runs/{run_id}", READ_E, lambda w, p: Req("GET", f"{V1}/runs/{w.run0}")),
        _c(
            "PATCH",
            "/api/v1/runs/{run_id}",
            EDIT_E,
            lambda w, p: Req("PATCH", f"{V1}/runs/{w.run0}", {"name": w.fresh()}),
        ),
        _c("DELETE", "/api/v1/runs/{run_id}", MANAGE_E, lambda w, p: Req("DELETE", f"{V1}/runs/{w.new_run()}")),
        _c(
            "POST",
            "/api/v1/runs/{run_id}/log-batch",
            EDIT_E,
            lambda w, p: Req("POST", f"{V1}/runs/{w.run0}/log-batch", {"metrics": [["m", 1.0, w.step(), 1.0]]}),
        ),
        _c("GET", "/api/v1/runs/{run_id}/metrics", READ_E, lambda w, p: Req("GET", f"{V1}/runs/{w.run0}/metrics")),
        _c(
            "POST",
            "/api/v1/runs/{run_id}/tags/delete",
            EDIT_E,
            lambda w, p: Req("POST", f"{V1}/runs/{w.run0}/tags/delete", {"keys": [w.new_tag()]}),
        ),
        # models
        _c("GET", "/api/v1/models", "signed", lambda w, p: Req("GET", f"{V1}/models"), shows=(M, "mx-model")),
        _c(
            "GET",
            "/api/v1/models/resolve",
            READ_M,
            lambda w, p: Req("GET", f"{V1}/models/resolve", params={"uri": f"{w.model}@champion"}),
        ),
        _c(
            "POST",
            "/api/v1/models/{name}/versions",
            ((M, "edit"), (E, "read")),
            lambda w, p: Req("POST", f"{V1}/models/{w.model}/versions", {"source": w.source, "run_id": w.run0}),
        ),
        _c(
            "POST",
            "/api/v1/models/{name}/versions",
            READ_E,  # a new model: signed in, and read on the run
            lambda w, p: Req("POST", f"{V1}/models/{w.fresh()}/versions", {"source": w.source, "run_id": w.run0}),
        ),
        _c("GET", "/api/v1/models/{name}/versions", READ_M, lambda w, p: Req("GET", f"{V1}/models/{w.model}/versions")),
        _c(
            "GET",
            "/api/v1/models/{name}/versions/{version}",
            READ_M,
            lambda w, p: Req("GET", f"{V1}/models/{w.model}/versions/1"),
        ),
        _c(
            "PUT",
            "/api/v1/models/{name}/aliases/{alias}",
            EDIT_M,  # a new alias
            lambda w, p: Req("PUT", f"{V1}/models/{w.model}/aliases/{w.fresh()}", {"version": 1}),
        ),
        _c(
            "PUT",
            "/api/v1/models/{name}/aliases/{alias}",
            MANAGE_M,  # moving one
            lambda w, p: Req("PUT", f"{V1}/models/{w.model}/aliases/{w.new_alias()}", {"version": 2}),
        ),
        _c(
            "DELETE",
            "/api/v1/models/{name}/aliases/{alias}",
            MANAGE_M,
            lambda w, p: Req("DELETE", f"{V1}/models/{w.model}/aliases/{w.new_alias()}"),
        ),
        _c(
            "GET",
            "/api/v1/models/{name}/alias-history",
            READ_M,
            lambda w, p: Req("GET", f"{V1}/models/{w.model}/alias-history"),
        ),
        # stored objects
        _c("GET", "/api/v1/objects/{kind}", READ_O, lambda w, p: Req("GET", f"{V1}/objects/{w.okind}")),
        _c("GET", "/api/v1/objects/{kind}/{name}", READ_O, lambda w, p: Req("GET", f"{V1}/objects/{w.okind}/o1")),
        _c(
            "PUT",
            "/api/v1/objects/{kind}/{name}",
            EDIT_O,
            lambda w, p: Req("PUT", f"{V1}/objects/{w.okind}/{w.fresh()}", {"spec": {"a": 1}}),
        ),
        _c(
            "DELETE",
            "/api/v1/objects/{kind}/{name}",
            MANAGE_O,
            lambda w, p: Req("DELETE", f"{V1}/objects/{w.okind}/{w.new_object()}"),
        ),
        # retention
        _c("POST", "/api/v1/retention/gc", "admin", lambda w, p: Req("POST", f"{V1}/retention/gc", {"dry_run": True})),
        _c(
            "POST",
            "/api/v1/retention/{action}",
            MANAGE_E,
            lambda w, p: Req("POST", f"{V1}/retention/delete", {"run_ids": [w.new_run(finished=True)]}),
        ),
        _c(
            "POST",
            "/api/v1/retention/{action}",
            MANAGE_E,
            lambda w, p: Req("POST", f"{V1}/retention/archive", {"run_ids": [w.new_run(finished=True)]}),
        ),
        _c(
            "POST",
            "/api/v1/retention/{action}",
            MANAGE_E,
            lambda w, p: Req("POST", f"{V1}/retention/restore", {"run_ids": [w.new_run(deleted=True)]}),
        ),
        _c(  # a running run is skipped without force: still nothing to learn about it without manage
            "POST",
            "/api/v1/retention/{action}",
            MANAGE_E,
            lambda w, p: Req("POST", f"{V1}/retention/delete", {"run_ids": [w.new_run()]}),
        ),
        # the artifact proxy
        _c("GET", "/api/v1/artifacts/runs/{run_id}", READ_E, lambda w, p: Req("GET", f"{V1}/artifacts/runs/{w.run0}")),
        _c(
            "PUT",
            "/api/v1/artifacts/runs/{run_id}",
            EDIT_E,
            ok=400,  # allowed, but a PUT needs a file path
            build=lambda w, p: Req("PUT", f"{V1}/artifacts/runs/{w.run0}", content=b"x"),
        ),
        _c(
            "DELETE",
            "/api/v1/artifacts/runs/{run_id}",
            EDIT_E,
            lambda w, p: Req("DELETE", f"{V1}/artifacts/runs/{w.new_run()}"),
        ),
        _c(
            "GET",
            "/api/v1/artifacts/runs/{run_id}/{path:path}",
            READ_E,
            lambda w, p: Req("GET", f"{V1}/artifacts/runs/{w.run0}/model/MLmodel"),
        ),
        _c(
            "PUT",
            "/api/v1/artifacts/runs/{run_id}/{path:path}",
            EDIT_E,
            lambda w, p: Req("PUT", f"{V1}/artifacts/runs/{w.run0}/up/{w.fresh()}.txt", content=b"hello"),
        ),
        _c(
            "DELETE",
            "/api/v1/artifacts/runs/{run_id}/{path:path}",
            EDIT_E,
            lambda w, p: Req("DELETE", f"{V1}/artifacts/runs/{w.run0}/{w.new_artifact()}"),
        ),
        # the admins' audit page
        _c("GET", "/admin/audit", "admin", lambda w, p: Req("GET", "/admin/audit")),
    ]


def mlflow_cases(P: str) -> list[Case]:
    """The MLflow REST subset under prefix `P`."""

    def run(w: Any) -> dict[str, Any]:
        return {"run_id": w.run0}

    def lm(w: Any) -> str:
        return f"{P}/logged-models/{w.logged}"

    return [
        _c(
            "POST",
            f"{P}/experiments/create",
            "signed",
            lambda w, p: Req("POST", f"{P}/experiments/create", {"name": w.fresh()}),
        ),
        _c(
            "GET",
            f"{P}/experiments/get",
            READ_E,
            lambda w, p: Req("GET", f"{P}/experiments/get", params={"experiment_id": w.eid}),
        ),
        _c(
            "GET",
            f"{P}/experiments/get-by-name",
            READ_E,
            lambda w, p: Req("GET", f"{P}/experiments/get-by-name", params={"experiment_name": w.exp}),
        ),
        _c(
            "GET",
            f"{P}/experiments/search",
            "signed",
            lambda w, p: Req("GET", f"{P}/experiments/search"),
            shows=(E, "mx-exp"),
        ),
        _c(
            "POST",
            f"{P}/experiments/search",
            "signed",
            lambda w, p: Req("POST", f"{P}/experiments/search", {}),
            shows=(E, "mx-exp"),
        ),
        *[
            _c(
                "POST",
                f"{P}/experiments/{verb}",
                "unsupported",
                lambda w, p, v=verb: Req("POST", f"{P}/experiments/{v}", {"experiment_id": w.eid}),
            )
            for verb in ("update", "delete", "restore", "set-experiment-tag")
        ],
        _c("POST", f"{P}/runs/create", EDIT_E, lambda w, p: Req("POST", f"{P}/runs/create", {"experiment_id": w.eid})),
        _c("GET", f"{P}/runs/get", READ_E, lambda w, p: Req("GET", f"{P}/runs/get", params=run(w))),
        _c(
            "POST",
            f"{P}/runs/update",
            EDIT_E,
            lambda w, p: Req("POST", f"{P}/runs/update", {**run(w), "run_name": w.fresh()}),
        ),
        _c("POST", f"{P}/runs/delete", MANAGE_E, lambda w, p: Req("POST", f"{P}/runs/delete", {"run_id": w.new_run()})),
        _c(
            "POST",
            f"{P}/runs/restore",
            MANAGE_E,
            lambda w, p: Req("POST", f"{P}/runs/restore", {"run_id": w.new_run(deleted=True)}),
        ),
        _c(
            "POST",
            f"{P}/runs/log-metric",
            EDIT_E,
            lambda w, p: Req(
                "POST", f"{P}/runs/log-metric", {**run(w), "key": "m", "value": 1, "step": w.step(), "timestamp": 1}
            ),
        ),
        _c(
            "POST",
            f"{P}/runs/log-parameter",
            EDIT_E,
            lambda w, p: Req("POST", f"{P}/runs/log-parameter", {**run(w), "key": w.fresh(), "value": "1"}),
        ),
        _c(
            "POST",
            f"{P}/runs/set-tag",
            EDIT_E,
            lambda w, p: Req("POST", f"{P}/runs/set-tag", {**run(w), "key": "t", "value": w.fresh()}),
        ),
        _c(
            "POST",
            f"{P}/runs/delete-tag",
            EDIT_E,
            lambda w, p: Req("POST", f"{P}/runs/delete-tag", {**run(w), "key": w.new_tag()}),
        ),
        _c(
            "POST",
            f"{P}/runs/log-batch",
            EDIT_E,
            lambda w, p: Req(
                "POST",
                f"{P}/runs/log-batch",
                {**run(w), "metrics": [{"key": "m", "value": 2, "step": w.step(), "timestamp": 1}]},
            ),
        ),
        *[
            _c("POST", f"{P}/runs/{verb}", EDIT_E, lambda w, p, v=verb: Req("POST", f"{P}/runs/{v}", run(w)))
            for verb in ("log-inputs", "log-model", "outputs")
        ],
        _c(
            "POST",
            f"{P}/runs/search",
            READ_E,
            lambda w, p: Req("POST", f"{P}/runs/search", {"experiment_ids": [str(w.eid)], "max_results": 3}),
        ),
        _c(
            "POST",
            f"{P}/runs/search",
            "signed",
            lambda w, p: Req("POST", f"{P}/runs/search", {"filter": "params.mark = 'run0'"}),
            shows=(E, "RUN0"),
        ),
        _c(
            "GET",
            f"{P}/metrics/get-history",
            READ_E,
            lambda w, p: Req("GET", f"{P}/metrics/get-history", params={**run(w), "metric_key": "m"}),
        ),
        _c(
            "POST",
            f"{P}/logged-models",
            EDIT_E,
            lambda w, p: Req(
                "POST", f"{P}/logged-models", {"source_run_id": w.run0, "experiment_id": str(w.eid), "name": w.fresh()}
            ),
        ),
        _c(
            "POST",
            f"{P}/logged-models/search",
            READ_E,
            lambda w, p: Req("POST", f"{P}/logged-models/search", {"experiment_ids": [str(w.eid)]}),
        ),
        _c(
            "POST",
            f"{P}/logged-models/search",
            "signed",
            lambda w, p: Req("POST", f"{P}/logged-models/search", {}),
            shows=(E, "LOGGED"),
        ),
        _c("GET", f"{P}/logged-models/{{model_id}}", READ_E, lambda w, p: Req("GET", lm(w))),
        _c(
            "PATCH",
            f"{P}/logged-models/{{model_id}}",
            EDIT_E,
            lambda w, p: Req("PATCH", lm(w), {"status": "LOGGED_MODEL_READY"}),
        ),
        _c(
            "DELETE",
            f"{P}/logged-models/{{model_id}}",
            MANAGE_E,
            lambda w, p: Req("DELETE", f"{P}/logged-models/{w.new_logged()}"),
        ),
        _c(
            "PATCH",
            f"{P}/logged-models/{{model_id}}/tags",
            EDIT_E,
            lambda w, p: Req("PATCH", lm(w) + "/tags", {"tags": [{"key": "k", "value": w.fresh()}]}),
        ),
        _c(
            "DELETE",
            f"{P}/logged-models/{{model_id}}/tags/{{tag_key}}",
            EDIT_E,
            lambda w, p: Req("DELETE", lm(w) + "/tags/k"),
        ),
        _c(
            "POST",
            f"{P}/logged-models/{{model_id}}/params",
            EDIT_E,
            lambda w, p: Req("POST", lm(w) + "/params", {"params": [{"key": w.fresh(), "value": "1"}]}),
        ),
        _c("GET", f"{P}/artifacts/list", READ_E, lambda w, p: Req("GET", f"{P}/artifacts/list", params=run(w))),
        # the model registry
        _c(
            "POST",
            f"{P}/registered-models/create",
            "signed",
            lambda w, p: Req("POST", f"{P}/registered-models/create", {"name": w.fresh()}),
        ),
        _c(
            "GET",
            f"{P}/registered-models/get",
            READ_M,
            lambda w, p: Req("GET", f"{P}/registered-models/get", params={"name": w.model}),
        ),
        _c(
            "PATCH",
            f"{P}/registered-models/update",
            EDIT_M,
            lambda w, p: Req("PATCH", f"{P}/registered-models/update", {"name": w.model, "description": w.fresh()}),
        ),
        _c(
            "DELETE",
            f"{P}/registered-models/delete",
            MANAGE_M,
            lambda w, p: Req("DELETE", f"{P}/registered-models/delete", {"name": w.new_model(p)}),
        ),
        _c(
            "GET",
            f"{P}/registered-models/search",
            "signed",
            lambda w, p: Req("GET", f"{P}/registered-models/search"),
            shows=(M, "mx-model"),
        ),
        *[
            _c(
                m,
                f"{P}/registered-models/get-latest-versions",
                READ_M,
                lambda w, p, m=m: Req(
                    m,
                    f"{P}/registered-models/get-latest-versions",
                    **({"params": {"name": w.model}} if m == "GET" else {"json": {"name": w.model}}),
                ),
            )
            for m in ("GET", "POST")
        ],
        _c(
            "POST",
            f"{P}/registered-models/alias",
            EDIT_M,  # a new alias
            lambda w, p: Req(
                "POST", f"{P}/registered-models/alias", {"name": w.model, "alias": w.fresh(), "version": 1}
            ),
        ),
        _c(
            "POST",
            f"{P}/registered-models/alias",
            MANAGE_M,  # moving one
            lambda w, p: Req(
                "POST", f"{P}/registered-models/alias", {"name": w.model, "alias": w.new_alias(), "version": 2}
            ),
        ),
        _c(
            "DELETE",
            f"{P}/registered-models/alias",
            MANAGE_M,
            lambda w, p: Req("DELETE", f"{P}/registered-models/alias", {"name": w.model, "alias": w.new_alias()}),
        ),
        _c(
            "GET",
            f"{P}/registered-models/alias",
            READ_M,
            lambda w, p: Req("GET", f"{P}/registered-models/alias", params={"name": w.model, "alias": "champion"}),
        ),
        _c(
            "POST",
            f"{P}/model-versions/create",
            ((M, "edit"), (E, "read")),
            lambda w, p: Req(
                "POST",
                f"{P}/model-versions/create",
                {"name": w.model, "source": f"runs:/{w.run0}/model", "run_id": w.run0},
            ),
        ),
        _c(
            "GET",
            f"{P}/model-versions/get",
            READ_M,
            lambda w, p: Req("GET", f"{P}/model-versions/get", params={"name": w.model, "version": "1"}),
        ),
        _c(
            "GET",
            f"{P}/model-versions/get-download-uri",
            READ_M,
            lambda w, p: Req("GET", f"{P}/model-versions/get-download-uri", params={"name": w.model, "version": "1"}),
        ),
        _c(
            "GET",
            f"{P}/model-versions/search",
            "signed",
            lambda w, p: Req("GET", f"{P}/model-versions/search", params={"filter": f"name = '{w.model}'"}),
            shows=(M, "mx-model"),
        ),
        _c(
            "POST",
            f"{P}/model-versions/transition-stage",
            EDIT_M,
            lambda w, p: Req(
                "POST", f"{P}/model-versions/transition-stage", {"name": w.model, "version": "1", "stage": "Staging"}
            ),
        ),
        _c(
            "PATCH",
            f"{P}/model-versions/update",
            EDIT_M,
            lambda w, p: Req(
                "PATCH", f"{P}/model-versions/update", {"name": w.model, "version": "1", "description": "d"}
            ),
        ),
        _c(
            "DELETE",
            f"{P}/model-versions/delete",
            MANAGE_M,
            lambda w, p: Req(
                "DELETE", f"{P}/model-versions/delete", {"name": w.model, "version": str(w.new_version())}
            ),
        ),
    ]


def artifact_cases() -> list[Case]:
    """MLflow's artifact proxy."""

    def at(w: Any, rel: str) -> str:
        return f"{MLA}/{w.eid}/{w.run0}/artifacts/{rel}"

    return [
        _c("GET", MLA, READ_E, lambda w, p: Req("GET", MLA, params={"path": f"{w.eid}/{w.run0}/artifacts/model"})),
        _c("GET", MLA + "/{path:path}", READ_E, lambda w, p: Req("GET", at(w, "model/MLmodel"))),
        _c(
            "PUT", MLA + "/{path:path}", EDIT_E, lambda w, p: Req("PUT", at(w, f"up/{w.fresh()}.txt"), content=b"hello")
        ),
        _c("DELETE", MLA + "/{path:path}", EDIT_E, lambda w, p: Req("DELETE", at(w, w.new_artifact()))),
    ]


CATCH_ALL = (
    "/api/2.0/mlflow",
    "/ajax-api/2.0/mlflow",
    "/api/2.0/mlflow-artifacts",
    "/api/3.0/mlflow",
    "/ajax-api/3.0/mlflow",
)


def unknown_cases() -> list[Case]:
    """Paths roost does not answer: 404 ENDPOINT_NOT_FOUND for every account (401 without credentials)."""
    return [
        _c(
            m,
            f"{pre}/{{rest:path}}",
            "unknown",
            lambda w, p, m=m, pre=pre: Req(m, f"{pre}/traces/x", {} if m != "GET" else None),
        )
        for pre in CATCH_ALL
        for m in ("GET", "POST", "PUT", "PATCH", "DELETE")
    ]


def all_cases() -> list[Case]:
    """Every case of the table."""
    return [
        *rest_cases(),
        *mlflow_cases("/api/2.0/mlflow"),
        *[replace(c, lite=True) for c in mlflow_cases("/ajax-api/2.0/mlflow")],
        *artifact_cases(),
        *unknown_cases(),
    ]
