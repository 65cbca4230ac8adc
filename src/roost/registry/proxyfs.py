"""An fsspec filesystem for roost+http:// and roost+https:// URIs: a run's artifacts behind a `roost server`'s
artifact proxy (roost+https://HOST/api/v1/artifacts/runs/RUN_ID/PATH), reached with the client's token, so
roost.artifacts (put_tree, fetch, list_files) and roost.load_model work through the server unchanged."""

from __future__ import annotations

import io
import posixpath
import tempfile
from typing import Any

from fsspec.spec import AbstractFileSystem

from roost.errors import RoostError

PROTOCOLS = ("roost+http", "roost+https")


def fs_options(uri: str) -> dict[str, Any]:
    """The filesystem's options for `uri`: the token configured for its server (roost.artifacts.FS_OPTIONS)."""
    from roost.registry.credentials import token_for

    return {"token": token_for(uri)}


class ProxyFileSystem(AbstractFileSystem):
    """Files of runs behind a roost server's artifact proxy (paths are the plain http(s) URLs)."""

    protocol = PROTOCOLS
    root_marker = ""

    def __init__(self, token: str | None = None, **kwargs: Any) -> None:
        import httpx

        super().__init__(**kwargs)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(headers=headers, timeout=httpx.Timeout(300.0, connect=5.0))

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        p = str(path)
        if p.startswith("roost+"):
            p = p[len("roost+") :]
        return p.rstrip("/")

    def unstrip_protocol(self, name: str) -> str:
        """The roost+http(s) URI of a path."""
        return name if name.startswith("roost+") else "roost+" + name

    def _check(self, resp: Any, path: str) -> Any:
        if resp.status_code < 400:
            return resp
        try:
            msg = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            msg = f"HTTP {resp.status_code}"
        if resp.status_code == 404:
            raise FileNotFoundError(path)
        if resp.status_code in (401, 403):
            raise PermissionError(f"{path}: {msg}")
        raise RoostError(f"the roost server refused {path}: {msg}")

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """{'name', 'size', 'type'} of a file or folder."""
        path = self._strip_protocol(path)
        got = self._check(self._http.get(path, params={"stat": "1"}), path).json()
        return {"name": path, "size": got.get("size") or 0, "type": got["type"]}

    def _files(self, path: str) -> dict[str, dict[str, Any]]:
        path = self._strip_protocol(path)
        resp = self._check(self._http.get(path), path)
        if resp.headers.get("x-roost-kind") != "directory":
            return {path: {"name": path, "size": int(resp.headers.get("content-length") or 0), "type": "file"}}
        return {
            f"{path}/{f['path']}": {"name": f"{path}/{f['path']}", "size": f.get("size") or 0, "type": "file"}
            for f in resp.json()["files"]
        }

    def find(self, path: str, maxdepth: int | None = None, withdirs: bool = False, detail: bool = False,
             **kwargs: Any) -> Any:  # fmt: skip
        """Every file under `path` (one request)."""
        try:
            found = self._files(path)
        except FileNotFoundError:
            found = {}
        return found if detail else sorted(found)

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """The files and folders right under `path`."""
        base = self._strip_protocol(path)
        out: dict[str, dict[str, Any]] = {}
        for name, info in self._files(base).items():
            rest = posixpath.relpath(name, base)
            head = rest.split("/", 1)[0]
            if "/" in rest:
                out.setdefault(f"{base}/{head}", {"name": f"{base}/{head}", "size": 0, "type": "directory"})
            else:
                out[name] = info
        items = sorted(out.values(), key=lambda i: str(i["name"]))
        return items if detail else [i["name"] for i in items]

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        """The bytes of a file."""
        path = self._strip_protocol(path)
        data: bytes = self._check(self._http.get(path), path).content
        return data[start:end]

    def get_file(self, rpath: str, lpath: str, **kwargs: Any) -> None:
        """Download a file, streamed to `lpath`."""
        rpath = self._strip_protocol(rpath)
        with self._http.stream("GET", rpath) as resp:
            if resp.status_code >= 400:
                resp.read()
                self._check(resp, rpath)
            with open(lpath, "wb") as out:
                for block in resp.iter_bytes(1 << 20):
                    out.write(block)

    def put_file(self, lpath: str, rpath: str, **kwargs: Any) -> None:
        """Upload a file, streamed from `lpath`."""
        rpath = self._strip_protocol(rpath)
        with open(lpath, "rb") as fh:
            self._check(self._http.put(rpath, content=fh), rpath)

    def _put_bytes(self, rpath: str, fh: Any) -> None:
        fh.seek(0)
        self._check(self._http.put(rpath, content=fh), rpath)

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        path = self._strip_protocol(path)
        if "r" in mode:
            return io.BytesIO(self.cat_file(path))
        return _Upload(self, path)

    def rm_file(self, path: str) -> None:
        """Remove a file."""
        path = self._strip_protocol(path)
        self._check(self._http.delete(path), path)

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        """Remove files or folders (the server removes a folder whole)."""
        for p in path if isinstance(path, list) else [path]:
            self.rm_file(p)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Folders exist implicitly."""

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Folders exist implicitly."""


class _Upload(io.BufferedIOBase):
    """A file opened for writing: spooled locally, sent with one PUT when closed."""

    def __init__(self, fs: ProxyFileSystem, path: str) -> None:
        super().__init__()
        self._fs, self._path = fs, path
        self._spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)

    def writable(self) -> bool:
        """Always."""
        return True

    def write(self, data: Any) -> int:
        """Buffer `data`."""
        return self._spool.write(data)

    def close(self) -> None:
        """Send the file and close."""
        if not self.closed:
            try:
                self._fs._put_bytes(self._path, self._spool)
            finally:
                self._spool.close()
                super().close()
