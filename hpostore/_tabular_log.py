"""A study's per-epoch ``report`` events assembled into the curves of a tabular benchmark."""

from __future__ import annotations

import math
from typing import Any

from .errors import InvalidArgument
from .log.events import dumps
from .space import ConfigSpace
from .store.base import EventLog

__all__ = ["Curve", "curves_from_log"]

#: one table row as plain data: (config, error after each epoch, seconds of each epoch)
Curve = tuple[dict[str, Any], tuple[float, ...], tuple[float, ...]]


def curves_from_log(
    store: EventLog,
    study: str,
    resource_attr: str,
    max_resource: int | None,
    keep_partial: bool,
) -> tuple[list[Curve], ConfigSpace, int]:
    """The curves, config space and full-curve epochs of ``study`` in ``store``, as
    :meth:`TabularBenchmark.from_study <hpostore.tabular.TabularBenchmark.from_study>`
    documents them."""
    from .log.fold import REPLAY_COLUMNS, replay_table

    if max_resource is not None and (
        not isinstance(max_resource, int) or isinstance(max_resource, bool) or max_resource < 1
    ):
        raise InvalidArgument(f"max_resource must be a positive int, got {max_resource!r}")
    table = store.events(study, columns=REPLAY_COLUMNS)
    if table.num_rows == 0:
        raise InvalidArgument(f"no study {study!r} in {store.path}; its studies: {store.studies()}")
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
    rows: list[Curve] = []
    for n, trial in sorted(best.values(), key=lambda v: v[1]):
        curve = usable[trial][:n]
        rows.append((configs[trial], tuple(e for _, e, _ in curve), tuple(s for _, _, s in curve)))
    return rows, space, full
