"""`roost serve MODEL [MODEL ...]`: run the serving fleet (KServe V2 + TF-Serving REST) on one port."""

from __future__ import annotations

from typing import Any

import typer


def register(app: typer.Typer) -> None:
    """Add the `serve` command (defined in roost.serve.command, shared with `python -m roost.serve`); the models it
    names that were logged for packaging on first use are packaged before the fleet starts."""
    import functools

    from roost.serve.command import serve

    @functools.wraps(serve)
    def serve_packaged(*args: Any, **kwargs: Any) -> None:
        canaries = [str(c).rsplit("=", 1)[0] for c in kwargs.get("canary") or []]  # MODEL=PERCENT
        _package_pending([*(kwargs.get("models") or []), *canaries])
        serve(*args, **kwargs)

    app.command("serve", no_args_is_help=True)(serve_packaged)


def _package_pending(specs: list[str]) -> None:
    """Build the package of each served model (a folder or a registry reference) still waiting for its first use."""
    from roost.model_import.deferred import ensure, locate
    from roost.modelpkg.package import pending
    from roost.serve.loader import parse_spec

    for spec in specs:
        try:
            root = locate(parse_spec(str(spec)).source)
        except Exception:  # noqa: BLE001 - not ours to judge: the fleet reports a spec it cannot load
            continue
        if pending(root):
            ensure(root)
