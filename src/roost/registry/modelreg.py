"""Registered models, versions and aliases (`churn@prod`, `churn/3`) on a Store."""

from __future__ import annotations

import getpass
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from roost import artifacts
from roost.errors import NotFoundError, RoostError, closest
from roost.registry.store import Store, aware, utcnow
from roost.registry.tables import Alias, AliasHistory, ModelVersion, RegisteredModel

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")  # ASCII only, matched whole (fullmatch: no trailing newline)
NAME_MAX = 256  # registered_models.name is VARCHAR(256)
ALIAS_MAX = 128  # model_aliases.alias is VARCHAR(128)
VERSION_MAX = 2**31 - 1  # model_versions.version is INTEGER (32 bits on PostgreSQL)
LATEST = "latest"  # 'name@latest' means the latest version, as 'name' does: no alias may take the name
_NUMBER = re.compile(r"[0-9][0-9.]*")


@dataclass
class ModelVersionInfo:
    """One model version: where its package is and what produced it."""

    name: str
    version: int
    run_id: str | None
    source: str
    created_at: datetime | None
    aliases: list[str] = field(default_factory=list)
    signature: dict[str, Any] | None = None
    meta: dict[str, Any] | None = None
    local_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "source": self.source,
            "created_at": self.created_at,
            "aliases": self.aliases,
            "signature": self.signature,
            "meta": self.meta,
            "local_path": str(self.local_path) if self.local_path else None,
        }


def _check_name(name: str, what: str, longest: int = NAME_MAX) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = repr(name) if not isinstance(name, str) or len(name) <= 60 else repr(name[:60]) + "…"
        raise RoostError(
            f"invalid {what} {shown}", hint="start with a letter or digit; then ASCII letters, digits, '_', '-' or '.'"
        )
    if len(name) > longest:
        raise RoostError(f"invalid {what} {name[:60]!r}…: {len(name)} characters", hint=f"use at most {longest}")


def version_number(version: Any) -> int:
    """`version` as a model version number (an int, or text of ASCII digits); RoostError for anything else."""
    if isinstance(version, bool) or not isinstance(version, int | str):
        raise RoostError(f"model version {version!r} is not a whole number", hint="versions are 1, 2, 3, …")
    if isinstance(version, str):
        if not (version.isascii() and version.isdigit()):
            raise RoostError(f"model version {_cut(version)!r} is not a whole number", hint="versions are 1, 2, 3, …")
        if len(version.lstrip("0")) > _VERSION_DIGITS:  # int() of 4,300+ digits raises ValueError
            raise RoostError(
                f"model version {_cut(version)!r} is out of range", hint=f"versions are 1 … {VERSION_MAX:,}"
            )
        return int(version)
    return version


def _parse_package_file(where: str, name: str, text: str | bytes) -> dict[str, Any] | None:
    """signature.json or roost-model.yaml of a package as a mapping; a RoostError naming the file otherwise."""
    import yaml

    try:
        value = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RoostError(
            f"{where}/{name} is not valid {'JSON' if name.endswith('.json') else 'YAML'}: {first}",
            hint="fix or remove the file, or export the model package again",
        ) from None
    if value is not None and not isinstance(value, dict):
        raise RoostError(
            f"{where}/{name} holds a {type(value).__name__}, not a mapping",
            hint="fix or remove the file, or export the model package again",
        )
    return value


def _mapping(value: Any) -> dict[str, Any] | None:
    """A stored signature/meta that is a mapping, else None (versions registered before they were checked)."""
    return value if isinstance(value, dict) else None


