"""Feature specs inferred from a pandas frame: numeric (impute + normalise), vocabulary (string → index), hashed id.

This module is numpy/pandas only. The same spec drives the torch preprocessing layer (`roost.training.nn`) and the
ONNX graph (`roost.training.export`): numeric and hashing steps live in the torch module, string → index lookup in an
`ai.onnx.ml.LabelEncoder` node in front of it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from roost.errors import ConfigError, RoostError
from roost.modelpkg.convert import to_input, to_strings

log = logging.getLogger(__name__)

Kind = Literal["numeric", "categorical", "hash"]
KINDS = ("numeric", "categorical", "hash")
ID_NAME = re.compile(r"(^id$|_id$|Id$|^id_)")
# dates and timestamps written as text (a CSV's date column): ISO 8601 (2024-01-31, 2024-01-31T06:16:41Z, with
# fractions or an offset), 2024/01/31 and US/European 01/31/2024 or 31.01.2024, optionally with a time of day
_TIME = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:\s*[AaPp][Mm])?)?\s*(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?"
DATE_TEXT = re.compile(r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[/.]\d{1,2}[/.]\d{4})" + _TIME)
INPUT_DTYPE = {"numeric": "float32", "categorical": "string", "hash": "int64"}


@dataclass
class ColumnSpec:
    """One raw input column and how it is turned into model input."""

    name: str
    kind: Kind
    mean: float = 0.0
    std: float = 1.0
    lo: float = float("-inf")  # training range: numeric inputs are clipped to it (no extrapolation)
    hi: float = float("inf")
    vocab: list[str] = field(default_factory=list)  # index i + 1; 0 is out-of-vocabulary
    buckets: int = 0

    @property
    def cardinality(self) -> int:
        """Number of distinct indices the column can take (categorical/hash)."""
        return len(self.vocab) + 1 if self.kind == "categorical" else self.buckets

    @property
    def input_dtype(self) -> str:
        """The dtype of the raw graph input (float32, string or int64)."""
        return INPUT_DTYPE[self.kind]


@dataclass
class FeatureSpec:
    """The ordered raw input columns of a model."""

    columns: list[ColumnSpec]

    @property
    def names(self) -> list[str]:
        """Raw column names in input order."""
        return [c.name for c in self.columns]

    @property
    def numeric(self) -> list[ColumnSpec]:
        """Numeric columns in input order."""
        return [c for c in self.columns if c.kind == "numeric"]

    @property
    def sparse(self) -> list[ColumnSpec]:
        """Categorical and hashed columns in input order."""
        return [c for c in self.columns if c.kind != "numeric"]

    def subset(self, names: Iterable[str]) -> FeatureSpec:
        """The spec restricted to `names` (keeping spec order)."""
        keep = set(names)
        return FeatureSpec([c for c in self.columns if c.name in keep])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"columns": [asdict(c) for c in self.columns]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        """Inverse of `to_dict`."""
        return cls([ColumnSpec(**c) for c in d["columns"]])

    def check(self, df: pd.DataFrame) -> None:
        """Raise a RoostError naming the columns the frame lacks."""
        missing = [n for n in self.names if n not in df.columns]
        if missing:
            raise RoostError(
                f"input is missing feature column(s) {missing}", hint=f"available columns: {list(map(str, df.columns))}"
            )

    def raw_inputs(self, df: pd.DataFrame) -> dict[str, np.ndarray]:
        """The raw graph inputs: float32 (NaN = missing), string objects ('' = missing), int64."""
        self.check(df)
        return {c.name: to_raw(df[c.name], c.kind) for c in self.columns}

    def encode(self, df: pd.DataFrame) -> list[np.ndarray]:
        """Torch-side inputs in spec order: numeric float32 raw, categorical int64 index, hash int64 raw."""
        raw = self.raw_inputs(df)
        out = []
        for c in self.columns:
            v = raw[c.name]
            if c.kind == "categorical":
                idx = pd.Index(c.vocab, dtype=object).get_indexer(v) + 1
                v = idx.astype(np.int64)
            out.append(v)
        return out


def to_raw(s: pd.Series, kind: str) -> np.ndarray:
    """Convert a column to its raw graph-input array for `kind` (same code as the predictor)."""
    if kind not in INPUT_DTYPE:
        raise ValueError(f"unknown feature kind {kind!r}")
    return to_input(s, INPUT_DTYPE[kind])


def default_kind(name: str, s: pd.Series) -> Kind | None:
    """The kind inferred from dtype and name, or None for unsupported columns (datetimes, objects of lists)."""
    if pd.api.types.is_bool_dtype(s):
        return "numeric"
    if pd.api.types.is_integer_dtype(s) and ID_NAME.search(name):
        return "hash"
    if pd.api.types.is_numeric_dtype(s):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(s) or isinstance(s.dtype, pd.PeriodDtype) or is_date_text(s):
        return None
    if pd.api.types.is_string_dtype(s) or isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object:
        return "categorical"
    return None


def is_date_text(s: pd.Series) -> bool:
    """True for a text column whose every non-empty value is a date or timestamp (as a CSV stores datetimes)."""
    if isinstance(s.dtype, pd.CategoricalDtype) or not (s.dtype == object or pd.api.types.is_string_dtype(s)):
        return False
    v = s.dropna()
    if v.empty or not all(isinstance(x, str) for x in v.iloc[:100]):
        return False
    v = v.astype(str).str.strip()
    v = v[v != ""]
    if not len(v) or not v.iloc[:100].str.fullmatch(DATE_TEXT).all():
        return False  # most text columns show a non-date among their first values: no pass over every row
    return bool(v.str.fullmatch(DATE_TEXT).all())


def infer_spec(
    df: pd.DataFrame,
    label: str | None = None,
    include: list[str] | None = None,
    exclude: Iterable[str] = (),
    kinds: dict[str, str] | None = None,
    max_vocab: int = 10_000,
    min_count: int = 2,
    buckets: int | None = None,
) -> FeatureSpec:
    """Infer a FeatureSpec: numeric → mean/std, string/category → vocabulary (top `max_vocab`), int id → hash."""
    kinds = dict(kinds or {})
    for n, k in kinds.items():
        if k not in KINDS:
            raise ConfigError(f"features.kinds.{n}: unknown kind {k!r}", hint=f"allowed: {', '.join(KINDS)}")
    names = list(include) if include is not None else [str(c) for c in df.columns]
    unknown = [n for n in [*names, *kinds] if n not in df.columns]
    if unknown:
        raise ConfigError(
            f"features: column(s) {unknown} not in the data", hint=f"available columns: {list(map(str, df.columns))}"
        )
    skip = set(exclude) | ({label} if label else set())
    cols = []
    for name in names:
        if name in skip:
            continue
        s = df[name]
        kind = kinds.get(name) or default_kind(name, s)
        if kind == "hash" and name not in kinds and include is None and len(s) >= 100 and s.nunique() > 0.9 * len(s):
            log.info("skipping column %s: a row identifier (%d distinct values in %d rows)", name, s.nunique(), len(s))
            continue
        if kind == "categorical" and name not in kinds:
            warn_mixed(name, s)
        if kind is None:
            dates = is_date_text(s)
            if include is not None:
                raise ConfigError(
                    f"features: column {name!r} "
                    + ("holds dates written as text" if dates else f"has unsupported dtype {s.dtype}"),
                    hint=(
                        "dates are not model inputs: derive numeric columns from them (e.g. day of week), or set "
                        f"features.kinds.{name}: categorical to keep the text"
                        if dates
                        else "use numeric, string/category or integer id columns"
                    ),
                )
            if dates or pd.api.types.is_datetime64_any_dtype(s):
                log.warning(
                    "column %r holds dates%s; it is not used as a feature (datetimes are not model inputs): derive "
                    "numeric columns from it (e.g. day of week) to use it, or drop it from the table",
                    name,
                    " written as text" if dates else "",
                )
            else:
                log.info("skipping column %s of dtype %s", name, s.dtype)
            continue
        cols.append(fit_column(name, s, kind, max_vocab=max_vocab, min_count=min_count, buckets=buckets))
    if not cols:
        raise RoostError("no usable feature columns", hint="name numeric or categorical columns in `features`")
    return FeatureSpec(cols)


MOSTLY_NUMERIC = 0.9  # a text column whose non-empty values parse as numbers at least this often is "mixed"


def warn_mixed(name: str, s: pd.Series) -> bool:
    """Warn (naming the column and the offending values) when a text column is mostly numbers; True when it is."""
    if pd.api.types.is_numeric_dtype(s) or isinstance(s.dtype, pd.CategoricalDtype):
        return False
    v = s.dropna()
    v = v[v.astype(str).str.strip() != ""]
    if v.empty:
        return False
    num = pd.to_numeric(v, errors="coerce")
    bad = v[num.isna()]
    if bad.empty or len(bad) > (1 - MOSTLY_NUMERIC) * len(v):
        return False
    counts = bad.astype(str).value_counts()
    shown = ", ".join(f"{k!r} ({c}×)" for k, c in counts.head(5).items()) + (", …" if len(counts) > 5 else "")
    log.warning(
        "column %r is mostly numbers (%d of %d values) but %d value(s) are not: %s; it is trained as a string "
        "(categorical) feature. Clean or drop those values to train it as a number, or set "
        "features.kinds.%s: categorical to keep it as text and silence this warning",
        name,
        len(v) - len(bad),
        len(v),
        len(bad),
        shown,
        name,
    )
    return True


def fit_column(
    name: str, s: pd.Series, kind: str, max_vocab: int = 10_000, min_count: int = 2, buckets: int | None = None
) -> ColumnSpec:
    """Fit one column's statistics (mean/std, vocabulary or bucket count)."""
    if kind == "numeric":
        v = to_raw(s, "numeric").astype(np.float64)
        finite = v[np.isfinite(v)]
        mean = float(finite.mean()) if finite.size else 0.0
        std = float(finite.std()) if finite.size else 1.0
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        return ColumnSpec(name, "numeric", mean=mean, std=std if std > 1e-12 else 1.0, lo=lo, hi=hi)
    if kind == "categorical":
        counts = pd.Series(to_strings(s)).value_counts(sort=False)
        counts = counts[counts.index != ""]
        if (counts >= min_count).sum() == 0:
            min_count = 1
        counts = counts[counts >= min_count]
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_vocab]
        return ColumnSpec(name, "categorical", vocab=sorted(str(k) for k, _ in top))
    if kind == "hash":
        if not (pd.api.types.is_integer_dtype(s) or pd.api.types.is_bool_dtype(s)):
            v = pd.to_numeric(s, errors="coerce")
            if v.isna().all() or not (v.dropna() % 1 == 0).all():
                raise ConfigError(
                    f"features.kinds.{name}: hash needs an integer column, got {s.dtype}",
                    hint="use kind categorical for strings",
                )
        n = int(s.nunique())
        nb = buckets or int(min(2**18, max(64, 2 ** int(np.ceil(np.log2(2 * n + 1))))))
        return ColumnSpec(name, "hash", buckets=nb)
    raise ConfigError(f"features.kinds.{name}: unknown kind {kind!r}", hint=f"allowed: {', '.join(KINDS)}")


