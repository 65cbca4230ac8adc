"""roost's command line: one thin module per verb group, all logic lives in the Python API."""

# The entry point is the submodule roost.cli.main (`main()`); the verb-group modules are internal to the CLI.
__all__ = ["main"]
