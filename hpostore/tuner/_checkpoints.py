"""Checkpoint directories: one per trial under ``<store>.checkpoints/<encoded study>/``."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from urllib.parse import quote

from ..study import StudyState

#: statuses of trials that will not run again unless a scheduler resumes them (paused)
_ENDED = ("finished", "failed", "stopped")
_PLAIN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


def encode_study(study: str) -> str:
    """A study name as one safe path component: names are data, never paths.

    A plain name (letters, digits, ``._-``, not starting with a dot, up to 100 characters)
    stays as it is; any other is percent-encoded (dots too, so ``..`` cannot climb) and, when
    long, shortened with a hash. Encoded names contain ``%`` or ``~``, plain ones never do, so
    two studies never share a directory.
    """
    if _PLAIN.fullmatch(study):
        return study
    encoded = quote(study, safe="").replace(".", "%2E").replace("~", "%7E")
    if len(encoded) > 100:
        digest = hashlib.sha256(study.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        encoded = f"{encoded[:80]}~{digest}"
    return encoded


class Checkpoints:
    """The checkpoint directories of one study, and their optional cleanup."""

    def __init__(self, root: str | os.PathLike[str] | None, store_path: str, study: str) -> None:
        self._root = None if root is None else os.fspath(root)
        self._store_path = store_path
        self._tmp: str | None = None
        self.study = study

    def root(self) -> str:
        """``checkpoint_root`` if given, else ``<store path>.checkpoints`` (a temporary
        directory, removed at :meth:`close`, for an in-memory store)."""
        if self._root is not None:
            return self._root
        if self._store_path == ":memory:":
            if self._tmp is None:
                self._tmp = tempfile.mkdtemp(prefix="hpostore-checkpoints-")
            return self._tmp
        return self._store_path.rstrip("/\\") + ".checkpoints"

    def study_dir(self) -> str:
        return os.path.join(self.root(), encode_study(self.study))

    def dir(self, trial: int) -> str:
        """``trial``'s directory (created), the same for every attempt and promotion."""
        directory = os.path.join(self.study_dir(), f"trial-{int(trial)}")
        os.makedirs(directory, exist_ok=True)
        return directory

    def cleanup(self, state: StudyState) -> list[int]:
        """Delete the directories no one will read again; the trials whose were deleted.

        Kept: the incumbent's, those of trials not finished (they may be re-run), and those of
        paused trials (a scheduler may resume them with more resource).
        """
        base = self.study_dir()
        try:
            names = os.listdir(base)
        except FileNotFoundError:
            return []
        deleted = []
        for name in names:
            if not name.startswith("trial-") or not name[6:].isdigit():
                continue
            trial = int(name[6:])
            t = state.trials.get(trial)
            if t is None or trial == state.incumbent_trial:
                continue
            if t.status.value in _ENDED:
                shutil.rmtree(os.path.join(base, name), ignore_errors=True)
                deleted.append(trial)
        return sorted(deleted)

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
