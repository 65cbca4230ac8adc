"""Deferred model packages: autolog saves the native model (and a sample of its input) at once, and the ONNX package
is built from them on first need — converted, checked against the stored native model on the stored sample, and
written next to them — by roost.load_model, `roost serve`, registration, or explicitly (`roost models package`).

A deferred package folder holds `deferred.json` (what was saved, with SHA-256 of each file) and `native/` (the model
as `model.pkl`, a LightGBM Booster as `model.txt`, an XGBoost Booster as `model.ubj`; the sample as `sample.pkl`).
Once built it also holds model.onnx, roost-model.yaml and signature.json (written in that order, each atomically:
signature.json last marks it built). Concurrent builds of one folder, in threads or processes, build it once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.errors import RoostError
from roost.modelpkg.package import DEFERRED, META, MODEL, SIGNATURE, package_root, pending

if TYPE_CHECKING:
    from roost.modelpkg.predictor import Predictor
    from roost.registry.modelreg import ModelVersionInfo

__all__ = ["save_native", "build", "ensure", "resolve", "package_model", "load_model", "register_model", "set_alias"]

NATIVE = "native"
LOCK = ".package.lock"
SHA_TAG = "roost.model.native_sha256"  # the run's record of the native files (files_digest), checked before reading
FORMAT = 1


def _framework(model: Any) -> str:
    from roost.model_import.convert import detect

    return detect(model)


def save_native(model: Any, out_dir: Path, sample: Any, run_id: str | None = None) -> dict[str, Any]:
    """Write `model` and `sample` into `out_dir` as a deferred package; returns its manifest (deferred.json).

    A LightGBM or XGBoost Booster is saved in the library's own format; estimators (scikit-learn's, and LightGBM's
    and XGBoost's scikit-learn classes, which pickle their own model text inside) as a pickle. Each file is
    serialized once in memory, hashed from those bytes and written (not read back); deferred.json is written last,
    so a folder without it is no package."""
    fw = _framework(model)
    native = out_dir / NATIVE
    native.mkdir(parents=True, exist_ok=True)
    kind = type(model).__name__
    if fw == "lightgbm" and kind == "Booster":
        name, data = "model.txt", model.model_to_string().encode("utf-8")
    elif fw == "xgboost" and kind == "Booster":
        name, data = "model.ubj", bytes(model.save_raw("ubj"))
    else:
        name, data = "model.pkl", pickle.dumps(model, protocol=5)
    files = {name: data, "sample.pkl": pickle.dumps(sample, protocol=5)}
    for f, content in files.items():
        (native / f).write_bytes(content)
    manifest = {
        "format": FORMAT,
        "framework": fw,
        "model_type": kind,
        "model": f"{NATIVE}/{name}",
        "sample": f"{NATIVE}/sample.pkl",
        "sha256": {f"{NATIVE}/{f}": hashlib.sha256(content).hexdigest() for f, content in files.items()},
        "run_id": run_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (out_dir / DEFERRED).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _manifest(root: Path) -> dict[str, Any]:
    f = root / DEFERRED
    if not f.is_file():
        raise RoostError(
            f"{root} is not a deferred model package (no {DEFERRED})", hint="pass the run's `model` folder"
        )
    try:
        manifest = json.loads(f.read_text())
    except (OSError, ValueError) as exc:
        raise RoostError(f"{f} is not valid JSON: {str(exc)[:200]}", hint="log the model again") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("sha256"), dict):
        raise RoostError(f"{f} is not a deferred package manifest", hint="log the model again")
    return manifest


def files_digest(manifest: dict[str, Any]) -> str:
    """One SHA-256 over the SHA-256 of every native file (the model's and the sample's): what the run records."""
    return hashlib.sha256(json.dumps(manifest["sha256"], sort_keys=True).encode()).hexdigest()


def _check_files(root: Path, manifest: dict[str, Any]) -> None:
    """Refuse native files that are not the ones logged: each file's hash must be deferred.json's, and deferred.json's
    hashes the run's record of them (a pickle runs code when it is read)."""
    recorded = _run_hash(manifest.get("run_id"))
    for rel, want in manifest["sha256"].items():
        p = root / rel
        if not p.is_file():
            raise RoostError(f"{p} is missing: the native model cannot be packaged", hint="log the model again")
        got = _sha256(p)
        if got != want or (recorded is not None and recorded != files_digest(manifest)):
            raise RoostError(
                f"{p} changed since it was logged (SHA-256 {got[:12]}… is not the recorded one)",
                hint="it is not read (a pickle runs code); log the model again",
            )


