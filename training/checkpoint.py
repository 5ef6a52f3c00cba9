"""Checkpoints of a training run: the loop of :func:`training.trainer.run` between two steps, saved
so that a resumed run continues bit for bit as if it had never stopped.

What a checkpoint holds (everything the loop carries from one step to the next):

* the configurations, the calibrated thresholds (``θ``, ``φ_g``) and the norms they came from;
* the trainer state in the reference's terms (:class:`reference.growth_phases.TrainerState`):
  parameters, optimiser state (Adam's moments and per-parameter step counts), the INCRT state
  (captured basis ``Q_cap``, the dwell clock ``last_growth_step``, the heads' weak-check counters and
  birth steps, the prototypes' low-mass counters), the tracker vectors, the rank history, the step;
* the fixed probe, the state of the run's random generator (it draws the next minibatch), and a
  fingerprint of the data set (a resume on other data is refused);
* the log so far (:class:`training.record.RunLog`), the violation count, the last ``λ_max``
  and the wall time spent.

Births are seeded by ``(seed, head id)`` (:func:`reference.growth_phases.birth_rng`), so no other
random state exists. An engine's own state is rebuilt from the trainer state by its ``start``; both
engines convert exactly (float32 values are float64 values), so a resumed run on the same engine
repeats the uninterrupted one bit for bit on CPU.

The file: one ``.npz`` (NumPy's zip of ``.npy`` arrays, read with ``allow_pickle=False``, so
loading never executes code) holding the arrays — ``params/<name>``, ``opt/m/<name>``,
``opt/v/<name>``, ``growth/Q_cap``, ``growth/w_top``, ``growth/w_bottom``, ``probe/x``,
``probe/labels`` — and ``meta.json``, the UTF-8 JSON of everything else, as a ``uint8`` array.
It is written atomically (:func:`training.files.write_atomic`): a crash mid-write leaves the
previous checkpoint intact. Every field is checked on load, and the fields against each other (the
step against the run's length, the thresholds against the calibration, the counters and the log
against the step), so that a checkpoint that loads resumes into a record that loads. A malformed,
truncated, inconsistent or foreign file — whatever zipfile, zlib, NumPy's reader or :mod:`json`
raise on it, or a path that is not a readable regular file — is a
:class:`training.record.RecordFormatError` naming the file (and the field or array where
known), the original error chained.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from reference._arrays import arr, check_count
from reference.growth_phases import TrainerState
from reference.growth_statistics import Probe
from reference.incrt.controller import EventKind, GrowthConfig, GrowthState, HeadRecord, PrototypeRecord
from reference.model import LayerConfig, check_params
from reference.optim import AdamMoments, AdamState, OptState, SGDState
from reference.surgery import flatten, params_from_arrays
from reference.train_config import TrainConfig
from training.data import SequenceDataset
from training.fields import Fields, RecordFormatError, format_errors, read_dataclass
from training.files import check_path, read_regular_file, unique_keys, write_atomic
from training.record import RunLog, check_calibration

FORMAT = "ddcl-incrt-checkpoint"
VERSION = 1
# Bit generators whose state is a dictionary of integers (JSON holds it exactly).
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "SFC64")
_FILE_NAME = re.compile(r"step-(\d+)\.ckpt\.npz")
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def dataset_fingerprint(data: SequenceDataset) -> str:
    """SHA-256 of the data set's name, class count and arrays (shape, dtype and bytes)."""
    h = hashlib.sha256(f"{data.name}\0{data.n_classes}".encode())
    for a in (data.x_train, data.labels_train, data.x_test, data.labels_test):
        h.update(f"\0{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's state as JSON-able integers; refuses generators whose state is not."""
    state = rng.bit_generator.state
    if state.get("bit_generator") not in _BIT_GENERATORS:
        raise TypeError(
            f"rng: a checkpoint stores the generator's state exactly, which needs one of {_BIT_GENERATORS}; "
            f"got {state.get('bit_generator')!r} (use numpy.random.default_rng)"
        )
    return dict(state)


def restore_rng(state: Mapping[str, Any], path: str = "rng_state") -> np.random.Generator:
    name = state.get("bit_generator")
    if name not in _BIT_GENERATORS:
        raise RecordFormatError(f"{path}.bit_generator: expected one of {_BIT_GENERATORS}, got {name!r}")
    _check_integer_leaves(state, path)
    bit_gen = getattr(np.random, str(name))()
    try:
        bit_gen.state = dict(state)
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise RecordFormatError(f"{path}: not a valid {name} state ({exc})") from exc
    return np.random.Generator(bit_gen)


def _check_integer_leaves(state: Mapping[str, Any], path: str) -> None:
    """Every value of a bit generator's state other than its name is an integer (or a mapping of them):
    NumPy would silently truncate a float and overflow on a huge integer."""
    for key, value in state.items():
        where = f"{path}.{key}"
        if key == "bit_generator":
            continue
        if isinstance(value, Mapping):
            _check_integer_leaves(value, where)
        elif isinstance(value, bool) or not isinstance(value, int):
            raise RecordFormatError(f"{where}: expected an integer, got {type(value).__name__} {value!r}")
        elif not 0 <= value < 2**128:
            raise RecordFormatError(f"{where}: {value} is not an unsigned integer of at most 128 bits")


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """The loop of :func:`training.trainer.run` after ``state.step`` steps (see the module doc)."""

    layer_config: LayerConfig
    train_config: TrainConfig
    growth_config: GrowthConfig
    calibration_norms: tuple[float, ...]
    dataset: str
    dataset_fingerprint: str
    engine: str  # the engine that wrote it ("reference", "accelerated:float32", …); resumed on the same one
    state: TrainerState
    probe: Probe
    rng_state: Mapping[str, Any]
    log: RunLog
    n_violations: int
    lam_last: float | None
    elapsed_s: float

    @property
    def step(self) -> int:
        return self.state.step

    def check_resumable(self, dataset: SequenceDataset, engine: str) -> None:
        """Raise unless this checkpoint continues a run of ``engine`` on ``dataset``."""
        if dataset_fingerprint(dataset) != self.dataset_fingerprint:
            raise ValueError(
                f"dataset: {dataset.name!r} is not the data set this checkpoint was trained on "
                f"({self.dataset!r}; the fingerprints differ)"
            )
        if engine != self.engine:
            raise ValueError(
                f"engine: the checkpoint was written by the {self.engine!r} engine and resumes bit for bit only "
                f"on it, not on {engine!r}"
            )

    # -- writing -----------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the checkpoint to ``path`` atomically; returns the path."""
        arrays: dict[str, np.ndarray] = {f"params/{n}": a for n, a in flatten(self.state.params).items()}
        opt = self.state.opt_state
        for name, mom in opt.moments.items():
            arrays[f"opt/m/{name}"], arrays[f"opt/v/{name}"] = mom.m, mom.v
        growth = self.state.growth
        arrays["growth/Q_cap"] = growth.Q_cap
        arrays["growth/w_top"], arrays["growth/w_bottom"] = self.state.w_top, self.state.w_bottom
        arrays["probe/x"], arrays["probe/labels"] = self.probe.x, self.probe.labels
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "layer_config": asdict(self.layer_config),
            "train_config": asdict(self.train_config),
            "growth_config": asdict(self.growth_config),
            "calibration_norms": list(self.calibration_norms),
            "dataset": self.dataset,
            "dataset_fingerprint": self.dataset_fingerprint,
            "engine": self.engine,
            "step": self.state.step,
            "ranks": list(self.state.ranks),
            "next_head_id": self.state.params.next_head_id,
            "prototype_ids": list(self.state.params.prototype_ids),
            "optimizer": {"kind": opt.kind, **opt.counts()},
            "growth": {
                "last_growth_step": growth.last_growth_step,
                "heads": [asdict(h) for h in growth.heads],
                "prototypes": [asdict(p) for p in growth.prototypes],
            },
            "rng_state": dict(self.rng_state),
            "log": self.log.to_dict(),
            "n_violations": self.n_violations,
            "lam_last": self.lam_last,
            "elapsed_s": self.elapsed_s,
        }
        arrays["meta.json"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez(buf, allow_pickle=False, **arrays)
        return write_atomic(path, buf.getvalue())

    # -- reading -----------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Checkpoint:
        """The checkpoint at ``path``, every array and field checked, alone and against the others
        (never executes code; never waits on a FIFO). Any problem is a :class:`RecordFormatError`
        naming the file, and the field or array where known."""
        p = check_path("path", path)
        with format_errors(f"{p}: not a readable checkpoint"):
            f, arrays = _open(p)
            stored = _stored_state(f, arrays, p)
            return cls._with_the_run(f, p, stored)

    @classmethod
    def _with_the_run(cls, f: Fields, p: Path, stored: StoredState) -> Checkpoint:
        """The run around ``stored``: configurations, thresholds, log and scalars, each checked against
        the others and against the state (what the trainer would have carried to this step)."""
        state = stored.state
        train_cfg = read_dataclass(TrainConfig, f.sub("train_config"))
        growth_cfg = read_dataclass(GrowthConfig, f.sub("growth_config"))
        norms = f.read("calibration_norms", tuple[float, ...])
        check_calibration(f, train_cfg, growth_cfg, norms)
        if state.step > train_cfg.steps:
            raise f.error("step", f"{state.step} is beyond the run's train_config.steps = {train_cfg.steps}")
        lam = f.read("lam_last", float | None)
        elapsed = f.read("elapsed_s", float)
        if not (math.isfinite(elapsed) and elapsed >= 0.0):
            raise f.error("elapsed_s", f"must be finite and >= 0, got {elapsed!r}")
        n_violations = f.count("n_violations")
        fingerprint = f.read("dataset_fingerprint", str)
        if not _FINGERPRINT.fullmatch(fingerprint):
            raise f.error("dataset_fingerprint", f"expected 64 lowercase hex digits (SHA-256), got {fingerprint!r}")
        engine = f.read("engine", str)
        if not engine:
            raise f.error("engine", "the name of the engine that wrote the checkpoint is empty")
        log = RunLog.from_fields(f.sub("log"), steps=state.step, train_config=train_cfg, complete=False)
        ck = cls(
            layer_config=stored.layer_config,
            train_config=train_cfg,
            growth_config=growth_cfg,
            calibration_norms=norms,
            dataset=f.read("dataset", str),
            dataset_fingerprint=fingerprint,
            engine=engine,
            state=state,
            probe=stored.probe,
            rng_state=stored.rng_state,
            log=log,
            n_violations=n_violations,
            lam_last=lam,
            elapsed_s=elapsed,
        )
        _check_against_the_log(f, p, ck)
        return ck


class StoredState(NamedTuple):
    """The trainer state, probe and generator state of a checkpoint file, read without its run."""

    layer_config: LayerConfig
    state: TrainerState
    probe: Probe
    rng_state: Mapping[str, Any]


def load_stored_state(path: str | os.PathLike[str]) -> StoredState:
    """The trainer state, probe and generator state saved at ``path``, each field checked and the
    state checked against itself (parameters, optimiser and INCRT state agree), but not against a
    run's log: for tests that round-trip states no training loop produced. A resume needs
    :meth:`Checkpoint.load`, which checks everything."""
    p = check_path("path", path)
    with format_errors(f"{p}: not a readable checkpoint"):
        f, arrays = _open(p)
        return _stored_state(f, arrays, p)


def _open(p: Path) -> tuple[Fields, dict[str, np.ndarray]]:
    arrays = _read_npz(p)
    f = Fields(_meta(arrays, p), f"{p}: meta.json:")
    f.expect_keys(_META_KEYS)
    if f.get("format") != FORMAT:
        raise f.error("format", f"expected {FORMAT!r}, got {f.get('format')!r} (not a ddcl-incrt checkpoint)")
    if f.get("version") != VERSION:
        raise f.error("version", f"this build reads version {VERSION}, got {f.get('version')!r}")
    return f, arrays


def _stored_state(f: Fields, arrays: Mapping[str, np.ndarray], p: Path) -> StoredState:
    layer_cfg = read_dataclass(LayerConfig, f.sub("layer_config"))
    step = f.count("step")
    read = {"meta.json"}  # every array the state is read from; any other is refused below

    def array(name: str, ndim: int, dtype: type = np.float64) -> np.ndarray:
        if name not in arrays:
            raise RecordFormatError(f"{p}: the array {name!r} is missing")
        read.add(name)
        a = arrays[name]
        if a.dtype != dtype or a.ndim != ndim:
            raise RecordFormatError(
                f"{p}: {name}: expected a {ndim}-d {np.dtype(dtype)} array, got {a.ndim}-d {a.dtype}"
            )
        if a.dtype == np.float64 and not np.all(np.isfinite(a)):
            raise RecordFormatError(f"{p}: {name}: contains NaN or infinity")
        return a

    param_arrays = {
        n.removeprefix("params/"): arr(array(n, a.ndim)) for n, a in arrays.items() if n.startswith("params/")
    }
    try:
        params = params_from_arrays(
            param_arrays,
            next_head_id=f.read("next_head_id", int),
            prototype_ids=f.read("prototype_ids", tuple[int, ...]),
        )
        check_params(params, layer_cfg)
    except RecordFormatError:
        raise
    except (ValueError, TypeError) as exc:
        raise RecordFormatError(f"{p}: params: {exc}") from exc
    g = f.sub("growth")
    g.expect_keys(["last_growth_step", "heads", "prototypes"])
    try:
        growth = GrowthState(
            Q_cap=arr(array("growth/Q_cap", 2)),
            last_growth_step=g.read("last_growth_step", int),
            heads=tuple(read_dataclass(HeadRecord, h) for h in g.items("heads")),
            prototypes=tuple(read_dataclass(PrototypeRecord, x) for x in g.items("prototypes")),
        )
        state = TrainerState(
            params=params,
            opt_state=_opt_state(f.sub("optimizer"), arrays, array, p),
            growth=growth,
            step=step,
            ranks=f.read("ranks", tuple[int, ...]),
            w_top=arr(array("growth/w_top", 1)),
            w_bottom=arr(array("growth/w_bottom", 1)),
        )
        probe = Probe(x=arr(array("probe/x", 3)), labels=array("probe/labels", 1, np.int64))
    except RecordFormatError:
        raise
    except (ValueError, TypeError) as exc:
        raise RecordFormatError(f"{p}: {exc}") from exc
    unread = sorted(set(arrays) - read)
    if unread:
        raise RecordFormatError(
            f"{p}: arrays {unread} are not part of this checkpoint's state (edited or another format)"
        )
    _check_consistent(p, state, layer_cfg)
    rng_fields = f.sub("rng_state")
    restore_rng(rng_fields.data, rng_fields.where)  # validates it
    return StoredState(layer_cfg, state, probe, dict(rng_fields.data))


_META_KEYS = (
    "format",
    "version",
    "layer_config",
    "train_config",
    "growth_config",
    "calibration_norms",
    "dataset",
    "dataset_fingerprint",
    "engine",
    "step",
    "ranks",
    "next_head_id",
    "prototype_ids",
    "optimizer",
    "growth",
    "rng_state",
    "log",
    "n_violations",
    "lam_last",
    "elapsed_s",
)


def _opt_state(f: Fields, arrays: Mapping[str, np.ndarray], array: Any, path: Path) -> OptState:
    kind = f.read("kind", str)
    if kind == "sgd":
        f.expect_keys(["kind", "steps"])
        return SGDState(steps=f.read("steps", int))
    if kind != "adam":
        raise f.error("kind", f"expected 'sgd' or 'adam', got {kind!r}")
    f.expect_keys(["kind", "t"])
    t = f.sub("t")
    names = sorted(n.removeprefix("opt/m/") for n in arrays if n.startswith("opt/m/"))
    if sorted(t.data) != names or sorted(n.removeprefix("opt/v/") for n in arrays if n.startswith("opt/v/")) != names:
        raise f.error("t", f"the step counts {sorted(t.data)} and the stored moments {names} name different parameters")
    moments = {}
    for name in names:
        m, v = (arr(array(f"opt/{k}/{name}", arrays[f"opt/{k}/{name}"].ndim)) for k in ("m", "v"))
        if m.shape != v.shape:
            raise RecordFormatError(f"{path}: opt/m/{name} and opt/v/{name}: shapes {m.shape} and {v.shape} differ")
        moments[name] = AdamMoments(m=m, v=v, t=t.count(name))
    return AdamState(moments=moments)


def _check_consistent(path: Path, state: TrainerState, cfg: LayerConfig) -> None:
    """The INCRT state and the optimiser state must describe the stored parameters."""
    params, growth = state.params, state.growth
    if growth.head_ids != tuple(sorted(params.heads)):
        raise RecordFormatError(
            f"{path}: growth.heads {growth.head_ids} disagree with the parameters' heads {tuple(sorted(params.heads))}"
        )
    if growth.prototype_ids != tuple(params.prototype_ids):
        raise RecordFormatError(
            f"{path}: growth.prototypes {growth.prototype_ids} disagree with the parameters' {params.prototype_ids}"
        )
    if growth.Q_cap.shape[0] != cfg.d:
        raise RecordFormatError(f"{path}: growth/Q_cap has {growth.Q_cap.shape[0]} rows, not d = {cfg.d}")
    flat = flatten(params)
    for name, mom in state.opt_state.moments.items():
        if name not in flat or flat[name].shape != mom.m.shape:
            raise RecordFormatError(f"{path}: opt/m/{name}: no parameter of that name and shape")


def _check_against_the_log(f: Fields, p: Path, ck: Checkpoint) -> None:
    """The state's counters, the probe and the loop's scalars must be those the logged run implies
    (what the trainer would have carried to this step); each disagreement names its field."""
    state, growth, log, cfg = ck.state, ck.state.growth, ck.log, ck.layer_config
    births = {e.head_id: e.step for e in log.events if e.kind is EventKind.BIRTH}
    n_checks = len(log.checks)
    if len(state.ranks) != 1 + len(births) or state.ranks[0] != 0:
        raise f.error(
            "ranks",
            f"expected the initial rank 0 and one rank per logged birth ({len(births)}), got {list(state.ranks)}",
        )
    for i, r in enumerate(state.ranks):
        if not 0 <= r <= cfg.d:
            raise f.error(f"ranks[{i}]", f"a rank lies in [0, d = {cfg.d}], got {r}")
    if growth.m != len(births):
        raise RecordFormatError(
            f"{p}: growth/Q_cap: {growth.m} captured directions, but {len(births)} births are logged"
        )
    last_birth = max(births.values(), default=0)
    if growth.last_growth_step != last_birth:
        raise f.error(
            "growth.last_growth_step",
            f"expected {last_birth} (the last logged birth, else 0), got {growth.last_growth_step}",
        )
    newborn_margin = "newborn_margin" in ck.growth_config.variants
    for i, h in enumerate(growth.heads):
        where = f"growth.heads[{i}]"
        if h.head_id != 0 and h.head_id not in births:
            raise f.error(f"{where}.head_id", f"head {h.head_id} is neither the initial head 0 nor a logged birth")
        if h.birth_step != births.get(h.head_id, 0):
            raise f.error(
                f"{where}.birth_step", f"expected {births.get(h.head_id, 0)} (its logged birth), got {h.birth_step}"
            )
        if not 0 <= h.below_count <= n_checks:
            raise f.error(f"{where}.below_count", f"a count of checks lies in [0, {n_checks}], got {h.below_count}")
        if not (math.isfinite(h.newborn_strength) and h.newborn_strength >= 0.0):
            raise f.error(f"{where}.newborn_strength", f"must be finite and >= 0, got {h.newborn_strength!r}")
        if not newborn_margin and h.newborn_strength != 0.0:
            raise f.error(
                f"{where}.newborn_strength",
                f"is 0 unless the variant 'newborn_margin' is on, got {h.newborn_strength!r}",
            )
    for i, pr in enumerate(growth.prototypes):
        if not 0 <= pr.low_mass_count <= n_checks:
            raise f.error(
                f"growth.prototypes[{i}].low_mass_count",
                f"a count of checks lies in [0, {n_checks}], got {pr.low_mass_count}",
            )
    count_error = state.opt_state.count_error(state.step)
    if count_error is not None:
        where, why = count_error
        raise f.error(f"optimizer.{where}", why)
    train = ck.train_config
    x, labels = ck.probe.x, ck.probe.labels
    if x.shape != (train.probe_size, cfg.seq_len, cfg.d_in) or labels.shape != (train.probe_size,):
        raise RecordFormatError(
            f"{p}: probe/x, probe/labels: expected shapes "
            f"{(train.probe_size, cfg.seq_len, cfg.d_in)} and {(train.probe_size,)}, got {x.shape} and {labels.shape}"
        )
    if labels.size and not (labels.min() >= 0 and labels.max() < cfg.n_classes):
        raise RecordFormatError(
            f"{p}: probe/labels: every label must lie in [0, {cfg.n_classes}) (layer_config.n_classes), "
            f"got labels from {int(labels.min())} to {int(labels.max())}"
        )
    lam_expected = log.checks[-1].lam_max if log.checks else None
    if not _same_float(ck.lam_last, lam_expected):
        raise f.error("lam_last", f"expected {lam_expected!r} (the last logged check's λ_max), got {ck.lam_last!r}")
    violations = sum(1 for r in log.invariants if r.violation)
    if ck.n_violations != violations:
        raise f.error("n_violations", f"expected {violations} (the logged invariants that fail), got {ck.n_violations}")


def _same_float(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    raw = read_regular_file(path)  # read whole, then parsed from memory: a bad file leaves no handle open
    if raw and not raw.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):
        # np.load would take anything else for a pickle and suggest loading it unsafely (an empty file
        # is np.load's EOFError, named as such by the caller)
        raise RecordFormatError(f"{path}: not a checkpoint (.npz) file: it does not start with a zip signature")
    z = np.load(io.BytesIO(raw), allow_pickle=False)
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise RecordFormatError(f"{path}: a single .npy array, not a checkpoint (.npz) file")
    out: dict[str, np.ndarray] = {}
    with z:
        for name in z.files:
            with format_errors(f"{path}: {name}: not a readable array"):
                a = z[name]
                if not isinstance(a, np.ndarray):  # a member NumPy returns as raw bytes (not an .npy)
                    raise RecordFormatError(f"{path}: {name}: not a .npy array")
                out[name] = a
    return out


def _meta(arrays: Mapping[str, np.ndarray], path: Path) -> Any:
    raw = arrays.get("meta.json")
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise RecordFormatError(f"{path}: meta.json: missing or not a byte array (not a ddcl-incrt checkpoint)")
    with format_errors(f"{path}: meta.json: not valid UTF-8 JSON"):
        return json.loads(raw.tobytes().decode("utf-8"), object_pairs_hook=unique_keys)


def state_differences(a: TrainerState, b: TrainerState) -> list[str]:
    """Where two trainer states differ, bit for bit (empty: identical): parameters and ids, optimiser
    state, INCRT state, tracker vectors, ranks and step. What an exact resume must preserve."""
    out: list[str] = []

    def same(name: str, x: np.ndarray, y: np.ndarray) -> None:
        if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
            out.append(name)

    fa, fb = flatten(a.params), flatten(b.params)
    if set(fa) != set(fb):
        out.append(f"params: names {sorted(set(fa) ^ set(fb))}")
    for name in sorted(set(fa) & set(fb)):
        same(f"params.{name}", fa[name], fb[name])
    if (a.params.next_head_id, a.params.prototype_ids) != (b.params.next_head_id, b.params.prototype_ids):
        out.append("params: ids")
    oa, ob = a.opt_state, b.opt_state
    if oa.kind != ob.kind:
        out.append("opt_state: kind")
    else:
        if set(oa.moments) != set(ob.moments):
            out.append("opt_state: moment names")
        va, vb = oa.named_values(), ob.named_values()
        # by parameter name (the text before the last dot), each parameter's values in their order
        for key in sorted((k for k in va if k in vb), key=lambda k: k.rpartition(".")[0]):
            same(f"opt_state.{key}", np.asarray(va[key]), np.asarray(vb[key]))  # a count as a 0-d array
    ga, gb = a.growth, b.growth
    same("growth.Q_cap", ga.Q_cap, gb.Q_cap)
    for name in ("last_growth_step", "heads", "prototypes"):
        if getattr(ga, name) != getattr(gb, name):
            out.append(f"growth.{name}")
    same("w_top", a.w_top, b.w_top)
    same("w_bottom", a.w_bottom, b.w_bottom)
    for name in ("step", "ranks"):
        if getattr(a, name) != getattr(b, name):
            out.append(name)
    return out


# -- where checkpoints go -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointPolicy:
    """When :func:`training.trainer.run` writes checkpoints, and where.

    ``every`` steps (0: never on a schedule), also at each step of ``at_steps``, and — unless
    ``on_interrupt`` is off — when the loop is interrupted (an exception, ``KeyboardInterrupt``
    included), of the last step completed. Files are ``directory/step-<step>.ckpt.npz``; only the
    ``keep`` most recent scheduled ones are kept (0: all), so a long run does not fill the disk.
    """

    directory: Path
    every: int = 0
    at_steps: frozenset[int] = frozenset()
    keep: int = 2
    on_interrupt: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "directory", Path(self.directory))
        check_count("CheckpointPolicy.every", self.every, 0)
        check_count("CheckpointPolicy.keep", self.keep, 0)
        object.__setattr__(
            self, "at_steps", frozenset(check_count("CheckpointPolicy.at_steps", s, 1) for s in self.at_steps)
        )

    def due(self, step: int) -> bool:
        return (self.every > 0 and step % self.every == 0) or step in self.at_steps

    def path(self, step: int) -> Path:
        return self.directory / f"step-{step:08d}.ckpt.npz"

    def prune(self, step: int) -> None:
        """After writing the checkpoint of ``step``: remove all but the ``keep`` most recent checkpoints of
        the folder up to that step. A checkpoint of a later step is another run's (an earlier run into the
        same folder) and is never counted or removed: it would make a run delete its own newest files."""
        if self.keep == 0:
            return
        mine = [p for p in checkpoints_in(self.directory) if step_of(p) <= step]
        for old in mine[: -self.keep]:
            old.unlink(missing_ok=True)


