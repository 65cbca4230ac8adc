"""One torn request-log file must not block a whole command (issue 30, item 5).

Logs are written by the real writers (roost.serve.reqlog.RequestLogger for request logs, roost.serve.rollout.ShadowLog
for shadow comparisons); then an empty file, a text file named .parquet and a copy cut short (a writer killed
mid-write) are added. Every command still answers, equal to its answer on the clean folder (the reference), and
names the skipped files; when every file is bad, or an argument is bad, it is a RoostError naming it (exit 2).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from roost.errors import RoostError

T0 = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")
DEFS = """from datetime import timedelta
from roost.features import Entity, Source, FeatureView

user = Entity("user", {"user_id": "int64"})
src = Source("uv_src", path="data/uv.parquet", event_time="et")
uv = FeatureView("uv", user, src, ttl=timedelta(days=36500), fields={"v_f": "float64"})
"""


def tear(folder: Path) -> list[str]:
    """Add an empty file, a text file and a cut-short copy of a real log file next to the real ones."""
    real = sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith("."))
    day = real[0].parent
    (day / "empty.parquet").write_bytes(b"")
    (day / "garbage.parquet").write_text("not parquet at all\n" * 10)
    data = real[0].read_bytes()
    (day / "torn.parquet").write_bytes(data[: len(data) // 2])
    return ["empty.parquet", "garbage.parquet", "torn.parquet"]


def clean_copy(folder: Path, dest: Path) -> Path:
    shutil.copytree(folder, dest)
    return dest


def request_logs(folder: Path, n_requests: int = 30) -> None:
    """Requests logged by the real RequestLogger (a model with two numeric inputs), three files."""
    from roost.serve.reqlog import RequestLogger

    pkg = SimpleNamespace(
        inputs=[SimpleNamespace(name="a"), SimpleNamespace(name="b")], outputs=[SimpleNamespace(name="probability")]
    )
    model = SimpleNamespace(name="m", version="1", package=pkg)
    rng = np.random.default_rng(0)
    rl = RequestLogger(folder, rate=1.0, flush_s=60, rotate_rows=1)  # every flush finishes a file
    for _ in range(3):
        for _ in range(n_requests):
            x = rng.normal(size=(4,)).astype(np.float32)
            rl.maybe_log(model, "v2", {"a": x, "b": x * 2}, {"probability": np.abs(x)}, 0.001)
        rl.flush()
    rl.close()


def entity_logs(ws: Any, folder: Path) -> None:
    """Entity-id requests logged by the real RequestLogger for a feature view materialised online (skew input)."""
    from roost.features import apply, materialize, open_online_store
    from roost.serve.reqlog import RequestLogger

    (ws.root / "data").mkdir(exist_ok=True)
    ids = list(range(8))
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array(ids, pa.int64()),
                "et": pa.array([T0] * 8, TS),
                "v_f": pa.array([float(i) / 2 for i in ids]),
            }
        ),
        ws.root / "data" / "uv.parquet",
    )
    (ws.root / "features").mkdir(exist_ok=True)
    (ws.root / "features" / "defs.py").write_text(DEFS)
    apply()
    materialize(start=T0 - timedelta(days=1), end=T0 + timedelta(hours=1))
    reader = open_online_store().reader("uv", {"user_id": "int64"}, {"v_f": "float64"}, with_time=True)
    (v_f, et) = reader.read([ids])
    pkg = SimpleNamespace(
        inputs=[SimpleNamespace(name="v_f")],
        outputs=[SimpleNamespace(name="probability")],
        feature_refs=["uv:v_f"],
        entities=["user_id"],
    )
    model = SimpleNamespace(name="m", version="1", package=pkg)
    rl = RequestLogger(folder, rate=1.0, flush_s=60, rotate_rows=1)  # every flush finishes a file
    for _ in range(2):
        for i in ids:
            rl.maybe_log(
                model,
                "v2",
                {"v_f": np.array([v_f[i]], np.float32)},
                {"probability": np.array([0.5])},
                0.001,
                lineage={"user_id": np.array([i]), "_fs_event_time.uv": np.array([et[i]], "datetime64[us]")},
            )
        rl.flush()
    rl.close()


def shadow_logs(folder: Path) -> None:
    """Comparison rows written by the real ShadowLog, three files."""
    from roost.serve.rollout import ShadowLog

    log = ShadowLog(folder, flush_rows=10**9)
    for k in range(3):
        log.add(
            [
                {
                    "_ts": T0 + timedelta(minutes=k * 10 + i),
                    "_request_id": f"q{k}-{i}",
                    "_row": 0,
                    "model": "m",
                    "primary_version": "1",
                    "shadow_version": "2",
                    "output": "probability",
                    "primary": [0.1 * i],
                    "shadow": [0.1 * i + 0.01],
                    "abs_diff": 0.01,
                    "primary_label": "0",
                    "shadow_label": "0",
                    "agree": True,
                    "primary_latency_ms": 1.0 + i,
                    "shadow_latency_ms": 2.0 + i,
                }
                for i in range(5)
            ]
        )
        log.flush()


def _said_skipped(text: str, names: list[str]) -> None:
    assert "skipped 3 unreadable files" in text, text
    for n, why in zip(names, ("empty", "not Parquet", "truncated")):
        assert f"{n} ({why})" in text, text


# -- drift (request logs as the current data) ------------------------------------------------------------------


def test_drift_on_logs_skips_torn_files_and_equals_the_clean_answer(ws, tmp_path: Path, cli) -> None:
    logs = tmp_path / "logs"
    request_logs(logs)
    clean = clean_copy(logs, tmp_path / "clean")
    names = tear(logs)
    ref = next(clean.rglob("*.parquet"))
    code, out, err = cli("monitor", "drift", "-r", str(ref), "-c", str(logs), "--json")
    assert code in (0, 1), err
    got = json.loads(out)
    _said_skipped(" ".join(got["notes"]), names)
    code, out, err = cli("monitor", "drift", "-r", str(ref), "-c", str(clean), "--json")
    want = json.loads(out)
    assert got["rows_current"] == want["rows_current"] == 3 * 30 * 4
    assert [f["score"] for f in got["features"]] == [f["score"] for f in want["features"]]


def test_python_api_returns_and_logs_the_skipped_files(tmp_path: Path, caplog) -> None:
    from roost.monitor.sources import load_source

    logs = tmp_path / "logs"
    request_logs(logs)
    tear(logs)
    src = load_source(str(logs))
    assert len(src.frame) == 3 * 30 * 4
    assert any("skipped 3 unreadable files" in n for n in src.notes)
    assert sum("torn.parquet" in r.getMessage() for r in caplog.records) == 1


def test_every_file_torn_is_one_clear_error(tmp_path: Path, cli) -> None:
    logs = tmp_path / "logs"
    request_logs(logs)
    for f in logs.rglob("*.parquet"):
        f.write_bytes(b"")
    code, _out, err = cli("monitor", "skew", str(logs))
    assert code == 2 and "none of the 3 log file(s)" in err and "(empty)" in err
    ref = tmp_path / "ref.parquet"
    pq.write_table(pa.table({"a": [0.5, 1.0], "b": [1.0, 2.0]}), ref)
    code, _out, err = cli("monitor", "drift", "-r", str(ref), "-c", str(logs))
    assert code == 2 and "none of the 3 log file(s)" in err


# -- skew --------------------------------------------------------------------------------------------------------


def test_skew_skips_torn_files_and_equals_the_clean_answer(ws, tmp_path: Path, cli) -> None:
    logs = tmp_path / "logs"
    entity_logs(ws, logs)
    clean = clean_copy(logs, tmp_path / "clean")
    names = tear(logs)
    code, out, err = cli("monitor", "skew", str(logs), "--max-mismatch", "1", "--json")
    assert code == 0, err
    got = json.loads(out)
    _said_skipped(" ".join(got["notes"]), names)
    assert {s["reason"] for s in got["skipped_files"]} == {"empty", "not Parquet", "truncated"}
    code, out, _ = cli("monitor", "skew", str(clean), "--max-mismatch", "1", "--json")
    want = json.loads(out)
    assert got["rows_compared"] == want["rows_compared"] == 16 and got["files"] == want["files"] == 2
    assert [f["counts"] for f in got["features"]] == [f["counts"] for f in want["features"]]
    code, out, _ = cli("monitor", "skew", str(logs), "--max-mismatch", "1")
    assert code == 0 and "skipped 3 unreadable files" in out


# -- shadow ------------------------------------------------------------------------------------------------------


def test_shadow_skips_torn_files_and_equals_the_clean_answer(tmp_path: Path, cli) -> None:
    logs = tmp_path / "logs"
    shadow_logs(logs)
    clean = clean_copy(logs, tmp_path / "clean")
    names = tear(logs)
    code, out, err = cli("monitor", "shadow", str(logs), "--json")
    assert code == 0, err
    got = json.loads(out)
    code, out, _ = cli("monitor", "shadow", str(clean), "--json")
    want = json.loads(out)
    assert got["pairs"] == want["pairs"] and got["pairs"][0]["rows"] == 15
    assert got["files"] == want["files"] == 3
    _said_skipped(" ".join(got["notes"]), names)
    code, out, _ = cli("monitor", "shadow", str(logs))
    assert code == 0 and "skipped 3 unreadable files" in out


# -- bad arguments -----------------------------------------------------------------------------------------------


def test_a_file_that_is_not_a_log_folder(tmp_path: Path, cli) -> None:
    text = tmp_path / "passwd"
    text.write_text("root:x:0:0:root:/root:/bin/bash\n")
    for args in (("monitor", "skew", str(text)), ("monitor", "shadow", str(text))):
        code, _out, err = cli(*args)
        assert code == 2 and str(text) in err, (args, err)


@pytest.mark.parametrize("cmd", ["skew", "shadow", "drift"])
def test_since_that_is_not_a_time_names_the_option(tmp_path: Path, cli, cmd: str) -> None:
    logs = tmp_path / "logs"
    request_logs(logs, n_requests=2)
    shadow_logs(logs)
    args = {
        "skew": ["monitor", "skew", str(logs)],
        "shadow": ["monitor", "shadow", str(logs)],
        "drift": ["monitor", "drift", "-r", str(next(logs.rglob("*.parquet"))), "-c", str(logs / "m")],
    }[cmd]
    code, _out, err = cli(*args, "--since", "yesterday-ish")
    assert code == 2 and "--since 'yesterday-ish' is not a time" in err and "2024-01-08" in err, err
    code, _out, err = cli(*args, "--until", "NaT")
    assert code == 2 and "--until 'NaT' is not a time" in err, err


def test_out_that_cannot_be_written_fails_before_the_work_and_leaves_nothing(ws, tmp_path: Path, cli) -> None:
    logs = tmp_path / "logs"
    entity_logs(ws, logs)
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    for out in ("/proc/x.html", str(blocker / "x.html")):
        code, _out, err = cli("monitor", "skew", str(logs), "--html", out)
        assert code == 2 and "--html" in err and out in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "logs", "ws"]  # ws: the workspace fixture
    assert blocker.read_text() == "x"


def test_proc_is_no_log_folder_and_is_not_walked() -> None:
    """`roost monitor skew /proc` walked all of /proc (`**`) for minutes; the layout is two folders deep."""
    res = subprocess.run(
        [sys.executable, "-m", "roost", "monitor", "skew", "/proc"], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 2 and "/proc" in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_library_errors_are_roost_errors(tmp_path: Path) -> None:
    from roost.monitor.shadow import shadow_summary
    from roost.monitor.skew import skew

    with pytest.raises(RoostError, match="since"):
        skew(tmp_path, since="yesterday-ish")
    with pytest.raises(RoostError, match="since"):
        shadow_summary(tmp_path, since="yesterday-ish")
