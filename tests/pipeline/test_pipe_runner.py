"""The local runner: caching by code and inputs, retries, skips, parallelism, records, bad input."""

import textwrap
import threading
from pathlib import Path

import pytest

import roost
from roost.errors import ConfigError, RoostError
from roost.pipeline import Pipeline, task
from roost.pipeline.loader import load_pipeline
from roost.pipeline.runner import run_pipeline

PIPE = """
from pathlib import Path
import roost

LOG = Path({log!r})

@roost.task
def make(rows: int) -> list:
    with LOG.open("a") as f: f.write("make\\n")
    return list(range(rows))

@roost.task
def total(xs: list) -> int:
    with LOG.open("a") as f: f.write("total\\n")
    return sum(xs){extra}

with roost.Pipeline("sums") as p:
    xs = make(p.param("rows", 5))
    t = total(xs)
"""


def _write(tmp_path: Path, extra: str = "") -> tuple[Path, Path]:
    log = tmp_path / "calls.log"
    f = tmp_path / "pipe.py"
    f.write_text(PIPE.format(log=str(log), extra=extra))
    return f, log


def _calls(log: Path) -> list[str]:
    calls = log.read_text().split() if log.exists() else []
    log.write_text("")
    return calls


def test_cache_hits_and_misses_on_inputs_and_code(ws, tmp_path):
    f, log = _write(tmp_path)
    r1 = run_pipeline(load_pipeline(f))
    assert r1.status == "FINISHED" and r1.output("total") == 10 and _calls(log) == ["make", "total"]
    r2 = run_pipeline(load_pipeline(f))
    assert {n: s.state for n, s in r2.tasks.items()} == {"make": "cached", "total": "cached"}
    assert _calls(log) == [] and r2.output("total") == 10
    r3 = run_pipeline(load_pipeline(f), {"rows": 6})  # input change: both re-run (total's input changed too)
    assert _calls(log) == ["make", "total"] and r3.output("total") == 15
    f2, _ = _write(tmp_path, extra=" + 1000")  # code change in `total` only
    r4 = run_pipeline(load_pipeline(f2))
    assert {n: s.state for n, s in r4.tasks.items()} == {"make": "cached", "total": "succeeded"}
    assert _calls(log) == ["total"] and r4.output("total") == 1010
    assert run_pipeline(load_pipeline(f2), use_cache=False).tasks["make"].state == "succeeded"


def test_retry_then_fail_skips_downstream_and_records(ws):
    attempts = {"flaky": 0, "broken": 0}

    @task(retries=2, retry_delay=0.5)
    def flaky() -> int:
        attempts["flaky"] += 1
        if attempts["flaky"] < 2:
            raise RuntimeError("transient")
        return 1

    @task(retries=2, retry_delay=0.5)
    def broken(x: int) -> int:
        attempts["broken"] += 1
        raise ValueError(f"bad value {x}")

    @task
    def after(y: int) -> int:
        return y

    with Pipeline("fragile") as p:
        a = flaky()
        b = broken(a)
        after(b)
    slept = []
    res = run_pipeline(p, sleep=slept.append)
    assert res.status == "FAILED"
    assert {n: (s.state, s.attempts) for n, s in res.tasks.items()} == {
        "flaky": ("succeeded", 2),
        "broken": ("failed", 3),
        "after": ("skipped", 0),
    }
    assert slept == [0.5, 0.5, 1.0]  # backoff: flaky once, broken twice (doubling)
    prun = roost.get_run(res.run_id)
    assert prun["status"] == "FAILED" and "bad value 1" in prun["tags"]["roost.pipeline.error"]
    kids = {k["tags"]["roost.task"]: k for k in roost.search_runs(f"parent_run_id = '{res.run_id}'")}
    assert (
        kids["broken"]["status"] == "FAILED" and "ValueError: bad value 1" in kids["broken"]["tags"]["roost.task.error"]
    )
    assert kids["after"]["status"] == "SKIPPED" and kids["flaky"]["status"] == "FINISHED"
    assert kids["flaky"]["tags"]["roost.task.attempts"] == "2"


def test_independent_tasks_run_in_parallel(ws):
    barrier = threading.Barrier(2, timeout=120)  # a hang guard; both tasks must meet

    @task(cache=False)
    def left() -> str:
        barrier.wait()  # returns only if `right` is running at the same time
        return "l"

    @task(cache=False)
    def right() -> str:
        barrier.wait()
        return "r"

    @task(cache=False)
    def join(a: str, b: str) -> str:
        return a + b

    with Pipeline("diamond") as p:
        join(left(), right())
    assert run_pipeline(p, parallel=2).output("join") == "lr"


def test_type_mismatch_and_unknown_param(ws):
    @task
    def number() -> int:
        return 1

    @task
    def shout(text: str) -> str:
        return text.upper()

    with pytest.raises(ConfigError) as e:
        with Pipeline("typed") as p:
            shout(number())
    assert "'number' returns int" in e.value.message and "'shout' input 'text' expects str" in e.value.message
    with Pipeline("ok") as p:
        number()
    with pytest.raises(RoostError) as e:
        run_pipeline(p, {"rowz": 1})
    assert "rowz" in e.value.message


def test_yaml_cycle_is_named(ws, tmp_path):
    f = tmp_path / "cyc.yaml"
    f.write_text(
        textwrap.dedent("""
        name: cyc
        tasks:
          a: {uses: register, with: {run_id: "${tasks.c.run_id}", name: m}}
          b: {uses: register, with: {run_id: "${tasks.a.run_id}", name: m}}
          c: {uses: register, with: {run_id: "${tasks.b.run_id}", name: m}}
          d: {uses: register, with: {run_id: x, name: m}}
    """)
    )
    with pytest.raises(ConfigError) as e:
        load_pipeline(f)
    assert "has a cycle: a -> b -> c -> a" in e.value.message
    f.write_text("tasks:\n  a: {uses: trian}\n")
    with pytest.raises(ConfigError) as e:
        load_pipeline(f)
    assert "did you mean 'train'" in e.value.hint


def test_cli_run_and_show(ws, tmp_path, cli):
    f, log = _write(tmp_path)
    code, out, err = cli("pipeline", "run", str(f), "-p", "rows=4")
    assert code == 0, err
    assert "pipeline sums" in out and "succeeded" in out
    run_id = roost.search_runs("tags.roost.kind = 'pipeline'")[0]["run_id"]
    code, out, _ = cli("pipeline", "show", run_id[:8])
    assert code == 0 and "make" in out and "total" in out
