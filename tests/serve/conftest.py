"""Fixtures for the serving tests: model packages made here with skl2onnx, and a shared real server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for `servekit` (pytest may use importlib import mode)

from servekit import Server, breast_cancer, iris_package, logreg_package, strings_package


@pytest.fixture(scope="session")
def pkgs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Packages: bc (binary, 30 inputs), bc2 (another binary model), iris (multiclass), strings (string input)."""
    root = tmp_path_factory.mktemp("pkgs")
    return {
        "bc": logreg_package(root / "bc"),
        "bc2": logreg_package(root / "bc2", C=0.01, flip=True),
        "iris": iris_package(root / "iris"),
        "strings": strings_package(root / "strings"),
    }


@pytest.fixture(scope="session")
def bc_data():
    """(X, y, column names) of breast_cancer."""
    return breast_cancer()


@pytest.fixture(scope="module")
def server(pkgs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """A 2-worker server with bc, iris and strings, shared by a test module."""
    log = tmp_path_factory.mktemp("srv") / "server.log"
    srv = Server(
        [str(pkgs["bc"]), str(pkgs["iris"]), f"strings={pkgs['strings']}"],
        "--replicas",
        "2",
        "--max-body-mb",
        "1",
        log=log,
    )
    try:
        yield srv.wait_ready()
    finally:
        srv.stop()
