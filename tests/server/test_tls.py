"""`roost server --certfile --keyfile`: TLS end to end — the server answers only HTTPS, a client that trusts the
certificate logs a run and its artifact through `https://` and the `roost+https` proxy, and UI session cookies are
marked Secure."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path
from typing import Any

import certifi
import httpx
import pytest

from .conftest import ServerProc


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (subjectAltName IP) and its key, made by the openssl command."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A 1-worker server over TLS; this process trusts its certificate (SSL_CERT_FILE, which httpx honours)."""
    cert, key = _self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    srv = ServerProc(tmp_path / "server", workers=1, args=["--certfile", str(cert), "--keyfile", str(key)])
    srv.url = srv.url.replace("http://", "https://")
    srv.start()
    yield srv
    srv.stop()


def test_tls_server_answers_https_only(tls_server: ServerProc) -> None:
    r = httpx.get(tls_server.url + "/api/v1/health", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port gets no HTTP answer
        httpx.get(tls_server.url.replace("https://", "http://") + "/api/v1/health", timeout=5)
    with pytest.raises(httpx.ConnectError):  # a client that does not trust the certificate refuses it
        httpx.get(
            tls_server.url + "/api/v1/health", timeout=5, verify=ssl.create_default_context(cafile=certifi.where())
        )


def test_client_logs_and_reads_artifacts_over_https(
    tls_server: ServerProc, ws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import roost
    from roost import artifacts
    from roost.registry import backend

    monkeypatch.setenv("ROOST_SERVER", tls_server.url)
    monkeypatch.setenv("ROOST_TOKEN", tls_server.token)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    backend.reset()
    try:
        src = tmp_path / "note.txt"
        src.write_bytes(b"over tls\n")
        with roost.start_run(experiment="tls") as run:
            run.log_metric("loss", 0.5, step=1)
            run.log_artifact(src)
        got = roost.get_run(run.id)
        assert got["metrics"]["loss"] == 0.5 and got["user"] == "admin"
        assert got["artifact_uri"].startswith("roost+https://127.0.0.1:")
        fetched = artifacts.fetch(got["artifact_uri"] + "/note.txt", tmp_path / "fetched")
        assert Path(fetched).read_bytes() == b"over tls\n"
    finally:
        monkeypatch.delenv("ROOST_SERVER")
        backend.reset()


def test_session_cookie_is_secure_over_tls(tls_server: ServerProc) -> None:
    import re

    tls_server.account("carol", password="a long password for carol")
    with httpx.Client(base_url=tls_server.url, timeout=10, follow_redirects=False) as c:
        page = c.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf, page.text[:300]
        r = c.post("/login", data={"name": "carol", "password": "a long password for carol",
                                   "csrf_token": csrf.group(1)})  # fmt: skip
        assert r.status_code == 303, r.text
        cookies = r.headers.get_list("set-cookie")
        assert cookies and all("secure" in h.lower() for h in cookies), cookies
