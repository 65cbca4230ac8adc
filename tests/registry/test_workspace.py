import subprocess
import sys
from pathlib import Path

import pytest

import roost
from roost import workspace
from roost.errors import RoostError


def test_create_writes_files_only_and_init_adds_the_registry_schema(tmp_path):
    """The workspace layer writes roost.yaml and .roost/ and never touches the registry; `roost.init` (the layer
    above both) creates the workspace and then the registry's schema."""
    code = (
        "import sys, roost.workspace as w; ws = w.create(sys.argv[1]); "
        "print(ws.config_path.is_file(), (ws.state_dir / '.gitignore').is_file(), "
        "any(m.startswith('roost.registry') for m in sys.modules), (ws.state_dir / 'roost.db').exists())"
    )
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "f")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["True", "True", "False", "False"]
    from roost.registry.store import open_store

    ws = roost.init(tmp_path / "f")
    assert ws.root == (tmp_path / "f").resolve()
    open_store(ws.store_url, create=False).list_experiments()  # the schema is there: no "run roost init" error


def test_init_writes_config_and_store_in_wal(tmp_path):
    ws = roost.init(tmp_path / "w")
    assert (tmp_path / "w" / "roost.yaml").is_file()
    assert (tmp_path / "w" / ".roost").is_dir()
    assert ws.store_url == "sqlite:///" + str((tmp_path / "w" / ".roost" / "roost.db").resolve())
    import sqlite3

    con = sqlite3.connect(tmp_path / "w" / ".roost" / "roost.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
    assert {
        "runs",
        "params",
        "metrics",
        "latest_metrics",
        "tags",
        "experiments",
        "registered_models",
        "model_versions",
        "model_aliases",
        "model_alias_history",
        "alembic_version",
    } <= tables


def test_init_is_idempotent_and_keeps_data(tmp_path, monkeypatch):
    root = tmp_path / "w"
    roost.init(root)
    monkeypatch.chdir(root)
    workspace.use(root)

    with roost.start_run(name="keep") as r:
        r.log_metric("m", 1.0)
    cfg_before = (root / "roost.yaml").read_text()
    workspace.use(None)
    roost.init(root)
    workspace.use(root)
    assert (root / "roost.yaml").read_text() == cfg_before
    assert [x["name"] for x in roost.search_runs()] == ["keep"]
    workspace.use(None)


def test_discovery_walks_up_and_env_overrides(tmp_path, monkeypatch):
    root = tmp_path / "w"
    roost.init(root)
    deep = root / "a" / "b"
    deep.mkdir(parents=True)
    assert workspace.load(deep).root == root.resolve()
    monkeypatch.setenv("ROOST_STORE_URL", "sqlite:////tmp/elsewhere.db")
    monkeypatch.setenv("ROOST_ARTIFACTS", "memory://arts")
    ws = workspace.load(deep)
    assert ws.store_url == "sqlite:////tmp/elsewhere.db"
    assert ws.artifacts == "memory://arts"
    assert workspace.load(deep, store_url="sqlite:////tmp/flag.db").store_url == "sqlite:////tmp/flag.db"


def test_outside_workspace_says_run_init(tmp_path, monkeypatch):
    monkeypatch.delenv("ROOST_WORKSPACE", raising=False)
    with pytest.raises(RoostError) as e:
        workspace.load(tmp_path)
    assert "roost init" in e.value.hint
    r = subprocess.run(
        [sys.executable, "-m", "roost.cli.main", "runs", "list"], cwd=tmp_path, capture_output=True, text=True
    )
    assert r.returncode == 2
    assert "roost init" in r.stderr and "Traceback" not in r.stderr


def test_import_roost_stays_light():
    code = (
        "import sys, roost; roost.__version__; "
        "heavy = [m for m in ('torch', 'duckdb', 'onnxruntime', 'pandas', 'sqlalchemy', 'lightgbm') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_cli_help_does_not_import_heavy_libraries():
    code = (
        "import sys\nfrom roost.cli.main import build_app\nbuild_app()\n"
        "print(','.join(m for m in ('torch','duckdb','onnxruntime','pandas','lightgbm','sklearn') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_migration_from_empty_matches_models(tmp_path):
    """Alembic's compare of the migrated schema with the ORM metadata finds no difference."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from roost.registry.engine import make_engine, migrate
    from roost.registry.tables import Base

    eng = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    migrate(eng)
    with eng.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    Path(tmp_path / "m.db").unlink()


def test_upgrade_from_first_revision_keeps_data(tmp_path):
    """A store created at revision 0001 is upgraded in place by opening it; its runs survive."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from roost.registry.engine import HEAD_REVISION, MIGRATIONS_DIR, current_revision, make_engine
    from roost.registry.store import Store, reset_default

    url = f"sqlite:///{tmp_path / 'old.db'}"
    eng = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with eng.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001_initial")
        conn.execute(text("INSERT INTO experiments (name, created_at) VALUES ('old', '2026-01-01 00:00:00')"))
        conn.commit()
    assert current_revision(eng) == "0001_initial"
    reset_default()
    st = Store(url)
    st.ensure_schema()
    assert current_revision(st.engine) == HEAD_REVISION
    assert [e["name"] for e in st.list_experiments()] == ["old"]


@pytest.mark.parametrize("url", ["postgresql://u:s3cret@127.0.0.1:1/db", "redis://:s3cret@127.0.0.1:1/0"])
def test_unreachable_store_urls_fail_fast_without_the_password(url):
    """An unreachable PostgreSQL repository or Redis online store: an error naming the URL, password redacted."""
    from roost.features import open_online_store
    from roost.registry.store import open_store

    with pytest.raises(RoostError) as e:
        (open_online_store if url.startswith("redis") else open_store)(url)
    assert "127.0.0.1:1" in e.value.message and "s3cret" not in e.value.message and "***" in e.value.message


def test_roost_workspace_without_config_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ROOST_WORKSPACE", str(tmp_path / "nowhere"))
    with pytest.raises(RoostError) as e:
        workspace.load()
    assert "roost init" in e.value.hint and "ROOST_WORKSPACE" in e.value.message
    r = subprocess.run(
        [sys.executable, "-m", "roost.cli.main", "runs", "list"], cwd=tmp_path, capture_output=True, text=True
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-500:]


def test_an_explicit_folder_beats_roost_workspace(tmp_path, monkeypatch):
    a = roost.init(tmp_path / "a")
    monkeypatch.setenv("ROOST_WORKSPACE", str(a.root))
    b = roost.init(tmp_path / "b")  # `roost init DIR` with the variable set: DIR's store is the one created
    assert b.root == (tmp_path / "b").resolve()
    assert b.store_url.endswith(str((tmp_path / "b" / ".roost" / "roost.db").resolve()))
    assert workspace.load(tmp_path / "b").root == b.root
    assert workspace.load().root == a.root  # without a folder the variable still decides
