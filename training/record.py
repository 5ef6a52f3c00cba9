"""The record of a training run (:class:`RunRecord`) and its exact JSON round trip.

One schema for every engine: both engines' trainers write it, and the
audit and the conformance kit read it. Parameters are stored flat (:func:`reference.surgery.flatten`)
and loaded through :func:`reference.surgery.params_from_arrays`, the same constructor path as
:func:`reference.surgery.unflatten`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import Float64

from reference._arrays import F64Array, arr
from reference.growth_phases import growth_config_for
from reference.incrt.controller import EventKind, GrowthConfig, GrowthEvent, calibrated_theta, mass_slack
from reference.invariants.result import InvariantResult
from reference.log import LOSS_FIELDS, CheckRecord, Evaluation, InvariantRecord, LossTrace
from reference.model import LayerConfig, ModelParams, check_params
from reference.surgery import flatten, params_from_arrays
from reference.train_config import TrainConfig
from training.fields import Fields, RecordFormatError, format_errors, read_dataclass
from training.files import DuplicateKeyError, check_path, read_regular_file, unique_keys, write_atomic

# What a run record's JSON says it is; a change to its layout raises the version.
RECORD_FORMAT = "ddcl-incrt-run-record"
# 2: invariants carry vacuous_at where finite; the summary counts certified checks.
# 3: invariants carry the hypotheses of their claim that failed there; the summary separates violations
#    (hypotheses held) from failures where nothing was promised.
RECORD_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)


@dataclass(frozen=True)
class Architecture:
    """The structure training ended with (SPEC §3: an output of training, reported with every run)."""

    head_ids: tuple[int, ...]
    n_heads: int
    prototype_ids: tuple[int, ...]
    n_prototypes: int
    births: int
    head_prunes: int
    prototype_prunes: int
    captured_rank: int


@dataclass(frozen=True)
class ClaimSummary:
    """Per claim, its ``count`` checks split four ways. Where the claim's hypotheses held (or were not
    evaluated: ``unwatched`` of them, records before version 3): ``certified`` held with a bound that could
    have failed, ``uncertified`` held with one that could not (an infinite or vacuous bound, not evidence),
    ``violations`` failed. ``unpromised``: checks made where a hypothesis failed, so the claim promised
    nothing, whatever their outcome; ``failed_unpromised`` of them failed (what the conclusion did anyway),
    ``failed_hypotheses`` names those hypotheses and ``first_unpromised_step`` the first step it happened at.
    The tightest certified check, by the fraction of its bound its value used
    (:attr:`reference.invariants.result.InvariantResult.used`), and its name: None and "" when no such check
    has a positive bound (only exact checks, which hold or fail outright)."""

    count: int
    certified: int
    uncertified: int
    violations: int
    tightest: float | None
    tightest_check: str
    unpromised: int = 0
    failed_unpromised: int = 0
    failed_hypotheses: tuple[str, ...] = ()
    first_unpromised_step: int | None = None
    unwatched: int = 0

    @classmethod
    def of(cls, records: Sequence[InvariantRecord]) -> ClaimSummary:
        """The summary of one claim's records."""
        promised = [r.result for r in records if r.promised is not False]
        unpromised = [r for r in records if r.promised is False]
        fractions = [(r.used, r.check) for r in promised if r.holds and r.used is not None]
        tightest = max(fractions, key=lambda u: u[0], default=(None, ""))
        failed_names = {name for r in unpromised for name in r.failed_hypotheses or ()}
        return cls(
            count=len(records),
            certified=sum(1 for r in promised if r.holds and r.certified),
            uncertified=sum(1 for r in promised if r.holds and not r.certified),
            violations=sum(1 for r in promised if not r.holds),
            tightest=tightest[0],
            tightest_check=tightest[1],
            unpromised=len(unpromised),
            failed_unpromised=sum(1 for r in unpromised if not r.result.holds),
            failed_hypotheses=tuple(sorted(failed_names)),
            first_unpromised_step=min((r.step for r in unpromised), default=None),
            unwatched=sum(1 for r in records if r.promised is None),
        )


