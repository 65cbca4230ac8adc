"""fsspec-backed artifact store: file://, s3://, memory://, hdfs:// roots; paths checked to stay under the root."""
from __future__ import annotations

import posixpath
from pathlib import Path, PurePosixPath

from roost.errors import RoostError


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

    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path


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
    fs, path = _fs(dest_uri)
    fs.put(str(local), path, recursive=local.is_dir())


def list_files(root_uri: str) -> list[dict]:
    """Every file under an artifact root: relative path and size."""
    fs, root = _fs(root_uri if "://" in root_uri else "file://" + str(Path(root_uri).resolve()))
    if not fs.exists(root):
        return []
    out = []
    for p, info in sorted(fs.find(root, detail=True).items()):
        rel = posixpath.relpath(p, root)
        out.append({"path": rel, "size": info.get("size")})
    return out


def fetch(uri: str, cache_dir: Path) -> Path:
    """A local path for `uri`: itself when local, else a copy downloaded under `cache_dir`."""
    if is_local(uri):
        return local_path(uri)
    fs, path = _fs(uri)
    dest = cache_dir
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        fs.get(path.rstrip("/") + "/", str(tmp), recursive=True)
        tmp.rename(dest)
    return dest
