"""The team server as one system: the public health answer, and one session secret shared by every worker."""

from __future__ import annotations

from typing import Any


def test_health_is_public(client: Any) -> None:
    r = client.get("/api/v1/health")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok"


# -- one session secret for every worker ---------------------------------------------------------------------
def _fresh(method: str, url: str, cookies: dict[str, str] | None = None, **kw: Any) -> Any:
    """One request on a connection of its own (so the kernel may hand it to any worker)."""
    import httpx

    with httpx.Client(follow_redirects=False, timeout=30, cookies=cookies) as c:
        return c.request(method, url, **kw)


def _login(srv: Any, name: str, password: str) -> str:
    """Sign in through the /login form (GET and POST on separate connections); the session cookie's value."""
    from .conftest import csrf_of

    page = _fresh("GET", srv.url + "/login")
    assert page.status_code == 200
    nonce = page.cookies["roost_csrf"]
    form = {"name": name, "password": password, "csrf_token": csrf_of(page.text)}
    r = _fresh("POST", srv.url + "/login", data=form, cookies={"roost_csrf": nonce})
    assert r.status_code == 303, (r.status_code, r.text[:300])
    return str(r.cookies["roost_session"])


def _run_with_tensorboard_logs(srv: Any, monkeypatch: Any, tmp_path: Any) -> str:
    """A run logged through the server whose artifacts hold a tensorboard/ folder (its page shows the TB form)."""
    import roost
    from roost import artifacts
    from roost.registry import backend
    from roost.registry.sqlstore import sql_store

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("ROOST_SERVER", srv.url)
    monkeypatch.setenv("ROOST_TOKEN", srv.token)
    backend.reset()
    try:
        with roost.start_run("tb") as run:
            pass
    finally:
        monkeypatch.delenv("ROOST_SERVER")
        backend.reset()
    stored = sql_store(srv.store_url).get_run(run.id)["artifact_uri"]
    (artifacts.local_path(stored) / "tensorboard").mkdir(parents=True)
    return str(run.id)


def test_sessions_and_csrf_hold_across_three_workers(ws: Any, tmp_path: Any, monkeypatch: Any) -> None:
    import re

    from .conftest import ServerProc

    srv = ServerProc(tmp_path / "server", workers=3)
    srv.account("carol", "carol's passphrase")
    srv.start()
    try:
        run_id = _run_with_tensorboard_logs(srv, monkeypatch, tmp_path)
        for _ in range(12):  # the form's token (signed by one worker) is checked by whichever takes the POST
            session = _login(srv, "carol", "carol's passphrase")
        for _ in range(45):  # a session cookie signed by one worker opens pages on every worker
            r = _fresh("GET", srv.url + "/", cookies={"roost_session": session})
            assert r.status_code == 200, (r.status_code, r.headers.get("location"))
        page = _fresh("GET", f"{srv.url}/runs/{run_id}", cookies={"roost_session": session})
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert page.status_code == 200 and token, page.text[:300]
        for _ in range(24):  # the UI's own form token is the same on every worker: past the CSRF check, 404
            r = _fresh(
                "POST",
                srv.url + "/tensorboard",
                data={"runs": "f" * 32, "csrf_token": token.group(1)},
                cookies={"roost_session": session},
            )
            assert r.status_code == 404, (r.status_code, r.text[:300])
        forged = _fresh(
            "POST", srv.url + "/tensorboard", data={"runs": "f" * 32, "csrf_token": "x" * 43},
            cookies={"roost_session": session},
        )  # fmt: skip
        assert forged.status_code == 403
    finally:
        srv.stop()


def test_session_secret_file_keeps_sessions_over_a_restart(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from roost.cli.main import build_app
    from roost.errors import RoostError

    from .conftest import ServerProc

    short = tmp_path / "short.key"
    short.write_text("too-short\n")
    res = CliRunner().invoke(
        build_app(),
        ["server", "--session-secret-file", str(short), "--store", "sqlite://", "--artifacts", str(tmp_path)],
    )
    assert isinstance(res.exception, RoostError) and "at least 32" in str(res.exception)

    key = tmp_path / "session.key"
    key.write_text("k" * 40 + "\n")
    srv = ServerProc(tmp_path / "server", workers=1, args=["--session-secret-file", str(key)])
    srv.account("dave", "dave's passphrase")
    srv.start()
    try:
        session = _login(srv, "dave", "dave's passphrase")
        srv.stop()
        srv.start()  # a new process: the key from the file, not a fresh random one
        r = _fresh("GET", srv.url + "/", cookies={"roost_session": session})
        assert r.status_code == 200, (r.status_code, r.headers.get("location"))
    finally:
        srv.stop()


def test_tensorboard_requests_under_tb_pass_the_servers_guard(server: Any, client: Any) -> None:
    """TensorBoard's own POSTs under /tb/ carry their own content types: the server's guard must let them reach the
    UI (which answers for an unknown board), as the standalone UI does — before, the server refused them (415)."""
    from .conftest import bearer, new_account

    token = new_account(server[2], "tb-user", admin=True)
    r = client.post(
        "/tb/0123456789abcdef/data/plugin/scalars/scalars_multirun",
        content=b"tag=loss&runs=train",
        headers={**bearer(token), "Content-Type": "multipart/form-data; boundary=x"},
    )
    assert r.status_code != 415, r.text
    assert r.status_code < 500, r.text