@dataclass(frozen=True)
class RunLog:
    """What a run has logged so far: the losses of every step, the evaluations, the controller's
    events, the invariant results and the checks' statistics. Stored in a :class:`RunRecord` and, for
    the steps up to an interruption, in a checkpoint (:mod:`training.checkpoint`), in one format."""

    losses: LossTrace
    evaluations: tuple[Evaluation, ...]
    events: tuple[GrowthEvent, ...]
    invariants: tuple[InvariantRecord, ...]
    checks: tuple[CheckRecord, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "losses": {name: list(getattr(self.losses, name)) for name in LOSS_FIELDS},
            "evaluations": [asdict(e) for e in self.evaluations],
            "events": [_event_to_dict(e) for e in self.events],
            "invariants": [_invariant_to_dict(r) for r in self.invariants],
            "checks": [_check_to_dict(c) for c in self.checks],
        }

    @classmethod
    def from_fields(cls, f: Fields, *, steps: int, train_config: TrainConfig, complete: bool) -> RunLog:
        """The log in the fields ``losses`` … ``checks`` of ``f``, which must hold ``steps`` steps of a run
        of ``train_config``: a check at every multiple of ``check_every``, an evaluation at every multiple
        of ``eval_every`` before the last step, and (``complete``: a finished run's record) the final
        evaluation at ``train_config.steps``; events and invariants in the order of their steps."""
        losses = read_dataclass(LossTrace, f.sub("losses"))
        for name in LOSS_FIELDS:
            if len(getattr(losses, name)) != steps:
                raise f.error(
                    f"losses.{name}", f"expected one value per step ({steps}), got {len(getattr(losses, name))}"
                )
        log = cls(
            losses=losses,
            evaluations=tuple(read_dataclass(Evaluation, e) for e in f.items("evaluations")),
            events=tuple(_event_from_fields(e) for e in f.items("events")),
            invariants=tuple(_invariant_from_fields(r) for r in f.items("invariants")),
            checks=tuple(_check_from_fields(c) for c in f.items("checks")),
        )
        steps_of: dict[str, list[int]] = {
            "evaluations": [e.step for e in log.evaluations],
            "events": [e.step for e in log.events],
            "invariants": [r.step for r in log.invariants],
            "checks": [c.step for c in log.checks],
        }
        for key, at in steps_of.items():
            for i, step in enumerate(at):
                if not 0 <= step <= steps:
                    raise f.error(f"{key}[{i}].step", f"must lie in [0, {steps}] (the steps logged), got {step}")
                if i > 0 and step < at[i - 1]:
                    raise f.error(f"{key}[{i}].step", f"{step} comes after step {at[i - 1]} (the log is in step order)")
        check_every, eval_every = train_config.check_every, train_config.eval_every
        expected = {
            "checks": list(range(check_every, steps + 1, check_every)),
            "evaluations": [
                s for s in range(eval_every, steps + 1, eval_every or 1) if eval_every and s < train_config.steps
            ]
            + ([train_config.steps] if complete else []),
        }
        for key, want in expected.items():
            if steps_of[key] != want:
                raise f.error(
                    key,
                    f"expected one at each of the steps {_steps_text(want)} (train_config's schedule over {steps} "
                    f"steps), got {_steps_text(steps_of[key])}",
                )
        return log


def _steps_text(steps: Sequence[int]) -> str:
    if not steps:
        return "[] (none)"
    return str(list(steps)) if len(steps) <= 8 else f"[{steps[0]}, {steps[1]}, …, {steps[-1]}] ({len(steps)})"


