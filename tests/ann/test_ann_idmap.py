"""IntIdMap (sorted arrays + change dict) behaves like a dict through inserts, moves, removals and merges."""

from __future__ import annotations

import numpy as np

from roost.ann.idmap import IntIdMap


def test_int_id_map_matches_a_dict() -> None:
    rng = np.random.default_rng(0)
    m, ref = IntIdMap(), {}
    next_slot = 0
    for step in range(300):
        op = rng.integers(0, 3)
        n = int(rng.choice([1, 5, 100, 5000]))
        ids = np.unique(rng.integers(-(10**12), 10**12, n) if step % 7 == 0 else rng.integers(0, 20_000, n))
        if op < 2:
            slots = np.arange(next_slot, next_slot + len(ids))
            next_slot += len(ids)
            m.set(ids, slots)
            ref.update(zip(ids.tolist(), slots.tolist()))
        else:
            m.remove(ids)
            for v in ids.tolist():
                ref.pop(v, None)
        probe = np.concatenate([ids, rng.integers(0, 20_000, 200), np.array(list(ref)[:50], np.int64)])
        assert m.get(probe).tolist() == [ref.get(v, -1) for v in probe.tolist()], step
    assert len(m.keys) + len(m.delta) >= len(ref)
