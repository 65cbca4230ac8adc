"""What a metric's step counts: epochs, boosting rounds, mini-batches, timestamps or plain steps.

Training records it as the run tag `roost.step_kind` (what its per-epoch curves count) and, for networks,
`roost.steps_per_epoch`. Runs from before those tags are read from what they did record: the framework tag
(LightGBM logs boosting rounds, torch logs epochs), the metric's name (`train_loss_step` is per mini-batch) and
the steps themselves (Unix times). A user's own runs may set `roost.step_kind` (or `roost.step_kind.<metric>`).
"""

from __future__ import annotations

from typing import Any

STEP_KIND_TAG = "roost.step_kind"
STEPS_PER_EPOCH_TAG = "roost.steps_per_epoch"
EPOCH_SECONDS = 1e9  # steps at or above this (2001-09 as Unix seconds) are timestamps
BATCH_KEYS = ("train_loss_step",)  # logged per mini-batch, not per epoch
LABELS = {
    "epoch": "epoch",
    "boosting_round": "boosting round",
    "batch": "mini-batch step",
    "time": "time (UTC)",
    "step": "step",
}
_FRAMEWORK_KIND = {"lightgbm": "boosting_round", "torch": "epoch"}
_MODEL_KIND = {"lightgbm": "boosting_round"}

__all__ = ["LABELS", "STEPS_PER_EPOCH_TAG", "STEP_KIND_TAG", "label", "step_kind", "steps_per_epoch"]


def _norm(kind: str) -> str:
    """A recorded kind in LABELS' spelling ('boosting round', 'Epoch', 'rounds' → known kinds; else 'step')."""
    k = kind.strip().lower().replace(" ", "_").replace("-", "_")
    k = {"round": "boosting_round", "rounds": "boosting_round", "epochs": "epoch", "mini_batch": "batch"}.get(k, k)
    return k if k in LABELS else "step"


def step_kind(run: dict[str, Any], key: str, steps: list[Any] | tuple[Any, ...] = ()) -> str:
    """The kind of step of metric `key` in `run` (one of LABELS' keys)."""
    tags = run.get("tags") or {}
    if tags.get(f"{STEP_KIND_TAG}.{key}"):
        return _norm(str(tags[f"{STEP_KIND_TAG}.{key}"]))
    if steps and min(steps) >= EPOCH_SECONDS:
        return "time"
    if key in BATCH_KEYS:
        return "batch"
    if tags.get(STEP_KIND_TAG):
        return _norm(str(tags[STEP_KIND_TAG]))
    kind = _FRAMEWORK_KIND.get(str(tags.get("roost.framework") or "")) or _MODEL_KIND.get(
        str(tags.get("roost.model_type") or "")
    )
    return kind or "step"


def label(kind: str) -> str:
    """How an axis of this kind is labelled."""
    return LABELS.get(kind, "step")


def steps_per_epoch(run: dict[str, Any]) -> int | None:
    """Mini-batch steps in one epoch of a network run (tag roost.steps_per_epoch), or None."""
    raw = (run.get("tags") or {}).get(STEPS_PER_EPOCH_TAG)
    try:
        n = int(float(raw)) if raw not in (None, "") else 0
    except (TypeError, ValueError):
        return None
    return n if n > 0 else None
