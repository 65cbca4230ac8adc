"""A churn-like generated table for the quality suite: telecom usage columns, ~14 % positives, seeded.

5,000 customers; numeric usage (minutes and calls by time of day, international use, voice-mail messages,
customer-service calls, tenure) and two 0/1 plan flags. Churn follows step-like rules with interactions (heavy
daytime users, many service calls, international-plan users with high international minutes), the kind of
structure where LightGBM's library defaults (31 leaves, learning rate 0.1) do well. Label noise keeps it honest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def churn_table(n: int = 5_000, seed: int = 0) -> pd.DataFrame:
    """The churn-like table with a 0/1 `label` column (1 = churned)."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 240, n)
    intl_plan = (rng.random(n) < 0.1).astype(np.int64)
    vm_plan = (rng.random(n) < 0.27).astype(np.int64)
    vm_msgs = np.where(vm_plan == 1, rng.normal(29, 7, n).clip(1, 50).round(), 0)
    day_min = rng.normal(180, 54, n).clip(0, 350)
    eve_min = rng.normal(200, 50, n).clip(0, 360)
    night_min = rng.normal(200, 50, n).clip(20, 390)
    intl_min = rng.normal(10, 2.8, n).clip(0, 20)
    day_calls, eve_calls, night_calls = (rng.poisson(100, n) for _ in range(3))
    intl_calls = rng.poisson(4.5, n)
    service = rng.poisson(1.5, n)
    charge = 0.17 * day_min + 0.085 * eve_min + 0.045 * night_min + 0.27 * intl_min
    z = (
        -5.4
        + 6.0 * (day_min > 245) * (vm_plan == 0)
        + 2.0 * (charge > 72)
        + 5.5 * (service >= 4) * (day_min < 210)
        + 0.9 * (service >= 4)
        + 5.5 * intl_plan * ((intl_min > 13) | (intl_calls < 3))
        + 0.4 * intl_plan
        - 0.8 * vm_plan
        + 0.002 * (eve_min - 200)
        + 0.4 * (tenure < 12)
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int64)
    return pd.DataFrame(
        {
            "tenure_months": tenure,
            "international_plan": intl_plan,
            "voice_mail_plan": vm_plan,
            "voice_mail_messages": vm_msgs,
            "day_minutes": day_min.round(1),
            "day_calls": day_calls,
            "eve_minutes": eve_min.round(1),
            "eve_calls": eve_calls,
            "night_minutes": night_min.round(1),
            "night_calls": night_calls,
            "intl_minutes": intl_min.round(1),
            "intl_calls": intl_calls,
            "service_calls": service,
            "label": y,
        }
    )
