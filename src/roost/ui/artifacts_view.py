"""Artifact download and viewers (text, images, notebooks), confined to the run's artifact root."""

from __future__ import annotations

import json
import mimetypes
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from roost.errors import NotFoundError, RoostError
from roost.ui.security import scrub_paths

if TYPE_CHECKING:
    from roost.ui.app import UI

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".svg": "image/svg+xml",
}
TEXT_PREVIEW_BYTES = 1024 * 1024
NOTEBOOK_MAX_BYTES = 20 * 1024 * 1024
_B64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
MAX_PATH_CHARS = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_rel(rel: str) -> str:
    """`rel` when it can name an artifact; a RoostError for empty, over-long or control-character paths."""
    if not rel:
        raise RoostError("no artifact path given", hint="add ?path=FILE")
    if len(rel) > MAX_PATH_CHARS:
        raise RoostError(f"artifact path too long ({len(rel)} characters, at most {MAX_PATH_CHARS})")
    if _CONTROL.search(rel):
        raise RoostError(
            f"artifact path {rel[:80]!r} contains a control character (NUL, newline, ...)",
            hint="pick a file from the run's artifacts list",
        )
    return rel


def resolve_local(run: dict[str, Any], rel: str) -> Path | None:
    """The local path of artifact `rel` (None for remote stores); refuses paths or symlinks leaving the root."""
    from roost import artifacts

    uri = artifacts.safe_join(run["artifact_uri"], check_rel(rel))
    if not artifacts.is_local(uri):
        return None
    try:
        root = artifacts.local_path(run["artifact_uri"]).resolve()
        p = artifacts.local_path(uri).resolve()
        is_file = p.is_file()
    except (OSError, ValueError) as exc:  # a name too long for the filesystem, a symlink loop, ...
        raise RoostError(
            f"cannot open artifact {rel[:80]!r}: {getattr(exc, 'strerror', None) or exc}",
            hint="pick a file from the run's artifacts list",
        ) from None
    if p != root and root not in p.parents:
        raise RoostError(f"artifact path {rel!r} escapes the artifact root", hint="links out of the run are refused")
    if not is_file:
        raise NotFoundError(
            f"artifact {rel!r} not found in run {run['run_id'][:8]}", hint="pick a file from the run's artifacts list"
        )
    return p


def read_artifact(run: dict[str, Any], rel: str, limit: int | None = None) -> bytes:
    """The bytes of one artifact (at most `limit`), local or remote."""
    from roost import artifacts

    p = resolve_local(run, rel)
    if p is not None:
        with open(p, "rb") as f:
            return f.read(-1 if limit is None else limit)
    fs, path = artifacts.filesystem(artifacts.safe_join(run["artifact_uri"], rel))
    if not fs.isfile(path):
        raise NotFoundError(f"artifact {rel!r} not found in run {run['run_id'][:8]}")
    with fs.open(path, "rb") as f:
        data: bytes = f.read(-1 if limit is None else limit)
        return data


def looks_text(head: bytes) -> bool:
    """True when the first bytes decode as UTF-8 text without NULs."""
    if b"\x00" in head[:8192]:
        return False
    try:
        head[:8192].decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        return exc.start > 8180  # a multi-byte character cut at the sample edge


def notebook_cells(raw: bytes) -> list[dict[str, Any]]:
    """A notebook's cells reduced to safe pieces: source text, text outputs, PNG/JPEG data, sandboxed HTML."""
    nb = json.loads(raw.decode("utf-8"))
    out = []
    for cell in nb.get("cells", []):
        src = cell.get("source", "")
        item: dict[str, Any] = {
            "type": cell.get("cell_type", "code"),
            "source": "".join(src) if isinstance(src, list) else str(src),
            "outputs": [],
        }
        for o in cell.get("outputs", []) or []:
            if o.get("output_type") == "stream":
                t = o.get("text", "")
                item["outputs"].append({"kind": "text", "text": "".join(t) if isinstance(t, list) else str(t)})
            elif o.get("output_type") == "error":
                item["outputs"].append({"kind": "text", "text": f"{o.get('ename')}: {o.get('evalue')}"})
            else:
                d = o.get("data", {}) or {}
                for mime in ("image/png", "image/jpeg"):
                    b64 = d.get(mime)
                    b64 = "".join(b64) if isinstance(b64, list) else b64
                    if isinstance(b64, str) and _B64.match(b64):
                        item["outputs"].append({"kind": "image", "src": f"data:{mime};base64,{b64.strip()}"})
                        break
                else:
                    if "text/html" in d:
                        h = d["text/html"]
                        item["outputs"].append({"kind": "html", "html": "".join(h) if isinstance(h, list) else h})
                    elif "text/plain" in d:
                        t = d["text/plain"]
                        item["outputs"].append({"kind": "text", "text": "".join(t) if isinstance(t, list) else t})
        out.append(item)
    return out


