"""A logged study as a benchmark: real learning curves, replayed by the simulator.

Any study whose objective reported per epoch (``report(epoch, error)``, e.g. the Keras
:class:`~hpostore.integrations.keras.ReportCallback`) is a table: one row per logged
configuration, with its error after each epoch and the seconds each epoch took.
:class:`TabularBenchmark` answers a configuration with the curve of the *nearest* logged one,
so any searcher or scheduler can be replayed on real curves at simulated cost:

>>> from hpostore import ASHAScheduler, HPOTuner, RandomSearcher
>>> from hpostore.simulation import SimulatedClock
>>> from scipy import stats
>>> table = TabularBenchmark(
...     [TabularRow({"lr": 0.01}, (0.6, 0.4, 0.3), (2.0, 2.0, 2.0)),
...      TabularRow({"lr": 0.5}, (0.5, 0.45, 0.44), (2.0, 2.0, 2.0))],
...     {"lr": stats.loguniform(1e-3, 1)}, name="toy")
>>> table.learning_curve({"lr": 0.02}, 2)
([0.6, 0.4], [2.0, 2.0])
>>> clock = SimulatedClock()
>>> asha = ASHAScheduler(RandomSearcher(table.config_space, seed=0), eta=3, r_max=3)
>>> tuner = HPOTuner(asha, table.objective(clock), clock=clock, verbose=False).run(4)
>>> tuner.incumbent_error in (0.3, 0.44, 0.6, 0.5)
True

Build one from a log with :meth:`TabularBenchmark.from_study`, keep it as Parquet with
:meth:`~TabularBenchmark.to_parquet` / :meth:`~TabularBenchmark.from_parquet`
(``benchmarks/make_lenet_table.py`` makes the LeNet / Fashion-MNIST one).

**Distance.** Configs are compared in the unit cube of the space (the quantile encoding of
:mod:`hpostore.searchers._encoding`): a ``uniform`` dimension scaled linearly to [0, 1], a
``loguniform`` one log-scaled, an integer one at its bin centre (other distributions through
their CDF); a categorical dimension adds 1 when the values differ. The distance is Euclidean
over the dimensions; on ties the row that comes first in the table (the earlier logged trial)
wins, so lookups are deterministic. The table is kept encoded as one numpy array: a lookup is
one matrix-vector product (tens of microseconds for a few hundred rows) when the dimensions
are uniform, loguniform, randint, norm or choices (others go through scipy's CDF, slower), and
a repeated config is answered from a cache.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._tabular_index import NearestRowIndex, UnitCubeEncoder
from ._tabular_log import curves_from_log
from ._tabular_parquet import PARQUET_COLUMNS as PARQUET_COLUMNS
from ._tabular_parquet import PARQUET_KEY as PARQUET_KEY
from ._tabular_parquet import TABLE_FORMAT as TABLE_FORMAT
from ._tabular_parquet import read_table, write_table
from .errors import ConfigSpaceError, HPOStoreError, InvalidArgument
from .simulation import Benchmark
from .space import Choice, ConfigSpace, ScipyDomain
from .store.base import EventLog, open_store

__all__ = ["TabularBenchmark", "TabularRow"]


@dataclass(frozen=True, slots=True)
class TabularRow:
    """One logged configuration: its error after each epoch 1..n and each epoch's seconds."""

    config: dict[str, Any]
    errors: tuple[float, ...]
    seconds: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "errors", tuple(float(e) for e in self.errors))
        object.__setattr__(self, "seconds", tuple(float(s) for s in self.seconds))

    @property
    def epochs(self) -> int:
        return len(self.errors)


