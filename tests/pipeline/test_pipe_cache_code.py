"""A task's cache key covers the user code it calls: helpers, module constants, other user modules (not only its own
source), stays the same for unchanged code in any process, and ignores edits to code the task does not reach."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from roost.pipeline import task
from roost.pipeline.loader import load_pipeline
from roost.pipeline.runner import run_pipeline

PIPE = """
import functools
from pathlib import Path
import roost

LOG = Path({log!r})
THRESHOLD = {threshold}
{unrelated}

def clean(xs):
    return [x for x in xs if x is not None]{clean_extra}

def logged(fn):
    @functools.wraps(fn)
    def wrapper(*args):
        return fn(*args)
    return wrapper

@logged
def double(xs):
    return [x * {factor} for x in xs]

def is_even(n):
    return True if n == 0 else is_odd(n - 1)

def is_odd(n):
    return {odd_base} if n == 0 else is_even(n - 1)

@roost.task
def prep(n: int) -> list:
    with LOG.open("a") as f: f.write("prep\\n")
    return double([x for x in clean([None, *range(n)]) if x > THRESHOLD])

@roost.task
def parity(n: int) -> bool:
    with LOG.open("a") as f: f.write("parity\\n")
    return is_even(n)

with roost.Pipeline("codes") as p:
    prep(p.param("n", 5))
    parity(p.param("n", 5))
"""

BASE = {"threshold": "1", "unrelated": "", "clean_extra": "", "factor": "2", "odd_base": "False"}


def _write(tmp_path: Path, **edits: str) -> Path:
    f = tmp_path / "pipe.py"
    f.write_text(PIPE.format(log=str(tmp_path / "calls.log"), **{**BASE, **edits}))
    return f


def _run(f: Path) -> tuple[dict, dict, list[str]]:
    """Load the file as a new process would and run it: (states, outputs, the tasks that executed)."""
    log = f.parent / "calls.log"
    log.write_text("")
    res = run_pipeline(load_pipeline(f))
    assert res.status == "FINISHED", {n: s.error for n, s in res.tasks.items()}
    states = {n: s.state for n, s in res.tasks.items()}
    return states, {n: res.output(n) for n in res.tasks}, log.read_text().split()


def _first_run(tmp_path: Path) -> Path:
    f = _write(tmp_path)
    states, out, ran = _run(f)
    assert out == {"prep": [4, 6, 8], "parity": False} and sorted(ran) == ["parity", "prep"]
    assert _run(f)[2] == []  # nothing changed: both cached
    return f


def test_editing_a_helper_in_the_pipeline_file_reruns_the_task(ws, tmp_path):
    """`clean` is called by `prep` only: editing it re-runs prep (with the new answer) and leaves parity cached."""
    _first_run(tmp_path)
    f = _write(tmp_path, clean_extra=" + [10]")
    states, out, ran = _run(f)
    assert states == {"prep": "succeeded", "parity": "cached"} and out["prep"] == [4, 6, 8, 20] and ran == ["prep"]
    assert _run(f)[2] == []


def test_editing_a_module_constant_reruns_the_task(ws, tmp_path):
    """THRESHOLD is read by `prep` from the module: a new value re-runs it."""
    _first_run(tmp_path)
    states, out, ran = _run(_write(tmp_path, threshold="2.5"))
    assert states == {"prep": "succeeded", "parity": "cached"} and out["prep"] == [6, 8]


def test_editing_an_unrelated_function_keeps_the_cache_but_a_decorated_helper_does_not(ws, tmp_path):
    """New lines above the tasks in code they never call: both stay cached; then the function behind the
    functools.wraps decorator on `double` changes: prep re-runs."""
    _first_run(tmp_path)
    unrelated = "\n\ndef unrelated():\n    return 'not called by any task'\n\nOTHER = [1, 2, 3]\n"
    states, _, ran = _run(_write(tmp_path, unrelated=unrelated))
    assert states == {"prep": "cached", "parity": "cached"} and ran == []
    states, out, ran = _run(_write(tmp_path, unrelated=unrelated, factor="10"))
    assert states == {"prep": "succeeded", "parity": "cached"} and out["prep"] == [20, 30, 40]


def test_mutual_recursion_terminates_and_is_followed(ws, tmp_path):
    """is_even -> is_odd -> is_even: the key is computed (the task is cached on a rerun) and an edit of is_odd,
    reached only through is_even, re-runs parity."""
    _first_run(tmp_path)
    states, out, ran = _run(_write(tmp_path, odd_base="True"))
    assert states == {"prep": "cached", "parity": "succeeded"} and out["parity"] is True


HELPERS = """
SCALE = {scale}