def check_calibration(f: Fields, train_cfg: TrainConfig, growth_cfg: GrowthConfig, norms: Sequence[float]) -> None:
    """The thresholds must be those :func:`reference.growth_phases.calibrate` derives from ``train_cfg``
    and the calibration norms (finite, ``>= 0``, one per calibration probe, or none when ``θ`` is given):
    a checkpoint or record whose thresholds were edited would continue or describe another run."""
    for i, v in enumerate(norms):
        if not (math.isfinite(v) and v >= 0.0):
            raise f.error(f"calibration_norms[{i}]", f"a Frobenius norm must be finite and >= 0, got {v!r}")
    if train_cfg.theta is None:
        if len(norms) != train_cfg.calibration_probes:
            raise f.error(
                "calibration_norms",
                f"expected one norm per calibration probe ({train_cfg.calibration_probes}), got {len(norms)}",
            )
        theta = calibrated_theta(norms, train_cfg.c_theta)
    else:
        if norms:
            raise f.error(
                "calibration_norms", f"θ is given in train_config, so no norms are calibrated; got {len(norms)}"
            )
        theta = train_cfg.theta
    expected = growth_config_for(train_cfg, theta)
    for x in fields(GrowthConfig):
        got, want = getattr(growth_cfg, x.name), getattr(expected, x.name)
        if got != want:
            raise f.error(
                f"growth_config.{x.name}",
                f"{got!r} is not what train_config and calibration_norms give ({want!r})",
            )


