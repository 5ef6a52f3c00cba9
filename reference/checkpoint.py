"""Checkpoints of a training run: the loop of :func:`reference.trainer.run` between two steps, saved
so that a resumed run continues bit for bit as if it had never stopped.

What a checkpoint holds (everything the loop carries from one step to the next):

* the configurations, the calibrated thresholds (``θ``, ``φ_g``) and the norms they came from;
* the trainer state in the reference's terms (:class:`reference.growth_phases.TrainerState`):
  parameters, optimiser state (Adam's moments and per-parameter step counts), the INCRT state
  (captured basis ``Q_cap``, the dwell clock ``last_growth_step``, the heads' weak-check counters and
  birth steps, the prototypes' low-mass counters), the tracker vectors, the rank history, the step;
* the fixed probe, the state of the run's random generator (it draws the next minibatch), and a
  fingerprint of the data set (a resume on other data is refused);
* the log so far (:class:`reference.run_record.RunLog`), the violation count, the last ``λ_max``
  and the wall time spent.

Births are seeded by ``(seed, head id)`` (:func:`reference.growth_phases.birth_rng`), so no other
random state exists. An engine's own state is rebuilt from the trainer state by its ``start``; both
engines convert exactly (float32 values are float64 values), so a resumed run on the same engine
repeats the uninterrupted one bit for bit on CPU.

The file: one ``.npz`` (NumPy's zip of ``.npy`` arrays, read with ``allow_pickle=False``, so
loading never executes code) holding the arrays — ``params/<name>``, ``opt/m/<name>``,
``opt/v/<name>``, ``growth/Q_cap``, ``growth/w_top``, ``growth/w_bottom``, ``probe/x``,
``probe/labels`` — and ``meta.json``, the UTF-8 JSON of everything else, as a ``uint8`` array.
It is written atomically (:func:`reference.files.write_atomic`): a crash mid-write leaves the
previous checkpoint intact. Every field is checked on load; a malformed, truncated or foreign file
is a :class:`reference.run_record.RecordFormatError` naming the file and the field.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reference._arrays import arr, check_count
from reference._fields import Fields, RecordFormatError, read_dataclass
from reference.data import SequenceDataset
from reference.files import write_atomic
from reference.growth_phases import TrainerState
from reference.growth_statistics import Probe
from reference.incrt.controller import GrowthConfig, GrowthState, HeadRecord, PrototypeRecord
from reference.model import LayerConfig, check_params
from reference.optim import AdamMoments, AdamState, SGDState
from reference.run_record import RunLog
from reference.surgery import flatten, params_from_arrays
from reference.train_config import OptState, TrainConfig

FORMAT = "ddcl-incrt-checkpoint"
VERSION = 1
# Bit generators whose state is a dictionary of integers (JSON holds it exactly).
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "SFC64")
_FILE_NAME = re.compile(r"step-(\d+)\.ckpt\.npz")


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
    bit_gen = getattr(np.random, str(name))()
    try:
        bit_gen.state = dict(state)
    except (ValueError, TypeError, KeyError) as exc:
        raise RecordFormatError(f"{path}: not a valid {name} state ({exc})") from exc
    return np.random.Generator(bit_gen)


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """The loop of :func:`reference.trainer.run` after ``state.step`` steps (see the module doc)."""

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
        if isinstance(opt, AdamState):
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
            "optimizer": _opt_meta(opt),
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
    def load(cls, path: str | Path) -> Checkpoint:
        """The checkpoint at ``path``, every array and field checked (never executes code)."""
        p = Path(path)
        arrays = _read_npz(p)
        f = Fields(_meta(arrays, p), f"{p}: meta.json:")
        f.expect_keys(_META_KEYS)
        if f.get("format") != FORMAT:
            raise f.error("format", f"expected {FORMAT!r}, got {f.get('format')!r} (not a ddcl-incrt checkpoint)")
        if f.get("version") != VERSION:
            raise f.error("version", f"this build reads version {VERSION}, got {f.get('version')!r}")
        layer_cfg = read_dataclass(LayerConfig, f.sub("layer_config"))
        step = f.count("step")

        def array(name: str, ndim: int, dtype: type = np.float64) -> np.ndarray:
            if name not in arrays:
                raise RecordFormatError(f"{p}: the array {name!r} is missing")
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
        _check_consistent(p, state, layer_cfg)
        lam = f.read("lam_last", float | None)
        elapsed = f.read("elapsed_s", float)
        if not (math.isfinite(elapsed) and elapsed >= 0.0):
            raise f.error("elapsed_s", f"must be finite and >= 0, got {elapsed!r}")
        n_violations = f.count("n_violations")
        rng_fields = f.sub("rng_state")
        restore_rng(rng_fields.data, rng_fields.where)  # validates it
        return cls(
            layer_config=layer_cfg,
            train_config=read_dataclass(TrainConfig, f.sub("train_config")),
            growth_config=read_dataclass(GrowthConfig, f.sub("growth_config")),
            calibration_norms=f.read("calibration_norms", tuple[float, ...]),
            dataset=f.read("dataset", str),
            dataset_fingerprint=f.read("dataset_fingerprint", str),
            engine=f.read("engine", str),
            state=state,
            probe=probe,
            rng_state=dict(rng_fields.data),
            log=RunLog.from_fields(f.sub("log"), steps=step),
            n_violations=n_violations,
            lam_last=lam,
            elapsed_s=elapsed,
        )


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


def _opt_meta(opt: OptState) -> dict[str, Any]:
    if isinstance(opt, SGDState):
        return {"kind": "sgd", "steps": opt.steps}
    return {"kind": "adam", "t": {name: mom.t for name, mom in opt.moments.items()}}


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
    if isinstance(state.opt_state, AdamState):
        flat = flatten(params)
        for name, mom in state.opt_state.moments.items():
            if name not in flat or flat[name].shape != mom.m.shape:
                raise RecordFormatError(f"{path}: opt/m/{name}: no parameter of that name and shape")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    raw = path.read_bytes()  # read whole, then parsed from memory: a bad file leaves no handle open
    try:
        z = np.load(io.BytesIO(raw), allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise RecordFormatError(f"{path}: a single .npy array, not a checkpoint (.npz) file")
        with z:
            return {name: z[name] for name in z.files}
    except RecordFormatError:
        raise
    except (
        zipfile.BadZipFile,
        EOFError,
        OSError,
        ValueError,
        KeyError,
        NotImplementedError,  # zipfile: a corrupted compression-method field
        RuntimeError,  # zipfile: encrypted entries; RecursionError
        zlib.error,
        struct.error,
        OverflowError,
        MemoryError,  # a corrupted header declaring a huge array
        SyntaxError,  # numpy's .npy header parser
        tokenize.TokenError,
        AttributeError,
        TypeError,
    ) as exc:
        # ValueError includes an object array, which allow_pickle=False refuses to unpickle
        raise RecordFormatError(f"{path}: not a readable checkpoint (truncated, corrupted or not .npz): {exc}") from exc


def _meta(arrays: Mapping[str, np.ndarray], path: Path) -> Any:
    raw = arrays.get("meta.json")
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise RecordFormatError(f"{path}: meta.json: missing or not a byte array (not a ddcl-incrt checkpoint)")
    try:
        return json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, Python's integer-digit and nesting limits
        raise RecordFormatError(f"{path}: meta.json: not valid UTF-8 JSON ({exc})") from exc


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
    if type(oa) is not type(ob):
        out.append("opt_state: kind")
    elif isinstance(oa, SGDState) and isinstance(ob, SGDState):
        if oa.steps != ob.steps:
            out.append("opt_state.steps")
    elif isinstance(oa, AdamState) and isinstance(ob, AdamState):
        if set(oa.moments) != set(ob.moments):
            out.append("opt_state: moment names")
        for name in sorted(set(oa.moments) & set(ob.moments)):
            ma, mb = oa.moments[name], ob.moments[name]
            same(f"opt_state.{name}.m", ma.m, mb.m)
            same(f"opt_state.{name}.v", ma.v, mb.v)
            if ma.t != mb.t:
                out.append(f"opt_state.{name}.t")
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
    """When :func:`reference.trainer.run` writes checkpoints, and where.

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

    def prune(self) -> None:
        """Remove all but the ``keep`` most recent checkpoints of the folder."""
        if self.keep == 0:
            return
        for old in checkpoints_in(self.directory)[: -self.keep]:
            old.unlink(missing_ok=True)


def checkpoints_in(directory: str | Path) -> list[Path]:
    """The checkpoint files of ``directory``, oldest step first."""
    found = [
        (int(m.group(1)), p) for p in Path(directory).glob("step-*.ckpt.npz") if (m := _FILE_NAME.fullmatch(p.name))
    ]
    return [p for _, p in sorted(found)]


def latest_checkpoint(path: str | Path) -> Path:
    """``path`` itself if it is a file, else the checkpoint of the highest step in the folder ``path``."""
    p = Path(path)
    if p.is_file():
        return p
    if not p.is_dir():
        raise FileNotFoundError(f"resume: {p} is neither a checkpoint file nor a folder of checkpoints")
    found = checkpoints_in(p)
    if not found:
        raise FileNotFoundError(f"resume: the folder {p} holds no step-*.ckpt.npz checkpoint")
    return found[-1]


__all__ = [
    "FORMAT",
    "VERSION",
    "Checkpoint",
    "CheckpointPolicy",
    "checkpoints_in",
    "dataset_fingerprint",
    "latest_checkpoint",
    "restore_rng",
    "rng_state",
    "state_differences",
]
