"""The lesson's made-up data sets: noisy samples of a known curve, seeded."""

from __future__ import annotations

import numpy as np

TRUE_QUADRATIC = (3.0, 2.0, 1.0)  # a, b, c of the lesson's f(x) = 3x² + 2x + 1


def _noisy(y: np.ndarray, rng: np.random.Generator, mult: float, add: float) -> np.ndarray:
    # the lesson's add_noise: multiplicative and additive Gaussian noise
    return y * (1 + rng.normal(scale=mult, size=y.shape)) + rng.normal(scale=add, size=y.shape)


def quadratic_samples(seed: int = 0, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """x in [-2, 2] and noisy 3x² + 2x + 1."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-2, 2, n)
    a, b, c = TRUE_QUADRATIC
    return x, _noisy(a * x**2 + b * x + c, rng, 0.15, 1.5)


def bend_samples(seed: int = 0, n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """A noisy curve that bends both ways (x² / 2 on [-2, 2]): one ReLU can follow only one
    side of it, two ReLUs added can follow both."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-2, 2, n)
    return x, 0.5 * x**2 + rng.normal(scale=0.1, size=n)