@dataclass(frozen=True, eq=False)
class RunRecord:
    """Everything a run produced; :meth:`to_json` / :meth:`from_json` round-trip it exactly.

    ``losses`` per step (on the minibatch), ``evaluations`` every ``eval_every`` steps and at the end,
    ``events`` the controller's log (births with ``λ_birth``, ``u₊`` and margin; prunes; near-ties),
    ``invariants`` every checked result with its step and event, ``checks`` the statistics at every
    check (``λ_max(A_res)`` vs ``θ``), the thresholds used (``growth_config``; ``calibration_norms`` the
    ``‖A_res‖_F`` they were calibrated from), the final architecture, parameters and ``Q_cap``, and the
    wall time in seconds.
    """

    dataset: str
    dataset_meta: Mapping[str, Any]
    layer_config: LayerConfig
    train_config: TrainConfig
    growth_config: GrowthConfig
    calibration_norms: tuple[float, ...]
    losses: LossTrace
    evaluations: tuple[Evaluation, ...]
    events: tuple[GrowthEvent, ...]
    invariants: tuple[InvariantRecord, ...]
    checks: tuple[CheckRecord, ...]
    architecture: Architecture
    final_params: ModelParams
    Q_cap: Float64[np.ndarray, "d m"]
    wall_time_s: float
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def train_accuracy(self) -> float:
        return self.evaluations[-1].train_accuracy

    @property
    def test_accuracy(self) -> float:
        return self.evaluations[-1].test_accuracy

    def births(self) -> tuple[GrowthEvent, ...]:
        return tuple(e for e in self.events if e.kind is EventKind.BIRTH)

    def violations(self) -> tuple[InvariantRecord, ...]:
        """The failed checks whose claim had promised them (:attr:`InvariantRecord.violation`)."""
        return tuple(r for r in self.invariants if r.violation)

    def summary(self) -> dict[str, ClaimSummary]:
        """Per claim id: the counts of certified, uncertified, violated and unpromised checks, and the
        tightest certified check (:class:`ClaimSummary`)."""
        return {
            claim_id: ClaimSummary.of([rec for rec in self.invariants if rec.result.claim_id == claim_id])
            for claim_id in sorted({rec.result.claim_id for rec in self.invariants})
        }

    def lam_max_trajectory(self) -> tuple[tuple[int, float, float], ...]:
        """``(step, λ_max(A_res), θ)`` at every check."""
        return tuple((c.step, c.lam_max, c.theta) for c in self.checks)

    # -- serialisation ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": RECORD_FORMAT,
            "version": RECORD_VERSION,
            "dataset": self.dataset,
            "dataset_meta": _jsonable(dict(self.dataset_meta)),
            "layer_config": asdict(self.layer_config),
            "train_config": asdict(self.train_config),
            "growth_config": asdict(self.growth_config),
            "calibration_norms": list(self.calibration_norms),
            **RunLog(self.losses, self.evaluations, self.events, self.invariants, self.checks).to_dict(),
            "architecture": asdict(self.architecture),
            "final_params": _params_to_dict(self.final_params),
            "Q_cap": self.Q_cap.tolist(),
            "Q_cap_shape": list(self.Q_cap.shape),
            "wall_time_s": self.wall_time_s,
            "meta": _jsonable(dict(self.meta)),
            "summary": {k: asdict(v) for k, v in self.summary().items()},
        }

    def to_json(self) -> str:
        """JSON text (non-finite floats as ``Infinity``/``NaN``, which :mod:`json` reads back)."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path`` atomically (:func:`training.files.write_atomic`: a failed
        write — a full disk, a kill — leaves any previous record untouched); returns the path."""
        return write_atomic(path, self.to_json().encode("utf-8"))

    @classmethod
    def from_dict(cls, data: object, *, source: str = "record") -> RunRecord:
        """The record in ``data``, every field checked against its declared type and against the others
        (the stored weights against ``layer_config``, the architecture against the weights, ``Q_cap``
        against both, one loss per step); any problem is a :class:`RecordFormatError` naming ``source``
        and the field. Unknown fields are refused rather than dropped."""
        with format_errors(f"{source}: not a readable run record"):
            return cls._from_fields(Fields(data, f"{source}:"))

    @classmethod
    def _from_fields(cls, f: Fields) -> RunRecord:
        f.expect_keys(_RECORD_KEYS, ("format", "version", "meta", "summary", "Q_cap_shape"))
        # A record without these two fields was written before records were versioned, in the layout
        # of version 1, and is read as one; any other format or version is refused by name.
        if "format" in f.data and f.get("format") != RECORD_FORMAT:
            got = f.get("format")
            raise f.error("format", f"expected {RECORD_FORMAT!r}, got {got!r} (not a ddcl-incrt run record)")
        version = f.get("version") if "version" in f.data else 1
        if isinstance(version, bool) or version not in READABLE_VERSIONS:
            raise f.error("version", f"this build reads versions {list(READABLE_VERSIONS)}, got {version!r}")
        layer_cfg = read_dataclass(LayerConfig, f.sub("layer_config"))
        train_cfg = read_dataclass(TrainConfig, f.sub("train_config"))
        log = RunLog.from_fields(f, steps=train_cfg.steps, train_config=train_cfg, complete=True)
        params = _params_from_fields(f.sub("final_params"))
        try:
            check_params(params, layer_cfg)
        except (ValueError, TypeError) as exc:
            raise f.error("final_params", f"disagrees with layer_config: {exc}") from exc
        arch = read_dataclass(Architecture, f.sub("architecture"))
        _check_architecture(f, arch, params, log.events)
        Q_cap = f.array("Q_cap", 2) if f.list("Q_cap") else arr(np.zeros((layer_cfg.d, 0)))
        if "Q_cap_shape" in f.data and tuple(f.read("Q_cap_shape", tuple[int, ...])) != Q_cap.shape:
            raise f.error(
                "Q_cap_shape", f"{f.data['Q_cap_shape']} disagrees with the stored Q_cap's shape {Q_cap.shape}"
            )
        if Q_cap.shape != (layer_cfg.d, arch.captured_rank):
            raise f.error(
                "Q_cap", f"expected shape (d, captured_rank) = ({layer_cfg.d}, {arch.captured_rank}), got {Q_cap.shape}"
            )
        norms = f.read("calibration_norms", tuple[float, ...])
        growth_cfg = read_dataclass(GrowthConfig, f.sub("growth_config"))
        check_calibration(f, train_cfg, growth_cfg, norms)
        wall = f.read("wall_time_s", float)
        if not (math.isfinite(wall) and wall >= 0.0):
            raise f.error("wall_time_s", f"must be finite and >= 0, got {wall!r}")
        record = cls(
            dataset=f.read("dataset", str),
            dataset_meta=dict(f.sub("dataset_meta").data),
            layer_config=layer_cfg,
            train_config=train_cfg,
            growth_config=growth_cfg,
            calibration_norms=norms,
            losses=log.losses,
            evaluations=log.evaluations,
            events=log.events,
            invariants=log.invariants,
            checks=log.checks,
            architecture=arch,
            final_params=params,
            Q_cap=Q_cap,
            wall_time_s=wall,
            meta=dict(f.sub("meta").data) if "meta" in f.data else {},
        )
        if "summary" in f.data and version == RECORD_VERSION:  # derived (v1's had another layout): a
            # summary that disagrees with the invariants was edited
            stored = json.dumps(f.sub("summary").data, sort_keys=True)
            if stored != json.dumps({k: asdict(v) for k, v in record.summary().items()}, sort_keys=True):
                raise f.error("summary", "disagrees with the recorded invariants")
        return record

    @classmethod
    def from_json(cls, text: str, *, source: str = "record") -> RunRecord:
        """The record in the JSON ``text`` (see :meth:`from_dict`); text that is not JSON, or exceeds
        Python's limits (nesting depth, digits of an integer), is a :class:`RecordFormatError` naming
        ``source``."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected the record's JSON as str, got {type(text).__name__}")
        try:
            data = json.loads(text, object_pairs_hook=unique_keys)
        except json.JSONDecodeError as exc:
            raise RecordFormatError(f"{source}: not valid JSON (truncated or corrupted?): {exc}") from exc
        except DuplicateKeyError as exc:
            raise RecordFormatError(f"{source}: {exc} (an edited record?)") from exc
        except (ValueError, RecursionError, MemoryError) as exc:
            raise RecordFormatError(f"{source}: JSON beyond Python's limits ({type(exc).__name__}: {exc})") from exc
        return cls.from_dict(data, source=source)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RunRecord:
        """The record saved at ``path`` (see :meth:`from_dict` for what is checked). A path that is not a
        readable regular file (missing, a folder, a FIFO — never waited on) or is not UTF-8 JSON is a
        :class:`RecordFormatError` naming it, the original error chained."""
        p = check_path("path", path)
        with format_errors(f"{p}: not a readable run record"):
            text = read_regular_file(p).decode("utf-8")
        return cls.from_json(text, source=str(p))


_RECORD_KEYS = (
    "dataset",
    "dataset_meta",
    "layer_config",
    "train_config",
    "growth_config",
    "calibration_norms",
    "losses",
    "evaluations",
    "events",
    "invariants",
    "checks",
    "architecture",
    "final_params",
    "Q_cap",
    "wall_time_s",
)


def _check_architecture(f: Fields, arch: Architecture, params: ModelParams, events: Sequence[GrowthEvent]) -> None:
    """The architecture must describe the stored weights and count the logged events."""
    heads, protos = tuple(sorted(params.heads)), tuple(params.prototype_ids)
    for name, value, actual in (
        ("head_ids", arch.head_ids, heads),
        ("n_heads", arch.n_heads, len(heads)),
        ("prototype_ids", arch.prototype_ids, protos),
        ("n_prototypes", arch.n_prototypes, len(protos)),
    ):
        if value != actual:
            raise f.error(f"architecture.{name}", f"{value!r} disagrees with the stored weights ({actual!r})")
    births = sum(1 for e in events if e.kind is EventKind.BIRTH)
    for name, counted in (
        ("births", births),
        ("head_prunes", sum(1 for e in events if e.kind is EventKind.HEAD_PRUNE)),
        ("prototype_prunes", sum(1 for e in events if e.kind is EventKind.PROTOTYPE_PRUNE)),
        ("captured_rank", births),  # each birth captures one direction
    ):
        if getattr(arch, name) != counted:
            raise f.error(
                f"architecture.{name}", f"{getattr(arch, name)!r} disagrees with the logged events ({counted})"
            )


def _jsonable(value: Any) -> Any:
    """Tuples → lists, NumPy scalars/arrays → Python values (for metadata dictionaries)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _event_to_dict(e: GrowthEvent) -> dict[str, Any]:
    return {
        "step": e.step,
        "kind": e.kind.value,
        "statistic": e.statistic,
        "threshold": e.threshold,
        "margin": e.margin,
        "decision": e.decision,
        "head_id": e.head_id,
        "prototype_id": e.prototype_id,
        "u_plus": None if e.u_plus is None else e.u_plus.tolist(),
        "lam_birth": e.lam_birth,
        "lam_max": e.lam_max,
    }


