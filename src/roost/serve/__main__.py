"""`python -m roost.serve MODEL ...`: the `roost serve` command without loading the rest of the CLI."""

from __future__ import annotations

from roost.serve.command import main

if __name__ == "__main__":
    main()
