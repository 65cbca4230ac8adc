"""A real consumer process (`roost features stream`) against a real redis-server: SIGKILLed mid-batch and restarted,
the online store and the offline log equal one replay of the stream; SIGTERM finishes the batch in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from stream_helpers import T0, make_events, parse, replay_latest, replay_pit, setup_clicks

import roost

pytestmark = [pytest.mark.services, pytest.mark.slow]

SRC = str(Path(roost.__file__).resolve().parents[1])
FIELDS = ["clicks", "score", "country"]
REFS = [f"user_clicks:{f}" for f in FIELDS]
USERS = 12
HANG_GUARD_S = 300  # only a hang guard: the machine may be loaded


def _start(root: Path, url: str, log: Path, batch: int = 40) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    env["PYTHONPATH"] = SRC
    cmd = [sys.executable, "-m", "roost", "features", "stream", "user_clicks", "--source", url]
    cmd += ["--batch", str(batch), "--block-ms", "100", "--consumer", "c1"]
    with open(log, "ab") as fh:
        return subprocess.Popen(cmd, cwd=root, env=env, stdout=fh, stderr=fh, start_new_session=True)


def _group(r, name: str) -> dict:
    groups = r.xinfo_groups(name)
    return groups[0] if groups else {}


def _wait(cond, what: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while not cond():
        if proc.poll() is not None:
            pytest.fail(f"the consumer exited ({proc.returncode}) before {what}: {log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}: {log.read_text()[-3000:]}")
        time.sleep(0.005)


def _produce(r, name: str, events: list[dict]) -> None:
    pipe = r.pipeline(transaction=False)
    for ev in events:
        pipe.xadd(name, ev)
    pipe.execute()


def _check_exactly_once(events: list[dict]) -> None:
    """Online values and point-in-time training rows equal a brute-force replay of the stream applied once."""
    import pandas as pd

    from roost.features import online, training_set

    want = replay_latest(events)
    users = list(range(USERS))
    with pytest.MonkeyPatch.context() as mp:  # as of T0 the view's 6 h ttl expires no event (all at T0 or later)
        mp.setenv("ROOST_ONLINE_AS_OF", T0.isoformat())
        on = online(REFS, {"user_id": users}, output="pandas")
    for u, row in zip(users, on.to_dict("records"), strict=True):
        exp = want.get(u)
        got = {f: (None if pd.isna(row[f]) else row[f]) for f in FIELDS}
        assert got == ({f: exp[f] for f in FIELDS} if exp else dict.fromkeys(FIELDS)), u
    times = [T0 + timedelta(minutes=m, seconds=30) for m in range(-5, 700, 7)]
    entity = pd.DataFrame(
        {"user_id": [u for u in users for _ in times], "event_time": [t for _ in users for t in times]}
    )
    got = training_set(entity, REFS)
    for u, t, c, s, k in zip(entity.user_id, entity.event_time, got.clicks, got.score, got.country, strict=True):
        exp = replay_pit(events, u, t.to_pydatetime(), timedelta(hours=6))
        row = {"clicks": None if pd.isna(c) else c, "score": None if pd.isna(s) else s, "country": k}
        if pd.isna(k):
            row["country"] = None
        assert row == ({f: exp[f] for f in FIELDS} if exp else dict.fromkeys(FIELDS)), (u, t)


def test_sigkilled_mid_batch_and_restarted_applies_every_event_exactly_once(fws, redis_url, tmp_path):
    import redis

    setup_clicks(fws.root)
    name = "recovery"
    url = f"{redis_url}/{name}"
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.delete(name, f"{name}:dead")
    events = make_events(1500, users=USERS, seed=11, bad_every=97)
    _produce(r, name, events)
    log = tmp_path / "consumer.log"
    read_before = 0
    killed_pending = []
    for _ in range(6):  # three kills with a batch delivered and not acked (one acked between the check and the kill
        if len(killed_pending) == 3:  # — a race a faster push makes likelier — does not count, and is retried)
            break
        proc = _start(fws.root, url, log)
        # kill while a batch is delivered and not acked, after some progress since the last restart
        _wait(
            lambda: (g := _group(r, name)) and g["pending"] > 0 and g["entries-read"] > read_before + 80,
            "a batch in flight",
            proc,
            log,
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        g = _group(r, name)
        if g["pending"] > 0:
            killed_pending.append(g["pending"])  # delivered, never acked: the restart must apply these
        read_before = g["entries-read"]
    assert len(killed_pending) == 3, killed_pending
    more = make_events(400, users=USERS, seed=12, bad_every=50)
    _produce(r, name, more)  # new events after the crashes, some later than the redelivered ones
    proc = _start(fws.root, url, log)
    _wait(lambda: (g := _group(r, name)) and g["lag"] == 0 and g["pending"] == 0, "the stream drained", proc, log)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=HANG_GUARD_S) == 0, log.read_text()[-3000:]
    all_events = events + more
    _check_exactly_once(all_events)
    n_bad = sum(parse(ev) is None for ev in all_events)
    assert r.xlen(f"{name}:dead") == n_bad  # each bad event dead-lettered once (acked in the same MULTI)
    assert "re-read" in log.read_text()  # the restarts re-read their own pending batches


def test_sigterm_finishes_the_batch_in_flight(fws, redis_url, tmp_path):
    import redis

    setup_clicks(fws.root)
    name = "drain"
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.delete(name, f"{name}:dead")
    events = make_events(3000, users=USERS, seed=13)
    _produce(r, name, events)
    log = tmp_path / "consumer.log"
    proc = _start(fws.root, f"{redis_url}/{name}", log, batch=200)
    _wait(lambda: (g := _group(r, name)) and g["pending"] > 0, "a batch in flight", proc, log)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=HANG_GUARD_S) == 0, log.read_text()[-3000:]
    g = _group(r, name)
    assert g["pending"] == 0  # the batch in flight was written and acked, not abandoned
    assert 0 < g["entries-read"] < len(events)  # and it stopped there
    _check_exactly_once(events[: g["entries-read"]])
