"""The read path: SQL views over an hpostore event log, any-time curves, plots.

Reads the log through :mod:`hpostore.log` only (the one reader of the format: checksums,
gaps, segment cover) and raises :mod:`hpostore.errors` (``AnalysisError`` is an
``HPOStoreError``), never through the tuner; :func:`state_at` alone replays with
:mod:`hpostore.log.fold`. Compute functions return Arrow tables (``.to_pandas()`` for
pandas); only :mod:`analysis.plots` imports matplotlib.

>>> import analysis
>>> con = analysis.views("runs.duckdb")                                   # doctest: +SKIP
>>> con.sql("SELECT study, trial, error FROM trials ORDER BY error LIMIT 5")  # doctest: +SKIP
>>> analysis.compare("runs/", group_by="algorithm").to_pandas()              # doctest: +SKIP
"""

from ._anytime import (
    algorithm_label,
    anytime,
    area_under_curve,
    compare,
    state_at,
    study_info,
    time_to_target,
)
from ._pareto import hypervolume, hypervolume_of, non_dominated, pareto
from ._views import (
    VIEW_NAMES,
    AnalysisError,
    parquet_segments,
    query,
    sql_dir,
    sql_file,
    views,
)

__all__ = [
    "VIEW_NAMES",
    "AnalysisError",
    "algorithm_label",
    "anytime",
    "area_under_curve",
    "compare",
    "hypervolume",
    "hypervolume_of",
    "non_dominated",
    "pareto",
    "parquet_segments",
    "query",
    "sql_dir",
    "sql_file",
    "state_at",
    "study_info",
    "time_to_target",
    "views",
]
