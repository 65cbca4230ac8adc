"""The filter language's tokens and its size limits, checked before anything is parsed (docs/registry.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from roost.errors import RoostError

KEYWORDS = {"AND", "OR", "NOT", "IN", "LIKE", "TRUE", "FALSE", "ASC", "DESC"}

# Size limits, checked before a filter is parsed (docs/registry.md, "Filter limits"): far above what a person writes,
# low enough that parsing and the SQL stay bounded for every caller (CLI, Python, UI, a team server): SQLite refuses
# ~1,000 OR-ed conditions (its expression depth is 1,000), and 16,384 characters hold at most ~8,000 bound values,
# under SQLite's 32,766 and PostgreSQL's 65,535 per statement. What 256 conditions cost: bench/RESULTS.md, "Figures
# from code comments".
MAX_FILTER_CHARS = 16_384  # characters of filter text
MAX_FILTER_TERMS = 256  # conditions (field op value) in one filter
MAX_IN_VALUES = 1_000  # values in one IN (...) list
MAX_PATTERN_CHARS = 1_024  # characters of one LIKE pattern
MAX_DEPTH = 64  # parentheses and NOTs open around a condition
MAX_ORDER_TERMS = 16  # ORDER BY terms (each one is an outer join)
CACHED_CHARS = 2_048  # longer filters are not kept in compile_filter's cache (a 256-condition tree holds ~3 MB)
_LIMITS_DOC = "the limits are listed in docs/registry.md (Filter limits)"

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
  | (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
  | (?P<ident>(?:[A-Za-z_][\w\-]*|`[^`]+`)(?:\.(?:[A-Za-z_0-9][\w\-./]*|`[^`]+`))?)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<comma>,)
""",
    re.VERBOSE,
)


@dataclass
class Tok:
    kind: str
    text: str
    pos: int
    value: Any = None


class FilterError(RoostError):
    """A malformed filter expression."""


def syntax_error(src: str, tok: Tok | None, what: str) -> FilterError:
    """A FilterError quoting the token at fault and pointing at its position."""
    pos = len(src) if tok is None else tok.pos
    shown = "end of input" if tok is None else repr(tok.text)
    return FilterError(
        f"malformed filter at position {pos + 1}: {what} (got {shown})\n  {src}\n  {' ' * pos}^",
        hint="example: params.lr = 0.01 AND metrics.auc >= 0.9 AND NOT status = 'FAILED'",
    )


def too_big(what: str, hint: str) -> FilterError:
    """A FilterError for a filter past a size limit."""
    return FilterError(f"filter too large: {what}", hint=f"{hint}; {_LIMITS_DOC}")


def check_length(src: str, limit: int = MAX_FILTER_CHARS, what: str = "filter") -> None:
    """Refuse text longer than `limit` characters before reading any of it."""
    if len(src) > limit:
        raise too_big(
            f"the {what} is {len(src):,} characters long (at most {limit:,} characters)",
            "shorten it: one IN (...) list instead of many OR-ed equalities, or split the search",
        )


def check_limits(src: str, toks: list[Tok]) -> None:
    """Refuse a tokenized filter with too many conditions, too long an IN list or too long a LIKE pattern."""
    terms = 0
    for k, t in enumerate(toks):
        if t.kind == "op" or (t.kind == "kw" and t.value in ("IN", "LIKE")):
            terms += 1
        if t.kind != "kw":
            continue
        if t.value == "IN" and k + 1 < len(toks) and toks[k + 1].kind == "lp":
            n, j = 0, k + 2
            while j < len(toks) and toks[j].kind not in ("rp", "lp"):
                n += toks[j].kind != "comma"
                j += 1
            if n > MAX_IN_VALUES:
                raise too_big(
                    f"the IN list at position {t.pos + 1} has {n:,} values "
                    f"(at most {MAX_IN_VALUES:,} values in one IN list)",
                    "split the list over several searches, or tag the runs and filter on the tag",
                )
        elif t.value == "LIKE" and k + 1 < len(toks) and toks[k + 1].kind == "str":
            n = len(toks[k + 1].value)
            if n > MAX_PATTERN_CHARS:
                raise too_big(
                    f"the LIKE pattern at position {toks[k + 1].pos + 1} is {n:,} characters "
                    f"(at most {MAX_PATTERN_CHARS:,} characters in a LIKE pattern)",
                    "match a shorter prefix or part of the value",
                )
    if terms > MAX_FILTER_TERMS:
        raise too_big(
            f"it has {terms:,} conditions (at most {MAX_FILTER_TERMS} conditions in one filter)",
            "use one IN (...) list for many values of a field, or split the search",
        )


def tokenize(src: str) -> list[Tok]:
    """Split a filter into tokens, checking the size limits first; an unknown character is an error naming its
    position."""
    check_length(src)
    out: list[Tok] = []
    i = 0
    while i < len(src):
        m = _TOKEN.match(src, i)
        if not m:
            raise syntax_error(src, Tok("?", src[i], i), "unexpected character")
        kind = m.lastgroup or "?"
        text = m.group()
        if kind != "ws":
            tok = Tok(kind, text, i)
            if kind == "num":
                tok.value = float(text) if any(c in text for c in ".eE") else int(text)
                if tok.value.__class__ is int and not -(2**63) <= tok.value < 2**63:
                    tok.value = float(text)  # no 64-bit bind parameter holds it: compare as the float it is
            elif kind == "str":
                q = text[0]
                tok.value = text[1:-1].replace(q + q, q).replace("\\" + q, q)
            elif kind == "ident" and text.upper() in KEYWORDS:
                tok.kind, tok.value = "kw", text.upper()
            out.append(tok)
        i = m.end()
    check_limits(src, out)
    return out


__all__ = [
    "KEYWORDS",
    "MAX_FILTER_CHARS",
    "MAX_FILTER_TERMS",
    "MAX_IN_VALUES",
    "MAX_PATTERN_CHARS",
    "MAX_DEPTH",
    "MAX_ORDER_TERMS",
    "CACHED_CHARS",
    "Tok",
    "syntax_error",
    "too_big",
    "FilterError",
    "check_length",
    "check_limits",
    "tokenize",
]
