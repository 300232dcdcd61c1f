"""hpostore: hyperparameter optimization whose memory is an append-only event log.

The textbook API (d2l.ai, "Hyperparameter Optimization"), made durable and resumable::

    from scipy import stats
    from hpostore import BasicScheduler, HPOTuner, RandomSearcher, open_store

    searcher = RandomSearcher({"x": stats.uniform(-1, 2)}, seed=0)
    tuner = HPOTuner(BasicScheduler(searcher), lambda x: x * x,
                     store=open_store("runs.duckdb"), study="quadratic")
    tuner.run(number_of_trials=20)
"""

import importlib
from typing import TYPE_CHECKING, Any

from ._hyper import HyperParameters, add_to_class  # noqa: E402
from ._version import __version__
from .callbacks import Callback  # noqa: E402
from .errors import (  # noqa: E402
    ConfigSpaceError,
    CorruptLogError,
    FormatVersionError,
    HPOStoreError,
    InvalidArgument,
    ObjectiveSignatureError,
    ReadOnlyStoreError,
    ReplayDivergence,
    SnapshotChanged,
    StoreLocked,
    StudyInterrupted,
    StudyMismatch,
    StudyWriterConflict,
    TooManyFailures,
)
from .log.events import FORMAT_VERSION, Event, Kind  # noqa: E402
from .schedulers import (  # noqa: E402
    Action,
    ASHAScheduler,
    BasicScheduler,
    Decision,
    HPOScheduler,
    HyperbandScheduler,
    MedianStoppingScheduler,
    SuccessiveHalvingScheduler,
    TrialScheduler,
)
from .searchers import (  # noqa: E402
    BayesianSearcher,
    EvolutionarySearcher,
    GridExhausted,
    GridSearcher,
    HPOSearcher,
    MultiObjectiveTPESearcher,
    RandomSearcher,
    TPESearcher,
)
from .space import Conditional, ConfigSpace  # noqa: E402
from .study import StudyState, TrialStatus, replay, replay_table  # noqa: E402

if TYPE_CHECKING:
    from .client import connect
    from .store import EventLog, open_store
    from .tuner import HPOTuner, Trial

# The store backends and the tuner import DuckDB and pyarrow.parquet (~0.2 s): they load on
# first use, so `import hpostore` stays fast (benchmarks/startup.py).
_LAZY = {"EventLog": ".store", "open_store": ".store", "HPOTuner": ".tuner", "Trial": ".tuner",
         "connect": ".client"}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "FORMAT_VERSION",
    "ASHAScheduler",
    "Action",
    "BasicScheduler",
    "BayesianSearcher",
    "Callback",
    "Conditional",
    "ConfigSpace",
    "ConfigSpaceError",
    "CorruptLogError",
    "Decision",
    "Event",
    "EventLog",
    "EvolutionarySearcher",
    "FormatVersionError",
    "GridExhausted",
    "GridSearcher",
    "HPOScheduler",
    "HPOSearcher",
    "HPOStoreError",
    "HPOTuner",
    "HyperParameters",
    "HyperbandScheduler",
    "InvalidArgument",
    "Kind",
    "MedianStoppingScheduler",
    "MultiObjectiveTPESearcher",
    "ObjectiveSignatureError",
    "RandomSearcher",
    "ReadOnlyStoreError",
    "ReplayDivergence",
    "SnapshotChanged",
    "StoreLocked",
    "StudyInterrupted",
    "StudyMismatch",
    "StudyState",
    "StudyWriterConflict",
    "SuccessiveHalvingScheduler",
    "TPESearcher",
    "TooManyFailures",
    "Trial",
    "TrialScheduler",
    "TrialStatus",
    "__version__",
    "add_to_class",
    "connect",
    "open_store",
    "replay",
    "replay_table",
]
