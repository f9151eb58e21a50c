"""An independent computation of the Titanic models, written the way the fast.ai lesson writes
it (pandas + torch), sharing no code with excelnet. Tests compare LibreOffice with this."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch


def features(csv, train=None) -> pd.DataFrame:
    """The lesson's features of the passengers in `csv`, normalised with the statistics of
    `train` (default: `csv` itself), as the lesson treats the test set."""
    df = pd.read_csv(csv)
    base = pd.read_csv(train) if train is not None else df
    modes = base.mode().iloc[0]
    df["Age"] = df["Age"].fillna(modes["Age"])
    df["Fare"] = df["Fare"].fillna(modes["Fare"])
    df["Embarked"] = df["Embarked"].fillna(modes["Embarked"])
    log_fare = np.log10(df["Fare"] + 1)
    return pd.DataFrame(
        {
            "Ones": 1.0,
            "Age": df["Age"] / base["Age"].max(),
            "SibSp": df["SibSp"].astype(float),
            "Parch": df["Parch"].astype(float),
            "LogFare": log_fare / np.log10(base["Fare"].max() + 1),
            "Male": (df["Sex"] == "male").astype(float),
            "Pclass_1": (df["Pclass"] == 1).astype(float),
            "Pclass_2": (df["Pclass"] == 2).astype(float),
            "Embark_S": (df["Embarked"] == "S").astype(float),
            "Embark_C": (df["Embarked"] == "C").astype(float),
        }
    )


def table_features(df: pd.DataFrame, skip: set[str]) -> dict[str, np.ndarray]:
    """The features `excelnet build table` documents (README), computed by hand from a frame
    as pandas reads the CSV: Ones, then the numbers, then the dummies."""
    numbers: dict[str, np.ndarray] = {"Ones": np.ones(len(df))}
    dummies: dict[str, np.ndarray] = {}
    for col in df.columns:
        s = df[col]
        v = s.dropna()
        if col in skip or v.empty:
            continue
        if pd.api.types.is_numeric_dtype(s):
            v = v.astype(float)
            levels = sorted(v.unique())
            whole = bool((v % 1 == 0).all())
            if len(levels) == 1 or (whole and len(levels) == len(s) > 10):
                continue
            if whole and len(levels) <= 3:
                counts = [(v == x).sum() for x in levels]
                filled = s.fillna(levels[counts.index(max(counts))])
                for x in levels[:-1]:
                    dummies[f"{col}_{int(x)}"] = (filled == x).to_numpy(float)
                continue
            counts = v.value_counts()
            single = counts.max() > 1 and (counts == counts.max()).sum() == 1
            x = s.fillna(counts.idxmax() if single else v.mean()).astype(float)
            if whole and v.min() >= 0 and v.max() <= 10:
                numbers[col] = x.to_numpy()
            elif v.min() >= 0 and v.skew() > 1:
                numbers["Log" + col] = (np.log10(x + 1) / np.log10(v.max() + 1)).to_numpy()
            else:
                numbers[col] = (x / v.abs().max()).to_numpy()
            continue
        first: dict[str, str] = {}
        for t in v:
            first.setdefault(t.lower(), t)
        if len(first) == 1 or len(first) > 10:
            continue
        low = v.str.lower()
        order = sorted(first, key=lambda k: -(low == k).sum())  # stable: first met
        filled = s.fillna(first[order[0]]).str.lower()
        for k in order[:-1]:
            dummies[f"{col}_{first[k]}"] = (filled == k).to_numpy(float)
    return {**numbers, **dummies}


def predictions(model: str, x: pd.DataFrame, params: np.ndarray) -> dict[str, np.ndarray]:
    """Per-passenger columns of a model sheet, by name, in torch float64."""
    t_x = torch.tensor(x.to_numpy(), dtype=torch.float64)
    w = torch.tensor(params, dtype=torch.float64)
    if model == "linear":
        return {"Prediction": (t_x @ w[0]).numpy()}
    if model == "nn":
        u1, u2 = torch.relu(t_x @ w[0]), torch.relu(t_x @ w[1])
        return {"Unit 1": u1.numpy(), "Unit 2": u2.numpy(), "Prediction": (u1 + u2).numpy()}
    z = t_x @ w  # mmult: w is 10×2
    h = torch.relu(z)
    return {
        "MMULT 1": z[:, 0].numpy(),
        "MMULT 2": z[:, 1].numpy(),
        "ReLU 1": h[:, 0].numpy(),
        "ReLU 2": h[:, 1].numpy(),
        "Prediction": h.sum(1).numpy(),
    }


def scores(pred: np.ndarray, survived: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    sq = (pred - survived) ** 2
    ok = (pred > 0.5) == (survived == 1)
    t, v = valid == 0, valid == 1
    return {
        "Training loss": sq[t].mean(),
        "Validation loss": sq[v].mean(),
        "Training accuracy": ok[t].mean(),
        "Validation accuracy": ok[v].mean(),
        "Squared error": sq,
        "Correct": ok.astype(float),
    }
