"""One writer per DuckDB store: an flock on the DuckDB file itself, and this process's writers.

POSIX-only (``fcntl.flock``) on a local file system. The lock is taken on the DuckDB file, not on
a separate lock file, so deleting ``<path>.lock`` (which only says who holds the lock) cannot let
a second writer in. The kernel releases it when the process dies. On NFS, ``flock`` is emulated
with byte-range locks that conflict with DuckDB's own: keep DuckDB stores on a local disk.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import threading
import weakref
from datetime import datetime, timezone
from typing import Any

from ..errors import HPOStoreError, StoreLocked

_WRITERS: dict[str, weakref.ref[Any]] = {}
_WRITERS_MU = threading.Lock()


def _key(path: str) -> str:
    return os.path.realpath(path)


def registered_writer(path: str) -> Any | None:
    """The writer object this process registered for ``path`` (closed or not), if alive."""
    with _WRITERS_MU:
        ref = _WRITERS.get(_key(path))
    return None if ref is None else ref()


def register_writer(path: str, writer: Any) -> None:
    with _WRITERS_MU:
        _WRITERS[_key(path)] = weakref.ref(writer)


def unregister_writer(path: str, writer: Any) -> None:
    with _WRITERS_MU:
        key = _key(path)
        ref = _WRITERS.get(key)
        if ref is not None and ref() in (None, writer):
            del _WRITERS[key]


class WriterLock:
    """An exclusive ``flock`` on ``path`` (an existing DuckDB file); ``<path>.lock`` names the holder."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.info_path = path + ".lock"
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise HPOStoreError(f"cannot open {path} to lock it: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLocked(
                f"{path} is locked for writing by {self.holder()}. One process writes a store "
                "at a time: wait for it to finish, open it with read_only=True to look, or use "
                "another file."
            ) from None
        self._fd: int | None = fd
        self._info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "argv": " ".join(sys.argv)[:200],
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        self.write_info()

    def write_info(self) -> None:
        """(Re)write who holds the lock; a missing info file is recreated at the next fold."""
        tmp = f"{self.info_path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(self._info, f)
            os.replace(tmp, self.info_path)
        except OSError:
            pass  # the info is a courtesy for the StoreLocked message; the flock is the lock

    def check_info(self) -> None:
        if not os.path.exists(self.info_path):
            self.write_info()

    def holder(self) -> str:
        try:
            with open(self.info_path) as f:
                info = json.load(f)
            return f"pid {info['pid']} on {info['host']} ({info['argv']}) since {info['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            pid = self._flock_holder_pid()
            if pid is not None:
                return f"pid {pid} on {socket.gethostname()} (its .lock file is missing)"
            return "another process (its pid is unknown: the .lock file is missing)"

    def _flock_holder_pid(self) -> int | None:
        """Linux: the pid holding an flock on the file, from /proc/locks (None elsewhere)."""
        try:
            st = os.stat(self.path)
            with open("/proc/locks") as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        inode = f":{st.st_ino}"
        for line in lines:
            fields = line.split()
            # "1: FLOCK  ADVISORY  WRITE <pid> <major>:<minor>:<inode> 0 EOF"
            mine = len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].endswith(inode)
            if mine and fields[4].isdigit():
                return int(fields[4])
        return None

    def release(self) -> None:
        if self._fd is not None:
            try:
                if os.path.exists(self.info_path):
                    with open(self.info_path) as f:
                        mine = json.load(f) == self._info
                    if mine:
                        os.unlink(self.info_path)
            except (OSError, ValueError):
                pass  # only a stale courtesy file is left behind
            os.close(self._fd)  # releases the flock
            self._fd = None
