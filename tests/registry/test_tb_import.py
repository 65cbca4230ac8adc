"""`roost runs import-tb`: event files written by PyTorch's SummaryWriter (an independent writer) read back as runs
whose metric histories equal what was written (float32, as TensorBoard stores it), with hparams as params; a second
import of the same folders adds nothing."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tensorboard")


def _write(logdir: Path) -> dict[str, dict[str, list[tuple[int, float]]]]:
    from torch.utils.tensorboard import SummaryWriter

    written: dict[str, dict[str, list[tuple[int, float]]]] = {}
    rng = np.random.default_rng(0)
    for name, steps in (("lr0.1", 50), ("deep/lr0.01", 30)):
        w = SummaryWriter(str(logdir / name))
        series: dict[str, list[tuple[int, float]]] = {"loss": [], "acc/val": []}
        for s in range(steps):
            loss, acc = float(rng.random() * 3), float(rng.random())
            w.add_scalar("loss", loss, s)
            series["loss"].append((s, loss))
            if s % 10 == 0:
                w.add_scalar("acc/val", acc, s)
                series["acc/val"].append((s, acc))
        w.close()
        written[name] = series
    return written


def test_import_equals_what_summary_writer_wrote_and_is_idempotent(ws: Any, cli: Any, tmp_path: Path) -> None:
    import roost
    from roost.registry.api import metric_history

    logdir = tmp_path / "tb"
    written = _write(logdir)
    code, out, err = cli("runs", "import-tb", str(logdir), "--experiment", "tb", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert len(report["runs"]) == 2 and report["metric_points"] == sum(
        len(v) for s in written.values() for v in s.values()
    )
    runs = {r["name"]: r for r in roost.search_runs(experiment="tb", limit=None)}
    assert set(runs) == set(written)
    for name, series in written.items():
        for key, pts in series.items():
            got = [(p["step"], p["value"]) for p in metric_history(runs[name]["run_id"], key)]
            assert [s for s, _ in got] == [s for s, _ in pts]
            assert all(math.isclose(a, float(np.float32(b)), rel_tol=1e-7) for (_, a), (_, b) in zip(got, pts))

    again = json.loads(cli("runs", "import-tb", str(logdir), "--experiment", "tb", "--json")[1])
    assert again["runs"] == [] and len(again["skipped"]) == 2
    assert len(roost.search_runs(experiment="tb", limit=None)) == 2


def test_hparams_become_params(ws: Any, tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    import roost
    from roost.registry.backend import default_store
    from roost.registry.tb_import import import_tensorboard

    w = SummaryWriter(str(tmp_path / "hp"))
    w.add_hparams({"lr": 0.05, "layers": 3, "opt": "adam"}, {"hparam/score": 0.8}, run_name="trial")
    w.close()
    import_tensorboard(tmp_path / "hp", default_store(), experiment="hp")
    runs = {r["name"]: r for r in roost.search_runs(experiment="hp", limit=None)}
    assert runs["trial"]["params"] == {"lr": 0.05, "layers": 3.0, "opt": "adam"}  # TensorBoard keeps numbers as floats
    assert math.isclose(runs["trial"]["metrics"]["hparam/score"], 0.8, rel_tol=1e-6)


def test_a_folder_without_event_files_is_a_clear_error(ws: Any, cli: Any, tmp_path: Path) -> None:
    code, _, err = cli("runs", "import-tb", str(tmp_path))
    assert code == 2 and "no TensorBoard event files" in err
    code, _, err = cli("runs", "import-tb", str(tmp_path / "missing"))
    assert code == 2 and "is not a folder" in err
