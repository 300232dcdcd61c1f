from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from scipy import stats

from hpostore import EventLog, open_store

SPACE = {"x": stats.uniform(-1, 2), "lr": stats.loguniform(1e-3, 1), "n": stats.randint(1, 9), "act": ["relu", "tanh"]}


def quadratic(x: float, lr: float, n: int, act: str) -> float:
    return (x - 0.25) ** 2 + abs(lr - 0.1) + n / 100 + (0.05 if act == "tanh" else 0.0)


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    return os.fspath(tmp_path / "runs.duckdb")


# One contract suite runs every backend; "memory" is the in-memory DuckDB.
BACKENDS = ["duckdb", "memory"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fresh_store(backend: str, tmp_path: Path) -> Iterator[EventLog]:
    store = open_store(":memory:" if backend == "memory" else os.fspath(tmp_path / "runs.duckdb"))
    yield store
    store.close()
