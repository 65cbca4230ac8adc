"""`roost monitor schedule`: monitor checks declared to run on a cadence, through the pipeline runner or Airflow.

A schedule (stored in the repository, kind `monitor_schedule`) names a model, the checks to run (drift, skew,
shadow, analysis), a cadence (`every` N minutes or a 5-field `cron` expression, UTC) and each check's options.
Each schedule is a pipeline of `monitor` tasks (roost.pipeline.builtins.monitor), written as a YAML pipeline
file under .roost/monitor/, so the local runner (`run_due`, `roost monitor schedule --once`) and the Airflow
export (`export_dags`: one DAG per schedule, with its cadence as the DAG's schedule) run the same tasks.
Every check is recorded as a monitor run (roost.monitor.record).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from roost.errors import ConfigError, NotFoundError, RoostError

log = logging.getLogger(__name__)

KIND = "monitor_schedule"
CHECKS = ("drift", "skew", "shadow", "analysis")
OPTIONS = {  # options each check accepts
    "drift": {"reference", "current", "log_model", "window_minutes", "features", "method", "threshold", "drift_share"},
    "skew": {"logs", "log_model", "window_minutes", "max_mismatch"},
    "shadow": {"logs", "log_model", "window_minutes", "min_agreement", "max_diff"},
    "analysis": {"run", "model_ref", "data", "labels", "label", "threshold"},
}
CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 6))
MAX_CRON_SCAN = 366 * 24 * 60  # minutes looked through for a cron match since the last run
_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]*$")


def _cron_field(text: str, what: str, lo: int, hi: int) -> set[int]:
    """The values a cron field allows (`*`, `*/n`, `a`, `a-b`, `a-b/n`, comma lists)."""
    out: set[int] = set()
    for part in text.split(","):
        rng, _, step_s = part.partition("/")
        try:
            step = int(step_s) if step_s else 1
            if rng == "*":
                a, b = lo, hi
            elif "-" in rng:
                a, b = (int(x) for x in rng.split("-", 1))
            else:
                a = b = int(rng)
        except ValueError:
            raise ConfigError(
                f"cron {what} {text!r} is not a number, range or */step", hint="e.g. */15 or 0-30/5"
            ) from None
        if step < 1 or not (lo <= a <= b <= (7 if what == "day of week" else hi)):
            raise ConfigError(
                f"cron {what} {text!r} is outside {lo}-{hi}", hint="five fields: minute hour day month weekday"
            )
        out.update(v % 7 if what == "day of week" else v for v in range(a, b + 1, step))
    return out


def parse_cron(expr: str) -> list[set[int]]:
    """The allowed values of each of the five fields of a cron expression (UTC); ConfigError when malformed."""
    parts = str(expr).split()
    if len(parts) != 5:
        raise ConfigError(
            f"cron {expr!r} has {len(parts)} fields, not 5", hint="minute hour day month weekday, e.g. '*/15 * * * *'"
        )
    return [_cron_field(p, what, lo, hi) for p, (what, lo, hi) in zip(parts, CRON_FIELDS)]


def cron_matches(fields: list[set[int]], t: datetime) -> bool:
    """Whether minute `t` is one the cron fields select (day of week: 0 = Sunday)."""
    return (
        t.minute in fields[0]
        and t.hour in fields[1]
        and t.day in fields[2]
        and t.month in fields[3]
        and (t.isoweekday() % 7) in fields[4]
    )


def is_due(spec: dict[str, Any], now: datetime | None = None) -> bool:
    """Whether a schedule should run now: never ran, `every` minutes passed, or a cron minute since its last run."""
    now = now or datetime.now(UTC)
    last = _time(spec.get("last_run"))
    if last is None:
        return True
    if spec.get("every_minutes") is not None:
        return now >= last + timedelta(minutes=float(spec["every_minutes"]))
    fields = parse_cron(spec["cron"])
    t = last.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(MAX_CRON_SCAN):
        if t > now:
            return False
        if cron_matches(fields, t):
            return True
        t += timedelta(minutes=1)
    return True


def _time(v: Any) -> datetime | None:
    if not v:
        return None
    t = datetime.fromisoformat(str(v))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _store() -> Any:
    from roost.registry.backend import default_store

    return default_store()


def declare(
    model: str,
    checks: list[str],
    every_minutes: float | None = None,
    cron: str | None = None,
    name: str | None = None,
    options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Declare (or replace) a schedule of monitor checks for a model; returns the stored spec."""
    if not model or not _NAME.match(model):
        raise ConfigError(f"model name {model!r} is not valid", hint="a registered model's name, e.g. engagement")
    bad = [c for c in checks if c not in CHECKS]
    if bad or not checks:
        raise ConfigError(f"unknown check(s) {bad or checks!r}", hint=f"one or more of {', '.join(CHECKS)}")
    if (every_minutes is None) == (cron is None):
        raise ConfigError(
            "give exactly one cadence: every N minutes or a cron expression", hint="--every 60 or --cron '0 * * * *'"
        )
    if every_minutes is not None and not (0 < float(every_minutes) < float("inf")):
        raise ConfigError(f"every must be a positive number of minutes, got {every_minutes!r}", hint="e.g. --every 60")
    if cron is not None:
        parse_cron(cron)
    opts = {c: dict((options or {}).get(c) or {}) for c in checks}
    for c, o in opts.items():
        unknown = sorted(set(o) - OPTIONS[c])
        if unknown:
            raise ConfigError(f"{c} check: unknown option(s) {unknown}", hint=f"known: {', '.join(sorted(OPTIONS[c]))}")
    if "analysis" in checks and not (opts["analysis"].get("data") or opts["analysis"].get("run")):
        raise ConfigError("the analysis check needs labelled data", hint="pass --data (and --labels for request logs)")
    name = name or model
    if not _NAME.match(name):
        raise ConfigError(f"schedule name {name!r} is not valid", hint="letters, digits, '.', '_' and '-'")
    old = _store().get_object(KIND, name) or {}
    spec = {
        "name": name,
        "model": model,
        "checks": list(dict.fromkeys(checks)),
        "every_minutes": None if every_minutes is None else float(every_minutes),
        "cron": cron,
        "options": opts,
        "last_run": old.get("last_run"),
    }
    _store().put_object(KIND, name, spec)
    return spec


