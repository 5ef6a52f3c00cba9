"""Where the commands write their results, checked before any work and kept safe after it.

A run of minutes or hours must not end in an error about where to put its results: every command
checks its output options first (:func:`check_output_dir`, :func:`check_output_file`), naming the
option, and when writing still fails at the end (the disk filled, the folder was removed meanwhile)
the results go to a fresh temporary folder instead (:func:`write_with_fallback`) and the error
(:class:`OutputWriteError`) says where they are.

A path option must be parsed by :func:`ddcl_incrt.arguments.path_argument` (``type=path_argument``),
not ``type=Path``: ``Path("")`` is ``Path(".")``, so an empty ``--out ''`` would reach the checks above
as the current folder and be written into; ``path_argument`` refuses it while the option's text is
still known.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from training.files import write_atomic

_T = TypeVar("_T")


class OutputPathError(ValueError):
    """An output option that cannot be written to; the message names the option and the path."""

    def __init__(self, option: str, path: object, problem: str) -> None:
        super().__init__(f"{option} {path}: {problem}")
        self.option = option
        self.path = str(path)


class OutputWriteError(OSError):
    """Writing the results where asked failed after the work was done; ``fallback`` is where they were
    written instead (``None`` when that failed too)."""

    def __init__(self, option: str, path: object, fallback: Path | None, cause: BaseException) -> None:
        where = (
            f"the results were written to {fallback} instead"
            if fallback is not None
            else "no temporary folder could be written either"
        )
        super().__init__(f"{option} {path}: cannot write there ({type(cause).__name__}: {cause}); {where}")
        self.option = option
        self.path = str(path)
        self.fallback = fallback


def _as_path(path: object, option: str) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise OutputPathError(option, repr(path), f"expected a path, got {type(path).__name__}")
    text = os.fspath(path)
    if isinstance(text, bytes) or not text:
        raise OutputPathError(option, repr(path), "expected a non-empty path")
    if "\0" in text:
        raise OutputPathError(option, repr(path), "a path cannot hold a NUL character")
    return Path(text)


def _writable_dir(path: Path) -> bool:
    return os.access(path, os.W_OK | os.X_OK)


def _nearest_existing(path: Path) -> Path:
    """``path`` itself if it exists, else its nearest ancestor that does."""
    while not os.path.lexists(path):
        path = path.parent
    return path


def _check_creatable(path: Path, option: str, shown: Path) -> None:
    """``path`` does not exist: its nearest existing ancestor must be a writable folder, and the folder
    must really take new entries (:func:`_check_writes`)."""
    ancestor = _nearest_existing(Path(os.path.abspath(path)).parent)
    if not ancestor.is_dir():
        raise OutputPathError(option, shown, f"cannot be created: {ancestor} exists and is not a folder")
    if not _writable_dir(ancestor):
        raise OutputPathError(option, shown, f"cannot be created: the folder {ancestor} is not writable")
    _check_names(Path(os.path.abspath(path)), ancestor, option, shown)
    _check_writes(path, option, shown)


def _check_names(path: Path, ancestor: Path, option: str, shown: Path) -> None:
    """The parts of ``path`` below its nearest existing ``ancestor`` (not created by the check: see
    :func:`_check_writes`) must be names the file system takes: each no longer than its ``NAME_MAX``
    and the whole path no longer than ``PATH_MAX`` (a 260-character folder name trained a whole run
    and failed at its first checkpoint). Where the system does not say (no ``pathconf``), nothing is
    assumed."""
    limits: dict[str, int] = {}
    for name in ("PC_NAME_MAX", "PC_PATH_MAX"):
        try:
            limits[name] = os.pathconf(ancestor, name)
        except (AttributeError, OSError, ValueError):
            continue
    name_max, path_max = limits.get("PC_NAME_MAX", -1), limits.get("PC_PATH_MAX", -1)
    for part in path.relative_to(ancestor).parts:
        if name_max > 0 and len(os.fsencode(part)) > name_max:
            raise OutputPathError(
                option,
                shown,
                f"cannot be created: the name {part[:40]}… is longer than the {name_max} bytes {ancestor} takes",
            )
    if path_max > 0 and len(os.fsencode(path)) >= path_max:
        raise OutputPathError(
            option, shown, f"cannot be created: the path is longer than the system's {path_max} bytes"
        )


def _check_writes(folder: Path, option: str, shown: Path) -> None:
    """Create a file in ``folder``, or in its nearest existing ancestor when it does not exist yet, and
    remove it again. Why try instead of asking ``os.access``: permissions do not tell everything — for
    root every folder is "writable", yet ``/proc`` and ``/sys`` refuse new entries, and a read-only or
    full file system refuses them too; a long run must learn this before it starts, not at its end.
    Nothing is created but that one file (no missing folder is made here: runs started at once into
    sibling folders of a new parent would race to make and remove it)."""
    top = _nearest_existing(Path(os.path.abspath(folder)))
    probe: str | None = None
    try:
        fd, probe = tempfile.mkstemp(prefix=".ddcl-incrt-write-check-", dir=top)
        os.close(fd)
    except OSError as exc:
        raise OutputPathError(
            option, shown, f"cannot be written: creating a file in {top} failed ({exc.strerror or exc})"
        ) from exc
    finally:
        if probe is not None:
            with contextlib.suppress(OSError):
                os.unlink(probe)


def check_output_dir(path: object, option: str, *, files: Sequence[str] = (), folders: Sequence[str] = ()) -> Path:
    """``path`` as an output folder: an existing writable folder, or one that can be created; ``files``
    and ``folders`` are what the command will write inside it (none may exist as the other kind)."""
    p = _as_path(path, option)
    # os.path's tests, not Path's: Python 3.11's Path.exists raises for a name too long to look up, and
    # such a path is one that does not exist (its names are then refused by _check_creatable)
    if os.path.lexists(p) and not os.path.exists(p):
        raise OutputPathError(option, p, "is a broken symbolic link")
    if not os.path.exists(p):
        _check_creatable(p, option, p)
        return p
    if not p.is_dir():
        raise OutputPathError(option, p, "exists and is not a folder (give a folder to write into)")
    if not _writable_dir(p):
        raise OutputPathError(option, p, "the folder is not writable")
    _check_writes(p, option, p)
    for name in folders:
        q = p / name
        if os.path.lexists(q) and not q.is_dir():
            raise OutputPathError(option, p, f"{q} exists and is not a folder, and the results go into it")
        if q.is_dir() and not _writable_dir(q):
            raise OutputPathError(option, p, f"the folder {q} is not writable")
    for name in files:
        if (p / name).is_dir():
            raise OutputPathError(option, p, f"{p / name} is a folder, and a file of that name is written")
    return p


def check_output_file(path: object, option: str) -> Path:
    """``path`` as an output file (written atomically: a temporary file beside it, then renamed over
    it): not a folder nor a special file, in a writable folder or one that can be created."""
    p = _as_path(path, option)
    if os.path.isdir(p):  # os.path's tests: see check_output_dir
        raise OutputPathError(option, p, "is a folder (give a file name)")
    if os.path.exists(p) and not os.path.isfile(p):
        raise OutputPathError(option, p, "exists and is not a regular file (writing would replace it)")
    parent = Path(os.path.abspath(p)).parent
    if os.path.lexists(parent) and not os.path.isdir(parent):
        raise OutputPathError(option, p, f"cannot be created: {parent} exists and is not a folder")
    if os.path.isdir(parent) and not _writable_dir(parent):
        raise OutputPathError(option, p, f"the folder {parent} is not writable")
    if os.path.lexists(p):
        _check_writes(parent, option, p)
    else:  # the file and any missing folder above it: their names, and a probe in the nearest folder
        _check_creatable(p, option, p)
    return p


def write_with_fallback(option: str, path: Path, write: Callable[[Path], _T], *, file: bool = False) -> _T:
    """``write(path)``; when it fails with an OSError, ``write`` into a new temporary folder (or, with
    ``file``, to a file of the same name in one) and raise :class:`OutputWriteError` naming both."""
    try:
        return write(path)
    except OSError as exc:
        fallback: Path | None = None
        try:
            folder = Path(tempfile.mkdtemp(prefix="ddcl-incrt-"))
            fallback = folder / (Path(path).name or "output") if file else folder
            write(fallback)
        except OSError:
            fallback = None
        raise OutputWriteError(option, path, fallback, exc) from exc


def write_file_with_fallback(option: str, path: Path, data: bytes) -> Path:
    """``data`` written atomically to ``path``, or to a temporary folder (see :func:`write_with_fallback`)."""
    return write_with_fallback(option, path, lambda p: write_atomic(p, data), file=True)


__all__ = [
    "OutputPathError",
    "OutputWriteError",
    "check_output_dir",
    "check_output_file",
    "write_file_with_fallback",
    "write_with_fallback",
]
