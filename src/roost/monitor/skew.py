"""Training/serving skew: each served feature value against a point-in-time recomputation from the offline store.

Request logs (see `roost.serve.reqlog`) hold, for requests that sent entity ids, the entity keys, the values the
model saw, `_fs_event_time.<view>` (the online row's event time; null = the online store had no row) and, in
the Parquet metadata, `roost.feature_refs` ({input: "view:field"}) and `roost.entities`. For every such row the
same features are recomputed with `roost.features.training_set` at the request's `_ts` (the exact PIT join, the
same TTLs) and compared value by value. Request-time features (request views) are recomputed by `training_set` from
the logged request fields (``roost.request_fields``) and entity keys at `_ts`, and compared the same way; a
mismatch of one is a `value_mismatch` (it has no online row, so neither `missing_online` nor `stale_online`). Logs
are read in batches of `batch_rows`; only counts, a few example rows per category and mergeable profiles are kept,
so memory does not grow with the log. See docs/skew.md.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from roost.errors import RoostError
from roost.monitor import logfiles
from roost.monitor.logtimes import times_as_utc

log = logging.getLogger(__name__)

__all__ = ["CATEGORIES", "FeatureSkew", "SkewReport", "compare_values", "log_files", "skew"]

CATEGORIES = ("ok", "missing_online", "stale_online", "value_mismatch", "extra_online")
OK, MISSING, STALE, MISMATCH, EXTRA = range(5)
REFS_KEY = b"roost.feature_refs"
ENTITIES_KEY = b"roost.entities"
REQUEST_KEY = b"roost.request_fields"
EVENT_PREFIX = "_fs_event_time."
_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_T = "__skew_t"


@dataclass
class FeatureSkew:
    """Category counts of one served feature (overall and per model version) and example rows per category."""

    feature: str
    ref: str
    counts: list[int] = field(default_factory=lambda: [0] * len(CATEGORIES))
    by_version: dict[str, list[int]] = field(default_factory=dict)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def compared(self) -> int:
        """Values compared."""
        return sum(self.counts)

    @property
    def mismatches(self) -> int:
        """Values in any category but `ok`."""
        return self.compared - self.counts[OK]

    @property
    def mismatch_rate(self) -> float:
        """Share of compared values that were not `ok` (0 when none were compared)."""
        return self.mismatches / self.compared if self.compared else 0.0

    def count(self, category: str) -> int:
        """Values in `category`."""
        return self.counts[CATEGORIES.index(category)]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "feature": self.feature,
            "ref": self.ref,
            "compared": self.compared,
            "mismatch_rate": self.mismatch_rate,
            "counts": dict(zip(CATEGORIES, self.counts)),
            "by_version": {v: dict(zip(CATEGORIES, c)) for v, c in self.by_version.items()},
            "examples": self.examples,
        }


@dataclass
class SkewReport:
    """Per-feature skew between served and recomputed values, the threshold and the verdict."""

    features: list[FeatureSkew]
    max_mismatch: float
    rows_read: int = 0
    rows_compared: int = 0
    files: int = 0
    rtol: float = 0.0
    atol: float = 0.0
    source: str = ""
    drift: Any = None  # a DriftReport of served (current) vs recomputed (reference) value distributions
    notes: list[str] = field(default_factory=list)
    skipped_files: list[dict[str, str]] = field(default_factory=list)  # unreadable log files: {file, reason}
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def failing(self) -> list[FeatureSkew]:
        """Features whose mismatch rate exceeds `max_mismatch`."""
        return [f for f in self.features if f.mismatch_rate > self.max_mismatch]

    @property
    def failed(self) -> bool:
        """True when any feature's mismatch rate exceeds the threshold."""
        return bool(self.failing)

    def feature(self, name: str) -> FeatureSkew:
        """The result of one feature (by model input name)."""
        for f in self.features:
            if f.feature == name:
                return f
        raise KeyError(name)

    @property
    def verdict(self) -> str:
        """One line for people."""
        if not self.features:
            return "no entity-id requests with feature refs to compare"
        if self.failed:
            names = ", ".join(f"{f.feature} {f.mismatch_rate:.2%}" for f in self.failing)
            return f"SKEW: {len(self.failing)} of {len(self.features)} features over {self.max_mismatch:.2%} ({names})"
        worst = max(f.mismatch_rate for f in self.features)
        return f"no skew over {self.max_mismatch:.2%} (worst feature {worst:.2%}, {self.rows_compared:,} request rows)"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "verdict": self.verdict,
            "failed": self.failed,
            "max_mismatch": self.max_mismatch,
            "rows_read": self.rows_read,
            "rows_compared": self.rows_compared,
            "files": self.files,
            "rtol": self.rtol,
            "atol": self.atol,
            "source": self.source,
            "created_at": self.created_at,
            "notes": self.notes,
            "skipped_files": self.skipped_files,
            "features": [f.to_dict() for f in self.features],
        }


