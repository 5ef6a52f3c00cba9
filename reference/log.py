"""The plain log of a training run: the names of the events an invariant is recorded at, the invariant
and growth-check records, the per-step loss trace (its fields are the loss names) and the evaluations.

Pure data, no files: :mod:`training.record` writes and reads them, the growth check and the studies'
statistics build and read them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from reference._arrays import check_count
from reference.invariants.result import InvariantResult

# Names of the events an invariant result is recorded at.
EVENT_TRAIN_STEP = "train_step"
EVENT_CHECK = "check"
EVENT_BIRTH = "birth"
EVENT_HEAD_PRUNE = "head_prune"
EVENT_PROTOTYPE_PRUNE = "prototype_prune"
EVENTS = (EVENT_TRAIN_STEP, EVENT_CHECK, EVENT_BIRTH, EVENT_HEAD_PRUNE, EVENT_PROTOTYPE_PRUNE)


@dataclass(frozen=True)
class InvariantRecord:
    """One invariant result, with the step and the event it was checked at.

    ``failed_hypotheses``: the hypotheses of the result's claim that failed on the live inputs of this
    check, evaluated with the registry's own predicates (:func:`reference.claims.live.watched`); empty
    when every one held, so the conclusion was promised; None when they were not evaluated (a record
    written before hypotheses were watched). A failed check is a violation of the claim only when
    :attr:`promised` is not False: where a hypothesis failed, the claim promised nothing.
    """

    step: int
    event: str
    result: InvariantResult
    head_id: int | None = None
    prototype_id: int | None = None
    failed_hypotheses: tuple[str, ...] | None = None

    @property
    def promised(self) -> bool | None:
        """True: every hypothesis held here; False: at least one failed; None: not evaluated."""
        return None if self.failed_hypotheses is None else not self.failed_hypotheses

    @property
    def violation(self) -> bool:
        """The check failed and the claim had promised it would hold (or its hypotheses were not
        evaluated, which cannot excuse a failure)."""
        return not self.result.holds and self.promised is not False


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

    def __post_init__(self) -> None:
        check_count("Evaluation.step", self.step, 0)
        for name in ("train_accuracy", "test_accuracy"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"Evaluation.{name}: an accuracy lies in [0, 1], got {getattr(self, name)!r}")
        for name in ("train_L_task", "test_L_task"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"Evaluation.{name}: a cross-entropy is >= 0, got {getattr(self, name)!r}")


@runtime_checkable
class RunTrace(Protocol):
    """What a run's statistics read: its growth checks and its per-step losses (a record, or a log)."""

    @property
    def checks(self) -> Sequence[CheckRecord]: ...

    @property
    def losses(self) -> LossTrace: ...


__all__ = [
    "EVENTS",
    "EVENT_BIRTH",
    "EVENT_CHECK",
    "EVENT_HEAD_PRUNE",
    "EVENT_PROTOTYPE_PRUNE",
    "EVENT_TRAIN_STEP",
    "LOSS_FIELDS",
    "CheckRecord",
    "Evaluation",
    "InvariantRecord",
    "LossTrace",
    "RunTrace",
]
