"""Multi-objective studies: the Pareto front and the hypervolume any-time curve (format v2)."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from ._views import AnalysisError, Source, _table, views


def _dominated(a: Sequence[float], b: Sequence[float]) -> bool:
    """``b`` dominates ``a`` (losses: no worse everywhere, better somewhere)."""
    return all(y <= x for x, y in zip(a, b)) and any(y < x for x, y in zip(a, b))


def non_dominated(points: Sequence[Sequence[float]]) -> list[tuple[float, ...]]:
    """The points (losses, minimized) no other point dominates, duplicates once, sorted."""
    unique = sorted({tuple(map(float, p)) for p in points})
    return [p for p in unique if not any(_dominated(p, q) for q in unique)]


def hypervolume_of(points: Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """The volume dominated by ``points`` (losses) and bounded by ``reference`` (a loss
    vector worse than every point that counts). Exact: a sweep in two dimensions, slicing on
    the last objective above (fine for the fronts of a study: tens to hundreds of points)."""
    ref = tuple(map(float, reference))
    inside = [tuple(map(float, p)) for p in points if all(x < r for x, r in zip(p, ref))]
    if any(len(p) != len(ref) for p in inside):
        raise AnalysisError(f"the reference point has {len(ref)} objectives, the points do not")
    return _volume(non_dominated(inside), ref)


def _volume(front: list[tuple[float, ...]], ref: tuple[float, ...]) -> float:
    if not front:
        return 0.0
    if len(ref) == 1:
        return ref[0] - min(p[0] for p in front)
    if len(ref) == 2:
        volume, last_y = 0.0, ref[1]
        for x, y in sorted(front):  # x ascending: y descends along a front
            if y < last_y:
                volume += (ref[0] - x) * (last_y - y)
                last_y = y
        return volume
    # slice on the last objective: between consecutive levels, the front of the points
    # at or below the level, one dimension less
    levels = sorted({p[-1] for p in front}) + [ref[-1]]
    volume = 0.0
    for lo, hi in zip(levels, levels[1:]):
        below = [p[:-1] for p in front if p[-1] <= lo]
        volume += (hi - lo) * _volume(non_dominated(below), ref[:-1])
    return volume


def _objectives(con: object, study: str) -> tuple[list[str], list[float]]:
    table = _table(con, "SELECT metric, sign FROM objectives WHERE study = ? ORDER BY k", [study])  # type: ignore[arg-type]
    if not table.num_rows:
        raise AnalysisError(f"no study {study!r} in the log (no study event)")
    return table.column("metric").to_pylist(), [float(s) for s in table.column("sign").to_pylist()]


def hypervolume(source: Source, study: str, reference: Sequence[float]) -> pa.Table:
    """The hypervolume of ``study``'s results after each result: its any-time curve.

    ``reference``: one value per objective, in the metrics' own units (as measured: for a
    ``max`` objective, a value below every result that should count). Columns: seq,
    elapsed (s of study time), n_finished (results so far), trial, hypervolume (of the
    results so far, larger is better). A result missing an objective counts as none.
    """
    con = views(source)
    metric, sign = _objectives(con, study)
    if len(reference) != len(metric):
        raise AnalysisError(
            f"study {study!r} has objectives {metric}: give a reference value for each, got "
            f"{list(reference)}"
        )
    ref = [s * float(r) for s, r in zip(sign, reference)]
    rows = _table(
        con,
        """
        SELECT m.seq, any_value(m.elapsed) AS elapsed, any_value(m.trial) AS trial,
               list(m.value ORDER BY o.k) AS losses, count(*) AS n
        FROM metrics AS m JOIN objectives AS o ON o.study = m.study AND o.metric = m.metric
        WHERE m.study = ? AND m.kind = 'evaluate'
        GROUP BY m.seq ORDER BY m.seq
        """,
        [study],
    ).to_pylist()
    front: list[tuple[float, ...]] = []
    out: dict[str, list[object]] = {k: [] for k in ("seq", "elapsed", "n_finished", "trial")}
    volumes: list[float] = []
    for n, row in enumerate(rows, 1):
        if row["n"] == len(metric):
            front = non_dominated([*front, tuple(s * v for s, v in zip(sign, row["losses"]))])
        for key, value in (("seq", row["seq"]), ("elapsed", row["elapsed"]),
                           ("n_finished", n), ("trial", row["trial"])):  # fmt: skip
            out[key].append(value)
        volumes.append(hypervolume_of(front, ref))
    return pa.table(
        {
            "seq": pa.array(out["seq"], pa.int64()),
            "elapsed": pa.array(out["elapsed"], pa.float64()),
            "n_finished": pa.array(out["n_finished"], pa.int64()),
            "trial": pa.array(out["trial"], pa.int64()),
            "hypervolume": pa.array(volumes, pa.float64()),
        }
    )


def pareto(source: Source, study: str | None = None) -> pa.Table:
    """The ``pareto`` view (every study, or ``study``'s): the non-dominated trials."""
    con = views(source)
    if study is None:
        return _table(con, "SELECT * FROM pareto")
    return _table(con, "SELECT * FROM pareto WHERE study = ?", [study])
