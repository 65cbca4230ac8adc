"""Synthetic engagement log: impressions with delayed click labels and time-varying user and item features.

The click of an impression depends on the user and item snapshots *as of* the impression time. Count features
(`clicks_7d`, `item_clicks_7d`, `popularity_7d`) are computed from the log itself, so a later snapshot counts
clicks that happened after an earlier impression, including that impression's own click: joining the *latest*
snapshot leaks the label, and only a point-in-time (as-of) join gives the features a model will see in production.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)

DAY = 86_400
WINDOW = 7 * DAY
DAYS = 14  # span of the log; with 7-day count windows, half of a latest-value join sees its own label
START = "2024-01-01T00:00:00Z"
COUNTRIES = ["US", "GB", "DE", "FR", "IN", "BR", "JP", "CA"]
DEVICES = ["ios", "android", "web"]
AGE_GROUPS = ["18-24", "25-34", "35-44", "45-54", "55+"]
GENDERS = ["female", "male", "nonbinary"]
CATEGORIES = ["news", "sports", "games", "fashion", "music", "tech", "food", "travel"]
# affinity[age_group, category]: the young click games and fashion more, the old click news and travel more
_AFFINITY = [
    [-0.3, 0.1, 0.6, 0.4, 0.3, 0.1, 0.0, -0.2],
    [-0.1, 0.1, 0.3, 0.3, 0.2, 0.2, 0.1, 0.0],
    [0.1, 0.1, 0.0, 0.0, 0.0, 0.2, 0.2, 0.1],
    [0.3, 0.1, -0.3, -0.2, -0.1, 0.0, 0.2, 0.3],
    [0.5, 0.0, -0.5, -0.3, -0.2, -0.2, 0.2, 0.4],
]


__all__ = ["generate", "make_engagement_flat", "latest_rows", "make_engagement"]


def _window_counts(
    ent: np.ndarray, t: np.ndarray, snap_ent: np.ndarray, snap_t: np.ndarray, window: int = WINDOW
) -> np.ndarray:
    """Count events of each snapshot's entity with time in [snap_t - window, snap_t)."""
    import numpy as np

    lo_t = min(int(t.min(initial=0)), int(snap_t.min(initial=0)) - window)
    hi_t = max(int(t.max(initial=0)), int(snap_t.max(initial=0)))
    scale = np.int64(hi_t - lo_t + 1)
    keys = np.sort(ent.astype(np.int64) * scale + (t - lo_t))
    base = snap_ent.astype(np.int64) * scale - lo_t
    hi = np.searchsorted(keys, base + snap_t, side="left")
    lo = np.searchsorted(keys, base + snap_t - window, side="left")
    return np.asarray(hi - lo, dtype=np.int64)


def _snapshot_times(rng: np.random.Generator, n: int, days: int) -> tuple[np.ndarray, np.ndarray]:
    """Daily snapshot times per entity at an entity-specific time of day, the first one before the span starts."""
    import numpy as np

    offset = rng.integers(0, DAY, n)
    k = np.arange(days + 1, dtype=np.int64)
    return offset, (k[None, :] - 1) * DAY + offset[:, None]


def _arrival_delay(rng: np.random.Generator, n: int, late_share: float = 0.06) -> np.ndarray:
    """Seconds between a snapshot's event time and its arrival in the store: minutes, or hours for late rows."""
    import numpy as np

    delay = rng.exponential(600.0, n).astype(np.int64) + 1
    late = rng.random(n) < late_share
    delay[late] = rng.integers(2 * 3600, 2 * DAY, int(late.sum()))
    return delay