def _read_package_files(local: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    sig = meta = None
    if (local / "signature.json").is_file():
        sig = _parse_package_file(str(local), "signature.json", (local / "signature.json").read_text())
    if (local / "roost-model.yaml").is_file():
        meta = _parse_package_file(str(local), "roost-model.yaml", (local / "roost-model.yaml").read_text())
    return sig, meta


def _read_remote_package_files(source: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """signature.json and roost-model.yaml of a package on a remote filesystem (fsspec)."""
    from roost.errors import redact_url

    sig = meta = None
    with artifacts.remote(source) as (fs, root):
        root = root.rstrip("/")
        if not fs.exists(root):
            raise NotFoundError(
                f"no model package at {redact_url(source)}",
                hint="pass the artifact path the model was logged under, e.g. path='model'",
            )
        if fs.exists(root + "/signature.json"):
            sig = _parse_package_file(redact_url(source), "signature.json", fs.cat(root + "/signature.json"))
        if fs.exists(root + "/roost-model.yaml"):
            meta = _parse_package_file(redact_url(source), "roost-model.yaml", fs.cat(root + "/roost-model.yaml"))
    return sig, meta


def register(store: Store, name: str, source: str, run_id: str | None) -> ModelVersionInfo:
    """Create the next version of model `name` pointing at the package at `source`."""
    _check_name(name, "model name")
    sig = meta = None
    if artifacts.is_local(source):
        local = artifacts.local_path(source)
        if not local.exists():
            raise NotFoundError(
                f"no model package at {local}",
                hint="pass the artifact path the model was logged under, e.g. path='model'",
            )
        sig, meta = _read_package_files(local)
    else:
        sig, meta = _read_remote_package_files(source)
    for attempt in range(20):  # concurrent registrations: the loser of a version-number race retries
        try:
            with store.write() as s:
                if s.get(RegisteredModel, name) is None:
                    s.add(RegisteredModel(name=name, created_at=utcnow()))
                    s.flush()
                nxt = (s.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.name == name)) or 0) + 1
                s.add(
                    ModelVersion(
                        name=name,
                        version=nxt,
                        run_id=run_id,
                        source=source,
                        signature=sig,
                        meta=meta,
                        created_at=utcnow(),
                    )
                )
            return get_version(store, name, nxt)
        except IntegrityError:
            if attempt == 19:
                raise
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def set_alias(store: Store, name: str, version: int, alias: str, user: str | None = None) -> bool:
    """Point `name@alias` at `version`, recording the move (and who made it: `user`, else the OS user) in the alias
    history; False (nothing recorded) when it already points there."""
    _check_name(alias, "alias", ALIAS_MAX)
    if _NUMBER.fullmatch(alias):
        raise RoostError(f"alias {alias!r} is a number", hint="aliases are names like prod or staging")
    if alias.lower() == LATEST:
        raise RoostError(
            f"alias {alias!r} is reserved: {name}@{LATEST} always means the latest version",
            hint="pick another name, e.g. newest or candidate",
        )
    version = version_number(version)
    get_version(store, name, version)  # raises when missing
    with store.write() as s:
        cur = s.get(Alias, (name, alias))
        prev = cur.version if cur else None
        if prev == version:  # not a move: the history keeps moves only
            return False
        s.merge(Alias(name=name, alias=alias, version=version))
        s.add(
            AliasHistory(
                name=name,
                alias=alias,
                version=version,
                previous_version=prev,
                changed_at=utcnow(),
                user=user or _user(),
            )
        )
    return True


def delete_alias(store: Store, name: str, alias: str, user: str | None = None) -> None:
    """Remove `name@alias` (recorded in the alias history as made by `user`, else the OS user)."""
    with store.write() as s:
        cur = s.get(Alias, (name, alias))
        if cur is None:
            raise NotFoundError(f"model {name!r} has no alias {alias!r}")
        s.execute(delete(Alias).where(Alias.name == name, Alias.alias == alias))
        s.add(
            AliasHistory(
                name=name,
                alias=alias,
                version=None,
                previous_version=cur.version,
                changed_at=utcnow(),
                user=user or _user(),
            )
        )


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return None


def _model_names(store: Store) -> list[str]:
    with store.read() as s:
        return list(s.scalars(select(RegisteredModel.name)))


def get_version(store: Store, name: str, version: int) -> ModelVersionInfo:
    """One version of a model."""
    version = version_number(version)
    with store.read() as s:
        mv = s.get(ModelVersion, (name, version)) if 1 <= version <= VERSION_MAX else None
        if mv is None:
            if s.get(RegisteredModel, name) is None:
                near = closest(name, _model_names(store))
                raise NotFoundError(
                    f"model {name!r} not found", hint=f"did you mean {near!r}?" if near else "see `roost models list`"
                )
            raise NotFoundError(f"model {name!r} has no version {version}", hint=f"see `roost models versions {name}`")
        aliases = list(s.scalars(select(Alias.alias).where(Alias.name == name, Alias.version == mv.version)))
        return _info(mv, aliases)


def _info(mv: ModelVersion, aliases: list[str]) -> ModelVersionInfo:
    """The record of a version row and the aliases pointing at it."""
    sig, meta = _mapping(mv.signature), _mapping(mv.meta)
    return ModelVersionInfo(mv.name, mv.version, mv.run_id, mv.source, aware(mv.created_at), sorted(aliases), sig, meta)


def list_models(store: Store) -> list[dict[str, Any]]:
    """Registered models with their latest version and aliases."""
    with store.read() as s:
        latest = dict(
            s.execute(select(ModelVersion.name, func.max(ModelVersion.version)).group_by(ModelVersion.name)).all()
        )
        aliases: dict[str, dict[str, int]] = {}
        for a in s.scalars(select(Alias)):
            aliases.setdefault(a.name, {})[a.alias] = a.version
        return [
            {
                "name": m.name,
                "latest_version": latest.get(m.name),
                "aliases": aliases.get(m.name, {}),
                "created_at": aware(m.created_at),
            }
            for m in s.scalars(select(RegisteredModel).order_by(RegisteredModel.name))
        ]


def change_marker(store: Store) -> tuple[int, int, int, int]:
    """A cheap marker of the registry's model tables: (versions, latest version id sum, alias moves, last move id);
    it changes whenever a version is registered or deleted or an alias is set, moved or deleted (a server watching
    the registry re-reads list_models only then)."""
    with store.read() as s:
        versions, vsum = s.execute(select(func.count(), func.coalesce(func.sum(ModelVersion.version), 0))).one()
        moves, last = s.execute(select(func.count(), func.coalesce(func.max(AliasHistory.id), 0))).one()
    return int(versions), int(vsum), int(moves), int(last)


