"""`roost lineage` with torn request logs and bad arguments (issue 30, item 5): the logs are written by the real
serving writer (roost.serve.reqlog.RequestLogger), then an empty file, a text file and a cut-short copy are added."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest


def _logs(folder: Path) -> list[str]:
    """Three files of two requests each ('7-0' … '7-5'), then three unreadable ones beside them."""
    from roost.serve.reqlog import RequestLogger

    pkg = SimpleNamespace(inputs=[SimpleNamespace(name="x")], outputs=[SimpleNamespace(name="probability")])
    model = SimpleNamespace(name="m", version="1", package=pkg)
    rl = RequestLogger(folder, rate=1.0, flush_s=60, rotate_rows=1)
    for k in range(3):
        for i in range(2):
            x = np.array([float(k), float(i)], np.float32)
            rl.maybe_log(model, "v2", {"x": x}, {"probability": x / 10}, 0.001, request_id=f"7-{2 * k + i}")
        rl.flush()
    rl.close()
    real = sorted(folder.rglob("*.parquet"))
    assert len(real) == 3
    day = real[0].parent
    (day / "empty.parquet").write_bytes(b"")
    (day / "garbage.parquet").write_text("not parquet\n")
    data = real[1].read_bytes()
    (day / "torn.parquet").write_bytes(data[: len(data) // 2])
    return [str(f) for f in real]


def test_request_found_beside_torn_files_and_they_are_named(ws, cli, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    _logs(logs)
    for rid in ("7-0", "7-3", "7-5"):
        code, out, err = cli("lineage", rid, "--log-dir", str(logs))
        assert code == 0, err
        assert f"request {rid}" in out
        assert "skipped 3 unreadable files" in out
        for part in ("empty.parquet (empty)", "garbage.parquet (not Parquet)", "torn.parquet (truncated)"):
            assert part in out, out
    code, out, _ = cli("lineage", "7-4", "--log-dir", str(logs), "--json")
    got = json.loads(out)
    assert got["request"]["rows"] == 2 and got["request"]["version"] == "1"
    assert sorted(s["reason"] for s in got["skipped_files"]) == ["empty", "not Parquet", "truncated"]
    code, _out, err = cli("lineage", "7-99", "--log-dir", str(logs))
    assert code == 2 and "not a request id" in err and "skipped 3 unreadable files" in err


def test_every_log_file_unreadable_is_one_clear_error(ws, cli, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    for f in _logs(logs):
        Path(f).write_bytes(b"PAR1")
    code, _out, err = cli("lineage", "7-1", "--log-dir", str(logs))
    assert code == 2 and "none of the 6 log file(s)" in err and "(truncated)" in err, err


def test_log_dir_that_is_a_file_or_missing_is_named(ws, cli, tmp_path: Path) -> None:
    text = tmp_path / "passwd"
    text.write_text("root:x:0:0\n")
    for bad in (str(text), str(tmp_path / "nope")):
        code, _out, err = cli("lineage", "7-1", "--log-dir", bad)
        assert code == 2 and "--log-dir" in err and bad in err, err


def test_log_dir_proc_is_a_clean_error(ws) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "roost", "lineage", "7-1", "--log-dir", "/proc"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2 and "/proc" in res.stderr and "Traceback" not in res.stderr, res.stderr


@pytest.mark.parametrize("digits", [31, 40, 5000])
def test_huge_version_numbers_are_refused_not_overflowed(ws, cli, digits: int) -> None:
    from roost.registry import api

    with api.start_run() as run:
        (run.artifact_dir / "model").mkdir()
        (run.artifact_dir / "model" / "signature.json").write_text("{}")
    api.register_model(run.id, "bc")
    code, _out, err = cli("lineage", "bc/" + "9" * digits)
    assert code == 2 and ("bad model reference" in err or "no version" in err), err
    assert len(err) < 1000
