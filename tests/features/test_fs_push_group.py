"""Group commit of concurrent pushes: pushes arriving while a commit runs share the next one (one log file, one
online transaction); every row lands exactly once in the order the online store applied it; a failed group
fails each of its callers and writes nothing; a bad push fails alone, before it can join a group."""

from __future__ import annotations

import threading
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from fs_helpers import write_defs
from push_helpers import DEFS, FIELDS, T0, all_rows, brute_latest, brute_pit, rows


def _setup(ws, seed=0):
    from roost.features import apply

    rng = np.random.default_rng(seed)
    rows(rng, 20).to_parquet(ws.root / "data" / "events.parquet")
    write_defs(ws.root, DEFS)
    apply()
    return rng


def _log_files(ws):
    return sorted((ws.root / ".roost" / "features" / "push" / "clicks").glob("day=*/*.parquet"))


class _Gate:
    """Holds the first online write until `n` more pushes are queued behind it, counting the writes."""

    def __init__(self, monkeypatch, committer, n, fail_on=None):
        from roost.features.online_stores.sqlite import SQLiteOnlineStore

        self.calls, self.rows, self.release = 0, [], threading.Event()
        real = SQLiteOnlineStore.write

        def write(store, views):
            self.calls += 1
            self.rows.append(views[0].table.num_rows)
            if self.calls == 1:
                assert self.release.wait(30)
            if self.calls == fail_on:
                raise OSError("disk full (injected)")
            return real(store, views)

        monkeypatch.setattr(SQLiteOnlineStore, "write", write)
        self.committer, self.n = committer, n

    def wait_queued(self):
        """Return once the first write is in flight and `n` pushes wait behind it."""
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with self.committer._cond:
                if self.calls == 1 and len(self.committer._queue) == self.n:
                    return
            time.sleep(0.002)
        raise AssertionError("pushes did not queue")


def _run(targets):
    out: dict[int, object] = {}

    def go(i, fn):
        try:
            out[i] = fn()
        except Exception as exc:  # checked by the caller
            out[i] = exc

    threads = [threading.Thread(target=go, args=(i, fn)) for i, fn in enumerate(targets)]
    for th in threads:
        th.start()
    return threads, out


def test_pushes_queued_behind_a_commit_share_one_group(fws, monkeypatch):
    """1 push in flight + 6 queued = 2 online transactions and 2 log files; online and training_set equal the
    brute force over the pushes in the order they were applied (the log's order)."""
    from roost.features import online, training_set
    from roost.features.push import Pusher

    rng = _setup(fws)
    pushes = [rows(rng, int(rng.integers(5, 30)), hours=4) for _ in range(7)]
    p = Pusher("clicks")
    gate = _Gate(monkeypatch, p._committer, 6)
    first, out = _run([lambda: p.push(pushes[0])])
    while gate.calls == 0:
        gate.release.wait(0.002)
    rest, out2 = _run([lambda d=d: Pusher("clicks").push(d) for d in pushes[1:]])  # other Pushers share it
    gate.wait_queued()
    gate.release.set()
    for th in first + rest:
        th.join()
    assert out == {0: len(pushes[0])}
    assert out2 == {i: len(d) for i, d in enumerate(pushes[1:])}
    assert gate.calls == 2 and len(_log_files(fws)) == 2  # failed before: one transaction and file per push
    # the order the group applied them: its log file, __row order
    import pyarrow.parquet as pq

    logged = pq.read_table(_log_files(fws)[1]).column("clicks").to_pylist()
    order = sorted(range(1, 7), key=lambda i: logged.index(pushes[i]["clicks"].iloc[0]))
    assert logged == [c for i in order for c in pushes[i]["clicks"]]  # each push whole, each row exactly once
    applied = [pushes[0], *(pushes[i] for i in order)]
    batch = pd.read_parquet(fws.root / "data" / "events.parquet")
    pushed, held = all_rows(batch.head(0), applied), all_rows(batch, applied)  # online: pushed rows only
    users = list(range(12))
    got = online([f"clicks:{f}" for f in FIELDS], {"user_id": users}, output="arrow")
    for f in FIELDS:
        assert got.column(f).to_pylist() == [None if (r := brute_latest(pushed, u)) is None else r[f] for u in users]
    times = [T0 + timedelta(minutes=int(m)) for m in rng.integers(0, 6 * 60, 200)]
    ent = pd.DataFrame({"user_id": rng.integers(0, 12, 200), "event_time": pd.to_datetime(times, utc=True)})
    off = training_set(ent, [f"clicks:{f}" for f in FIELDS], output="arrow")
    for f in FIELDS:
        exp = [
            None if (r := brute_pit(held, int(u), t.to_pydatetime(), None)) is None else r[f]
            for u, t in zip(ent.user_id, ent.event_time)
        ]
        assert off.column(f).to_pylist() == exp, f


