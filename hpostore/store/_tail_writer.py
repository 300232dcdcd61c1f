"""The write side of a DuckDB store's tail file: durable appends that a failed write cannot tear."""

from __future__ import annotations

import contextlib
import logging
import os

import pyarrow as pa

from .._files import fsync_dir
from ..errors import HPOStoreError
from ..log.events import Row, encode_commit

log = logging.getLogger("hpostore")

#: Rewrite the tail without its folded lines when it grows past this while folds keep up.
TAIL_REWRITE_BYTES = 4 << 20
#: Space reserved ahead of the writer (``posix_fallocate``), so that a commit's fdatasync does not
#: also have to journal a new file size. Measured on this project's ext4 VM: append + fdatasync
#: 280 µs, a write into reserved space + fdatasync 160 µs. Readers drop the reserved NUL bytes
#: (:mod:`hpostore.log.tail`). A durable trial writes ~1 KB, so each reserve serves a few
#: hundred trials; kept small because a full disk fills that much sooner.
RESERVE_BYTES = 256 << 10
#: Bytes copied at a time when the tail is rewritten.
COPY_CHUNK = 1 << 20


class TailWriter:
    """Appends a checksummed line of events to ``path`` with one write + fdatasync per commit.

    The lines go into space reserved ahead of them (:data:`RESERVE_BYTES` of NUL bytes at a
    time), so the file is longer than what was written: :attr:`size` is where the next batch
    goes. A batch that fails (disk full, I/O error) is cut off again, so the file always ends
    with a complete batch and the caller can keep the rows and retry: the log stays gapless. If
    even the cut fails, :attr:`failed` says why and every later append is refused.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        # no O_APPEND: each batch is written at ``size``, inside the reserved space
        self.fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        self.size = os.fstat(self.fd).st_size  # the store truncated it at open: no reserve yet
        #: the file's length: ``size`` plus the NUL bytes reserved after it
        self.reserved = self.size
        self.failed: str | None = None
        #: where each line appended since the file was empty (or rewritten) ends, oldest first:
        #: one per commit the store has not folded yet, so a fold knows where its lines end
        self._ends: list[int] = []

    def append(self, rows: list[Row]) -> pa.Table | None:
        """Write ``rows`` and fdatasync; raises :class:`HPOStoreError` with nothing of them kept.
        Returns the rows' Arrow table when the line was one (a large commit), for the fold."""
        if self.failed is not None:
            raise HPOStoreError(self.failed)
        if self.fd is None:
            raise HPOStoreError(f"{self.path}: the store is closed")
        line, table = encode_commit(rows)
        data = memoryview(line)
        start, end = self.size, self.size + len(data)
        try:
            if end > self.reserved:
                self._reserve(end)
            offset = start
            while data:
                written = os.pwrite(self.fd, data, offset)
                data, offset = data[written:], offset + written
            os.fdatasync(self.fd)
        except OSError as exc:
            self._cut(start, exc)
            raise HPOStoreError(
                f"{self.path}: cannot write {len(rows)} events ({exc.strerror}). They are kept, "
                "and nothing after them was written: free some space and commit again, or close "
                "the store and resume the study later."
            ) from exc
        self.size = end
        self._ends.append(end)
        return table

    def _reserve(self, end: int) -> None:
        """Reserve space past ``end``; without it (a full disk, a file system that cannot) the
        write extends the file itself, as a plain append would."""
        assert self.fd is not None
        want = end + RESERVE_BYTES
        try:
            os.posix_fallocate(self.fd, self.reserved, want - self.reserved)
            self.reserved = want
        except OSError:
            # the C library's fallback may have written part of the zeros before it failed
            self.reserved = max(self.reserved, os.fstat(self.fd).st_size)

    def _cut(self, size: int, cause: OSError) -> None:
        assert self.fd is not None
        try:
            os.ftruncate(self.fd, size)
            self.reserved = size
        except OSError as exc:
            self.failed = (
                f"{self.path}: a write failed ({cause.strerror}) and the partly written events "
                f"could not be cut off ({exc.strerror}); this store takes no more writes. Close "
                "it and open the file again to resume: the torn line is cut off then, and "
                "everything committed before it is kept."
            )

    def trim(self, folded: int) -> None:
        """Drop the lines of the oldest ``folded`` commits (now in the table): empty the file
        when no other line is in it, or (when large) rewrite it with the lines after them.

        The caller holds the lock that commits take, so no append runs meanwhile. If this fails
        the folded lines stay; readers skip them by seq.
        """
        if not folded:
            return
        keep_from, self._ends = self._ends[folded - 1], self._ends[folded:]
        if self.fd is None or self.failed is not None:
            return
        try:
            if not self._ends:
                os.ftruncate(self.fd, 0)
                self.size = self.reserved = 0
            elif self.size > TAIL_REWRITE_BYTES:
                self._rewrite(keep_from)
        except OSError as exc:
            log.warning("%s: could not trim the tail (%s)", self.path, exc)

    def _rewrite(self, keep_from: int) -> None:
        """Replace the file by a copy of its bytes from ``keep_from`` to :attr:`size`: the
        unfolded commits' lines as they were written (no re-encoding, and their checksums
        stay those that were made durable)."""
        assert self.fd is not None
        tmp = self.path + ".new"
        try:
            self._copy(keep_from, tmp)
            fd = os.open(tmp, os.O_WRONLY)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        try:
            os.replace(tmp, self.path)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        os.close(self.fd)
        self.fd = fd  # the appends go to the new file from now on, whatever follows
        self.size = self.reserved = os.fstat(fd).st_size
        self._ends = [end - keep_from for end in self._ends]
        try:  # the rename is durable before any append goes to the new file
            fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        except OSError as exc:
            self.failed = (
                f"{self.path}: the tail was rewritten, but the rename could not be made durable "
                f"({exc.strerror}); this store takes no more writes. Close it and open the file "
                "again to resume: everything committed is in the tail or the table."
            )

    def _copy(self, start: int, target: str) -> None:
        """Copy bytes ``start`` to :attr:`size` of the file into a new file ``target``, durably."""
        source = os.open(self.path, os.O_RDONLY)
        try:
            with open(target, "wb") as f:
                offset = start
                while offset < self.size:
                    chunk = os.pread(source, min(COPY_CHUNK, self.size - offset), offset)
                    if not chunk:
                        raise OSError(f"{self.path} ends at byte {offset}, before {self.size}")
                    f.write(chunk)
                    offset += len(chunk)
                f.flush()
                os.fdatasync(f.fileno())
        finally:
            os.close(source)

    def close(self) -> None:
        if self.fd is not None:
            if self.failed is None and self.reserved > self.size:
                try:  # give the reserved space back (readers skip it either way)
                    os.ftruncate(self.fd, self.size)
                except OSError as exc:
                    log.warning("%s: could not give back the reserved space (%s)", self.path, exc)
            os.close(self.fd)
            self.fd = None
