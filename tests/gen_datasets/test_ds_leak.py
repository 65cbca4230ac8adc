"""The leak the engagement log is built to show: a latest-value join looks better offline and is worse later.

Scenario: a team trains at time `cut` on the impressions before it. The naive team joins each impression with
the latest feature rows the store holds at `cut`; the careful team joins point-in-time. Offline (a random
split of the training period, each team scored on its own join) the naive model wins. On the impressions after
`cut`, scored with the features production serves (as of each impression), the point-in-time model wins.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from roost.datasets.engagement import generate
from roost.datasets.joins import latest_join, pit_join

NUM = [
    "hour",
    "position",
    "clicks_7d",
    "sessions_7d",
    "avg_session_min",
    "account_age_days",
    "price",
    "quality_score",
    "popularity_7d",
    "item_clicks_7d",
    "item_ctr_7d",
]
CAT = ["country", "device", "age_group", "gender", "category"]


def _x(df: pd.DataFrame) -> pd.DataFrame:
    x = df[NUM].copy()
    for c in CAT:
        x[c] = pd.Categorical(df[c], categories=sorted(df[c].dropna().unique())).codes
    return x


def _model(kind: str):
    if kind == "hgb":
        return HistGradientBoostingClassifier(
            max_iter=100, random_state=0, categorical_features=list(range(len(NUM), len(NUM) + len(CAT)))
        )
    return make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=1000))


def _auc(kind: str, train: pd.DataFrame, test: pd.DataFrame) -> float:
    m = _model(kind).fit(_x(train), train["clicked"])
    return float(roc_auc_score(test["clicked"], m.predict_proba(_x(test))[:, 1]))


@pytest.fixture(scope="module")
def scenario() -> dict[str, pd.DataFrame]:
    t = generate(40_000, seed=11)
    imps, users, items = t["impressions"], t["users"], t["items"]
    cut = imps["event_time"].quantile(0.75)
    before = imps[imps["event_time"] < cut]
    pit_all = pit_join(imps, users, items)
    return {
        "naive": latest_join(before, users, items, as_of=cut),
        "pit": pit_all[pit_all["event_time"] < cut].reset_index(drop=True),
        "later": pit_all[pit_all["event_time"] >= cut].reset_index(drop=True),
    }


def test_naive_join_really_differs_from_pit(scenario) -> None:
    naive, pit = scenario["naive"], scenario["pit"]
    assert (naive["impression_id"].to_numpy() == pit["impression_id"].to_numpy()).all()
    # the latest snapshot counts the impression's own click: clicked rows gain clicks, unclicked rows do not lose
    gain = naive["clicks_7d"] - pit["clicks_7d"]
    clicked = pit["clicked"] == 1
    assert (naive.loc[clicked, "clicks_7d"] > 0).mean() > (pit.loc[clicked, "clicks_7d"] > 0).mean() + 0.1
    assert gain[clicked].mean() > gain[~clicked].mean() + 0.5


@pytest.mark.parametrize("kind", ["logreg", "hgb"])
def test_naive_wins_offline_but_loses_on_a_later_slice(scenario, kind: str) -> None:
    naive, pit, later = scenario["naive"], scenario["pit"], scenario["later"]
    train_mask = np.random.default_rng(0).random(len(pit)) < 0.7
    offline = {name: _auc(kind, df[train_mask], df[~train_mask]) for name, df in (("naive", naive), ("pit", pit))}
    online = {name: _auc(kind, df, later) for name, df in (("naive", naive), ("pit", pit))}
    assert offline["naive"] > offline["pit"] + 0.02, offline
    assert online["pit"] > online["naive"] + 0.01, online
