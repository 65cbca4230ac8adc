"""Every bench creates the peer venvs it uses through bench/_common.peer_venv, pinned (no installs here)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
# The pins of /work/shared/ENV-NOTES.md "Peers for the benchmarks": venv name -> requirements.
PINS = {
    "feast": ["feast[duckdb,redis]==0.67.0"],  # redis: bench/streaming.py pushes to a Redis online store
    "mlserver": ["mlserver==1.7.1", "mlserver-sklearn==1.7.1"],
    "mlflow": ["mlflow==3.17.2"],
    "evidently": ["evidently==0.7.23", "fairlearn==0.15.0", "pandas<3"],
}


def _peer_venv_calls(tree: ast.AST) -> list[tuple[str, list[str]]]:
    """(venv name, requirements) of every literal peer_venv(...) call in a module."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "peer_venv":
            name, reqs = node.args[0], node.args[1]
            assert isinstance(name, ast.Constant) and isinstance(reqs, ast.List), ast.unparse(node)
            out.append((name.value, [ast.literal_eval(r) for r in reqs.elts]))
    return out


def _helpers(common: ast.Module) -> dict[str, str]:
    """Functions of _common that return a peer_venv: function name -> venv name."""
    out = {}
    for fn in common.body:
        if isinstance(fn, ast.FunctionDef) and fn.name != "peer_venv":
            calls = _peer_venv_calls(fn)
            if calls:
                out[fn.name] = calls[0][0]
    return out


def _docstring_nodes(tree: ast.Module) -> set[int]:
    """ids of the docstring constants of a module and its functions/classes."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def audit(bench: Path) -> list[str]:
    """Problems found in the bench folder: peers used but not created through peer_venv, unpinned peers."""
    problems = []
    common = ast.parse((bench / "_common.py").read_text())
    helpers = _helpers(common)
    for name, reqs in _peer_venv_calls(common):
        if name in PINS and reqs != PINS[name]:
            problems.append(f"_common: .bench/{name} installs {reqs}, expected {PINS[name]}")
    for path in sorted(bench.glob("*.py")):
        if path.name == "_common.py":
            continue
        tree = ast.parse(path.read_text())
        docs = _docstring_nodes(tree)
        created = {name for name, _ in _peer_venv_calls(tree)}
        for name, reqs in _peer_venv_calls(tree):
            if reqs != PINS.get(name, reqs) or not all(re.search(r"==|<", r) for r in reqs):
                problems.append(f"{path.name}: .bench/{name} installs unpinned/unexpected {reqs}")
        for node in ast.walk(tree):
            called = (
                getattr(node, "id", getattr(node, "attr", None)) if isinstance(node, ast.Name | ast.Attribute) else None
            )
            if called in helpers:
                created.add(helpers[called])
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                if node.value == ".bench" or node.value.startswith(".bench/"):
                    problems.append(f"{path.name}:{node.lineno}: builds a .bench path by hand instead of peer_venv")
            if isinstance(node, ast.Name) and node.id == "BENCH_VENVS":
                problems.append(f"{path.name}:{node.lineno}: uses BENCH_VENVS directly instead of peer_venv")
        mentioned = set(re.findall(r"\.bench/(\w+)", ast.get_docstring(tree) or ""))
        for name in sorted(mentioned - created):
            problems.append(f"{path.name}: documents peer .bench/{name} but never creates it via peer_venv")
    return problems


def test_every_bench_creates_its_peers_via_peer_venv() -> None:
    """No bench expects a peer venv that nothing creates; every peer venv is pinned as ENV-NOTES.md says."""
    assert audit(BENCH) == []


def test_audit_flags_a_hand_built_peer_path(tmp_path: Path) -> None:
    """The audit itself catches a bench that reads .bench/<peer>/bin/python without creating it."""
    (tmp_path / "_common.py").write_text((BENCH / "_common.py").read_text())
    (tmp_path / "x.py").write_text(
        '"""Peer in .bench/feast."""\nfrom pathlib import Path\nPY = Path("r") / ".bench" / "feast" / "bin"\n'
    )
    problems = audit(tmp_path)
    assert any("by hand" in p for p in problems) and any("never creates" in p for p in problems), problems
