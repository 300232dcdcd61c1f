"""The event record: kinds, the Arrow schema, the checksummed tail-line codec, the format version.

This module is the one contract between the write path (``hpostore``) and the read path
(``analysis``); see DESIGN.md, "The event log".
"""

from __future__ import annotations

import base64
import binascii
import enum
import io
import json
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

import pyarrow as pa

from ..errors import CorruptLogError, FormatVersionError, InvalidArgument
from . import _arrowcols

#: Major format version written into every ``study`` event. A reader refuses a larger one.
#: Version 2 (hpostore 0.2): the spec's ``metric``/``mode`` may be lists (multi-objective) and
#: ``mode`` may be ``"max"``; ``report``/``evaluate`` payloads may carry ``{"metrics": {name:
#: value}}`` (every metric measured, the objectives included). The columns are those of v1: a
#: v1 log is read through :func:`upcast_spec` and a v1 store stays writable as it is.
#: Why the payload and not a new ``metrics`` column: the columns (and so every DuckDB table,
#: Parquet segment and tail line already written) stay those of v1, so a v1 store opens for
#: writing with no ALTER TABLE, readers of either version read both, and the ``metrics``
#: view (analysis/sql/metrics.sql) gives the metrics as typed DOUBLE rows. A v1 study keeps
#: its v1 ``study`` event on resume (it is never rewritten); what is appended to it reads
#: as v1 too unless the objective returns extra metrics (a payload v1 readers ignore).
FORMAT_VERSION = 2
#: the objective and direction of a study whose spec names none (all v1 studies)
DEFAULT_METRIC, DEFAULT_MODE = "error", "min"
MODES = ("min", "max")


class Kind(str, enum.Enum):
    """Event kinds. Extend, never repurpose."""

    STUDY = "study"
    SESSION = "session"
    SUGGEST = "suggest"
    START = "start"
    REPORT = "report"
    EVALUATE = "evaluate"
    FAIL = "fail"
    #: the trial in flight when a session was interrupted (Ctrl-C); it is re-run on resume
    INTERRUPT = "interrupt"
    STOP = "stop"
    PROMOTE = "promote"
    PAUSE = "pause"
    UPDATE = "update"
    END = "end"
    #: a config queued by the user (``tuner.enqueue``): the next trials run the queue first, each
    #: with a ``suggest`` whose payload has ``origin: enqueued`` (config column; no trial)
    ENQUEUE = "enqueue"
    #: a user attribute (``set_trial_attr`` / ``set_study_attr``): payload ``{"key", "value"}``
    #: (a JSON value); on a trial when ``trial`` is set, else on the study
    ATTR = "attr"


KINDS: frozenset[str] = frozenset(k.value for k in Kind)

