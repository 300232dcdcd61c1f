"""File-system steps the write paths share."""

from __future__ import annotations

import os


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make the entries of the directory ``path`` durable (a rename or a new file in it);
    raises ``OSError`` when the directory cannot be opened or synced."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
