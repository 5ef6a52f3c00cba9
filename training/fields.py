"""Typed reading of a JSON document whose fields are named in every error (run records, checkpoints).

A file from a stranger is read field by field against the type its dataclass declares: a missing
field, an unknown field, a string where a float belongs, a float where an integer belongs (``3.0``
is not silently truncated to ``3``), a bool where a number belongs, a ragged or non-numeric array —
each is a :class:`RecordFormatError` that names the file and the field's path
(``record.json: checks[3].lam_max: …``). The dataclass's own validation then runs, and its message is
prefixed with the same path. Nothing is coerced that JSON could not have written exactly.

What a parser of a stranger's bytes may raise (:data:`LOAD_ERRORS`: zipfile, zlib, NumPy's ``.npy``
reader, :mod:`json`, :mod:`struct`, Python's own limits, the OS) is mapped to a
:class:`RecordFormatError` naming the file, with the original chained, by :func:`format_errors` at
each loader's entry; ``KeyboardInterrupt`` and ``SystemExit`` are never caught.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import struct
import tokenize
import types
import typing
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import numpy as np

from reference._arrays import F64Array, arr

_T = TypeVar("_T")


class RecordFormatError(ValueError):
    """A record or checkpoint file that is malformed, truncated, inconsistent or of another format;
    the message names the file and the field."""


# Everything a malformed file can make a parser raise. ValueError covers json.JSONDecodeError,
# UnicodeDecodeError and Python's limit on integer digits; RuntimeError covers zipfile's "encrypted"
# and NotImplementedError (unknown compression method, zip version) and RecursionError (deep JSON
# nesting); ArithmeticError covers OverflowError (a huge shape or integer) and FloatingPointError;
# LookupError covers KeyError and IndexError; Warning is NumPy's header warning under ``-W error``.
# Not caught: KeyboardInterrupt, SystemExit, and programming errors such as NameError.
LOAD_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    EOFError,
    ValueError,
    RuntimeError,
    ArithmeticError,
    LookupError,
    AttributeError,
    TypeError,
    MemoryError,
    SyntaxError,
    Warning,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    tokenize.TokenError,
)


@contextlib.contextmanager
def format_errors(where: str) -> Iterator[None]:
    """Inside the block, any of :data:`LOAD_ERRORS` becomes a :class:`RecordFormatError` whose message
    starts with ``where`` (the file, and the field where known), the original chained as its cause; a
    :class:`RecordFormatError` passes through unchanged."""
    try:
        yield
    except RecordFormatError:
        raise
    except LOAD_ERRORS as exc:
        detail = str(exc) or "no detail"
        if len(detail) > 300:
            detail = detail[:300] + " …"
        raise RecordFormatError(f"{where} ({type(exc).__name__}: {detail})") from exc


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


class Fields:
    """One JSON object and its path; ``read_*`` methods return a field checked against a type."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, Mapping):
            raise RecordFormatError(f"{path}: expected an object, got {_type_name(data)}")
        self.data: Mapping[str, Any] = data
        self.path = path

    def at(self, key: str) -> str:
        """The path of field ``key``: ``record.json: checks[3].lam_max`` (the root path ends in ``:``)."""
        return f"{self.path} {key}" if self.path.endswith(":") else f"{self.path}.{key}"

    def error(self, key: str, message: str) -> RecordFormatError:
        return RecordFormatError(f"{self.at(key)}: {message}")

    @property
    def where(self) -> str:
        """The path without the root's trailing ``:`` (for messages that add their own)."""
        return self.path.removesuffix(":")

    def expect_keys(self, required: Sequence[str], optional: Sequence[str] = ()) -> None:
        """Every required key present, nothing unknown (an unknown key is data that would be lost)."""
        missing = [k for k in required if k not in self.data]
        if missing:
            raise RecordFormatError(f"{self.where}: missing field(s) {missing}")
        unknown = sorted(set(self.data) - set(required) - set(optional))
        if unknown:
            raise RecordFormatError(f"{self.where}: unknown field(s) {unknown} (another format or version?)")

    def get(self, key: str) -> Any:
        if key not in self.data:
            raise RecordFormatError(f"{self.where}: missing field {key!r}")
        return self.data[key]

    def sub(self, key: str) -> Fields:
        return Fields(self.get(key), self.at(key))

    def items(self, key: str) -> list[Fields]:
        """The field ``key`` as a list of objects, each with its indexed path."""
        return [Fields(v, f"{self.at(key)}[{i}]") for i, v in enumerate(self.list(key))]

    def list(self, key: str) -> list[Any]:
        value = self.get(key)
        if not isinstance(value, list):
            raise self.error(key, f"expected a list, got {_type_name(value)}")
        return value

    def read(self, key: str, tp: Any) -> Any:
        return read_value(self.get(key), tp, self.at(key))

    def count(self, key: str, minimum: int = 0) -> int:
        """An integer field ``>= minimum`` (steps, counts, ids)."""
        value: int = self.read(key, int)
        if value < minimum:
            raise self.error(key, f"must be >= {minimum}, got {value}")
        return value

    def array(self, key: str, ndim: int, *, finite: bool = True) -> F64Array:
        return read_array(self.get(key), ndim, self.at(key), finite=finite)