def _inner(x):
    return x * SCALE

def shift(xs):
    return [_inner(x) + {offset} for x in xs]
"""

PIPE2 = """
from pathlib import Path
import roost
import {mod}
from {mod} import shift

LOG = Path({log!r})

@roost.task
def direct(n: int) -> list:
    with LOG.open("a") as f: f.write("direct\\n")
    return shift(list(range(n)))

@roost.task
def through_module(n: int) -> list:
    with LOG.open("a") as f: f.write("through_module\\n")
    return {mod}.shift([n])

with roost.Pipeline("mods") as p:
    direct(3)
    through_module(7)
"""


@pytest.fixture
def helper_module(tmp_path):
    """A second user module next to the pipeline file; forgotten after the test (a new process would not have it)."""
    name = f"helpers_{os.getpid()}_{tmp_path.name}".replace("-", "_")
    yield name
    sys.modules.pop(name, None)


def test_a_helper_in_a_second_user_module_is_followed(ws, tmp_path, helper_module):
    """`from helpers import shift` and `helpers.shift(...)`: an edit in helpers.py (the function, or a constant its
    own helper reads) re-runs both tasks."""
    mod = helper_module
    f = tmp_path / "pipe.py"
    f.write_text(PIPE2.format(mod=mod, log=str(tmp_path / "calls.log")))

    def run(scale: str, offset: str) -> tuple[dict, dict, list[str]]:
        (tmp_path / f"{mod}.py").write_text(HELPERS.format(scale=scale, offset=offset))
        sys.modules.pop(mod, None)  # what a fresh `roost pipeline run` process sees
        return _run(f)

    states, out, _ = run("1", "0")
    assert out == {"direct": [0, 1, 2], "through_module": [7]}
    assert run("1", "0")[0] == {"direct": "cached", "through_module": "cached"}
    states, out, _ = run("1", "100")  # shift's own source
    assert states == {"direct": "succeeded", "through_module": "succeeded"}
    assert out == {"direct": [100, 101, 102], "through_module": [107]}
    states, out, _ = run("10", "100")  # a constant read by _inner, two calls away
    assert states == {"direct": "succeeded", "through_module": "succeeded"}
    assert out == {"direct": [100, 110, 120], "through_module": [170]}


def test_a_stale_imported_module_does_not_poison_the_cache(ws, tmp_path, helper_module):
    """A long-lived process (a notebook) keeps the old helpers module imported after helpers.py is edited: it runs
    the old code, and that result must not be served to a fresh process, which runs the new code."""
    mod = helper_module
    f = tmp_path / "pipe.py"
    f.write_text(PIPE2.format(mod=mod, log=str(tmp_path / "calls.log")))
    helpers = tmp_path / f"{mod}.py"
    helpers.write_text(HELPERS.format(scale="1", offset="0"))
    assert _run(f)[1]["direct"] == [0, 1, 2]
    helpers.write_text(HELPERS.format(scale="1", offset="1000"))
    _, out, _ = _run(f)  # the old module stays imported: old code runs, whatever its state
    assert out["direct"] == [0, 1, 2]
    sys.modules.pop(mod)  # a fresh process
    states, out, _ = _run(f)
    assert states["direct"] == "succeeded" and out["direct"] == [1000, 1001, 1002]


def test_deep_call_chains_terminate_and_are_followed(ws, tmp_path):
    """A chain of 300 helpers f0 -> f1 -> ... -> f300: the key is computed (cached on a rerun) and an edit 40 calls
    deep re-runs the task."""
    log = tmp_path / "calls.log"

    def pipe(step40: int) -> Path:
        chain = "".join(f"def f{i}(x):\n    return f{i + 1}(x) + {step40 if i == 40 else 1}\n\n" for i in range(300))
        f = tmp_path / "deep.py"
        f.write_text(
            f"from pathlib import Path\nimport roost\n\n{chain}def f300(x):\n    return x\n\n"
            f"@roost.task\ndef top() -> int:\n    Path({str(log)!r}).open('a').write('top\\n')\n    return f0(0)\n\n"
            "with roost.Pipeline('deep') as p:\n    top()\n"
        )
        return f

    assert _run(pipe(1))[1] == {"top": 300}
    assert _run(pipe(1))[0] == {"top": "cached"}
    states, out, _ = _run(pipe(10))
    assert states == {"top": "succeeded"} and out == {"top": 309}


def test_a_task_without_source_is_keyed_on_its_code(ws):
    """A task made by exec (no file to read the source from) runs, and two different such functions get different
    keys (today both fall back to the name `f`)."""
    from roost.pipeline import Pipeline

    def make(body: str):
        ns: dict = {}
        exec(f"def f(x):\n    return {body}\n", ns)
        return task(ns["f"])

    outs = []
    for body in ("x + 1", "x * 100", "x + 1"):
        with Pipeline("exec") as p:
            make(body)(3)
        res = run_pipeline(p)
        outs.append((res.tasks["f"].state, res.output("f")))
    assert outs == [("succeeded", 4), ("succeeded", 300), ("cached", 4)]


_KEY_SCRIPT = """
import json, sys
from roost.pipeline.loader import load_pipeline
p = load_pipeline(sys.argv[1])
print(json.dumps({n: node.task.code_hash() for n, node in p.nodes.items()}))
"""

PIPE3 = """
import roost

