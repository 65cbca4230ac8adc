"""Mergeable sketches: a log-bucket quantile sketch (DDSketch-style) and HyperLogLog distinct counts.

Both merge exactly: the sketch of A ∪ B equals the merge of the sketches of A and B, bit for bit, because bucket
keys and register values depend on each value alone (no sampling, no data-dependent edges).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

ALPHA = 0.01  # relative accuracy of quantiles
MIN_ABS = 1e-12  # |x| below this counts as zero
HLL_P = 12  # 4096 registers: ~1.6% standard error


class LogSketch:
    """Counts of values in geometric buckets ((γ^(k-1), γ^k] by |x|, per sign), plus a zero bucket.

    With `width` > 0 the buckets are instead [k·width, (k+1)·width) (absolute accuracy, for timestamps).
    """

    def __init__(self, alpha: float = ALPHA, width: float = 0.0) -> None:
        self.alpha = float(alpha)
        self.width = float(width)
        self.gamma = (1 + self.alpha) / (1 - self.alpha)
        self._inv_log_gamma = 1.0 / math.log(self.gamma)
        self.pos: dict[int, int] = {}
        self.neg: dict[int, int] = {}
        self.zero = 0

    @property
    def count(self) -> int:
        """Number of values added."""
        return self.zero + sum(self.pos.values()) + sum(self.neg.values())

    def _keys(self, a: np.ndarray) -> np.ndarray:
        """Bucket key of each |value| (all > MIN_ABS)."""
        keys: np.ndarray = np.ceil(np.log(a) * self._inv_log_gamma).astype(np.int64)
        return keys

    @staticmethod
    def _add_counts(store: dict[int, int], keys: np.ndarray) -> None:
        """Add the occurrences of `keys` to `store`."""
        if keys.size == 0:
            return
        lo = int(keys.min())
        counts = np.bincount(keys - lo)
        nz = np.flatnonzero(counts)
        for k, c in zip((nz + lo).tolist(), counts[nz].tolist()):
            store[k] = store.get(k, 0) + c

    def add(self, x: np.ndarray) -> LogSketch:
        """Add finite float values (the caller drops NaN and ±inf)."""
        x = np.asarray(x, dtype=np.float64)
        if self.width > 0:
            self._add_counts(self.pos, np.floor(x / self.width).astype(np.int64))
            return self
        a = np.abs(x)
        big = a > MIN_ABS
        self.zero += int(x.size - np.count_nonzero(big))
        self._add_counts(self.pos, self._keys(a[big & (x > 0)]))
        self._add_counts(self.neg, self._keys(a[big & (x < 0)]))
        return self

    def merge(self, other: LogSketch) -> LogSketch:
        """A new sketch holding both sketches' counts."""
        if (other.alpha, other.width) != (self.alpha, self.width):
            raise ValueError(
                f"cannot merge sketches of accuracy {self.alpha}/{self.width} and {other.alpha}/{other.width}"
            )
        out = LogSketch(self.alpha, self.width)
        out.zero = self.zero + other.zero
        for mine, theirs, dest in ((self.pos, other.pos, out.pos), (self.neg, other.neg, out.neg)):
            dest.update(mine)
            for k, c in theirs.items():
                dest[k] = dest.get(k, 0) + c
        return out

    def buckets(self) -> tuple[np.ndarray, np.ndarray]:
        """(representative values ascending, counts) of every non-empty bucket."""
        if self.width > 0:
            k = np.array(sorted(self.pos), dtype=np.int64)
            return (k + 0.5) * self.width, np.array([self.pos[i] for i in k.tolist()], dtype=np.int64)
        nk = np.array(sorted(self.neg, reverse=True), dtype=np.int64)
        pk = np.array(sorted(self.pos), dtype=np.int64)
        vals = np.concatenate([-self._rep(nk), [0.0] if self.zero else [], self._rep(pk)])
        counts = np.concatenate(
            [[self.neg[k] for k in nk.tolist()], [self.zero] if self.zero else [], [self.pos[k] for k in pk.tolist()]]
        ).astype(np.int64)
        return vals, counts

    def _rep(self, keys: np.ndarray) -> np.ndarray:
        """The representative |value| of each bucket key, 2γ^k/(γ+1) (computed in logs where γ^k overflows)."""
        g = self.gamma
        with np.errstate(over="ignore"):
            r = 2.0 * np.power(g, keys.astype(float)) / (g + 1)
        big = ~np.isfinite(r)
        if big.any():  # the top buckets of values near float64's limit
            r[big] = np.exp(keys[big] * math.log(g) + math.log(2.0 / (g + 1)))
        return np.asarray(r)

    def quantiles(self, qs: Any, lo: float | None = None, hi: float | None = None) -> np.ndarray:
        """Approximate quantiles, interpolated between ranks as numpy's default (each ranked value within relative
        error alpha), clamped to [lo, hi] when given."""
        vals, counts = self.buckets()
        q = np.atleast_1d(np.asarray(qs, dtype=float))
        if counts.size == 0:
            return np.full(q.shape, np.nan)
        cum = np.cumsum(counts)
        rank = q * (cum[-1] - 1)  # numpy's default (linear): between the values at ranks floor and ceil

        def at(r: np.ndarray) -> np.ndarray:
            return np.asarray(vals[np.minimum(np.searchsorted(cum, r, side="right"), vals.size - 1)])

        lo_r = np.floor(rank)
        below, above = at(lo_r), at(np.minimum(lo_r + 1, cum[-1] - 1))
        with np.errstate(over="ignore", invalid="ignore"):  # a span beyond float64: halve before subtracting
            out = np.where(above == below, below, below + (rank - lo_r) * (above / 2 - below / 2) * 2)
        if lo is not None and hi is not None:
            out = np.clip(out, lo, hi)
        return np.asarray(out)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """Approximate share of values ≤ each x (bucket representatives stand for their values)."""
        vals, counts = self.buckets()
        if counts.size == 0:
            return np.full(np.shape(x), np.nan)
        cum = np.concatenate([[0], np.cumsum(counts)])
        return np.asarray(cum[np.searchsorted(vals, x, side="right")] / cum[-1])

    def histogram(self, edges: np.ndarray) -> np.ndarray:
        """Counts per bin of `edges` (each bucket's count goes to the bin of its representative value)."""
        vals, counts = self.buckets()
        vals = np.clip(vals, edges[0], edges[-1])
        return np.histogram(vals, bins=edges, weights=counts)[0].astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (sparse key/count lists)."""
        return {
            "alpha": self.alpha,
            "width": self.width,
            "zero": self.zero,
            "pos": [sorted(self.pos), [self.pos[k] for k in sorted(self.pos)]],
            "neg": [sorted(self.neg), [self.neg[k] for k in sorted(self.neg)]],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LogSketch:
        """Inverse of `to_dict`."""
        s = cls(float(d["alpha"]), float(d.get("width", 0.0)))
        s.zero = int(d["zero"])
        s.pos = {int(k): int(c) for k, c in zip(*d["pos"])}
        s.neg = {int(k): int(c) for k, c in zip(*d["neg"])}
        return s

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, LogSketch)
            and (self.alpha, self.width) == (other.alpha, other.width)
            and self.zero == other.zero
            and self.pos == other.pos
            and self.neg == other.neg
        )


def _mix64(h: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 (wrapping arithmetic)."""
    h = h.copy()
    with np.errstate(over="ignore"):
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return h