def _event_from_fields(f: Fields) -> GrowthEvent:
    def kind(f: Fields, key: str) -> EventKind:
        value = f.read(key, str)
        try:
            return EventKind(value)
        except ValueError:
            raise f.error(key, f"expected one of {[k.value for k in EventKind]}, got {value!r}") from None

    def u_plus(f: Fields, key: str) -> F64Array | None:
        return None if f.get(key) is None else f.array(key, 1)

    event = read_dataclass(GrowthEvent, f, {"kind": kind, "u_plus": u_plus})
    _check_event(f, event)
    return event


# What each kind of event carries, as the controller writes it (reference.incrt.controller,
# reference.incrt.author_code): the id fields it names, and the fields only a birth or a head prune fills.
# ``lam_max`` of a head prune is absent in the author's rule (no hysteresis), so it is allowed, not required.
_EVENT_IDS: dict[EventKind, tuple[tuple[str, ...], tuple[str, ...]]] = {  # (required, forbidden)
    EventKind.BIRTH: (("head_id",), ("prototype_id",)),
    EventKind.HEAD_PRUNE: (("head_id",), ("prototype_id",)),
    EventKind.PROTOTYPE_PRUNE: (("prototype_id",), ("head_id",)),
    EventKind.NEAR_TIE: ((), ()),
}
_EVENT_DECISION = {
    EventKind.BIRTH: "grow",
    EventKind.HEAD_PRUNE: "head_prune",
    EventKind.PROTOTYPE_PRUNE: "prototype_prune",
}


