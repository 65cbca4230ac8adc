"""Compaction of the push log: training_set is the same brute-force PIT join before and after, a reader that sees
the merged file and the merged-away ones together gets the same rows, and pushes during compaction lose nothing."""

from __future__ import annotations

import glob
import shutil
import threading

import numpy as np
from push_helpers import all_rows
from test_fs_push import _check_offline, _check_online, _pushes, _setup


def _files(ws, view="clicks"):
    return sorted(glob.glob(str(ws.root / ".roost" / "features" / "push" / view / "day=*" / "*.parquet")))


def _push_all(pushes):
    from roost.features import push

    for p in pushes:
        push("clicks", p)
        push("clicks_ttl", p)


def test_compact_keeps_training_set_and_leaves_one_file_per_day(fws):
    from roost.features.push_compact import compact

    rng, batch = _setup(fws, 5)
    pushes = _pushes(rng, batch, 8)
    _push_all(pushes)
    held = all_rows(batch, pushes)
    state = rng.bit_generator.state
    _check_offline(held, rng)  # before
    before = _files(fws)
    days = {f.split("day=")[1].split("/")[0] for f in before}
    assert len(before) > len(days)

    for view in ("clicks", "clicks_ttl"):
        st = compact(view, grace_s=0)
        assert st["files_merged"] == len(before) and st["files_deleted"] == len(before)
        assert st["rows_dropped"] > 0  # re-pushed rows: only the last push kept
    after = _files(fws)
    assert len(after) == len(days)
    rng.bit_generator.state = state  # the same entity frame
    _check_offline(held, rng)
    _check_online(all_rows(batch.head(0), pushes))


def test_reader_seeing_old_and_merged_files_together_gets_the_same_rows(fws):
    """Between the merged file's rename and the manifest's, a reader lists both: duplicates must collapse."""
    from roost.features.push_compact import compact

    rng, batch = _setup(fws, 6)
    pushes = _pushes(rng, batch, 6)
    _push_all(pushes)
    held = all_rows(batch, pushes)
    old = _files(fws)
    compact("clicks", grace_s=3600)
    compact("clicks_ttl", grace_s=3600)
    assert set(old) <= set(_files(fws))  # kept for readers that listed them (grace period)
    state = rng.bit_generator.state
    _check_offline(held, rng)  # the manifest hides the merged-away files
    manifest = fws.root / ".roost" / "features" / "push"
    for view in ("clicks", "clicks_ttl"):
        shutil.move(manifest / view / "superseded.json", fws.root / f"{view}.json")  # as if not yet written
    rng.bit_generator.state = state
    _check_offline(held, rng)


def test_pushes_during_compaction_lose_nothing(fws):
    from roost.features import push
    from roost.features.push_compact import compact

    rng, batch = _setup(fws, 7)
    pushes = _pushes(rng, batch, 30)
    done = threading.Event()
    errors: list[BaseException] = []

    def pusher():
        try:
            for p in pushes:
                push("clicks", p)
                push("clicks_ttl", p)
        except BaseException as e:  # reported by the test
            errors.append(e)
        finally:
            done.set()

    t = threading.Thread(target=pusher)
    t.start()
    runs = 0
    while not done.is_set() or runs < 2:
        compact("clicks", grace_s=0)
        compact("clicks_ttl", grace_s=0)
        runs += 1
    t.join()
    assert not errors
    assert runs >= 2
    held = all_rows(batch, pushes)
    _check_offline(held, np.random.default_rng(1))
    _check_online(all_rows(batch.head(0), pushes))


def test_cli_compact(fws, cli):
    """`roost features compact VIEW --grace 0 --json` merges and reports; a day without pushes is a clear error."""
    import json

    rng, batch = _setup(fws, 8)
    pushes = _pushes(rng, batch, 4)
    _push_all(pushes)
    n = len(_files(fws))
    code, out, err = cli("features", "compact", "clicks", "--grace", "0", "--json")
    assert code == 0, err
    st = json.loads(out)
    assert st["files_merged"] == n == st["files_deleted"] and len(_files(fws)) == st["days"]
    code, _, err = cli("features", "compact", "clicks", "--day", "1999-01-01")
    assert code == 2 and "1999-01-01" in err
    code, _, err = cli("features", "compact", "clickz")
    assert code == 2 and "clicks" in err  # did you mean
    _check_offline(all_rows(batch, pushes), np.random.default_rng(2))
