"""Worker processes that never outlive the tuner: their start method and their lifeline."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import threading
from multiprocessing.connection import Connection
from typing import Any


def worker_context() -> Any:
    """The multiprocessing context for worker and manager processes.

    ``forkserver`` where it exists, with hpostore preloaded in the fork server: each process
    then starts in milliseconds, without the tuner's threads (DuckDB's, TensorFlow's) or its
    open files (the store's lock), which a plain fork of the tuner would inherit. Else spawn.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["hpostore.tuner"])
        return ctx
    return multiprocessing.get_context("spawn")


def exit_when_gone(lifeline: Connection) -> None:
    """Process initializer: exit as soon as the tuner closes ``lifeline`` or dies.

    ``lifeline`` is the read end of a pipe whose only write end the tuner holds: the kernel
    closes it when the tuner exits in any way (SIGKILL included), and a pipe cannot be fooled
    by a new process that reuses the tuner's pid. A pool worker would not notice on its own:
    its parent is the fork server, and it waits on a queue whose write end its siblings hold.

    Ctrl-C is the tuner's alone: a terminal sends SIGINT to the whole process group, and the
    tuner logs the running trials interrupted and kills its workers, so a worker ignores it
    (instead of printing a traceback of its own).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            while True:
                lifeline.recv_bytes()
        os._exit(0)

    threading.Thread(target=watch, name="hpostore-exit-when-gone", daemon=True).start()


def lifeline() -> tuple[Connection, Connection]:
    """(read end for the children, write end the tuner keeps open while they may live)."""
    reader, writer = multiprocessing.Pipe(duplex=False)
    return reader, writer


_pid = os.getpid()
_worker_name: str | None = None


def _forked() -> None:
    global _pid, _worker_name
    _pid, _worker_name = os.getpid(), None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def current_pid() -> int:
    """This process's pid without a system call (``os.getpid()`` is one, of a few µs here,
    and the write path asks on every event): kept up to date across ``fork``."""
    return _pid


def worker_name() -> str:
    """``host:pid`` of this process, as events name workers (looked up once per process:
    ``gethostname`` costs tens of µs, and a forked worker has a pid of its own)."""
    global _worker_name
    if _worker_name is None:
        _worker_name = f"{socket.gethostname()}:{_pid}"
    return _worker_name
