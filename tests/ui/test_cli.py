"""`roost ui` command: registered, documented, light to import."""

from __future__ import annotations

import subprocess
import sys


def test_ui_command_help(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # Rich cuts long option names in an 80-column help box
    code, out, _ = cli("ui", "--help")
    assert code == 0
    for opt in ("--port", "--host", "--token", "--tensorboard-idle-minutes", "--tensorboard-max"):
        assert opt in out


def test_cli_module_imports_nothing_heavy():
    probe = (
        "import sys, roost.cli.ui; heavy = [m for m in ('starlette', 'uvicorn', 'jinja2', 'sqlalchemy', "
        "'httpx', 'tensorboard') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
