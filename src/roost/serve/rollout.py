"""Rollouts: a canary that takes a seeded share of a model's requests (drawn per request id)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from roost.errors import RoostError
from roost.serve.loader import LoadedModel, ModelSpec, parse_spec


@dataclass(frozen=True)
class CanarySpec:
    """`NAME@ALIAS=PCT`: serve that model as a canary of the model served under the same name."""

    spec: ModelSpec
    percent: float


def parse_canary(item: str) -> CanarySpec:
    """Parse a --canary value `churn@candidate=10` (percent in 0..100; the served name is the model's name)."""
    source, sep, pct = item.rpartition("=")
    if not sep or not source:
        raise RoostError(
            f"--canary {item!r}: expected MODEL=PERCENT", hint="e.g. --canary churn@candidate=10 (10 % of requests)"
        )
    try:
        percent = float(pct)
    except ValueError:
        raise RoostError(f"--canary {item!r}: {pct!r} is not a percentage", hint="e.g. churn@candidate=10") from None
    if not 0.0 <= percent <= 100.0:
        raise RoostError(f"--canary {item!r}: the percentage must be in 0..100, got {percent:g}")
    return CanarySpec(parse_spec(source), percent)


def share(request_id: str, seed: int = 0) -> float:
    """A seeded draw in [0, 100) from the request id: the same id always lands on the same side of a split."""
    digest = hashlib.blake2b(f"{seed}:{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") * 100.0 / 2.0**64


def check_compatible(primary: LoadedModel, canary: LoadedModel) -> None:
    """Refuse a canary whose inputs differ from the primary's (requests are decoded against the primary)."""
    want = [(s.name, s.dtype) for s in primary.package.inputs]
    got = [(s.name, s.dtype) for s in canary.package.inputs]
    if want != got:
        raise RoostError(
            f"canary of {primary.name!r} takes different inputs than the served version {primary.version}",
            hint="a canary must be a version of the same model signature (same input names and dtypes)",
        )


def pick(
    primary: LoadedModel, canary: LoadedModel | None, percent: float, request_id: str, seed: int = 0
) -> LoadedModel:
    """The model that answers this request: the canary for `percent` % of request ids, else the primary."""
    if canary is None or percent <= 0.0:
        return primary
    return canary if share(request_id, seed) < percent else primary
