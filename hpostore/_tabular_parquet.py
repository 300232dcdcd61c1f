"""The Parquet file of a tabular benchmark: written atomically, read back with every check."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._tabular_log import Curve
from .errors import ConfigSpaceError, InvalidArgument
from .log.events import dumps, dumps_config
from .space import ConfigSpace

__all__ = ["PARQUET_COLUMNS", "PARQUET_KEY", "TABLE_FORMAT", "read_table", "write_table"]

#: the schema-metadata key of a table written by :meth:`TabularBenchmark.to_parquet`
PARQUET_KEY = b"hpostore.tabular"
#: the layout version of that Parquet file
TABLE_FORMAT = 1
#: the columns of that Parquet file: one row per (config, epoch)
PARQUET_COLUMNS = {"config": "string", "epoch": "int64", "error": "double", "seconds": "double"}


def write_table(
    path: str | os.PathLike[str],
    curves: Iterable[Curve],
    *,
    name: str,
    max_resource: int,
    space: ConfigSpace,
) -> None:
    """Write ``curves`` to ``path`` as :meth:`TabularBenchmark.to_parquet
    <hpostore.tabular.TabularBenchmark.to_parquet>` documents (temp file + rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    configs: list[str] = []
    epochs: list[int] = []
    errors: list[float] = []
    seconds: list[float] = []
    for config, row_errors, row_seconds in curves:
        text = dumps_config(config)
        for k, (e, s) in enumerate(zip(row_errors, row_seconds), start=1):
            configs.append(text)
            epochs.append(k)
            errors.append(e)
            seconds.append(s)
    meta = {
        "format_version": TABLE_FORMAT,
        "name": name,
        "max_resource": max_resource,
        "space": space.to_json(),
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


def read_table(path: str | os.PathLike[str]) -> tuple[list[Curve], ConfigSpace, Any, Any]:
    """The curves, config space, name and max_resource that :func:`write_table` wrote to
    ``path``; :class:`~hpostore.errors.InvalidArgument` naming the file when it is not one."""
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
    wrong = {c: types.get(c, "(absent)") for c, t in PARQUET_COLUMNS.items() if types.get(c) != t}
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
    rows: list[Curve] = []
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
        rows.append((parsed, tuple(e for _, e, _ in points), tuple(s for _, _, s in points)))
    try:
        space = ConfigSpace.from_json(space_json)
    except ConfigSpaceError as exc:
        raise InvalidArgument(f"{p}: the recorded config space is invalid ({exc})") from None
    return rows, space, name, max_resource
