"""Hostile input to the model repository: model names, aliases, versions and `name@alias` references.

Every bad input must end in a RoostError that names what was wrong (never an OverflowError/ValueError from the
driver), and leave the store as it was (checked by reading the tables directly).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from roost.errors import NotFoundError, RoostError
from roost.registry import api, modelreg
from roost.registry.store import default_store
from roost.registry.tables import Alias, AliasHistory, ModelVersion


@pytest.fixture
def pkg(ws) -> Path:
    """A minimal model package folder."""
    p = ws.root / "pkg"
    p.mkdir()
    (p / "signature.json").write_text('{"inputs": [], "outputs": []}')
    return p


def _counts() -> tuple[int, int, int]:
    with default_store().read() as s:
        return (
            s.scalar(select(func.count()).select_from(ModelVersion)) or 0,
            s.scalar(select(func.count()).select_from(Alias)) or 0,
            s.scalar(select(func.count()).select_from(AliasHistory)) or 0,
        )


@pytest.mark.parametrize(
    "alias",
    [
        "prod\n",  # '$' matched before a trailing newline
        "a" * 129,  # model_aliases.alias is VARCHAR(128)
        "a" * 10_000,
        "latest",  # 'name' alone already means the latest version: an alias would shadow it
        "LATEST",
        "1.0",  # looks like a version number
        "2.1.3",
        "prodé",  # non-ASCII after an ASCII first letter
        "a²",
    ],
)
def test_bad_alias_is_refused_and_nothing_is_written(pkg: Path, alias: str) -> None:
    api.register_model(None, "m", str(pkg))
    before = _counts()
    with pytest.raises(RoostError) as err:
        api.set_alias("m", 1, alias)
    assert "alias" in err.value.message
    assert _counts() == before


@pytest.mark.parametrize("name", ["m\n", "x" * 257, "mü", "m１"])
def test_bad_model_name_is_refused(pkg: Path, name: str) -> None:
    with pytest.raises(RoostError, match="model name"):
        api.register_model(None, name, str(pkg))
    assert _counts() == (0, 0, 0)


def test_longest_names_are_accepted(pkg: Path) -> None:
    name, alias = "n" * 256, "a" * 128
    api.register_model(None, name, str(pkg))
    api.set_alias(name, 1, alias)
    assert api.resolve_model(f"{name}@{alias}").version == 1


@pytest.mark.parametrize("version", [2**63, 2**31, 10**30])
def test_huge_version_is_not_found(pkg: Path, version: int) -> None:
    api.register_model(None, "m", str(pkg))
    with pytest.raises(NotFoundError, match="no version"):
        api.set_alias("m", version, "prod")
    with pytest.raises(NotFoundError, match="no version"):
        api.resolve_model(f"m/{version}")
    with pytest.raises(NotFoundError, match="no version"):
        modelreg.get_version(default_store(), "m", version)


@pytest.mark.parametrize("version", ["1.0", "one", 1.5, None, True])
def test_non_integer_version_is_refused(pkg: Path, version: object) -> None:
    api.register_model(None, "m", str(pkg))
    with pytest.raises(RoostError, match="version"):
        modelreg.set_alias(default_store(), "m", version, "prod")  # type: ignore[arg-type]
    assert _counts()[1] == 0


@pytest.mark.parametrize("ref", ["m@@prod", "m@prod@x", "@prod", "m@", "m@prod/1", "m/１", "m/²", "/1", "", "m/ 1"])
def test_malformed_reference_is_a_clear_error(pkg: Path, ref: str) -> None:
    api.register_model(None, "m", str(pkg))
    api.set_alias("m", 1, "prod")
    with pytest.raises(RoostError) as err:
        api.resolve_model(ref)
    assert "model reference" in err.value.message, err.value.message


def test_at_latest_means_the_latest_version(pkg: Path) -> None:
    api.register_model(None, "m", str(pkg))
    api.register_model(None, "m", str(pkg))
    assert api.resolve_model("m@latest").version == 2


def test_cli_huge_version_no_traceback(pkg: Path, cli) -> None:
    api.register_model(None, "m", str(pkg))
    code, _out, err = cli("models", "show", "m/99999999999999999999")
    assert code == 2 and "no version" in err
    code, _out, err = cli("models", "alias", "m", "99999999999999999999", "prod")
    assert code == 2 and "no version" in err
    code, _out, err = cli("models", "alias", "m", "1", "prod\n")
    assert code == 2 and "alias" in err
    assert _counts()[1:] == (0, 0)


def test_version_whose_package_is_gone_is_not_found(ws, pkg: Path) -> None:
    """A version whose package folder was removed behind the registry's back resolves to a clear error, not to a
    path that does not exist (which serve would then fail on far from the cause)."""
    import shutil

    with api.start_run() as run:
        (run.artifact_dir / "model").mkdir()
        (run.artifact_dir / "model" / "signature.json").write_text("{}")
    api.register_model(run.id, "m")
    api.set_alias("m", 1, "prod")
    api.delete_runs([run.id], force=True)
    api.gc()  # keeps the package: a model version still points at it
    assert (api.resolve_model("m@prod").local_path / "signature.json").is_file()
    shutil.rmtree(run.local_artifact("model"))
    with pytest.raises(NotFoundError, match="package of model m/1 is gone"):
        api.resolve_model("m@prod")


def test_register_refuses_a_symlink_leaving_the_run(ws, tmp_path: Path) -> None:
    """A run artifact that is a symlink to a folder outside the run is not registered as a model package."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "signature.json").write_text("{}")
    with api.start_run() as run:
        (run.artifact_dir / "model").symlink_to(outside, target_is_directory=True)
    with pytest.raises(RoostError, match="escapes"):
        api.register_model(run.id, "m", "model")
    assert _counts() == (0, 0, 0)


