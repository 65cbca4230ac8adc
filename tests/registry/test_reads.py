"""The registry's typed read functions (#32 item 3): what the UI and the tuning engine read instead of the tables,
checked against what the test itself wrote (counts, points) and against each other (SQL vs Python thinning)."""

from __future__ import annotations

import math

import roost
from roost.registry import curves, objects, reads
from roost.registry.paging import Count
from roost.registry.store import default_store


def test_experiments_with_counts_are_typed_and_count_active_runs(ws):
    for exp, n in (("a", 3), ("b", 1)):
        for i in range(n):
            with roost.start_run(experiment=exp, name=f"{exp}{i}"):
                pass
    got = {e.name: e for e in reads.experiments_with_counts()}
    assert got["a"].runs == Count(3) and got["b"].runs == Count(1)
    assert reads.experiment_names()[-2:] == ["a", "b"]
    assert reads.experiment_ids(["b", "a"]) == [got["b"].id, got["a"].id]
    sl = reads.runs_slice(experiments=["a"], per_page=2)
    assert sl.count == Count(3) and len(sl.runs) == 2 and sl.page == 1 and sl.children == []
    assert {r["experiment"] for r in sl.runs} == {"a"}


def test_curves_thin_to_evenly_spread_real_points_in_sql_and_in_python_alike(ws):
    n, m = 61, 7  # (n-1)/(m-1) whole: the single-run rule (round) and the many-run one (floor) agree
    with roost.start_run(experiment="c") as run:
        for s in range(n):
            run.log_metric("loss", s / 10, step=s)
    keep = [math.floor(i * (n - 1) / (m - 1)) for i in range(m)]  # the documented positions: first and last kept
    want_values = [s / 10 for s in keep]
    one = curves.metric_curves(run.id, max_points=m)["loss"]
    many = curves.metric_curves_many([run.id, "no-such-run"], max_points=m)
    assert one.steps == tuple(keep) and list(one.values) == want_values
    assert many[run.id]["loss"] == one and many["no-such-run"] == {}


def test_objects_in_a_transaction_and_prefixes_with_wildcards_taken_literally(ws):
    st = default_store()
    with st.write() as s:
        objects.put(s, "k", "a_b", {"v": 1}, new=True)
        objects.put(s, "k", "axb", {"v": 2}, new=True)
        objects.put(s, "k", "a_b", {"v": 3})  # an update
        objects.put(s, "k", "f/0000002", {"n": 2}, new=True)
        objects.put(s, "k", "f/0000001", {"n": 1}, new=True)
        objects.put(s, "k", "f0", {"n": 0}, new=True)  # not under f/
    with st.read() as s:
        assert objects.get(s, "k", "a_b") == {"v": 3} and objects.get(s, "k", "nope") is None
        assert objects.names_like(s, "k", "a_") == ["a_b"]  # "_" is not a wildcard
        assert sorted(objects.names_like(s, "k", "a", limit=5)) == ["a_b", "axb"]
        assert objects.names_like(s, "k", "") == []
        assert objects.specs_under(s, "k", "f") == [{"n": 1}, {"n": 2}]
    assert st.get_object("k", "axb") == {"v": 2}  # the same rows as the store's one-call form