TAGS = {tags}
NAMES = frozenset(TAGS)
CONFIG = {{"b": (1, 2.0), "a": [True, None, "x"], 3: {{"nested": TAGS}}}}

class Scaler:
    factor = 2

    def apply(self, x):
        return x * self.factor

def label(x):
    return sorted(TAGS)[0] + str(x)

@roost.task
def work(n: int) -> str:
    return label(Scaler().apply(n)) + str(len(NAMES)) + str(CONFIG["b"])

with roost.Pipeline("seeds") as p:
    work(2)
"""


def _keys(f: Path, seed: str) -> dict:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    proc = subprocess.run(
        [sys.executable, "-c", _KEY_SCRIPT, str(f)], cwd=f.parent, env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_code_key_is_the_same_in_fresh_processes_with_other_hash_seeds(tmp_path):
    """Unchanged code (with sets of strings, whose order follows PYTHONHASHSEED) gives one key in three processes;
    a changed set constant gives another key."""
    tags = textwrap.dedent("""{"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"}""")
    f = tmp_path / "seeds.py"
    f.write_text(PIPE3.format(tags=tags))
    keys = [_keys(f, seed) for seed in ("1", "2", "3")]
    assert keys[0] == keys[1] == keys[2]
    f.write_text(PIPE3.format(tags=tags.replace("theta", "iota")))
    assert _keys(f, "4") != keys[0]


CONSTS = """
import dataclasses
import logging

log = logging.getLogger("roost-test-codehash")

@dataclasses.dataclass(frozen=True)
class Cfg:
    lr: float

CFG = Cfg(lr={lr})
TABLE = {{"a": [1, 2], "b": {{"c": (3, 4)}}}}

def fit(x):
    log.info("fitting")
    return x * CFG.lr + TABLE["b"]["c"][0]
"""


def test_constant_objects_key_on_their_value_and_process_state_is_left_out(tmp_path, helper_module):
    """A dataclass constant (by its repr) is in the key; a logger's level (its repr shows it) is not."""
    import importlib
    import logging

    def key(lr: str) -> str:
        (tmp_path / f"{helper_module}.py").write_text(CONSTS.format(lr=lr))
        sys.modules.pop(helper_module, None)
        sys.path.insert(0, str(tmp_path))
        try:
            return task(importlib.import_module(helper_module).fit).code_hash()
        finally:
            sys.path.remove(str(tmp_path))

    before = key("0.1")
    logger = logging.getLogger("roost-test-codehash")
    logger.setLevel(logging.DEBUG)
    try:
        assert key("0.1") == before  # `roost pipeline run -v` must not re-run everything
    finally:
        logger.setLevel(logging.NOTSET)
    assert key("0.25") != before
