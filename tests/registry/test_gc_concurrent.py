"""Two `roost gc` at once (#30 item 6): both end 0, the store stays consistent, nothing is removed that should stay.

A gc that starts while another is part-way resumes the other's batch (runs marked 'purging' look like leftovers of
an interrupted gc), so both remove the same folders. The loser of each race used to crash with FileNotFoundError
(`rmdir` in retention.remove_artifacts); and a gc that planned a batch after the other had already unlinked its
model versions found nothing to keep and removed the files those versions are loaded from.

Every test runs on SQLite and PostgreSQL (the `ws` fixture).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import roost
from roost import artifacts
from roost.registry import retention

_GC = r"""
import json, sys
import roost
print("ready", flush=True)
sys.stdin.readline()
rep = roost.gc(batch_size=int(sys.argv[1]))
print(json.dumps({"run_ids": rep.run_ids, "artifacts_removed": rep.artifacts_removed}), flush=True)
"""


def _runs(n: int, registered_every: int = 2) -> tuple[list[str], dict[str, Path], list[str]]:
    """n runs with nested artifact folders; every `registered_every`-th one a model version. Returns (ids, artifact
    roots, 'name/version' of the versions)."""
    ids, roots, versions = [], {}, []
    for i in range(n):
        with roost.start_run(experiment="gc", params={"i": i}) as r:
            root = r.artifact_dir
            for sub in ("model", "plots/a", "plots/b", "data"):
                (root / sub).mkdir(parents=True, exist_ok=True)
            (root / "model" / "model.onnx").write_bytes(b"onnx-%d" % i)
            (root / "model" / "roost-model.yaml").write_text("framework: torch\n")
            (root / "plots" / "a" / "loss.png").write_bytes(b"png")
            (root / "plots" / "b" / "auc.png").write_bytes(b"png")
            (root / "data" / "rows.bin").write_bytes(os.urandom(32))
            ids.append(r.id)
        roots[r.id] = artifacts.local_path(roost.get_run(r.id)["artifact_uri"])
        if i % registered_every == 0:
            versions.append(f"m{i}/{roost.register_model(r.id, f'm{i}', 'model').version}")
    return ids, roots, versions


def _check_after_gc(doomed: list[str], kept: list[str], roots: dict[str, Path], versions: list[str]) -> None:
    """Gone: every row and file of the doomed runs except their model versions' packages. Kept: everything else."""
    left = {r["run_id"] for r in roost.search_runs(limit=None, stages=retention.STAGES)}
    assert left == set(kept)
    for rid in kept:
        assert sorted(p.relative_to(roots[rid]).as_posix() for p in roots[rid].rglob("*") if p.is_file()) == [
            "data/rows.bin",
            "model/model.onnx",
            "model/roost-model.yaml",
            "plots/a/loss.png",
            "plots/b/auc.png",
        ]
    packages = set()
    for v in versions:
        info = roost.resolve_model(v)
        packages.add(Path(info.local_path).parent)
        assert (Path(info.local_path) / "model.onnx").read_bytes() == b"onnx-" + v.split("/")[0][1:].encode()
        if info.run_id is None:  # its run was gc'd: only the package is left of the run's folder
            root = Path(info.local_path).parent
            assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
                "model",
                "model/model.onnx",
                "model/roost-model.yaml",
            ]
    for rid in doomed:
        if roots[rid] not in packages:  # no model version: nothing of the run is left
            assert not roots[rid].exists() and not roots[rid].parent.exists(), rid


def _gc_process(ws: Any, batch: int) -> subprocess.Popen[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}, "ROOST_WORKSPACE": str(ws.root)}
    if os.environ.get("ROOST_STORE_URL"):  # the PostgreSQL variant of `ws` sets the store by this variable
        env["ROOST_STORE_URL"] = os.environ["ROOST_STORE_URL"]
    return subprocess.Popen(
        [sys.executable, "-c", _GC, str(batch)],
        cwd=ws.root,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_gc_processes_at_once_both_succeed_and_share_the_work(ws) -> None:
    """Two real gc processes released together (a barrier) over 30 deleted runs, in batches of 1."""
    ids, roots, versions = _runs(36, registered_every=3)
    doomed, kept = ids[:30], ids[30:]
    roost.delete_runs(doomed, force=True)
    procs = [_gc_process(ws, 1) for _ in range(2)]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], [err[-1500:] for _, err in outs]
    assert not any("Traceback" in err for _, err in outs), [err[-1500:] for _, err in outs]
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    a, b = (set(r["run_ids"]) for r in reports)
    assert not a & b and a | b == set(doomed)  # each run reported once, by the gc that removed its rows
    assert sum(r["artifacts_removed"] for r in reports) == len(doomed)
    _check_after_gc(doomed, kept, roots, versions)


def test_gc_resuming_a_batch_another_gc_is_removing_skips_what_is_gone(ws, monkeypatch) -> None:
    """Deterministic interleaving: gc A has marked its batch and emptied a folder; before A's rmdir, gc B (started
    meanwhile) resumes A's batch to the end. A then finds the folder gone: it skips it and ends normally."""
    ids, roots, versions = _runs(4, registered_every=1)
    doomed, kept = ids[:3], ids[3:]
    roost.delete_runs(doomed, force=True)
    real_rmdir = Path.rmdir
    b_report: list[retention.GcReport] = []

    def rmdir_after_the_other_gc(self: Path) -> None:
        if not b_report:  # A's first rmdir: gc B runs now, from start to end
            b_report.append(retention.GcReport())
            b_report[0] = roost.gc(batch_size=1)
        real_rmdir(self)

    monkeypatch.setattr(Path, "rmdir", rmdir_after_the_other_gc)
    a = roost.gc(batch_size=1)
    monkeypatch.setattr(Path, "rmdir", real_rmdir)
    b = b_report[0]
    assert b.resumed == 1  # B took A's batch in flight for an interrupted gc's
    assert not set(a.run_ids) & set(b.run_ids) and set(a.run_ids) | set(b.run_ids) == set(doomed)
    assert a.artifacts_removed + b.artifacts_removed == len(doomed)
    _check_after_gc(doomed, kept, roots, versions)


