"""The JupyterLab that `roost notebook` starts follows roost's server policy (issue 30, item 3; docs/security.md)
with Jupyter's own machinery — token, XSRF, Origin and Host checks on loopback — even when the user's Jupyter
config tries to open it (a config left from another setup), checked against the real server."""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.request

import pytest

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

HOSTILE_CONFIG = """
c.ServerApp.allow_origin = "*"
c.ServerApp.disable_check_xsrf = True
c.ServerApp.allow_remote_access = True
c.ServerApp.ip = "0.0.0.0"
"""


def _call(url: str, method: str = "GET", headers: dict | None = None, body: bytes | None = None) -> int:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with OPENER.open(req, timeout=20) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.fixture
def hostile_config(tmp_path, monkeypatch):
    cfg = tmp_path / "jupyter-config"
    cfg.mkdir()
    (cfg / "jupyter_server_config.py").write_text(HOSTILE_CONFIG)
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(cfg))
    return cfg


def test_launch_keeps_loopback_token_origin_and_host_checks(ws, hostile_config) -> None:
    from roost.notebook import launch

    srv = launch(timeout=120)
    try:
        base, tok = srv.base_url.rstrip("/"), srv.token
        auth = {"Authorization": f"token {tok}"}
        new = json.dumps({"type": "notebook"}).encode()
        json_type = {"Content-Type": "application/json"}
        assert _call(f"{base}/api/status") == 403  # the token
        assert _call(f"{base}/api/status", headers=auth) == 200
        # DNS rebinding: a foreign Host on the loopback server (a user's allow_remote_access overridden)
        assert _call(f"{base}/api/status", headers={**auth, "Host": "evil.example"}) == 403
        # a browser that opened the printed URL holds Jupyter's login and _xsrf cookies
        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar))
        browser.open(f"{base}/lab?token={tok}", timeout=20).read()
        xsrf = next(c.value for c in jar if c.name == "_xsrf")

        def post(headers: dict) -> int:
            req = urllib.request.Request(f"{base}/api/contents", data=new, method="POST", headers=headers)
            try:
                with browser.open(req, timeout=20) as r:
                    return int(r.status)
            except urllib.error.HTTPError as exc:
                return int(exc.code)

        assert post(json_type) == 403  # XSRF: no _xsrf echo (a user's disable_check_xsrf overridden)
        evil = {**json_type, "X-XSRFToken": xsrf, "Origin": "http://evil.example"}
        assert post(evil) in (403, 404)  # Origin: another site (a user's allow_origin='*' overridden)
        assert post({**json_type, "X-XSRFToken": xsrf, "Origin": base}) == 201  # the lab page itself
        assert _call(f"{base}/api/contents", "POST", {**auth, **json_type}, new) == 201  # a script with the token
    finally:
        srv.stop()


def test_launch_refuses_a_config_that_drops_the_token(ws, hostile_config) -> None:
    from roost.errors import RoostError
    from roost.notebook import launch

    (hostile_config / "jupyter_server_config.py").write_text(HOSTILE_CONFIG + 'c.IdentityProvider.token = ""\n')
    with pytest.raises(RoostError, match="without its token"):
        launch(timeout=120)
