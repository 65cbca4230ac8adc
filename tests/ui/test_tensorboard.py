"""TensorBoard launching: one process per set of runs, reused, proxied, stopped when idle or at UI exit.

These use a stand-in `tensorboard` (same flags, tiny HTTP server) to stay fast; the browser test runs the real one.
"""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

import roost
from roost.ui import create_app
from roost.ui.tensorboard import TensorBoardManager, logdir_name, spec_for


def test_spec_names_are_safe_and_only_runs_with_logs(populated):
    a, b, c = (roost.get_run(populated[k]) for k in "abc")
    spec = spec_for([a, b, c])
    assert len(spec) == 2  # c has no tensorboard/ folder
    name = logdir_name(a)
    assert name == f"_script_alert_1___script_-{a['run_id'][:8]}"
    assert all(":" not in n and "," not in n for n, _ in spec)
    assert dict(spec)[name].endswith("/artifacts/tensorboard")


def test_manager_reuses_then_stops_idle_and_all(populated, fake_tb_command, tmp_path):
    a, b = roost.get_run(populated["a"]), roost.get_run(populated["b"])
    tb = TensorBoardManager(idle_s=60, log_dir=tmp_path / "tblogs", command=fake_tb_command)
    one = tb.ensure(spec_for([a]))
    tb.wait_ready(one, timeout=120)
    assert tb.ensure(spec_for([a])) is one  # reused: same process, same port
    both = tb.ensure(spec_for([a, b]))
    assert both.key != one.key and both.port != one.port
    tb.wait_ready(both, timeout=120)
    assert {x["key"] for x in tb.listing()} == {one.key, both.key}
    one.last_used -= 120  # idle for two minutes
    assert tb.reap_idle() == [one.key]
    assert one.proc.poll() is not None and both.alive()
    tb.stop_all()
    assert both.proc.poll() is not None and tb.listing() == []


def test_dead_board_is_restarted(populated, fake_tb_command):
    tb = TensorBoardManager(command=fake_tb_command)
    spec = spec_for([roost.get_run(populated["a"])])
    first = tb.ensure(spec)
    first.proc.kill()
    first.proc.wait()
    second = tb.ensure(spec)
    assert second is not first and second.alive()
    tb.stop_all()


def test_launch_from_ui_proxies_and_stops_at_exit(populated, fake_tb_command, csrf_from):
    app = create_app(tb_command=fake_tb_command)
    with TestClient(app, follow_redirects=False) as c:
        token = csrf_from(c.get("/compare", params={"runs": f"{populated['a']},{populated['b']}"}).text)
        r = c.post("/tensorboard", data={"runs": [populated["a"], populated["b"]], "csrf_token": token})
        assert r.status_code == 303
        where = r.headers["location"]
        assert where.startswith("/tb/") and where.endswith("/")
        page = c.get(where + "data/runs")
        assert page.status_code == 200
        assert f"wide-{populated['b'][:8]}:" in page.text and f"path={where}data/runs" in page.text
        again = c.post("/api/tensorboard", json={"runs": [populated["b"], populated["a"]]}).json()
        assert again["path"] == where  # same runs → the same TensorBoard
        listed = c.get("/api/tensorboard").json()
        assert len(listed) == 1
        board = app.state.ui.tb.boards[listed[0]["key"]]
        assert c.get(where.rstrip("/")).status_code == 307
    deadline = time.monotonic() + 60  # (only a hang guard)
    while board.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert board.proc.poll() is not None  # stopped with the UI


def test_launch_errors(client, populated, csrf_from):
    r = client.post("/api/tensorboard", json={"runs": [populated["c"]]})
    assert r.status_code == 400 and "no TensorBoard logs" in r.json()["error"]
    assert client.post("/api/tensorboard", json={"runs": []}).status_code == 400
    assert client.post("/api/tensorboard", json={"runs": ["ffff0000"]}).status_code == 404
    assert client.get("/tb/000000000000/").status_code == 404
    token = csrf_from(client.get(f"/runs/{populated['a']}").text)  # (c has no logs, so no button)
    page = client.post("/tensorboard", data={"runs": populated["c"], "csrf_token": token})
    assert page.status_code == 400 and "tensorboard/" in page.text


def test_ui_stops_idle_tensorboard_by_itself(populated, fake_tb_command):
    app = create_app(tb_command=fake_tb_command, tb_idle_s=1.0)
    with TestClient(app, follow_redirects=False) as c:
        path = c.post("/api/tensorboard", json={"runs": [populated["a"]]}).json()["path"]
        board = app.state.ui.tb.boards[path.split("/")[2]]
        deadline = time.monotonic() + 90  # (only a hang guard: idle after 1 s, reaped on the next tick)
        while board.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert board.proc.poll() is not None  # the reaper stopped it, the UI still runs
        assert c.get("/api/tensorboard").json() == []
        assert c.get(path).status_code == 404


def test_cap_stops_the_oldest_idle_board_first(populated, fake_tb_command):
    a, b = roost.get_run(populated["a"]), roost.get_run(populated["b"])
    tb = TensorBoardManager(command=fake_tb_command, max_boards=2)
    try:
        first = tb.ensure(spec_for([a]))
        second = tb.ensure(spec_for([b]))
        first.last_used, second.last_used = 100.0, 50.0  # the second idles longest
        third = tb.ensure(spec_for([a, b]))
        assert second.proc.wait(60) is not None and first.alive() and third.alive()
        assert sorted(tb.boards) == sorted([first.key, third.key])
        assert tb.get(second.key) is None
    finally:
        tb.stop_all()


def test_cap_must_be_positive():
    from roost.errors import RoostError

    with pytest.raises(RoostError):
        TensorBoardManager(max_boards=0)


@pytest.mark.slow
def test_ui_caps_real_tensorboards(populated):
    """Real TensorBoard processes (two, one at a time): with a cap of 1 the second launch stops the first."""
    app = create_app(tb_max=1)
    with TestClient(app, follow_redirects=False) as c:
        one = c.post("/api/tensorboard", json={"runs": [populated["a"]]})
        assert one.status_code == 200, one.text
        first = app.state.ui.tb.boards[one.json()["key"]]
        assert c.get(one.json()["path"]).status_code == 200
        two = c.post("/api/tensorboard", json={"runs": [populated["b"]]})
        assert two.status_code == 200, two.text
        assert first.proc.wait(60) is not None  # stopped to make room (hang guard 60 s)
        assert [x["key"] for x in c.get("/api/tensorboard").json()] == [two.json()["key"]]
        assert c.get(one.json()["path"]).status_code == 404
        assert "TensorBoard" in c.get(two.json()["path"]).text


def test_proxy_refuses_huge_bodies(populated, fake_tb_command):
    app = create_app(tb_command=fake_tb_command)
    with TestClient(app, follow_redirects=False) as c:
        path = c.post("/api/tensorboard", json={"runs": [populated["a"]]}).json()["path"]
        r = c.post(path + "data/x", content=b"x" * (2 * 1024 * 1024), headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert c.get(path + "data/runs").status_code == 200  # the board still serves
