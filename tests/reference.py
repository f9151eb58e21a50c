"""An independent computation of the Titanic models, written the way the fast.ai lesson writes
it (pandas + torch), sharing no code with excelnet. Tests compare LibreOffice with this."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch


def features(csv) -> pd.DataFrame:
    df = pd.read_csv(csv)
    modes = df.mode().iloc[0]
    df["Age"] = df["Age"].fillna(modes["Age"])
    df["Fare"] = df["Fare"].fillna(modes["Fare"])
    df["Embarked"] = df["Embarked"].fillna(modes["Embarked"])
    log_fare = np.log10(df["Fare"] + 1)
    return pd.DataFrame(
        {
            "Ones": 1.0,
            "Age": df["Age"] / df["Age"].max(),
            "SibSp": df["SibSp"].astype(float),
            "Parch": df["Parch"].astype(float),
            "LogFare": log_fare / log_fare.max(),
            "Male": (df["Sex"] == "male").astype(float),
            "Pclass_1": (df["Pclass"] == 1).astype(float),
            "Pclass_2": (df["Pclass"] == 2).astype(float),
            "Embark_S": (df["Embarked"] == "S").astype(float),
            "Embark_C": (df["Embarked"] == "C").astype(float),
        }
    )


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