def test_a_gc_planning_after_the_other_unlinked_the_model_versions_keeps_their_files(ws, monkeypatch) -> None:
    """Deterministic interleaving: gc B reads A's batch as leftovers; A then finishes it (removing the rows and
    unlinking the model version from the run) before B plans which files to keep. B must still keep the version's
    package (it found no version by run id and removed the whole folder)."""
    ids, roots, versions = _runs(2, registered_every=1)
    doomed, kept = ids[:1], ids[1:]
    roost.delete_runs(doomed, force=True)
    a_started, b_read, a_done = threading.Event(), threading.Event(), threading.Event()
    real_remove, real_leftovers = retention.remove_artifacts, retention._leftovers
    errors: list[BaseException] = []
    a_report: list[retention.GcReport] = []

    def remove_in_a(run_id: str, uri: str, keep: list[str]) -> None:
        if threading.current_thread().name == "gc-a" and not a_started.is_set():
            a_started.set()
            assert b_read.wait(60)
        real_remove(run_id, uri, keep)

    def leftovers_in_b(store: Any) -> list[tuple[str, str]]:
        out = real_leftovers(store)
        if threading.current_thread().name != "gc-a":
            b_read.set()
            assert a_done.wait(60)  # A removes the files and rows of its batch now
        return out

    def gc_a() -> None:
        try:
            a_report.append(roost.gc(batch_size=1))
        except BaseException as exc:
            errors.append(exc)
        finally:
            a_done.set()

    monkeypatch.setattr(retention, "remove_artifacts", remove_in_a)
    monkeypatch.setattr(retention, "_leftovers", leftovers_in_b)
    t = threading.Thread(target=gc_a, name="gc-a", daemon=True)
    t.start()
    assert a_started.wait(60)
    b = roost.gc(batch_size=1)
    t.join(60)
    assert not errors, errors
    _check_after_gc(doomed, kept, roots, versions)
    assert a_report[0].run_ids == doomed and (b.run_ids, b.resumed) == ([], 0)  # B found it finished


def test_two_gc_removing_each_others_parent_runs_do_not_deadlock(ws, monkeypatch) -> None:
    """gc A's batch holds parent P1 and child C2, gc B's holds P2 and C1 (C1 a child of P1, C2 of P2). Both reach
    their row deletes together (each waits up to 3 s for the other there): each unlinks the other's child, then
    deletes its own runs. PostgreSQL found a deadlock and aborted one gc; both must finish."""
    if not ws.store_url.startswith("postgresql"):
        pytest.skip("SQLite's write lock lets one gc write at a time")
    from sqlalchemy import event, text

    from roost.registry.store import default_store

    def ended(parent: str | None = None) -> str:
        run = roost.start_run(experiment="gc", parent_run_id=parent)
        run.end()
        return str(run.id)

    p1, p2 = ended(), ended()
    c1, c2 = ended(p1), ended(p2)
    order = [p1, c2, p2, c1]  # the first two go to one gc, the last two to the other
    roost.delete_runs(order, force=True)
    engine = default_store().engine
    with engine.begin() as c:
        for i, rid in enumerate(order):
            minutes = {"m": 10 - i, "r": rid}
            c.execute(text("UPDATE runs SET hidden_at = now() - make_interval(mins => :m) WHERE id = :r"), minutes)
    read_leftovers = threading.Barrier(2, timeout=60)
    arrived = {name: threading.Event() for name in ("gc-a", "gc-b")}
    real_leftovers = retention._leftovers

    def leftovers_together(store: Any) -> list[tuple[str, str]]:
        out = real_leftovers(store)
        read_leftovers.wait()  # neither sees the other's batch as leftovers: two disjoint batches
        return out

    def meet_at_unlink(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        me = threading.current_thread().name
        if me in arrived and statement.lstrip().upper().startswith("UPDATE RUNS SET PARENT_RUN_ID"):
            arrived[me].set()
            other = "gc-b" if me == "gc-a" else "gc-a"
            arrived[other].wait(3)

    reports: dict[str, retention.GcReport] = {}
    errors: list[BaseException] = []

    def run_gc() -> None:
        try:
            reports[threading.current_thread().name] = roost.gc(batch_size=2)
        except BaseException as exc:
            errors.append(exc)

    monkeypatch.setattr(retention, "_leftovers", leftovers_together)
    event.listen(engine, "before_cursor_execute", meet_at_unlink)
    try:
        threads = [threading.Thread(target=run_gc, name=n, daemon=True) for n in arrived]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        event.remove(engine, "before_cursor_execute", meet_at_unlink)
    assert not errors, errors
    a, b = (set(r.run_ids) for r in reports.values())
    assert not a & b and a | b == set(order) and {len(a), len(b)} == {2}
    assert roost.search_runs(limit=None, stages=retention.STAGES) == []
