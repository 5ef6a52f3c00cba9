"""Vector files on disk: the golden vectors, the inputs written for a non-Python port, and the
outputs such a port writes back. One format for all three (docs/porting.md has the full grammar):

``DIR/manifest.json``::

    {"format": "ddcl-incrt-conformance", "version": 1, "kind": "golden" | "inputs" | "outputs",
     "cases": [{"check": "op/case", "operation": "op", "note": "...", "scalars": {name: value},
                "inputs":  {name: {"file": "cases/op__case/in.name.npy", "dtype": "float64", "shape": [..]}},
                "outputs": {name: {"file": ..., "dtype": ..., "shape": [..]}}}]}

and one ``.npy`` (NumPy format 1.0, little-endian, C order) per array, float64 or int64, never an
object array. Reading never executes code (``numpy.load(..., allow_pickle=False)``, ``json``); every
malformed, truncated or mismatched file, and a key the format does not have (at the top level, in
a case, in an array entry), raises :class:`VectorFileError` naming the file and the field. Writing is
atomic: the whole directory is written next to the target, every file fsynced, then moved into place
with ``os.replace``; an existing folder is replaced only when it is empty or holds exactly what the
kit writes for that kind (anything else in it would be lost), checked before anything is written.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import secrets
import shutil
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, TypeAlias

import numpy as np

from ddcl_incrt.conformance.cases import FORMAT_VERSION, Case, Scalar
from ddcl_incrt.conformance.operations import operation_names
from training.files import parse_json, read_regular_file

FORMAT_NAME = "ddcl-incrt-conformance"
Kind: TypeAlias = Literal["golden", "inputs", "outputs"]
_DTYPES = {"float64": np.dtype("<f8"), "int64": np.dtype("<i8")}
GOLDEN_DIR = Path(__file__).resolve().parent / "vectors" / f"v{FORMAT_VERSION}"


class VectorFileError(ValueError):
    """A vector file that cannot be used; ``path`` and ``field`` say which and where."""

    def __init__(self, path: Path | str, field: str, problem: str) -> None:
        super().__init__(f"{path}: field {field}: {problem}")
        self.path = str(path)
        self.field = field


@dataclass(frozen=True, eq=False)
class VectorEntry:
    """One case as stored: its inputs (absent in a port's outputs file) and outputs (absent in an inputs file)."""

    case: Case
    outputs: Mapping[str, np.ndarray] | None


def _case_dir(check: str) -> str:
    return "cases/" + check.replace("/", "__")


def _array_entry(rel: str, a: np.ndarray) -> dict[str, Any]:
    return {"file": rel, "dtype": str(np.asarray(a).dtype), "shape": list(np.asarray(a).shape)}


def _normalise(name: str, a: np.ndarray) -> np.ndarray:
    arr = np.asarray(a)
    if np.issubdtype(arr.dtype, np.floating):
        return np.array(arr, dtype="<f8", order="C")
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_:
        return np.array(arr, dtype="<i8", order="C")
    raise TypeError(f"{name}: only float64 and int64 arrays can be stored, got dtype {arr.dtype}")


def _write_npy(path: Path, a: np.ndarray) -> None:
    with path.open("wb") as f:
        np.save(f, a, allow_pickle=False)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_all(paths: Sequence[Path]) -> None:
    """fsync every file before the directory is moved into place; in parallel, because one fsync at a
    time costs a journal commit each (seconds for a thousand small files), while concurrent ones share it."""
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(_fsync, paths))


_TOP_KEYS = ("format", "version", "kind", "cases", "port")
_CASE_KEYS: dict[str, tuple[str, ...]] = {
    "golden": ("check", "operation", "note", "scalars", "inputs", "outputs"),
    "inputs": ("check", "operation", "note", "scalars", "inputs"),
    "outputs": ("check", "operation", "outputs"),
}
_ARRAY_KEYS = ("file", "dtype", "shape")


def _a_case_of(kind: str, case: Mapping[str, Any]) -> str:
    """What a case of a ``kind`` manifest is, for the refusal of its unknown keys ``case`` has; an outputs
    case holding keys of an inputs case (a port that copied the inputs' cases and added its outputs) is
    told where those come from."""
    what = f"a case in a manifest of kind {kind!r}"
    copied = [k for k in _CASE_KEYS["inputs"] if k in case and k not in _CASE_KEYS[kind]]
    if copied:
        what += f" (not {', '.join(copied)}: the kit takes those from its own vectors, by check)"
    return what


