"""What a conversion produces: an ONNX model with what packaging, parity checking and the signature need.

Its own module, below both converters (roost.model_import.convert for native frameworks, roost.model_import.onnxfile
for ONNX files), so that neither imports the other to build one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Converted"]


@dataclass
class Converted:
    """An ONNX model ready to package, with what parity checking and the signature need."""

    onnx_bytes: bytes
    task: str
    framework: str
    model_type: str
    columns: list[str]
    native: Callable[[Any], np.ndarray] | None  # sample frame -> scores in the spec's primary-output shape
    classes: list[Any] = field(default_factory=list)
