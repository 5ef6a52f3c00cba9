"""Every failure of the checkpoint and run-record loaders is their format error.

One table per loader: each row plants a file that really makes the named exception class rise inside
the library (zipfile, zlib, NumPy's ``.npy`` reader, :mod:`json`, Python's limits, the OS, or the
project's own dataclass validation), and asserts that the loader raises
:class:`~training.record.RecordFormatError` naming the file (and the field or array where it is
known) with that original exception as ``__cause__``. The few classes no real file can provoke in
this Python (``struct.error``, ``MemoryError`` in the JSON reader, ``AttributeError``/``KeyError``
past the field checks) are raised by a monkeypatched reader instead, and say so in their row.

Also here: paths that are not paths (``None``, an int, a NUL byte), files that are not regular files
(a FIFO must not hang the reader), the fallback of a resume to the newest intact checkpoint, and a
full disk while an interruption writes its checkpoint.
"""

from __future__ import annotations

import dataclasses
import errno
import io
import json
import os
import struct
import threading
import tokenize
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _small_run import LAYER, RUN, TRAIN_SEED, small_data

from training import checkpoint as checkpoint_module
from training import record as run_record_module
from training.checkpoint import Checkpoint, CheckpointPolicy, latest_checkpoint, load_latest_checkpoint
from training.files import NotARegularFileError
from training.record import RecordFormatError, RunRecord
from training.trainer import ProgressInfo, ReferenceEngine, run

SHORT = dataclasses.replace(RUN, steps=20)  # a birth and two prototype prunes at step 10
CKPT_STEP = 11


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(checkpoint, record)``: the files of one short run, written once (tests read their bytes)."""
    tmp = tmp_path_factory.mktemp("loaders")
    policy = CheckpointPolicy(tmp / "ckpt", at_steps=frozenset({CKPT_STEP}), keep=0)
    record = run(
        small_data(), LAYER, SHORT, rng=np.random.default_rng(TRAIN_SEED), engine=ReferenceEngine(), checkpoints=policy
    )
    return policy.path(CKPT_STEP), record.save(tmp / "record.json")


# -- planting bytes ------------------------------------------------------------------------------------


def _central_entry(data: bytes, member: str) -> int:
    """Offset of ``member``'s header in the zip's central directory."""
    name, i = member.encode(), data.find(b"PK\x01\x02")
    while i >= 0:
        (n,) = struct.unpack_from("<H", data, i + 28)
        if data[i + 46 : i + 46 + n] == name:
            return i
        i = data.find(b"PK\x01\x02", i + 46)
    raise AssertionError(f"no central-directory entry for {member}")


def _member_data(data: bytes, member: str) -> int:
    """Offset of ``member``'s stored bytes (after its local header)."""
    (local,) = struct.unpack_from("<I", data, _central_entry(data, member) + 42)
    n, extra = struct.unpack_from("<HH", data, local + 26)
    return local + 30 + n + extra