def test_a_failed_group_fails_each_caller_and_writes_nothing(fws, monkeypatch):
    """The second group's online write fails: its 4 callers get the error; online and offline hold only the
    first push; the next push works again."""
    from roost.features import online
    from roost.features.push import Pusher

    rng = _setup(fws, 1)
    pushes = [rows(rng, 10, hours=4) for _ in range(5)]
    p = Pusher("clicks")
    gate = _Gate(monkeypatch, p._committer, 4, fail_on=2)
    first, out = _run([lambda: p.push(pushes[0])])
    while gate.calls == 0:
        gate.release.wait(0.002)
    rest, out2 = _run([lambda d=d: p.push(d) for d in pushes[1:]])
    gate.wait_queued()
    gate.release.set()
    for th in first + rest:
        th.join()
    assert out == {0: 10}
    assert sorted(out2) == [0, 1, 2, 3] and all(isinstance(e, OSError) for e in out2.values()), out2
    assert gate.rows[1] > 10  # they were one group
    assert len(_log_files(fws)) == 1  # the group's file was removed again
    held = all_rows(pd.read_parquet(fws.root / "data" / "events.parquet").head(0), [pushes[0]])
    got = online(["clicks:label"], {"user_id": list(range(12))}, output="arrow").column("label").to_pylist()
    assert got == [None if (r := brute_latest(held, u)) is None else r["label"] for u in range(12)]
    assert p.push(pushes[1]) == 10 and len(_log_files(fws)) == 2


def test_a_bad_push_fails_alone_while_its_neighbours_land(fws, monkeypatch):
    """A push with an unknown column, queued among valid ones, gets its own error; the valid ones all land."""
    from roost.errors import RoostError
    from roost.features import online
    from roost.features.push import Pusher

    rng = _setup(fws, 2)
    good = [rows(rng, 8, n_users=4, hours=4).assign(user_id=np.arange(8) + 100 * i) for i in range(4)]
    bad = good[0].assign(oops=1)
    p = Pusher("clicks")
    gate = _Gate(monkeypatch, p._committer, 3)
    first, out = _run([lambda: p.push(good[0])])
    while gate.calls == 0:
        gate.release.wait(0.002)
    rest, out2 = _run([lambda: p.push(bad), *(lambda d=d: p.push(d) for d in good[1:])])
    rest[0].join()  # refused on its own thread, without waiting for the commit in flight
    assert isinstance(out2[0], RoostError) and "oops" in str(out2[0])
    gate.wait_queued()
    gate.release.set()
    for th in first + rest:
        th.join()
    assert out == {0: 8} and {i: out2[i] for i in (1, 2, 3)} == {1: 8, 2: 8, 3: 8}
    users = [int(u) for d in good for u in d.user_id]
    got = online(["clicks:label"], {"user_id": users}, output="arrow").column("label").to_pylist()
    assert got == [x for d in good for x in d.label]


@pytest.mark.parametrize(("seed", "n"), [(0, 300), (1, 300), (2, 1000), (3, 100)])
def test_latest_per_key_equals_brute_force(seed, n):
    """The online-row pick (the vectorised sort, and the dict for small pushes) == the plain rule, on int and text
    keys with many ties."""
    import pyarrow as pa

    from roost.features.push_group import SMALL, latest_per_key

    assert (n <= SMALL) == (seed == 3)  # both paths run
    rng = np.random.default_rng(seed)
    k1 = rng.integers(0, 6, n)
    k2 = [f"s{int(x)}" for x in rng.integers(0, 3, n)]
    et = rng.integers(0, 4, n)
    ct = [None if rng.random() < 0.3 else int(x) for x in rng.integers(0, 3, n)]
    t = pa.table(
        {
            "a": pa.array(k1, pa.int64()),
            "b": pa.array(k2),
            "__et": pa.array(et, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "__ct": pa.array(ct, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "i": pa.array(np.arange(n)),
        }
    )
    best: dict = {}
    for i in range(n):
        key, tm = (int(k1[i]), k2[i]), (int(et[i]), -(2**63) if ct[i] is None else ct[i])
        if key not in best or tm >= best[key][0]:
            best[key] = (tm, i)
    assert latest_per_key(t, ["a", "b"]).column("i").to_pylist() == sorted(i for _, i in best.values())
