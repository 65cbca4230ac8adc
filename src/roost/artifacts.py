"""fsspec-backed artifact store: file://, s3://, memory://, hdfs:// roots; paths checked to stay under the root."""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from roost.errors import NotFoundError, RoostError, redact_url

# botocore Config for s3:// roots: an unreachable endpoint fails within a few seconds (2 attempts x 3 s connect
# timeout at worst) instead of botocore's default 5 attempts x s3fs's 5 s. A server that accepts connections but
# never answers is bounded by read_timeout x 2 attempts x s3fs's own 5 retries. Keys set in fsspec's s3 config
# (FSSPEC_S3='{"config_kwargs": {...}}') win over these.
S3_CONFIG: dict[str, Any] = {
    "connect_timeout": 3,
    "read_timeout": 15,
    "retries": {"total_max_attempts": 2, "mode": "standard"},
}


def is_local(uri: str) -> bool:
    """True for plain paths and file:// URIs."""
    return "://" not in uri or uri.startswith("file://")


def local_path(uri: str) -> Path:
    """The local filesystem path of a file:// URI or plain path."""
    return Path(uri[len("file://") :] if uri.startswith("file://") else uri)


def safe_join(root: str, rel: str | None) -> str:
    """Join `rel` under `root`, refusing absolute paths and any '..' that would leave the root."""
    if rel is None or rel in ("", "."):
        return root.rstrip("/")
    if "\x00" in str(rel):
        raise RoostError(f"artifact path {rel!r} contains a NUL byte", hint="use a plain relative path")
    rel = str(rel).replace("\\", "/")
    if rel.startswith("/") or (len(rel) > 1 and rel[1] == ":") or "://" in rel:
        raise RoostError(f"artifact path {rel!r} is absolute", hint="artifact paths are relative to the run's root")
    norm = posixpath.normpath(rel)
    if norm == ".." or norm.startswith("../") or any(part == ".." for part in PurePosixPath(norm).parts):
        raise RoostError(
            f"artifact path {rel!r} escapes the artifact root", hint="use a path inside the run, without '..'"
        )
    return root.rstrip("/") + "/" + norm


def check_inside(root: str | Path, dest: str | Path) -> Path:
    """`dest` with symlinks resolved, or a RoostError when it lands outside `root` (a local folder or file:// URI)."""
    base = local_path(str(root)).resolve()
    real = local_path(str(dest)).resolve()
    if real != base and not real.is_relative_to(base):
        raise RoostError(
            f"artifact destination {dest} escapes the artifact root {base} (it resolves to {real})",
            hint="a symlink in the run's artifact folder points outside it; remove it or log under another name",
        )
    return real


def _s3_options(uri: str) -> dict[str, Any]:
    """fsspec options of an s3:// root: bounded timeouts and retries; credentials never in the URL."""
    from urllib.parse import urlsplit

    import fsspec

    if urlsplit(uri).password is not None:
        raise RoostError(
            f"artifact root {redact_url(uri)} carries credentials in the URL",
            hint="drop them from the URL; S3 credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws",
        )
    user = fsspec.config.conf.get("s3", {}).get("config_kwargs") or {}
    return {"config_kwargs": {**S3_CONFIG, **user}}


# URL scheme -> "module:function" giving the fsspec options of that scheme (others: fsspec's defaults)
FS_OPTIONS: dict[str, str] = {
    "s3": "roost.artifacts:_s3_options",
    "s3a": "roost.artifacts:_s3_options",
    # a roost server's artifact proxy, with the client's token (roost.registry.proxyfs)
    "roost+http": "roost.registry.proxyfs:fs_options",
    "roost+https": "roost.registry.proxyfs:fs_options",
}
# fsspec filesystems roost provides, registered by name on first use (imported only when a URI needs them)
FS_CLASSES: dict[str, str] = {
    "roost+http": "roost.registry.proxyfs.ProxyFileSystem",
    "roost+https": "roost.registry.proxyfs.ProxyFileSystem",
}


def filesystem(uri: str) -> tuple[Any, str]:
    """The fsspec filesystem and the path within it of an artifact URI (options chosen by scheme)."""
    import importlib

    import fsspec

    scheme = uri.split("://", 1)[0].lower() if "://" in uri else "file"
    if scheme in FS_CLASSES and scheme not in fsspec.registry:
        fsspec.register_implementation(scheme, FS_CLASSES[scheme], clobber=True)
    kwargs: dict[str, Any] = {}
    spec = FS_OPTIONS.get(scheme)
    if spec is not None:
        module, _, func = spec.partition(":")
        kwargs = getattr(importlib.import_module(module), func)(uri)
    fs, path = fsspec.core.url_to_fs(uri, **kwargs)
    return fs, str(path)


def _botocore_error(exc: BaseException, *names: str) -> bool:
    bc = sys.modules.get("botocore.exceptions")  # only loaded when s3fs is in use
    return bc is not None and isinstance(exc, tuple(getattr(bc, n) for n in names))


