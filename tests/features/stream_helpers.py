"""Shared by the stream-consumer tests: a clicks view, generated event streams and the brute-force replay."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

T0 = datetime(2024, 5, 1, tzinfo=UTC)
FIELDS = ["clicks", "score", "country"]
REFS = [f"user_clicks:{f}" for f in FIELDS]
USERS = 12

CLICKS_DEFS = """
user = Entity("user", {"user_id": "int64"})
clicks = Source("clicks", path="data/clicks.parquet", event_time="event_time")
user_clicks = FeatureView(
    "user_clicks",
    user,
    clicks,
    ttl=timedelta(hours=6),
    fields={"clicks": "int64", "score": "float64", "country": "string"},
)
"""


def setup_clicks(root: Path) -> None:
    """Write an empty clicks source and the view's definitions, then apply them."""
    from fs_helpers import write_defs

    from roost.features import apply

    schema = pa.schema(
        [
            ("user_id", pa.int64()),
            ("clicks", pa.int64()),
            ("score", pa.float64()),
            ("country", pa.string()),
            ("event_time", pa.timestamp("us", tz="UTC")),
        ]
    )
    pq.write_table(schema.empty_table(), root / "data" / "clicks.parquet")
    write_defs(root, CLICKS_DEFS)
    apply()


def iso(t: datetime) -> str:
    """Event time as producers write it (ISO 8601, UTC offset)."""
    return t.isoformat().replace("+00:00", "Z")


def make_events(n: int, users: int, seed: int, bad_every: int = 0) -> list[dict[str, str]]:
    """Flat text events, out of order (times jump back up to 2 h), ties on (user, time) with different values,
    exact duplicates (producer retries); every `bad_every`-th event is bad (missing field or wrong type)."""
    rng = random.Random(seed)
    out: list[dict[str, str]] = []
    for i in range(n):
        if bad_every and i % bad_every == bad_every - 1:
            out.append(
                rng.choice(
                    [
                        {"user_id": "1", "clicks": "2", "country": "fr", "event_time": iso(T0)},  # no score
                        {"user_id": "1", "clicks": "x", "score": "1", "country": "fr", "event_time": iso(T0)},
                        {"user_id": "1", "clicks": "2", "score": "1", "country": "fr", "event_time": "yesterday"},
                    ]
                )
            )
            continue
        r = rng.random()
        if r < 0.05 and out:
            out.append(dict(out[rng.randrange(len(out))]))  # a retried (duplicate) event
            continue
        minute = rng.randrange(600) if r < 0.2 else i // 3 + rng.randrange(5)  # late or roughly in order
        ev = {
            "user_id": str(rng.randrange(users)),
            "clicks": str(rng.randrange(1000)),
            "score": repr(rng.random()),
            "country": rng.choice(["fr", "de", "us", ""]),
            "event_time": iso(T0 + timedelta(minutes=minute)),
        }
        out.append(ev)
    return out


def parse(ev: dict[str, str]) -> dict | None:
    """The test's own reading of a flat event (None when it is bad)."""
    try:
        t = datetime.fromisoformat(ev["event_time"].replace("Z", "+00:00"))
        return {
            "user_id": int(ev["user_id"]),
            "clicks": int(ev["clicks"]),
            "score": float(ev["score"]),
            "country": ev["country"],
            "event_time": t,
        }
    except (KeyError, ValueError):
        return None


def replay_latest(events: list[dict[str, str]]) -> dict[int, dict]:
    """Each user's online row after applying the events once in stream order: greatest event time, the later
    event at equal times (the offline join's tie rule without created times)."""
    best: dict[int, dict] = {}
    for ev in events:
        row = parse(ev)
        if row is None:
            continue
        cur = best.get(row["user_id"])
        if cur is None or row["event_time"] >= cur["event_time"]:
            best[row["user_id"]] = row
    return best