def step_of(path: str | Path) -> int:
    """The step of the checkpoint file ``path``, read from its name ``step-<step>.ckpt.npz`` (the file is
    not opened: a name :func:`checkpoints_in` lists, or :meth:`CheckpointPolicy.path` gives). A name of
    another form is a ``ValueError`` naming it."""
    m = _FILE_NAME.fullmatch(Path(path).name)
    if m is None:
        raise ValueError(f"{path}: not a checkpoint file name (step-<step>.ckpt.npz)")
    return int(m.group(1))


def checkpoints_in(directory: str | Path) -> list[Path]:
    """The checkpoint files of ``directory``, oldest step first."""
    found = [
        (int(m.group(1)), p) for p in Path(directory).glob("step-*.ckpt.npz") if (m := _FILE_NAME.fullmatch(p.name))
    ]
    return [p for _, p in sorted(found)]


def latest_checkpoint(path: str | os.PathLike[str], *, warn: Callable[[str], None] | None = None) -> Path:
    """``path`` itself if it is a file, else the newest checkpoint of the folder ``path`` that loads
    (see :func:`load_latest_checkpoint`, which also returns it loaded)."""
    p = check_path("path", path)
    if p.is_file():
        return p
    return _newest_intact(p, warn)[0]


def load_latest_checkpoint(path: str | os.PathLike[str], *, warn: Callable[[str], None] | None = None) -> Checkpoint:
    """The checkpoint at ``path`` (a file), or the newest intact checkpoint of the folder ``path``.

    A newer checkpoint that does not load (truncated by a crash mid-copy, corrupted) is skipped for the
    next older one, each skip reported through ``warn`` (default: a line on stderr) naming the file and
    why; nothing is deleted. If no checkpoint of the folder loads, the :class:`RecordFormatError`
    lists every file and why.
    """
    p = check_path("path", path)
    if p.is_file():
        return Checkpoint.load(p)
    return _newest_intact(p, warn)[1]


