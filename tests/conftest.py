from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from hpostore import EventLog, open_store

# 2 shared cores: wall-clock deadlines would make property tests flaky, not stricter.
settings.register_profile("hpostore", deadline=None)
settings.load_profile("hpostore")

# The Ctrl-C tests send SIGINT to child processes, which inherit an ignored SIGINT from a suite
# run as a background job (``make test &``, nohup: the shell ignores SIGINT there); a handler
# here is reset to the default in each child, as a terminal's would be.
signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    return os.fspath(tmp_path / "runs.duckdb")


# One contract suite runs every backend; "memory" is the in-memory DuckDB, "parquet" a
# directory of Parquet segments.
BACKENDS = ["duckdb", "memory", "parquet"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fresh_store(backend: str, tmp_path: Path) -> Iterator[EventLog]:
    paths = {"memory": ":memory:", "parquet": os.fspath(tmp_path / "runs") + "/"}
    store = open_store(paths.get(backend, os.fspath(tmp_path / "runs.duckdb")))
    yield store
    store.close()