def _run_hash(run_id: Any) -> str | None:
    """The native files' digest recorded on their run, None when the run or the tag cannot be read."""
    if not isinstance(run_id, str):
        return None
    try:
        from roost.registry.backend import default_store

        value = default_store().get_run(run_id).get("tags", {}).get(SHA_TAG)
    except Exception:  # noqa: BLE001 - a package copied away from its workspace: deferred.json's hashes still apply
        return None
    return value if isinstance(value, str) else None


def load_native(root: Path) -> tuple[Any, Any]:
    """(model, sample) of a deferred package, after checking its files are the ones logged."""
    from roost.model_import.log import load_model_file

    manifest = _manifest(root)
    _check_files(root, manifest)
    model = load_model_file(root / manifest["model"], trust_pickle=True)  # checked against the logged hash above
    sample = pickle.loads((root / manifest["sample"]).read_bytes())  # hash checked above
    return model, sample


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """An exclusive lock on the package folder (threads and processes): one build at a time."""
    import fcntl

    with open(root / LOCK, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def build(path: str | Path, allow_mismatch: bool = False) -> dict[str, Any]:
    """Build the ONNX package of a deferred package folder (once: a built one is left as it is); returns its
    roost-model.yaml. A conversion that fails raises a RoostError saying why; the native model stays as it was."""
    from roost.model_import.log import build_package
    from roost.modelpkg.package import read_meta

    root = package_root(Path(path).expanduser())
    manifest = _manifest(root)
    with _locked(root):
        if not pending(root):
            return read_meta(root)
        model, sample = load_native(root)
        tmp = Path(tempfile.mkdtemp(prefix=".package-", dir=root))
        try:
            try:
                build_package(model, tmp, sample_input=sample, allow_mismatch=allow_mismatch)
            except RoostError as exc:
                raise RoostError(
                    f"the model in {root} could not be packaged: {exc.message}",
                    hint=f"{exc.hint + '; ' if exc.hint else ''}the native model stays logged in "
                    f"{root / manifest['model']} (load it with roost.model_import.deferred.load_native)",
                ) from exc
            _add_meta(tmp / META, {"run_id": manifest.get("run_id"), "packaged": "deferred"})
            for name in (MODEL, META, SIGNATURE):  # signature.json last: its presence marks the package built
                os.replace(tmp / name, root / name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return read_meta(root)


def _add_meta(f: Path, extra: dict[str, Any]) -> None:
    import yaml

    meta = yaml.safe_load(f.read_text()) or {}
    meta.update({k: v for k, v in extra.items() if v is not None})
    f.write_text(yaml.safe_dump(meta, sort_keys=False))


def ensure(path: str | Path) -> Path:
    """The package folder at `path`, built first when it is a deferred package not built yet."""
    root = package_root(Path(path).expanduser())
    if pending(root):
        build(root)
    return root


def locate(ref: str | Path, path: str = "model") -> Path:
    """The local package folder of a package folder, `runs:/RUN/PATH`, a run id (or unique prefix; artifact `path`)
    or a registry reference (`name@alias`, `name/3`, `name`)."""
    from roost import artifacts

    s = str(ref)
    if s.startswith("file://"):
        s = s[len("file://") :]
    if Path(s).expanduser().exists():
        return package_root(Path(s).expanduser())
    run_ref = None
    if s.startswith("runs:/"):
        run_ref, _, rest = s[len("runs:/") :].partition("/")
        path = rest or path
    elif "@" not in s and "/" not in s:
        run_ref = _run_id_or_none(s)
    if run_ref is not None:
        from roost.registry.api import get_run

        uri = artifacts.safe_join(get_run(run_ref)["artifact_uri"], path)
        if not artifacts.is_local(uri):
            raise RoostError(
                f"run {run_ref}'s artifacts are not on this machine ({uri.split('://')[0]}://)",
                hint="package it where it was logged, or log it with package='now'",
            )
        return artifacts.local_path(uri)
    from roost.registry.api import resolve_model

    local = resolve_model(s).local_path
    if local is None:
        raise RoostError(f"model {s} has no local copy", hint="use a file:// artifact root or download it")
    return package_root(local)


def _run_id_or_none(s: str) -> str | None:
    """`s` when it names a run (id or unique prefix), None when it does not (a registered model name, then)."""
    from roost.registry.backend import default_store

    try:
        return str(default_store().get_run(s)["run_id"])
    except RoostError:  # not a run id (NotFoundError, or not even id-shaped): a model name
        return None


def package_model(ref: str | Path, path: str = "model", allow_mismatch: bool = False) -> dict[str, Any]:
    """Build the ONNX package of a model logged for packaging later (a run id, `runs:/RUN/PATH`, a registry
    reference or a folder); returns its roost-model.yaml. A package already built is left as it is."""
    from roost.modelpkg.package import read_meta

    root = locate(ref, path)
    if (root / DEFERRED).is_file():
        return build(root, allow_mismatch=allow_mismatch)
    if not (root / MODEL).is_file():
        raise RoostError(f"no model package at {root}", hint="pass a run id, runs:/RUN/model or name@alias")
    return read_meta(root)


def resolve(uri: str | Path) -> tuple[Path, str]:
    """(package folder, version label) of a package by path, file:// URI or registry reference (`name@alias`,
    `name/3`) as roost.modelpkg.resolve_package finds it, or of a run's model (`runs:/RUN/PATH`, a run id); its ONNX
    package built first when it was logged for packaging later. What roost.load_model and roost.predict take."""
    from roost.modelpkg import resolve_package

    s = str(uri)
    if s.startswith("runs:/"):
        return ensure(locate(s)), s
    try:
        root, label = resolve_package(uri)
    except RoostError:
        if "@" in s or "/" in s or _run_id_or_none(s) is None:
            raise  # not a run either: the package layer's own error
        root, label = locate(s), f"runs:/{s}/model"
    return ensure(root), label


def load_model(uri: str | Path) -> Predictor:
    """roost.load_model: a package by path, file:// URI or registry reference (`name@alias`, `name/3`) as
    roost.modelpkg.load_model finds it, or a run's model (`runs:/RUN/PATH`, a run id); its ONNX package built first
    when it was logged for packaging later."""
    from roost.modelpkg import load

    return load(resolve(uri)[0])


def register_model(run_id: str | None, name: str, path: str = "model") -> ModelVersionInfo:
    """roost.register_model: the run's package built first when it was logged for packaging later (a registered
    version is one to serve), then registered."""
    from roost import artifacts
    from roost.registry import api

    if run_id is not None:
        uri = artifacts.safe_join(api.get_run(run_id)["artifact_uri"], path)  # waits for its background logging
        if artifacts.is_local(uri) and pending(artifacts.local_path(uri)):  # remote runs package at once
            build(artifacts.local_path(uri))
    elif Path(path).exists():
        ensure(path)
    return api.register_model(run_id, name, path)


def set_alias(name: str, version: int, alias: str) -> bool:
    """roost.set_alias: the version's package built first when it was logged for packaging later (an alias is
    what `roost serve name@alias` follows), then name@alias pointed at it."""
    from roost import artifacts
    from roost.registry import api
    from roost.registry.backend import default_store

    try:
        source = default_store().get_version(name, version).source  # the record only: nothing downloaded
    except RoostError:
        source = ""  # no such version: set_alias says so in its own words
    if source and artifacts.is_local(source) and pending(artifacts.local_path(source)):
        build(artifacts.local_path(source))
    return api.set_alias(name, version, alias)
