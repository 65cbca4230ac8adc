"""Joins of the engagement log with its feature tables: point-in-time (correct) and latest-value (leaky)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

_KEYS = {"user_id", "item_id", "event_time", "created_time"}


__all__ = ["pit_join", "latest_join"]


def _features(df: pd.DataFrame) -> list[str]:
    """Feature columns of a snapshot table (everything but keys and timestamps)."""
    return [c for c in df.columns if c not in _KEYS]


def _select(users: pd.DataFrame, items: pd.DataFrame) -> str:
    """The SELECT list: every impression column, then the user and item features."""
    cols = [f'u."{c}"' for c in _features(users)] + [f'it."{c}"' for c in _features(items)]
    return ", ".join(["i.*", *cols])


def _run(sql: str, **frames: Any) -> pd.DataFrame:
    """Run `sql` in a fresh DuckDB connection (UTC session) with the given frames registered as views."""
    import duckdb
    import pyarrow as pa

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'; SET enable_progress_bar = false")
        for name, df in frames.items():  # through Arrow: twice as fast as scanning pandas str columns
            con.register(name, pa.Table.from_pandas(df, preserve_index=False))
        return con.sql(sql).to_arrow_table().to_pandas()
    finally:
        con.close()


def pit_join(impressions: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Join each impression with the latest user and item snapshot whose event_time <= the impression's."""
    sql = f"""
        SELECT {_select(users, items)}
        FROM imp AS i
        ASOF LEFT JOIN usr AS u ON i.user_id = u.user_id AND i.event_time >= u.event_time
        ASOF LEFT JOIN itm AS it ON i.item_id = it.item_id AND i.event_time >= it.event_time
        ORDER BY i.impression_id
    """
    return _run(sql, imp=impressions, usr=users, itm=items)


def latest_join(impressions: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame, as_of: Any = None) -> pd.DataFrame:
    """Join each impression with the latest snapshot per entity (leaky); `as_of` keeps rows created by then."""
    import pandas as pd

    if as_of is not None:
        ts = pd.Timestamp(as_of)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
        users = users[users["created_time"] <= ts]
        items = items[items["created_time"] <= ts]
    sql = f"""
        SELECT {_select(users, items)}
        FROM imp AS i
        LEFT JOIN (SELECT * FROM usr QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY event_time DESC) = 1) AS u
          ON i.user_id = u.user_id
        LEFT JOIN (SELECT * FROM itm QUALIFY row_number() OVER (PARTITION BY item_id ORDER BY event_time DESC) = 1)
          AS it
          ON i.item_id = it.item_id
        ORDER BY i.impression_id
    """
    return _run(sql, imp=impressions, usr=users, itm=items)
