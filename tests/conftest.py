"""Shared fixtures: a temporary roost workspace per test."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh initialised workspace, made current and the cwd for the test."""
    from roost import workspace

    for var in ("ROOST_STORE_URL", "ROOST_ARTIFACTS", "ROOST_WORKSPACE", "ROOST_ONLINE_STORE"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "ws"
    w = workspace.init(root)
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


ENV_CLEAN = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
