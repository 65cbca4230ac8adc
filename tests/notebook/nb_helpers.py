"""Notebooks built in code for the notebook tests."""

from __future__ import annotations

from pathlib import Path

import nbformat as nbf

PNG_DEF = """import struct, zlib
from IPython.display import Image, display

def png(r, g, b):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    head = chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    body = chunk(b"IDAT", zlib.compress(b"\\x00" + bytes([r, g, b])))
    return b"\\x89PNG\\r\\n\\x1a\\n" + head + body + chunk(b"IEND", b"")
"""


def code(src: str, tags: list[str] | None = None) -> nbf.NotebookNode:
    """A code cell, optionally tagged."""
    c = nbf.v4.new_code_cell(src)
    if tags:
        c.metadata["tags"] = tags
    return c


def write(path: Path, cells: list) -> Path:
    """Write a v4 notebook with a python3 kernelspec."""
    nb = nbf.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbf.write(nb, str(path))
    return path


def demo(path: Path) -> Path:
    """Parameter x drives a metric, a printed line and one image; the other cells do not depend on x."""
    return write(
        path,
        [
            nbf.v4.new_markdown_cell("# Demo <b>&</b>"),
            code("x = 1", ["parameters"]),
            code('import roost\nroost.log_metric("score", x * 10)\nprint("score <b>", x * 10)'),
            code(PNG_DEF),
            code("display(Image(data=png(40 * x, 0, 0)))"),
            code('display(Image(data=png(0, 0, 255)))\nprint("constant")'),
        ],
    )


def failing(path: Path) -> Path:
    """Logs a metric, then divides by zero in its third cell; the fourth cell never runs."""
    return write(
        path,
        [
            code("x = 1", ["parameters"]),
            code('import roost\nroost.log_metric("before", 1.5)'),
            code("y = x / 0"),
            code('print("never")'),
        ],
    )
