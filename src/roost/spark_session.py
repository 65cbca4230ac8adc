"""Starting a SparkSession for roost quietly: the JVM's output (log4j, its own start warnings, the Python workers'
stderr) goes to a log file, stage bars are off, and PySpark's pandas-version warning is silenced where roost calls
PySpark (roost's Spark paths exchange Arrow batches, not pandas frames)."""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOG4J = Path(__file__).with_name("spark_log4j2.properties")
PANDAS_WARNING = "PySpark does not yet fully support pandas"


@contextmanager
def quiet_pyspark() -> Iterator[None]:
    """PySpark's "does not yet fully support pandas" FutureWarning ignored meanwhile (and nothing else)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=PANDAS_WARNING, category=FutureWarning)
        yield


@dataclass
class Started:
    """A SparkSession roost started, what the start cost, and where the JVM's log went."""

    session: Any
    seconds: float
    log_path: Path | None


def log_file() -> Path:
    """A new file for the JVM's output: .roost/logs/spark-TIME-PID.log in the workspace (else the temp folder)."""
    import tempfile

    from roost.errors import RoostError
    from roost.workspace import current

    try:
        folder = current().state_dir / "logs"
    except RoostError:
        folder = Path(tempfile.gettempdir()) / "roost-logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"spark-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"


def start(master: str, app: str, conf: dict[str, str] | None = None) -> Started:
    """A new SparkSession on `master` with `conf`, UI and stage bars off, Spark's log4j configured by roost's file,
    and the JVM's stdout/stderr in `log_file()`; an existing JVM gateway (a session stopped earlier in this process)
    is reused as it is."""
    from pyspark import SparkConf, SparkContext, java_gateway
    from pyspark.sql import SparkSession

    launch_gateway: Callable[..., Any] = java_gateway.launch_gateway  # PySpark's (untyped) JVM launcher

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    settings = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false", **(conf or {})}
    java_opt = f"-Dlog4j2.configurationFile={LOG4J.as_uri()}"
    for key in ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions"):
        settings[key] = f"{settings[key]} {java_opt}" if settings.get(key) else java_opt
    spark_conf = SparkConf().setMaster(master).setAppName(app).setAll(list(settings.items()))
    t0 = time.perf_counter()
    path: Path | None = None
    with quiet_pyspark():
        if getattr(SparkContext, "_gateway", None) is None:  # no JVM yet: launch it with its output in a file
            path = log_file()
            with path.open("ab") as out:
                try:
                    gateway = launch_gateway(spark_conf, popen_kwargs={"stdout": out, "stderr": out})
                except Exception as exc:  # PySpark's "Java gateway process exited": the reason is in the log
                    raise _not_started(path) from exc
            SparkContext(conf=spark_conf, gateway=gateway)
        else:
            SparkContext.getOrCreate(spark_conf)
        spark = SparkSession.builder.getOrCreate()
    seconds = time.perf_counter() - t0
    log.info("started a Spark session on %s in %.1fs (JVM log: %s)", master, seconds, path or "the earlier JVM's")
    return Started(spark, seconds, path)


def _not_started(path: Path) -> Exception:
    """The error for a JVM that exited at start: its last output line, and where the rest is."""
    from roost.errors import RoostError

    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    reason = next((line for line in lines if not line.startswith("WARNING:")), "no output")  # the JVM's first word
    return RoostError(f"Spark's JVM did not start: {reason[:300]}", hint=f"its whole output is in {path}")


__all__ = ["LOG4J", "Started", "log_file", "quiet_pyspark", "start"]
