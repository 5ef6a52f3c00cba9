"""The reference trainer: the layer (``reference.model``), an optimiser (``reference.optim``) and the
INCRT growth rule (``reference.incrt``) glued together, with every applicable invariant recorded.

One run, in the order the code executes it (SPEC §3):

1. **Initialise** the layer with one head and ``K_max`` prototypes; draw a FIXED probe batch from the
   training set; calibrate ``θ = c_θ · median ‖A_res‖_F`` over ``calibration_probes`` other random
   probes at initialisation and ``φ_g = 0.01 θ`` (SPEC §3.4), unless thresholds are given.
2. **Train**: each step is minibatch SGD/Adam on ``L = L_task + λ_q L_q``
   (:func:`reference.model.loss_and_gradients`). D1 (``L_q = L_OLS + V``, ``V ≥ 0``) is checked on every
   minibatch.
3. **Check** every ``g`` steps, on the fixed probe: form ``C = X̄ᵀX̄/n`` from the layer input,
   ``M_a^h = (M_h − M_hᵀ)/2`` per active head, ``A_res = Π⊥ ½[C, M_a] Π⊥``; run the Oja / MCA-EXIN
   trackers on ``A_res`` and record their gap to the exact oracle (G6); then grow (G1 at each birth),
   prune heads (G5 at each prune) and prune prototypes (D5 at each prune).

Births initialise the new head from ``numpy.random.default_rng([seed, head_id])``: a head's initial
weights depend only on the run's seed and its id, not on when it was born. The optimiser's state of
existing parameters is never touched by a birth (Adam creates the new head's moments at its first
step); a head prune drops that head's state; a prototype prune removes the column of ``P``'s state
(:func:`reference.optim.remove_state_column`).

The building blocks (:func:`init_state`, :func:`train_step`, :func:`grow_phase`, :func:`prune_phase`,
:func:`prototype_prune_phase`, :func:`track_phase`, :func:`growth_check`) are pure functions of frozen
values; :func:`train` composes them and returns a frozen :class:`RunRecord` (losses, accuracies, the
event log, every invariant result with its step and event, ``λ_max(A_res)`` per check, the final
architecture and parameters), which serialises to JSON without loss.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

import numpy as np
from jaxtyping import Float64, Int64

from reference._arrays import F64Array, arr, check_array, check_count, check_real, f64
from reference.data import SequenceDataset
from reference.incrt import (
    EventKind,
    GrowthConfig,
    GrowthEvent,
    GrowthState,
    antisymmetric_part,
    calibrate_thresholds,
    certified_step,
    complement_projector,
    directional_operator,
    eigenvalues_desc,
    exact_extremes,
    frobenius,
    grow_check,
    head_output_bound,
    head_strength,
    initial_state,
    is_near_tie,
    mca_exin_track,
    numerical_rank,
    oja_track,
    prototype_prune_check,
    prune_check,
    residual_operator,
    second_moment,
    tracker_gap,
)
from reference.invariants.ddcl import REFERENCE_OPS, collapse_status, d1_decomposition, d5_prototype_pruning
from reference.invariants.incrt import PruneOutput, check_g1, check_g5, check_g6
from reference.invariants.result import InvariantResult
from reference.model import (
    HEAD_PARAM_NAMES,
    HeadParams,
    LayerConfig,
    ModelParams,
    add_head,
    check_params,
    flatten,
    forward,
    head_param_name,
    init_params,
    layer_input,
    loss_and_gradients,
    prototype_column,
    remove_head,
    remove_prototype_column,
    score_operator,
    unflatten,
)
from reference.optim import SGD, Adam, AdamMoments, AdamState, LearningRates, SGDState, remove_state_column
from reference.tolerances import accumulation_bound

OptimizerKind: TypeAlias = Literal["sgd", "adam"]
OptState: TypeAlias = SGDState | AdamState

# Names of the events an invariant result is recorded at.
EVENT_TRAIN_STEP = "train_step"
EVENT_CHECK = "check"
EVENT_BIRTH = "birth"
EVENT_HEAD_PRUNE = "head_prune"
EVENT_PROTOTYPE_PRUNE = "prototype_prune"

# ==================================================================================================
# Configuration
# ==================================================================================================


# Prototypes faster than the encoder (claim R3's two time scales); temperatures on the encoder's scale.
DEFAULT_LR = LearningRates(rest=3e-3, prototypes=1e-2, temperatures=3e-3)


@dataclass(frozen=True)
class TrainConfig:
    """Everything about a run that is not the layer (:class:`reference.model.LayerConfig`).

    * ``steps`` optimiser steps on minibatches of ``batch_size`` sequences (drawn without replacement
      within a step); ``optimizer`` ``"sgd"`` or ``"adam"`` with per-group rates ``lr`` (prototypes,
      temperatures, rest: :mod:`reference.optim`).
    * growth check every ``check_every`` steps (SPEC's ``g``) on a fixed probe of ``probe_size``
      sequences; thresholds ``θ = c_θ · median ‖A_res‖_F`` over ``calibration_probes`` random probes at
      initialisation and ``φ_g = 0.01 θ`` (SPEC §3.4), unless ``theta`` / ``phi_g`` are given;
      dwell ``T_d`` (steps), patience ``T_prune`` (checks), prototype mass floor ``ε_K``.
    * ``seed`` seeds the births (head ``h`` starts from ``default_rng([seed, h])``); ``max_heads`` caps
      ``|𝓗|`` (``None``: only G1's cap, ``1 + d``); ``tracker_steps`` Oja / MCA-EXIN iterations per check
      (G6); ``check_invariants`` switches the invariant checks; ``eval_every`` evaluates train/test
      accuracy every that many steps (``0``: only at the end).
    """

    steps: int
    batch_size: int = 32
    optimizer: OptimizerKind = "adam"
    lr: LearningRates = DEFAULT_LR
    check_every: int = 50
    probe_size: int = 128
    calibration_probes: int = 5
    c_theta: float = 0.1
    theta: float | None = None
    phi_g: float | None = None
    T_d: int = 200
    T_prune: int = 5
    eps_K: float = 0.01
    seed: int = 0
    max_heads: int | None = None
    tracker_steps: int = 20
    check_invariants: bool = True
    eval_every: int = 0

    def __post_init__(self) -> None:
        p = "TrainConfig."
        check_count(p + "steps", self.steps, 1)
        check_count(p + "batch_size", self.batch_size, 1)
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"{p}optimizer: expected 'sgd' or 'adam', got {self.optimizer!r}")
        if not isinstance(self.lr, LearningRates):
            raise TypeError(f"{p}lr: expected reference.optim.LearningRates, got {type(self.lr).__name__}")
        check_count(p + "check_every", self.check_every, 1)
        check_count(p + "probe_size", self.probe_size, 1)
        check_count(p + "calibration_probes", self.calibration_probes, 1)
        if not check_real(p + "c_theta", self.c_theta) > 0.0:
            raise ValueError(f"{p}c_theta: must be > 0, got {self.c_theta!r}")
        if self.theta is not None and not check_real(p + "theta", self.theta) > 0.0:
            raise ValueError(f"{p}theta: must be > 0 (claim G1 needs θ > 0), got {self.theta!r}")
        if self.phi_g is not None and not check_real(p + "phi_g", self.phi_g) >= 0.0:
            raise ValueError(f"{p}phi_g: must be >= 0, got {self.phi_g!r}")
        check_count(p + "T_d", self.T_d, 0)
        check_count(p + "T_prune", self.T_prune, 1)
        eps = check_real(p + "eps_K", self.eps_K)
        if not 0.0 <= eps < 1.0:
            raise ValueError(f"{p}eps_K: must lie in [0, 1), got {self.eps_K!r}")
        check_count(p + "seed", self.seed, 0)
        if self.max_heads is not None:
            check_count(p + "max_heads", self.max_heads, 1)
        check_count(p + "tracker_steps", self.tracker_steps, 1)
        if not isinstance(self.check_invariants, bool):
            raise TypeError(f"{p}check_invariants: expected a bool, got {type(self.check_invariants).__name__}")
        check_count(p + "eval_every", self.eval_every, 0)


def make_optimizer(train_cfg: TrainConfig) -> SGD | Adam:
    """The optimiser ``train_cfg.optimizer`` with the per-group rates ``train_cfg.lr``."""
    return SGD(lr=train_cfg.lr) if train_cfg.optimizer == "sgd" else Adam(lr=train_cfg.lr)


@dataclass(frozen=True)
class Context:
    """What stays fixed during a run: the layer, the training config and the growth thresholds."""

    layer_cfg: LayerConfig
    train_cfg: TrainConfig
    growth_cfg: GrowthConfig

    @property
    def optimizer(self) -> SGD | Adam:
        return make_optimizer(self.train_cfg)


# ==================================================================================================
# State, probes and records
# ==================================================================================================


@dataclass(frozen=True, eq=False)
class Probe:
    """A fixed labelled batch on which the growth statistics are taken (SPEC §3: "deterministic")."""

    x: Float64[np.ndarray, "B T d_in"]
    labels: Int64[np.ndarray, " B"]

    def __post_init__(self) -> None:
        check_array("Probe.x", self.x, 3)
        if self.labels.shape != (self.x.shape[0],):
            raise ValueError(f"Probe.labels: expected shape ({self.x.shape[0]},), got {self.labels.shape}")


@dataclass(frozen=True, eq=False)
class TrainerState:
    """Everything that changes during a run.

    ``step`` counts optimiser steps taken; ``ranks`` is the numerical rank of ``Q_cap`` initially and
    after each birth (claim G1's input); ``w_top``/``w_bottom`` are the Oja / MCA-EXIN tracker
    vectors, carried from check to check (unit length).
    """

    params: ModelParams
    opt_state: OptState
    growth: GrowthState
    step: int
    ranks: tuple[int, ...]
    w_top: Float64[np.ndarray, " d"]
    w_bottom: Float64[np.ndarray, " d"]

    def __post_init__(self) -> None:
        check_count("TrainerState.step", self.step, 0)
        if len(self.ranks) == 0:
            raise ValueError("TrainerState.ranks: expected at least the initial rank of Q_cap")
        d = self.params.W_in.shape[1]
        for name in ("w_top", "w_bottom"):
            w = check_array(f"TrainerState.{name}", getattr(self, name), 1)
            if w.shape != (d,):
                raise ValueError(f"TrainerState.{name}: expected shape ({d},) (the model width), got {w.shape}")


@dataclass(frozen=True)
class InvariantRecord:
    """One invariant result, with the step and the event it was checked at."""

    step: int
    event: str
    result: InvariantResult
    head_id: int | None = None
    prototype_id: int | None = None


@dataclass(frozen=True)
class PhaseResult:
    """What one phase of a check did: the new state, its events and the invariants it checked."""

    state: TrainerState
    events: tuple[GrowthEvent, ...]
    invariants: tuple[InvariantRecord, ...]


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


@dataclass(frozen=True)
class ProgressInfo:
    """What the optional progress callback of :func:`train` receives after every step."""

    step: int
    steps: int
    L: float
    L_task: float
    n_heads: int
    n_prototypes: int
    lam_max: float | None
    theta: float


ProgressFn: TypeAlias = Callable[[ProgressInfo], None]


# ==================================================================================================
# Initialisation and calibration
# ==================================================================================================


def _unit(v: F64Array) -> F64Array:
    return arr(v / frobenius(v))


def init_state(layer_cfg: LayerConfig, train_cfg: TrainConfig, *, rng: np.random.Generator) -> TrainerState:
    """One head, ``K_max`` prototypes, fresh optimiser state, nothing captured, random tracker vectors."""
    params = check_params(init_params(layer_cfg, rng=rng), layer_cfg)
    d = layer_cfg.d
    return TrainerState(
        params=params,
        opt_state=make_optimizer(train_cfg).init_state(),
        growth=initial_state(d, layer_cfg.K_max),
        step=0,
        ranks=(0,),
        w_top=_unit(arr(rng.standard_normal(d))),
        w_bottom=_unit(arr(rng.standard_normal(d))),
    )


def birth_rng(seed: int, head_id: int) -> np.random.Generator:
    """The generator a newborn head is initialised from: ``default_rng([seed, head_id])``."""
    return np.random.default_rng([seed, head_id])


def head_operators(params: ModelParams) -> dict[int, F64Array]:
    """``{h: M_a^h}`` with ``M_a^h = (M_h − M_hᵀ)/2``, ``M_h = W_Q^h W_K^hᵀ/(τ_h √d_k)``, by head id."""
    return {hid: antisymmetric_part(score_operator(head)) for hid, head in params.heads.items()}


def probe_second_moment(params: ModelParams, probe: Probe) -> F64Array:
    """``C = X̄ᵀX̄/n`` of the layer input ``X = x W_in + E_pos`` on the probe, flattened to n×d."""
    X = layer_input(params, probe.x)
    return second_moment(arr(X.reshape(-1, X.shape[-1])))


def residual_for(params: ModelParams, C: F64Array, Q_cap: F64Array) -> F64Array:
    """``A_res = Π⊥ ½[C, M_a] Π⊥`` with ``M_a = Σ_{h∈𝓗} M_a^h`` over the heads of ``params`` (id order)."""
    Ms = [score_operator(params.heads[h]) for h in sorted(params.heads)]
    return residual_operator(C, directional_operator(Ms), Q_cap)


def calibrate(
    params: ModelParams, train_cfg: TrainConfig, probes: Sequence[Probe]
) -> tuple[GrowthConfig, tuple[float, ...]]:
    """The run's :class:`GrowthConfig` and the calibration norms ``‖A_res^{(i)}‖_F`` (empty if not calibrated).

    SPEC §3.4: ``θ = c_θ · median_i ‖A_res^{(i)}‖_F`` over the calibration probes at initialisation
    (``Q_cap`` empty), ``φ_g = 0.01 θ``; an explicit ``theta`` / ``phi_g`` in ``train_cfg`` wins.
    """
    norms: tuple[float, ...] = ()
    if train_cfg.theta is None:
        empty = arr(np.zeros((params.W_in.shape[1], 0)))
        ops = [residual_for(params, probe_second_moment(params, p), empty) for p in probes]
        theta, phi_default = calibrate_thresholds(ops, train_cfg.c_theta)
        norms = tuple(frobenius(A) for A in ops)
    else:
        theta, phi_default = train_cfg.theta, 0.01 * train_cfg.theta
    phi_g = phi_default if train_cfg.phi_g is None else train_cfg.phi_g
    cfg = GrowthConfig(theta=theta, phi_g=phi_g, T_d=train_cfg.T_d, T_prune=train_cfg.T_prune, eps_K=train_cfg.eps_K)
    return cfg, norms


# ==================================================================================================
# One training step (D1 on the minibatch)
# ==================================================================================================


def train_step(
    ctx: Context, state: TrainerState, x: Float64[np.ndarray, "B T d_in"], labels: Int64[np.ndarray, " B"]
) -> tuple[TrainerState, dict[str, float], tuple[InvariantRecord, ...]]:
    """One optimiser step on ``L = L_task + λ_q L_q``; returns the new state, the losses at the old
    parameters (the decomposition ``L_OLS, V, F, H̄`` too) and D1 checked on this minibatch."""
    cache, grads = loss_and_gradients(state.params, ctx.layer_cfg, x, labels)
    step = state.step + 1
    records: tuple[InvariantRecord, ...] = ()
    if ctx.train_cfg.check_invariants:
        d1 = d1_decomposition(Y=cache.tokens(), P=state.params.P, Q=cache.Q)
        records = tuple(InvariantRecord(step, EVENT_TRAIN_STEP, r) for r in d1)
    new_flat, opt_state = _optimizer_step(ctx, state.opt_state, flatten(state.params), grads)
    params = unflatten(new_flat, like=state.params)
    losses = {name: float(getattr(cache, name)) for name in LOSS_FIELDS}
    return replace(state, params=params, opt_state=opt_state, step=step), losses, records


def _optimizer_step(
    ctx: Context, opt_state: OptState, params: Mapping[str, F64Array], grads: Mapping[str, F64Array]
) -> tuple[dict[str, F64Array], OptState]:
    opt = ctx.optimizer
    if isinstance(opt, SGD):
        if not isinstance(opt_state, SGDState):
            raise TypeError(f"opt_state: SGD needs SGDState, got {type(opt_state).__name__}")
        return opt.step(opt_state, params, grads)
    if not isinstance(opt_state, AdamState):
        raise TypeError(f"opt_state: Adam needs AdamState, got {type(opt_state).__name__}")
    return opt.step(opt_state, params, grads)


def drop_head_state(opt_state: OptState, head_id: int) -> OptState:
    """The optimiser state without head ``head_id``'s entries (every other entry is the same object)."""
    if isinstance(opt_state, SGDState):
        return opt_state
    gone = {head_param_name(head_id, f) for f in HEAD_PARAM_NAMES}
    kept: dict[str, AdamMoments] = {k: v for k, v in opt_state.moments.items() if k not in gone}
    return AdamState(moments=kept)


# ==================================================================================================
# The phases of a growth check
# ==================================================================================================


def warm_start(w: Float64[np.ndarray, " d"], Q_cap: Float64[np.ndarray, "d m"]) -> Float64[np.ndarray, " d"]:
    """The tracker's start at a check: the previous vector deflated against ``Q_cap``, ``Π⊥w/‖Π⊥w‖``.

    Why: right after a birth the Oja vector *is* (up to rounding) the captured ``u₊``, which is now an
    eigenvector of ``A_res`` for the eigenvalue 0 (``A_res Q_cap = 0``) — a fixed point of Oja's rule,
    so a plain warm start stays stuck there and reports ``λ̂ = 0``. Every eigenvector of ``A_res`` for a
    non-zero eigenvalue lies in ``range(Π⊥)``, so deflating loses nothing. When ``‖Π⊥w‖ ≤ 1/2`` (``w``
    mostly captured) the start is the column of ``Π⊥`` of largest norm (``≥ √((d − m)/d)``), which is
    deterministic; with ``m = d`` (``A_res = 0``) ``w`` is kept.
    """
    if Q_cap.shape[1] == 0 or Q_cap.shape[1] == Q_cap.shape[0]:
        return _unit(w)
    Pi = complement_projector(Q_cap)
    v = arr(Pi @ w)
    if frobenius(v) > 0.5 * frobenius(w):
        return _unit(v)
    col = int(np.argmax(np.sum(Pi * Pi, axis=0)))
    return _unit(arr(Pi[:, col].copy()))


def track_phase(
    ctx: Context, state: TrainerState, A_res: Float64[np.ndarray, "d d"]
) -> tuple[TrainerState, tuple[float, float, float, float], tuple[InvariantRecord, ...]]:
    """G6: ``tracker_steps`` Oja steps (top) and MCA-EXIN steps (bottom) on ``A_res``, warm-started
    from the previous check, with the certified step ``‖w_0‖²/‖A_res‖_F``. Returns the new tracker
    vectors in the state, ``(|λ̂_max − λ_max|, |cos|, |λ̂_min − λ_min|, |cos|)`` and check_g6's results
    (the static-operator bound for this check's run: ``A_res`` is held fixed while the tracker runs).
    check_g6 emits nothing for a run outside G6's hypotheses (no certified gap at the tracked end, e.g.
    ``λ = 0`` repeated on the captured subspace): such a run is reported through the gaps only, never
    counted as a pass. The start is :func:`warm_start`."""
    n = ctx.train_cfg.tracker_steps
    Q_cap = state.growth.Q_cap
    oja = oja_track(A_res, warm_start(state.w_top, Q_cap), certified_step(A_res), n)
    w_b = warm_start(state.w_bottom, Q_cap)
    exin = mca_exin_track(A_res, w_b, certified_step(A_res, f64(w_b @ w_b)), n)
    gaps = (*tracker_gap(A_res, oja), *tracker_gap(A_res, exin))
    records: tuple[InvariantRecord, ...] = ()
    if ctx.train_cfg.check_invariants:
        res = check_g6(A=A_res, tracker=oja) + check_g6(A=A_res, tracker=exin)
        records = tuple(InvariantRecord(state.step, EVENT_CHECK, r) for r in res)
    return replace(state, w_top=_unit(oja.w), w_bottom=_unit(exin.w)), gaps, records


def grow_phase(ctx: Context, state: TrainerState, probe: Probe) -> PhaseResult:
    """SPEC §3.2 on the probe: grow when ``λ_max(A_res) > θ`` and the dwell ``T_d`` has passed.

    On a birth the model gets a new head (seeded by :func:`birth_rng`), ``Q_cap`` gains ``u₊`` and G1
    is checked (orthonormality of ``Q_cap``, its numerical rank raised by one, at most ``d`` births).
    Nothing is grown while ``|𝓗| = max_heads``. Optimiser state is left as it is.
    """
    cap = ctx.train_cfg.max_heads
    if cap is not None and len(state.params.heads) >= cap:
        return PhaseResult(state, (), ())
    C = probe_second_moment(state.params, probe)
    A_res = residual_for(state.params, C, state.growth.Q_cap)
    growth, events = grow_check(state.growth, ctx.growth_cfg, A_res, state.step, new_head_id=state.params.next_head_id)
    births = [e for e in events if e.kind is EventKind.BIRTH]
    if not births:
        return PhaseResult(replace(state, growth=growth), events, ())
    (birth,) = births
    if birth.head_id is None:
        raise RuntimeError("grow_check returned a birth without a head id")
    params, hid = add_head(state.params, ctx.layer_cfg, rng=birth_rng(ctx.train_cfg.seed, birth.head_id))
    if hid != birth.head_id:
        raise RuntimeError(f"head ids out of step: the controller allocated {birth.head_id}, the model {hid}")
    ranks = (*state.ranks, numerical_rank(growth.Q_cap))
    records: tuple[InvariantRecord, ...] = ()
    if ctx.train_cfg.check_invariants:
        g1 = check_g1(Q_cap=growth.Q_cap, ranks=ranks, theta=ctx.growth_cfg.theta)
        records = tuple(InvariantRecord(state.step, EVENT_BIRTH, r, head_id=hid) for r in g1)
    _check_heads_in_step(params, growth)
    return PhaseResult(replace(state, params=params, growth=growth, ranks=ranks), events, records)


def prune_phase(ctx: Context, state: TrainerState, probe: Probe) -> PhaseResult:
    """SPEC §3.3 on the probe: prune heads with ``G_h < φ_g`` for ``T_prune`` checks, under hysteresis.

    Each removal is checked against G5 (see :func:`g5_records`); after the last removal, the growth
    test is re-run on the same probe with the dwell switched off (``T_d = 0``): under hysteresis it must
    not fire ("no re-trigger at the next check on the same probe").
    """
    C = probe_second_moment(state.params, probe)
    growth, events = prune_check(state.growth, ctx.growth_cfg, C, head_operators(state.params), state.step)
    pruned = [e.head_id for e in events if e.kind is EventKind.HEAD_PRUNE and e.head_id is not None]
    if not pruned:
        return PhaseResult(replace(state, growth=growth), events, ())
    params, opt_state = state.params, state.opt_state
    records: list[InvariantRecord] = []
    for hid in pruned:
        after = remove_head(params, hid)
        opt_state = drop_head_state(opt_state, hid)
        if ctx.train_cfg.check_invariants:
            res = g5_records(ctx, params, after, hid, C, state.growth.Q_cap, probe)
            records.extend(InvariantRecord(state.step, EVENT_HEAD_PRUNE, r, head_id=hid) for r in res)
        params = after
    _check_heads_in_step(params, growth)
    if ctx.train_cfg.check_invariants:
        records.append(InvariantRecord(state.step, EVENT_HEAD_PRUNE, no_retrigger(ctx, params, growth, C, state.step)))
    return PhaseResult(replace(state, params=params, opt_state=opt_state, growth=growth), events, tuple(records))


def g5_records(
    ctx: Context,
    before: ModelParams,
    after: ModelParams,
    head_id: int,
    C: F64Array,
    Q_cap: F64Array,
    probe: Probe,
) -> tuple[InvariantResult, ...]:
    """G5 at the removal of ``head_id`` (``before`` → ``after``), measured on the probe.

    :func:`reference.invariants.incrt.check_g5` with the trainer's own ``A_res`` after removal and the
    measured output (the head term from the forward cache, ``L_task`` before/after), plus two checks
    of the measured change of the layer output ``ΔY = Y_before − Y_after``:

    * ``ΔY`` equals the head's term ``U_h`` exactly up to rounding: ``Y = X + Σ_h U_h`` is a recursive
      sum of ``|𝓗| + 1`` terms whose other terms are bit-identical before and after, so
      ``|ΔY − U_h| ≤ γ_{|𝓗|+2} · 2(|X| + Σ_h |U_h|)`` entrywise (Higham §4.2, through
      :func:`reference.tolerances.accumulation_bound`);
    * per sequence ``‖ΔY_b‖_F ≤ √T β_b`` (:func:`reference.incrt.head_output_bound`), up to that
      rounding (``√(T d)`` times the entrywise bound) and the rounding of ``U_h`` itself
      (``γ_{T+d+d_v+2} √T β_b``, as in check_g5).
    """
    cfg = ctx.layer_cfg
    ids = sorted(before.heads)
    Ms = head_operators(before)
    cache_b = forward(before, cfg, probe.x, probe.labels)
    cache_a = forward(after, cfg, probe.x, probe.labels)
    hc = cache_b.heads[head_id]
    head: HeadParams = before.heads[head_id]
    output = PruneOutput(
        A_h=hc.A,
        X=cache_b.X,
        W_V=head.W_V,
        W_O=head.W_O,
        U_h=hc.out,
        dY=arr(cache_b.Y - cache_a.Y),
        P=before.P,
        T_P=cfg.T_P,
        W_c=before.W_c,
        loss_before=cache_b.L_task,
        loss_after=cache_a.L_task,
    )
    res = check_g5(
        C=C,
        head_operators=[Ms[h] for h in ids],
        h=ids.index(head_id),
        Q_cap=Q_cap,
        theta=ctx.growth_cfg.theta,
        A_res_after=residual_for(after, C, Q_cap),
        output=output,
    )
    B, T, d = cache_b.Y.shape
    dY = cache_b.Y - cache_a.Y
    scale = np.abs(cache_b.X) + sum((np.abs(c.out) for c in cache_b.heads.values()), start=np.zeros_like(dY))
    entry_bound = accumulation_bound(len(ids) + 2, 2.0 * f64(np.max(scale)))
    beta = head_output_bound(cache_b.X, head.W_V, head.W_O)
    norms = np.sqrt(np.sum(dY * dY, axis=(1, 2)))
    caps = math.sqrt(T) * beta
    worst = int(np.argmax(norms - caps))
    cap = f64(caps[worst])
    d_v = head.W_V.shape[1]
    extra = (
        InvariantResult(
            "G5",
            "measured ΔY = Y_before − Y_after equals the head term U_h",
            f64(np.max(np.abs(dY - hc.out))),
            entry_bound,
            f"h={head_id}, heads={ids}",
        ),
        InvariantResult(
            "G5",
            "measured ‖ΔY_b‖_F ≤ √T · max_s‖x_s W_V W_O‖ (certified)",
            f64(norms[worst]),
            cap + accumulation_bound(T + d + d_v + 2, cap) + math.sqrt(T * d) * entry_bound,
            f"h={head_id}, worst b={worst}, B={B}",
        ),
    )
    return res + extra


def no_retrigger(ctx: Context, params: ModelParams, growth: GrowthState, C: F64Array, step: int) -> InvariantResult:
    """G5's "no grow/prune oscillation": right after the prune(s), the growth test on the same probe,
    with the dwell switched off, makes no birth. A DECISION near-tie is allowed to fire (SPEC §6)."""
    A_after = residual_for(params, C, growth.Q_cap)
    _, events = grow_check(growth, replace(ctx.growth_cfg, T_d=0), A_after, step, new_head_id=params.next_head_id)
    births = sum(1 for e in events if e.kind is EventKind.BIRTH)
    lam = exact_extremes(A_after).lam_max
    tie = is_near_tie(lam, ctx.growth_cfg.theta)
    return InvariantResult(
        "G5",
        "no re-trigger: births at the next check on the same probe (T_d = 0)",
        float(births),
        1.0 if tie else 0.0,
        f"λ_max(after)={lam!r}, θ={ctx.growth_cfg.theta!r}, near-tie={tie}, m={growth.m}",
    )


def prototype_masses(params: ModelParams, cfg: LayerConfig, probe: Probe, growth: GrowthState) -> F64Array:
    """``n_j/n`` on the probe tokens, in the order of ``growth.prototypes`` (matched by prototype id).

    Returned as computed, never clipped: a last-bit excursion outside ``[0, 1]`` from the softmax's
    rounding is accepted by :func:`reference.incrt.prototype_prune_check` within the STOCHASTIC
    tolerance, and anything larger is an error there.
    """
    Q = forward(params, cfg, probe.x, probe.labels).Q
    col = {pid: j for j, pid in enumerate(params.prototype_ids)}
    mean = Q.mean(axis=0)
    return arr(np.array([mean[col[pid]] for pid in growth.prototype_ids], dtype=np.float64))


def prototype_prune_phase(ctx: Context, state: TrainerState, probe: Probe) -> PhaseResult:
    """SPEC §3.5 on the probe: remove a prototype whose mass ``n_j/n < ε_K`` for ``T_prune`` checks.

    D5 is checked at each removal on the probe tokens ``Y`` (which do not depend on ``P``), with the
    measured ``ΔF`` computed from the trainer's own ``P`` after removal.
    """
    params = state.params
    mass = prototype_masses(params, ctx.layer_cfg, probe, state.growth)
    growth, events = prototype_prune_check(state.growth, ctx.growth_cfg, mass, state.step)
    pruned = [e.prototype_id for e in events if e.kind is EventKind.PROTOTYPE_PRUNE and e.prototype_id is not None]
    if not pruned:
        return PhaseResult(replace(state, growth=growth), events, ())
    Y = forward(params, ctx.layer_cfg, probe.x, probe.labels).tokens()
    opt_state = state.opt_state
    records: list[InvariantRecord] = []
    for pid in pruned:
        j = prototype_column(params, pid)
        after = remove_prototype_column(params, pid)
        opt_state = _remove_p_column(opt_state, j)
        if ctx.train_cfg.check_invariants:
            ops = replace(REFERENCE_OPS, remove_prototype=_as_removed(params.P, after.P))
            res = d5_prototype_pruning(Y=Y, P=params.P, T_P=ctx.layer_cfg.T_P, j=j, ops=ops)
            records.extend(InvariantRecord(state.step, EVENT_PROTOTYPE_PRUNE, r, prototype_id=pid) for r in res)
        params = after
    if tuple(params.prototype_ids) != growth.prototype_ids:
        raise RuntimeError(
            f"prototype ids out of step: model {params.prototype_ids}, controller {growth.prototype_ids}"
        )
    return PhaseResult(replace(state, params=params, opt_state=opt_state, growth=growth), events, tuple(records))


def _remove_p_column(opt_state: OptState, j: int) -> OptState:
    # remove_state_column is generic in a TypeVar bound to each state type, which a union does not
    # satisfy; the two identical-looking calls let the type checker pick one binding each.
    if isinstance(opt_state, SGDState):
        return remove_state_column(opt_state, "P", j)
    return remove_state_column(opt_state, "P", j)


def _as_removed(P_before: F64Array, P_after: F64Array) -> Callable[[F64Array, int], F64Array]:
    """A ``remove_prototype`` for D5 that returns what the trainer actually kept (so the measured ``ΔF``
    is the trainer's); it refuses to be applied to any other ``P``."""

    def removed(P: F64Array, j: int) -> F64Array:
        if P is not P_before:
            raise ValueError("remove_prototype: this measured removal applies only to the P it was taken from")
        return P_after

    return removed


def _check_heads_in_step(params: ModelParams, growth: GrowthState) -> None:
    if sorted(params.heads) != sorted(growth.head_ids):
        raise RuntimeError(
            f"head bookkeeping out of step: model heads {sorted(params.heads)}, controller {sorted(growth.head_ids)}"
        )


def growth_check(
    ctx: Context, state: TrainerState, probe: Probe
) -> tuple[TrainerState, CheckRecord, tuple[GrowthEvent, ...], tuple[InvariantRecord, ...]]:
    """One check of SPEC §3 on the probe: statistics and trackers (G6), grow (G1), prune heads (G5),
    prune prototypes (D5), in that order."""
    params = state.params
    C = probe_second_moment(params, probe)
    A_res = residual_for(params, C, state.growth.Q_cap)
    ext = exact_extremes(A_res)
    Y_probe = forward(params, ctx.layer_cfg, probe.x, probe.labels).Y
    collapse = collapse_status(arr(Y_probe.reshape(-1, Y_probe.shape[-1])), ctx.layer_cfg.T_P)
    Ms = head_operators(params)
    strengths = {h: head_strength(C, M) for h, M in sorted(Ms.items())}
    taus = {h: params.heads[h].tau for h in sorted(params.heads)}
    state, gaps, r_track = track_phase(ctx, state, A_res)
    cap = ctx.train_cfg.max_heads
    capped = cap is not None and len(state.params.heads) >= cap
    grow = grow_phase(ctx, state, probe)
    prune = prune_phase(ctx, grow.state, probe)
    mass = prototype_masses(prune.state.params, ctx.layer_cfg, probe, prune.state.growth)
    proto = prototype_prune_phase(ctx, prune.state, probe)
    events = grow.events + prune.events + proto.events
    record = CheckRecord(
        step=state.step,
        lam_max=ext.lam_max,
        lam_min=ext.lam_min,
        fro=frobenius(A_res),
        spectrum=tuple(eigenvalues_desc(A_res).tolist()),
        theta=ctx.growth_cfg.theta,
        phi_g=ctx.growth_cfg.phi_g,
        rank=state.growth.m,
        n_heads=len(params.heads),
        n_prototypes=params.P.shape[1],
        head_strength=strengths,
        tau=taus,
        mass=dict(zip(prune.state.growth.prototype_ids, mass.tolist(), strict=True)),
        oja_lam_gap=gaps[0],
        oja_cos=gaps[1],
        exin_lam_gap=gaps[2],
        exin_cos=gaps[3],
        capped=capped and ext.lam_max > ctx.growth_cfg.theta,
        births=_count_kind(events, EventKind.BIRTH),
        head_prunes=_count_kind(events, EventKind.HEAD_PRUNE),
        prototype_prunes=_count_kind(events, EventKind.PROTOTYPE_PRUNE),
        collapse_T_c=collapse.T_c_free_energy,
        collapse_margin=collapse.margin_free_energy,
    )
    return proto.state, record, events, r_track + grow.invariants + prune.invariants + proto.invariants


def _count_kind(events: Sequence[GrowthEvent], kind: EventKind) -> int:
    return sum(1 for e in events if e.kind is kind)


# ==================================================================================================
# Evaluation
# ==================================================================================================


def evaluate(
    params: ModelParams, cfg: LayerConfig, x: Float64[np.ndarray, "B T d_in"], labels: Int64[np.ndarray, " B"]
) -> tuple[float, float]:
    """``(accuracy, L_task)`` of the layer on a labelled set (argmax of the logits)."""
    cache = forward(params, cfg, x, labels)
    pred = np.argmax(cache.logits, axis=1)
    return f64(np.mean(pred == labels)), cache.L_task


def _evaluation(params: ModelParams, cfg: LayerConfig, data: SequenceDataset, step: int) -> Evaluation:
    tr_acc, tr_L = evaluate(params, cfg, data.x_train, data.labels_train)
    te_acc, te_L = evaluate(params, cfg, data.x_test, data.labels_test)
    return Evaluation(step, tr_acc, te_acc, tr_L, te_L)


# ==================================================================================================
# The run record
# ==================================================================================================


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
        """Write :meth:`to_json` to ``path`` (parent folders are created); returns the path."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(self.to_json(), encoding="utf-8")
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


_CHECK_MAPS = ("head_strength", "tau", "mass")


def _check_to_dict(c: CheckRecord) -> dict[str, Any]:
    out = asdict(c)
    for name in _CHECK_MAPS:  # JSON keys are strings: store the id→value maps as [id, value] pairs
        out[name] = [[int(k), float(v)] for k, v in getattr(c, name).items()]
    return out


def _check_from_dict(d: Mapping[str, Any]) -> CheckRecord:
    kw = dict(d)
    kw["spectrum"] = tuple(float(v) for v in d["spectrum"])
    for name in _CHECK_MAPS:
        kw[name] = {int(k): float(v) for k, v in d[name]}
    return CheckRecord(**kw)


def _params_to_dict(p: ModelParams) -> dict[str, Any]:
    return {
        "arrays": {name: a.tolist() for name, a in flatten(p).items()},
        "next_head_id": p.next_head_id,
        "prototype_ids": list(p.prototype_ids),
    }


def _params_from_dict(d: Mapping[str, Any]) -> ModelParams:
    a = {name: arr(np.array(v, dtype=np.float64)) for name, v in d["arrays"].items()}
    head_ids = sorted({int(name.split(".")[1]) for name in a if name.startswith("heads.")})
    heads = {
        h: HeadParams(
            W_Q=a[head_param_name(h, "W_Q")],
            W_K=a[head_param_name(h, "W_K")],
            W_V=a[head_param_name(h, "W_V")],
            W_O=a[head_param_name(h, "W_O")],
            s=f64(a[head_param_name(h, "s")]),
        )
        for h in head_ids
    }
    return ModelParams(
        W_in=a["W_in"],
        E_pos=a["E_pos"],
        heads=heads,
        next_head_id=int(d["next_head_id"]),
        P=a["P"],
        prototype_ids=tuple(int(i) for i in d["prototype_ids"]),
        W_c=a["W_c"],
        b_c=a["b_c"],
    )


# ==================================================================================================
# The run
# ==================================================================================================


def _check_dataset(dataset: object, layer_cfg: LayerConfig, train_cfg: TrainConfig) -> SequenceDataset:
    if not isinstance(dataset, SequenceDataset):
        raise TypeError(f"dataset: expected reference.data.SequenceDataset, got {type(dataset).__name__}")
    if not isinstance(layer_cfg, LayerConfig):
        raise TypeError(f"layer_cfg: expected LayerConfig, got {type(layer_cfg).__name__}")
    if not isinstance(train_cfg, TrainConfig):
        raise TypeError(f"train_cfg: expected TrainConfig, got {type(train_cfg).__name__}")
    for name, have, want in (
        ("seq_len", layer_cfg.seq_len, dataset.seq_len),
        ("d_in", layer_cfg.d_in, dataset.d_in),
        ("n_classes", layer_cfg.n_classes, dataset.n_classes),
    ):
        if have != want:
            raise ValueError(f"layer_cfg.{name}: is {have}, but the dataset {dataset.name!r} has {want}")
    n = dataset.x_train.shape[0]
    for name in ("batch_size", "probe_size"):
        if getattr(train_cfg, name) > n:
            raise ValueError(
                f"TrainConfig.{name}: {getattr(train_cfg, name)} exceeds the {n} training sequences "
                "(drawn without replacement)"
            )
    return dataset


def _probe(data: SequenceDataset, size: int, rng: np.random.Generator) -> Probe:
    idx = rng.choice(data.x_train.shape[0], size=size, replace=False)
    return Probe(x=arr(data.x_train[idx]), labels=data.labels_train[idx])


def train(
    dataset: SequenceDataset,
    layer_cfg: LayerConfig,
    train_cfg: TrainConfig,
    *,
    rng: np.random.Generator,
    progress: ProgressFn | None = None,
) -> RunRecord:
    """Train one DDCL-INCRT layer with the growth rule and return its :class:`RunRecord`.

    ``rng`` draws the initial parameters, the tracker starts, the probe, the calibration probes and
    the minibatches (in that order); births are seeded by ``train_cfg.seed`` (:func:`birth_rng`).
    Pure apart from ``progress``, which is called after every step, and the wall-clock time recorded.
    """
    data = _check_dataset(dataset, layer_cfg, train_cfg)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    t0 = time.perf_counter()
    state = init_state(layer_cfg, train_cfg, rng=rng)
    probe = _probe(data, train_cfg.probe_size, rng)
    calib = [_probe(data, train_cfg.probe_size, rng) for _ in range(train_cfg.calibration_probes)]
    growth_cfg, norms = calibrate(state.params, train_cfg, calib)
    ctx = Context(layer_cfg=layer_cfg, train_cfg=train_cfg, growth_cfg=growth_cfg)

    losses: dict[str, list[float]] = {name: [] for name in LOSS_FIELDS}
    events: list[GrowthEvent] = []
    invariants: list[InvariantRecord] = []
    checks: list[CheckRecord] = []
    evaluations: list[Evaluation] = []
    n_train = data.x_train.shape[0]
    lam_last: float | None = None
    for _ in range(train_cfg.steps):
        idx = rng.choice(n_train, size=train_cfg.batch_size, replace=False)
        state, step_losses, recs = train_step(ctx, state, arr(data.x_train[idx]), data.labels_train[idx])
        for name in LOSS_FIELDS:
            losses[name].append(step_losses[name])
        invariants.extend(recs)
        if state.step % train_cfg.check_every == 0:
            state, rec, evs, recs = growth_check(ctx, state, probe)
            checks.append(rec)
            events.extend(evs)
            invariants.extend(recs)
            lam_last = rec.lam_max
        if train_cfg.eval_every and state.step % train_cfg.eval_every == 0 and state.step < train_cfg.steps:
            evaluations.append(_evaluation(state.params, layer_cfg, data, state.step))
        if progress is not None:
            progress(
                ProgressInfo(
                    step=state.step,
                    steps=train_cfg.steps,
                    L=step_losses["L"],
                    L_task=step_losses["L_task"],
                    n_heads=len(state.params.heads),
                    n_prototypes=state.params.P.shape[1],
                    lam_max=lam_last,
                    theta=growth_cfg.theta,
                )
            )
    evaluations.append(_evaluation(state.params, layer_cfg, data, state.step))
    params = state.params
    arch = Architecture(
        head_ids=tuple(sorted(params.heads)),
        n_heads=len(params.heads),
        prototype_ids=tuple(params.prototype_ids),
        n_prototypes=params.P.shape[1],
        births=_count_kind(events, EventKind.BIRTH),
        head_prunes=_count_kind(events, EventKind.HEAD_PRUNE),
        prototype_prunes=_count_kind(events, EventKind.PROTOTYPE_PRUNE),
        captured_rank=state.growth.m,
    )
    return RunRecord(
        dataset=data.name,
        dataset_meta=MappingProxyType(dict(data.meta)),
        layer_config=layer_cfg,
        train_config=train_cfg,
        growth_config=growth_cfg,
        calibration_norms=norms,
        losses=LossTrace(**{name: tuple(v) for name, v in losses.items()}),
        evaluations=tuple(evaluations),
        events=tuple(events),
        invariants=tuple(invariants),
        checks=tuple(checks),
        architecture=arch,
        final_params=params,
        Q_cap=state.growth.Q_cap,
        wall_time_s=time.perf_counter() - t0,
    )


__all__ = [
    "EVENT_BIRTH",
    "EVENT_CHECK",
    "EVENT_HEAD_PRUNE",
    "EVENT_PROTOTYPE_PRUNE",
    "EVENT_TRAIN_STEP",
    "Architecture",
    "CheckRecord",
    "ClaimSummary",
    "Context",
    "Evaluation",
    "InvariantRecord",
    "LossTrace",
    "PhaseResult",
    "Probe",
    "ProgressInfo",
    "RunRecord",
    "TrainConfig",
    "TrainerState",
    "calibrate",
    "drop_head_state",
    "evaluate",
    "grow_phase",
    "growth_check",
    "head_operators",
    "init_state",
    "make_optimizer",
    "no_retrigger",
    "probe_second_moment",
    "prototype_masses",
    "prototype_prune_phase",
    "prune_phase",
    "residual_for",
    "track_phase",
    "train",
    "train_step",
    "warm_start",
]