def _to_ts(start_ns: int, secs: np.ndarray) -> pd.Series:
    """Seconds after the start as a UTC timestamp column (microsecond resolution, like DuckDB and Parquet)."""
    import pandas as pd

    return pd.Series((start_ns // 1000 + secs.astype("int64") * 1_000_000).astype("datetime64[us]")).dt.tz_localize(
        "UTC"
    )


def _strings(values: list[str], idx: np.ndarray, missing: np.ndarray | None = None) -> pd.Series:
    """Strings from a vocabulary by index, None where `missing` is set."""
    import numpy as np
    import pandas as pd

    arr = np.asarray(values, dtype=object)[idx]
    if missing is not None:
        arr[missing] = None
    return pd.Series(arr, dtype="str")


def generate(
    rows: int, seed: int = 0, users: int | None = None, items: int | None = None, days: int = DAYS
) -> dict[str, pd.DataFrame]:
    """Generate the `users`, `items` and `impressions` tables (in memory) of an engagement log."""
    import numpy as np
    import pandas as pd

    if rows < 1:
        from roost.errors import RoostError

        raise RoostError(f"rows must be at least 1, got {rows}", "pass --rows 10000 for a small dataset")
    n_u = max(int(users) if users else rows // 20, 1)
    n_i = max(int(items) if items else rows // 50, 1)
    days = max(int(days), 1)
    rng = np.random.default_rng(seed)
    start_ns = pd.Timestamp(START).value
    k_n = days + 1

    # ---- users: static attributes, latent propensity drifting day by day
    u_off, u_snap = _snapshot_times(rng, n_u, days)
    u_activity = rng.lognormal(0.0, 0.9, n_u)
    u_base = rng.normal(0.0, 0.7, n_u)
    u_latent = u_base[:, None] + np.cumsum(rng.normal(0.0, 0.12, (n_u, k_n)), axis=1)
    u_age = rng.integers(0, len(AGE_GROUPS), n_u)
    u_gender = rng.choice(len(GENDERS), n_u, p=[0.49, 0.48, 0.03])
    u_country = rng.choice(len(COUNTRIES), n_u, p=[0.3, 0.1, 0.1, 0.1, 0.15, 0.1, 0.08, 0.07])
    u_device0 = rng.choice(len(DEVICES), n_u, p=[0.4, 0.45, 0.15])
    switch = rng.random((n_u, k_n)) < 0.02
    u_device = np.where(np.cumsum(switch, axis=1) % 2 == 1, (u_device0[:, None] + 1) % len(DEVICES), u_device0[:, None])
    u_age0 = rng.integers(1, 2000, n_u)

    # ---- items: category fixed, price and quality drifting
    i_off, i_snap = _snapshot_times(rng, n_i, days)
    i_pop = rng.lognormal(0.0, 1.0, n_i)
    i_cat = rng.integers(0, len(CATEGORIES), n_i)
    i_price = rng.lognormal(3.0, 0.8, n_i)[:, None] * np.exp(np.cumsum(rng.normal(0.0, 0.04, (n_i, k_n)), axis=1))
    i_quality = 1.0 / (
        1.0 + np.exp(-(rng.normal(0.0, 1.0, n_i)[:, None] + np.cumsum(rng.normal(0.0, 0.15, (n_i, k_n)), axis=1)))
    )

    # ---- impressions: diurnal times, heavy users and popular items more often
    uid = np.searchsorted(np.cumsum(u_activity / u_activity.sum()), rng.random(rows), side="right").clip(0, n_u - 1)
    iid = np.searchsorted(np.cumsum(i_pop / i_pop.sum()), rng.random(rows), side="right").clip(0, n_i - 1)
    hour_w = 1.0 + 0.8 * np.sin((np.arange(24) - 9) / 24 * 2 * np.pi)
    hour = rng.choice(24, rows, p=hour_w / hour_w.sum())
    t = rng.integers(0, days, rows) * DAY + hour * 3600 + rng.integers(0, 3600, rows)
    order = np.argsort(t, kind="stable")
    uid, iid, hour, t = uid[order], iid[order], hour[order], t[order]
    position = rng.integers(1, 11, rows)
    uk = (t - u_off[uid]) // DAY + 1  # index of the latest user snapshot with event_time <= t
    ik = (t - i_off[iid]) // DAY + 1

    logit = (
        -2.6
        + 0.9 * u_latent[uid, uk]
        + 2.2 * (i_quality[iid, ik] - 0.5)
        - 0.35 * np.log(i_price[iid, ik] / 20.0)
        - 0.09 * (position - 1)
        + 0.25 * ((hour >= 18) & (hour <= 22))
        + np.array([0.15, 0.0, -0.2])[u_device[uid, uk]]
        + np.asarray(_AFFINITY)[u_age[uid], i_cat[iid]]
    )
    clicked = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    label_delay = rng.exponential(1800.0, rows).astype(np.int64) + 60
    slow = rng.random(rows) < 0.05
    label_delay[slow] = rng.integers(6 * 3600, 3 * DAY, int(slow.sum()))
    label_t = t + label_delay

    # ---- count features from the log: clicks counted when their label arrives, impressions when they happen
    us_ent = np.repeat(np.arange(n_u), k_n)
    us_t = u_snap.ravel()
    is_ent = np.repeat(np.arange(n_i), k_n)
    is_t = i_snap.ravel()
    c = clicked == 1
    clicks_7d = _window_counts(uid[c], label_t[c], us_ent, us_t)
    item_clicks = _window_counts(iid[c], label_t[c], is_ent, is_t)
    item_impr = _window_counts(iid, t, is_ent, is_t)
    sessions = rng.poisson(2.0 * np.sqrt(u_activity)[:, None] * np.exp(0.5 * u_latent)).ravel()
    session_min = rng.lognormal(1.5, 0.6, n_u * k_n)
    session_min[rng.random(n_u * k_n) < 0.08] = np.nan

    user_df = pd.DataFrame(
        {
            "user_id": us_ent.astype(np.int64),
            "event_time": _to_ts(start_ns, us_t),
            "created_time": _to_ts(start_ns, us_t + _arrival_delay(rng, n_u * k_n)),
            "clicks_7d": clicks_7d,
            "sessions_7d": sessions.astype(np.int64),
            "avg_session_min": session_min.round(3),
            "account_age_days": (u_age0[:, None] + np.arange(k_n) - 1).ravel().astype(np.int64),
            "country": _strings(COUNTRIES, np.repeat(u_country, k_n), rng.random(n_u * k_n) < 0.02),
            "device": _strings(DEVICES, u_device.ravel(), rng.random(n_u * k_n) < 0.04),
            "age_group": _strings(AGE_GROUPS, np.repeat(u_age, k_n)),
            "gender": _strings(GENDERS, np.repeat(u_gender, k_n), np.repeat(rng.random(n_u) < 0.05, k_n)),
        }
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        item_ctr = np.where(item_impr > 0, item_clicks / np.maximum(item_impr, 1), np.nan)
    item_df = pd.DataFrame(
        {
            "item_id": is_ent.astype(np.int64),
            "event_time": _to_ts(start_ns, is_t),
            "created_time": _to_ts(start_ns, is_t + _arrival_delay(rng, n_i * k_n)),
            "category": _strings(CATEGORIES, i_cat[is_ent]),
            "price": i_price.ravel().round(2),
            "quality_score": i_quality.ravel().round(4),
            "popularity_7d": item_impr,
            "item_clicks_7d": item_clicks,
            "item_ctr_7d": np.round(item_ctr, 4),
        }
    )
    imp_df = pd.DataFrame(
        {
            "impression_id": np.arange(rows, dtype=np.int64),
            "user_id": uid.astype(np.int64),
            "item_id": iid.astype(np.int64),
            "event_time": _to_ts(start_ns, t),
            "hour": hour.astype(np.int64),
            "position": position.astype(np.int64),
            "clicked": clicked,
            "label_time": _to_ts(start_ns, label_t),
        }
    )
    log.debug("engagement: %d impressions, %d users, %d items, click rate %.3f", rows, n_u, n_i, clicked.mean())
    return {"users": user_df, "items": item_df, "impressions": imp_df}


def make_engagement_flat(
    rows: int, seed: int = 0, users: int | None = None, items: int | None = None, days: int = DAYS
) -> pd.DataFrame:
    """Return impressions joined point-in-time with their user and item features: a ready-to-train table."""
    from roost.datasets.joins import pit_join

    t = generate(rows, seed=seed, users=users, items=items, days=days)
    return pit_join(t["impressions"], t["users"], t["items"])


def latest_rows(snapshots: pd.DataFrame, key: str) -> pd.DataFrame:
    """One row per entity: its latest snapshot (greatest event time, then created time), ordered by `key`.

    The snapshot tables hold one row per entity per day; an embedding index needs each id once.
    """
    order = snapshots.sort_values([key, "event_time", "created_time"], kind="stable")
    return order.drop_duplicates(key, keep="last").reset_index(drop=True)


def make_engagement(
    rows: int, out_dir: str | Path, seed: int = 0, users: int | None = None, items: int | None = None, days: int = DAYS
) -> dict[str, Path]:
    """Write users, items, impressions, the PIT-joined train table and `items_latest` (one row per item, for
    `roost index build`) as Parquet files; return their paths."""
    from roost.datasets.joins import pit_join

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables: dict[str, Any] = generate(rows, seed=seed, users=users, items=items, days=days)
    tables["train"] = pit_join(tables["impressions"], tables["users"], tables["items"])
    tables["items_latest"] = latest_rows(tables["items"], "item_id")
    paths: dict[str, Path] = {}
    for name, df in tables.items():
        path = out / f"{name}.parquet"
        df.to_parquet(path, index=False)
        paths[name] = path
    log.info("engagement: wrote %s", ", ".join(str(p) for p in paths.values()))
    return paths
