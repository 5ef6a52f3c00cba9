"""Vector files on disk: the golden vectors, the inputs written for a non-Python port, and the
outputs such a port writes back. One format for all three (docs/porting.md has the full grammar):

``DIR/manifest.json``::

    {"format": "ddcl-incrt-conformance", "version": 1, "kind": "golden" | "inputs" | "outputs",
     "cases": [{"check": "op/case", "operation": "op", "note": "...", "scalars": {name: value},
                "inputs":  {name: {"file": "cases/op__case/in.name.npy", "dtype": "float64", "shape": [..]}},
                "outputs": {name: {"file": ..., "dtype": ..., "shape": [..]}}}]}

and one ``.npy`` (NumPy format 1.0, little-endian, C order) per array, float64 or int64, never an
object array. Reading never executes code (``numpy.load(..., allow_pickle=False)``, ``json``); every
malformed, truncated or mismatched file raises :class:`VectorFileError` naming the file and the
field. Writing is atomic: the whole directory is written next to the target, every file fsynced,
then moved into place with ``os.replace``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, TypeAlias

import numpy as np

from ddcl_incrt.conformance.adapter import OPERATIONS
from ddcl_incrt.conformance.cases import FORMAT_VERSION, Case, Scalar

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


def write_vectors(directory: str | Path, kind: Kind, entries: Sequence[VectorEntry], *, port: str = "") -> Path:
    """Write ``entries`` as a vector directory of ``kind`` (inputs written unless ``kind == 'outputs'``,
    outputs unless ``kind == 'inputs'``); atomic: an existing directory is replaced only when complete."""
    target = Path(directory)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
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
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old)
    else:
        os.replace(tmp, target)
    return target


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


def _read_array(root: Path, manifest: Path, where: str, spec: object) -> np.ndarray:
    if not isinstance(spec, dict):
        raise VectorFileError(manifest, where, f"expected an object with file, dtype, shape, got {type(spec).__name__}")
    rel = _require(spec, "file", str, manifest, where + ".")
    dtype = _require(spec, "dtype", str, manifest, where + ".")
    shape = _require(spec, "shape", list, manifest, where + ".")
    if dtype not in _DTYPES:
        raise VectorFileError(manifest, where + ".dtype", f"expected one of {sorted(_DTYPES)}, got {dtype!r}")
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise VectorFileError(manifest, where + ".shape", f"expected a list of non-negative ints, got {shape!r}")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or not rel.endswith(".npy"):
        raise VectorFileError(
            manifest, where + ".file", f"expected a relative path to a .npy inside {root}, got {rel!r}"
        )
    path = root / Path(*pure.parts)
    try:
        with path.open("rb") as f:
            a = np.load(f, allow_pickle=False)
    except FileNotFoundError:
        raise VectorFileError(path, where, "the file named in the manifest does not exist") from None
    except (ValueError, OSError, EOFError) as exc:
        raise VectorFileError(path, where, f"not a readable .npy without pickles ({exc})") from None
    if not isinstance(a, np.ndarray):
        raise VectorFileError(path, where, f"expected one array, got {type(a).__name__}")
    if a.dtype != _DTYPES[dtype]:
        raise VectorFileError(path, where, f"dtype {a.dtype} does not match the manifest's {dtype}")
    if list(a.shape) != shape:
        raise VectorFileError(path, where, f"shape {list(a.shape)} does not match the manifest's {shape}")
    return a


def _scalars(raw: object, manifest: Path, where: str) -> dict[str, Scalar]:
    if not isinstance(raw, dict):
        raise VectorFileError(manifest, where, f"expected an object, got {type(raw).__name__}")
    out: dict[str, Scalar] = {}
    for k, v in raw.items():
        ok = isinstance(v, (bool, int, float, str)) or (
            isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in v)
        )
        if not ok:
            raise VectorFileError(
                manifest, f"{where}.{k}", f"expected a number, string, bool or list of ints, got {v!r}"
            )
        out[k] = v
    return out


def read_vectors(directory: str | Path, *, expect_kind: Kind | None = None) -> list[VectorEntry]:
    """Read a vector directory; ``expect_kind`` refuses a file of another kind."""
    root = Path(directory)
    manifest = root / "manifest.json"
    try:
        text = manifest.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VectorFileError(manifest, "(file)", "no manifest.json in the vector directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VectorFileError(manifest, "(file)", f"cannot be read ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VectorFileError(manifest, "(file)", f"not valid JSON ({exc})") from None
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
    raw_cases = _require(data, "cases", list, manifest, "")
    entries: list[VectorEntry] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_cases):
        where = f"cases[{i}]."
        if not isinstance(raw, dict):
            raise VectorFileError(manifest, f"cases[{i}]", "expected an object")
        check = _require(raw, "check", str, manifest, where)
        op = _require(raw, "operation", str, manifest, where)
        if op not in OPERATIONS:
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
            note = str(raw.get("note", ""))
            for name, spec in _require(raw, "inputs", dict, manifest, where).items():
                inputs[name] = _read_array(root, manifest, f"{where}inputs.{name}", spec)
        outputs: dict[str, np.ndarray] | None = None
        if kind != "inputs":
            outputs = {
                name: _read_array(root, manifest, f"{where}outputs.{name}", spec)
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
    "read_vectors",
    "write_vectors",
]