def _check_event(f: Fields, e: GrowthEvent) -> None:
    """An event as the controller writes it: finite numbers (each decision compared finite values,
    :func:`reference._arrays.check_real`), non-negative ids, and the fields its kind carries."""
    for name in ("statistic", "threshold", "margin", "lam_birth", "lam_max"):
        value = getattr(e, name)
        if value is not None and not math.isfinite(value):
            raise f.error(name, f"must be finite, got {value!r}")
    for name in ("head_id", "prototype_id"):
        value = getattr(e, name)
        if value is not None and value < 0:
            raise f.error(name, f"an id is >= 0, got {value}")
    required, forbidden = _EVENT_IDS[e.kind]
    for name in required:
        if getattr(e, name) is None:
            raise f.error(name, f"a {e.kind.value} event names its {name.removesuffix('_id')}, got null")
    for name in forbidden:
        if getattr(e, name) is not None:
            raise f.error(name, f"a {e.kind.value} event has no {name}, got {getattr(e, name)!r}")
    if e.kind is EventKind.BIRTH:
        for name in ("u_plus", "lam_birth"):
            if getattr(e, name) is None:
                raise f.error(name, "a birth carries the captured direction u_plus and its lam_birth, got null")
        if e.lam_max is not None:
            raise f.error("lam_max", f"a birth has no lam_max (that is a head prune's), got {e.lam_max!r}")
    else:
        for name in ("u_plus", "lam_birth"):
            if getattr(e, name) is not None:
                raise f.error(name, f"only a birth carries {name}, this is a {e.kind.value} event")
        if e.kind is not EventKind.HEAD_PRUNE and e.lam_max is not None:
            raise f.error("lam_max", f"only a head prune carries lam_max, this is a {e.kind.value} event")
    if e.kind in _EVENT_DECISION and e.decision != _EVENT_DECISION[e.kind]:
        raise f.error(
            "decision", f"a {e.kind.value} event is decided by {_EVENT_DECISION[e.kind]!r}, got {e.decision!r}"
        )