TASKS = ("binary", "multiclass", "regression")


def infer_task(y: pd.Series) -> str:
    """binary for two values, multiclass for strings or ≤ 50 integer values, regression otherwise."""
    n = int(y.nunique(dropna=True))
    if n == 2:
        return "binary"
    if pd.api.types.is_bool_dtype(y):
        return "binary"
    if not pd.api.types.is_numeric_dtype(y):
        return "multiclass"
    if pd.api.types.is_integer_dtype(y) and n <= 50:
        return "multiclass"
    if pd.api.types.is_float_dtype(y) and n <= 50 and (y.dropna() % 1 == 0).all():
        return "multiclass"
    return "regression"


def encode_labels(y: pd.Series, task: str, classes: list[Any] | None = None) -> tuple[np.ndarray, list[Any]]:
    """Targets for training (class index or float value) and the class list (classifiers)."""
    if task == "regression":
        return pd.to_numeric(y).to_numpy(dtype=np.float64), []
    if classes is None:
        classes = sorted(pd.unique(y.dropna()).tolist(), key=lambda v: (str(type(v)), v))
    idx = pd.Index(classes).get_indexer(y)
    if (idx < 0).any():
        bad = pd.unique(y[idx < 0])[:5].tolist()
        raise RoostError(f"label has values {bad} not seen in training", hint=f"known classes: {classes}")
    return idx.astype(np.int64), [_py(c) for c in classes]


def _py(v: Any) -> Any:
    """A numpy scalar as a plain Python value (JSON/YAML friendly)."""
    return v.item() if isinstance(v, np.generic) else v