@contextlib.contextmanager
def remote(uri: str) -> Iterator[tuple[Any, str]]:
    """The fsspec filesystem and path of `uri`; an unreachable store raises a RoostError naming it (redacted)."""
    fs, path = filesystem(uri)
    try:
        yield fs, path
    except Exception as exc:
        endpoint = getattr(fs, "endpoint_url", None) or (getattr(fs, "client_kwargs", None) or {}).get("endpoint_url")
        proto = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        where = f"the S3 endpoint {redact_url(endpoint)}" if endpoint else f"the {proto} store"
        fs_timeout = getattr(sys.modules.get("fsspec.exceptions"), "FSTimeoutError", ())
        if _botocore_error(exc, "ConnectionError", "HTTPClientError") or isinstance(exc, fs_timeout):
            raise RoostError(
                f"cannot reach {where} for {redact_url(uri)}: {redact_url(str(exc))}",
                hint="check FSSPEC_S3_ENDPOINT_URL and that the server is up, or point ROOST_ARTIFACTS "
                "(artifacts in roost.yaml) at a reachable root",
            ) from exc
        if _botocore_error(exc, "NoCredentialsError", "PartialCredentialsError"):
            raise RoostError(
                f"no S3 credentials for {redact_url(uri)} at {where}: {exc}",
                hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or ~/.aws/credentials)",
            ) from exc
        raise


def put(local: str | Path, dest_uri: str, root: str | None = None) -> None:
    """Copy a local file or folder to `dest_uri` (a folder's files land under `dest_uri`, never one level down).

    With `root` (a local artifact root), a destination that resolves outside it (through a symlink) is refused.
    """
    local = Path(local)
    if not local.exists():
        raise RoostError(f"artifact {local} does not exist", hint="check the path you passed to log_artifact")
    if local.is_dir():
        put_tree(local, dest_uri, root=root)
        return
    if is_local(dest_uri):
        dest = local_path(dest_uri)
        if root is not None and is_local(root):
            check_inside(root, dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(local, dest)
        return
    with remote(dest_uri) as (fs, path):
        fs.put_file(str(local), path)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a local file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_files(local_dir: Path) -> list[str]:
    """Relative POSIX paths of every file under `local_dir`, sorted."""
    local_dir = Path(local_dir)
    return sorted(p.relative_to(local_dir).as_posix() for p in local_dir.rglob("*") if p.is_file())


def put_tree(
    local_dir: str | Path, dest_uri: str, rels: Iterable[str] | None = None, root: str | None = None
) -> list[str]:
    """Copy the files under `local_dir` (all, or only the relative paths `rels`) to `dest_uri`/<rel>.

    One call for the whole batch (s3fs uploads the files concurrently); returns the paths copied. With `root` (a
    local artifact root), destinations that resolve outside it (through a symlink) are refused before any copy.
    """
    local_dir = Path(local_dir)
    rels = tree_files(local_dir) if rels is None else [str(r) for r in rels]
    if not rels:
        return []
    if is_local(dest_uri):
        base = local_path(dest_uri)
        if root is not None and is_local(root):
            check_inside(root, base)
            for r in rels:
                check_inside(root, base / r)
        for r in rels:
            dest = base / r
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not (dest.exists() and os.path.samefile(local_dir / r, dest)):
                shutil.copy2(local_dir / r, dest)
        return rels
    with remote(dest_uri) as (fs, dest_root):
        fs.put([str(local_dir / r) for r in rels], [dest_root.rstrip("/") + "/" + r for r in rels])
    return rels


def list_files(root_uri: str) -> list[dict[str, Any]]:
    """Every file under an artifact root: relative path and size."""
    uri = root_uri if "://" in root_uri else "file://" + str(Path(root_uri).resolve())
    with remote(uri) as (fs, root):
        if not fs.exists(root):
            return []
        found = fs.find(root, detail=True)
    out = []
    for p, info in sorted(found.items()):
        rel = posixpath.relpath(p, root)
        out.append({"path": rel, "size": info.get("size")})
    return out


def fetch(uri: str, cache_dir: Path) -> Path:
    """A local path for `uri` (a folder or one file): itself when local, else a copy downloaded to `cache_dir`.

    The download lands in a `.part` sibling first and is renamed into place, so an interrupted one is never taken
    for a complete copy (and is started afresh the next time).
    """
    if is_local(uri):
        return local_path(uri)
    dest = Path(cache_dir)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.part{os.getpid()}")
    if tmp.is_dir():
        shutil.rmtree(tmp)
    elif tmp.exists():
        tmp.unlink()
    with remote(uri) as (fs, fs_path):
        path = fs_path.rstrip("/")
        if fs.isfile(path):
            fs.get_file(path, str(tmp))
        else:
            files = fs.find(path)
            if not files:
                raise NotFoundError(
                    f"nothing stored at {redact_url(uri)}",
                    hint="check the artifact path (roost runs show RUN_ID lists a run's files)",
                )
            rels = [posixpath.relpath(f, path) for f in files]
            for r in rels:
                (tmp / r).parent.mkdir(parents=True, exist_ok=True)
            fs.get(files, [str(tmp / r) for r in rels])
    try:
        tmp.rename(dest)
    except OSError:  # another process finished the same download first
        if not dest.exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
    return dest
