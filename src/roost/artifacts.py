"""fsspec-backed artifact store: file://, s3://, memory://, hdfs:// roots; paths checked to stay under the root."""
from __future__ import annotations

import contextlib
import posixpath
import sys
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from roost.errors import RoostError, redact_url

# botocore Config for s3:// roots: an unreachable endpoint fails within a few seconds (2 attempts x 3 s connect
# timeout at worst) instead of botocore's default 5 attempts x s3fs's 5 s. A server that accepts connections but
# never answers is bounded by read_timeout x 2 attempts x s3fs's own 5 retries. Keys set in fsspec's s3 config
# (FSSPEC_S3='{"config_kwargs": {...}}') win over these.
S3_CONFIG: dict[str, Any] = {"connect_timeout": 3, "read_timeout": 15,
                             "retries": {"total_max_attempts": 2, "mode": "standard"}}


def is_local(uri: str) -> bool:
    """True for plain paths and file:// URIs."""
    return "://" not in uri or uri.startswith("file://")


def local_path(uri: str) -> Path:
    """The local filesystem path of a file:// URI or plain path."""
    return Path(uri[len("file://"):] if uri.startswith("file://") else uri)


def safe_join(root: str, rel: str | None) -> str:
    """Join `rel` under `root`, refusing absolute paths and any '..' that would leave the root."""
    if rel in (None, "", "."):
        return root.rstrip("/")
    rel = str(rel).replace("\\", "/")
    if rel.startswith("/") or (len(rel) > 1 and rel[1] == ":") or "://" in rel:
        raise RoostError(f"artifact path {rel!r} is absolute", hint="artifact paths are relative to the run's root")
    norm = posixpath.normpath(rel)
    if norm == ".." or norm.startswith("../") or any(part == ".." for part in PurePosixPath(norm).parts):
        raise RoostError(f"artifact path {rel!r} escapes the artifact root",
                         hint="use a path inside the run, without '..'")
    return root.rstrip("/") + "/" + norm


def _fs(uri: str):  # noqa: ANN202
    import fsspec

    kwargs: dict[str, Any] = {}
    if uri.startswith(("s3://", "s3a://")):
        from urllib.parse import urlsplit

        if urlsplit(uri).password is not None:
            raise RoostError(f"artifact root {redact_url(uri)} carries credentials in the URL",
                             hint="drop them from the URL; S3 credentials come from AWS_ACCESS_KEY_ID/"
                                  "AWS_SECRET_ACCESS_KEY or ~/.aws")
        user = fsspec.config.conf.get("s3", {}).get("config_kwargs") or {}
        kwargs["config_kwargs"] = {**S3_CONFIG, **user}
    fs, path = fsspec.core.url_to_fs(uri, **kwargs)
    return fs, path


def _botocore_error(exc: BaseException, *names: str) -> bool:
    bc = sys.modules.get("botocore.exceptions")  # only loaded when s3fs is in use
    return bc is not None and isinstance(exc, tuple(getattr(bc, n) for n in names))


@contextlib.contextmanager
def remote(uri: str) -> Iterator[tuple[Any, str]]:
    """The fsspec filesystem and path of `uri`; an unreachable store raises a RoostError naming it (redacted)."""
    fs, path = _fs(uri)
    try:
        yield fs, path
    except Exception as exc:
        endpoint = getattr(fs, "endpoint_url", None) or (getattr(fs, "client_kwargs", None) or {}).get(
            "endpoint_url")
        proto = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        where = f"the S3 endpoint {redact_url(endpoint)}" if endpoint else f"the {proto} store"
        fs_timeout = getattr(sys.modules.get("fsspec.exceptions"), "FSTimeoutError", ())
        if _botocore_error(exc, "ConnectionError", "HTTPClientError") or isinstance(exc, fs_timeout):
            raise RoostError(f"cannot reach {where} for {redact_url(uri)}: {redact_url(str(exc))}",
                             hint="check FSSPEC_S3_ENDPOINT_URL and that the server is up, or point ROOST_ARTIFACTS "
                                  "(artifacts in roost.yaml) at a reachable root") from exc
        if _botocore_error(exc, "NoCredentialsError", "PartialCredentialsError"):
            raise RoostError(f"no S3 credentials for {redact_url(uri)} at {where}: {exc}",
                             hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or ~/.aws/credentials)") from exc
        raise


def put(local: str | Path, dest_uri: str) -> None:
    """Copy a local file or folder to `dest_uri`."""
    local = Path(local)
    if not local.exists():
        raise RoostError(f"artifact {local} does not exist", hint="check the path you passed to log_artifact")
    if is_local(dest_uri):
        import shutil

        dest = local_path(dest_uri)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if local.is_dir():
            shutil.copytree(local, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(local, dest)
        return
    with remote(dest_uri) as (fs, path):
        fs.put(str(local), path, recursive=local.is_dir())


def list_files(root_uri: str) -> list[dict]:
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
    """A local path for `uri`: itself when local, else a copy downloaded under `cache_dir`."""
    if is_local(uri):
        return local_path(uri)
    dest = cache_dir
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        with remote(uri) as (fs, path):
            fs.get(path.rstrip("/") + "/", str(tmp), recursive=True)
        tmp.rename(dest)
    return dest
