"""The Python API end to end through a real `roost server`, compared with the same calls on a direct SQL store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import roost
from roost import artifacts
from roost.registry import api, backend
from roost.registry.rest import RestStore
from roost.registry.sqlstore import SqlStore


@pytest.fixture
def server(live_server):
    """This module's tests run against the real 2-worker server (conftest.live_server)."""
    return live_server


def scenario(tmp: Path, tag: str) -> dict[str, Any]:
    """One team's day: runs with params, 1,000 points, tags, an artifact, a model with an alias, search, delete."""
    exp = f"churn-{tag}"
    ids = []
    for i in range(5):
        with roost.start_run(exp, name=f"r{i}", params={"lr": 0.1 * (i + 1), "depth": i, "kind": "gbm"}) as run:
            for step in range(1000 if i == 0 else 10):
                roost.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 1000}, step=step)
            roost.set_tag("team", "a" if i % 2 else "b")
            f = tmp / f"notes{i}.txt"
            f.write_text(f"run {i}\n")
            roost.log_artifact(f, "notes.txt")
            if i == 4:
                model = tmp / "model"
                model.mkdir(exist_ok=True)
                (model / "roost-model.yaml").write_text("flavor: test\n")
                (model / "weights.bin").write_bytes(bytes(range(256)) * 10)
                roost.log_artifact(model, "model")
        ids.append(run.id)
    out: dict[str, Any] = {}
    first = roost.get_run(ids[0])
    out["first"] = {k: first[k] for k in ("name", "params", "metrics", "tags", "status", "experiment")}
    hist = api.metric_history(ids[0], "loss")
    out["history"] = [(p["step"], p["value"]) for p in hist]
    found = roost.search_runs("params.depth >= 1 and tags.team = 'a'", experiment=exp)
    out["search"] = [r["name"] for r in found]
    pages, after = [], None
    store = backend.default_store()
    while True:  # keyset pages of 2
        page = store.search_runs(experiment=exp, limit=2, after=after)
        pages.append([r["name"] for r in page])
        if len(page) < 2:
            break
        after = (page[-1]["start_time"], page[-1]["run_id"])
    out["pages"] = pages
    out["ordered"] = [r["name"] for r in roost.search_runs(experiment=exp, order_by="metrics.acc DESC")]
    art = roost.get_run(ids[1])["artifact_uri"]
    out["files"] = sorted(f["path"] for f in artifacts.list_files(art))
    out["notes"] = api.local_artifact(ids[1], "notes.txt").read_text()
    v = api.register_model(ids[4], f"m-{tag}", "model")
    api.set_alias(f"m-{tag}", v.version, "prod")
    got = api.resolve_model(f"m-{tag}@prod")
    assert got.local_path is not None
    out["model"] = (got.version, got.aliases, got.meta, (got.local_path / "weights.bin").read_bytes()[:300])
    out["deleted"] = len(api.delete_runs([ids[2], ids[3]]).run_ids)
    out["after_delete"] = [r["name"] for r in roost.search_runs(experiment=exp)]
    out["restored"] = len(api.restore_runs([ids[2]]).run_ids)
    out["after_restore"] = [r["name"] for r in roost.search_runs(experiment=exp)]
    api.tag_run(ids[0], {"x": "1"}, delete=["team"])
    out["tags_after"] = roost.get_run(ids[0])["tags"]
    return out


def test_same_answers_through_the_server_as_on_sql(as_client, server, tmp_path: Path) -> None:
    assert isinstance(backend.default_store(), RestStore)
    remote = scenario(tmp_path, "x")
    as_client(False)
    assert isinstance(backend.default_store(), SqlStore)
    local = scenario(tmp_path, "x")
    assert remote == local
    assert len(remote["history"]) == 1000 and remote["search"] == ["r3", "r1"]
    assert remote["pages"] == [["r4", "r3"], ["r2", "r1"], ["r0"]]
    assert remote["after_delete"] == ["r4", "r1", "r0"] and remote["after_restore"] == ["r4", "r2", "r1", "r0"]


def test_runs_and_artifacts_land_on_the_server(as_client, server, tmp_path: Path) -> None:
    """The server's own SQL store holds the run; its files are under the server's artifact root, not the client's."""
    from roost.registry.sqlstore import sql_store

    with roost.start_run("e") as run:
        roost.log_metric("m", 1.0)
        f = tmp_path / "a.txt"
        f.write_text("payload")
        roost.log_artifact(f)
    assert run.artifact_uri.startswith(f"roost+{server.url}/api/v1/artifacts/runs/{run.id}")
    direct = sql_store(server.store_url).get_run(run.id)
    assert direct["status"] == "FINISHED" and direct["metrics"] == {"m": 1.0}
    on_disk = Path(direct["artifact_uri"].removeprefix("file://")) / "a.txt"
    assert on_disk.read_text() == "payload"
    assert str(on_disk).startswith(str(server.root / "artifacts"))