def _patch(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


def _rezip(data: bytes, replace: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    """The archive with the members in ``replace`` swapped for other bytes (a valid zip: its CRCs fit)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", method) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, replace.get(info.filename, src.read(info.filename)))
    return out.getvalue()


def _npy(header: str, body: bytes = b"") -> bytes:
    """An ``.npy`` (format 1.0) with the header text given verbatim."""
    raw = header.encode("latin1")
    raw += b" " * ((64 - (10 + len(raw) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(raw)) + raw + body


def _meta_member(text: bytes) -> bytes:
    """``meta.json`` as the checkpoint stores it (a uint8 .npy) holding ``text``."""
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(text, dtype=np.uint8))
    return buf.getvalue()


def _meta_of(data: bytes) -> dict[str, object]:
    with np.load(io.BytesIO(data)) as z:
        return json.loads(z["meta.json"].tobytes())  # type: ignore[no-any-return]


def _with_meta(data: bytes, edit: Callable[[dict[str, object]], bytes]) -> bytes:
    return _rezip(data, {"meta.json.npy": _meta_member(edit(_meta_of(data)))})


_RAW = "raw text goes here"


def _json_with(doc: dict[str, object], where: str, raw: str) -> bytes:
    """``doc`` as JSON text with the value at ``where`` (dotted keys and list indices) replaced by the
    raw JSON text ``raw`` (what :func:`json.dumps` would not write: a 5000-digit integer, 1e400)."""
    *parents, last = where.split(".")
    node: Any = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = _RAW
    else:
        node[last] = _RAW
    text = json.dumps(doc)
    assert text.count(json.dumps(_RAW)) == 1
    return text.replace(json.dumps(_RAW), raw).encode()


def _set_rng_state(value: object) -> Callable[[dict[str, object]], bytes]:
    def edit(meta: dict[str, object]) -> bytes:
        rng = meta["rng_state"]
        assert isinstance(rng, dict)
        rng["state"] = value
        return json.dumps(meta).encode()

    return edit


# -- the checkpoint's table ----------------------------------------------------------------------------

Planter = Callable[[bytes, Path], Path]


def _bytes(make: Callable[[bytes], bytes]) -> Planter:
    def plant(good: bytes, tmp: Path) -> Path:
        path = tmp / "planted.ckpt.npz"
        path.write_bytes(make(good))
        return path

    return plant


def _below_a_file(good: bytes, tmp: Path) -> Path:
    (tmp / "a-file").write_bytes(good)
    return tmp / "a-file" / "step.ckpt.npz"


def _missing(good: bytes, tmp: Path) -> Path:
    return tmp / "nowhere.ckpt.npz"


def _folder(good: bytes, tmp: Path) -> Path:
    (tmp / "folder.ckpt.npz").mkdir()
    return tmp / "folder.ckpt.npz"


def _fifo(good: bytes, tmp: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    os.mkfifo(tmp / "fifo.ckpt.npz")
    return tmp / "fifo.ckpt.npz"


def _member_method(method: int) -> Callable[[bytes], bytes]:
    return lambda d: _patch(d, _central_entry(d, "meta.json.npy") + 10, struct.pack("<H", method))


def _encrypted(d: bytes) -> bytes:
    return _patch(d, _central_entry(d, "meta.json.npy") + 8, struct.pack("<H", 0x1))


def _corrupt_deflate(d: bytes) -> bytes:
    deflated = _rezip(d, {}, zipfile.ZIP_DEFLATED)
    # 0b111: the last block, of the reserved type 3, which zlib refuses ("invalid block type")
    return _patch(deflated, _member_data(deflated, "meta.json.npy"), b"\x07")


# In-place edits of meta.json's .npy header: that member is large enough that NumPy parses its header
# before zipfile reaches the member's end and checks its CRC (a small member fails the CRC first).
def _npy_version(d: bytes) -> bytes:
    return _patch(d, _member_data(d, "meta.json.npy") + 6, b"\x09")


def _unclosed_header(d: bytes) -> bytes:
    end = d.index(b"}", _member_data(d, "meta.json.npy"))
    return _patch(d, end, b" ")  # the header's dict never closes: NumPy's tokenizer runs off its end


def _shape(n: int) -> Callable[[bytes], bytes]:
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (" + str(n) + ",), }"
    return lambda d: _rezip(d, {"params/P.npy": _npy(header)})


# (what, the class raised inside, how to plant it, what the message must name besides the file)
CHECKPOINT_ROWS: list[tuple[str, type[BaseException], Planter, str]] = [
    ("OSError: a path below a file", NotADirectoryError, _below_a_file, "not a readable checkpoint"),
    ("OSError: no such file", FileNotFoundError, _missing, "not a readable checkpoint"),
    ("not a regular file: a folder", NotARegularFileError, _folder, "folder"),
    ("not a regular file: a FIFO", NotARegularFileError, _fifo, "FIFO"),
    ("EOFError: an empty file", EOFError, _bytes(lambda d: b""), "not a readable checkpoint"),
    ("BadZipFile: truncated", zipfile.BadZipFile, _bytes(lambda d: d[:200]), "not a readable checkpoint"),
    ("NotImplementedError: compression method", NotImplementedError, _bytes(_member_method(99)), "meta.json"),
    ("RuntimeError: the encrypted flag", RuntimeError, _bytes(_encrypted), "meta.json"),
    ("zlib.error: a corrupt deflate stream", zlib.error, _bytes(_corrupt_deflate), "meta.json"),
    ("ValueError: an .npy version", ValueError, _bytes(_npy_version), "meta.json"),
    ("TokenError: an unclosed .npy header", tokenize.TokenError, _bytes(_unclosed_header), "meta.json"),
    ("OverflowError: a shape beyond C long", OverflowError, _bytes(_shape(10**30)), "params/P"),
    # 2**60 bytes: more than any x86-64 or arm64 address space, so the allocation fails even with overcommit
    ("MemoryError: a shape of 2**57 float64", MemoryError, _bytes(_shape(2**57)), "params/P"),
    (
        "UnicodeDecodeError: meta.json",
        UnicodeDecodeError,
        _bytes(lambda d: _with_meta(d, lambda m: b"\xff{}")),
        "meta.json",
    ),
    (
        "JSONDecodeError: meta.json",
        json.JSONDecodeError,
        _bytes(lambda d: _with_meta(d, lambda m: b'{"format": ')),
        "meta.json",
    ),
    (
        "RecursionError: deep nesting",
        RecursionError,
        _bytes(lambda d: _with_meta(d, lambda m: b"[" * 200_000)),
        "meta.json",
    ),
    (
        "ValueError: a 5000-digit integer",
        ValueError,
        _bytes(lambda d: _with_meta(d, lambda m: _json_with(m, "n_violations", "1" + "0" * 5000))),
        "meta.json",
    ),
    (
        "KeyError: rng state without 'inc'",
        KeyError,
        _bytes(lambda d: _with_meta(d, _set_rng_state({"state": 1}))),
        "rng_state",
    ),
    ("TypeError: rng state not an object", TypeError, _bytes(lambda d: _with_meta(d, _set_rng_state(5))), "rng_state"),
    (
        "OverflowError: a logged number beyond float64",
        OverflowError,
        _bytes(lambda d: _with_meta(d, lambda m: _json_with(m, "log.events.0.u_plus.0", "1" + "0" * 400))),
        "u_plus",
    ),
    (
        "FloatingPointError: an invariant's NaN value",
        FloatingPointError,
        _bytes(lambda d: _with_meta(d, lambda m: _json_with(m, "log.invariants.0.value", "NaN"))),
        "invariants[0]",
    ),
]


def _run_with_timeout(fn: Callable[[], object], seconds: float = 30.0) -> BaseException | None:
    """Call ``fn`` in a thread; fail if it has not returned within ``seconds`` (a reader that hangs)."""
    box: list[BaseException | None] = [None]

    def target() -> None:
        try:
            fn()
        except BaseException as exc:  # handed back to the test
            box[0] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the reader hung for {seconds} s"
    return box[0]


def _assert_mapped(error: BaseException | None, path: Path, cause: type[BaseException], field: str) -> None:
    assert isinstance(error, RecordFormatError), f"expected RecordFormatError, got {error!r}"
    message = str(error)
    assert str(path) in message, message
    assert field in message, message
    assert isinstance(error.__cause__, cause), f"cause {error.__cause__!r}, expected {cause.__name__}"


@pytest.mark.parametrize(("what", "cause", "plant", "field"), CHECKPOINT_ROWS, ids=[r[0] for r in CHECKPOINT_ROWS])
def test_the_checkpoint_loader_maps_each_failure_to_its_format_error(
    files: tuple[Path, Path], tmp_path: Path, what: str, cause: type[BaseException], plant: Planter, field: str
) -> None:
    path = plant(files[0].read_bytes(), tmp_path)
    _assert_mapped(_run_with_timeout(lambda: Checkpoint.load(path)), path, cause, field)


def _raise(exc: BaseException) -> Callable[..., object]:
    def raiser(*args: object, **kwargs: object) -> object:
        raise exc

    return raiser


# Classes no real file provokes through these loaders in this Python: zipfile checks every struct it
# unpacks, and the field checks stop a wrongly typed value before an attribute or key lookup could
# fail. A monkeypatched reader raises them, so that the mapping is shown to hold if that changes.
PATCHED_CHECKPOINT_ROWS: list[tuple[str, str, BaseException]] = [
    ("struct.error in the zip reader", "np.load", struct.error("unpack requires a buffer of 46 bytes")),
    (
        "AttributeError in the parameters' reader",
        "params_from_arrays",
        AttributeError("'list' has no attribute 'ndim'"),
    ),
    ("IndexError in the parameters' reader", "params_from_arrays", IndexError("tuple index out of range")),
]


@pytest.mark.parametrize(
    ("what", "target", "exc"), PATCHED_CHECKPOINT_ROWS, ids=[r[0] for r in PATCHED_CHECKPOINT_ROWS]
)
def test_the_checkpoint_loader_maps_what_only_a_patched_reader_raises(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, what: str, target: str, exc: BaseException
) -> None:
    if target == "np.load":
        monkeypatch.setattr(checkpoint_module.np, "load", _raise(exc))
    else:
        monkeypatch.setattr(checkpoint_module, target, _raise(exc))
    with pytest.raises(RecordFormatError) as excinfo:
        Checkpoint.load(files[0])
    _assert_mapped(excinfo.value, files[0], type(exc), "not a readable checkpoint")
    assert excinfo.value.__cause__ is exc


# -- the run record's table ----------------------------------------------------------------------------


def _record_text(edit: Callable[[dict[str, object]], bytes]) -> Callable[[bytes], bytes]:
    return lambda good: edit(json.loads(good))


def _half_the_characters(good: bytes) -> bytes:
    """The record cut in the middle at a character boundary: a cut byte count would split a multi-byte
    UTF-8 character on some records (where depends on the CPU's floats) and raise UnicodeDecodeError."""
    text = good.decode("utf-8")
    return text[: len(text) // 2].encode("utf-8")


RECORD_ROWS: list[tuple[str, type[BaseException], Planter, str]] = [
    ("OSError: a path below a file", NotADirectoryError, _below_a_file, "not a readable run record"),
    ("OSError: no such file", FileNotFoundError, _missing, "not a readable run record"),
    ("not a regular file: a folder", NotARegularFileError, _folder, "folder"),
    ("not a regular file: a FIFO", NotARegularFileError, _fifo, "FIFO"),
    ("UnicodeDecodeError: not UTF-8", UnicodeDecodeError, _bytes(lambda d: b"\xff" + d), "run record"),
    ("JSONDecodeError: truncated", json.JSONDecodeError, _bytes(_half_the_characters), "not valid JSON"),
    ("RecursionError: deep nesting", RecursionError, _bytes(lambda d: b"[" * 200_000), "Python's limits"),
    (
        "ValueError: a 5000-digit integer",
        ValueError,
        _bytes(_record_text(lambda r: _json_with(r, "wall_time_s", "1" + "0" * 5000))),
        "Python's limits",
    ),
    (
        "OverflowError: a number beyond float64",
        OverflowError,
        _bytes(_record_text(lambda r: _json_with(r, "Q_cap.0.0", "1" + "0" * 400))),
        "Q_cap",
    ),
    (
        "FloatingPointError: an invariant's NaN value",
        FloatingPointError,
        _bytes(_record_text(lambda r: _json_with(r, "invariants.0.value", "NaN"))),
        "invariants[0]",
    ),
]


@pytest.mark.parametrize(("what", "cause", "plant", "field"), RECORD_ROWS, ids=[r[0] for r in RECORD_ROWS])
def test_the_record_loader_maps_each_failure_to_its_format_error(
    files: tuple[Path, Path], tmp_path: Path, what: str, cause: type[BaseException], plant: Planter, field: str
) -> None:
    path = plant(files[1].read_bytes(), tmp_path)
    _assert_mapped(_run_with_timeout(lambda: RunRecord.load(path)), path, cause, field)


PATCHED_RECORD_ROWS: list[tuple[str, str, BaseException]] = [
    ("MemoryError in the JSON parser", "json.loads", MemoryError()),
    ("AttributeError in a field reader", "_check_architecture", AttributeError("'str' has no attribute 'kind'")),
    ("KeyError in a field reader", "_check_architecture", KeyError("head_ids")),
    ("TypeError in a field reader", "_check_architecture", TypeError("unhashable type: 'list'")),
]


@pytest.mark.parametrize(("what", "target", "exc"), PATCHED_RECORD_ROWS, ids=[r[0] for r in PATCHED_RECORD_ROWS])
def test_the_record_loader_maps_what_only_a_patched_reader_raises(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, what: str, target: str, exc: BaseException
) -> None:
    if target == "json.loads":
        monkeypatch.setattr(run_record_module.json, "loads", _raise(exc))
    else:
        monkeypatch.setattr(run_record_module, target, _raise(exc))
    with pytest.raises(RecordFormatError) as excinfo:
        RunRecord.load(files[1])
    _assert_mapped(excinfo.value, files[1], type(exc), str(files[1]))
    assert excinfo.value.__cause__ is exc


def test_a_keyboard_interrupt_while_loading_is_never_mapped(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint_module.np, "load", _raise(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        Checkpoint.load(files[0])
    monkeypatch.setattr(run_record_module.json, "loads", _raise(SystemExit(3)))
    with pytest.raises(SystemExit):
        RunRecord.load(files[1])


# -- paths that are not paths --------------------------------------------------------------------------

LOADERS: list[tuple[str, Callable[[object], object]]] = [
    ("Checkpoint.load", Checkpoint.load),  # type: ignore[list-item]
    ("RunRecord.load", RunRecord.load),  # type: ignore[list-item]
    ("load_latest_checkpoint", load_latest_checkpoint),  # type: ignore[list-item]
    ("latest_checkpoint", latest_checkpoint),  # type: ignore[list-item]
]


@pytest.mark.parametrize(("name", "load"), LOADERS, ids=[x[0] for x in LOADERS])
@pytest.mark.parametrize(
    ("bad", "error"),
    [(None, TypeError), (3, TypeError), (b"record.json", TypeError), ("a\0b.json", ValueError), ("", ValueError)],
    ids=["None", "int", "bytes", "NUL byte", "empty"],
)
def test_a_path_that_is_not_a_path_is_refused_naming_path(
    name: str, load: Callable[[object], object], bad: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match="path"):
        load(bad)


# -- resuming from a folder whose newest checkpoint is corrupt -----------------------------------------


def test_a_resume_falls_back_to_the_newest_intact_checkpoint_and_says_so(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = files[0].read_bytes()
    policy = CheckpointPolicy(tmp_path)
    older, newer = policy.path(CKPT_STEP), policy.path(CKPT_STEP + 5)
    older.write_bytes(good)
    newer.write_bytes(good[: len(good) // 2])  # a copy cut short
    ck = load_latest_checkpoint(tmp_path)
    assert ck.step == CKPT_STEP
    err = capsys.readouterr().err
    assert str(newer) in err, err
    assert "not a readable checkpoint" in err, err
    assert latest_checkpoint(tmp_path) == older
    assert older.read_bytes() == good  # nothing deleted or rewritten
    assert newer.read_bytes() == good[: len(good) // 2]


def test_a_resume_with_no_intact_checkpoint_lists_each_file_and_why(files: tuple[Path, Path], tmp_path: Path) -> None:
    good = files[0].read_bytes()
    policy = CheckpointPolicy(tmp_path)
    policy.path(3).write_bytes(b"")
    policy.path(7).write_bytes(good[:100])
    warnings: list[str] = []
    with pytest.raises(RecordFormatError) as excinfo:
        load_latest_checkpoint(tmp_path, warn=warnings.append)
    message = str(excinfo.value)
    assert "none of the 2 checkpoints" in message
    for step, cause in ((3, "EOFError"), (7, "BadZipFile")):
        assert policy.path(step).name in message, message
        assert cause in message, message
    assert len(warnings) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [policy.path(3).name, policy.path(7).name]


def test_an_explicit_checkpoint_file_is_never_replaced_by_another(files: tuple[Path, Path], tmp_path: Path) -> None:
    bad = tmp_path / "step-00000099.ckpt.npz"
    bad.write_bytes(b"")
    CheckpointPolicy(tmp_path).path(CKPT_STEP).write_bytes(files[0].read_bytes())
    with pytest.raises(RecordFormatError, match=str(bad)):
        load_latest_checkpoint(bad)


# -- a full disk while an interruption writes its checkpoint -------------------------------------------


def test_a_full_disk_during_an_interrupt_keeps_the_keyboard_interrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduled checkpoint of step 3 is written; at step 5 the user interrupts and the disk is
    full: the KeyboardInterrupt propagates, its note says that the checkpoint failed and why, and
    names the earlier checkpoint, which loads."""
    policy = CheckpointPolicy(tmp_path, at_steps=frozenset({3}), keep=0)
    real_write = checkpoint_module.write_atomic
    full = {"disk": False}

    def write(path: str | os.PathLike[str], data: bytes) -> Path:
        if full["disk"]:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_write(path, data)

    def progress(info: ProgressInfo) -> None:
        if info.step == 5:
            full["disk"] = True
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_module, "write_atomic", write)
    with pytest.raises(KeyboardInterrupt) as excinfo:
        run(
            small_data(),
            LAYER,
            SHORT,
            rng=np.random.default_rng(TRAIN_SEED),
            engine=ReferenceEngine(),
            progress=progress,
            checkpoints=policy,
        )
    notes = "\n".join(getattr(excinfo.value, "__notes__", []))
    assert str(policy.path(5)) in notes, notes
    assert "No space left on device" in notes, notes
    assert str(policy.path(3)) in notes, notes
    assert not policy.path(5).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [policy.path(3).name]  # no temporary file left
    assert Checkpoint.load(policy.path(3)).step == 3