def log_files(logs: str | Path | Sequence[str | Path], model: str | None = None) -> list[str]:
    """The complete request-log Parquet files under folders, model folders or globs (sorted, hidden parts skipped)."""
    from roost.monitor.logfiles import find

    items = [logs] if isinstance(logs, (str, Path)) else list(logs)
    files: list[str] = []
    for item in items:
        files += [str(f) for f in find(item, model)]
    out = sorted(set(files))
    if not out:
        raise RoostError(
            f"no request log files under {', '.join(map(str, items))}" + (f" for model {model}" if model else ""),
            hint="serving writes them with --log-requests; pass the log folder, a model's folder or a glob",
        )
    return out


def _nulls(arr: Any) -> np.ndarray:
    """True where a value is null, NaN or the empty string (serving's encoding of a missing category)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    mask = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_floating(arr.type):
        mask |= np.asarray(pc.fill_null(pc.is_nan(arr), False).to_numpy(zero_copy_only=False), dtype=bool)
    elif pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        mask |= np.asarray(pc.fill_null(pc.equal(arr, ""), False).to_numpy(zero_copy_only=False), dtype=bool)
    return mask


def compare_values(online: Any, offline: Any, rtol: float = 1e-6, atol: float = 1e-9) -> np.ndarray:
    """Element-wise equality of served and recomputed Arrow arrays: null = null; floats within atol + rtol·|offline|
    after rounding the offline value to the served float type (±inf equal only to itself, as numpy's isclose);
    times as instants; integers, booleans and categories exactly."""
    import pyarrow as pa

    on_null, off_null = _nulls(online), _nulls(offline)
    eq: np.ndarray = on_null & off_null
    both = ~on_null & ~off_null
    if not both.any():
        return eq
    on_t, off_t = online.type, offline.type
    same: np.ndarray
    if pa.types.is_floating(on_t) or pa.types.is_floating(off_t):
        a = _values(online, pa.float64(), 0.0, np.float64)
        b = _values(offline, pa.float64(), 0.0, np.float64)
        if pa.types.is_floating(on_t) and on_t.bit_width < 64:  # the model saw the offline value in its own dtype
            with np.errstate(over="ignore", invalid="ignore"):
                b = b.astype(on_t.to_pandas_dtype()).astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):  # numpy's isclose: ±inf equals only itself
            same = (a == b) | ((np.abs(a - b) <= atol + rtol * np.abs(b)) & np.isfinite(b))
    elif _is_time(on_t) and _is_time(off_t):  # instants, whatever the unit or zone
        same = _instants(online) == _instants(offline)
    elif _whole(on_t) and _whole(off_t):
        same = _values(online, pa.int64(), 0, np.int64) == _values(offline, pa.int64(), 0, np.int64)
    else:
        same = _values(online, pa.string(), "", object) == _values(offline, pa.string(), "", object)
    out: np.ndarray = eq | (both & same)
    return out


def _is_time(typ: Any) -> bool:
    """True for timestamp and date Arrow types."""
    import pyarrow as pa

    return bool(pa.types.is_timestamp(typ) or pa.types.is_date(typ))


def _instants(arr: Any) -> np.ndarray:
    """Times as epoch microseconds (UTC; a date is its midnight UTC), nulls as 0."""
    import pyarrow as pa

    if pa.types.is_timestamp(arr.type) and arr.type.tz is None:
        arr = arr.cast(pa.timestamp(arr.type.unit, tz="UTC"))
    elif not pa.types.is_timestamp(arr.type):
        arr = arr.cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))
    return _values(arr.cast(pa.timestamp("us", tz="UTC"), safe=False), pa.int64(), 0, np.int64)


def _whole(typ: Any) -> bool:
    """True for integer and boolean Arrow types (compared exactly as integers)."""
    import pyarrow as pa

    return bool(pa.types.is_integer(typ) or pa.types.is_boolean(typ))


def _values(arr: Any, typ: Any, fill: Any, dtype: Any) -> np.ndarray:
    """An Arrow array cast to `typ`, nulls filled with `fill`, as a NumPy array of `dtype`."""
    return np.asarray(arr.cast(typ).fill_null(fill).to_numpy(zero_copy_only=False), dtype=dtype)


def _file_batches(pf: Any, size: int, cols: list[str], checked: Any, path: Path) -> Iterator[Any]:
    """The record batches of one log file; a read failure (a damaged page) sets the file aside and ends it."""
    import pyarrow as pa

    it = pf.iter_batches(batch_size=size, columns=cols)
    while True:
        try:
            rb = next(it)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:
            checked.skip(path, exc)
            return
        yield rb


def _meta(schema: Any, path: str) -> tuple[dict[str, str], list[str], list[str]] | None:
    """(feature refs, entity keys, request fields) from a log file's Parquet metadata, or None when it has none."""
    md = schema.metadata or {}
    if REFS_KEY not in md or ENTITIES_KEY not in md:
        return None
    try:
        refs = json.loads(md[REFS_KEY])
        ents = json.loads(md[ENTITIES_KEY])
        req = json.loads(md.get(REQUEST_KEY, b"{}"))
    except ValueError as exc:
        raise RoostError(f"{path}: unreadable roost.feature_refs/entities/request_fields metadata ({exc})") from exc
    if not isinstance(refs, dict) or not isinstance(ents, list) or not isinstance(req, dict):
        raise RoostError(
            f"{path}: roost.feature_refs and roost.request_fields must be JSON objects and roost.entities a JSON list"
        )
    return {str(k): str(v) for k, v in refs.items()}, [str(e) for e in ents], [str(f) for f in req]


def _batches(
    checked: Any, batch_rows: int, lo: Any, hi: Any, notes: list[str]
) -> Iterator[tuple[dict[str, str], list[str], list[str], Any, int]]:
    """(refs, entity keys, request fields, Arrow table of eligible rows, rows read) in batches of about `batch_rows`
    rows; a file that fails while read is set aside in `checked` (a LogFiles), the rows it gave before stay counted."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    skipped = 0
    pending: list[Any] = []
    key: tuple[str, str, str] | None = None
    meta: tuple[dict[str, str], list[str], list[str]] | None = None
    read = 0

    def flush() -> Iterator[tuple[dict[str, str], list[str], list[str], Any, int]]:
        nonlocal pending, read
        if pending and meta is not None:
            yield meta[0], meta[1], meta[2], pa.concat_tables(pending, promote_options="default"), read
        pending, read = [], 0

    for path in list(checked.files):
        f = str(path)
        try:
            pf = pq.ParquetFile(f)
        except (pa.ArrowException, OSError) as exc:
            checked.skip(path, exc)
            continue
        m = _meta(pf.schema_arrow, f)
        if m is None:
            skipped += 1
            continue
        refs, ents, req = m
        views = sorted({r.split(":")[0] for r in refs.values()})
        want = ["_ts", "_request_id", "_version", *ents, *req, *refs, *(EVENT_PREFIX + v for v in views)]
        missing = [c for c in ("_ts", *ents, *req, *refs) if c not in pf.schema_arrow.names]
        if missing:
            raise RoostError(f"{f}: request log lacks column(s) {missing} named by its metadata")
        cols = [c for c in dict.fromkeys(want) if c in pf.schema_arrow.names]
        k = (json.dumps(refs, sort_keys=True), json.dumps(ents), json.dumps(req))
        if k != key:
            yield from flush()
            key, meta = k, m
        for rb in _file_batches(pf, min(batch_rows, 65_536), cols, checked, path):
            t = times_as_utc(pa.Table.from_batches([rb]), f)
            read += t.num_rows
            keep = np.ones(t.num_rows, dtype=bool)
            for e in ents:  # an entity-id request: every entity key present
                keep &= ~np.asarray(t.column(e).is_null().to_numpy(), dtype=bool)
            ts = t.column("_ts")
            if lo is not None:
                keep &= np.asarray(pc.fill_null(pc.greater_equal(ts, lo), False).to_numpy(), dtype=bool)
            if hi is not None:
                keep &= np.asarray(pc.fill_null(pc.less(ts, hi), False).to_numpy(), dtype=bool)
            keep &= ~np.asarray(ts.is_null().to_numpy(), dtype=bool)
            pending.append(t.filter(pa.array(keep)))
            if sum(p.num_rows for p in pending) >= batch_rows:
                yield from flush()
    yield from flush()
    if skipped:
        notes.append(f"{skipped} log file(s) without roost.feature_refs metadata skipped (no online features)")


def _utc(t: Any, name: str) -> Any:
    """A UTC pyarrow timestamp scalar from a time-like value (naive = UTC), or None."""
    import pyarrow as pa

    from roost.monitor.logfiles import parse_time

    ts = parse_time(t, name)
    return None if ts is None else pa.scalar(ts, pa.timestamp("us", tz="UTC"))


def _recompute(tbl: Any, ents: list[str], refs: list[str], times: Any, req: Sequence[str] = ()) -> Any:
    """Offline values of `refs` ('view__field' columns) for the entity keys (and logged request fields `req`, the
    inputs of request-time features) of `tbl` as of `times`."""
    import pyarrow as pa

    from roost.features import training_set

    cols = {e: tbl.column(e) for e in [*ents, *req]}
    cols[_T] = times.cast(pa.timestamp("us", tz="UTC"))
    return training_set(pa.table(cols), sorted(set(refs)), event_time=_T, full_names=True, output="arrow")


def _out(ref: str) -> str:
    return ref.replace(":", "__", 1)


class _Comparer:
    """Accumulates the comparison of batches: counts, examples, profiles of served and recomputed values."""

    def __init__(self, rtol: float, atol: float, examples: int, profile: bool) -> None:
        self.rtol, self.atol, self.examples, self.profile = rtol, atol, examples, profile
        self.features: dict[str, FeatureSkew] = {}
        self.profiles: dict[str, Any] = {}  # "served" / "recomputed" -> Profile, merged batch by batch
        self.rows = 0
        self._request_views: set[str] | None = None

    def request_views(self) -> set[str]:
        """Names of the registered request views (read once)."""
        if self._request_views is None:
            from roost.features import repo

            self._request_views = set(repo.list_all("request_view"))
        return self._request_views

    def batch(self, refs: dict[str, str], ents: list[str], tbl: Any, req: Sequence[str] = ()) -> None:
        """Compare one batch of eligible log rows."""
        import pyarrow as pa

        n = tbl.num_rows
        if n == 0:
            return
        self.rows += n
        ts = tbl.column("_ts").combine_chunks()
        off = _recompute(tbl, ents, list(refs.values()), ts, req)
        versions = (
            tbl.column("_version").cast(pa.string()).fill_null("?").to_numpy(zero_copy_only=False)
            if "_version" in tbl.column_names
            else np.full(n, "?", dtype=object)
        )
        vcodes, vnames = _factorize(versions)
        t_req = ts.cast(pa.int64()).to_numpy(zero_copy_only=False)
        for inp, ref in refs.items():
            view = ref.split(":")[0]
            on = tbl.column(inp).combine_chunks()
            offc = off.column(_out(ref)).combine_chunks()
            et_name = EVENT_PREFIX + view
            et = tbl.column(et_name).combine_chunks() if et_name in tbl.column_names else pa.nulls(n, pa.int64())
            t_on_null = np.asarray(et.is_null().to_numpy(zero_copy_only=False), dtype=bool)
            t_on = et.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
            cat = np.full(n, OK, dtype=np.int8)
            same = compare_values(on, offc, self.rtol, self.atol)
            off_null = _nulls(offc)
            cat[~same & off_null] = EXTRA
            if view in self.request_views():  # computed per request: no online row, no staleness
                cat[~same & ~off_null] = MISMATCH
                self._count(inp, ref, cat, vcodes, vnames)
                self._examples(inp, cat, tbl, ents, on, offc, et, ts, versions)
                continue
            cat[~same & ~off_null & t_on_null] = MISSING
            cand = ~same & ~off_null & ~t_on_null
            cat[cand] = MISMATCH
            newer = np.flatnonzero(cand & (t_on < t_req))
            if len(newer):  # stale when the offline answer moved on since the online row's event time
                sub = tbl.take(pa.array(newer))
                prev = _recompute(sub, ents, [ref], et.take(pa.array(newer))).column(_out(ref)).combine_chunks()
                moved = ~compare_values(offc.take(pa.array(newer)), prev, self.rtol, self.atol)
                cat[newer[moved]] = STALE
            self._count(inp, ref, cat, vcodes, vnames)
            self._examples(inp, cat, tbl, ents, on, offc, et, ts, versions)
        if self.profile:
            self._profile(refs, tbl, off)

    def _count(self, inp: str, ref: str, cat: np.ndarray, vcodes: np.ndarray, vnames: list[str]) -> None:
        fs = self.features.setdefault(inp, FeatureSkew(inp, ref))
        k = len(CATEGORIES)
        by = np.bincount(vcodes.astype(np.int64) * k + cat, minlength=len(vnames) * k).reshape(len(vnames), k)
        for i, v in enumerate(vnames):
            row = fs.by_version.setdefault(v, [0] * k)
            for c in range(k):
                row[c] += int(by[i, c])
                fs.counts[c] += int(by[i, c])

    def _examples(
        self, inp: str, cat: np.ndarray, tbl: Any, ents: list[str], on: Any, off: Any, et: Any, ts: Any, ver: Any
    ) -> None:
        fs = self.features[inp]
        for c in range(1, len(CATEGORIES)):
            have = fs.examples.setdefault(CATEGORIES[c], [])
            room = self.examples - len(have)
            if room <= 0:
                continue
            for i in np.flatnonzero(cat == c)[:room]:
                i = int(i)
                have.append(
                    {
                        "request_id": _py(tbl.column("_request_id")[i]) if "_request_id" in tbl.column_names else None,
                        "version": str(ver[i]),
                        "entity": {e: _py(tbl.column(e)[i]) for e in ents},
                        "served": _py(on[i]),
                        "recomputed": _py(off[i]),
                        "request_time": _py(ts[i]),
                        "online_event_time": _py(et[i]),
                    }
                )

    def _profile(self, refs: dict[str, str], tbl: Any, off: Any) -> None:
        from roost.monitor.profile import profile_frame

        served = tbl.select(list(refs)).to_pandas()
        recomputed = off.select([_out(r) for r in refs.values()]).rename_columns(list(refs)).to_pandas()
        for name, frame in (("served", served), ("recomputed", recomputed)):
            prof = profile_frame(frame, source=name)
            self.profiles[name] = self.profiles[name].merge(prof) if name in self.profiles else prof

    def drift(self) -> Any:
        """Served vs recomputed distributions (the monitoring drift code on merged profiles), or None."""
        if not self.profiles:
            return None
        from roost.monitor.profile_drift import compare_profiles

        ref, cur = self.profiles["recomputed"], self.profiles["served"]
        feats = [f for f in self.features if f in ref.columns and f in cur.columns]
        return compare_profiles(ref, cur, feats, reference_name="recomputed offline", current_name="served online")


def _factorize(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Integer codes and the distinct names of a string array."""
    names, codes = np.unique(values.astype(str), return_inverse=True)
    return codes.reshape(-1), [str(x) for x in names]


def _py(scalar: Any) -> Any:
    """An Arrow scalar as a JSON-friendly Python value (timestamps as ISO strings)."""
    v = scalar.as_py() if hasattr(scalar, "as_py") else scalar
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def skew(
    logs: str | Path | Sequence[str | Path],
    *,
    model: str | None = None,
    since: Any = None,
    until: Any = None,
    max_mismatch: float = 0.01,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    examples: int = 5,
    batch_rows: int = 250_000,
    profiles: bool = True,
) -> SkewReport:
    """Compare served feature values in request logs with their point-in-time recomputation, per feature and version."""
    if not 0.0 <= max_mismatch <= 1.0:
        raise RoostError(f"max_mismatch must be within 0..1, got {max_mismatch}", hint="e.g. 0.01 for 1%")
    if batch_rows < 1:
        raise RoostError(f"batch_rows must be positive, got {batch_rows}")
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if not (np.isfinite(tol) and tol >= 0):
            raise RoostError(f"{name} must be a finite number >= 0, got {tol}", hint="defaults: rtol 1e-6, atol 1e-9")
    lo, hi = _utc(since, "--since"), _utc(until, "--until")
    items = [logs] if isinstance(logs, (str, Path)) else list(logs)
    root = next((Path(str(i)) for i in items if Path(str(i)).is_dir()), Path(str(items[0])).parent)
    checked = logfiles.check([Path(f) for f in log_files(logs, model)], root)
    if not checked.files:
        raise logfiles.all_unreadable(", ".join(map(str, items)), checked)
    notes: list[str] = []
    cmp = _Comparer(rtol, atol, examples, profiles)
    read = 0
    for refs, ents, req, tbl, n in _batches(checked, batch_rows, lo, hi, notes):
        read += n
        log.debug("skew batch: %d of %d rows with entity ids", tbl.num_rows, n)
        cmp.batch(refs, ents, tbl, req)
    rep = SkewReport(
        list(cmp.features.values()),
        max_mismatch,
        rows_read=read,
        rows_compared=cmp.rows,
        files=len(checked.files),
        rtol=rtol,
        atol=atol,
        source=", ".join(map(str, items)),
        notes=notes,
        skipped_files=checked.skipped_dicts(),
    )
    note = checked.note()
    if note:
        rep.notes.insert(0, note)
    if read > cmp.rows:
        rep.notes.append(f"{read - cmp.rows:,} logged rows without entity ids (or outside the time range) not compared")
    rep.drift = cmp.drift()
    log.info("skew: %s", rep.verdict)
    return rep
