"""Push refuses bad rows with an error naming the column, and then nothing is written online or offline;
an error while writing leaves the online store and the offline log as they were."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from fs_helpers import write_defs
from push_helpers import DEFS, FIELDS, T0, rows

from roost.errors import RoostError


@pytest.fixture
def pushed(fws):
    """A workspace whose view 'clicks' has source rows and one good push; yields (state snapshot function)."""
    from roost.features import apply, push

    rng = np.random.default_rng(7)
    rows(rng, 50).to_parquet(fws.root / "data" / "events.parquet")
    write_defs(fws.root, DEFS)
    apply()
    push("clicks", rows(rng, 20))
    return fws


def _state(ws):
    """What a reader sees: the online values of every user, the training set at fixed times, the log's files."""
    from roost.features import online, training_set
    from roost.features.push_log import log_dir

    refs = [f"clicks:{f}" for f in FIELDS]
    on = online(refs, {"user_id": list(range(13))}, output="arrow").to_pylist()
    ent = pd.DataFrame(
        {
            "user_id": np.repeat(np.arange(13), 4),
            "event_time": pd.to_datetime([T0 + timedelta(hours=h) for h in (3, 12, 24, 40)] * 13, utc=True),
        }
    )
    off = training_set(ent, refs, output="arrow").to_pylist()
    files = sorted(p.name for p in log_dir(ws.root, "clicks").rglob("*") if p.is_file())
    return on, off, files


def _good(n=3):
    t = datetime(2024, 5, 1, 5, tzinfo=UTC)
    return pd.DataFrame(
        {
            "user_id": np.arange(n, dtype="int64"),
            "event_time": pd.to_datetime([t + timedelta(hours=i) for i in range(n)], utc=True),
            "clicks": np.full(n, 5000, dtype="int64"),
            "score": np.full(n, 9.5),
            "label": ["pushed"] * n,
        }
    )


BAD = {
    "missing field": (lambda d: d.drop(columns=["score"]), ["'score'", "float64"]),
    "missing key": (lambda d: d.drop(columns=["user_id"]), ["join key", "'user_id'"]),
    "missing event time": (lambda d: d.drop(columns=["event_time"]), ["event-time", "'event_time'"]),
    "null event time": (lambda d: d.assign(event_time=[d.event_time[0], pd.NaT, d.event_time[2]]), ["null", "row 1"]),
    "naive event time": (lambda d: d.assign(event_time=d.event_time.dt.tz_localize(None)), ["naive", "'event_time'"]),
    "text in an int field": (lambda d: d.assign(clicks=["1", "2", "x"]), ["'clicks'", "int64"]),
    "fraction in an int field": (lambda d: d.assign(clicks=[1.0, 2.5, 3.0]), ["'clicks'", "2.5"]),
    "number in a text field": (lambda d: d.assign(label=[1, 2, 3]), ["'label'", "string"]),
    "overflow": (
        lambda d: (
            d.assign(clicks=[1, 2, 2**63 - 1])
            .astype({"clicks": "uint64"})
            .assign(clicks=lambda x: x.clicks + np.uint64(2))
        ),
        ["'clicks'", "range"],
    ),
    "fractional id": (lambda d: d.assign(user_id=[1.0, 2.5, 3.0]), ["'user_id'", "2.5"]),
    "null id": (lambda d: d.assign(user_id=[1.0, None, 3.0]), ["'user_id'", "null"]),
    "unknown column": (lambda d: d.assign(clickz=1), ["'clickz'"]),
    "text time": (
        lambda d: d.assign(event_time=["2024-05-01T00:00:00Z", "yesterday", "2024-05-01T01:00:00Z"]),
        ["'yesterday'", "ISO 8601"],
    ),
    "naive text time": (
        lambda d: d.assign(event_time=["2024-05-01T00:00:00Z", "2024-05-01T00:00:00", "2024-05-01T01:00:00Z"]),
        ["naive"],
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_rows_are_refused_and_nothing_is_written(pushed, case):
    from roost.features import push

    before = _state(pushed)
    make, words = BAD[case]
    with pytest.raises(RoostError) as e:
        push("clicks", make(_good()))
    text = str(e.value)
    assert all(w in text for w in words), text
    assert _state(pushed) == before


def test_unknown_view_and_static_view_are_refused(pushed):
    from roost.errors import NotFoundError
    from roost.features import push

    with pytest.raises(NotFoundError) as e:
        push("click", _good())
    assert "'clicks'" in (e.value.hint or "")


def test_list_of_dicts_with_a_missing_key_is_refused(pushed):
    from roost.features import push

    before = _state(pushed)
    recs = _good().to_dict("records")
    del recs[1]["score"]
    with pytest.raises(RoostError, match="row 1 lacks"):
        push("clicks", recs)
    assert _state(pushed) == before


def test_online_write_failure_leaves_online_and_offline_unchanged(pushed, monkeypatch):
    """The online store refuses the write (its connection is gone): the log's committed files are removed."""
    from roost.features import push
    from roost.features.online_stores.sqlite import SQLiteOnlineStore

    before = _state(pushed)

    def failing(self, views):
        raise OSError("disk full")

    monkeypatch.setattr(SQLiteOnlineStore, "write", failing)
    with pytest.raises(OSError):
        push("clicks", _good())
    monkeypatch.undo()
    assert _state(pushed) == before


def test_sqlite_transaction_error_mid_push_changes_nothing(pushed, monkeypatch):
    """A failure inside the store's transaction (the 3rd row) rolls back every row and the log's files."""
    from roost.features import push
    from roost.features.online_stores import base

    before = _state(pushed)
    real = base.ViewData.columns

    def bad_columns(self):
        cols = real(self)

        class Boom(list):
            def __iter__(self):
                for i, x in enumerate(list.__iter__(self)):
                    if i == 2:
                        raise OSError("disk full")
                    yield x

        return [Boom(c) for c in cols]

    monkeypatch.setattr(base.ViewData, "columns", bad_columns)
    with pytest.raises(OSError):
        push("clicks", _good(5))
    monkeypatch.setattr(base.ViewData, "columns", real)
    assert _state(pushed) == before


def test_log_write_failure_leaves_everything_unchanged(pushed, monkeypatch):
    import pyarrow.parquet as pq

    from roost.features import push

    before = _state(pushed)
    calls = []

    def failing(table, path, **kw):
        calls.append(path)
        if len(calls) == 2:  # the push spans two event days: the second day's file fails
            raise OSError("disk full")
        return real(table, path, **kw)

    real = pq.write_table
    monkeypatch.setattr(pq, "write_table", failing)
    d = _good(2)
    d.loc[1, "event_time"] = d.loc[1, "event_time"] + timedelta(days=1)
    with pytest.raises(OSError):
        push("clicks", d)
    monkeypatch.setattr(pq, "write_table", real)
    assert len(calls) == 2
    assert _state(pushed) == before