def _invariant_to_dict(r: InvariantRecord) -> dict[str, Any]:
    result = asdict(r.result)
    if math.isinf(r.result.vacuous_at):  # the default: most checks can fail at any bound
        del result["vacuous_at"]
    place = {"step": r.step, "event": r.event, "head_id": r.head_id, "prototype_id": r.prototype_id}
    if r.failed_hypotheses is not None:  # absent: not evaluated (an older record); [] every one held
        place["failed_hypotheses"] = list(r.failed_hypotheses)
    return {**place, **result}


_INVARIANT_PLACE = ("step", "event", "head_id", "prototype_id", "failed_hypotheses")


def _invariant_from_fields(f: Fields) -> InvariantRecord:
    """An invariant record is stored flat: where it was checked and which hypotheses failed there, then
    the :class:`InvariantResult`."""
    result_keys = [x.name for x in fields(InvariantResult)]
    f.expect_keys(
        ["step", "event", "claim_id", "check", "value", "bound"],
        ["head_id", "prototype_id", "details", "vacuous_at", "failed_hypotheses"],
    )
    result = read_dataclass(InvariantResult, Fields({k: f.data[k] for k in result_keys if k in f.data}, f.path))
    place = {k: f.data[k] for k in _INVARIANT_PLACE if k in f.data}
    return read_dataclass(InvariantRecord, Fields({**place, "result": None}, f.path), {"result": lambda _f, _k: result})


_CHECK_MAPS = ("head_strength", "tau", "mass", "attention_entropy")


