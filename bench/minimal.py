"""The baselines for a training step: the lesson's nn written by hand, with none of excelnet.

The same net as the `nn` sheet (two ReLU units over 10 features, prediction = their sum, mean
squared error over the training rows, full-batch gradient descent), on data of the same shape:
- torch: `relu(X @ W.T).sum(1)`, masked mean square, autograd (eager, or one CUDA graph);
- numpy: the gradient derived by hand.
The data are random (the step's cost does not depend on the numbers).
"""

from __future__ import annotations

import time

import numpy as np


def data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """X (rows×10), y (0/1), the training mask (80% of rows), W (2×10)."""
    rng = np.random.default_rng(seed)
    x = rng.random((rows, 10))
    x[:, 0] = 1.0
    y = (rng.random(rows) < 0.4).astype(float)
    train = (rng.random(rows) >= 0.2).astype(float)
    w = rng.random((2, 10)) - 0.5
    return x, y, train, w


def numpy_rate(rows: int, steps: int, lr: float = 0.01) -> float:
    """Epochs per second of the hand-derived numpy step."""
    x, y, m, w = data(rows)
    count = m.sum()

    def step(w: np.ndarray) -> float:
        z = x @ w.T
        pred = np.maximum(z, 0).sum(1)
        r = (pred - y) * m
        d_pred = 2 * r / count
        d_w = ((z > 0) * d_pred[:, None]).T @ x
        w -= lr * d_w
        return float((r * r).sum() / count)

    step(w)
    t = time.perf_counter()
    for _ in range(steps):
        step(w)
    return steps / (time.perf_counter() - t)


def torch_rate(rows: int, steps: int, device: str = "cpu", graph: bool = False, lr: float = 0.01):
    """Epochs per second of the minimal torch autograd step (float64), eager or as a CUDA
    graph replayed."""
    import torch

    x, y, m, w = (torch.as_tensor(a, device=device) for a in data(rows))
    w.requires_grad_(True)
    count = m.sum()

    def step() -> torch.Tensor:
        loss = ((torch.relu(x @ w.T).sum(1) - y) ** 2 * m).sum() / count
        loss.backward()
        with torch.no_grad():
            w.sub_(lr * w.grad)
        w.grad = None
        return loss.detach()

    def sync() -> None:
        if device != "cpu":
            torch.cuda.synchronize()

    run = step
    if graph:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            loss = ((torch.relu(x @ w.T).sum(1) - y) ** 2 * m).sum() / count
            loss.backward()
            with torch.no_grad():
                w.sub_(lr * w.grad)
        run = g.replay
    for _ in range(3):
        run()
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        run()
    sync()
    return steps / (time.perf_counter() - t)
