"""The client side: `roost login`, errors carried from the server, code that needs SQL refusing a server client,
and the UI inside the server reading the server's store."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest

import roost
from roost.errors import ConflictError, NotFoundError, RoostError
from roost.registry import api, backend


@pytest.fixture
def server(live_server):
    """This module's tests run against the real 2-worker server (conftest.live_server)."""
    return live_server


def test_login_saves_checked_credentials_0600(server, tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from roost.cli.main import build_app
    from roost.registry import credentials

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.delenv("ROOST_SERVER", raising=False)

    def run(*args: str, token: str = server.token) -> tuple[int, BaseException | None]:
        res = CliRunner().invoke(build_app(), list(args), input=token + "\n")
        return res.exit_code, res.exception

    assert run("login", server.url, "--token-stdin") == (0, None)
    p = tmp_path / "cfg" / "roost" / "credentials.json"
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert credentials.server() == (server.url, server.token)
    code, exc = run("login", server.url, "--token-stdin", token="roost_0000_wrong")
    assert isinstance(exc, RoostError) and "401" in str(exc)  # a token the server refuses is not saved
    assert credentials.server() == (server.url, server.token)
    code, exc = run("login", "http://127.0.0.1:1", "--token-stdin")
    assert isinstance(exc, RoostError) and "cannot reach" in str(exc)
    assert run("logout") == (0, None) and not p.exists()


def test_server_errors_become_roost_errors_with_the_message(as_client, server) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        api.get_run("f" * 32)
    with roost.start_run("errs", params={"lr": 0.1}) as run:
        with pytest.raises(ConflictError, match="already 0.1"):
            roost.log_param("lr", 0.2)
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        api.resolve_model("nope@prod")
    with pytest.raises(RoostError, match="bad model reference"):
        api.resolve_model("bad ref")
    assert api.get_run(run.id[:10])["run_id"] == run.id  # unique prefixes work as on SQL


def test_code_needing_sql_refuses_a_server_client_clearly(as_client, server) -> None:
    from roost.registry.store import default_store

    with pytest.raises(RoostError, match="roost tune .* needs direct store access") as exc:
        default_store("roost tune (its study tables)")
    assert exc.value.hint and "server host" in exc.value.hint


def test_ui_in_the_server_reads_the_server_store(as_client, server) -> None:
    with roost.start_run("ui-seen-experiment"):
        pass
    page = httpx.get(server.url + "/", follow_redirects=True, headers=server.headers())
    assert page.status_code == 200 and "ui-seen-experiment" in page.text


def test_objects_round_trip_and_compare_and_set(as_client, server) -> None:
    st = backend.default_store()
    st.put_object("feature_view", "v1", {"a": 1})
    assert st.get_object("feature_view", "v1") == {"a": 1}
    got = st.update_object("feature_view", "v1", lambda cur: {**(cur or {}), "b": 2})
    assert got == {"a": 1, "b": 2} and st.list_objects("feature_view") == {"v1": {"a": 1, "b": 2}}
    st.delete_object("feature_view", "v1")
    assert st.get_object("feature_view", "v1") is None
