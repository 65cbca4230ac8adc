"""Model metrics shared by training, tuning, monitoring and responsible ML (numpy only; nothing in roost above it).

`roost.metrics.overall`: one score per metric for a whole evaluation set (binary, multiclass, regression);
`roost.metrics.groups`: the same scores per group (slice, sensitive group) in one vectorised pass.
They live below the capabilities so that training, monitoring and fairness can share them without importing
each other (the acyclic-siblings contract in pyproject.toml).
"""

__all__ = ["groups", "overall"]  # the two modules; import them (`from roost.metrics import overall as M`)
