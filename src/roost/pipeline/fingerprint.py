"""What a task's cache key sees of its inputs: file contents (not paths), and references resolved to what they name.

A string or Path that names an existing file is keyed on the SHA-256 of its bytes (a folder or glob: of every
file in it); a YAML/JSON config file is also read and the files it names are keyed the same way, so editing
`train.yaml` or the table it points to invalidates the cached `train`. A `name@alias` string is keyed on the
model version the alias points to now. Tasks add their own resolved references (run prefix → id, alias state)
through `Task.refs`. Types that JSON would merge stay apart: dict keys 1, "1", 1.0, True and None, a tuple and a
list, and a set is keyed on its sorted contents (the same key under any PYTHONHASHSEED). What a file, glob or
alias becomes sits under a tagged key, so a params dict shaped like it ({"missing": path}) is not taken for it.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from roost import artifacts
from roost.errors import RoostError

log = logging.getLogger(__name__)

_ALIAS = re.compile(r"^[A-Za-z0-9][\w.-]*@[A-Za-z0-9][\w.-]*$")
_CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
MAX_DEPTH = 3  # config files naming config files: how deep the fingerprint follows them
MAX_FILES = 10_000  # files hashed for one folder or glob; more are keyed on size and mtime
_hashes: dict[tuple[str, int, int, int, int], str] = {}  # (path, size, mtime, ctime, inode) -> sha256, hashed once


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (memoised on path, size, modification and change times, inode)."""
    st = path.stat()
    memo = (str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)  # ctime: mtime can be set back
    hit = _hashes.get(memo)
    if hit is not None:
        return hit
    _hashes[memo] = artifacts.file_sha256(path)
    return _hashes[memo]


def _roots() -> list[Path]:
    """Where relative paths are looked up: the current folder, then the workspace root."""
    roots = [Path.cwd()]
    try:
        from roost import workspace

        roots.append(workspace.current().root)
    except RoostError:
        pass
    return roots


def _existing(text: str) -> list[Path]:
    """The files (or the one folder) a string names, [] when it names none."""
    if not text or len(text) > 4096 or "\n" in text or "\0" in text:
        return []
    for root in _roots():
        p = Path(text) if os.path.isabs(text) else root / text
        try:
            if p.is_file() or p.is_dir():
                return [p]
        except OSError:
            return []
        if any(c in text for c in "*?["):
            found = sorted(Path(m) for m in glob.glob(str(p), recursive=True) if os.path.isfile(m))
            if found:
                return found
    return []


def _folder(path: Path) -> list[list[Any]]:
    """[relative name, sha256] for every file under a folder (size and mtime past MAX_FILES files)."""
    out: list[list[Any]] = []
    for i, f in enumerate(sorted(p for p in path.rglob("*") if p.is_file())):
        rel = str(f.relative_to(path))
        if i < MAX_FILES:
            out.append([rel, file_sha256(f)])
        else:
            st = f.stat()
            out.append([rel, st.st_size, st.st_mtime_ns])
    return out


def _config_values(path: Path) -> Any:
    """The parsed content of a YAML/JSON config file (None when it does not parse)."""
    try:
        if path.suffix == ".json":
            return json.loads(path.read_text())
        import yaml

        return yaml.safe_load(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        log.debug("not following %s for the cache key: %s", path, exc)
        return None
    except Exception as exc:  # noqa: BLE001 - yaml.YAMLError: a file that is not a config is just bytes
        log.debug("not following %s for the cache key: %s", path, exc)
        return None


def _file(path: Path, depth: int) -> dict[str, Any]:
    """The key of one file or folder: its content hash, and what a config file names."""
    if path.is_dir():
        return {"folder": str(path.resolve()), "files": _folder(path)}
    out: dict[str, Any] = {"file": str(path.resolve()), "sha256": file_sha256(path)}
    if path.suffix in _CONFIG_SUFFIXES and depth < MAX_DEPTH:
        inner = _config_values(path)
        if inner is not None:
            out["names"] = fingerprint(inner, depth + 1)
    return out


def resolve_alias(ref: str) -> int | None:
    """The version `name@alias` points to now (None when the model or alias does not exist); fetches nothing."""
    from roost.registry import api

    name, _, alias = ref.partition("@")
    try:
        versions = api.list_versions(name)
    except RoostError:
        return None
    return next((v.version for v in versions if alias in (v.aliases or [])), None)


TAG = "\x00"  # starts roost's type tags in a key; a user's string key that starts with it is escaped, so no forgery


def dict_key(k: Any) -> str:
    """A string stand-in for a dict key that keeps its type: 1, "1", 1.0, True and None stay five keys."""
    if isinstance(k, str):
        return f"{TAG}str:{k}" if k.startswith(TAG) else k  # ordinary keys unchanged: existing keys stay valid
    text = canonical_json(structure(k))
    return f"{TAG}{type(k).__qualname__}:{text}"


def canonical_json(v: Any) -> str:
    """JSON text with sorted keys (objects JSON cannot write by their repr): one text per value in every process,
    what keys sort sets by and what codehash's entries are."""
    return json.dumps(v, sort_keys=True, default=repr)


def _walk(value: Any, depth: int, files: bool) -> Any:
    """JSON-ready stand-in for `value` keeping types JSON would merge; files hashed and aliases resolved if `files`."""
    if isinstance(value, dict):
        return {dict_key(k): _walk(v, depth, files) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, depth, files) for v in value]
    if isinstance(value, tuple):  # JSON would write a tuple as a list: a task can tell them apart
        return {f"{TAG}tuple": [_walk(v, depth, files) for v in value]}
    if isinstance(value, (set, frozenset)):  # sorted: iteration order follows PYTHONHASHSEED
        items = sorted((_walk(v, depth, files) for v in value), key=canonical_json)
        return {f"{TAG}{type(value).__name__}": items}
    if not files:
        return value
    # what a file, glob or alias becomes sits under a tagged key: a user's dict of the same shape stays apart
    if isinstance(value, Path):
        return {f"{TAG}Path": _file(value, depth) if value.exists() else {"missing": str(value)}}
    if isinstance(value, str):
        found = _existing(value)
        if found and not any(c in value for c in "*?["):
            return {f"{TAG}file": {"path": value, **_file(found[0], depth)}}
        if found:
            return {f"{TAG}glob": {"glob": value, "files": [[str(f), file_sha256(f)] for f in found[:MAX_FILES]]}}
        if _ALIAS.match(value):
            return {f"{TAG}alias": {"alias": value, "version": resolve_alias(value)}}
    return value


def structure(value: Any) -> Any:
    """A JSON-ready stand-in for `value` that keeps key types, tuples and set contents (no file or alias lookups)."""
    return _walk(value, 0, files=False)


def fingerprint(value: Any, depth: int = 0) -> Any:
    """A JSON-ready stand-in for `value` in which files are content hashes and aliases resolved versions."""
    return _walk(value, depth, files=True)
