"""Process-level start-up speed-ups for notebook commands, and the entry point that starts JupyterLab."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

PARENT_ENV = "ROOST_NOTEBOOK_PARENT"


def skip_iri_checker() -> None:
    """Make jsonschema skip its optional IRI format checker, whose grammar build costs CPU at import.

    Only for processes roost owns (the JupyterLab server, the `roost notebook` CLI): it hides `rfc3987_syntax` from
    this interpreter, so "iri" formats go unchecked; notebooks and Jupyter's own schemas do not use them.
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # import → ImportError → skipped


def watch_parent(interval: float = 1.0) -> None:
    """Stop this server (SIGTERM: kernels shut down cleanly) once the process that launched it is gone."""
    want = os.environ.pop(PARENT_ENV, "")  # popped: kernels must not inherit it
    if not want.isdigit():
        return

    def loop() -> None:
        while os.getppid() == int(want):
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=loop, name="roost-parent-watch", daemon=True).start()


def main() -> None:
    """Run JupyterLab's CLI with the faster import, tied to the launching process."""
    skip_iri_checker()
    watch_parent()
    from jupyterlab.labapp import main as lab_main

    sys.exit(lab_main())


if __name__ == "__main__":
    main()
