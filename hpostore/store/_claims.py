"""Claims on a Parquet study folder (``_writer.json``): taken atomically, reclaimed when stale."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import HPOStoreError, StudyWriterConflict

CLAIM_NAME = "_writer.json"
log = logging.getLogger("hpostore")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return pid > 0


def _read_claim(claim: Path) -> tuple[int, dict[str, Any] | None] | None:
    """(inode, holder) of a claim file; holder None when empty or garbage; None if absent."""
    try:
        with open(claim, "rb") as f:
            ino = os.fstat(f.fileno()).st_ino
            data = f.read()
    except FileNotFoundError:
        return None
    try:
        value = json.loads(data)
    except ValueError:
        return ino, None
    return ino, value if isinstance(value, dict) else None


def _own_process(holder: dict[str, Any]) -> bool:
    return holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname()


def _stale(holder: dict[str, Any]) -> bool:
    """A claim of a dead process on this host."""
    pid = holder.get("pid")
    return (
        holder.get("host") == socket.gethostname() and isinstance(pid, int) and not _pid_alive(pid)
    )


class Claims:
    """The claims one writer holds. A claim is written to a temporary file and hard-linked into
    place (never seen empty); an empty, garbage or dead-process claim is moved aside (one taker
    wins) and taken; a claim moved by a racing taker is put back."""

    def __init__(self, store: str, writer: str, local: Callable[[str], Any]) -> None:
        self.store = store
        self.writer = writer
        #: writer id -> the open store object of this process with that id, or None
        self.local = local
        self.held: dict[str, Path] = {}  # study -> its claim file

    def take(self, study: str, folder: Path) -> None:
        """Claim ``study`` (its folder ``folder``) for this writer, or raise StudyWriterConflict."""
        claim = folder / CLAIM_NAME
        info = {
            "writer": self.writer,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        tmp = folder / f".{CLAIM_NAME}.{self.writer}.tmp"
        try:
            folder.mkdir(exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(json.dumps(info).encode())
                f.flush()
                os.fsync(f.fileno())
            for _ in range(5):
                try:
                    os.link(tmp, claim)  # atomic, no-replace: the claim appears whole or not
                except FileExistsError:
                    pass
                else:
                    self.held[study] = claim
                    return
                found = _read_claim(claim)
                if found is None:
                    continue  # released meanwhile
                ino, holder = found
                if holder is not None and _own_process(holder):
                    if self._open_here(str(holder.get("writer"))):
                        raise StudyWriterConflict(
                            f"study {study!r} in {self.store} is being written by writer "
                            f"{holder.get('writer')} (pid {holder.get('pid')}: another store "
                            "object of this process, still open). Close that store (or the "
                            "tuner that opened it), or write through it."
                        )
                    holder = None  # its store object is gone, never closed: stale
                if holder is not None and not _stale(holder):
                    raise StudyWriterConflict(
                        f"study {study!r} in {self.store} is being written by writer "
                        f"{holder.get('writer')} (pid {holder.get('pid')} on "
                        f"{holder.get('host')}, since {holder.get('since')}). One writer appends "
                        "to a study at a time: give this run another study name, or wait for "
                        f"that one to finish. If that writer is gone (another machine), delete "
                        f"{claim} and try again."
                    )
                self._take_aside(claim, ino, holder)
        except OSError as exc:
            raise HPOStoreError(f"cannot claim study {study!r} at {claim}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        raise StudyWriterConflict(
            f"study {study!r} in {self.store}: cannot claim {claim}; other writers keep taking "
            "it. Give this run another study name."
        )

    def _take_aside(self, claim: Path, ino: int, holder: dict[str, Any] | None) -> None:
        """Remove a stale claim so that only one taker wins and no live claim is lost."""
        aside = claim.with_name(f".{CLAIM_NAME}.{self.writer}.stale")
        try:
            os.rename(claim, aside)  # atomic: of several takers, one moves it
        except FileNotFoundError:
            return
        if os.stat(aside).st_ino != ino:  # a writer claimed it after we judged: put it back
            with contextlib.suppress(FileExistsError):  # else a third took it; the writer
                os.link(aside, claim)  # we moved finds out at its next publish
        else:
            log.warning("hpostore: took over the stale claim %s (was %s)", claim, holder)
        aside.unlink(missing_ok=True)

    def _open_here(self, writer: str) -> bool:
        """Whether the store object of this process with id ``writer`` still exists."""
        if self.local(writer) is None:
            return False
        gc.collect()  # an abandoned object kept only by a reference cycle
        return self.local(writer) is not None

    def check(self, study: str) -> None:
        """Raise StudyWriterConflict unless this writer still holds ``study``'s claim."""
        claim = self.held[study]
        found = _read_claim(claim)
        holder = found[1] if found else None
        if holder is None or holder.get("writer") != self.writer:
            raise StudyWriterConflict(
                f"study {study!r} in {self.store}: this writer's claim {claim} was taken by "
                f"{holder}; another writer appends to the study. Reopen the store and replay "
                "the study before writing to it."
            )

    def release(self) -> None:
        """Remove every claim this writer holds."""
        for claim in self.held.values():
            found = _read_claim(claim)
            if found is not None and found[1] is not None and found[1].get("writer") == self.writer:
                claim.unlink(missing_ok=True)
        self.held.clear()
