"""A real consumer process (`roost features stream`) against a real redis-server: SIGKILLed mid-batch and restarted,
the online store and the offline log equal one replay of the stream; SIGTERM finishes the batch in flight."""

from __future__ import annotations

import signal

import pytest
from stream_helpers import (
    HANG_GUARD_S,
    USERS,
    check_exactly_once,
    make_events,
    parse,
    setup_clicks,
    start_consumer,
    wait_while_running,
)

pytestmark = [pytest.mark.services, pytest.mark.slow]


def _group(r, name: str) -> dict:
    groups = r.xinfo_groups(name)
    return groups[0] if groups else {}


def _produce(r, name: str, events: list[dict]) -> None:
    pipe = r.pipeline(transaction=False)
    for ev in events:
        pipe.xadd(name, ev)
    pipe.execute()


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
        proc = start_consumer(fws.root, url, log)
        # kill while a batch is delivered and not acked, after some progress since the last restart
        wait_while_running(
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
    proc = start_consumer(fws.root, url, log)
    wait_while_running(
        lambda: (g := _group(r, name)) and g["lag"] == 0 and g["pending"] == 0, "the stream drained", proc, log
    )
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=HANG_GUARD_S) == 0, log.read_text()[-3000:]
    all_events = events + more
    check_exactly_once(all_events)
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
    proc = start_consumer(fws.root, f"{redis_url}/{name}", log, batch=200)
    wait_while_running(lambda: (g := _group(r, name)) and g["pending"] > 0, "a batch in flight", proc, log)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=HANG_GUARD_S) == 0, log.read_text()[-3000:]
    g = _group(r, name)
    assert g["pending"] == 0  # the batch in flight was written and acked, not abandoned
    assert 0 < g["entries-read"] < len(events)  # and it stopped there
    check_exactly_once(events[: g["entries-read"]])
