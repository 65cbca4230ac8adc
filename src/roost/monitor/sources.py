"""Where monitoring data comes from: files and data sets, serving request logs, and what a training run stored.

A run (or a registered model, through its run) is a reference when its artifacts hold, as
`roost.monitor.write_run_reference` writes them:

- `profile.json`      the profile of every training row (`Profile`, mergeable),
- `reference.parquet` a uniform sample (≤ 100,000 rows, seed 0) of the training rows, with `pred_<output>`,
- `evaluation.parquet` the held-out rows (≤ 100,000) with the label and `pred_<output>`,
- `model/`            the model package (its signature names the features).
"""

from __future__ import annotations

import glob
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.errors import RoostError

log = logging.getLogger(__name__)

PROFILE = "profile.json"
REFERENCE = "reference.parquet"
EVALUATION = "evaluation.parquet"
PACKAGE = "model"
_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_RUN_ID = re.compile(r"^[0-9a-f]{6,32}$")


@dataclass
class Source:
    """A resolved reference or current input: a frame and/or a profile, and what it came from."""

    name: str
    frame: Any = None
    profile: Any = None
    run: dict[str, Any] | None = None
    signature: dict[str, Any] | None = None
    is_logs: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def features(self) -> list[str] | None:
        """The model's input names when the source knows its model."""
        return [i["name"] for i in self.signature["inputs"]] if self.signature else None

    @property
    def label(self) -> str | None:
        """The label column when the source knows it."""
        return (self.signature or {}).get("label")


def run_dir(run: dict[str, Any]) -> Path:
    """The local artifact folder of a run."""
    from roost import artifacts

    if not artifacts.is_local(run["artifact_uri"]):
        import tempfile

        cache = Path(tempfile.gettempdir()) / "roost-monitor" / run["run_id"]
        return artifacts.fetch(run["artifact_uri"], cache)
    return artifacts.local_path(run["artifact_uri"])


def _signature(pkg: Path) -> dict[str, Any] | None:
    """signature.json of a package folder, if there is one."""
    import json

    f = pkg / "signature.json"
    return json.loads(f.read_text()) if f.is_file() else None


def from_run(run_id: str, want: str = "reference") -> Source:
    """A run's stored reference sample (or profile), or its evaluation set when `want='evaluation'`."""
    import pandas as pd

    from roost.monitor.profile import Profile
    from roost.registry.api import get_run

    run = get_run(run_id)
    root = run_dir(run)
    src = Source(f"run {run['run_id'][:8]}", run=run, signature=_signature(root / PACKAGE))
    files = [REFERENCE, PROFILE] if want == "reference" else [EVALUATION]
    for name in files:
        f = root / name
        if not f.is_file():
            continue
        if name == PROFILE:
            src.profile = Profile.load(f)
        else:
            src.frame = pd.read_parquet(f)
        src.name += f" ({name})"
        return src
    raise RoostError(
        f"run {run['run_id'][:8]} stored no {' or '.join(files)}",
        hint="runs store them when trained with roost ≥ this version; or pass a data file instead",
    )


def from_model(ref: str, want: str = "reference") -> Source:
    """The reference (or evaluation set) of the run that produced a registered model version."""
    from roost.registry.api import resolve_model

    mv = resolve_model(ref)
    if not mv.run_id:
        raise RoostError(
            f"model {ref} was not produced by a run, so no training data is stored with it",
            hint="pass the training data (a file) as the reference instead",
        )
    src = from_run(mv.run_id, want)
    src.name = f"model {mv.name}/{mv.version} · {src.name}"
    src.signature = mv.signature or src.signature
    return src


def looks_like_logs(path: Path) -> bool:
    """True for a request-log folder: Parquet files under YYYY-MM-DD folders."""
    try:
        if not path.is_dir():
            return False
        for d in (path, *[p for p in path.iterdir() if p.is_dir()]):
            if any(_DATE_DIR.match(c.name) for c in d.iterdir() if c.is_dir()):
                return True
    except OSError:  # an unreadable folder (or one under /proc) is not a log folder
        return False
    return False


def _probe(p: Path) -> tuple[bool, bool, bool]:
    """(exists, is a file, is a folder) of a path; a name too long or unreadable to look at is none of them."""
    try:
        return p.exists(), p.is_file(), p.is_dir()
    except OSError:
        return False, False, False


def _no_rows_in_range(path: Any) -> RoostError:
    """The error for request logs that exist but hold no row in the asked time range."""
    return RoostError(f"the request logs under {path} hold no rows in the time range", hint="widen --since/--until")


def read_request_logs(path: str | Path, model: str | None = None, since: Any = None, until: Any = None) -> Any:
    """Rows of serving request logs (a log folder, a model's folder, or a glob) between `since` and `until`; unreadable
    files are skipped (a warning names them; `read_logs` also returns them)."""
    return read_logs(path, model, since, until)[0]