#: Arrow schema of the ``events`` table; DuckDB and Parquet hold the same columns.
SCHEMA = pa.schema(
    [
        pa.field("study", pa.string(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("elapsed", pa.float64(), nullable=False),
        pa.field("session", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("trial", pa.int64()),
        pa.field("config", pa.string()),
        pa.field("resource", pa.float64()),
        pa.field("error", pa.float64()),
        pa.field("runtime", pa.float64()),
        pa.field("worker", pa.string()),
        pa.field("payload", pa.string()),
    ]
)
COLUMNS: tuple[str, ...] = tuple(SCHEMA.names)

#: A row in column order; ``ts`` is an int (microseconds since the Unix epoch, UTC).
Row = tuple[
    str, int, int, float, str, str, "int | None", "str | None", "float | None",
    "float | None", "float | None", "str | None", "str | None",
]  # fmt: skip

DUCKDB_DDL = """
CREATE TABLE IF NOT EXISTS events (
    study    VARCHAR     NOT NULL,
    seq      BIGINT      NOT NULL,
    ts       TIMESTAMPTZ NOT NULL,
    elapsed  DOUBLE      NOT NULL,
    session  VARCHAR     NOT NULL,
    kind     VARCHAR     NOT NULL,
    trial    BIGINT,
    config   VARCHAR,
    resource DOUBLE,
    error    DOUBLE,
    runtime  DOUBLE,
    worker   VARCHAR,
    payload  VARCHAR,
    PRIMARY KEY (study, seq)
)
"""


@dataclass(frozen=True, slots=True)
class Event:
    """One logged step. ``config`` and ``payload`` are JSON text; ``ts`` is µs since the epoch (UTC)."""

    study: str
    seq: int
    ts: int
    elapsed: float
    session: str
    kind: str
    trial: int | None = None
    config: str | None = None
    resource: float | None = None
    error: float | None = None
    runtime: float | None = None
    worker: str | None = None
    payload: str | None = None

    def __post_init__(self) -> None:
        if self.seq < 1:
            raise ValueError(f"`seq >= 1` must hold, but got seq={self.seq}")
        if not isinstance(self.kind, str) or not self.kind:
            raise ValueError(f"event kind must be a non-empty string, got {self.kind!r}")

    def to_row(self) -> Row:
        return (
            self.study, self.seq, self.ts, self.elapsed, self.session, self.kind, self.trial,
            self.config, self.resource, self.error, self.runtime, self.worker, self.payload,
        )  # fmt: skip

    @classmethod
    def from_row(cls, row: Row | list[Any]) -> Event:
        return cls(*row)

    def config_dict(self) -> dict[str, Any] | None:
        return None if self.config is None else json.loads(self.config)

    def payload_dict(self) -> dict[str, Any]:
        return {} if self.payload is None else json.loads(self.payload)


def encode_line(row: Row) -> bytes:
    """One tail line (format v2): ``<crc32 of the JSON, 8 lowercase hex> <JSON array>\\n``."""
    return _checksummed(_ROW_ENCODER(row).encode())


def encode_batch(rows: list[Row]) -> bytes:
    """One tail line for a commit's rows: ``<crc32 of the JSON> [[row],[row],...]\\n``.

    The C encoder writes the whole batch in one call, under one checksum: a line per row
    (:func:`encode_line`) cost ~3.4 µs a row here, a batch ~1.9 µs. A commit is all or nothing
    anyway, so a torn batch loses nothing that a torn row would not.
    """
    return _checksummed(_ROW_ENCODER(rows).encode())


#: A commit of at least this many rows is written as an Arrow line (:func:`encode_commit`).
#: Building a table costs ~180 µs whatever its size (13 columns through numpy) plus ~1.2 µs a
#: row; JSON ~1.9 µs a row (measured: 64 rows JSON 0.11 ms, Arrow 0.46 ms; 16k rows JSON 53 ms,
#: Arrow 31 ms). Durable commits (a few rows) stay JSON; batched ones (thousands) go Arrow.
ARROW_LINE_ROWS = 1024
#: the first byte of an Arrow line's body (a JSON body starts with ``[``)
_ARROW_MARK = b"@"


def encode_commit(rows: list[Row]) -> tuple[bytes, pa.Table | None]:
    """The tail line of a commit's ``rows``, and their Arrow table when the line carries one.

    Below :data:`ARROW_LINE_ROWS` rows: a JSON batch (:func:`encode_batch`), and None. From it
    on: ``<crc32 of the body> @<base64 of an Arrow IPC stream of the rows>\\n``. The table is
    what the fold inserts into DuckDB, so a large commit is converted once for both (JSON cost
    ~13 µs a trial in batched mode, and the fold's conversion ~5 more). Base64 keeps the line
    free of newlines and NUL bytes, which the tail's framing and crash-hole rule rely on.
    """
    if len(rows) < ARROW_LINE_ROWS:
        return encode_batch(rows), None
    table = rows_to_table(rows)
    # These megabytes live for a moment, but what the allocators keep of them stays resident: a
    # BufferOutputStream (Arrow's mimalloc) kept ~20 MB in a long batched study. So Python's
    # heap, and the line joined once from its parts (the body is the mark, then the base64)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, SCHEMA) as writer:
        writer.write_table(table)
    encoded = base64.b64encode(sink.getbuffer())
    del sink
    return _checksummed(_ARROW_MARK, encoded), table


def _checksummed(*body: bytes) -> bytes:
    """The line of the body made of the ``body`` parts: its CRC32, a space, the body, a newline
    (joined once: a large body is not copied part by part)."""
    crc = 0
    for part in body:
        crc = zlib.crc32(part, crc)
    return b"".join((b"%08x " % crc, *body, b"\n"))


def line_version(line: bytes) -> int:
    """1 for a line without a checksum (a JSON array, hpostore 0.1), 2 for a checksummed one."""
    return 1 if line[:1] == b"[" else 2


def decode_line(line: bytes) -> Row:
    """Inverse of :func:`encode_line` (a v1 line without a checksum is read too).

    Raises ``ValueError`` on anything malformed, a checksum that does not match included; the
    hex must be exactly the lowercase form written, so no flipped bit passes.
    """
    return _as_row(_json(_checked_body(line)))


def decode_rows(line: bytes) -> list[Row]:
    """The rows of a tail line, one event's (:func:`encode_line`) or a commit's
    (:func:`encode_commit`: JSON or Arrow); raises ``ValueError`` as :func:`decode_line` does."""
    body = _checked_body(line)
    if body[:1] == _ARROW_MARK and line_version(line) == 2:
        return _arrow_rows(body[1:])
    value = _json(body)
    # a batch (a row starts with its study's name); hpostore 0.1 wrote no batches
    if value and isinstance(value[0], list) and line_version(line) == 2:
        return [_as_row(v) for v in value]
    return [_as_row(value)]


def _checked_body(line: bytes) -> bytes:
    """The line's body, its checksum checked (a v1 line is all body)."""
    if line.endswith(b"\n"):
        line = line[:-1]
    if line_version(line) == 2:
        body = line[9:]
        if line[8:9] != b" " or line[:8] != b"%08x" % zlib.crc32(body):
            raise ValueError("its CRC32 checksum does not match its content")
        return body
    return line


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:  # UnicodeDecodeError included
        raise ValueError(f"not a JSON array: {exc}") from None


def _arrow_rows(encoded: bytes) -> list[Row]:
    """The rows of an Arrow line's body (after the mark): checked to be a valid Arrow stream of
    the events schema with a study and a seq in every row (a checksum-valid but hand-made line
    may hold anything)."""
    try:
        with pa.ipc.open_stream(base64.b64decode(encoded, validate=True)) as reader:
            table = reader.read_all()
        table.validate(full=True)
    # (pyarrow raises a plain OSError for some malformed IPC messages)
    except (binascii.Error, ValueError, OSError, pa.ArrowException) as exc:
        raise ValueError(f"not an Arrow batch of events: {exc}") from None
    if not table.schema.equals(SCHEMA):
        raise ValueError("an Arrow batch whose columns are not the events schema")
    if table.column(0).null_count or table.column(1).null_count:
        raise ValueError("an Arrow batch with an event without a study or seq")
    return table_rows(table)


def _as_row(value: Any) -> Row:
    if not isinstance(value, list) or len(value) != len(COLUMNS):
        raise ValueError(f"expected a JSON array of {len(COLUMNS)} columns")
    if not isinstance(value[0], str) or not isinstance(value[1], int):
        raise ValueError("study must be a string and seq an integer")
    return tuple(value)


def check_columns(columns: Sequence[str], where: str) -> None:
    """Raise :class:`FormatVersionError` unless ``columns`` are the event-log columns, in order."""
    if tuple(columns) != COLUMNS:
        raise FormatVersionError(
            f"{where}: its events have columns {list(columns)}, not the hpostore event-log "
            f"columns {list(COLUMNS)}; it is not an event log this hpostore version reads"
        )


def check_format_version(spec: dict[str, Any], study: str) -> None:
    """Refuse a ``study`` event whose format version is newer than :data:`FORMAT_VERSION`."""
    version = spec.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise FormatVersionError(
            f"study {study!r} was written in event-log format version {version} "
            f"(hpostore {spec.get('hpostore_version', '?')}); this hpostore reads versions up to "
            f"{FORMAT_VERSION}. Upgrade hpostore (pip install -U hpostore) to read it."
        )


def upcast_v1_v2(spec: dict[str, Any]) -> dict[str, Any]:
    """A v1 ``study`` spec as v2 says it: one objective, ``metric``/``mode`` present (a v1 spec
    without them minimized ``"error"``). Returns a new dict; the logged spec is not changed."""
    out = dict(spec)
    out["format_version"] = 2
    out.setdefault("metric", DEFAULT_METRIC)
    out.setdefault("mode", DEFAULT_MODE)
    return out


#: ``version -> upcaster to version + 1`` (eventsourcing's small upcast functions)
_UPCASTERS = {1: upcast_v1_v2}


def upcast_spec(spec: dict[str, Any], study: str = "?") -> dict[str, Any]:
    """``spec`` (a ``study`` event's payload) upcast to :data:`FORMAT_VERSION`; refuses a newer
    major version (:func:`check_format_version`)."""
    check_format_version(spec, study)
    version = spec["format_version"]
    while version < FORMAT_VERSION:
        spec = _UPCASTERS[version](spec)
        version = spec["format_version"]
    return spec


def objectives_of(spec: dict[str, Any] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(metric names, modes) of a study spec (any version): ``(("error",), ("min",))`` when
    the spec names none. Raises :class:`FormatVersionError` for a spec whose objectives are
    not names with a mode each."""
    if spec is None:
        return (DEFAULT_METRIC,), (DEFAULT_MODE,)
    metric = spec.get("metric", DEFAULT_METRIC)
    mode = spec.get("mode", DEFAULT_MODE)
    metrics = tuple(metric) if isinstance(metric, list) else (metric,)
    modes = tuple(mode) if isinstance(mode, list) else (mode,)
    if (
        not metrics
        or len(metrics) != len(modes)
        or not all(isinstance(m, str) and m for m in metrics)
        or not all(m in MODES for m in modes)
    ):
        raise FormatVersionError(
            f"the study spec names objectives {metric!r} with modes {mode!r}; expected metric "
            "names with one of 'min'/'max' each. It is not a study spec this hpostore reads"
        )
    return metrics, modes


def check_study_name(study: object) -> str:
    """A study name is data: any non-empty text that is valid UTF-8 and holds no NUL."""
    if not isinstance(study, str) or not study:
        raise InvalidArgument(f"a study name must be a non-empty string, got {study!r}")
    if "\x00" in study:
        raise InvalidArgument(f"study name {study!r} contains a NUL character; remove it")
    try:
        study.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(
            f"study name {study!r} is not valid UTF-8 (it holds undecodable bytes, e.g. from "
            "a file name); give a name of plain text"
        ) from None
    return study


def corrupt_line(path: object, offset: int, problem: str) -> CorruptLogError:
    """The error for a bad tail line: names the file and byte offset, says what to do."""
    return CorruptLogError(
        f"{path}: the event at byte {offset} is corrupt ({problem}); the events before it are "
        f"intact. Move the file aside to open the store (events from byte {offset} on will not "
        "be recovered)."
    )


#: each column's type as a row holds it (``ts``: int64 µs, cast afterwards)
_ROW_TYPES = tuple(pa.int64() if f.name == "ts" else f.type for f in SCHEMA)
_TS = SCHEMA.field("ts").type


def rows_to_table(rows: list[Row]) -> pa.Table:
    """Column-wise Arrow table of ``rows`` with :data:`SCHEMA`."""
    # Column by column through numpy (hpostore.log._arrowcols), not pa.array(rows, type=a
    # struct of the columns): that one pass in C++ took ~0.55x the time (~0.3 against ~0.55
    # µs an event), but pa.array imports pandas when it is installed (~50 MB, ~1 s) into a
    # process that never uses it. The rows are flattened in one pass (they may lie scattered
    # in memory), then each column is a strided copy of the pointers (zip(*rows) visits every
    # row once per column)
    flat = list(chain.from_iterable(rows))
    width = len(_ROW_TYPES)
    if len(flat) != width * len(rows):
        raise ValueError(f"an event row has not the {width} columns of the events schema")
    arrays = [_arrowcols.column(flat[i::width], t) for i, t in enumerate(_ROW_TYPES)]
    arrays[2] = arrays[2].cast(_TS)  # int64 µs -> timestamp: a cast copies no data
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def table_rows(table: pa.Table) -> list[Row]:
    """Rows of an Arrow table with the events columns (``ts`` as µs since the epoch, as
    :meth:`EventLog.append` gives it); the inverse of :func:`rows_to_table`."""
    table = table.select(list(COLUMNS))
    cols = [table.column(i) for i in range(len(COLUMNS))]
    cols[2] = cols[2].cast(pa.int64())  # a tz-aware timestamp's to_pylist would import pandas
    return list(zip(*(c.to_pylist() for c in cols)))


def table_to_events(table: pa.Table) -> list[Event]:
    """Events of an Arrow table with the events schema (``ts`` becomes µs since the epoch)."""
    return [Event(*r) for r in table_rows(table)]


def _not_json(value: object) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _encoder(*, sort_keys: bool, allow_nan: bool) -> Callable[[Any], str]:
    """A compact JSON encoder built once: what ``json.dumps(value, separators=(",", ":"),
    ...)`` writes, byte for byte, without building an encoder (Python's and then C's) on every
    call, which was most of the cost of logging an event."""
    if c_make_encoder is None:  # an interpreter without the C accelerator
        return json.JSONEncoder(
            separators=(",", ":"), sort_keys=sort_keys, allow_nan=allow_nan
        ).encode
    encode = c_make_encoder(
        None, _not_json, encode_basestring_ascii, None, ":", ",", sort_keys, False, allow_nan
    )

    def dumps(value: Any) -> str:
        if isinstance(value, str):  # the C encoder takes containers and scalars but strings
            return encode_basestring_ascii(value)
        try:
            return "".join(encode(value, 0))
        except RecursionError:  # no markers kept (they cost a dict per call): json's message
            raise ValueError("Circular reference detected") from None

    return dumps


#: payloads: plain JSON types only, keys sorted, no NaN
dumps: Callable[[Any], str] = _encoder(sort_keys=True, allow_nan=False)
#: configs: plain JSON types only, no NaN, keys in the config's own order
_dumps_config = _encoder(sort_keys=False, allow_nan=False)
#: tail lines: NaN and infinities allowed (an error column may hold them)
_ROW_ENCODER = _encoder(sort_keys=False, allow_nan=True)


def dumps_config(config: dict[str, Any]) -> str:
    """JSON for a config: plain JSON types only, no NaN, keys in the config's own order."""
    return _dumps_config(config)


def is_finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
