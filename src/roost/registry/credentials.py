"""Where a client's roost server and token come from: ROOST_SERVER + ROOST_TOKEN, else what `roost login` saved in
~/.config/roost/credentials.json (XDG_CONFIG_HOME honoured; written mode 0600, refused when others can read it)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from roost.errors import RoostError

SERVER_ENV, TOKEN_ENV = "ROOST_SERVER", "ROOST_TOKEN"
IN_SERVER_ENV = "ROOST_IN_SERVER"  # set in `roost server` processes: they never act as clients of a server


def path() -> Path:
    """The credentials file: $XDG_CONFIG_HOME/roost/credentials.json (default ~/.config)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "roost" / "credentials.json"


def _saved() -> dict[str, str] | None:
    p = path()
    try:
        st = p.stat()
    except FileNotFoundError:
        return None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise RoostError(
            f"{p} can be read by other users (mode {stat.filemode(st.st_mode)}): its token is not used",
            hint=f"chmod 600 {p} (or run `roost login` again)",
        )
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise RoostError(f"{p} is not valid JSON: {exc}", hint="run `roost login URL` again") from None
    if not isinstance(data, dict) or not isinstance(data.get("server"), str):
        raise RoostError(f"{p} has no server URL", hint="run `roost login URL` again")
    return {k: str(v) for k, v in data.items() if isinstance(v, str)}


def server() -> tuple[str, str | None] | None:
    """(server URL, token) this client talks to, or None when it uses its workspace's store directly."""
    if os.environ.get(IN_SERVER_ENV):
        return None
    url = os.environ.get(SERVER_ENV, "").strip()
    if url:
        return url.rstrip("/"), os.environ.get(TOKEN_ENV) or None
    saved = _saved()
    if saved is None:
        return None
    return saved["server"].rstrip("/"), saved.get("token")


def server_url() -> str | None:
    """The server URL this client talks to, or None."""
    found = server()
    return None if found is None else found[0]


def token_for(url: str) -> str | None:
    """The token to send to the server at `url` (ROOST_TOKEN, else the saved one when it is for that server)."""
    env = os.environ.get(TOKEN_ENV)
    if env:
        return env
    saved = _saved()
    if saved is not None and _origin(saved["server"]) == _origin(url):
        return saved.get("token")
    return None


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    u = urlsplit(url.replace("roost+", "", 1))
    return f"{u.scheme}://{u.netloc}".lower()


def save(url: str, token: str) -> Path:
    """Write the credentials file (mode 0600, created so; its folder 0700)."""
    p = path()
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = p.with_name(p.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"server": url.rstrip("/"), "token": token}, fh)
    os.chmod(tmp, 0o600)
    os.replace(tmp, p)
    return p


def forget() -> bool:
    """Remove the credentials file; False when there was none."""
    try:
        path().unlink()
    except FileNotFoundError:
        return False
    return True
