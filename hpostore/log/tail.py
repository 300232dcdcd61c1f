"""The write-ahead tail file: one reader, one set of corruption rules, for the store and analysis.

Rules (the same for every reader):

- the writer reserves space ahead of its lines (NUL bytes, which no line holds): the file ends
  where they start. A crash in the middle of a write into that space can leave a hole of
  unwritten space (at least a 512-byte sector of NULs, which no flipped byte makes) before bytes
  that were written: that write was never acknowledged, so the file ends at the line the
  hole is in;
- a last line without its newline is a write a crash interrupted, never acknowledged: it is
  left out — unless it is a whole valid line followed by one stray byte (its newline flipped),
  which is corruption;
- every complete line must pass its CRC32 (format v2) and decode to an event, or to a
  commit's batch of events (a writer writes one line a commit: JSON, or for a large commit an
  Arrow batch of the events schema); any that does not is a
  :class:`~hpostore.errors.CorruptLogError` naming the file and byte offset;
- a tail written by hpostore 0.1 (format v1, lines without a checksum) is still read, so an
  upgrade can recover a crashed old writer's tail. The first complete line decides the file's
  version and every line must then be of it: a checksummed file can never be read as a v1 one
  (its lines start with a hex digit, a v1 line with ``[``, and no single flipped byte turns
  one into a valid other), so detection in v2 files is not weakened. Writers truncate the
  tail at open, so they only ever write v2 files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import CorruptLogError, HPOStoreError
from .events import Row, corrupt_line, decode_rows, line_version


@dataclass(frozen=True, slots=True)
class Tail:
    """The complete lines of a tail file; ``end`` is the byte offset just past the last one."""

    rows: list[Row]
    end: int
    #: 0 for an empty file, 1 for lines without checksums (hpostore 0.1), 2 for checksummed ones
    version: int


def read_tail(path: str | os.PathLike[str]) -> Tail:
    """Read a tail file under the rules above (a missing file is an empty tail)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return Tail([], 0, 0)
    except OSError as exc:
        raise HPOStoreError(f"cannot read the write-ahead tail {path}: {exc}") from exc
    return parse_tail(data, path)


#: the smallest hole a crash leaves in space reserved ahead of the writer: a disk sector
_HOLE = b"\0" * 512


def _written(data: bytes) -> bytes:
    """``data`` without the space reserved ahead of the writer (and a crash's hole in it)."""
    if data.endswith(b"\0"):
        data = data.rstrip(b"\0")
    hole = data.find(_HOLE)
    if hole >= 0:
        data = data[: data.rfind(b"\n", 0, hole) + 1]
    return data


def parse_tail(data: bytes, path: object) -> Tail:
    """:func:`read_tail` on bytes already read; ``path`` names the file in errors."""
    data = _written(data)
    rows: list[Row] = []
    offset = 0
    version = 0
    while True:
        end = data.find(b"\n", offset)
        if end < 0:
            break
        line = data[offset:end]
        v = line_version(line)
        if version == 0:
            version = v
        elif v != version:
            raise corrupt_line(path, offset, "a line without a checksum among checksummed ones")
        try:
            rows.extend(decode_rows(line))
        except ValueError as exc:
            raise corrupt_line(path, offset, str(exc)) from None
        offset = end + 1
    rest = data[offset:]
    if len(rest) > 1 and _is_valid(rest[:-1], version):
        raise corrupt_line(path, offset, "its newline was overwritten")
    return Tail(rows, offset, version)


def _is_valid(line: bytes, version: int) -> bool:
    if version and line_version(line) != version:
        return False
    try:
        decode_rows(line)
    except ValueError:
        return False
    return True


def fresh_rows(rows: list[Row], next_seq: dict[str, int], where: object) -> list[Row]:
    """The tail rows a table does not hold yet, checking each study continues gaplessly.

    ``next_seq`` maps study -> the seq the table expects next (absent: 1); it is updated.
    Rows below it were folded before a crash cut the tail's truncation short.
    """
    in_table = dict(next_seq)
    fresh: list[Row] = []
    for row in rows:
        study, seq = row[0], row[1]
        nxt = next_seq.get(study, 1)
        if seq < nxt:
            if seq >= in_table.get(study, 1):
                raise CorruptLogError(
                    f"{where}: study {study!r} has seq {seq} twice in the tail; a writer "
                    "wrote over its own events. Move the file aside to open the store."
                )
            continue
        if seq > nxt:
            raise CorruptLogError(
                f"{where}: study {study!r} jumps from seq {nxt - 1} to {seq}; events are "
                "missing between the table and the tail"
            )
        next_seq[study] = seq + 1
        fresh.append(row)
    return fresh