def replay_pit(events: list[dict[str, str]], user: int, t: datetime, ttl: timedelta) -> dict | None:
    """Brute-force point-in-time value of `user` at `t`: the latest event at or before t, not older than the ttl."""
    best = None
    for ev in events:
        row = parse(ev)
        if row is None or row["user_id"] != user or not (t - ttl <= row["event_time"] <= t):
            continue
        if best is None or row["event_time"] >= best["event_time"]:
            best = row
    return best


def as_json(ev: dict[str, str]) -> bytes:
    """A flat event as the typed JSON object a Kafka producer sends (numbers as numbers); a bad event stays bad
    (a missing field stays missing, a value that is not a number stays a string)."""
    obj: dict[str, object] = {}
    for k, v in ev.items():
        if k in ("user_id", "clicks") and re.fullmatch(r"-?[0-9]+", v):
            obj[k] = int(v)
        elif k == "score":
            obj[k] = float(v)
        else:
            obj[k] = v
    return json.dumps(obj).encode()


def metric(text: str, name: str) -> float:
    """One sample of `name` from Prometheus text (the test's own parse)."""
    m = re.search(rf"^{name}\{{[^}}]*\}} (\S+)$", text, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def check_exactly_once(events: list[dict[str, str]], users: int = USERS) -> None:
    """Online values and point-in-time training rows equal a brute-force replay of the stream applied once."""
    import pandas as pd
    import pytest

    from roost.features import online, training_set

    want = replay_latest(events)
    ids = list(range(users))
    with pytest.MonkeyPatch.context() as mp:  # as of T0 the view's 6 h ttl expires no event (all at T0 or later)
        mp.setenv("ROOST_ONLINE_AS_OF", T0.isoformat())
        on = online(REFS, {"user_id": ids}, output="pandas")
    for u, row in zip(ids, on.to_dict("records"), strict=True):
        exp = want.get(u)
        got = {f: (None if pd.isna(row[f]) else row[f]) for f in FIELDS}
        assert got == ({f: exp[f] for f in FIELDS} if exp else dict.fromkeys(FIELDS)), u
    times = [T0 + timedelta(minutes=m, seconds=30) for m in range(-5, 700, 7)]
    entity = pd.DataFrame({"user_id": [u for u in ids for _ in times], "event_time": [t for _ in ids for t in times]})
    got = training_set(entity, REFS)
    for u, t, c, s, k in zip(entity.user_id, entity.event_time, got.clicks, got.score, got.country, strict=True):
        exp = replay_pit(events, u, t.to_pydatetime(), timedelta(hours=6))
        row = {"clicks": None if pd.isna(c) else c, "score": None if pd.isna(s) else s, "country": k}
        if pd.isna(k):
            row["country"] = None
        assert row == ({f: exp[f] for f in FIELDS} if exp else dict.fromkeys(FIELDS)), (u, t)


HANG_GUARD_S = 300  # only a hang guard: the machine may be loaded


def start_consumer(root: Path, url: str, log: Path, batch: int = 40) -> subprocess.Popen:
    """`roost features stream user_clicks --source URL` as its own process (own session), output appended to `log`."""
    import roost

    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    env["PYTHONPATH"] = str(Path(roost.__file__).resolve().parents[1])
    cmd = [sys.executable, "-m", "roost", "features", "stream", "user_clicks", "--source", url]
    cmd += ["--batch", str(batch), "--block-ms", "100", "--consumer", "c1"]
    with open(log, "ab") as fh:
        return subprocess.Popen(cmd, cwd=root, env=env, stdout=fh, stderr=fh, start_new_session=True)


def wait_while_running(cond, what: str, proc: subprocess.Popen, log: Path, every: float = 0.005) -> None:
    """Poll `cond()` every `every` s until it holds; fail (with the consumer's log) if the consumer exits first or
    HANG_GUARD_S passes."""
    import pytest

    deadline = time.monotonic() + HANG_GUARD_S
    while not cond():
        if proc.poll() is not None:
            pytest.fail(f"the consumer exited ({proc.returncode}) before {what}: {log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}: {log.read_text()[-3000:]}")
        time.sleep(every)
