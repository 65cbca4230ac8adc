"""Entry point of the `roost` command: builds the Typer app from the verb-group modules."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

# Plain (click-style) help: Typer's Rich help formatter adds imports to every `roost --help` (bench/RESULTS.md).
# Command output still uses Rich tables and colours.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer
from typer.core import TyperGroup

from roost.console import print_error
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
    "roost.cli.server",
    "roost.cli.tune",
    "roost.cli.models_import",
    "roost.cli.ann",
    "roost.cli.monitor",
    "roost.cli.pipeline",
    "roost.cli.notebook",
    "roost.cli.lineage",
    "roost.cli.predict",
    "roost.cli.server_admin",
]


# Top-level help lists the verbs under these headings, in this order (a verb not named here goes under "Other").
SECTIONS: dict[str, list[str]] = {
    "Start": ["init", "datasets"],
    "Train and track": ["train", "tune", "runs", "experiments", "models", "gc", "tensorboard"],
    "Features": ["features"],
    "Serve": ["serve", "predict", "embed", "index"],
    "Monitor and explain": ["monitor", "fairness", "explain", "card", "lineage"],
    "Workflows and UI": ["pipeline", "notebook", "ui"],
    "Team server": ["server", "login", "logout", "users", "tokens", "groups", "grant", "revoke", "grants", "audit"],
}


class _GroupedHelp(TyperGroup):
    """Top-level help with the verbs grouped under SECTIONS' headings (plain, non-Rich help)."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Write one definition list per section."""
        shown = {}
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                shown[name] = cmd.get_short_help_str(limit=formatter.width - 6 - max(map(len, self.commands)))
        placed = {n for names in SECTIONS.values() for n in names}
        groups = [*SECTIONS.items(), ("Other", [n for n in shown if n not in placed])]
        for title, names in groups:
            rows = [(n, shown[n]) for n in names if n in shown]
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def _version(value: bool) -> None:
    """Print the installed version and exit (eager --version)."""
    if value:
        from importlib.metadata import version

        typer.echo(f"roost {version('roost')}")
        raise typer.Exit()


def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print roost's version and exit."
    ),
) -> None:
    """roost: ML platform — train, track, register, feature store, serve."""


_READABLE: list[bool] = []  # non-empty once Typer's help type labels are patched


def _readable_types() -> None:
    """Help shows a repeatable value as `<str>...`, not Python's `<list[str]>` (#37); idempotent."""
    from typer.core import _TyperParameter

    if _READABLE:
        return
    orig = _TyperParameter.display_type

    def display_type(self: Any, ctx: Any) -> str:
        label = str(orig(self, ctx))
        if label.startswith("<list[") and label.endswith("]>"):
            label = f"<{label[6:-2]}>" + ("..." if getattr(self, "multiple", False) else "")
        return label

    type.__setattr__(_TyperParameter, "display_type", display_type)
    _READABLE.append(True)


def build_app() -> typer.Typer:
    """Assemble the CLI from every verb-group module that is present."""
    _readable_types()
    app = typer.Typer(
        name="roost",
        cls=_GroupedHelp,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    app.callback()(_root)
    for mod in MODULES:
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name == mod:
                continue
            raise
        m.register(app)
    panel = {n: title for title, names in SECTIONS.items() for n in names}
    for cmd in app.registered_commands:  # the same headings in Rich help
        if cmd.name in panel:
            cmd.rich_help_panel = panel[cmd.name]
    for grp in app.registered_groups:
        if grp.name in panel:
            grp.rich_help_panel = panel[grp.name]
    return app


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