def read_logs(path: str | Path, model: str | None = None, since: Any = None, until: Any = None) -> tuple[Any, Any]:
    """(rows, `roost.monitor.logfiles.LogFiles`): `read_request_logs` with the files read and the ones skipped."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from roost.monitor import logfiles

    lo = logfiles.parse_time(since, "--since")
    hi = logfiles.parse_time(until, "--until")
    files = [str(f) for f in logfiles.find(path, model)]

    def in_range(f: str) -> bool:
        day = Path(f).parent.name
        if not _DATE_DIR.match(day):
            return True
        return not (
            (lo is not None and day < lo.strftime("%Y-%m-%d")) or (hi is not None and day > hi.strftime("%Y-%m-%d"))
        )

    in_days = [f for f in files if in_range(f)]
    if files and not in_days:  # logs exist, none of their day folders is in the range
        raise _no_rows_in_range(path)
    if not in_days:
        raise RoostError(
            f"no request log files under {path}" + (f" for model {model}" if model else ""),
            hint="serving writes them with --log-requests; check the folder and the time range",
        )
    root = Path(path) if Path(path).is_dir() else Path(path).parent
    res = logfiles.check([Path(f) for f in in_days], root)
    tables = []
    for f in list(res.files):
        try:
            tables.append(pq.read_table(f))
        except (pa.ArrowException, OSError) as exc:  # a damaged page behind a whole footer
            res.skip(f, exc)
    if not tables:
        raise logfiles.all_unreadable(path, res)
    table = pa.concat_tables(tables, promote_options="default")
    df = table.to_pandas()
    if "_ts" in df.columns:
        keep = pd.Series(True, index=df.index)
        if lo is not None:
            keep &= df["_ts"] >= lo
        if hi is not None:
            keep &= df["_ts"] < hi
        df = df[keep.to_numpy()].reset_index(drop=True)
    for c in df.columns:  # serving encodes a missing category as '' (see roost.modelpkg.convert)
        if not str(c).startswith("_") and pd.api.types.is_string_dtype(df[c].dtype):
            df[c] = df[c].where(df[c] != "", None)
    if len(df) == 0:
        raise _no_rows_in_range(path)
    return df, res


def load_source(
    spec: str, want: str = "reference", model: str | None = None, since: Any = None, until: Any = None
) -> Source:
    """Resolve a data file/glob/scheme, a profile JSON, a request-log folder, a run id or a model reference."""
    from roost.monitor.profile import Profile

    s = str(spec).strip()
    p = Path(s)
    exists, is_file, is_dir = _probe(p)
    if is_file and p.suffix == ".json":
        return Source(s, profile=Profile.load(p))
    if (exists and looks_like_logs(p)) or (is_dir and model and _probe(p / model)[2]):
        return _logs_source(s, p, model, since, until)
    if any(ch in s for ch in "*?[") and any(_DATE_DIR.match(Path(f).parent.name) for f in glob.glob(s, recursive=True)):
        return _logs_source(s, s, None, since, until)
    if exists or any(ch in s for ch in "*?["):
        from roost.datasets import load

        return Source(s, frame=load(s))
    if s.startswith("run:"):
        return from_run(s[4:], want)
    if _RUN_ID.match(s):
        from roost.errors import NotFoundError

        try:
            return from_run(s, want)
        except NotFoundError:
            pass
    if "@" in s or re.fullmatch(r"[A-Za-z0-9][\w.\-]*/\d+", s):
        return from_model(s, want)
    from roost.datasets import load

    return Source(s, frame=load(s))


def _logs_source(name: str, path: str | Path, model: str | None, since: Any, until: Any) -> Source:
    """A Source of request-log rows, its notes naming the files skipped as unreadable."""
    frame, res = read_logs(path, model, since, until)
    note = res.note()
    return Source(f"request logs {name}", frame=frame, is_logs=True, notes=[note] if note else [])


def default_features(ref: Source, cur: Source) -> tuple[list[str] | None, list[str]]:
    """(features to compare, notes): the model's inputs (and outputs) when known, else the reference's columns."""
    notes: list[str] = []
    feats = ref.features or cur.features
    if feats:
        cols = _columns(cur)
        outs = [c for c in _columns(ref) if c.startswith("pred_") and c in cols]
        return feats + outs, notes
    ref_cols = [c for c in _columns(ref) if not c.startswith("_")]
    if cur.is_logs:
        logged = set(_columns(cur))
        unlogged = [c for c in ref_cols if c not in logged and not c.startswith("pred_")]
        if unlogged:
            notes.append(
                "reference columns that serving does not log (labels, ids, unused columns) are skipped: "
                + ", ".join(unlogged[:10])
                + ("…" if len(unlogged) > 10 else "")
            )
        return [c for c in ref_cols if c in logged], notes
    return None, notes


def _columns(src: Source) -> list[str]:
    """Column names of a source's frame or profile."""
    if src.frame is not None:
        return [str(c) for c in src.frame.columns]
    if src.profile is not None:
        return list(src.profile.columns)
    return []
