"""The error hierarchy: one root, typed subclasses, messages that say what to do."""

from __future__ import annotations


class HPOStoreError(Exception):
    """Root of every error hpostore raises on purpose."""


class StoreLocked(HPOStoreError):
    """Another process holds the store open for writing."""


class ReadOnlyStoreError(HPOStoreError):
    """A write (or a non-SELECT statement) was attempted on a read-only store."""


class FormatVersionError(HPOStoreError):
    """The log was written by a newer, incompatible format version (or is not an hpostore log)."""


class CorruptLogError(HPOStoreError):
    """An event or segment cannot be read; the message names the file and offset or seq."""


class SnapshotChanged(HPOStoreError):
    """A snapshot file changed on disk while a resumed study still read tables from it (the log
    is intact: open the study again)."""


class ReplayDivergence(HPOStoreError):
    """Re-executing a user searcher/scheduler proposed a config that differs from the log."""

    def __init__(self, message: str, *, trial: int) -> None:
        super().__init__(message)
        self.trial = trial


class ConfigSpaceError(HPOStoreError, ValueError):
    """A config space (or a config) holds something that cannot be recorded as JSON."""


class StudyMismatch(HPOStoreError):
    """Resuming a study with a different config space, searcher or scheduler than it was made with."""


class ObjectiveSignatureError(HPOStoreError, TypeError):
    """The objective cannot be called as ``objective(**config)``."""


class TooManyFailures(HPOStoreError):
    """``max_failures`` trials in a row failed; the study was stopped cleanly."""


class InvalidArgument(HPOStoreError, ValueError):
    """An argument a user passed is out of its allowed range or of the wrong type."""


class StudyWriterConflict(StoreLocked):
    """Another writer is appending to the same study of a Parquet log directory."""


class SQLNotAllowed(ReadOnlyStoreError):
    """User SQL tried to write, or to reach files or settings outside the log; it was refused."""


class AnalysisError(HPOStoreError):
    """The read path cannot answer: not an event log, or arguments out of range (message says why)."""


class StudyInterrupted(SystemExit, KeyboardInterrupt):
    """Ctrl-C ended ``HPOTuner.run()``: the running trials are logged interrupted, and running
    the same command again resumes. A ``KeyboardInterrupt`` (catch it as one) that is also a
    ``SystemExit``, so that uncaught it ends the program with its one-line message and no
    traceback (nothing global is installed for that). Not an :class:`HPOStoreError`."""
