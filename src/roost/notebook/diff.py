"""Cell-level notebook diff: sources and outputs (text and images), metadata and execution noise ignored."""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.errors import RoostError

ERROR_MARKER_TAG = "papermill-error-cell-tag"  # papermill's "execution failed" banner cells: not content
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")
TEXT_TYPES = ("text/plain", "text/html", "text/markdown", "text/latex", "application/json")
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
PAIR_MIN_RATIO = 0.5


def clean_text(text: str) -> str:
    """Text without ANSI colour codes and control characters (safe for a terminal, stable to compare)."""
    return _CONTROL.sub("", _ANSI.sub("", text.replace("\r\n", "\n")))


@dataclass(frozen=True)
class Output:
    """One output reduced to what a reader sees: a kind (stream name or MIME type) and its text or image data."""

    kind: str
    data: str

    @property
    def is_image(self) -> bool:
        """True for image outputs (data is base64, or SVG text)."""
        return self.kind in IMAGE_TYPES

    def lines(self) -> list[str]:
        """The output as text lines; an image becomes one line naming its type, size and digest."""
        if self.is_image:
            digest = hashlib.sha1(self.data.encode()).hexdigest()[:10]
            size = len(self.data) * 3 // 4 if self.kind != "image/svg+xml" else len(self.data)
            return [f"[{self.kind} {size / 1024:.1f} KB sha1:{digest}]"]
        text = self.data if self.data.endswith("\n") or not self.data else self.data + "\n"
        prefix = "" if self.kind in ("stream:stdout", "text/plain") else f"[{self.kind}] "
        return [prefix + ln for ln in text.splitlines()] if prefix else text.splitlines()


@dataclass(frozen=True)
class Cell:
    """A cell as compared: type, source and normalised outputs; `index` is its position in the file."""

    index: int
    cell_type: str
    source: str
    outputs: tuple[Output, ...] = ()

    def output_lines(self) -> list[str]:
        """All outputs as text lines (images as one descriptive line each)."""
        return [ln for o in self.outputs for ln in o.lines()]


@dataclass
class CellChange:
    """One changed cell: modified (a and b), added (b only) or removed (a only)."""

    status: str
    a: Cell | None
    b: Cell | None
    source_changed: bool = False
    outputs_changed: bool = False

    @property
    def label(self) -> str:
        """'cell 3', 'cell 3 → 4', 'cell 5 (added)' with 1-based positions."""
        if self.a is None:
            return f"cell {self.b.index + 1} (added)"  # type: ignore[union-attr]
        if self.b is None:
            return f"cell {self.a.index + 1} (removed)"
        ia, ib = self.a.index + 1, self.b.index + 1
        return f"cell {ia}" if ia == ib else f"cell {ia} → {ib}"

    @property
    def type_changed(self) -> bool:
        """True for a modified cell whose type changed (e.g. markdown → code)."""
        return self.a is not None and self.b is not None and self.a.cell_type != self.b.cell_type

    @property
    def what(self) -> str:
        """What changed in words: 'source', 'outputs', 'source, outputs', 'type (markdown → code)', 'added', ..."""
        if self.status != "modified":
            return self.status
        a, b = self.a, self.b
        kind = f"type ({a.cell_type} → {b.cell_type})" if a is not None and b is not None and self.type_changed else ""
        flags = ((kind, self.type_changed), ("source", self.source_changed), ("outputs", self.outputs_changed))
        return ", ".join(w for w, f in flags if f)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary of the change."""
        return {
            "status": self.status,
            "a_index": None if self.a is None else self.a.index,
            "b_index": None if self.b is None else self.b.index,
            "source_changed": self.source_changed,
            "outputs_changed": self.outputs_changed,
            "type_changed": self.type_changed,
            "label": self.label,
        }


@dataclass
class NotebookDiff:
    """The changed cells between notebooks A and B (unchanged cells are counted, not listed)."""

    a_name: str
    b_name: str
    a_cells: list[Cell]
    b_cells: list[Cell]
    changes: list[CellChange] = field(default_factory=list)

    @property
    def changed_cells(self) -> list[CellChange]:
        """The changes, in notebook order."""
        return self.changes

    @property
    def unchanged(self) -> int:
        """How many cells are identical in A and B."""
        return len(self.a_cells) - sum(1 for c in self.changes if c.a is not None)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def summary(self) -> str:
        """One line: how many cells changed, and how."""
        if not self.changes:
            return f"no changes in {len(self.a_cells)} cells (execution counts, timestamps and metadata ignored)"
        counts = {
            "type": sum(c.type_changed for c in self.changes),
            "source": sum(c.source_changed for c in self.changes),
            "outputs": sum(c.outputs_changed for c in self.changes),
            "added": sum(c.status == "added" for c in self.changes),
            "removed": sum(c.status == "removed" for c in self.changes),
        }
        detail = ", ".join(f"{k}: {n}" for k, n in counts.items() if n)
        return (
            f"{len(self.changes)} changed cell{'s' * (len(self.changes) != 1)} ({detail}); "
            f"{self.unchanged} unchanged; execution counts, timestamps and metadata ignored"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form: names, counts and the list of changes."""
        return {
            "a": self.a_name,
            "b": self.b_name,
            "cells_a": len(self.a_cells),
            "cells_b": len(self.b_cells),
            "unchanged": self.unchanged,
            "changes": [c.to_dict() for c in self.changes],
        }

    def to_html(self) -> str:
        """A standalone, escaped HTML page with a side-by-side view of every changed cell."""
        from roost.notebook.render import to_html

        return to_html(self)

    def __rich_console__(self, console: Any, options: Any) -> Iterable[Any]:
        from roost.notebook.render import rich_renderables

        yield from rich_renderables(self)