def _refuse_unknown(obj: Mapping[str, Any], allowed: Sequence[str], path: Path, where: str, what: str) -> None:
    """Refuse a key of ``obj`` outside ``allowed`` (a misspelt ``"fille"`` would otherwise be ignored and
    its value lost), naming the manifest and the field."""
    unknown = sorted(k for k in obj if k not in allowed)
    if unknown:
        raise VectorFileError(
            path, f"{where}{unknown[0]}", f"unknown key(s) {unknown}; {what} has {', '.join(allowed)}"
        )


def _array_specs(raw: Mapping[str, Any], key: str, manifest: Path, where: str) -> dict[str, Any]:
    """The ``inputs`` or ``outputs`` object of a case, each array spec's keys checked."""
    specs = _require(raw, key, dict, manifest, where)
    for name, spec in specs.items():
        if isinstance(spec, dict):
            _refuse_unknown(spec, _ARRAY_KEYS, manifest, f"{where}{key}.{name}.", "an array entry")
    return dict(specs)


def _kit_written_paths(target: Path, kind: Kind) -> dict[str, bool]:
    """The paths (POSIX, relative to ``target``; each mapped to whether it is a folder) of everything
    the kit writes into a ``kind`` vector directory with ``target``'s manifest: ``manifest.json``,
    ``cases``, each case's folder and its ``in.<name>.npy`` / ``out.<name>.npy``. Raises
    :class:`VectorFileError` naming ``target`` when its manifest is missing, unreadable, of another
    format or kind, or not one the kit writes. Reads no array and no operation name (a golden
    directory written before an operation was renamed is still the kit's)."""
    manifest = target / "manifest.json"
    refuse = "it is not replaced, nothing was written: give a new path"
    try:
        data = parse_json(read_regular_file(manifest))
    except (OSError, ValueError, RecursionError) as exc:
        raise VectorFileError(
            target,
            "(directory)",
            f"an existing folder that is not a vector directory (no readable manifest.json of format "
            f"{FORMAT_NAME!r}: {type(exc).__name__}); {refuse}",
        ) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise VectorFileError(
            target,
            "(directory)",
            f"an existing folder that is not a vector directory (no manifest.json of format {FORMAT_NAME!r}); "
            + refuse,
        )
    if data.get("kind") != kind:
        raise VectorFileError(
            target, "(directory)", f"holds a vector directory of kind {data.get('kind')!r}, not {kind!r}; {refuse}"
        )
    paths = {"manifest.json": False, "cases": True}
    try:
        _refuse_unknown(data, _TOP_KEYS, manifest, "", "a manifest")
        for i, raw in enumerate(_require(data, "cases", list, manifest, "")):
            where = f"cases[{i}]."
            if not isinstance(raw, dict):
                raise VectorFileError(manifest, f"cases[{i}]", "expected an object")
            _refuse_unknown(raw, _CASE_KEYS[kind], manifest, where, _a_case_of(kind, raw))
            case_dir = _case_dir(_require(raw, "check", str, manifest, where))
            paths[case_dir] = True
            for key, prefix in (("inputs", "in"), ("outputs", "out")):
                if key in _CASE_KEYS[kind]:
                    for name in _array_specs(raw, key, manifest, where):
                        paths[f"{case_dir}/{prefix}.{name}.npy"] = False
    except VectorFileError as exc:
        raise VectorFileError(
            target, "(directory)", f"its manifest is not one the kit writes ({exc}); {refuse}"
        ) from exc
    return paths


def _first_foreign(root: Path, expected: Mapping[str, bool], prefix: str = "") -> str | None:
    """The first entry (sorted, depth first) under ``root`` that the kit would not have written there:
    a path outside ``expected`` (path -> whether the kit writes a folder there), a link, or a file where
    the kit writes a folder (or the reverse)."""
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        rel = prefix + entry.name
        want_dir = expected.get(rel)
        if want_dir is None or entry.is_symlink():
            return rel
        if not want_dir:
            if not entry.is_file(follow_symlinks=False):
                return rel
            continue
        if not entry.is_dir(follow_symlinks=False):
            return rel
        found = _first_foreign(Path(entry.path), expected, rel + "/")
        if found is not None:
            return found
    return None