def list_versions(store: Store, name: str) -> list[ModelVersionInfo]:
    """All versions of a model, oldest first."""
    with store.read() as s:
        if s.get(RegisteredModel, name) is None:
            near = closest(name, _model_names(store))
            raise NotFoundError(
                f"model {name!r} not found", hint=f"did you mean {near!r}?" if near else "see `roost models list`"
            )
        aliases: dict[int, list[str]] = {}
        for a in s.scalars(select(Alias).where(Alias.name == name)):
            aliases.setdefault(a.version, []).append(a.alias)
        rows = s.scalars(select(ModelVersion).where(ModelVersion.name == name).order_by(ModelVersion.version))
        return [_info(mv, aliases.get(mv.version, [])) for mv in rows]  # one read (was 2 queries per version)


def alias_history(store: Store, name: str) -> list[dict[str, Any]]:
    """Every alias move of a model, oldest first."""
    with store.read() as s:
        return [
            {
                "alias": h.alias,
                "version": h.version,
                "previous_version": h.previous_version,
                "changed_at": aware(h.changed_at),
                "user": h.user,
            }
            for h in s.scalars(select(AliasHistory).where(AliasHistory.name == name).order_by(AliasHistory.id))
        ]


_VERSION_DIGITS = 100  # longer version numbers are refused as references (int() of 4,300+ digits raises)


def _cut(text: str, n: int = 80) -> str:
    """`text` cut to `n` characters for a message (a 10,000-character reference is not echoed whole)."""
    return text if len(text) <= n else text[:n] + "…"


def parse_uri(uri: str) -> tuple[str, str | None, int | None]:
    """Split 'name@alias' / 'name/3' / 'name' into (name, alias, version); RoostError when it is none of them."""
    name, alias, ver = uri, None, None
    if "@" in uri:
        name, alias = uri.split("@", 1)
    elif "/" in uri:
        name, ver = uri.rsplit("/", 1)
    ok = _NAME.fullmatch(name) is not None and (alias is None or _NAME.fullmatch(alias) is not None)
    if not ok or (ver is not None and not (ver.isascii() and ver.isdigit())):
        raise RoostError(f"bad model reference {_cut(uri)!r}", hint="use name@alias, name/VERSION or name")
    if ver is not None and len(ver.lstrip("0")) > _VERSION_DIGITS:  # int() of 4,300+ digits raises ValueError
        raise RoostError(
            f"bad model reference {_cut(uri)!r}: the version has {len(ver):,} digits (at most {VERSION_MAX:,})",
            hint="use name@alias, name/VERSION or name",
        )
    return name, alias, None if ver is None else int(ver)


def resolve(store: Store, uri: str, cache_root: Path | None = None) -> ModelVersionInfo:
    """Resolve 'name@alias' | 'name/3' | 'name' (latest) to a version with a local package path."""
    return fetch_package(lookup(store, uri), cache_root)


def lookup(store: Store, uri: str) -> ModelVersionInfo:
    """Resolve 'name@alias' | 'name/3' | 'name' (latest) to its version record (nothing downloaded)."""
    name, alias, version = parse_uri(uri)
    if alias is not None and alias.lower() == LATEST and not has_alias(store, name, alias):
        alias = None  # 'name@latest': the latest version (an alias of that name, from before it was reserved, wins)
    if alias is not None:
        with store.read() as s:
            a = s.get(Alias, (name, alias))
            if a is None:
                known = list(s.scalars(select(Alias.alias).where(Alias.name == name)))
        if a is None:
            if name not in _model_names(store):
                get_version(store, name, 1)  # raises model-not-found with a suggestion
            near = closest(alias, known)
            raise NotFoundError(
                f"model {name!r} has no alias {alias!r}",
                hint=(f"did you mean {name}@{near}? " if near else "")
                + f"set one with `roost models alias {name} VERSION {alias}`",
            )
        version = a.version
    if version is None:
        vs = list_versions(store, name)
        if not vs:
            raise NotFoundError(f"model {name!r} has no versions")
        version = vs[-1].version
    return get_version(store, name, version)


def fetch_package(info: ModelVersionInfo, cache_root: Path | None = None) -> ModelVersionInfo:
    """`info` with local_path set: its package itself when local, else a copy cached under `cache_root`."""
    name = info.name
    cache = (cache_root or Path(".roost/cache")) / "models" / name / str(info.version)
    info.local_path = artifacts.fetch(info.source, cache)
    if artifacts.is_local(info.source) and not info.local_path.exists():
        why = f"; the run it came from ({info.run_id}) lost its artifacts" if info.run_id else ""
        raise NotFoundError(
            f"the package of model {name}/{info.version} is gone: nothing at {info.local_path}{why}",
            hint=f"register the model again, or point the alias at another version (roost models versions {name})",
        )
    return info


def has_alias(store: Store, name: str, alias: str) -> bool:
    """Whether model `name` has an alias `alias` stored."""
    with store.read() as s:
        return s.get(Alias, (name, alias)) is not None