EXACT_INT = 2.0**53  # float64 holds every integer up to this; beyond it, neighbouring integers share one float
BIG_INT_SALT = np.uint64(0x9E3779B97F4A7C15)  # keeps big integers' hashes apart from those of floats' bit patterns


def hash_values(values: np.ndarray) -> np.ndarray:
    """Stable 64-bit hashes: numbers by their float64 bits (so 3 and 3.0 agree), integers beyond 2^53 (and floats
    there, which are all integers) by their 64-bit two's complement value, anything else by its text."""
    v = np.asarray(values)
    if v.dtype.kind in "biuf":
        f = v.astype(np.float64) + 0.0  # -0.0 → 0.0
        h = _mix64(f.view(np.uint64))
        big = np.abs(f) > EXACT_INT
        if v.dtype.kind == "f":
            big &= (f > -(2.0**63)) & (f < 2.0**64)
        if big.any():
            if v.dtype.kind == "f":
                fb = f[big]
                neg = fb < 0
                ints = np.empty(fb.shape, dtype=np.uint64)
                ints[neg] = fb[neg].astype(np.int64).astype(np.uint64)
                ints[~neg] = fb[~neg].astype(np.uint64)
            else:
                ints = v[big].astype(np.uint64)  # negative int64 wrap to their two's complement pattern
            h[big] = _mix64(ints ^ BIG_INT_SALT)
        return h
    if v.dtype.kind == "M":
        return _mix64(v.astype("datetime64[us]").astype(np.int64).view(np.uint64))
    import pandas as pd

    return np.asarray(pd.util.hash_array(np.asarray(v, dtype=object).astype(str).astype(object), categorize=False))