def check_vector_target(directory: str | Path, kind: Kind) -> Path:
    """Where :func:`write_vectors` may write a ``kind`` vector directory: a new path, an empty folder,
    or a ``kind`` vector directory holding exactly what the kit writes (which it replaces). Anything
    else (a file, a link, a folder of other things, a vector directory of another kind, one with a
    file the kit did not write) is refused with :class:`VectorFileError` naming the folder and the first
    foreign entry, before anything is written: replacing it would lose that entry."""
    target = Path(directory)
    if target.is_symlink():
        raise VectorFileError(target, "(directory)", "is a symbolic link: give the vector directory itself")
    if os.path.lexists(target):
        if not target.is_dir():
            raise VectorFileError(target, "(directory)", "exists and is not a directory; nothing was written")
        try:
            if not any(target.iterdir()):
                return target
            foreign = _first_foreign(target, _kit_written_paths(target, kind))
        except OSError as exc:
            raise VectorFileError(target, "(directory)", f"cannot be listed ({exc}); nothing was written") from exc
        if foreign is not None:
            raise VectorFileError(
                target,
                "(directory)",
                f"holds {foreign!r}, which the kit does not write into a vector directory of kind {kind!r}; it is "
                "not replaced (that would lose it), nothing was written: move it out or give a new path",
            )
        return target
    ancestor = Path(os.path.abspath(target)).parent
    while not os.path.lexists(ancestor):
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise VectorFileError(target, "(directory)", f"cannot be created: {ancestor} is not a directory")
    return target


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened and fsynced
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Move the complete ``tmp`` to ``target``; a previous ``target`` is moved aside first and moved
    back if the second rename fails, so it is never lost."""
    if not target.exists():
        os.replace(tmp, target)
        return
    old = target.parent / f".{target.name}.old-{secrets.token_hex(6)}"
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.replace(old, target)
        except OSError as restore:
            raise OSError(
                f"{target}: the new vectors could not be moved into place ({exc}), and the previous directory "
                f"could not be moved back: it is at {old} ({restore})"
            ) from exc
        raise
    try:
        shutil.rmtree(old)
    except OSError as exc:
        warnings.warn(
            f"{target} was replaced, but the previous copy at {old} could not be removed: {exc}", stacklevel=3
        )


def write_vectors(directory: str | Path, kind: Kind, entries: Sequence[VectorEntry], *, port: str = "") -> Path:
    """Write ``entries`` as a vector directory of ``kind`` (inputs written unless ``kind == 'outputs'``,
    outputs unless ``kind == 'inputs'``); atomic: an existing directory is replaced only when complete,
    and only if it is empty or holds exactly what the kit writes for a ``kind`` directory
    (:func:`check_vector_target`: checked before anything is written, and again just before the swap,
    in case something was put there meanwhile)."""
    target = check_vector_target(directory, kind)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{secrets.token_hex(6)}"
    tmp.mkdir()  # the usual permissions (mkdtemp's 0700 would shut out a port run as another user)
    try:
        _write_tree(tmp, kind, entries, port)
        check_vector_target(target, kind)
        _swap_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(target.parent)
    return target


def _write_tree(tmp: Path, kind: Kind, entries: Sequence[VectorEntry], port: str) -> None:
    cases_json: list[dict[str, Any]] = []
    written: list[Path] = []
    for entry in entries:
        c = entry.case
        rel_dir = _case_dir(c.check)
        (tmp / rel_dir).mkdir(parents=True, exist_ok=True)
        item: dict[str, Any] = {"check": c.check, "operation": c.operation}
        if kind != "outputs":
            item.update({"note": c.note, "scalars": dict(c.scalars), "inputs": {}})
            for name, a in c.inputs.items():
                rel = f"{rel_dir}/in.{name}.npy"
                arr = _normalise(f"{c.check} input {name}", a)
                _write_npy(tmp / rel, arr)
                written.append(tmp / rel)
                item["inputs"][name] = _array_entry(rel, arr)
        if kind != "inputs":
            if entry.outputs is None:
                raise ValueError(f"entries: case {c.check} has no outputs to write into a {kind!r} file")
            item["outputs"] = {}
            for name, a in entry.outputs.items():
                rel = f"{rel_dir}/out.{name}.npy"
                arr = _normalise(f"{c.check} output {name}", a)
                _write_npy(tmp / rel, arr)
                written.append(tmp / rel)
                item["outputs"][name] = _array_entry(rel, arr)
        cases_json.append(item)
    manifest: dict[str, Any] = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "kind": kind, "cases": cases_json}
    if port:
        manifest["port"] = port
    with (tmp / "manifest.json").open("w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, sort_keys=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    _fsync_all(written)


# ==================================================================================================
# Reading
# ==================================================================================================


def _require(obj: Mapping[str, Any], key: str, typ: type | tuple[type, ...], path: Path, where: str) -> Any:
    if key not in obj:
        raise VectorFileError(path, f"{where}{key}", "missing")
    value = obj[key]
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        names = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        raise VectorFileError(path, f"{where}{key}", f"expected {names}, got {type(value).__name__}")
    return value


def _npy_header(data: bytes) -> tuple[tuple[int, ...], np.dtype[Any], int]:
    """The shape, dtype and header length of a ``.npy`` file of format 1.0 or 2.0, read without
    touching its data (so a header that declares a huge array allocates nothing)."""
    buf = io.BytesIO(data)
    version = np.lib.format.read_magic(buf)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(buf)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(buf)
    else:
        raise ValueError(f"format version {version[0]}.{version[1]}; this kit reads 1.0 (and 2.0)")
    return tuple(shape), np.dtype(dtype), buf.tell()


def _read_array(root: Path, resolved_root: Path, manifest: Path, where: str, spec: object) -> np.ndarray:
    if not isinstance(spec, dict):
        raise VectorFileError(manifest, where, f"expected an object with file, dtype, shape, got {type(spec).__name__}")
    _refuse_unknown(spec, _ARRAY_KEYS, manifest, where + ".", "an array entry")
    rel = _require(spec, "file", str, manifest, where + ".")
    dtype = _require(spec, "dtype", str, manifest, where + ".")
    shape = _require(spec, "shape", list, manifest, where + ".")
    if dtype not in _DTYPES:
        raise VectorFileError(manifest, where + ".dtype", f"expected one of {sorted(_DTYPES)}, got {dtype!r}")
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise VectorFileError(manifest, where + ".shape", f"expected a list of non-negative ints, got {shape!r}")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or not rel.endswith(".npy") or "\0" in rel:
        raise VectorFileError(
            manifest, where + ".file", f"expected a relative path to a .npy inside {root}, got {rel!r}"
        )
    path = root / Path(*pure.parts)
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symbolic link loop (Python < 3.13)
        raise VectorFileError(manifest, where + ".file", f"{rel!r} cannot be resolved ({exc})") from exc
    if not resolved.is_relative_to(resolved_root):
        raise VectorFileError(
            manifest, where + ".file", f"{rel!r} is a link to {resolved}, outside the vector directory {root}"
        )
    try:
        data = read_regular_file(path)
    except FileNotFoundError as exc:
        raise VectorFileError(path, where, "the file named in the manifest does not exist") from exc
    except OSError as exc:
        raise VectorFileError(path, where, f"cannot be read ({exc})") from exc
    try:
        stored_shape, stored_dtype, header = _npy_header(data)
    except Exception as exc:  # numpy's header parser raises many kinds (ValueError, SyntaxError, TokenError, ...)
        raise VectorFileError(path, where, f"not a readable .npy ({type(exc).__name__}: {exc})") from exc
    if stored_dtype.hasobject:
        raise VectorFileError(path, where, "an object array (stored as pickles): not a readable .npy without pickles")
    if stored_dtype != _DTYPES[dtype]:
        raise VectorFileError(path, where, f"dtype {stored_dtype} does not match the manifest's {dtype}")
    if list(stored_shape) != shape:
        raise VectorFileError(path, where, f"shape {list(stored_shape)} does not match the manifest's {shape}")
    need = math.prod(stored_shape) * stored_dtype.itemsize
    if len(data) - header != need:
        raise VectorFileError(
            path, where, f"{len(data) - header} bytes of array data, the header's shape {shape} needs {need}"
        )
    try:
        a = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # every failure of numpy's reader on these bytes is this file's
        raise VectorFileError(
            path, where, f"not a readable .npy without pickles ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(a, np.ndarray) or a.dtype != _DTYPES[dtype] or list(a.shape) != shape:
        raise VectorFileError(path, where, f"does not hold one {dtype} array of shape {shape}")
    return a


def _scalars(raw: object, manifest: Path, where: str) -> dict[str, Scalar]:
    if not isinstance(raw, dict):
        raise VectorFileError(manifest, where, f"expected an object, got {type(raw).__name__}")
    out: dict[str, Scalar] = {}
    for k, v in raw.items():
        ok = (
            isinstance(v, (bool, int, str))
            or (isinstance(v, float) and math.isfinite(v))  # 1e999 reads as inf
            or (isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in v))
        )
        if not ok:
            raise VectorFileError(
                manifest, f"{where}.{k}", f"expected a finite number, string, bool or list of ints, got {v!r}"
            )
        out[k] = v
    return out


def read_vectors(directory: str | Path, *, expect_kind: Kind | None = None) -> list[VectorEntry]:
    """Read a vector directory; ``expect_kind`` refuses a file of another kind."""
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(
            f"read_vectors: directory: expected a folder path (str or Path), got {type(directory).__name__}"
        )
    root = Path(directory)
    manifest = root / "manifest.json"
    try:
        resolved_root = root.resolve()
        raw_bytes = read_regular_file(manifest)
    except FileNotFoundError as exc:
        raise VectorFileError(manifest, "(file)", "no manifest.json in the vector directory") from exc
    except (OSError, RuntimeError, ValueError) as exc:  # ValueError: a NUL in the path
        raise VectorFileError(manifest, "(file)", f"cannot be read ({exc})") from exc
    try:
        data = parse_json(raw_bytes)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise VectorFileError(manifest, "(file)", f"not valid JSON ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict):
        raise VectorFileError(manifest, "(top level)", "expected a JSON object")
    if _require(data, "format", str, manifest, "") != FORMAT_NAME:
        raise VectorFileError(manifest, "format", f"expected {FORMAT_NAME!r}, got {data['format']!r}")
    version = _require(data, "version", int, manifest, "")
    if version != FORMAT_VERSION:
        raise VectorFileError(manifest, "version", f"this kit reads version {FORMAT_VERSION}, got {version}")
    kind = _require(data, "kind", str, manifest, "")
    if kind not in ("golden", "inputs", "outputs"):
        raise VectorFileError(manifest, "kind", f"expected 'golden', 'inputs' or 'outputs', got {kind!r}")
    if expect_kind is not None and kind != expect_kind:
        raise VectorFileError(manifest, "kind", f"expected a {expect_kind!r} file, got {kind!r}")
    _refuse_unknown(data, _TOP_KEYS, manifest, "", "a manifest")
    if "port" in data and not isinstance(data["port"], str):  # optional: the port's name (docs/porting.md)
        raise VectorFileError(manifest, "port", f"expected the port's name (str), got {type(data['port']).__name__}")
    raw_cases = _require(data, "cases", list, manifest, "")
    entries: list[VectorEntry] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_cases):
        where = f"cases[{i}]."
        if not isinstance(raw, dict):
            raise VectorFileError(manifest, f"cases[{i}]", "expected an object")
        _refuse_unknown(raw, _CASE_KEYS[kind], manifest, where, _a_case_of(kind, raw))
        check = _require(raw, "check", str, manifest, where)
        op = _require(raw, "operation", str, manifest, where)
        if op not in operation_names():
            raise VectorFileError(manifest, where + "operation", f"unknown operation {op!r}")
        if not check.startswith(op + "/"):
            raise VectorFileError(manifest, where + "check", f"{check!r} does not start with its operation {op!r}")
        if check in seen:
            raise VectorFileError(manifest, where + "check", f"{check!r} appears twice")
        seen.add(check)
        inputs: dict[str, np.ndarray] = {}
        scalars: dict[str, Scalar] = {}
        note = ""
        if kind != "outputs":
            scalars = _scalars(_require(raw, "scalars", dict, manifest, where), manifest, where + "scalars")
            note = raw.get("note", "")
            if not isinstance(note, str):
                raise VectorFileError(manifest, where + "note", f"expected str, got {type(note).__name__}")
            for name, spec in _require(raw, "inputs", dict, manifest, where).items():
                inputs[name] = _read_array(root, resolved_root, manifest, f"{where}inputs.{name}", spec)
        outputs: dict[str, np.ndarray] | None = None
        if kind != "inputs":
            outputs = {
                name: _read_array(root, resolved_root, manifest, f"{where}outputs.{name}", spec)
                for name, spec in _require(raw, "outputs", dict, manifest, where).items()
            }
        entries.append(VectorEntry(Case(check, op, scalars, inputs, note), outputs))
    return entries


__all__ = [
    "FORMAT_NAME",
    "GOLDEN_DIR",
    "Kind",
    "VectorEntry",
    "VectorFileError",
    "check_vector_target",
    "read_vectors",
    "write_vectors",
]
