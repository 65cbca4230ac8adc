"""Request ids: the client's (V2 body `id` or X-Request-Id header) when it is sane, else a generated one.

A client id is 1..128 characters from ``A-Z a-z 0-9 . _ : / @ + = -`` (UUIDs, ULIDs, trace ids all fit); anything
else is refused with a 400 that quotes at most 40 characters of it, so a hostile id never reaches the logs raw.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from roost.serve.codec import bad

MAX_LEN = 128
HEADER = b"x-request-id"
_OK = re.compile(r"[A-Za-z0-9._:/@+=\-]{1,128}\Z")


@dataclass
class Call:
    """Per-request state shared by the router and the protocol handlers: metrics labels and the request id."""

    model: str = ""
    protocol: str = "meta"
    request_id: str = ""


def new_id() -> str:
    """A fresh id, unique across workers and restarts: 128 random bits as 32 hex digits (a UUID4's length, without
    building a UUID object: half the cost on every request that brings no id)."""
    return os.urandom(16).hex()


def checked(value: object, where: str) -> str:
    """A client-sent request id, or a 400 that says what an id may contain."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        raise bad(f"{where} must be a string, got {type(value).__name__}")
    if _OK.match(value) is None:
        shown = value[:40] + ("..." if len(value) > 40 else "")
        raise bad(
            f"{where} {shown!r} is not a valid request id: use 1..{MAX_LEN} characters from "
            "A-Z a-z 0-9 . _ : / @ + = - (e.g. a UUID), or leave it out and the server generates one"
        )
    return value
