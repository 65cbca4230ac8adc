"""`roost monitor schedule`: checks declared on a cadence run through the pipeline runner (--once runs the due
ones, skips the rest) and export to Airflow DAGs whose tasks run the same checks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from skew_scenario import SCORE_MISMATCH_RATE, planted


def _monitor_runs(model: str = "m") -> list[dict[str, Any]]:
    import roost
    from roost.errors import NotFoundError

    try:
        return roost.search_runs(experiment=f"monitor/{model}")
    except NotFoundError:  # no monitor run yet
        return []


def test_once_runs_the_due_checks_and_skips_the_others(ws: Any, tmp_path: Path, cli: Any) -> None:
    import roost

    logs = str(tmp_path / "logs")
    planted(ws.root, tmp_path / "logs")
    code, out, err = cli("monitor", "schedule", "add", "m", "--check", "skew", "--every", "60", "--logs", logs)
    assert code == 0, err
    code, out, err = cli("monitor", "schedule", "--once", "--json")
    assert code == 0, (out, err)
    (first,) = json.loads(out)
    assert first["name"] == "m" and first["status"] == "FINISHED", first
    runs = _monitor_runs()
    assert len(runs) == 1 and runs[0]["run_id"] == first["checks"]["skew"]["run_id"]
    assert runs[0]["metrics"]["skew.rate.score"] == pytest.approx(SCORE_MISMATCH_RATE)
    tasks = roost.search_runs("tags.roost.kind = 'task' and tags.roost.task = 'skew'", experiment="pipelines")
    assert len(tasks) == 1  # it ran as a task of the pipeline runner
    # a second schedule, never run: due; the first ran a moment ago: skipped
    code, out, err = cli(
        "monitor",
        "schedule",
        "add",
        "m",
        "--name",
        "m-cron",
        "--check",
        "skew",
        "--cron",
        "*/5 * * * *",
        "--logs",
        logs,
    )
    assert code == 0, err
    code, out, err = cli("monitor", "schedule", "--once", "--json")
    assert code == 0, (out, err)
    by_name = {d["name"]: d for d in json.loads(out)}
    assert by_name["m"]["status"] == "skipped" and by_name["m-cron"]["status"] == "FINISHED"
    assert len(_monitor_runs()) == 2
    # an hour and a minute later both are due again
    from roost.pipeline.monitor_schedule import run_due

    later = run_due(now=datetime.now(UTC) + timedelta(minutes=61))
    assert sorted(d["status"] for d in later) == ["FINISHED", "FINISHED"]
    assert len(_monitor_runs()) == 4
    code, out, _ = cli("monitor", "schedule", "--json")
    assert code == 0 and set(json.loads(out)) == {"m", "m-cron"}


def test_is_due_for_every_and_cron() -> None:
    from roost.pipeline.monitor_schedule import is_due

    last = datetime(2026, 1, 5, 12, 1, tzinfo=UTC)  # a Monday
    every = {"every_minutes": 30, "cron": None, "last_run": last.isoformat()}
    assert not is_due(every, last + timedelta(minutes=29, seconds=59))
    assert is_due(every, last + timedelta(minutes=30))
    assert is_due({**every, "last_run": None}, last)
    q = {"every_minutes": None, "cron": "*/15 * * * *", "last_run": last.isoformat()}
    assert not is_due(q, datetime(2026, 1, 5, 12, 14, 59, tzinfo=UTC))
    assert is_due(q, datetime(2026, 1, 5, 12, 15, tzinfo=UTC))
    daily = {"every_minutes": None, "cron": "30 6 * * 1-5", "last_run": last.isoformat()}  # weekdays 06:30
    assert not is_due(daily, datetime(2026, 1, 6, 6, 29, tzinfo=UTC))
    assert is_due(daily, datetime(2026, 1, 6, 6, 30, tzinfo=UTC))
    friday = {**daily, "last_run": datetime(2026, 1, 9, 7, 0, tzinfo=UTC).isoformat()}
    assert not is_due(friday, datetime(2026, 1, 11, 23, 59, tzinfo=UTC))  # not on Saturday or Sunday
    assert is_due(friday, datetime(2026, 1, 12, 6, 30, tzinfo=UTC))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--check", "dirft", "--every", "5"], "unknown check"),
        (["--check", "skew"], "exactly one cadence"),
        (["--check", "skew", "--every", "5", "--cron", "* * * * *"], "exactly one cadence"),
        (["--check", "skew", "--every", "0"], "positive"),
        (["--check", "skew", "--cron", "*/0 * * * *"], "cron minute"),
        (["--check", "skew", "--cron", "61 * * * *"], "outside 0-59"),
        (["--check", "skew", "--cron", "* * *"], "5"),
        (["--check", "analysis", "--every", "5"], "labelled data"),
    ],
)
def test_bad_schedules_are_refused_with_a_clear_error(ws: Any, cli: Any, args: list[str], message: str) -> None:
    code, _, err = cli("monitor", "schedule", "add", "m", *args)
    assert code == 2 and message in err, err
    code, out, _ = cli("monitor", "schedule", "--json")
    assert json.loads(out) == {}  # nothing half-declared


def _export(ws: Any, tmp_path: Path, cli: Any, dags: Path) -> Path:
    logs = str(tmp_path / "logs")
    planted(ws.root, tmp_path / "logs")
    code, _, err = cli("monitor", "schedule", "add", "m", "--check", "skew", "--every", "60", "--logs", logs)
    assert code == 0, err
    code, out, err = cli("monitor", "schedule", "export", "--airflow", str(dags))
    assert code == 0, err
    dag = dags / "roost_monitor_m.py"
    assert dag.is_file()
    return dag


def test_exported_dag_holds_the_monitor_task_and_its_entry_runs_the_check(ws: Any, tmp_path: Path, cli: Any) -> None:
    """The DAG file has the cadence and a `skew` task; the command that task runs records the check."""
    dag = _export(ws, tmp_path, cli, tmp_path / "dags")
    text = dag.read_text()
    compile(text, str(dag), "exec")
    assert "dag_id='roost_monitor_m'" in text and "schedule=datetime.timedelta(minutes=60.0)" in text
    assert "tasks['skew'] = BashOperator(" in text and "-m roost.pipeline.entry" in text
    pipeline = ws.state_dir / "monitor" / "m.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    env.update(ROOST_WORKSPACE=str(ws.root), PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run(
        [sys.executable, "-m", "roost.pipeline.entry", str(pipeline), "skew"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["check"] == "skew" and out["verdict"] == "skew"
    (run,) = _monitor_runs()
    assert run["run_id"] == out["run_id"] and run["metrics"]["skew.rate.score"] == pytest.approx(SCORE_MISMATCH_RATE)


@pytest.mark.slow
@pytest.mark.services
def test_exported_dag_runs_in_airflow(ws: Any, tmp_path: Path, cli: Any, airflow: Any) -> None:
    """`airflow dags test` of the exported monitor DAG records the check as a monitor run."""
    airflow_bin, env = airflow
    _export(ws, tmp_path, cli, Path(env["AIRFLOW__CORE__DAGS_FOLDER"]))
    r = subprocess.run(
        [str(airflow_bin), "dags", "test", "roost_monitor_m"], env=env, capture_output=True, text=True, timeout=900
    )
    text = (r.stdout + r.stderr).replace("DagRunState.SUCCESS", "state=success")
    assert r.returncode == 0 and "state=success" in text, text[-3000:]
    (run,) = _monitor_runs()
    assert run["metrics"]["skew.rate.score"] == pytest.approx(SCORE_MISMATCH_RATE)
    import roost

    tasks = roost.search_runs("tags.roost.runner = 'airflow'", limit=None)
    assert {t["tags"]["roost.task"] for t in tasks} == {"skew"}


def test_demo_schedule_declares_and_records_one_monitor_run(ws: Any, tmp_path: Path) -> None:
    """The demo's monitor step (roost.demo calls it): a schedule is declared and its check recorded once."""
    import io

    from rich.console import Console

    from roost.pipeline.monitor_schedule import demo_schedule, schedules

    planted(ws.root, tmp_path / "logs")
    ws_logs = ws.state_dir / "request_logs"
    shutil.copytree(tmp_path / "logs", ws_logs)  # the workspace's request logs, where `roost serve` writes them
    buf = io.StringIO()
    done = demo_schedule("m", checks=("skew",), console=Console(file=buf, width=200))
    assert [d["status"] for d in done] == ["FINISHED"]
    assert set(schedules()) == {"m"} and schedules()["m"]["last_run"]
    (run,) = _monitor_runs()
    assert run["metrics"]["skew.rate.score"] == pytest.approx(SCORE_MISMATCH_RATE)
    assert f"monitor skew of m: skew (monitor run {run['run_id'][:8]})" in buf.getvalue()
