"""Writing files so that a crash, a full disk or a kill mid-write never leaves a partial file.

The one atomic writer of the project (run records, checkpoints, reports, figures, benchmark tables):
the bytes go to a temporary file in the target's folder, are flushed and fsynced, and the temporary
file then replaces the target in one ``os.replace`` (atomic on POSIX within a file system); the
folder is fsynced so the rename itself survives a power cut. A failure at any point removes the
temporary file and leaves the previous target as it was.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (parent folders are created); returns the path.

    The file gets the usual ``0o666 & ~umask`` permissions (a record is meant to be read by others).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"data: expected bytes, got {type(data).__name__}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened and fsynced
        dir_fd = os.open(out.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return out


__all__ = ["write_atomic"]
