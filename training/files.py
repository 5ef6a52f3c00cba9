"""Writing files so that a crash, a full disk or a kill mid-write never leaves a partial file, and
reading files from strangers without hanging on what is not a file.

The one atomic writer of the project (run records, checkpoints, reports, figures, benchmark tables):
the bytes go to a temporary file in the target's folder, are flushed and fsynced, and the temporary
file then replaces the target in one ``os.replace`` (atomic on POSIX within a file system); the
folder is fsynced so the rename itself survives a power cut. A failure at any point removes the
temporary file and leaves the previous target as it was.

The reader (:func:`read_regular_file`) opens without blocking and checks that the path is a regular
file before reading: a FIFO with no writer, a device such as ``/dev/zero`` or a folder is refused at
once instead of hanging the loader or reading forever. :func:`parse_json` is the strict JSON reader of
the files strangers hand the kit (vector manifests, tolerance declarations).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any


def check_path(name: str, path: object) -> Path:
    """``path`` as a :class:`~pathlib.Path`, refusing with an error naming ``name`` what is not a
    file-system path (``None``, a number, bytes), an empty path and a path holding a NUL byte."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{name}: expected a file path (str or os.PathLike), got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise TypeError(f"{name}: expected a text path, got {type(text).__name__}")
    if text == "":
        raise ValueError(f"{name}: the path is empty")
    if "\0" in text:
        raise ValueError(f"{name}: a path cannot contain a NUL byte, got {text!r}")
    return Path(text)


class NotARegularFileError(OSError):
    """The path names a folder, FIFO, device or socket where a file's contents were expected."""


_KINDS = (
    (stat.S_ISDIR, "folder"),
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
)


def read_regular_file(path: Path) -> bytes:
    """The contents of the regular file at ``path``.

    Opened with ``O_NONBLOCK`` (opening a FIFO that has no writer would otherwise wait for one) and
    checked with ``fstat`` on the open descriptor before anything is read, so the check and the read
    concern the same file. Anything but a regular file is a :class:`NotARegularFileError`; other
    failures are the ``OSError`` the system gave.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((k for test, k in _KINDS if test(mode)), "special file")
            raise NotARegularFileError(f"not a regular file (a {kind})")
    except BaseException:
        os.close(fd)
        raise
    with open(fd, "rb") as fh:  # owns fd from here: closed on leaving
        return fh.read()


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


def _no_json_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


class DuplicateKeyError(ValueError):
    """A JSON object that names one key twice: ``json`` keeps the last silently; the readers refuse it."""


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for ``json.loads``: the object as a dict, or :class:`DuplicateKeyError`."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(f"the key {key!r} appears twice in one JSON object")
        out[key] = value
    return out


def parse_json(data: bytes) -> Any:
    """Strict JSON from bytes: UTF-8, no ``NaN``/``Infinity``, no key twice in an object; Python's limits
    (digits of an integer, nesting depth) and bad encodings all raise ``ValueError`` or ``RecursionError``."""
    return json.loads(data.decode("utf-8"), parse_constant=_no_json_constant, object_pairs_hook=unique_keys)


__all__ = [
    "DuplicateKeyError",
    "NotARegularFileError",
    "check_path",
    "parse_json",
    "read_regular_file",
    "unique_keys",
    "write_atomic",
]