def schedules() -> dict[str, dict[str, Any]]:
    """Every declared schedule, by name."""
    found: dict[str, dict[str, Any]] = _store().list_objects(KIND)
    return found


def remove(name: str) -> None:
    """Forget a schedule."""
    if _store().get_object(KIND, name) is None:
        raise NotFoundError(f"no monitor schedule named {name!r}", hint="`roost monitor schedule list` shows them")
    _store().delete_object(KIND, name)


def pipeline_file(spec: dict[str, Any], folder: Path | None = None) -> Path:
    """Write the schedule's pipeline (one `monitor` task per check) as YAML; returns its path."""
    import yaml

    from roost import workspace

    d = folder or workspace.current().state_dir / "monitor"
    d.mkdir(parents=True, exist_ok=True)
    doc = {
        "name": f"monitor-{spec['name']}",
        "tasks": {
            c: {
                "uses": "monitor",
                "with": {"model": spec["model"], "check": c, "options": spec["options"].get(c) or {}},
            }
            for c in spec["checks"]
        },
    }
    path = d / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def run_due(now: datetime | None = None, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Run every due schedule through the pipeline runner; not-due ones are listed as skipped."""
    from roost.pipeline.loader import load_pipeline
    from roost.pipeline.runner import run_pipeline

    now = now or datetime.now(UTC)
    out = []
    for name, spec in schedules().items():
        if names and name not in names:
            continue
        if not is_due(spec, now):
            out.append({"name": name, "status": "skipped", "reason": "not due", "last_run": spec.get("last_run")})
            continue
        res = run_pipeline(load_pipeline(pipeline_file(spec)), use_cache=False)
        done = {t: s.output for t, s in res.tasks.items() if s.output is not None}
        errors = {t: s.error for t, s in res.tasks.items() if s.error}
        spec["last_run"] = now.isoformat()
        _store().put_object(KIND, name, spec)
        out.append({"name": name, "status": res.status, "pipeline_run": res.run_id, "checks": done, "errors": errors})
        log.info("monitor schedule %s: %s", name, res.status)
    return out


def airflow_schedule(spec: dict[str, Any]) -> str:
    """The Airflow DAG `schedule=` of a schedule, as Python source."""
    if spec.get("cron"):
        return repr(str(spec["cron"]))
    return f"datetime.timedelta(minutes={float(spec['every_minutes'])!r})"


def export_dags(folder: Path) -> list[Path]:
    """Write one Airflow DAG file per schedule into `folder` (its tasks run the same `monitor` pipeline tasks)."""
    from roost import workspace
    from roost.pipeline.airflow import export_airflow
    from roost.pipeline.loader import load_pipeline

    specs = schedules()
    if not specs:
        raise RoostError(
            "no monitor schedules are declared", hint="roost monitor schedule add MODEL --check drift --every 60"
        )
    ws = workspace.current()
    out = []
    for name, spec in specs.items():
        src = pipeline_file(spec)
        safe = re.sub(r"\W+", "_", name)
        out.append(
            export_airflow(
                load_pipeline(src), src, folder / f"roost_monitor_{safe}.py", ws.root, schedule=airflow_schedule(spec)
            )
        )
    return out


def demo_schedule(
    model: str, checks: tuple[str, ...] = ("drift", "skew"), every_minutes: float = 60, console: Any = None
) -> list[dict[str, Any]]:
    """The demo's monitor step: schedule `checks` of a served model every hour and run the due ones once."""
    from rich.console import Console

    con = console or Console()
    spec = declare(model, list(checks), every_minutes=every_minutes)
    done = run_due(names=[spec["name"]])
    for d in done:
        for check, out in (d.get("checks") or {}).items():
            con.print(f"  monitor {check} of {model}: {out.get('verdict')} (monitor run {str(out.get('run_id'))[:8]})")
        for check, err in (d.get("errors") or {}).items():
            con.print(f"  [yellow]monitor {check} of {model} failed:[/] {err}")
    con.print(
        f"  scheduled every {every_minutes:g} min: `roost monitor schedule --once` runs the due checks; "
        f"`roost ui` → Models → {model} charts them over time"
    )
    return done
