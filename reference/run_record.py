"""The record of a training run (:class:`RunRecord`) and its exact JSON round trip.

One schema for every engine: the reference trainer writes it, the accelerated trainer will, and the
audit and the conformance kit read it. Parameters are stored flat (:func:`reference.surgery.flatten`)
and loaded through :func:`reference.surgery.params_from_arrays`, the same constructor path as
:func:`reference.surgery.unflatten`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import Float64

from reference._arrays import arr
from reference.incrt.controller import EventKind, GrowthConfig, GrowthEvent
from reference.invariants.result import InvariantResult
from reference.model import LayerConfig, ModelParams
from reference.optim import LearningRates
from reference.surgery import flatten, params_from_arrays
from reference.train_config import TrainConfig

# Names of the events an invariant result is recorded at.
EVENT_TRAIN_STEP = "train_step"
EVENT_CHECK = "check"
EVENT_BIRTH = "birth"
EVENT_HEAD_PRUNE = "head_prune"
EVENT_PROTOTYPE_PRUNE = "prototype_prune"


@dataclass(frozen=True)
class InvariantRecord:
    """One invariant result, with the step and the event it was checked at."""

    step: int
    event: str
    result: InvariantResult
    head_id: int | None = None
    prototype_id: int | None = None


@dataclass(frozen=True)
class CheckRecord:
    """The growth statistics at one check, taken on the probe *before* that check's decisions.

    ``lam_max``/``lam_min`` of ``A_res`` (exact, ``eigh``), ``fro`` its Frobenius norm, ``spectrum`` all its
    eigenvalues in non-increasing order (``#{λ_i > θ}`` is the static count ``m*`` of claim G3); ``head_strength``
    ``G_h = ‖C M_a^h‖_F`` and ``tau`` ``τ_h`` per head id; ``mass`` ``n_j/n`` per prototype id (taken
    after the head decisions, as the prototype decision uses it); the trackers' ``(|λ̂ − λ|, |cos∠|)``
    gaps to the oracle (G6, measured); ``capped``: growth was skipped because ``|𝓗| = max_heads``;
    ``collapse_T_c`` D4's critical temperature ``T_c = 2λ_max(Cov Y)`` on the probe's DDCL-input tokens and
    ``collapse_margin = T_c − T_P`` (> 0: the collapsed configuration is unstable for ``F``, prototypes
    must split; ``2T_c − T_P`` is the margin for ``L_q``).
    """

    step: int
    lam_max: float
    lam_min: float
    fro: float
    spectrum: tuple[float, ...]
    theta: float
    phi_g: float
    rank: int
    n_heads: int
    n_prototypes: int
    head_strength: Mapping[int, float]
    tau: Mapping[int, float]
    mass: Mapping[int, float]
    oja_lam_gap: float
    oja_cos: float
    exin_lam_gap: float
    exin_cos: float
    capped: bool
    births: int
    head_prunes: int
    prototype_prunes: int
    collapse_T_c: float
    collapse_margin: float
    # The coupling statistics (reference.coupling_statistics), on the probe at the check's start:
    # prototype separation S and S_min (None with one prototype), ‖∇_P V‖_F, per-head attention entropy.
    separation: float | None = None
    min_separation: float | None = None
    grad_V_norm: float | None = None
    attention_entropy: Mapping[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LossTrace:
    """Per training step (on that step's minibatch, before its update): the loss and its decomposition."""

    L: tuple[float, ...]
    L_task: tuple[float, ...]
    L_q: tuple[float, ...]
    L_OLS: tuple[float, ...]
    V: tuple[float, ...]
    F: tuple[float, ...]
    H_bar: tuple[float, ...]


LOSS_FIELDS: tuple[str, ...] = ("L", "L_task", "L_q", "L_OLS", "V", "F", "H_bar")


@dataclass(frozen=True)
class Evaluation:
    """Accuracy and ``L_task`` on the whole train and test sets after ``step`` steps."""

    step: int
    train_accuracy: float
    test_accuracy: float
    train_L_task: float
    test_L_task: float


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
    """Per claim: how many checks, how many failed, the smallest margin and the check that had it, and
    how many checks certified nothing (infinite bound; they hold vacuously and are not evidence)."""

    count: int
    violations: int
    min_margin: float
    min_margin_check: str
    uncertified: int = 0


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
        return tuple(r for r in self.invariants if not r.result.holds)

    def summary(self) -> dict[str, ClaimSummary]:
        """Per claim id: number of checks, violations, and the smallest margin (with its check)."""
        out: dict[str, ClaimSummary] = {}
        for rec in self.invariants:
            r = rec.result
            prev = out.get(r.claim_id)
            if prev is None:
                out[r.claim_id] = ClaimSummary(1, int(not r.holds), r.margin, r.check, int(not r.certified))
                continue
            lower = r.margin < prev.min_margin
            out[r.claim_id] = ClaimSummary(
                prev.count + 1,
                prev.violations + int(not r.holds),
                r.margin if lower else prev.min_margin,
                r.check if lower else prev.min_margin_check,
                prev.uncertified + int(not r.certified),
            )
        return dict(sorted(out.items()))

    def lam_max_trajectory(self) -> tuple[tuple[int, float, float], ...]:
        """``(step, λ_max(A_res), θ)`` at every check."""
        return tuple((c.step, c.lam_max, c.theta) for c in self.checks)

    # -- serialisation ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "dataset_meta": _jsonable(dict(self.dataset_meta)),
            "layer_config": asdict(self.layer_config),
            "train_config": asdict(self.train_config),
            "growth_config": asdict(self.growth_config),
            "calibration_norms": list(self.calibration_norms),
            "losses": {name: list(getattr(self.losses, name)) for name in LOSS_FIELDS},
            "evaluations": [asdict(e) for e in self.evaluations],
            "events": [_event_to_dict(e) for e in self.events],
            "invariants": [_invariant_to_dict(r) for r in self.invariants],
            "checks": [_check_to_dict(c) for c in self.checks],
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
        """Write :meth:`to_json` to ``path`` atomically (parent folders are created); returns the path.

        The text goes to a temporary file in the same folder, is flushed to disk, and then replaces
        ``path`` in one ``os.replace``: a failed write leaves any previous record untouched.
        """
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(self.to_json())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        tc = dict(data["train_config"])
        tc["lr"] = LearningRates(**tc["lr"])
        shape = tuple(data["Q_cap_shape"])
        return cls(
            dataset=data["dataset"],
            dataset_meta=dict(data["dataset_meta"]),
            layer_config=LayerConfig(**data["layer_config"]),
            train_config=TrainConfig(**tc),
            growth_config=GrowthConfig(**data["growth_config"]),
            calibration_norms=tuple(float(v) for v in data["calibration_norms"]),
            losses=LossTrace(**{k: tuple(float(v) for v in data["losses"][k]) for k in LOSS_FIELDS}),
            evaluations=tuple(Evaluation(**e) for e in data["evaluations"]),
            events=tuple(_event_from_dict(e) for e in data["events"]),
            invariants=tuple(_invariant_from_dict(r) for r in data["invariants"]),
            checks=tuple(_check_from_dict(c) for c in data["checks"]),
            architecture=_architecture_from_dict(data["architecture"]),
            final_params=_params_from_dict(data["final_params"]),
            Q_cap=arr(np.array(data["Q_cap"], dtype=np.float64).reshape(shape)),
            wall_time_s=float(data["wall_time_s"]),
            meta=dict(data["meta"]),
        )

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        return cls.from_dict(json.loads(text))

    @classmethod
    def load(cls, path: str | Path) -> RunRecord:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def _architecture_from_dict(d: Mapping[str, Any]) -> Architecture:
    return Architecture(
        head_ids=tuple(int(h) for h in d["head_ids"]),
        n_heads=int(d["n_heads"]),
        prototype_ids=tuple(int(p) for p in d["prototype_ids"]),
        n_prototypes=int(d["n_prototypes"]),
        births=int(d["births"]),
        head_prunes=int(d["head_prunes"]),
        prototype_prunes=int(d["prototype_prunes"]),
        captured_rank=int(d["captured_rank"]),
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


def _event_from_dict(d: Mapping[str, Any]) -> GrowthEvent:
    u = d["u_plus"]
    return GrowthEvent(
        step=int(d["step"]),
        kind=EventKind(d["kind"]),
        statistic=float(d["statistic"]),
        threshold=float(d["threshold"]),
        margin=float(d["margin"]),
        decision=str(d["decision"]),
        head_id=d["head_id"],
        prototype_id=d["prototype_id"],
        u_plus=None if u is None else arr(np.array(u, dtype=np.float64)),
        lam_birth=d["lam_birth"],
        lam_max=d["lam_max"],
    )


def _invariant_to_dict(r: InvariantRecord) -> dict[str, Any]:
    return {"step": r.step, "event": r.event, "head_id": r.head_id, "prototype_id": r.prototype_id, **asdict(r.result)}


def _invariant_from_dict(d: Mapping[str, Any]) -> InvariantRecord:
    result = InvariantResult(d["claim_id"], d["check"], float(d["value"]), float(d["bound"]), d["details"])
    return InvariantRecord(int(d["step"]), str(d["event"]), result, d["head_id"], d["prototype_id"])


_CHECK_MAPS = ("head_strength", "tau", "mass", "attention_entropy")


def _check_to_dict(c: CheckRecord) -> dict[str, Any]:
    out = asdict(c)
    for name in _CHECK_MAPS:  # JSON keys are strings: store the id→value maps as [id, value] pairs
        out[name] = [[int(k), float(v)] for k, v in getattr(c, name).items()]
    return out


def _check_from_dict(d: Mapping[str, Any]) -> CheckRecord:
    kw = dict(d)
    kw["spectrum"] = tuple(float(v) for v in d["spectrum"])
    for name in _CHECK_MAPS:
        if name in d:  # attention_entropy is absent from records written before it was recorded
            kw[name] = {int(k): float(v) for k, v in d[name]}
    return CheckRecord(**kw)


def _params_to_dict(p: ModelParams) -> dict[str, Any]:
    return {
        "arrays": {name: a.tolist() for name, a in flatten(p).items()},
        "next_head_id": p.next_head_id,
        "prototype_ids": list(p.prototype_ids),
    }


def _params_from_dict(d: Mapping[str, Any]) -> ModelParams:
    arrays = {name: arr(np.array(v, dtype=np.float64)) for name, v in d["arrays"].items()}
    ids = tuple(int(i) for i in d["prototype_ids"])
    return params_from_arrays(arrays, next_head_id=int(d["next_head_id"]), prototype_ids=ids)


__all__ = [
    "EVENT_BIRTH",
    "EVENT_CHECK",
    "EVENT_HEAD_PRUNE",
    "EVENT_PROTOTYPE_PRUNE",
    "EVENT_TRAIN_STEP",
    "LOSS_FIELDS",
    "Architecture",
    "CheckRecord",
    "ClaimSummary",
    "Evaluation",
    "InvariantRecord",
    "LossTrace",
    "RunRecord",
]
