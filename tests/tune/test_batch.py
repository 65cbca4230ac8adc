"""Batch ask/tell: `ask(n)` leases up to n trials and `tell_many` finishes many, each in one transaction; a trial
is never handed to two clients (engines in threads on SQLite and PostgreSQL, clients of two service processes)."""

from __future__ import annotations

import threading
import time

import pytest

from roost.errors import ConfigError
from roost.tune.engine import Engine

SPACE = {"x": {"uniform": [-5.0, 10.0]}, "k": {"choice": ["a", "b", "c"]}}


def test_ask_many_leases_distinct_trials_and_a_retry_returns_the_same(ws) -> None:
    eng = Engine()
    sid = eng.create_study(SPACE, sampler="tpe", seed=3, max_trials=10)["id"]
    first = eng.ask_many(sid, 4, client_id="a")["trials"]
    assert [t["number"] for t in first] == [0, 1, 2, 3]
    assert len({(t["params"]["x"], t["params"]["k"]) for t in first}) == 4
    again = eng.ask_many(sid, 4, client_id="a")["trials"]  # the answer was lost: same trials, same params
    assert [(t["number"], t["params"]) for t in again] == [(t["number"], t["params"]) for t in first]
    other = eng.ask_many(sid, 8, client_id="b")  # the budget caps the batch
    assert [t["number"] for t in other["trials"]] == [4, 5, 6, 7, 8, 9]
    done = eng.ask_many(sid, 3, client_id="c")
    assert done["trials"] == [] and done["done"] is False and done["retry_after"] is not None
    with pytest.raises(ConfigError, match="n: must be a positive"):
        eng.ask_many(sid, 0, client_id="c")


def test_tell_many_records_each_and_reports_conflicts_per_result(ws) -> None:
    eng = Engine()
    sid = eng.create_study(SPACE, sampler="random", seed=0, max_trials=4)["id"]
    ts = eng.ask_many(sid, 4, client_id="a")["trials"]
    with pytest.raises(ConfigError, match=r"results\[1\].state"):  # checked before anything is written
        eng.tell_many(sid, [{"number": 0, "value": 1.0}, {"number": 1, "value": 2.0, "state": "done"}])
    assert eng.study(sid)["counts"]["RUNNING"] == 4
    out = eng.tell_many(
        sid,
        [
            {"number": 0, "value": 1.0},
            {"number": 1, "value": float("nan")},
            {"number": 2, "state": "fail", "reason": "oom"},
        ],
    )
    assert [o["state"] for o in out] == ["COMPLETE", "FAIL", "FAIL"]
    again = eng.tell_many(sid, [{"number": 0, "value": 1.0}, {"number": 3, "value": 0.5}, {"number": 99, "value": 1}])
    assert again[0]["stored"] == {"number": 0, "state": "COMPLETE", "value": 1.0, "reason": None}
    assert again[1]["state"] == "COMPLETE" and "error" in again[2] and again[2]["stored"] is None
    st = eng.study(sid)
    assert [t["value"] for t in st["trials"]] == [1.0, None, None, 0.5] and st["best_trial"]["number"] == 3
    assert len(ts) == 4


def _hammer(url: str | None, n_trials: int, batch: int) -> dict[str, list[int]]:
    """8 threads, each with its own Engine (own connection pool), asking `batch` at a time and telling them all."""
    from roost.registry.store import Store, default_store

    store = Store(url) if url else default_store()
    store.ensure_schema()
    sid = Engine(store).create_study(SPACE, sampler="random", seed=1, max_trials=n_trials)["id"]
    got: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    gate = threading.Barrier(8)

    def worker(i: int) -> None:
        try:
            eng = Engine(Store(url) if url else default_store())
            mine = got.setdefault(f"c{i}", [])
            gate.wait(timeout=120)
            deadline = time.monotonic() + 300  # hang guard only
            while time.monotonic() < deadline:
                r = eng.ask_many(sid, batch, client_id=f"c{i}")
                if not r["trials"]:
                    if r["done"]:
                        return
                    time.sleep(0.01)
                    continue
                mine.extend(t["number"] for t in r["trials"])
                eng.tell_many(sid, [{"number": t["number"], "value": t["params"]["x"]} for t in r["trials"]])
            raise AssertionError("hang guard: the study did not finish")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=400)
    assert not any(th.is_alive() for th in threads) and not errors, errors
    st = Engine(store).study(sid)
    assert st["counts"]["COMPLETE"] == n_trials
    assert {t["number"]: t["client_id"] for t in st["trials"]} == {n: c for c, ns in got.items() for n in ns}
    return got


def _check_disjoint(got: dict[str, list[int]], n_trials: int) -> None:
    numbers = [n for ns in got.values() for n in ns]
    assert sorted(numbers) == list(range(n_trials))  # each trial handed to exactly one client, none lost


def test_eight_threads_batch_asking_on_sqlite_never_share_a_trial(ws) -> None:
    _check_disjoint(_hammer(None, 96, 5), 96)


@pytest.mark.services
def test_eight_threads_batch_asking_on_postgresql_never_share_a_trial(ws, pg_database) -> None:
    _check_disjoint(_hammer(pg_database(), 96, 5), 96)


@pytest.mark.slow
def test_batch_clients_of_two_service_processes_never_share_a_trial(servers) -> None:
    from roost.tune.client import Client

    one, two = servers(), servers()
    n_trials = 80
    sid = Client(one.url).create_study(SPACE, sampler="tpe", seed=2, max_trials=n_trials, lease_s=600)
    got: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    gate = threading.Barrier(8)

    def worker(i: int) -> None:
        try:
            with Client((one if i % 2 else two).url, client_id=f"c{i}") as c:
                mine = got.setdefault(c.client_id, [])
                gate.wait(timeout=120)
                while trials := c.ask(sid, n=4):
                    mine.extend(t.number for t in trials)
                    c.tell_many(sid, [(t.number, t.params["x"]) for t in trials])
                    c.tell_many(sid, [(t.number, t.params["x"]) for t in trials])  # a retry is harmless
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=400)
    assert not any(th.is_alive() for th in threads) and not errors, errors
    _check_disjoint(got, n_trials)
    st = Client(one.url).study(sid)
    assert st["counts"]["COMPLETE"] == n_trials
    assert all(t["value"] == t["params"]["x"] for t in st["trials"])
