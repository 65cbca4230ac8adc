"""Shared fixtures: a temporary roost workspace per test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import roost

sys.path.insert(0, str(Path(__file__).parent))  # `helpers`, shared by several folders (importlib import mode)

from helpers import ROOST_VARS, copy_workspace


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, files that hold a `slow` test go first (stably): `make test` hands out whole files
    (--dist loadfile --no-loadscope-reorder), so the long ones start early and no worker is left running one alone
    at the end while the other idles. A run in one process keeps pytest's order."""
    if not hasattr(config, "workerinput"):  # not an xdist worker
        return
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture(scope="session")
def ws_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace `roost init` made once per session, store migrated; `ws` copies it (migrating cost ~0.04 s a test
    on a quiet machine, ~0.7 s at load 20, in ~670 tests). It holds no absolute path: roost.yaml and the empty
    SQLite store are relative."""
    from roost import workspace

    root = tmp_path_factory.mktemp("ws-template") / "ws"
    with pytest.MonkeyPatch.context() as mp:
        for var in ROOST_VARS:
            mp.delenv(var, raising=False)
        roost.init(root)
        workspace.use(None)  # disposes the store's engines: the SQLite file is whole (no WAL left) before any copy
    return root


@pytest.fixture
def ws(ws_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh initialised workspace, made current and the cwd for the test."""
    from roost import workspace

    for var in ROOST_VARS:
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "ws"
    w = copy_workspace(ws_template, root)
    monkeypatch.chdir(root)
    workspace.use(w)
    yield w
    workspace.use(None)


@pytest.fixture
def cli():
    """Invoke the roost CLI in-process; returns (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from roost.cli.main import build_app
    from roost.errors import RoostError

    def run(*args: str):
        runner = CliRunner()
        app = build_app()
        res = runner.invoke(app, list(args), catch_exceptions=True)
        if isinstance(res.exception, RoostError):
            return 2, res.stdout, str(res.exception)
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            raise res.exception
        return res.exit_code, res.stdout, getattr(res, "stderr", "")

    return run


# model: auto's default time budget depends on the machine's speed: the suite's auto runs, on 2 loaded cores, must
# train every candidate whatever the load (tests that test the budget set time_budget themselves)
os.environ.setdefault("ROOST_TIME_BUDGET", "none")
ENV_CLEAN = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}


def _need_server(what: str, why: str) -> None:
    """A server the test needs cannot start: fail in CI (it must be installed there), skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} cannot start in CI: {why}")
    pytest.skip(f"{what} unavailable: {why}")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A real PostgreSQL server (Debian's package) on a free loopback port; yields its base URL."""
    import glob
    import shutil
    import subprocess

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        _need_server("PostgreSQL", "no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)")
    bindir = Path(bins[-1]).parent
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="roost-pg-"))  # not under pytest's 0700 tmp: postgres must reach it
    os.chmod(base, 0o755)
    data = base / "data"
    data.mkdir()
    port = _free_port()
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(data, "postgres")
    r = subprocess.run(
        prefix + [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "roost"], capture_output=True, text=True
    )
    if r.returncode != 0:
        _need_server("PostgreSQL", f"initdb failed: {r.stderr.strip()[-300:]}")
    r = subprocess.run(
        prefix
        + [
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(data / "log.txt"),
            "-o",
            f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off",
            "-w",
            "-t",
            "180",
            "start",
        ],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        _need_server("PostgreSQL", f"pg_ctl start failed: {r.stderr.strip()[-300:]}")
    try:
        yield f"postgresql+psycopg://roost@127.0.0.1:{port}"
    finally:
        subprocess.run(
            prefix + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(base, ignore_errors=True)


_db_counter = [0]


def new_pg_database(base_url: str) -> str:
    """Create a fresh database on the server; returns its SQLAlchemy URL."""
    import psycopg

    _db_counter[0] += 1
    name = f"roost_{os.getpid()}_{_db_counter[0]}"
    with psycopg.connect(base_url.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return f"{base_url}/{name}"


@pytest.fixture
def pg_database(postgres_server):
    """A factory of fresh databases on the test PostgreSQL server (SQLAlchemy URLs)."""
    return lambda: new_pg_database(postgres_server)


@pytest.fixture(scope="session")
def local_spark():
    """Start a local[2] SparkSession (UI off, 2 shuffle partitions, plus `conf`); skips without pyspark or Java.

    Modules wrap it in their own module-scoped `spark` fixture and stop the session at their end."""
    import shutil
    import sys

    def start(app: str, **conf: str):
        pytest.importorskip("pyspark", reason="pyspark is in the dev extra: make test installs it")
        if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
            pytest.skip("no Java: make test installs openjdk-17-jre-headless")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        from pyspark.sql import SparkSession

        builder = (
            SparkSession.builder.master("local[2]")
            .appName(app)
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
        )
        for key, value in conf.items():
            builder = builder.config(key, value)
        return builder.getOrCreate()

    return start


AIRFLOW_VENV = Path(os.environ.get("ROOST_AIRFLOW_VENV", Path.home() / ".cache" / "roost-test" / "airflow-venv"))


@pytest.fixture(scope="session")
def airflow_bin() -> Path:
    """Apache Airflow in a venv of its own (installed once, cached under ~/.cache/roost-test).

    The venv is shared by every pytest process on the machine (xdist workers, other checkouts): a file lock makes one
    of them install it while the others wait, and a marker written last tells a whole install from a half one."""
    import subprocess
    import tempfile

    from filelock import FileLock

    exe = AIRFLOW_VENV / "bin" / "airflow"
    done = AIRFLOW_VENV / ".roost-installed"
    AIRFLOW_VENV.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(AIRFLOW_VENV) + ".lock", timeout=1800):  # (a hang guard: pip can take minutes under load)
        if exe.exists() and not done.exists():  # a venv from before the marker: one `airflow version` decides
            with tempfile.TemporaryDirectory() as home:  # (airflow makes logs/ under AIRFLOW_HOME, ~/airflow if unset)
                probe = subprocess.run([str(exe), "version"], env=_airflow_env(Path(home)), capture_output=True)
            if probe.returncode == 0:
                done.touch()
        if not done.exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(AIRFLOW_VENV)], check=True)
            r = subprocess.run(
                [str(AIRFLOW_VENV / "bin" / "pip"), "install", "-q", "apache-airflow"], capture_output=True, text=True
            )
            if r.returncode != 0:
                pytest.fail(f"cannot install apache-airflow: {r.stderr[-500:]}")
            done.touch()
    return exe


