"""Engagement log (roost.datasets.engagement.make_engagement): daily user and item snapshots as feature views.

Data: `roost.datasets.engagement.make_engagement(rows, "<workspace>/data", seed)` writes data/users.parquet and
data/items.parquet (tz-aware event_time / created_time, keys user_id / item_id); impressions.parquet holds the
entity rows (user_id, item_id, event_time) of a training set.
"""

from datetime import timedelta

from roost.features import Entity, FeatureView, Source

user = Entity("user", {"user_id": "int64"})
item = Entity("item", {"item_id": "int64"})

users = Source("users", path="data/users.parquet", event_time="event_time", created_time="created_time")
items = Source("items", path="data/items.parquet", event_time="event_time", created_time="created_time")

user_stats = FeatureView(
    "user_stats",
    user,
    users,
    ttl=timedelta(days=2),
    fields={
        "clicks_7d": "int64",
        "sessions_7d": "int64",
        "avg_session_min": "float64",
        "account_age_days": "int64",
        "country": "string",
        "device": "string",
        "age_group": "string",
        "gender": "string",
    },
    description="daily user snapshot: activity counts over the last 7 days and profile attributes",
)
item_stats = FeatureView(
    "item_stats",
    item,
    items,
    ttl=timedelta(days=2),
    fields={
        "category": "string",
        "price": "float64",
        "quality_score": "float64",
        "popularity_7d": "int64",
        "item_clicks_7d": "int64",
        "item_ctr_7d": "float64",
    },
    description="daily item snapshot: price, quality and 7-day popularity",
)


def user_rates(df):
    """Clicks per session over the last 7 days (vectorised; 0 sessions -> missing)."""
    sessions = df["sessions_7d"].where(df["sessions_7d"] > 0)
    return {"clicks_per_session": df["clicks_7d"] / sessions}


user_derived = FeatureView(
    "user_derived", user, users, ttl=timedelta(days=2), fields={"clicks_per_session": "float64"}, transform=user_rates
)
item_derived = FeatureView(
    "item_derived",
    item,
    items,
    ttl=timedelta(days=2),
    fields={"log_price": "float64", "ctr_smoothed": "float64"},
    transform={"log_price": "ln(price)", "ctr_smoothed": "(item_clicks_7d + 1) / (popularity_7d + 20)"},
)
