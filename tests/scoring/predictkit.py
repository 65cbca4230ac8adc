"""Helpers for the batch-scoring tests: inputs with an id column, a tiny model, the reference scores."""

import numpy as np

FEATURES = [f"f{i}" for i in range(8)]


def make_frame(n: int, seed: int = 0):
    """n rows: an int64 id, a string tag and FEATURES (float64), from a fixed seed."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    df.insert(0, "user_id", np.arange(seed * 10_000_000, seed * 10_000_000 + n, dtype=np.int64))
    df.insert(1, "tag", np.where(df["f0"] > 0, "a", "b"))
    return df


def fit_model():
    """A scaled logistic regression on FEATURES (the label depends on f0..f2)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    df = make_frame(600, seed=42)
    y = (df["f0"] + 0.5 * df["f1"] - df["f2"] > 0).astype(int)
    X = df[FEATURES]
    return Pipeline([("s", StandardScaler()), ("lr", LogisticRegression())]).fit(X, y), X


def write_parquet(df, path, row_group_size: int):
    """Write `df` as Parquet with small row groups (so a file holds several parts)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=row_group_size)


def read_output(out):
    """Every part under `out` as one pandas frame sorted by user_id."""
    import pyarrow.parquet as pq

    files = sorted(out.glob("part-*.parquet"))
    assert files, f"no parts in {out}"
    return pq.ParquetDataset(files).read().to_pandas().sort_values("user_id").reset_index(drop=True)


def expected(model_uri, df):
    """roost.load_model(MODEL).predict on the same rows: the reference every engine must equal."""
    import roost

    return roost.load_model(model_uri).predict(df)
