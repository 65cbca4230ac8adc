"""Printing for commands: the `roost` CLI and `python -m roost.serve` (library code logs instead).

It sits in the base so that a command living in a capability package (roost.serve.command) prints as the CLI
does without importing roost.cli.
"""

from __future__ import annotations

from roost.errors import RoostError


def echo(msg: str) -> None:
    """Print a line of Rich markup on stdout."""
    from rich.console import Console

    Console(highlight=False, soft_wrap=True).print(msg)


def print_error(exc: RoostError) -> None:
    """Print a user error as one red line plus a hint on stderr."""
    from rich.console import Console
    from rich.markup import escape

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    err.print(f"[bold red]error:[/] {escape(exc.message)}", markup=True)
    if exc.hint:
        err.print(f"[yellow]hint:[/] {escape(exc.hint)}", markup=True)
