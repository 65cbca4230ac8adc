"""MLflow's run filter and order-by syntax, translated to roost's filter grammar (roost.registry.filter_sql).

    metrics.acc > 0.5 and params.lr = '0.1' and attributes.run_name LIKE 'cv-%'
    → metrics.acc > 0.5 AND params.lr = '0.1' AND name LIKE 'cv-%'

Keys may be quoted (metrics."val loss", tags.`a b`); attributes are run_id, run_name, status, start_time (also
created), end_time, user_id; times compare in epoch milliseconds as in MLflow. Not translated (answered with
INVALID_PARAMETER_VALUE naming them): ILIKE, IS NULL, datasets.*, attributes.artifact_uri.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from roost.server.mlflow.common import bad, from_ms

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<ident>[A-Za-z_][A-Za-z_0-9]*\.(?:`[^`]*`|"[^"]*"|[A-Za-z_0-9][\w\-./:]*)|`[^`]*`|[A-Za-z_][A-Za-z_0-9]*)
  | (?P<num>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
  | (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<comma>,)
""",
    re.VERBOSE,
)
_WORDS = {"AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "IS", "NULL", "TRUE", "FALSE", "ASC", "DESC"}
_SCOPES = {
    "params": "params",
    "param": "params",
    "metrics": "metrics",
    "metric": "metrics",
    "tags": "tags",
    "tag": "tags",
    "attributes": "",
    "attribute": "",
    "attr": "",
    "run": "",
}
ATTRIBUTES = {  # MLflow's run attributes -> roost's filter attributes
    "run_id": "run_id",
    "run_name": "name",
    "status": "status",
    "start_time": "start_time",
    "created": "start_time",
    "Created": "start_time",
    "end_time": "end_time",
    "user_id": "user",
}
_TIMES = {"start_time", "end_time"}
_PLAIN_KEY = re.compile(r"[A-Za-z_0-9][\w\-./]*")


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def _tokens(src: str, what: str) -> list[_Tok]:
    out, i = [], 0
    while i < len(src):
        m = _TOKEN.match(src, i)
        if m is None:
            raise bad(f"invalid {what} {src!r}: unexpected character {src[i]!r} at position {i + 1}")
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(_Tok(kind, m.group(), i))
        i = m.end()
    return out


def _field(tok: _Tok, src: str) -> tuple[str, bool]:
    """The roost field of an MLflow identifier, and whether it is a time attribute."""
    text = tok.text
    if text.startswith("`"):
        scope, key = "", text.strip("`")
    elif "." in text:
        prefix, key = text.split(".", 1)
        if prefix not in _SCOPES and prefix.lower() not in _SCOPES:
            what = "datasets are not stored by roost" if prefix.lower().startswith("dataset") else "unknown entity"
            raise bad(f"invalid identifier {text!r} in {src!r}: {what}; use params., metrics., tags. or attributes.")
        scope = _SCOPES.get(prefix, _SCOPES.get(prefix.lower(), ""))
        if key[:1] in '`"':
            key = key[1:-1]
    else:
        scope, key = "", text
    if not key:
        raise bad(f"invalid identifier {text!r} in {src!r}: the key is empty")
    if scope:
        if "`" in key:
            raise bad(f"invalid identifier {text!r} in {src!r}: a key may not contain '`'")
        return f"{scope}.{key}" if _PLAIN_KEY.fullmatch(key) else f"{scope}.`{key}`", False
    mapped = ATTRIBUTES.get(key, ATTRIBUTES.get(key.lower()))
    if mapped is None:
        raise bad(f"invalid attribute {key!r} in {src!r}: roost searches runs by " + ", ".join(sorted(set(ATTRIBUTES))))
    return mapped, mapped in _TIMES


def run_filter(src: str | None) -> str | None:
    """MLflow's search_runs filter as a roost filter (None for none)."""
    if src is None or not src.strip():
        return None
    out: list[str] = []
    time_field = False
    for t in _tokens(src, "filter"):
        if t.kind == "ident" and t.text.upper() in _WORDS and "." not in t.text:
            word = t.text.upper()
            if word in ("ILIKE", "IS", "NULL"):
                raise bad(f"{word} in filter {src!r} is not supported by roost; use LIKE, =, != or IN")
            if word in ("AND", "OR"):
                time_field = False
            out.append(word)
        elif t.kind == "ident":
            field, time_field = _field(t, src)
            out.append(field)
        elif t.kind == "num" and time_field:
            out.append("'" + from_ms(int(float(t.text))).isoformat() + "'")  # epoch ms -> an ISO time roost reads
        else:
            out.append(t.text)
    return " ".join(out)


def order_by(terms: list[str]) -> list[str] | None:
    """MLflow's order_by clauses ('metrics.acc DESC', 'attributes.start_time') as roost order-by terms."""
    out = []
    for term in terms:
        if not str(term).strip():
            continue
        toks = _tokens(str(term), "order_by clause")
        if not toks or toks[0].kind != "ident" or len(toks) > 2:
            raise bad(f"invalid order_by clause {term!r}: use FIELD [ASC|DESC], e.g. 'metrics.acc DESC'")
        direction = "ASC"
        if len(toks) == 2:
            direction = toks[1].text.upper()
            if direction not in ("ASC", "DESC"):
                raise bad(f"invalid order_by clause {term!r}: the direction is ASC or DESC")
        field, _ = _field(toks[0], str(term))
        out.append(f"{field} {direction}")
    return out or None