class HyperLogLog:
    """Distinct-count estimate from 2^p registers of maximum leading-zero runs."""

    def __init__(self, p: int = HLL_P) -> None:
        self.p = int(p)
        self.registers = np.zeros(1 << self.p, dtype=np.uint8)

    def add_hashes(self, h: np.ndarray) -> HyperLogLog:
        """Add 64-bit hashes."""
        if h.size == 0:
            return self
        h = np.asarray(h, dtype=np.uint64)
        bits = 64 - self.p
        idx = (h >> np.uint64(bits)).astype(np.int64)
        w = (h & np.uint64((1 << bits) - 1)).astype(np.float64)  # < 2^52: exact in float64
        rho = np.where(w > 0, bits + 1 - np.frexp(w)[1], bits + 1).astype(np.int64)
        present = np.bincount(idx * 64 + rho, minlength=(1 << self.p) * 64).reshape(-1, 64) > 0
        top = 63 - np.argmax(present[:, ::-1], axis=1)
        top[~present.any(axis=1)] = 0
        self.registers = np.maximum(self.registers, top.astype(np.uint8))
        return self

    def add(self, values: np.ndarray) -> HyperLogLog:
        """Add values (hashed with `hash_values`)."""
        return self.add_hashes(hash_values(values))

    def merge(self, other: HyperLogLog) -> HyperLogLog:
        """A new estimator for the union."""
        if other.p != self.p:
            raise ValueError(f"cannot merge HyperLogLog of precision {self.p} and {other.p}")
        out = HyperLogLog(self.p)
        out.registers = np.maximum(self.registers, other.registers)
        return out

    def estimate(self) -> float:
        """Estimated number of distinct values (linear counting when small)."""
        m = self.registers.size
        alpha = 0.7213 / (1 + 1.079 / m)
        e = alpha * m * m / float(np.sum(np.ldexp(1.0, -self.registers.astype(np.int64))))
        zeros = int(np.count_nonzero(self.registers == 0))
        if e <= 2.5 * m and zeros:
            e = m * math.log(m / zeros)
        return float(e)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (registers as a hex string)."""
        return {"p": self.p, "registers": self.registers.tobytes().hex()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HyperLogLog:
        """Inverse of `to_dict`."""
        h = cls(int(d["p"]))
        h.registers = np.frombuffer(bytes.fromhex(d["registers"]), dtype=np.uint8).copy()
        return h

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, HyperLogLog)
            and self.p == other.p
            and bool(np.array_equal(self.registers, other.registers))
        )