@pytest.mark.parametrize(
    ("name", "text", "why"),
    [
        ("signature.json", "{not json", "not valid JSON"),
        ("roost-model.yaml", "a: [\n", "not valid YAML"),
        ("signature.json", "[1, 2]", "holds a list"),
        ("roost-model.yaml", "- x\n", "holds a list"),
        ("roost-model.yaml", "just text", "holds a str"),
    ],
)
def test_a_damaged_package_file_is_named(ws, pkg: Path, name: str, text: str, why: str) -> None:
    """A package whose signature.json / roost-model.yaml does not parse raised JSONDecodeError / YAML's ParserError;
    one holding a list was registered and then broke `roost models show` and `roost lineage` (AttributeError)."""
    (pkg / name).write_text(text)
    with pytest.raises(RoostError, match=why) as err:
        api.register_model(None, "m", str(pkg))
    assert name in err.value.message
    assert _counts() == (0, 0, 0)


def test_a_stored_non_mapping_meta_does_not_break_readers(ws, pkg: Path, cli) -> None:
    """A version registered before the files were checked, with a list as its meta and signature."""
    from sqlalchemy import update

    api.register_model(None, "m", str(pkg))
    with default_store().write() as s:
        s.execute(update(ModelVersion).values(meta=["x"], signature=[1, 2]))
    assert api.resolve_model("m").meta is None
    code, out, _err = cli("models", "show", "m")
    assert code == 0 and "m/1" in out
    code, out, _err = cli("lineage", "m/1")
    assert code == 0 and "model version m/1" in out


def test_alias_to_the_version_it_points_at_is_no_move(pkg: Path, cli) -> None:
    """Moving an alias to its own version is a no-op: no history row, and the CLI says nothing changed (#37)."""
    api.register_model(None, "m", str(pkg))
    api.register_model(None, "m", str(pkg))
    assert api.set_alias("m", 1, "prod") is True
    before = _counts()
    assert api.set_alias("m", 1, "prod") is False
    assert _counts() == before  # no history row for a move that did not happen
    code, out, _ = cli("models", "alias", "m", "1", "prod")
    assert code == 0 and "already points at version 1" in out and _counts() == before
    code, out, _ = cli("models", "alias", "m", "2", "prod")  # a real move is still recorded
    assert code == 0 and "version 2" in out and _counts()[2] == before[2] + 1
    hist = modelreg.alias_history(default_store(), "m")
    assert [(h["version"], h["previous_version"]) for h in hist if h["alias"] == "prod"] == [(1, None), (2, 1)]