class TabularBenchmark(Benchmark):
    """A benchmark whose learning curves are looked up in a table of logged configurations.

    ``rows``: the table (see :class:`TabularRow`); ``config_space``: the space the configs
    were drawn from (a dict of scipy.stats domains, lists and constants, or a
    :class:`~hpostore.ConfigSpace`); ``max_resource``: the epochs of a full curve (default:
    the longest row). Every row has at least one epoch and at most ``max_resource``; at least
    one row is full. Shorter rows are *partial*: a lookup at ``resource`` epochs only considers
    rows that reach it, so every answer is a logged curve, never an extrapolated one.

    :attr:`optimum` is the best final error of the full rows, :attr:`reference_error` their
    median final error (the scale of :meth:`normalized_regret`).
    """

    def __init__(
        self,
        rows: Sequence[TabularRow],
        config_space: Mapping[str, Any] | ConfigSpace,
        *,
        name: str = "tabular",
        max_resource: int | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"name must be a non-empty string, got {name!r}")
        space = config_space if isinstance(config_space, ConfigSpace) else ConfigSpace(config_space)
        rows = list(rows)
        if not rows:
            raise InvalidArgument("a TabularBenchmark needs at least one row (a logged curve)")
        longest = max(len(r.errors) for r in rows)
        if max_resource is None:
            max_resource = longest
        if (
            not isinstance(max_resource, int)
            or isinstance(max_resource, bool)
            or max_resource < 1
            or max_resource < longest
        ):
            raise InvalidArgument(
                f"max_resource must be an int >= the longest curve ({longest} epochs), "
                f"got {max_resource!r}"
            )
        encoder = UnitCubeEncoder(space)
        encoded = np.empty((len(rows), encoder.width))
        checked: list[TabularRow] = []
        for i, row in enumerate(rows):
            if not isinstance(row, TabularRow):
                raise InvalidArgument(f"row {i} is a {type(row).__name__}, not a TabularRow")
            n = len(row.errors)
            if n < 1 or len(row.seconds) != n:
                raise InvalidArgument(
                    f"row {i} ({row.config}): a curve needs one error and one epoch time per "
                    f"epoch (at least one), got {n} errors and {len(row.seconds)} epoch times"
                )
            if not all(math.isfinite(e) for e in row.errors) or not all(
                math.isfinite(s) and s >= 0 for s in row.seconds
            ):
                raise InvalidArgument(
                    f"row {i} ({row.config}): errors must be finite and epoch seconds finite "
                    f"and >= 0, got {row.errors} and {row.seconds}"
                )
            try:
                config = space.check_config(row.config, what=f"row {i} config")
                encoded[i] = encoder(config)
            except (ConfigSpaceError, ValueError, TypeError) as exc:
                raise InvalidArgument(
                    f"row {i} config {row.config} does not fit the config space "
                    f"{space.to_json()}: {exc}"
                ) from None
            checked.append(TabularRow(config, row.errors, row.seconds))
        self.name = name
        self.max_resource = max_resource
        self.rows: tuple[TabularRow, ...] = tuple(checked)
        self.space = space
        self._dims = encoder.names
        self._lengths = np.array([len(r.errors) for r in checked], dtype=np.int64)
        self._index = NearestRowIndex(
            encoder, encoded, self._lengths, max_resource, name=name, space=space
        )
        self._cache = self._index.cache  # the lookup cache (tests clear it)
        self._errors = [list(r.errors) for r in checked]
        self._seconds = [list(r.seconds) for r in checked]
        final = np.array([r.errors[-1] for r in checked if len(r.errors) == max_resource])
        if not final.size:
            raise InvalidArgument(
                f"no row reaches max_resource={max_resource} epochs (the longest has {longest}); "
                "a table needs at least one full curve"
            )
        self.optimum = float(final.min())
        self._reference_error = float(np.median(final))

    # --- the Benchmark interface ------------------------------------------------------------
    @property
    def config_space(self) -> dict[str, Any]:
        """The logged space (without the resource): frozen scipy.stats domains, lists, constants."""
        out: dict[str, Any] = {}
        for name, d in self.space.domains.items():
            if isinstance(d, ScipyDomain):
                out[name] = d.frozen()
            elif isinstance(d, Choice):
                out[name] = list(d.values)
            else:
                out[name] = d.value
        return out

    @property
    def reference_error(self) -> float:
        """The median final error of the table's full curves."""
        return self._reference_error

    def learning_curve(
        self, config: Mapping[str, Any], resource: int | None = None
    ) -> tuple[list[float], list[float]]:
        """The curve of the logged config nearest to ``config``, truncated to ``resource``
        epochs (default: ``max_resource``): (error after each epoch, seconds of each epoch)."""
        n = self.max_resource if resource is None else min(int(resource), self.max_resource)
        if n < 1:
            raise InvalidArgument(f"resource must be >= 1 epoch, got {resource!r}")
        i = self.nearest(config, n)
        return self._errors[i][:n], self._seconds[i][:n]

    def nearest(self, config: Mapping[str, Any], resource: int | None = None) -> int:
        """The index in :attr:`rows` of the logged config nearest to ``config`` among the rows
        whose curve reaches ``resource`` epochs (default: any row)."""
        if resource is not None and not 1 <= resource <= self.max_resource:
            raise InvalidArgument(
                f"resource must be between 1 and max_resource={self.max_resource}, got {resource!r}"
            )
        return self._index.nearest(config, resource)

    def __repr__(self) -> str:
        partial = int((self._lengths < self.max_resource).sum())
        return (
            f"TabularBenchmark({self.name!r}: {len(self.rows)} configs ({partial} partial), "
            f"{self.max_resource} epochs, dims {self._dims})"
        )

    # --- from a log ---------------------------------------------------------------------------
    @classmethod
    def from_study(
        cls,
        store: EventLog | str | os.PathLike[str],
        study: str,
        *,
        resource_attr: str = "max_epochs",
        name: str | None = None,
        max_resource: int | None = None,
        keep_partial: bool = False,
    ) -> TabularBenchmark:
        """The table of ``study``'s per-epoch ``report`` events in ``store`` (an
        :class:`~hpostore.EventLog` or a path, opened read-only and closed again).

        Each trial gives its config (from its ``suggest`` event, without ``resource_attr``),
        its curve (its ``report`` events at epochs 1, 2, 3, ...) and the seconds of each epoch:
        the ``elapsed`` from the trial's latest ``start`` or report to the report, i.e. study
        time as the tuner logged it (a simulated study gives simulated seconds; a real one
        counts model building and data loading into epoch 1). A trial that trains again (a
        retry after a crash, or a promotion that resumes it) replaces its curve from the first
        epoch it reports again: from epoch 1 when it starts over, from the checkpoint's next
        epoch when it continues; the time it waited in between is not counted. Reports after
        a gap in the epochs are ignored. The config space is the study event's, without
        ``resource_attr``.

        ``max_resource`` (default: the longest curve in the study) is the epochs of a full
        curve; longer curves are cut to it. Curves that end earlier (a trial stopped by a
        scheduler, failed, or still running) are dropped unless ``keep_partial`` (then a
        lookup at ``r`` epochs only considers rows that reach ``r``). A configuration logged
        more than once (successive halving re-runs it as a new trial) keeps its longest curve,
        the earliest such trial's on ties. ``name`` defaults to the study's name.
        """
        if isinstance(store, EventLog):
            return cls._from_log(store, study, resource_attr, name, max_resource, keep_partial)
        path = os.fspath(store)
        try:
            log = open_store(path, read_only=True)
        except HPOStoreError as exc:
            raise InvalidArgument(f"cannot open the store {path!r} to tabulate: {exc}") from None
        with log:
            return cls._from_log(log, study, resource_attr, name, max_resource, keep_partial)

    @classmethod
    def _from_log(
        cls,
        store: EventLog,
        study: str,
        resource_attr: str,
        name: str | None,
        max_resource: int | None,
        keep_partial: bool,
    ) -> TabularBenchmark:
        curves, space, full = curves_from_log(
            store, study, resource_attr, max_resource, keep_partial
        )
        rows = [TabularRow(*curve) for curve in curves]
        return cls(rows, space, name=name or study, max_resource=full)

    # --- Parquet --------------------------------------------------------------------------------
    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write the table: one row per (config, epoch) with columns ``config`` (JSON),
        ``epoch``, ``error``, ``seconds``; the space, name and max_resource in the schema
        metadata (key ``hpostore.tabular``). Written atomically (temp file + rename)."""
        curves = [(row.config, row.errors, row.seconds) for row in self.rows]
        write_table(path, curves, name=self.name, max_resource=self.max_resource, space=self.space)

    @classmethod
    def from_parquet(cls, path: str | os.PathLike[str]) -> TabularBenchmark:
        """The table :meth:`to_parquet` wrote to ``path`` (exactly as it was)."""
        curves, space, name, max_resource = read_table(path)
        rows = [TabularRow(*curve) for curve in curves]
        return cls(rows, space, name=name, max_resource=max_resource)
