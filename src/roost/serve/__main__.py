"""`python -m roost.serve MODEL ...`: the `roost serve` command without loading the rest of the CLI."""

from __future__ import annotations


def main() -> None:
    """Run the serve command as a standalone Typer app."""
    import typer

    from roost.cli.main import print_error
    from roost.cli.serve import serve
    from roost.errors import RoostError

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(serve)
    try:
        app(prog_name="roost serve")
    except RoostError as exc:
        print_error(exc)
        raise SystemExit(exc.exit_code) from None


if __name__ == "__main__":
    main()
