"""Column profiles of a table: counts, missing, moments, quantile sketch, histogram, top categories, cardinality.

Profiles merge: `profile_frame(A ∪ B) == profile_frame(A).merge(profile_frame(B))` — exactly for counts, missing,
min/max, sketch buckets, HyperLogLog registers and category counts (while a column keeps at most
`max_categories` distinct values), and up to float rounding for mean and standard deviation (Chan's formula).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from roost.monitor.sketch import HyperLogLog, LogSketch, hash_values

FORMAT = "roost.profile/1"
MAX_CATEGORIES = 1000
DATETIME_BUCKET_S = 3600.0  # timestamps: hour buckets (a relative-error sketch is useless at 1.7e9 s)
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def column_kind(s: Any) -> str:
    """numeric, datetime or categorical (bool, strings, objects, pandas categories)."""
    import pandas as pd

    t = s.dtype
    if pd.api.types.is_bool_dtype(t):
        return "categorical"
    if pd.api.types.is_numeric_dtype(t):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(t):
        return "datetime"
    return "categorical"


def numeric_values(s: Any) -> np.ndarray:
    """A column as float64 (datetimes as epoch seconds), NaN where missing."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        v = s.to_numpy(dtype="datetime64[us]", na_value=np.datetime64("NaT"))
        out = v.astype(np.int64).astype(np.float64) / 1e6
        out[np.isnat(v)] = np.nan
        return np.asarray(out)
    return np.asarray(s.to_numpy(dtype=np.float64, na_value=np.nan))


def category_keys(s: Any) -> Any:
    """A column as a pandas Series of strings (missing kept as missing)."""
    import pandas as pd

    if isinstance(s.dtype, pd.StringDtype) or (
        s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty")
    ):
        return s  # already text (objects of mixed types would count 1, 1.0 and True as one value)
    return s.astype(object).where(s.notna(), None).map(lambda v: v if v is None else str(v))


