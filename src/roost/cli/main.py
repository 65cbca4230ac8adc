"""Entry point of the `roost` command: builds the Typer app from the verb-group modules."""

from __future__ import annotations

import importlib
import os
import sys

# Plain (click-style) help: Typer's Rich help formatter costs ~250 ms of imports on every `roost --help`.
# Command output still uses Rich tables and colours.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer

from roost.errors import RoostError

# Each module exposes `register(app)`; it must import nothing heavy at module level.
MODULES = [
    "roost.cli.workspace_cmds",
    "roost.cli.runs",
    "roost.cli.datasets",
    "roost.cli.train",
    "roost.cli.features",
    "roost.cli.serve",
    "roost.cli.ui",
    "roost.cli.tune",
    "roost.cli.models_import",
    "roost.cli.ann",
    "roost.cli.monitor",
    "roost.cli.pipeline",
    "roost.cli.notebook",
]


def build_app() -> typer.Typer:
    """Assemble the CLI from every verb-group module that is present."""
    app = typer.Typer(
        name="roost",
        help="roost: ML platform — train, track, register, feature store, serve.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    for mod in MODULES:
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name == mod:
                continue
            raise
        m.register(app)
    return app


def print_error(exc: RoostError) -> None:
    """Print a user error as one red line plus a hint."""
    from rich.console import Console
    from rich.markup import escape

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    err.print(f"[bold red]error:[/] {escape(exc.message)}", markup=True)
    if exc.hint:
        err.print(f"[yellow]hint:[/] {escape(exc.hint)}", markup=True)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user errors exit 2 with one line and a hint."""
    app = build_app()
    try:
        app(args=argv, prog_name="roost", standalone_mode=True)
    except RoostError as exc:
        print_error(exc)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
