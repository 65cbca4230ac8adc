"""Hostile packages and frames: a corrupt signature.json or model.onnx, a signature that does not match the graph,
a frame that is not a frame, duplicate or datetime columns are RoostErrors with a hint, in Python and in the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from modelpkg_helpers import SIG, expected

from roost.errors import RoostError
from roost.modelpkg import load, load_model

BAD_PACKAGES = {
    "torn signature.json": ("signature.json", '{"task": "binary", "inputs": ['),
    "signature.json without inputs": ("signature.json", '{"task": "binary"}'),
    "signature.json a list": ("signature.json", "[]"),
    "signature.json with a bad dtype": ("signature.json", json.dumps({**SIG, "inputs": [{"name": "x"}]})),
    "torn roost-model.yaml": ("roost-model.yaml", "task: [binary"),
    "roost-model.yaml a list": ("roost-model.yaml", "- 1\n- 2\n"),
    "garbage model.onnx": ("model.onnx", "not an onnx model"),
    "empty model.onnx": ("model.onnx", ""),
    "signature input the graph lacks": (
        "signature.json",
        json.dumps({**SIG, "inputs": [{"name": "xx", "dtype": "float32"}, SIG["inputs"][1]]}),
    ),
}


def _spoil(pkg: Path, tmp_path: Path, case: str) -> Path:
    bad = tmp_path / "bad"
    tmp_path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(pkg, bad)
    name, text = BAD_PACKAGES[case]
    (bad / name).write_text(text)
    return bad


@pytest.mark.parametrize("case", sorted(BAD_PACKAGES))
def test_a_broken_package_is_a_roost_error_naming_the_file(pkg: Path, tmp_path: Path, case: str) -> None:
    bad = _spoil(pkg, tmp_path, case)
    with pytest.raises(RoostError, match=BAD_PACKAGES[case][0].replace(".", r"\.")) as info:
        load_model(bad)
    assert info.value.hint


@pytest.mark.slow
def test_roost_predict_cli_reports_broken_packages_without_a_traceback(ws, pkg: Path, tmp_path: Path) -> None:
    """The real CLI (`python -m roost predict`): exit 2, the file named, a hint, no traceback."""
    data = tmp_path / "in.csv"
    pd.DataFrame({"x": [1.0], "xx": [1.0], "color": ["red"]}).to_csv(data, index=False)
    for i, case in enumerate(["torn signature.json", "garbage model.onnx", "signature input the graph lacks"]):
        bad = _spoil(pkg, tmp_path / str(i), case)
        cmd = [sys.executable, "-m", "roost", "predict", str(bad), "-i", str(data), "-o", str(tmp_path / f"o{i}"), "-q"]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        out = res.stdout + res.stderr
        assert res.returncode == 2, out
        assert "Traceback" not in out and BAD_PACKAGES[case][0] in out and "hint" in out, out


@pytest.mark.parametrize("frame", [None, np.array([[1.0, 2.0]]), "x,color", 3])
def test_predict_wants_a_frame_or_a_dict_of_columns(pkg: Path, frame: object) -> None:
    with pytest.raises(RoostError, match="DataFrame"):
        load(pkg).predict(frame)


def test_a_duplicated_column_is_named(pkg: Path) -> None:
    df = pd.DataFrame([[1.0, 2.0, "red"]], columns=["x", "x", "color"])
    with pytest.raises(RoostError, match=r"'x'.*2 times"):
        load(pkg).predict(df)


@pytest.mark.parametrize(
    "values",
    [
        pd.to_datetime(["2024-01-01"]),
        pd.to_timedelta([1], unit="s"),
        pd.period_range("2024-01", periods=1, freq="M"),
        np.array([1 + 2j]),
    ],
    ids=["datetime", "timedelta", "period", "complex"],
)
def test_a_column_of_dates_or_complex_numbers_is_not_read_as_a_number(pkg: Path, values: object) -> None:
    """pandas would give nanoseconds since 1970 (or drop the imaginary part): a silent wrong score."""
    df = pd.DataFrame({"x": values, "color": ["red"]})
    with pytest.raises(RoostError, match=r"'x'.*float32"):
        load(pkg).predict(df)


def test_unicode_names_and_huge_strings_score(tmp_path: Path) -> None:
    """A unicode input name and a 5 MB category string are data, not errors: scored like any other value."""
    from modelpkg_helpers import tiny_model

    from roost.modelpkg import write_package

    d = tmp_path / "m"
    tiny_model(d)
    write_package(d, SIG, {})
    df = pd.DataFrame({"x": [2.0, 2.0], "color": ["r" * 5_000_000, "red"], "ñame ✓": [1, 2]})
    np.testing.assert_allclose(load(d).predict(df), expected([2.0, 2.0], ["other", "red"]), atol=1e-6)