def read_value(value: Any, tp: Any, path: str) -> Any:
    """``value`` checked against the annotation ``tp``: ``int``, ``float``, ``bool``, ``str``,
    ``X | None``, ``Literal[...]``, ``tuple[X, ...]``, ``Mapping[int, float]`` (stored as ``[k, v]``
    pairs) or a dataclass (read with :func:`read_dataclass`)."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return read_value(value, rest[0], path)
    if origin is Literal:
        if value not in args:
            raise RecordFormatError(f"{path}: expected one of {list(args)}, got {value!r}")
        return value
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if not isinstance(value, list):
            raise RecordFormatError(f"{path}: expected a list, got {_type_name(value)}")
        return tuple(read_value(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
    if origin in (Mapping, dict):
        if not isinstance(value, list) or not all(isinstance(p, list) and len(p) == 2 for p in value):
            raise RecordFormatError(f"{path}: expected a list of [key, value] pairs, got {_type_name(value)}")
        out = {
            read_value(k, args[0], f"{path}[{i}][0]"): read_value(v, args[1], f"{path}[{i}][1]")
            for i, (k, v) in enumerate(value)
        }
        if len(out) != len(value):
            raise RecordFormatError(f"{path}: repeated keys")
        return out
    if tp is bool:
        if not isinstance(value, bool):
            raise RecordFormatError(f"{path}: expected true or false, got {_type_name(value)} {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecordFormatError(f"{path}: expected an integer, got {_type_name(value)} {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RecordFormatError(f"{path}: expected a number, got {_type_name(value)} {value!r}")
        if isinstance(value, int) and abs(value) > 2**53:
            raise RecordFormatError(f"{path}: integer {value} is not exactly a float64")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise RecordFormatError(f"{path}: expected a string, got {_type_name(value)}")
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return read_dataclass(tp, Fields(value, path))
    raise TypeError(f"{path}: no reader for the type {tp!r}")  # a programming error, not a bad file


def read_dataclass(cls: type[_T], f: Fields, readers: Mapping[str, Callable[[Fields, str], Any]] | None = None) -> _T:
    """``cls`` from the object ``f``: exactly its fields (those with defaults may be absent), each read
    by its annotation or by ``readers[name]``; then ``cls``'s own validation, its message prefixed
    with the path."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    required = [x.name for x in fields if x.default is dataclasses.MISSING and x.default_factory is dataclasses.MISSING]
    f.expect_keys(required, [x.name for x in fields if x.name not in required])
    hints = get_type_hints(cls)
    readers = readers or {}
    kw = {
        x.name: readers[x.name](f, x.name) if x.name in readers else f.read(x.name, hints[x.name])
        for x in fields
        if x.name in f.data
    }
    try:
        return cls(**kw)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise RecordFormatError(f"{f.where}: {exc}") from exc


def read_array(value: Any, ndim: int, path: str, *, finite: bool = True) -> F64Array:
    """A nested list of numbers as a float64 array of exactly ``ndim`` dimensions (no ragged rows, no
    strings or bools, finite unless ``finite=False``)."""

    def numbers(v: Any, depth: int) -> bool:
        if depth == ndim:
            return isinstance(v, int | float) and not isinstance(v, bool)
        return isinstance(v, list) and all(numbers(x, depth + 1) for x in v)

    if not numbers(value, 0):
        raise RecordFormatError(f"{path}: expected a {ndim}-dimensional array of numbers")
    try:
        a = np.array(value, dtype=np.float64)
    except ValueError as exc:  # ragged
        raise RecordFormatError(f"{path}: not a rectangular {ndim}-dimensional array ({exc})") from exc
    except OverflowError as exc:  # an integer beyond float64's range
        raise RecordFormatError(f"{path}: a number beyond float64's range ({exc})") from exc
    if a.ndim != ndim:
        raise RecordFormatError(f"{path}: not a rectangular {ndim}-dimensional array (got shape {a.shape})")
    if finite and not np.all(np.isfinite(a)):
        raise RecordFormatError(f"{path}: contains NaN or infinity")
    return arr(a)


def finite(value: float, path: str) -> float:
    if not math.isfinite(value):
        raise RecordFormatError(f"{path}: must be finite, got {value!r}")
    return value


__all__ = [
    "LOAD_ERRORS",
    "Fields",
    "RecordFormatError",
    "finite",
    "format_errors",
    "read_array",
    "read_dataclass",
    "read_value",
]
