"""Model package fixtures: `pkg`, a tiny hand-built package (x: float32, color: string → probability)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for `modelpkg_helpers` (importlib import mode)

from modelpkg_helpers import write_tiny_package


@pytest.fixture
def pkg(tmp_path: Path) -> Path:
    """A tiny binary model package in a temporary folder."""
    return write_tiny_package(tmp_path / "model")
