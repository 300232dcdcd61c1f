"""Small shared test data (importable from any test module)."""

from __future__ import annotations

from scipy import stats

SPACE = {
    "x": stats.uniform(-1, 2),
    "lr": stats.loguniform(1e-3, 1),
    "n": stats.randint(1, 9),
    "act": ["relu", "tanh"],
}


def quadratic(x: float, lr: float, n: int, act: str) -> float:
    return (x - 0.25) ** 2 + abs(lr - 0.1) + n / 100 + (0.05 if act == "tanh" else 0.0)
