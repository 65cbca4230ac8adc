"""`roost serve MODEL [MODEL ...]`: run the serving fleet (KServe V2 + TF-Serving REST) on one port."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `serve` command (defined in roost.serve.command, shared with `python -m roost.serve`)."""
    from roost.serve.command import serve

    app.command("serve", no_args_is_help=True)(serve)
