"""The lesson's Titanic features, each defined once in its two faithful forms, side by side:
the spreadsheet formula written into the `features` sheet, and the pandas computation
the builder uses for the cells' cached values. (excelnet.writer.recipe makes the same kinds of
Stat and Feature for any table.)

Row r of `features` describes the passenger in row r of `data` (both have headers in row 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from xlsxwriter.utility import xl_col_to_name

from excelnet.data import COLUMNS

DATA_SHEET = "data"
FEATURES_SHEET = "features"


def data_col(name: str) -> str:
    """Column letter of a Kaggle column in the `data` sheet."""
    return xl_col_to_name(COLUMNS.index(name))


def data_range(name: str, n: int) -> str:
    """Absolute range of one Kaggle column over all n passengers, e.g. data!$F$2:$F$892."""
    c = data_col(name)
    return f"{DATA_SHEET}!${c}$2:${c}${n + 1}"


@dataclass(frozen=True)
class Stat:
    """A statistic of the whole data set, kept in one named cell of the `features` sheet."""

    name: str  # the workbook-level defined name, used inside the feature formulas
    label: str
    formula: Callable[[int], str]  # n passengers -> formula
    compute: Callable[[pd.DataFrame], float | str]


def _most_common_port(df: pd.DataFrame) -> str:
    counts = {p: int((df["Embarked"].str.upper() == p).sum()) for p in "SCQ"}
    return max("SCQ", key=lambda p: counts[p])  # ties go to the earlier of S, C, Q


def _embarked_mode_formula(n: int) -> str:
    r = data_range("Embarked", n)
    s, c, q = (f'COUNTIF({r},"{p}")' for p in "SCQ")
    return f'=IF(AND({s}>={c},{s}>={q}),"S",IF({c}>={q},"C","Q"))'


def excel_mode(values: pd.Series) -> float:
    """MODE as Excel computes it (and excelnet): of the most frequent values, the one met first.
    LibreOffice, like pandas' mode().iloc[0], takes the smallest; Kaggle's data has a single
    mode for Age (24) and Fare (8.05), a resample (--passengers) may have ties."""
    v = values.dropna()
    counts = v.map(v.value_counts())
    return float(v[counts == counts.max()].iloc[0])


STATS = [
    Stat(
        "age_mode",
        "Mode of Age",
        lambda n: f"=MODE({data_range('Age', n)})",
        lambda df: excel_mode(df["Age"]),
    ),
    Stat(
        "age_max",
        "Maximum Age",
        lambda n: f"=MAX({data_range('Age', n)})",
        lambda df: float(df["Age"].max()),
    ),
    Stat(
        "fare_mode",
        "Mode of Fare",
        lambda n: f"=MODE({data_range('Fare', n)})",
        lambda df: excel_mode(df["Fare"]),
    ),
    # log10 grows with its argument, so the largest LOG10(Fare+1) is LOG10 of the largest Fare + 1.
    Stat(
        "logfare_max",
        "Maximum LOG10(Fare+1)",
        lambda n: f"=LOG10(MAX({data_range('Fare', n)})+1)",
        lambda df: float(np.log10(df["Fare"].max() + 1)),
    ),
    Stat("embarked_mode", "Most common Embarked", _embarked_mode_formula, _most_common_port),
]


@dataclass(frozen=True)
class Feature:
    """One model input column: its header, its formula for row r, and the same in pandas."""

    name: str
    formula: Callable[[int], str]  # sheet row (1-based) -> formula
    compute: Callable[[pd.DataFrame, dict], np.ndarray]


def _d(name: str) -> Callable[[int], str]:
    return lambda r: f"{DATA_SHEET}!{data_col(name)}{r}"


_age, _fare, _emb = _d("Age"), _d("Fare"), _d("Embarked")
_sex, _pclass, _sibsp, _parch = _d("Sex"), _d("Pclass"), _d("SibSp"), _d("Parch")


def _embarked(df: pd.DataFrame, s: dict) -> pd.Series:
    return df["Embarked"].fillna(s["embarked_mode"]).str.upper()


FEATURES = [
    Feature("Ones", lambda r: "=1", lambda df, s: np.ones(len(df))),
    Feature(
        "Age",
        lambda r: f"=IF(ISBLANK({_age(r)}),age_mode,{_age(r)})/age_max",
        lambda df, s: (df["Age"].fillna(s["age_mode"]) / s["age_max"]).to_numpy(),
    ),
    Feature("SibSp", lambda r: f"={_sibsp(r)}", lambda df, s: df["SibSp"].to_numpy()),
    Feature("Parch", lambda r: f"={_parch(r)}", lambda df, s: df["Parch"].to_numpy()),
    Feature(
        "LogFare",
        lambda r: f"=LOG10(IF(ISBLANK({_fare(r)}),fare_mode,{_fare(r)})+1)/logfare_max",
        lambda df, s: (
            np.log10(df["Fare"].fillna(s["fare_mode"]) + 1) / s["logfare_max"]
        ).to_numpy(),
    ),
    Feature(
        "Male",
        lambda r: f'=IF({_sex(r)}="male",1,0)',
        lambda df, s: (df["Sex"].str.lower() == "male").to_numpy(float),
    ),
    Feature(
        "Pclass_1",
        lambda r: f"=IF({_pclass(r)}=1,1,0)",
        lambda df, s: (df["Pclass"] == 1).to_numpy(float),
    ),
    Feature(
        "Pclass_2",
        lambda r: f"=IF({_pclass(r)}=2,1,0)",
        lambda df, s: (df["Pclass"] == 2).to_numpy(float),
    ),
    Feature(
        "Embark_S",
        lambda r: f'=IF(IF(ISBLANK({_emb(r)}),embarked_mode,{_emb(r)})="S",1,0)',
        lambda df, s: (_embarked(df, s) == "S").to_numpy(float),
    ),
    Feature(
        "Embark_C",
        lambda r: f'=IF(IF(ISBLANK({_emb(r)}),embarked_mode,{_emb(r)})="C",1,0)',
        lambda df, s: (_embarked(df, s) == "C").to_numpy(float),
    ),
]
FEATURE_NAMES = [f.name for f in FEATURES]
VALID_HEADER = "Valid"  # the column right after the features: 1 = validation row


def validation_split(n: int, rng: np.random.Generator, fraction: float = 0.2) -> np.ndarray:
    """1.0 for the seeded 20% of rows held out for validation, 0.0 for the rest."""
    valid = np.zeros(n)
    valid[rng.permutation(n)[: round(fraction * n)]] = 1.0
    return valid