@dataclass
class ColumnProfile:
    """Statistics of one column; every field merges exactly (mean/std up to rounding)."""

    name: str
    kind: str
    dtype: str
    rows: int = 0
    missing: int = 0
    infinite: int = 0
    min: float | None = None
    max: float | None = None
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean
    sketch: LogSketch | None = None
    categories: dict[str, int] = field(default_factory=dict)
    other: int = 0  # rows in categories dropped beyond max_categories
    hll: HyperLogLog = field(default_factory=HyperLogLog)

    @property
    def count(self) -> int:
        """Non-missing values (finite for numbers)."""
        return self.rows - self.missing - self.infinite

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1), NaN below two values."""
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else float("nan")

    @property
    def truncated(self) -> bool:
        """True when categories beyond `max_categories` were folded into `other`."""
        return self.other > 0

    @property
    def cardinality(self) -> float:
        """Distinct non-missing values: exact for untruncated categories, HyperLogLog estimate otherwise."""
        if self.kind == "categorical" and not self.truncated:
            return float(len(self.categories))
        return self.hll.estimate()

    def quantiles(self, qs: Any = QUANTILES) -> list[float]:
        """Approximate quantiles (numeric and datetime columns)."""
        if self.sketch is None or self.count == 0:
            return [float("nan")] * len(np.atleast_1d(qs))
        return [float(v) for v in self.sketch.quantiles(qs, self.min, self.max)]

    def histogram(self, bins: int = 20) -> tuple[list[float], list[int]]:
        """(edges, counts) over [min, max] in equal-width bins, from the sketch buckets."""
        if self.sketch is None or self.count == 0 or self.min is None or self.max is None:
            return [], []
        lo, hi = float(self.min), float(self.max)
        if hi <= lo:
            edges = np.array([lo - 0.5, hi + 0.5])
        elif math.isfinite(hi - lo):
            edges = np.linspace(lo, hi, bins + 1)
        else:  # a span beyond float64 (±1.8e308 sentinels): in half units
            edges = np.linspace(lo / 2, hi / 2, bins + 1) * 2
            edges[0], edges[-1] = lo, hi
        return [float(e) for e in edges], [int(c) for c in self.sketch.histogram(edges)]

    def top(self, k: int = 10) -> list[tuple[str, int]]:
        """The k most frequent categories (ties by name)."""
        return sorted(self.categories.items(), key=lambda kv: (-kv[1], kv[0]))[:k]

    def merge(self, other: ColumnProfile, max_categories: int = MAX_CATEGORIES) -> ColumnProfile:
        """The profile of both columns' rows together."""
        if other.kind != self.kind:
            if _no_values(other):  # an all-missing part (a batch where the feature was always null) has no kind
                other = _all_missing(self, other.rows)
            elif _no_values(self):
                return _all_missing(other, self.rows).merge(other, max_categories)
            else:
                raise ValueError(f"column {self.name!r}: cannot merge a {self.kind} profile with a {other.kind} one")
        out = ColumnProfile(
            self.name,
            self.kind,
            self.dtype,
            self.rows + other.rows,
            self.missing + other.missing,
            self.infinite + other.infinite,
        )
        out.min = _opt(min, self.min, other.min)
        out.max = _opt(max, self.max, other.max)
        na, nb = self.count, other.count
        n = na + nb
        if n:
            delta = other.mean - self.mean
            out.mean = self.mean + delta * nb / n
            out.m2 = self.m2 + other.m2 + delta * delta * na * nb / n
        if self.sketch is not None and other.sketch is not None:
            out.sketch = self.sketch.merge(other.sketch)
        cats = dict(self.categories)
        for k, c in other.categories.items():
            cats[k] = cats.get(k, 0) + c
        out.categories, dropped = _cap(cats, max_categories)
        out.other = self.other + other.other + dropped
        out.hll = self.hll.merge(other.hll)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, with derived statistics for readers that do not load it back."""
        d: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "dtype": self.dtype,
            "rows": self.rows,
            "missing": self.missing,
            "infinite": self.infinite,
            "count": self.count,
            "cardinality": round(self.cardinality, 1),
            "hll": self.hll.to_dict(),
        }
        if self.kind == "categorical":
            d.update(categories=self.categories, other=self.other)
        else:
            edges, counts = self.histogram()
            d.update(
                min=self.min,
                max=self.max,
                mean=_json_float(self.mean) if self.count else None,
                m2=_json_float(self.m2),  # inf beyond ~1e154 (kept as the string "inf": JSON has no infinity)
                std=None if math.isnan(self.std) else _json_float(self.std),
                quantiles=dict(zip(map(str, QUANTILES), self.quantiles())) if self.count else {},
                histogram={"edges": edges, "counts": counts},
                sketch=self.sketch.to_dict() if self.sketch is not None else None,
            )
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnProfile:
        """Inverse of `to_dict`."""
        c = cls(d["name"], d["kind"], d["dtype"], int(d["rows"]), int(d["missing"]), int(d.get("infinite", 0)))
        c.hll = HyperLogLog.from_dict(d["hll"])
        if c.kind == "categorical":
            c.categories = {str(k): int(v) for k, v in d.get("categories", {}).items()}
            c.other = int(d.get("other", 0))
        else:
            c.min, c.max = d.get("min"), d.get("max")
            c.mean, c.m2 = float(d.get("mean") or 0.0), float(d.get("m2") or 0.0)  # float("inf") reads "inf"
            c.sketch = LogSketch.from_dict(d["sketch"]) if d.get("sketch") else LogSketch()
        return c


def _opt(f: Any, a: float | None, b: float | None) -> float | None:
    """f(a, b) ignoring Nones."""
    vals = [v for v in (a, b) if v is not None]
    return f(vals) if vals else None


def _cap(cats: dict[str, int], k: int) -> tuple[dict[str, int], int]:
    """Keep the k most frequent categories; return them and the count of the rest."""
    if len(cats) <= k:
        return cats, 0
    keep = sorted(cats.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return dict(keep), sum(cats.values()) - sum(c for _, c in keep)


def profile_column(name: str, s: Any, max_categories: int = MAX_CATEGORIES) -> ColumnProfile:
    """Profile one pandas Series."""
    kind = column_kind(s)
    p = ColumnProfile(str(name), kind, str(s.dtype), rows=int(len(s)))
    if kind == "categorical":
        keys = category_keys(s)
        vc = keys.value_counts(dropna=True, sort=False)
        p.missing = int(len(s) - int(vc.sum()))
        cats = {str(k): int(v) for k, v in zip(vc.index, vc.to_numpy())}
        p.hll.add_hashes(hash_values(np.asarray(list(cats), dtype=object)))
        p.categories, p.other = _cap(cats, max_categories)
        return p
    x = numeric_values(s)
    nan = np.isnan(x)
    p.missing = int(np.count_nonzero(nan))
    finite = x[~nan]
    inf = np.isinf(finite)
    if inf.any():
        p.infinite = int(np.count_nonzero(inf))
        finite = finite[~inf]
    p.sketch = LogSketch(width=DATETIME_BUCKET_S if kind == "datetime" else 0.0).add(finite)
    if finite.size:
        p.min, p.max = float(finite.min()), float(finite.max())
        with np.errstate(over="ignore", invalid="ignore"):  # |x| > 1e154: m2 is inf, the drift says not computed
            p.mean = float(finite.mean())
            if not math.isfinite(p.mean):  # the sum overflowed (max-double sentinels): the mean itself may not
                top = float(np.max(np.abs(finite)))
                p.mean = float(np.mean(finite / top)) * top
            p.m2 = float(np.sum((finite - p.mean) ** 2))
        p.hll.add(_integers(s) if s.dtype.kind in "iu" else finite)
    return p


def _integers(s: Any) -> np.ndarray:
    """The non-missing values of an integer column as int64/uint64 (float64 would merge integers beyond 2^53)."""
    return np.asarray(s.dropna().to_numpy(dtype=s.dtype.numpy_dtype if hasattr(s.dtype, "numpy_dtype") else None))


@dataclass
class Profile:
    """Profiles of every column of a table."""

    columns: dict[str, ColumnProfile]
    rows: int
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    source: str | None = None

    def __getitem__(self, name: str) -> ColumnProfile:
        return self.columns[name]

    def merge(self, other: Profile, max_categories: int = MAX_CATEGORIES) -> Profile:
        """The profile of both tables' rows; a column present on one side only counts as missing on the other."""
        cols: dict[str, ColumnProfile] = {}
        for name in list(self.columns) + [n for n in other.columns if n not in self.columns]:
            a, b = self.columns.get(name), other.columns.get(name)
            if a is None:
                a = _all_missing(b, self.rows)  # type: ignore[arg-type]
            if b is None:
                b = _all_missing(a, other.rows)
            cols[name] = a.merge(b, max_categories)
        return Profile(cols, self.rows + other.rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "format": FORMAT,
            "rows": self.rows,
            "created_at": self.created_at,
            "source": self.source,
            "columns": [c.to_dict() for c in self.columns.values()],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Profile:
        """Inverse of `to_dict`."""
        from roost.errors import RoostError

        if d.get("format") != FORMAT:
            raise RoostError(
                f"not a roost profile (format {d.get('format')!r})",
                hint="create one with `roost monitor profile DATA --out profile.json`",
            )
        cols = [ColumnProfile.from_dict(c) for c in d["columns"]]
        return cls({c.name: c for c in cols}, int(d["rows"]), d.get("created_at", ""), d.get("source"))

    def save(self, path: str | Path) -> Path:
        """Write the profile as JSON."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False, default=_json_default))
        return p

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        """Read a profile written by `save`."""
        from roost.errors import RoostError

        p = Path(path)
        if not p.is_file():
            raise RoostError(f"profile {p} not found", hint="create it with `roost monitor profile DATA --out P`")
        try:
            return cls.from_dict(json.loads(p.read_text()))
        except (ValueError, KeyError) as exc:
            raise RoostError(f"{p} is not a readable roost profile: {exc}", hint="re-create it") from None

    def summary(self) -> list[dict[str, Any]]:
        """One row per column for tables: kind, count, missing share, min/mean/max, std, median, cardinality, top."""
        rows = []
        for c in self.columns.values():
            qf = c.quantiles((0.5,))[0] if c.kind != "categorical" else None
            meanf = c.mean if c.count and c.kind != "categorical" else None
            lo: float | str | None = c.min
            hi: float | str | None = c.max
            q: float | str | None = qf
            mean: float | str | None = meanf
            if c.kind == "datetime":  # epoch seconds back to timestamps
                lo, mean, hi, q = (_iso(v) for v in (c.min, meanf, c.max, qf))
            rows.append(
                {
                    "column": c.name,
                    "kind": c.kind,
                    "count": c.count,
                    "missing": c.missing / c.rows if c.rows else 0.0,
                    "min": lo,
                    "mean": mean,
                    "max": hi,
                    "std": None if c.kind == "categorical" or c.count < 2 else c.std,
                    "p50": q,
                    "distinct": round(c.cardinality),
                    "top": ", ".join(f"{k} ({v})" for k, v in c.top(3)),
                }
            )
        return rows


def _iso(v: float | None) -> str | None:
    """Epoch seconds as an ISO UTC timestamp (None and NaN stay None)."""
    if v is None or v != v:
        return None
    return datetime.fromtimestamp(v, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _json_float(v: float) -> float | str:
    """A float for JSON: ±inf and NaN as the strings float() reads back."""
    return v if math.isfinite(v) else str(float(v))


def _json_default(o: Any) -> Any:
    """numpy scalars → Python."""
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"cannot serialise {type(o).__name__}")


def _no_values(c: ColumnProfile) -> bool:
    """True when the column held only missing values (or no rows)."""
    return c.missing == c.rows and not c.categories and not c.other


def _all_missing(like: ColumnProfile, rows: int) -> ColumnProfile:
    """A profile of `rows` missing values of the same kind as `like`."""
    c = ColumnProfile(like.name, like.kind, like.dtype, rows=rows, missing=rows)
    if like.kind != "categorical":
        c.sketch = LogSketch(like.sketch.alpha, like.sketch.width) if like.sketch else LogSketch()
    return c


def profile_frame(
    df: Any, columns: list[str] | None = None, max_categories: int = MAX_CATEGORIES, source: str | None = None
) -> Profile:
    """Profile every column (or `columns`) of a pandas DataFrame."""
    names = list(df.columns) if columns is None else list(columns)
    cols = {str(n): profile_column(str(n), df[n], max_categories) for n in names}
    return Profile(cols, int(len(df)), source=source)


def merge_profiles(profiles: list[Profile]) -> Profile:
    """Merge several profiles left to right."""
    if not profiles:
        raise ValueError("merge_profiles needs at least one profile")
    out = profiles[0]
    for p in profiles[1:]:
        out = out.merge(p)
    return out
