"""User-facing errors: a message that says what went wrong and a hint that says what to do."""

from __future__ import annotations


class RoostError(Exception):
    """An error caused by user input or environment; the CLI prints it in one line and exits 2."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class NotFoundError(RoostError):
    """A named thing (run, model, version, alias, feature, index) does not exist."""


class ConfigError(RoostError):
    """A configuration file or value is invalid; the message names the field."""


class ConflictError(RoostError):
    """An operation conflicts with stored state (a second tell, a duplicate name)."""


def closest(name: str, candidates: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """Return the candidate closest to `name` (for 'did you mean' hints), or None."""
    import difflib

    found = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return found[0] if found else None


def redact_url(url: str) -> str:
    """The URL with any password replaced by *** (for error messages and logs)."""
    import re

    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