def routes(ui: UI) -> list[Route]:
    """Download, raw (inline images) and viewer routes."""
    from roost.registry import api as reg

    def _run_and_path(request: Request) -> tuple[dict[str, Any], str]:
        rel = check_rel(request.query_params.get("path", ""))
        return reg.get_run(request.path_params["run_id"]), rel

    def _fail(request: Request, exc: RoostError) -> Response:
        status = 404 if isinstance(exc, NotFoundError) else 400
        if request.url.path.startswith("/api/"):
            from starlette.responses import JSONResponse

            hint = scrub_paths(exc.hint) if exc.hint else exc.hint
            return JSONResponse({"error": scrub_paths(exc.message), "hint": hint}, status_code=status)
        return ui.error(request, exc, status)

    def _send(run: dict[str, Any], rel: str, inline: bool) -> Response:
        name = rel.rsplit("/", 1)[-1]
        suffix = Path(name).suffix.lower()
        media = IMAGE_TYPES.get(suffix) if inline else None
        disp = "inline" if media else "attachment"
        headers = {
            "content-disposition": f"{disp}; filename*=UTF-8''{quote(name)}",
            "content-security-policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'",
        }
        media = media or mimetypes.guess_type(name)[0] or "application/octet-stream"
        if media.startswith("text/html") or media == "application/xhtml+xml":
            if inline and suffix in (".html", ".htm"):
                # reports (drift, fairness, notebook diffs) render as pages; the CSP sandbox (no allow-scripts,
                # default-src 'none') keeps any script inside them dead and blocks every external load
                media, disp = "text/html; charset=utf-8", "inline"
                headers["content-disposition"] = f"inline; filename*=UTF-8''{quote(name)}"
                headers["content-security-policy"] += "; img-src data:"
                headers["x-content-type-options"] = "nosniff"
            else:
                media = "text/plain"
        p = resolve_local(run, rel)
        if p is not None:
            return FileResponse(p, media_type=media, headers=headers, content_disposition_type=disp)
        return Response(read_artifact(run, rel), media_type=media, headers=headers)

    def _sender(inline: bool) -> Callable[[Request], Awaitable[Response]]:
        """The download (attachment) and raw (inline) routes."""

        async def send(request: Request) -> Response:
            try:
                run, rel = _run_and_path(request)
                return _send(run, rel, inline=inline)
            except RoostError as exc:
                return _fail(request, exc)

        return send

    download, raw = _sender(inline=False), _sender(inline=True)

    async def view(request: Request) -> Response:
        try:
            run, rel = _run_and_path(request)
            suffix = Path(rel).suffix.lower()
            ctx: dict[str, Any] = {"run": run, "rel": rel, "kind": "none"}
            if suffix in IMAGE_TYPES:
                resolve_local(run, rel)  # existence and containment check before the <img> asks for it
                ctx["kind"] = "image"
            elif suffix == ".ipynb":
                ctx.update(kind="notebook", cells=notebook_cells(read_artifact(run, rel, NOTEBOOK_MAX_BYTES)))
            else:
                head = read_artifact(run, rel, TEXT_PREVIEW_BYTES + 1)
                if looks_text(head):
                    ctx.update(
                        kind="text",
                        text=head[:TEXT_PREVIEW_BYTES].decode("utf-8", errors="replace"),
                        truncated=len(head) > TEXT_PREVIEW_BYTES,
                    )
        except (ValueError, UnicodeDecodeError) as exc:
            return _fail(request, RoostError(f"cannot read this notebook: {exc}", hint="download it instead"))
        except RoostError as exc:
            return _fail(request, exc)
        return ui.render(request, "artifact.html", **ctx)

    return [
        Route("/runs/{run_id}/artifacts/download", download),
        Route("/runs/{run_id}/artifacts/raw", raw),
        Route("/runs/{run_id}/artifacts/view", view),
        Route("/api/runs/{run_id}/artifacts/download", download),
    ]