def _newest_intact(folder: Path, warn: Callable[[str], None] | None) -> tuple[Path, Checkpoint]:
    if not folder.is_dir():
        raise FileNotFoundError(f"resume: {folder} is neither a checkpoint file nor a folder of checkpoints")
    found = checkpoints_in(folder)
    if not found:
        raise FileNotFoundError(f"resume: the folder {folder} holds no step-*.ckpt.npz checkpoint")
    report = warn if warn is not None else _warn_on_stderr
    refused: list[str] = []
    for candidate in reversed(found):
        try:
            return candidate, Checkpoint.load(candidate)
        except RecordFormatError as exc:
            refused.append(f"  {candidate.name}: {exc}")
            report(f"warning: resume: skipping {candidate}, which does not load: {exc}")
    listing = "\n".join(refused)
    raise RecordFormatError(f"resume: none of the {len(found)} checkpoints in {folder} loads:\n{listing}")


def _warn_on_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


__all__ = [
    "FORMAT",
    "VERSION",
    "Checkpoint",
    "CheckpointPolicy",
    "StoredState",
    "checkpoints_in",
    "dataset_fingerprint",
    "latest_checkpoint",
    "load_latest_checkpoint",
    "load_stored_state",
    "restore_rng",
    "rng_state",
    "state_differences",
    "step_of",
]