def _airflow_env(home: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("ROOST_")},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
    }


@pytest.fixture(scope="session")
def _airflow_migrated(airflow_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An AIRFLOW_HOME whose metadata DB `airflow db migrate` created once per session (the migration is the cost)."""
    import subprocess

    home = tmp_path_factory.mktemp("airflow-template")
    (home / "dags").mkdir()
    subprocess.run(
        [str(airflow_bin), "db", "migrate"], env=_airflow_env(home), check=True, capture_output=True, timeout=600
    )
    return home


@pytest.fixture
def airflow(airflow_bin: Path, _airflow_migrated: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """(the airflow executable, its env) on a private copy of the migrated AIRFLOW_HOME with an empty dags/ folder.

    The copy's airflow.cfg names its own folder and database, so no test sees another's DAGs or runs."""
    import shutil

    home = tmp_path / "airflow"
    shutil.copytree(_airflow_migrated, home, ignore=shutil.ignore_patterns("logs"))
    cfg = home / "airflow.cfg"
    cfg.write_text(cfg.read_text().replace(str(_airflow_migrated), str(home)))
    return airflow_bin, _airflow_env(home)


def _bench_peer(maker: str, venv: str, what: str) -> Path:
    """The python of a peer's venv .bench/<venv> made by bench/_common.<maker>() (the one the benches use), created
    from the package index on first use — under a file lock, since xdist workers may ask at once; skipped only when
    pip cannot install it."""
    import importlib
    import subprocess
    import sys

    from filelock import FileLock

    repo = Path(__file__).resolve().parents[1]
    (repo / ".bench").mkdir(exist_ok=True)
    sys.path.insert(0, str(repo / "bench"))
    try:
        with FileLock(str(repo / ".bench" / f"{venv}.lock")):
            return Path(getattr(importlib.import_module("_common"), maker)())
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.skip(f"cannot create the venv .bench/{venv} ({what}) from the package index: {exc}")
    finally:
        sys.path.remove(str(repo / "bench"))


@pytest.fixture(scope="session")
def mlflow_python() -> Path:
    """The python of MLflow 3.17.2's venv .bench/mlflow."""
    return _bench_peer("mlflow_python", "mlflow", "mlflow==3.17.2")


@pytest.fixture(scope="session")
def mlflow_autolog_python() -> Path:
    """The python of .bench/mlflow_autolog: MLflow 3.17.2, scikit-learn, LightGBM and XGBoost at roost's versions."""
    return _bench_peer("mlflow_autolog_python", "mlflow_autolog", "mlflow==3.17.2, lightgbm, xgboost-cpu")
