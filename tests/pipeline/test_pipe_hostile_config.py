"""Hostile pipeline configs: each a ConfigError naming the task, never a traceback or a silently dropped task."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from roost.errors import ConfigError
from roost.pipeline import Pipeline, task
from roost.pipeline.loader import load_pipeline


def _yaml(tmp_path: Path, body: str) -> Path:
    f = tmp_path / "pipe.yaml"
    f.write_text(textwrap.dedent(body))
    return f


def test_negative_retries_in_python_is_an_error_naming_the_task() -> None:
    """retries=-1 used to make zero attempts: the task never ran, stayed 'pending', and its downstream ran."""
    with pytest.raises(ConfigError, match="'flaky'.*retries"):
        task(lambda: 1, name="flaky", retries=-1)
    with pytest.raises(ConfigError, match="'slow'.*retry_delay"):
        task(lambda: 1, name="slow", retry_delay=float("nan"))


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "true"])
def test_bad_retries_in_yaml_is_an_error_naming_the_task(tmp_path: Path, value: str) -> None:
    """Not a whole number >= 0: a ConfigError at tasks.NAME (int('abc') escaped as ValueError; true read as 1)."""
    f = _yaml(tmp_path, f"tasks:\n  fit:\n    uses: train\n    with: {{config: t.yaml}}\n    retries: {value}\n")
    with pytest.raises(ConfigError, match="tasks.fit.*retries"):
        load_pipeline(f)


def test_duplicate_task_names_in_yaml_are_an_error(tmp_path: Path) -> None:
    """YAML keeps the last of two equal keys: the first task was dropped without a word."""
    f = _yaml(
        tmp_path,
        """\
        tasks:
          fit:
            uses: train
          fit:
            uses: evaluate
        """,
    )
    with pytest.raises(ConfigError, match="'fit'.*twice|twice.*'fit'"):
        load_pipeline(f)


def test_needs_as_one_name_and_self_dependency(tmp_path: Path) -> None:
    """`needs: fit` is one task (it was read letter by letter); a task needing itself is a cycle naming it."""
    f = _yaml(
        tmp_path,
        "tasks:\n  fit:\n    uses: train\n    with: {config: a.yaml}\n"
        "  ev:\n    uses: train\n    with: {config: b.yaml}\n    needs: fit\n",
    )
    assert load_pipeline(f).nodes["ev"].after == ["fit"]
    f = _yaml(tmp_path, "tasks:\n  fit:\n    uses: train\n    with: {config: a.yaml}\n    needs: [fit]\n")
    with pytest.raises(ConfigError, match="cycle: fit -> fit"):
        load_pipeline(f)


@pytest.mark.parametrize(
    "body",
    [
        "tasks:\n  fit: train\n",
        "tasks:\n  fit:\n    uses: train\n    with: [1, 2]\n",
        "tasks:\n  fit:\n    uses: train\n    needs: {a: 1}\n",
    ],
)
def test_malformed_task_specs_are_errors_naming_the_task(tmp_path: Path, body: str) -> None:
    """A task that is not a mapping, `with` that is not a mapping, `needs` that is not a list: tasks.fit named."""
    with pytest.raises(ConfigError, match="tasks.fit"):
        load_pipeline(_yaml(tmp_path, body))


def test_explicit_duplicate_node_name_is_an_error() -> None:
    """Two nodes given the same explicit name: the second was renamed silently, so `after=[name]` hit the first."""

    @task
    def one() -> int:
        return 1

    with pytest.raises(ConfigError, match="'a'"), Pipeline("dup") as p:
        p.add(one, node_name="a")
        p.add(one, node_name="a")


def test_same_size_rewrite_with_restored_mtime_reruns(ws) -> None:
    """A file restored with its old mtime (cp -p, tar, rsync -t) and the same size: the key must see new bytes.

    The hash memo keyed on (path, size, mtime) only, so a second run in the same process reused the old hash.
    """
    import os

    from roost.pipeline.runner import run_pipeline

    calls: list[str] = []

    @task
    def read(path: str) -> str:
        calls.append(path)
        return Path(path).read_text()

    data = ws.root / "rows.csv"
    data.write_text("a\n1\n")
    st = data.stat()
    with Pipeline("same-size") as p:
        read("rows.csv")
    assert run_pipeline(p).output("read") == "a\n1\n"
    data.write_text("a\n2\n")
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    res = run_pipeline(p)
    assert res.tasks["read"].state == "succeeded" and res.output("read") == "a\n2\n" and len(calls) == 2


def test_failed_task_downstream_does_not_run(ws) -> None:
    """A failing task's downstream is skipped (named in its error), never called."""
    from roost.pipeline.runner import run_pipeline

    ran: list[str] = []

    @task
    def boom() -> int:
        raise ValueError("no")

    @task
    def after(x: int) -> int:
        ran.append("after")
        return x

    with Pipeline("fail") as p:
        after(boom())
    res = run_pipeline(p)
    assert res.tasks["boom"].state == "failed" and res.tasks["after"].state == "skipped"
    assert "boom" in (res.tasks["after"].error or "") and ran == []


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("params: [1]\ntasks:\n  fit:\n    uses: train\n    with: {config: a.yaml}\n", "params"),  # was TypeError
        ("tasks:\n  fit:\n    uses: train\n    with: {config: a.yaml}\n    cache: 'no'\n", "tasks.fit.cache"),
        ("tasks:\n  fit:\n    uses: train\n    with: {config: a.yaml, epochs: 3}\n", "tasks.fit"),  # named 'train'
        ("tasks:\n  a.b:\n    uses: train\n    with: {config: a.yaml}\n", "'a.b'"),  # ${tasks.a.b} cannot name it
    ],
)
def test_more_malformed_yaml_is_an_error_naming_the_task(tmp_path: Path, body: str, match: str) -> None:
    """A quoted 'no' for cache was read as true (bool('no')); the others escaped or named the built-in, not the task."""
    with pytest.raises(ConfigError, match=match):
        load_pipeline(_yaml(tmp_path, body))


def test_upstream_series_with_a_new_index_reruns_downstream(ws) -> None:
    """The key encoded a pandas Series by .tolist(), dropping its index: new labels, same values, a stale cache hit."""
    import pandas as pd

    from roost.pipeline.runner import run_pipeline

    @task
    def make(start: int) -> pd.Series:
        return pd.Series([1, 2], index=[start, start + 1])

    @task
    def first_label(s: pd.Series) -> int:
        return int(s.index[0])

    with Pipeline("series") as p:
        first_label(make(p.param("start", 0)))
    assert run_pipeline(p).output("first_label") == 0
    res = run_pipeline(p, params={"start": 5})
    assert res.tasks["first_label"].state == "succeeded" and res.output("first_label") == 5


def test_task_calling_sys_exit_fails_that_task_only(ws) -> None:
    """sys.exit() in a task (common in scripts) escaped the runner as SystemExit: no result, runs left open."""
    from roost.pipeline.runner import run_pipeline

    @task
    def quits() -> int:
        import sys

        sys.exit(3)

    @task
    def fine() -> int:
        return 1

    with Pipeline("exits") as p:
        quits()
        fine()
    res = run_pipeline(p)
    assert res.tasks["quits"].state == "failed" and "SystemExit" in (res.tasks["quits"].error or "")
    assert res.tasks["fine"].state == "succeeded"