def _check_from_fields(f: Fields) -> CheckRecord:
    """A growth check's statistics as the growth check writes them
    (:func:`reference.growth_phases.check_record`); what it never writes is refused, naming the field:

    * ``lam_max``, ``lam_min``, ``fro``, ``spectrum``: of an ``A_res`` both engines refuse unless finite
      (the reference's ``eigh`` oracle checks its input; the grow phase's
      :func:`reference.incrt.operators.check_theta_resolvable` checks the device's), so finite; ``fro``
      a norm, ``>= 0``; ``theta`` and ``phi_g`` the run's thresholds, finite, ``θ > 0`` and ``φ_g >= 0`` (as
      :class:`reference.incrt.controller.GrowthConfig` requires);
    * ``head_strength`` ``G_h = ‖C M_a^h‖_F``: a norm, finite and ``>= 0``, one per head; ``tau`` ``exp(s)``
      with ``|s|`` bounded, finite and ``> 0``, one per head;
    * ``mass``: one per prototype, the masses :func:`reference.incrt.controller.prototype_prune_check`
      accepted, so finite and in ``[0, 1]`` within the same slack (the STOCHASTIC tolerance per unit
      of ``K``);
    * the counts ``>= 0``, ``n_prototypes >= 1`` (a layer has at least one prototype).

    Statistics that may legitimately be non-finite or round below zero (the trackers' gaps, the
    collapse margin, the coupling statistics, the entropies) are read as declared, unchecked."""
    c = read_dataclass(CheckRecord, f)
    for name in ("lam_max", "lam_min", "fro", "theta", "phi_g"):
        value = getattr(c, name)
        if not math.isfinite(value):
            raise f.error(name, f"must be finite, got {value!r}")
    if c.fro < 0.0:
        raise f.error("fro", f"a Frobenius norm is >= 0, got {c.fro!r}")
    if not c.theta > 0.0:
        raise f.error("theta", f"the growth threshold is > 0, got {c.theta!r}")
    if c.phi_g < 0.0:  # φ_g = 0 is a valid setting (GrowthConfig: φ_g >= 0): no head is ever pruned
        raise f.error("phi_g", f"the prune threshold is >= 0, got {c.phi_g!r}")
    for i, v in enumerate(c.spectrum):
        if not math.isfinite(v):
            raise f.error(f"spectrum[{i}]", f"an eigenvalue of A_res is finite, got {v!r}")
    for name in ("rank", "n_heads", "births", "head_prunes", "prototype_prunes"):
        if getattr(c, name) < 0:
            raise f.error(name, f"a count is >= 0, got {getattr(c, name)}")
    if c.n_prototypes < 1:
        raise f.error("n_prototypes", f"a layer has at least one prototype, got {c.n_prototypes}")
    for name, count, what in (
        ("head_strength", c.n_heads, "n_heads"),
        ("tau", c.n_heads, "n_heads"),
        ("mass", c.n_prototypes, "n_prototypes"),
    ):
        values = getattr(c, name)
        if len(values) != count:
            raise f.error(name, f"expected one value per id ({what} = {count}), got {len(values)}")
        for k, v in values.items():
            if k < 0:
                raise f.error(name, f"an id is >= 0, got {k}")
            if not math.isfinite(v):
                raise f.error(f"{name} (id {k})", f"must be finite, got {v!r}")
    for k, g in c.head_strength.items():
        if g < 0.0:
            raise f.error(f"head_strength (id {k})", f"G_h is a Frobenius norm, >= 0, got {g!r}")
    for k, t in c.tau.items():
        if not t > 0.0:
            raise f.error(f"tau (id {k})", f"a temperature exp(s) is > 0, got {t!r}")
    if c.tau.keys() != c.head_strength.keys():
        raise f.error("tau", f"ids {sorted(c.tau)} disagree with head_strength's {sorted(c.head_strength)}")
    slack = mass_slack(c.n_prototypes)
    for k, m in c.mass.items():
        if not -slack <= m <= 1.0 + slack:
            raise f.error(f"mass (id {k})", f"a mass n_j/n lies in [0, 1] (within {slack:.1e}), got {m!r}")
    return c


def _check_to_dict(c: CheckRecord) -> dict[str, Any]:
    out = asdict(c)
    for name in _CHECK_MAPS:  # JSON keys are strings: store the id→value maps as [id, value] pairs
        out[name] = [[int(k), float(v)] for k, v in getattr(c, name).items()]
    return out


def _params_to_dict(p: ModelParams) -> dict[str, Any]:
    return {
        "arrays": {name: a.tolist() for name, a in flatten(p).items()},
        "next_head_id": p.next_head_id,
        "prototype_ids": list(p.prototype_ids),
    }


def _params_from_fields(f: Fields) -> ModelParams:
    f.expect_keys(["arrays", "next_head_id", "prototype_ids"])
    a = f.sub("arrays")
    arrays = {name: a.array(name, _depth(value)) for name, value in a.data.items()}
    next_head_id, ids = f.read("next_head_id", int), f.read("prototype_ids", tuple[int, ...])
    try:
        return params_from_arrays(arrays, next_head_id=next_head_id, prototype_ids=ids)
    except (ValueError, TypeError) as exc:
        raise RecordFormatError(f"{f.where}: {exc}") from exc


def _depth(value: Any) -> int:
    """Nesting depth of a JSON array (0 for a number): the stored parameter's number of dimensions."""
    depth = 0
    while isinstance(value, list):
        depth += 1
        value = value[0] if value else None
    return depth


__all__ = [
    "READABLE_VERSIONS",
    "RECORD_FORMAT",
    "RECORD_VERSION",
    "Architecture",
    "ClaimSummary",
    "RecordFormatError",
    "RunLog",
    "RunRecord",
    "check_calibration",
]
