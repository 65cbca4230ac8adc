import warnings

import numpy as np
import pytest


@pytest.fixture(scope="session")
def cancer():
    """scikit-learn's breast cancer set, features + target, and a held-out slice."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.iloc[:450], y.iloc[:450], X.iloc[450:]


@pytest.fixture(scope="session")
def mixed():
    """A frame with numeric and string columns (for a ColumnTransformer pipeline)."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :5].copy()
    X["size"] = np.where(X["mean radius"] > 15, "large", np.where(X["mean radius"] > 12, "medium", "small"))
    X["grp"] = np.where(X["mean texture"] > 19, "hi", "lo")
    return X.iloc[:450], y.iloc[:450], X.iloc[450:]


warnings.filterwarnings("ignore", category=UserWarning)


@pytest.fixture(scope="session")
def fitted(cancer, mixed):
    """Real models trained once per session (the two modules only read them): name -> (model, train frame, held-out
    frame, native score function)."""
    return fit_all(cancer, mixed)


def fit_all(cancer, mixed):
    """name -> (model, train frame, held-out frame, native score function)."""
    import lightgbm as lgb
    import torch
    import xgboost as xgb
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y, Xt = cancer
    M, my, Mt = mixed
    proba = lambda m: lambda d: m.predict_proba(d)[:, 1]  # noqa: E731
    out = {}
    m = Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression(max_iter=2000))]).fit(X, y)
    out["logreg"] = (m, X, Xt, proba(m))
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), list(M.columns[:5])),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["size", "grp"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=2000)),
        ]
    ).fit(M, my)
    out["column_transformer"] = (pipe, M, Mt, proba(pipe))
    m = RandomForestClassifier(n_estimators=25, max_depth=6, random_state=0).fit(X, y)
    out["random_forest"] = (m, X, Xt, proba(m))
    m = GradientBoostingClassifier(n_estimators=30, random_state=0).fit(X, y)
    out["gradient_boosting"] = (m, X, Xt, proba(m))
    m = lgb.LGBMClassifier(n_estimators=30, verbose=-1, random_state=0).fit(X, y)
    out["lightgbm"] = (m, X, Xt, proba(m))
    m = xgb.XGBClassifier(n_estimators=30, max_depth=3, random_state=0).fit(X, y)
    out["xgboost"] = (m, X, Xt, proba(m))
    torch.manual_seed(0)
    mu, sd = X.mean().to_numpy(np.float32), X.std().to_numpy(np.float32)

    class MLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mu", torch.tensor(mu))
            self.register_buffer("sd", torch.tensor(sd))
            self.net = torch.nn.Sequential(torch.nn.Linear(30, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))

        def forward(self, x):
            return torch.sigmoid(self.net((x - self.mu) / self.sd)).squeeze(-1)

    net = MLP()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    xt, yt = torch.tensor(X.to_numpy(np.float32)), torch.tensor(y.to_numpy(np.float32))
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy(net(xt), yt).backward()
        opt.step()
    net.eval()

    def torch_native(d):
        with torch.no_grad():
            return net(torch.tensor(d[list(X.columns)].to_numpy(np.float32))).numpy()

    out["torch_mlp"] = (net, X, Xt, torch_native)
    return out
