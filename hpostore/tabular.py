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

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from .errors import ConfigSpaceError, HPOStoreError, InvalidArgument
from .log.events import dumps, dumps_config
from .searchers._encoding import UnitCube
from .simulation import Benchmark
from .space import Choice, ConfigSpace, ScipyDomain
from .store.base import EventLog, open_store

__all__ = ["TabularBenchmark", "TabularRow"]

#: the schema-metadata key of a table written by :meth:`TabularBenchmark.to_parquet`
PARQUET_KEY = b"hpostore.tabular"
#: the layout version of that Parquet file
TABLE_FORMAT = 1
#: the columns of that Parquet file: one row per (config, epoch)
PARQUET_COLUMNS = {"config": "string", "epoch": "int64", "error": "double", "seconds": "double"}
_CACHE_SIZE = 4096
_TIE = 1e-12  # scores this close to the best are compared exactly
_HALF_SQRT2 = math.sqrt(0.5)  # one-hot entries: a category mismatch adds 1 to the squared distance


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
        encoder = _Encoder(space)
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
        self._encoder = encoder
        self._dims = encoder.names
        # |x - f|^2 / 2 = |x|^2 / 2 - x.f + |f|^2 / 2: one mat-vec per lookup
        self._x = np.ascontiguousarray(encoded)
        self._half_norms = 0.5 * (encoded * encoded).sum(axis=1)
        self._lengths = np.array([len(r.errors) for r in checked], dtype=np.int64)
        self._all_full = bool((self._lengths == max_resource).all())
        self._errors = [list(r.errors) for r in checked]
        self._seconds = [list(r.seconds) for r in checked]
        self._cache: dict[tuple[Any, ...], int] = {}
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
        try:
            key: tuple[Any, ...] | None = (
                None if self._all_full else resource,
                *(config[d] for d in self._dims),
            )
            hash(key)
        except KeyError:
            missing = [d for d in self._dims if d not in config]
            raise InvalidArgument(
                f"{self.name}: config {dict(config)} lacks {missing}; it must name the table's "
                f"hyperparameters {self._dims}"
            ) from None
        except TypeError:
            key = None
        if key is not None:
            hit = self._cache.get(key)
            if hit is not None:
                return hit
        try:
            f = self._encoder(config)
        except (ValueError, TypeError) as exc:  # a category not in the space, log of <= 0, ...
            raise InvalidArgument(
                f"{self.name}: cannot place config {dict(config)} in the table's config space "
                f"({exc}); give values from {self.space.to_json()}"
            ) from None
        score = self._half_norms - self._x @ f  # half the squared distance, less |f|^2 / 2
        if resource is not None and not self._all_full:
            score = np.where(self._lengths >= resource, score, np.inf)
        i = int(score.argmin())
        ties = np.flatnonzero(score <= score[i] + _TIE)
        if ties.size > 1:  # equal distances up to rounding: decide exactly, the earlier row wins
            d = self._x[ties] - f
            i = int(ties[int(np.argmin((d * d).sum(axis=1)))])
        if key is not None:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = i
        return i

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
        from .log.fold import REPLAY_COLUMNS, replay_table

        if max_resource is not None and (
            not isinstance(max_resource, int) or isinstance(max_resource, bool) or max_resource < 1
        ):
            raise InvalidArgument(f"max_resource must be a positive int, got {max_resource!r}")
        table = store.events(study, columns=REPLAY_COLUMNS)
        if table.num_rows == 0:
            raise InvalidArgument(
                f"no study {study!r} in {store.path}; its studies: {store.studies()}"
            )
        state = replay_table(study, table)  # checks the format version and the log's shape
        spec = state.spec or {}
        if not isinstance(spec.get("space"), dict):
            raise InvalidArgument(
                f"study {study!r} in {store.path} records no config space in its study event "
                "(its searcher had none); a table needs the space to measure distances"
            )
        space_json = {k: v for k, v in spec["space"].items() if k != resource_attr}
        if not space_json:
            raise InvalidArgument(
                f"study {study!r}: its config space holds only {resource_attr!r}; nothing to look up"
            )
        space = ConfigSpace.from_json(space_json)

        # each trial's curve, (epoch, error, seconds) per epoch 1, 2, ..., assembled in log
        # order: a report at the next epoch extends it; one at an epoch it already holds means
        # the trial trained again from there (a retry, or a promotion without a checkpoint) and
        # replaces the curve from that epoch on; one after a gap ends it (``complete``).
        curves: dict[int, list[tuple[float, float, float]]] = {}
        complete: set[int] = set()  # trials whose curve ended at a gap
        last: dict[int, float] = {}  # elapsed of the trial's latest start or report
        reported: set[int] = set()
        cols = [table.column(c).to_pylist() for c in ("kind", "trial", "resource", "error")]
        elapsed = table.column("elapsed").to_pylist()
        for (kind, trial, resource, error), t in zip(zip(*cols), elapsed):
            if kind == "start":
                last[trial] = t
                curves.setdefault(trial, [])
            elif kind == "report" and trial in last:
                reported.add(trial)
                curve = curves[trial]
                epoch = float(resource) if resource is not None else math.nan
                if epoch.is_integer() and 1 <= epoch <= len(curve) + 1:
                    del curve[int(epoch) - 1 :]
                    curve.append((epoch, error, t - last[trial]))
                    complete.discard(trial)
                elif trial not in complete:
                    complete.add(trial)  # a gap (or a fractional resource): the curve ends
                last[trial] = t
        usable = {trial: curve for trial, curve in curves.items() if curve}
        if not usable:
            raise InvalidArgument(
                f"study {study!r} in {store.path} has no learning curves to tabulate: expected "
                "per-epoch `report` events (resource 1, 2, 3, ... after each trial's `start`), "
                "as an objective with a `report` parameter logs them (e.g. the Keras "
                f"ReportCallback); found {len(state.trials)} trials, {len(reported)} with "
                "reports, none starting at epoch 1"
            )
        longest = max(len(c) for c in usable.values())
        full = longest if max_resource is None else max_resource
        best: dict[str, tuple[int, int]] = {}  # config key -> (epochs, trial)
        configs: dict[int, dict[str, Any]] = {}
        for trial in sorted(usable):
            config = {k: v for k, v in state.trials[trial].config.items() if k != resource_attr}
            configs[trial] = config
            n = min(len(usable[trial]), full)
            if n < full and not keep_partial:
                continue
            key = dumps(config)
            if key not in best or n > best[key][0]:
                best[key] = (n, trial)
        if not best:
            raise InvalidArgument(
                f"study {study!r}: no curve reaches {full} epochs (the longest has {longest}); "
                "pass a smaller max_resource, or keep_partial=True to keep shorter curves"
            )
        rows = []
        for n, trial in sorted(best.values(), key=lambda v: v[1]):
            curve = usable[trial][:n]
            rows.append(
                TabularRow(
                    configs[trial], tuple(e for _, e, _ in curve), tuple(s for _, _, s in curve)
                )
            )
        return cls(rows, space, name=name or study, max_resource=full)

    # --- Parquet --------------------------------------------------------------------------------
    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write the table: one row per (config, epoch) with columns ``config`` (JSON),
        ``epoch``, ``error``, ``seconds``; the space, name and max_resource in the schema
        metadata (key ``hpostore.tabular``). Written atomically (temp file + rename)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        configs: list[str] = []
        epochs: list[int] = []
        errors: list[float] = []
        seconds: list[float] = []
        for row in self.rows:
            text = dumps_config(row.config)
            for k, (e, s) in enumerate(zip(row.errors, row.seconds), start=1):
                configs.append(text)
                epochs.append(k)
                errors.append(e)
                seconds.append(s)
        meta = {
            "format_version": TABLE_FORMAT,
            "name": self.name,
            "max_resource": self.max_resource,
            "space": self.space.to_json(),
        }
        schema = pa.schema(
            [("config", pa.string()), ("epoch", pa.int64()), ("error", pa.float64()),
             ("seconds", pa.float64())],
            metadata={PARQUET_KEY: dumps(meta).encode()},
        )  # fmt: skip
        table = pa.table([configs, epochs, errors, seconds], schema=schema)
        target = Path(path)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, target)

    @classmethod
    def from_parquet(cls, path: str | os.PathLike[str]) -> TabularBenchmark:
        """The table :meth:`to_parquet` wrote to ``path`` (exactly as it was)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        p = Path(path)
        make = (
            "make one with TabularBenchmark.from_study(...).to_parquet(path) "
            "(or benchmarks/make_lenet_table.py)"
        )
        if not p.exists():
            raise InvalidArgument(f"no tabular benchmark at {p}: the file does not exist; {make}")
        if not p.is_file():
            raise InvalidArgument(f"{p} is not a file; a tabular benchmark is one Parquet file")
        try:
            table = pq.read_table(p)
        except (pa.ArrowException, OSError) as exc:
            raise InvalidArgument(f"{p} is not a readable Parquet file ({exc}); {make}") from None
        meta_raw = (table.schema.metadata or {}).get(PARQUET_KEY)
        if meta_raw is None:
            raise InvalidArgument(
                f"{p} is a Parquet file but not a tabular benchmark: its schema metadata has no "
                f"{PARQUET_KEY.decode()!r} entry; {make}"
            )
        try:
            meta = json.loads(meta_raw)
            version, name = meta["format_version"], meta["name"]
            max_resource, space_json = meta["max_resource"], meta["space"]
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidArgument(
                f"{p}: the {PARQUET_KEY.decode()!r} metadata is damaged ({exc!r}); {make}"
            ) from None
        if not isinstance(version, int) or version > TABLE_FORMAT:
            raise InvalidArgument(
                f"{p} is a tabular benchmark of layout version {version}; this hpostore reads "
                f"up to {TABLE_FORMAT}: upgrade hpostore"
            )
        types = {f.name: str(f.type) for f in table.schema}
        wrong = {
            c: types.get(c, "(absent)") for c, t in PARQUET_COLUMNS.items() if types.get(c) != t
        }
        if wrong:
            raise InvalidArgument(
                f"{p} is not a tabular benchmark: expected columns {PARQUET_COLUMNS}, "
                f"these differ: {wrong}"
            )
        groups: dict[str, list[tuple[int, float, float]]] = {}
        cols = [table.column(c).to_pylist() for c in PARQUET_COLUMNS]
        for config, epoch, error, sec in zip(*cols):
            if config is None or epoch is None or error is None or sec is None:
                raise InvalidArgument(f"{p}: a row has a null value; the table is damaged")
            groups.setdefault(config, []).append((epoch, error, sec))
        rows = []
        for config, points in groups.items():
            points.sort(key=lambda x: x[0])
            if [e for e, _, _ in points] != list(range(1, len(points) + 1)):
                raise InvalidArgument(
                    f"{p}: config {config} has epochs {[e for e, _, _ in points]}; a curve holds "
                    "each epoch 1, 2, ..., n once"
                )
            try:
                parsed = json.loads(config)
            except ValueError:
                raise InvalidArgument(f"{p}: config {config!r} is not JSON") from None
            rows.append(
                TabularRow(parsed, tuple(e for _, e, _ in points), tuple(s for _, _, s in points))
            )
        try:
            space = ConfigSpace.from_json(space_json)
        except ConfigSpaceError as exc:
            raise InvalidArgument(f"{p}: the recorded config space is invalid ({exc})") from None
        return cls(rows, space, name=name, max_resource=max_resource)


class _Encoder:
    """A config as its point in the unit cube of ``space`` (see the module doc): one quantile
    per numeric dimension, then one-hot blocks (entries ``sqrt(1/2)``) per categorical one."""

    def __init__(self, space: ConfigSpace) -> None:
        cube = UnitCube(space)
        self.names = [d.name for d in cube.dims]
        self._numeric: list[tuple[str, Callable[[Any], float]]] = []
        self._categorical: list[tuple[str, Choice, dict[tuple[type, Any], int], int]] = []
        offset = sum(d.kind != "cat" for d in cube.dims)
        for d in cube.dims:
            if isinstance(d.domain, Choice):
                index: dict[tuple[type, Any], int] = {}
                for k, v in enumerate(d.domain.values):
                    index.setdefault((type(v), v), k)
                self._categorical.append((d.name, d.domain, index, offset))
                offset += d.size
            else:
                self._numeric.append((d.name, _fast_quantile(d) or _slow_quantile(d)))
        self.width = offset

    def __call__(self, config: Mapping[str, Any]) -> np.ndarray:
        f = [enc(config[name]) for name, enc in self._numeric]
        if self._categorical:
            f.extend([0.0] * (self.width - len(f)))
            for name, domain, index, offset in self._categorical:
                value = config[name]
                k = index.get((type(value), value))
                if k is None:
                    k = domain.values.index(value)  # 1 == 1.0 == True; ValueError if absent
                f[offset + k] = _HALF_SQRT2
        return np.array(f)


def _fast_quantile(d: Any) -> Callable[[Any], float] | None:
    """The closed form of ``_quantile`` for uniform, loguniform and bounded randint dims."""
    domain: ScipyDomain = d.domain
    args, kw = domain.args, dict(domain.kwds)
    lo_q, hi_q = 1e-9, 1.0 - 1e-9
    if domain.dist == "uniform" and d.kind == "float":
        loc = float(kw.get("loc", args[0] if args else 0.0))
        scale = float(kw.get("scale", args[1] if len(args) > 1 else 1.0))
        return lambda v: min(max((float(v) - loc) / scale, lo_q), hi_q)
    if domain.dist in ("loguniform", "reciprocal") and not kw and len(args) == 2:
        lo = math.log(args[0])
        width = math.log(args[1]) - lo
        return lambda v: min(max((math.log(float(v)) - lo) / width, lo_q), hi_q)
    if domain.dist == "randint" and d.kind == "int" and d.size > 0:
        low, size = d.low, d.size
        return lambda v: (int(v) - low + 0.5) / size
    return None


def _slow_quantile(d: Any) -> Callable[[Any], float]:
    """``_quantile`` of dim ``d`` through its distribution's CDF (frozen once, not per call)."""
    frozen = d.domain.frozen()
    if d.domain.dist == "norm" and d.kind == "float":
        cdf = NormalDist(float(frozen.mean()), float(frozen.std())).cdf
    else:
        cdf = frozen.cdf
    if d.kind == "int":
        return lambda v: float(0.5 * (cdf(v - 1) + cdf(v)))
    return lambda v: min(max(float(cdf(float(v))), 1e-9), 1.0 - 1e-9)
