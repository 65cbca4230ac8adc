"""Views for `make demo`'s skew step: the engagement snapshots without a TTL, read online by entity id.

The generated log is from January 2024 and a served request is stamped with today's time, so a view with a TTL
(user_stats, item_stats: 2 days) has expired offline by the time it is served; these views keep the latest row.
The entities and sources are the same as in features/engagement.py (same name, same settings).
"""

from roost.features import Entity, FeatureView, Source

user = Entity("user", {"user_id": "int64"})
item = Entity("item", {"item_id": "int64"})

users = Source("users", path="data/users.parquet", event_time="event_time", created_time="created_time")
items = Source("items", path="data/items.parquet", event_time="event_time", created_time="created_time")

user_live = FeatureView(
    "user_live",
    user,
    users,
    fields={"clicks_7d": "int64", "sessions_7d": "int64", "avg_session_min": "float64"},
    description="latest user activity snapshot (no TTL), served online by user_id",
)
item_live = FeatureView(
    "item_live",
    item,
    items,
    fields={"price": "float64", "quality_score": "float64", "item_ctr_7d": "float64"},
    description="latest item snapshot (no TTL), served online by item_id",
)
