"""Process-level start-up speed-ups for notebook commands, and the entry point that starts JupyterLab."""
from __future__ import annotations

import sys


def skip_iri_checker() -> None:
    """Make jsonschema skip its optional IRI format checker, whose grammar build costs ~1 s of CPU at import.

    Only for processes roost owns (the JupyterLab server, the `roost nb` CLI): it hides `rfc3987_syntax` from
    this interpreter, so "iri" formats go unchecked; notebooks and Jupyter's own schemas do not use them.
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # import → ImportError → skipped


def main() -> None:
    """Run JupyterLab's CLI with the faster import."""
    skip_iri_checker()
    from jupyterlab.labapp import main as lab_main

    sys.exit(lab_main())


if __name__ == "__main__":
    main()