class NotANotebook(ValueError):
    """A notebook dict whose structure is not nbformat 4 (`where` says which cell/output/field)."""


def _join(v: Any, where: str = "a text field") -> str:
    """A multiline string field: text, or a list of text lines (as Jupyter writes it); None is empty."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return "".join(v)
    raise NotANotebook(f"{where} is a {type(v).__name__}{' with non-text items' * isinstance(v, list)}, not text")


def _tags(c: dict[str, Any]) -> list[str]:
    meta = c.get("metadata")
    tags = meta.get("tags") if isinstance(meta, dict) else None
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def normalize_outputs(outputs: list[dict[str, Any]], where: str = "cell") -> tuple[Output, ...]:
    """Outputs as (kind, data) pairs: consecutive streams merged, execution counts and metadata dropped."""
    out: list[Output] = []
    if outputs is not None and not isinstance(outputs, list):
        raise NotANotebook(f"{where}'s outputs are a {type(outputs).__name__}, not a list")
    for k, o in enumerate(outputs or []):
        at = f"{where}, output {k + 1}"
        if not isinstance(o, dict):
            raise NotANotebook(f"{at} is a {type(o).__name__}, not an object")
        ot = o.get("output_type")
        if ot == "stream":
            kind, text = f"stream:{o.get('name', 'stdout')}", clean_text(_join(o.get("text"), f"{at} text"))
            if out and out[-1].kind == kind:
                out[-1] = Output(kind, out[-1].data + text)
            elif text:
                out.append(Output(kind, text))
        elif ot == "error":
            out.append(Output("error", clean_text(f"{o.get('ename', '')}: {o.get('evalue', '')}")))
        elif ot in ("execute_result", "display_data"):
            data = o.get("data") or {}
            if not isinstance(data, dict):
                raise NotANotebook(f"{at} data is a {type(data).__name__}, not an object of MIME types")
            mime = next((m for m in IMAGE_TYPES if m in data), None) or next((m for m in TEXT_TYPES if m in data), None)
            if mime is None:
                out.append(Output("other", ", ".join(sorted(map(str, data))) or "(empty output)"))
            elif mime in IMAGE_TYPES:
                raw = data[mime]
                text = _join(raw, f"{at} {mime}")
                text = text if mime == "image/svg+xml" else "".join(text.split())
                out.append(Output(mime, text))
            else:
                raw = data[mime]
                text = (
                    json.dumps(raw, sort_keys=True, indent=1, default=str)
                    if mime == "application/json"
                    else _join(raw, f"{at} {mime}")
                )
                out.append(Output(mime, clean_text(text)))
    return tuple(out)


def load_cells(nb: Any) -> list[Cell]:
    """The content cells of a notebook (papermill's error banners skipped), normalised for comparison.

    Raises NotANotebook (naming the cell) when the structure is not nbformat 4's."""
    raw = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(raw, list):
        what = "no 'cells' list" if raw is None else f"'cells' is a {type(raw).__name__}, not a list"
        raise NotANotebook(what if isinstance(nb, dict) else f"the top level is a {type(nb).__name__}, not an object")
    cells = []
    for i, c in enumerate(raw):
        where = f"cell {i + 1}"
        if not isinstance(c, dict):
            raise NotANotebook(f"{where} is a {type(c).__name__}, not an object")
        if ERROR_MARKER_TAG in _tags(c):
            continue
        ctype = c.get("cell_type", "code")
        if not isinstance(ctype, str):
            raise NotANotebook(f"{where}'s cell_type is a {type(ctype).__name__}, not text")
        cells.append(
            Cell(
                i,
                ctype,
                clean_text(_join(c.get("source"), f"{where}'s source")),
                normalize_outputs(c.get("outputs", []), where) if ctype == "code" else (),
            )
        )
    return cells


def _upgrade(name: str, nb: Any) -> Any:
    """A notebook dict in nbformat 4 (older formats converted with nbformat, as Jupyter does on open)."""
    if not isinstance(nb, dict):
        raise RoostError(
            f"{name} is JSON but not a notebook: its top level is a {type(nb).__name__}",
            hint="pass .ipynb files (a JSON object with a 'cells' list)",
        )
    major = nb.get("nbformat")
    if isinstance(major, int) and not isinstance(major, bool) and major < 4 and "cells" not in nb:
        import nbformat

        from_dict: Callable[[Any], Any] = nbformat.from_dict  # unannotated in nbformat
        convert: Callable[..., Any] = nbformat.convert
        try:
            return convert(from_dict(nb), 4)
        except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds for a malformed old notebook
            raise RoostError(
                f"{name} is an nbformat {major} notebook that cannot be converted to nbformat 4: "
                f"{(str(exc).splitlines() or [type(exc).__name__])[0][:200]}",
                hint="open it in JupyterLab and save it again (that upgrades it)",
            ) from None
    return nb


def _cells_of(name: str, nb: Any) -> list[Cell]:
    try:
        return load_cells(nb)
    except NotANotebook as exc:
        raise RoostError(
            f"{name} is not a valid notebook: {exc}",
            hint="pass .ipynb files saved by Jupyter (nbformat 4); open this one in JupyterLab and save it again",
        ) from None


def _read(nb: Any) -> tuple[str, Any]:
    """(display name, notebook dict) from a path, an nbformat node or a dict."""
    if isinstance(nb, (str, Path)):
        p = Path(nb)
        if p.is_dir():
            raise RoostError(f"notebook {p} is a folder", hint="pass .ipynb files")
        if not p.is_file():
            raise RoostError(f"notebook {p} does not exist", hint="check the path (relative to the cwd)")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise RoostError(f"{p.name} is not notebook JSON: {exc}", hint="pass .ipynb files") from None
        except OSError as exc:
            raise RoostError(f"cannot read notebook {p}: {exc.strerror or exc}", hint="check its permissions") from None
        return p.name, _upgrade(p.name, data)
    if isinstance(nb, dict):
        meta = nb.get("metadata")
        name = str(meta.get("name", "notebook")) if isinstance(meta, dict) else "notebook"
        return name, _upgrade(name, nb)
    raise RoostError(f"cannot diff a {type(nb).__name__}", hint="pass .ipynb paths or notebook dicts")


def _similar(x: Cell, y: Cell) -> float:
    if x.cell_type != y.cell_type:
        return 0.0
    return difflib.SequenceMatcher(None, x.source, y.source, autojunk=False).ratio()


def _modified(x: Cell, y: Cell) -> CellChange | None:
    src, outs = x.source != y.source, x.outputs != y.outputs
    return CellChange("modified", x, y, src, outs) if (src or outs or x.cell_type != y.cell_type) else None


def _pair_block(a: list[Cell], b: list[Cell]) -> list[CellChange]:
    """Pair the cells of a replaced block by similarity, in order; the rest are added or removed."""
    if len(a) == len(b):
        return [c for x, y in zip(a, b) if (c := _modified(x, y))]
    out: list[CellChange] = []
    jp = 0
    for x in a:
        best, best_k = PAIR_MIN_RATIO, None
        for k in range(jp, len(b)):
            r = _similar(x, b[k])
            if r >= best:
                best, best_k = r, k
        if best_k is None:
            out.append(CellChange("removed", x, None))
            continue
        out.extend(CellChange("added", None, y) for y in b[jp:best_k])
        if (c := _modified(x, b[best_k])) is not None:
            out.append(c)
        jp = best_k + 1
    out.extend(CellChange("added", None, y) for y in b[jp:])
    return out


def diff(a: Any, b: Any) -> NotebookDiff:
    """Compare notebooks cell by cell: which cells' sources or outputs changed, were added or removed."""
    a_name, a_nb = _read(a)
    b_name, b_nb = _read(b)
    ca, cb = _cells_of(a_name, a_nb), _cells_of(b_name, b_nb)
    sm = difflib.SequenceMatcher(
        None, [(c.cell_type, c.source) for c in ca], [(c.cell_type, c.source) for c in cb], autojunk=False
    )
    changes: list[CellChange] = []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            changes.extend(c for x, y in zip(ca[i1:i2], cb[j1:j2]) if (c := _modified(x, y)))
        elif op == "delete":
            changes.extend(CellChange("removed", x, None) for x in ca[i1:i2])
        elif op == "insert":
            changes.extend(CellChange("added", None, y) for y in cb[j1:j2])
        else:
            changes.extend(_pair_block(ca[i1:i2], cb[j1:j2]))
    if a_name == b_name and isinstance(a, (str, Path)) and isinstance(b, (str, Path)):
        a_name, b_name = str(a), str(b)
    return NotebookDiff(a_name, b_name, ca, cb, changes)
