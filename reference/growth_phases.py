"""One growth check (SPEC §3) for both engines, over a :class:`GrowthBackend`.

Every ``g`` steps, on the fixed probe: the engine measures ``C = X̄ᵀX̄/n``, ``M_a^h`` per active head,
``A_res = Π⊥ ½[C, M_a] Π⊥``, its exact spectrum and the coupling statistics once
(:meth:`GrowthBackend.measure`); runs the Oja / MCA-EXIN trackers (G6); then the check grows
(:func:`grow_phase`, G1 at each birth and G2–G4 on that check's ``A_res`` held fixed), prunes heads
(:func:`prune_phase`, G5 at each prune) and prunes prototypes (:func:`prototype_prune_phase`, D5 at each
prune), in that order (:func:`run_check`), and builds the one :class:`reference.log.CheckRecord`
(:func:`check_record`). The decisions are :mod:`reference.incrt.controller`'s pure functions of the
measured statistics and the invariants are :mod:`reference.invariants`', run in float64 on host
values, so the rule and its checks are one piece of code for both engines. What differs by engine is
the backend: where the statistics are computed (NumPy here, :class:`ReferenceBackend`; torch on the
device, :class:`accelerated.growth_phases.TorchBackend`) and how an event is applied to the
parameters and the optimiser state (:func:`apply_event`, which the distributed ranks also use).

Births initialise the new head from ``numpy.random.default_rng([seed, head_id])`` (:func:`birth_rng`):
a head's initial weights depend only on the run's seed and its id, not on when it was born. The
optimiser's state of existing parameters is never touched by a birth (Adam creates the new head's
moments at its first step); a head prune drops that head's state; a prototype prune removes the
column of ``P``'s state (the optimiser states' ``without`` / ``without_column``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import numpy as np
from jaxtyping import Float64

from reference._arrays import F64Array, arr, check_array, check_count, f64
from reference.claims.live import failed_hypotheses, recorded, watched
from reference.coupling_statistics import attention_entropy, prototype_separation, variance_gradient_norm
from reference.ddcl import soft_assignments, squared_distances
from reference.growth_statistics import Probe, head_operators, probe_second_moment, prototype_masses, residual_for
from reference.incrt.author_code import (
    author_grow_decision,
    author_operator,
    author_prune_decision,
    author_steps,
    author_track,
    redraw_rng,
    redraw_trackers,
    spectral_gaps,
)
from reference.incrt.capture import greedy_capture, greedy_capture_tracked, numerical_rank
from reference.incrt.controller import (
    EventKind,
    GrowthConfig,
    GrowthEvent,
    GrowthState,
    calibrate_thresholds,
    grow_decision,
    prototype_prune_check,
    prune_decision,
    prune_statistics,
    record_newborn_strength,
)
from reference.incrt.operators import (
    antisymmetric_part,
    check_theta_resolvable,
    complement_projector,
    eigenvalues_desc,
    exact_extremes,
    frobenius,
    head_strength,
    unit,
)
from reference.incrt.trackers import (
    TrackerKind,
    TrackerResult,
    certified_step,
    mca_exin_track,
    oja_track,
    rayleigh,
    tracker_gap,
)
from reference.invariants.coupling import r1a_orthogonal_split
from reference.invariants.ddcl import (
    REFERENCE_OPS,
    CollapseStatus,
    collapse_status,
    d2_free_energy_gradients,
    d3_lyapunov,
    d4_anti_collapse,
    d5_prototype_pruning,
)
from reference.invariants.incrt import check_g1, check_g2, check_g3, check_g4, check_g6
from reference.invariants.pruning import check_g5, check_g5_at_prune, check_no_retrigger
from reference.log import (
    EVENT_BIRTH,
    EVENT_CHECK,
    EVENT_HEAD_PRUNE,
    EVENT_PROTOTYPE_PRUNE,
    CheckRecord,
    InvariantRecord,
)
from reference.model import HeadParams, LayerConfig, ModelParams, forward, init_head, score_operator
from reference.optim import Optimizer, OptState
from reference.surgery import (
    add_head,
    head_param_names,
    prototype_column,
    remove_head,
    remove_prototype_column,
)
from reference.train_config import TrainConfig, make_optimizer


@dataclass(frozen=True)
class Context:
    """What stays fixed during a run: the layer, the training config and the growth thresholds."""

    layer_cfg: LayerConfig
    train_cfg: TrainConfig
    growth_cfg: GrowthConfig

    @property
    def optimizer(self) -> Optimizer:
        return make_optimizer(self.train_cfg)

    def at_head_cap(self, n_heads: int) -> bool:
        """Whether ``n_heads`` active heads are at ``max_heads`` (nothing may grow; no cap: never)."""
        cap = self.train_cfg.max_heads
        return cap is not None and n_heads >= cap


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


@runtime_checkable
class CheckState(Protocol):
    """What the check reads of any engine's state itself (the rest goes through the backend)."""

    @property
    def step(self) -> int: ...

    @property
    def growth(self) -> GrowthState: ...

    @property
    def ranks(self) -> tuple[int, ...]: ...


_S = TypeVar("_S", bound=CheckState)


@dataclass(frozen=True, eq=False)
class Measured:
    """What a check measures once, before it decides: host float64 values (the decisions', the
    invariants' and the record's inputs) and ``native``, the engine's own copies for its later calls
    (device tensors, the probe's tokens)."""

    probe: Probe
    C: Float64[np.ndarray, "d d"]
    A_res: Float64[np.ndarray, "d d"]
    lam_max: float
    lam_min: float
    u_max: Float64[np.ndarray, " d"]
    fro: float
    spectrum: tuple[float, ...]
    head_strength: dict[int, float]
    tau: dict[int, float]
    n_heads: int
    n_prototypes: int
    tokens: Float64[np.ndarray, "n d"]  # the probe's DDCL-input tokens Y (what D2–D4 and R1(a) are checked on)
    collapse: CollapseStatus
    coupling: dict[str, Any]
    native: Any = None


@dataclass(frozen=True)
class Tracked(Generic[_S]):
    """The state with the trackers' new vectors, the gaps ``(|λ̂_max − λ_max|, |cos|, |λ̂_min − λ_min|,
    |cos|)`` against the exact spectrum, and ``results``: the two host tracker results (Oja, MCA-EXIN),
    G6's input, made only when asked (a device engine copies whole trajectories to the host for them,
    which a run without invariants never needs)."""

    state: _S
    gaps: tuple[float, float, float, float]
    results: Callable[[], tuple[TrackerResult, TrackerResult]]


@runtime_checkable
class GrowthBackend(Protocol[_S]):
    """What one growth check needs from an engine: statistics, trackers, surgery, host copies.

    Surgery (:meth:`add_head`, :meth:`remove_head`, :meth:`remove_prototype`) changes the parameters
    and the optimiser state only; the controller's state is set by :meth:`with_growth`."""

    def measure(self, ctx: Context, state: _S, probe: Probe) -> Measured: ...

    def track(self, ctx: Context, state: _S, measured: Measured) -> Tracked[_S]: ...

    def head_ids(self, state: _S) -> list[int]: ...

    def prototype_ids(self, state: _S) -> tuple[int, ...]: ...

    def next_head_id(self, state: _S) -> int: ...

    def head_statistics(
        self, ctx: Context, state: _S, measured: Measured
    ) -> tuple[dict[int, float], Callable[[tuple[int, ...]], float]]:
        """``G_h`` of every active head and ``λ_max(A_res)`` of a set of heads, for :func:`prune_decision`."""
        ...

    def masses(self, ctx: Context, state: _S, measured: Measured) -> F64Array:
        """``n_j/n`` on the probe in the order of ``state.growth.prototypes``."""
        ...

    def probe_tokens(self, ctx: Context, state: _S, measured: Measured) -> F64Array:
        """The layer's tokens ``Y`` on the probe (host, float64; D5's input)."""
        ...

    def host_params(self, state: _S) -> ModelParams: ...

    def add_head(self, ctx: Context, state: _S, head: HeadParams, rng: np.random.Generator) -> tuple[_S, int]: ...

    def remove_head(self, state: _S, head_id: int) -> _S: ...

    def remove_prototype(self, state: _S, prototype_id: int) -> tuple[_S, int]:
        """The state without the prototype and its column of ``P``'s optimiser state; and that column."""
        ...

    def with_growth(self, state: _S, growth: GrowthState, ranks: tuple[int, ...]) -> _S: ...

    def tracker_vectors(self, state: _S) -> tuple[F64Array, F64Array]:
        """Host float64 copies of the tracker vectors ``(w_top, w_bottom)`` (the author's ``u₊, u₋``)."""
        ...

    def with_trackers(self, state: _S, w_top: F64Array, w_bottom: F64Array) -> _S:
        """The state with the tracker vectors set from host arrays (the ``author_code`` re-draw at a birth)."""
        ...

    def author_track(self, ctx: Context, state: _S, measured: Measured) -> _S:
        """The ``author_code`` trackers' one step on the engine's device
        (:func:`reference.incrt.author_code.author_track`), their new vectors in the state."""
        ...


@dataclass(frozen=True)
class PhaseResult(Generic[_S]):
    """What one phase of a check did: the new state, its events and the invariants it checked."""

    state: _S
    events: tuple[GrowthEvent, ...]
    invariants: tuple[InvariantRecord, ...]


def unit_vector(v: F64Array) -> F64Array:
    return unit("v", v)


def birth_rng(seed: int, head_id: int) -> np.random.Generator:
    """The generator a newborn head is initialised from: ``default_rng([seed, head_id])``."""
    return np.random.default_rng([seed, head_id])


def calibrate(
    params: ModelParams, train_cfg: TrainConfig, probes: Sequence[Probe]
) -> tuple[GrowthConfig, tuple[float, ...]]:
    """The run's :class:`GrowthConfig` and the calibration norms ``‖A_res^{(i)}‖_F`` (empty if not calibrated).

    SPEC §3.4: ``θ = c_θ · median_i ‖A_res^{(i)}‖_F`` over the calibration probes at initialisation
    (``Q_cap`` empty), ``φ_g = 0.01 θ``; an explicit ``theta`` / ``phi_g`` in ``train_cfg`` wins.
    Under the growth variant ``prune_at_theta``, ``φ_g = θ`` (docs/studies/planted-heads.md §2.2).
    An explicit ``theta`` the exact eigen-oracle cannot resolve on those operators
    (:func:`reference.incrt.operators.check_theta_resolvable`) is refused here, before training, rather
    than at the first check — also for a run that would never reach a growth decision (shorter than
    ``check_every``, or at ``max_heads``): such a θ is an input error wherever it is used. The operators
    are computed for this whether or not θ is given.
    """
    norms: tuple[float, ...] = ()
    empty = arr(np.zeros((params.W_in.shape[1], 0)))
    ops = [residual_for(params, probe_second_moment(params, p), empty) for p in probes]
    if train_cfg.theta is None:
        theta, _ = calibrate_thresholds(ops, train_cfg.c_theta)
        norms = tuple(frobenius(A) for A in ops)
    else:
        theta = train_cfg.theta
        for A in ops:
            try:
                check_theta_resolvable("theta", theta, A)
            except ValueError as exc:
                raise ValueError(f"{exc} [on the initial layer, at the calibration probes]") from None
    return growth_config_for(train_cfg, theta), norms


def growth_config_for(train_cfg: TrainConfig, theta: float) -> GrowthConfig:
    """The run's :class:`GrowthConfig` for a threshold θ (calibrated or given): ``φ_g = 0.01 θ`` —
    or ``φ_g = θ`` under the growth variant ``prune_at_theta`` (G5: a head's contribution to ``A_res``
    has spectral norm ``≤ G_h``, so ``G_h < θ`` is below the rule's resolution;
    docs/studies/planted-heads.md §2.2) — unless ``train_cfg.phi_g`` is given; the rest from
    ``train_cfg``. :func:`calibrate` and the record loader's check of a stored configuration both use this."""
    phi_default = theta if "prune_at_theta" in train_cfg.growth_variants else 0.01 * theta
    config = GrowthConfig(
        theta=theta,
        phi_g=phi_default if train_cfg.phi_g is None else train_cfg.phi_g,
        T_d=train_cfg.T_d,
        T_prune=train_cfg.T_prune,
        eps_K=train_cfg.eps_K,
        variants=train_cfg.growth_variants,
    )
    if "author_code" in train_cfg.growth_variants:
        # the author's head pruning (cell 5 try_prune_heads): no hysteresis, no minimum head count; its
        # patience (author_code.T_PRUNE = 100 checks) and dwells are the variant's own, so T_d is not read
        # and T_prune is the prototype rule's only (the author has none; the project's is kept)
        return replace(config, min_heads=0, hysteresis=False)
    return config


def newborn_head(
    cfg: LayerConfig, rng: np.random.Generator, u_plus: Float64[np.ndarray, " d"], variants: tuple[str, ...]
) -> HeadParams:
    """The head a birth adds: :func:`reference.model.init_head` drawn from ``rng``; under the variant
    ``birth_along_u_plus`` its queries then read only the captured direction, ``W_Q ← √d · u₊(u₊ᵀW_Q)``
    (``√d`` keeps ``E‖W_Q‖_F² = d_k``, the random draw's). Both engines draw a newborn through this."""
    head = init_head(cfg, rng)
    if "birth_along_u_plus" not in variants:
        return head
    u = unit("u_plus", check_array("u_plus", u_plus, 1))
    return replace(head, W_Q=arr(math.sqrt(cfg.d) * np.outer(u, u @ head.W_Q)))


def newborn_growth_state(
    growth: GrowthState, growth_cfg: GrowthConfig, head_id: int, C: Float64[np.ndarray, "d d"], head: HeadParams
) -> GrowthState:
    """Under ``newborn_margin``: ``growth`` with the newborn's ``G_h^birth = ‖C M_a^h‖_F`` on the birth
    check's ``C`` (the float64 draw, the same in both engines); otherwise ``growth`` unchanged."""
    if "newborn_margin" not in growth_cfg.variants:
        return growth
    M_a = antisymmetric_part(score_operator(head))
    return record_newborn_strength(growth, head_id, head_strength(C, M_a))


def warm_start(w: Float64[np.ndarray, " d"], Q_cap: Float64[np.ndarray, "d m"]) -> Float64[np.ndarray, " d"]:
    """The tracker's start at a check: the previous vector deflated against ``Q_cap``, ``Π⊥w/‖Π⊥w‖``.

    Why: right after a birth the Oja vector *is* (up to rounding) the captured ``u₊``, which is now an
    eigenvector of ``A_res`` for the eigenvalue 0 (``A_res Q_cap = 0``) — a fixed point of Oja's rule,
    so a plain warm start stays stuck there and reports ``λ̂ = 0``. Every eigenvector of ``A_res`` for a
    non-zero eigenvalue lies in ``range(Π⊥)``, so deflating loses nothing. When ``‖Π⊥w‖ ≤ 1/2`` (``w``
    mostly captured) the start is the column of ``Π⊥`` of largest norm (``≥ √((d − m)/d)``), which is
    deterministic; with ``m = d`` (``A_res = 0``) ``w`` is kept.
    """
    if frobenius(w) == 0.0:
        raise ValueError("w: the tracker vector is zero (a tracker state must be non-zero)")
    if Q_cap.shape[1] == 0 or Q_cap.shape[1] == Q_cap.shape[0]:
        return unit_vector(w)
    Pi = complement_projector(Q_cap)
    v = arr(Pi @ w)
    if frobenius(v) > 0.5 * frobenius(w):
        return unit_vector(v)
    col = int(np.argmax(np.sum(Pi * Pi, axis=0)))
    return unit_vector(arr(Pi[:, col].copy()))


def static_operator_checks(
    A_res: Float64[np.ndarray, "d d"], theta: float, *, step: int, head_id: int, seed: int
) -> tuple[InvariantRecord, ...]:
    """G2–G4 at a birth, on that check's ``A_res`` held fixed: the static operator the claims speak about.

    The greedy capture with the exact oracle gives G2 (births at the eigenvalues, in order) and G3 (the
    count ``m*``, sufficient and minimal; random competitors from ``default_rng([seed, head_id, 3])``);
    a second capture whose eigenpairs come from an Oja tracker (200 steps from a random start) gives G4
    (two runs agree). Where the tracker certifies nothing, G4's checks are reported as uncertified."""
    exact = greedy_capture(A_res, theta)
    rng = np.random.default_rng([seed, head_id, 3])
    tracked = greedy_capture_tracked(A_res, theta, rng=rng, n_steps=200)
    res = (
        check_g2(A=A_res, theta=theta, capture=exact)
        + check_g3(A=A_res, theta=theta, capture=exact, rng=rng)
        + check_g4(A=A_res, theta=theta, captures=(exact, tracked))
    )
    return watched(res, step=step, event=EVENT_BIRTH, head_id=head_id, A=A_res, theta=theta)


def track_phase(
    backend: GrowthBackend[_S], ctx: Context, state: _S, measured: Measured
) -> tuple[_S, tuple[float, float, float, float], tuple[InvariantRecord, ...]]:
    """G6: ``tracker_steps`` Oja steps (top) and MCA-EXIN steps (bottom) on ``A_res``, warm-started
    from the previous check (:func:`warm_start`), with the certified step ``‖w_0‖²/‖A_res‖_F``. Returns
    the new tracker vectors in the state, the gaps and check_g6's results (the static-operator bound
    for this check's run: ``A_res`` is held fixed while the tracker runs), each with the hypotheses of G6
    that failed on this run (:func:`reference.claims.live.watched`). Outside G6's hypotheses (no certified
    gap at the tracked end, e.g. ``λ = 0`` repeated on the captured subspace) check_g6's bounds are
    infinite: the run is recorded, uncertified and not promised, never counted as a pass.

    Under the variant ``author_code``: :func:`author_track_phase`."""
    if "author_code" in ctx.growth_cfg.variants:
        return author_track_phase(backend, ctx, state, measured)
    tracked = backend.track(ctx, state, measured)
    records: tuple[InvariantRecord, ...] = ()
    if ctx.train_cfg.check_invariants:
        oja, exin = tracked.results()
        theta = ctx.growth_cfg.theta  # what the top tracker's eigenvalue would decide
        records = watched(
            check_g6(A=measured.A_res, tracker=oja, theta=theta),
            step=state.step,
            event=EVENT_CHECK,
            A=measured.A_res,
            tracker=oja,
        ) + watched(
            check_g6(A=measured.A_res, tracker=exin),
            step=state.step,
            event=EVENT_CHECK,
            A=measured.A_res,
            tracker=exin,
        )
    return tracked.state, tracked.gaps, records


def author_scale(measured: Measured) -> int:
    """``N``, the tokens of the check's probe: the author's operator ``Π⊥½(XᵀX M_a + ·ᵀ)Π⊥`` (cell 5
    ``compute_Ares``) on the probe's tokens ``X`` is ``N · A_res`` (``C = XᵀX/N``)."""
    x = measured.probe.x
    return int(x.shape[0] * x.shape[1])


def is_author_code(ctx: Context) -> bool:
    """Whether the run uses the growth variant ``author_code`` (:mod:`reference.incrt.author_code`)."""
    return "author_code" in ctx.growth_cfg.variants


def author_estimates(
    A_res: Float64[np.ndarray, "d d"], scale: int, u_plus: F64Array, u_minus: F64Array
) -> tuple[float, float]:
    """``(λ̂_max, λ̂_min)``: the ``author_code`` trackers' Rayleigh quotients on ``S = N·A_res``, over ``N``
    (on ``A_res``'s scale, where θ is), host float64 for both engines (cell 5 ``try_grow_head``)."""
    S = author_operator(A_res, scale)
    return rayleigh(S, u_plus) / scale, rayleigh(S, u_minus) / scale


def author_g6_runs(S: Float64[np.ndarray, "d d"], u_plus0: F64Array, u_minus0: F64Array) -> tuple[TrackerResult, ...]:
    """What claim G6 speaks about in one ``author_code`` check: the author's Oja step from ``u₊`` with
    ``η₊ = 1/(10d)`` on ``S``, and the author's MCA-EXIN step from ``u₋`` — both **without** their coupling
    terms (G6 states nothing about coupled trackers), the MCA-EXIN one as MCA-EXIN with the step
    ``η₋·y``, ``y = u₋ᵀSu₋`` (the author's extra factor; where ``y ≤ 0`` the step is an ascent, no minor
    -component tracker, and only the Oja run is returned)."""
    eta_plus, eta_minus = author_steps(S.shape[0])
    oja = oja_track(S, u_plus0, eta_plus, 1)
    y = f64(u_minus0 @ (S @ u_minus0))
    if not y > 0.0:
        return (oja,)
    return oja, mca_exin_track(S, u_minus0, eta_minus * y, 1)


def author_track_phase(
    backend: GrowthBackend[_S], ctx: Context, state: _S, measured: Measured
) -> tuple[_S, tuple[float, float, float, float], tuple[InvariantRecord, ...]]:
    """The ``author_code`` trackers (cell 5 ``try_grow_head``): one coupled Oja and one MCA-EXIN step on
    ``S = N·A_res`` per check on the engine's device (:meth:`GrowthBackend.author_track`); the gaps of
    their Rayleigh quotients and directions to the exact extremes of ``A_res``; G6 watched on
    :func:`author_g6_runs` (its step-size hypothesis ``η(λ_max − λ_min) < 2`` on ``S`` fails wherever the
    author's fixed ``η₊`` is too large for the operator: recorded, not promised)."""
    scale = author_scale(measured)
    u_plus0, u_minus0 = backend.tracker_vectors(state)
    state = backend.author_track(ctx, state, measured)
    u_plus, u_minus = backend.tracker_vectors(state)
    lam_max_hat, lam_min_hat = author_estimates(measured.A_res, scale, u_plus, u_minus)
    ext = exact_extremes(measured.A_res)
    gaps = (
        abs(lam_max_hat - ext.lam_max),
        abs(f64(ext.u_max @ unit_vector(u_plus))),
        abs(lam_min_hat - ext.lam_min),
        abs(f64(ext.u_min @ unit_vector(u_minus))),
    )
    records: tuple[InvariantRecord, ...] = ()
    if ctx.train_cfg.check_invariants:
        S = author_operator(measured.A_res, scale)
        theta_S = scale * ctx.growth_cfg.theta  # θ on S's scale: what the top estimate is compared with
        for run in author_g6_runs(S, u_plus0, u_minus0):
            top = run.kind is TrackerKind.OJA
            res = check_g6(A=S, tracker=run, theta=theta_S) if top else check_g6(A=S, tracker=run)
            records += watched(res, step=state.step, event=EVENT_CHECK, A=S, tracker=run)
    return state, gaps, records


def author_grow(
    backend: GrowthBackend[_S], ctx: Context, state: _S, measured: Measured
) -> tuple[GrowthState, tuple[GrowthEvent, ...]]:
    """The ``author_code`` decision (:func:`reference.incrt.author_code.author_grow_decision`) on the
    trackers' estimates after this check's step, with ``Δ₊`` the exact top gap of ``S = N·A_res``."""
    scale = author_scale(measured)
    u_plus, u_minus = backend.tracker_vectors(state)
    lam_max_hat, lam_min_hat = author_estimates(measured.A_res, scale, u_plus, u_minus)
    delta_plus = spectral_gaps(arr(scale * np.asarray(measured.spectrum, dtype=np.float64)))[0]
    return author_grow_decision(
        state.growth,
        ctx.growth_cfg,
        (lam_max_hat, lam_min_hat, u_plus),
        delta_plus,
        state.step,
        d=state.growth.d,
        check_every=ctx.train_cfg.check_every,
        new_head_id=backend.next_head_id(state),
    )


def draw_newborn(ctx: Context, birth: GrowthEvent) -> tuple[HeadParams, np.random.Generator]:
    """The head a birth event adds, drawn from :func:`birth_rng` (:func:`newborn_head`), and its rng."""
    if birth.head_id is None:
        raise RuntimeError("the controller returned a birth without a head id")
    if birth.u_plus is None:
        raise RuntimeError("the controller returned a birth without its direction u₊")
    rng = birth_rng(ctx.train_cfg.seed, birth.head_id)
    return newborn_head(ctx.layer_cfg, rng, birth.u_plus, ctx.growth_cfg.variants), rng


def add_newborn(backend: GrowthBackend[_S], ctx: Context, state: _S, birth: GrowthEvent) -> tuple[_S, HeadParams, int]:
    """A birth's surgery: the newborn drawn by :func:`draw_newborn` added to the parameters (the
    optimiser state is left as it is) under the head id the controller allocated; and the head, its id."""
    head, rng = draw_newborn(ctx, birth)
    state, hid = backend.add_head(ctx, state, head, rng)
    if hid != birth.head_id:
        raise RuntimeError(f"head ids out of step: the controller allocated {birth.head_id}, the model {hid}")
    return state, head, hid


def apply_event(backend: GrowthBackend[_S], ctx: Context, state: _S, event: GrowthEvent) -> _S:
    """One event's surgery on the parameters and the optimiser state (the controller's state is not
    touched): a birth adds its newborn (:func:`add_newborn`), a head prune and a prototype prune remove
    theirs; near-tie events change nothing. The distributed ranks apply rank 0's decision with this,
    the surgery the check's phases use."""
    if event.kind is EventKind.BIRTH:
        return add_newborn(backend, ctx, state, event)[0]
    if event.kind is EventKind.HEAD_PRUNE and event.head_id is not None:
        return backend.remove_head(state, event.head_id)
    if event.kind is EventKind.PROTOTYPE_PRUNE and event.prototype_id is not None:
        return backend.remove_prototype(state, event.prototype_id)[0]
    return state


def grow_phase(backend: GrowthBackend[_S], ctx: Context, state: _S, measured: Measured) -> PhaseResult[_S]:
    """SPEC §3.2 through :func:`reference.incrt.controller.grow_decision` on the measured
    ``(λ_max, u₊)``: grow when ``λ_max(A_res) > θ`` and the dwell ``T_d`` has passed.

    On a birth the model gets a new head (:func:`apply_event`), ``Q_cap`` gains ``u₊`` and G1 is
    checked (orthonormality of ``Q_cap``, its numerical rank raised by one, at most ``d`` births), and
    G2–G4 on this check's ``A_res`` (:func:`static_operator_checks`). Nothing is grown while
    ``|𝓗| = max_heads``. Optimiser state is left as it is.
    """
    if ctx.at_head_cap(measured.n_heads):
        return PhaseResult(state, (), ())
    theta = ctx.growth_cfg.theta
    try:  # θ the oracle cannot resolve: refused, saying when (the operator grows with the weights)
        check_theta_resolvable("config.theta", theta, measured.A_res)
    except ValueError as exc:
        raise ValueError(
            f"{exc} [at the check of step {state.step}: the residual operator grew during training until θ "
            "could no longer be resolved; a run whose weights blow up (e.g. a learning rate too large) "
            "does this]"
        ) from None
    if is_author_code(ctx):
        growth, events = author_grow(backend, ctx, state, measured)
    else:
        top = (measured.lam_max, measured.u_max)
        growth, events = grow_decision(
            state.growth, ctx.growth_cfg, top, state.step, new_head_id=backend.next_head_id(state)
        )
    births = [e for e in events if e.kind is EventKind.BIRTH]
    if not births:
        return PhaseResult(backend.with_growth(state, growth, state.ranks), events, ())
    (birth,) = births
    state, head, hid = add_newborn(backend, ctx, state, birth)
    if is_author_code(ctx):  # both trackers re-drawn at random (cell 5 try_grow_head)
        state = backend.with_trackers(state, *redraw_trackers(redraw_rng(ctx.train_cfg.seed, hid), growth.Q_cap))
    growth = newborn_growth_state(growth, ctx.growth_cfg, hid, measured.C, head)
    ranks = (*state.ranks, numerical_rank(growth.Q_cap))
    records: tuple[InvariantRecord, ...] = ()
    if ctx.train_cfg.check_invariants:
        g1 = check_g1(Q_cap=growth.Q_cap, ranks=ranks, theta=theta)
        records = watched(g1, step=state.step, event=EVENT_BIRTH, head_id=hid, theta=theta)
        records += static_operator_checks(measured.A_res, theta, step=state.step, head_id=hid, seed=ctx.train_cfg.seed)
        records += newborn_write_checks(backend, ctx, state, measured, head_id=hid)
    state = backend.with_growth(state, growth, ranks)
    _check_heads_in_step(backend.head_ids(state), growth)
    return PhaseResult(state, events, records)


def newborn_write_checks(
    backend: GrowthBackend[_S], ctx: Context, after: _S, measured: Measured, *, head_id: int
) -> tuple[InvariantRecord, ...]:
    """R1(a) at a birth, on the probe: the tokens ``Y`` before the birth (the check's measured tokens:
    nothing changes the parameters between the measurement and the birth), the newborn's write
    ``U = Y_after − Y`` and the assignments ``Q`` of ``Y`` to the prototypes (held fixed; a birth leaves
    ``P`` as it was), with the lemma's hypotheses watched (every row of ``Y`` orthogonal to every row of
    ``U``; every prototype with mass). The split of the squared centroid distances is promised only under
    orthogonality; where it fails the record says what the split did anyway."""
    Y = measured.tokens
    U = arr(backend.probe_tokens(ctx, after, measured) - Y)
    P, T_P = backend.host_params(after).P, ctx.layer_cfg.T_P
    Q = soft_assignments(squared_distances(Y, P), T_P)
    res = r1a_orthogonal_split(Y=Y, U=U, Q=Q)
    return watched(res, step=after.step, event=EVENT_BIRTH, head_id=head_id, Y=Y, U=U, Q=Q)


def prune_phase(backend: GrowthBackend[_S], ctx: Context, state: _S, measured: Measured) -> PhaseResult[_S]:
    """SPEC §3.3 through :func:`reference.incrt.controller.prune_decision`: prune heads with
    ``G_h < φ_g`` for ``T_prune`` checks, under hysteresis.

    Each removal is checked against G5 (:func:`reference.invariants.pruning.check_g5_at_prune`); after
    the last removal, the growth test is re-run on the same probe with the dwell switched off
    (``T_d = 0``): under hysteresis it must not fire (:func:`reference.invariants.pruning.check_no_retrigger`).
    ``C`` is the check's: it depends on the layer input only, which no head changes.
    """
    strengths, lam_max_of = backend.head_statistics(ctx, state, measured)
    if is_author_code(ctx):  # the author's pruning (cell 5 try_prune_heads)
        growth, events = author_prune_decision(
            state.growth,
            ctx.growth_cfg,
            strengths,
            state.step,
            d=state.growth.d,
            check_every=ctx.train_cfg.check_every,
        )
    else:
        growth, events = prune_decision(state.growth, ctx.growth_cfg, strengths, lam_max_of, state.step)
    pruned = [e.head_id for e in events if e.kind is EventKind.HEAD_PRUNE and e.head_id is not None]
    if not pruned:
        return PhaseResult(backend.with_growth(state, growth, state.ranks), events, ())
    records: list[InvariantRecord] = []
    before = backend.host_params(state) if ctx.train_cfg.check_invariants else None
    Q_cap = state.growth.Q_cap
    failed_at_check: set[str] = set()
    for hid in pruned:
        state = backend.remove_head(state, hid)
        if before is not None:
            after = backend.host_params(state)
            Ms = head_operators(before)
            # G5's hypotheses on this removal's inputs: C, the heads before it (in id order), Q_cap, θ
            hypothesis_inputs: dict[str, Any] = {
                "C": measured.C,
                "head_operators": [Ms[i] for i in sorted(Ms)],
                "h": sorted(Ms).index(hid),
                "Q_cap": Q_cap,
                "theta": ctx.growth_cfg.theta,
            }
            failed = failed_hypotheses("G5", **hypothesis_inputs)
            failed_at_check.update(failed)
            res = check_g5_at_prune(
                layer_cfg=ctx.layer_cfg,
                theta=ctx.growth_cfg.theta,
                before=before,
                after=after,
                head_id=hid,
                C=measured.C,
                Q_cap=Q_cap,
                probe=measured.probe,
            )
            records.extend(recorded(res, {"G5": failed}, step=state.step, event=EVENT_HEAD_PRUNE, head_id=hid))
            before = after
    _check_heads_in_step(backend.head_ids(state), growth)
    if before is not None:
        no_grow = check_no_retrigger(
            growth_cfg=ctx.growth_cfg, params=before, growth=growth, C=measured.C, step=state.step
        )
        # promised when every removal of this check met G5's hypotheses (the hysteresis among them)
        records.extend(recorded((no_grow,), {"G5": failed_at_check}, step=state.step, event=EVENT_HEAD_PRUNE))
    return PhaseResult(backend.with_growth(state, growth, state.ranks), events, tuple(records))


def prototype_prune_phase(
    backend: GrowthBackend[_S], ctx: Context, state: _S, measured: Measured
) -> tuple[PhaseResult[_S], F64Array]:
    """SPEC §3.5 through :func:`reference.incrt.controller.prototype_prune_check`: remove a prototype
    whose mass ``n_j/n < ε_K`` for ``T_prune`` checks; also returns the masses (the record's).

    D5 is checked at each removal on the probe tokens ``Y`` (which do not depend on ``P``), with the
    measured ``ΔF`` computed from the engine's own ``P`` after removal.
    """
    mass = backend.masses(ctx, state, measured)
    growth, events = prototype_prune_check(state.growth, ctx.growth_cfg, mass, state.step)
    pruned = [e.prototype_id for e in events if e.kind is EventKind.PROTOTYPE_PRUNE and e.prototype_id is not None]
    if not pruned:
        return PhaseResult(backend.with_growth(state, growth, state.ranks), events, ()), mass
    Y = backend.probe_tokens(ctx, state, measured) if ctx.train_cfg.check_invariants else None
    records: list[InvariantRecord] = []
    for pid in pruned:
        P_before = backend.host_params(state).P if Y is not None else None
        state, j = backend.remove_prototype(state, pid)
        if Y is not None and P_before is not None:
            ops = replace(REFERENCE_OPS, remove_prototype=measured_removal(P_before, backend.host_params(state).P))
            res = d5_prototype_pruning(Y=Y, P=P_before, T_P=ctx.layer_cfg.T_P, j=j, ops=ops)
            records.extend(
                watched(
                    res,
                    step=state.step,
                    event=EVENT_PROTOTYPE_PRUNE,
                    prototype_id=pid,
                    Y=Y,
                    P=P_before,
                    T_P=ctx.layer_cfg.T_P,
                    j=j,
                )
            )
    if backend.prototype_ids(state) != growth.prototype_ids:
        raise RuntimeError(
            f"prototype ids out of step: model {backend.prototype_ids(state)}, controller {growth.prototype_ids}"
        )
    return PhaseResult(backend.with_growth(state, growth, state.ranks), events, tuple(records)), mass


def _check_heads_in_step(head_ids: Sequence[int], growth: GrowthState) -> None:
    if sorted(head_ids) != sorted(growth.head_ids):
        raise RuntimeError(
            f"head bookkeeping out of step: model heads {sorted(head_ids)}, controller {sorted(growth.head_ids)}"
        )


def run_check(
    backend: GrowthBackend[_S], ctx: Context, state: _S, probe: Probe
) -> tuple[_S, CheckRecord, tuple[GrowthEvent, ...], tuple[InvariantRecord, ...]]:
    """One check of SPEC §3 on the probe: measure; D2–D4 on the probe's tokens and G5 for every head as if
    pruned (:func:`prototype_checks`, :func:`counterfactual_prune_checks`); trackers (G6); grow (G1–G4,
    R1(a)); prune heads (G5); prune prototypes (D5), in that order; the check's record and invariants,
    each with the hypotheses of its claim that failed there."""
    measured = backend.measure(ctx, state, probe)
    r_ddcl = prototype_checks(backend, ctx, state, measured)
    r_g5 = counterfactual_prune_checks(backend, ctx, state, measured)
    state, gaps, r_track = track_phase(backend, ctx, state, measured)
    rank = state.growth.m
    grow = grow_phase(backend, ctx, state, measured)
    prune = prune_phase(backend, ctx, grow.state, measured)
    proto, mass = prototype_prune_phase(backend, ctx, prune.state, measured)
    events = grow.events + prune.events + proto.events
    mass_by_id = dict(zip(prune.state.growth.prototype_ids, mass.tolist(), strict=True))
    record = check_record(ctx, measured, step=state.step, rank=rank, gaps=gaps, mass=mass_by_id, events=events)
    invariants = r_ddcl + r_g5 + r_track + grow.invariants + prune.invariants + proto.invariants
    return proto.state, record, events, invariants


# The step size of the frozen-encoder prototype step D3 is checked on at every check: inside D3's
# hypothesis 0 < η < 1, and η ≤ 1/2 so that its convex-hull part is checked too.
D3_LIVE_ETA = 0.5


def prototype_checks(
    backend: GrowthBackend[_S], ctx: Context, state: _S, measured: Measured
) -> tuple[InvariantRecord, ...]:
    """D2, D3 and D4 on the probe's DDCL-input tokens ``Y`` and the layer's prototypes ``P`` at the
    check's start, each with its hypotheses watched: D2's free-energy identities and gradients against
    their formulas; D3 on one frozen-encoder step ``P − η∇_P F`` with ``η`` = :data:`D3_LIVE_ETA` (``F``
    descends by at least ``η(1−η)‖∇F‖²``); D4's collapsed configuration of these tokens (stationary,
    smallest Hessian eigenvalues ``(2/K)(1 − T_c/T_P)``, which hold at every temperature), promised as
    anti-collapse only while ``K ≥ 2`` and ``T_P < T_c``. Nothing when invariants are not checked."""
    if not ctx.train_cfg.check_invariants:
        return ()
    Y = measured.tokens
    P, T_P, eta = backend.host_params(state).P, ctx.layer_cfg.T_P, D3_LIVE_ETA
    K = P.shape[1]
    step, event = state.step, EVENT_CHECK
    return (
        watched(d2_free_energy_gradients(Y=Y, P=P, T_P=T_P), step=step, event=event, Y=Y, P=P, T_P=T_P)
        + watched(d3_lyapunov(Y=Y, P=P, T_P=T_P, eta=eta), step=step, event=event, Y=Y, P=P, T_P=T_P, eta=eta)
        + watched(d4_anti_collapse(Y=Y, K=K, T_P=T_P), step=step, event=event, Y=Y, K=K, T_P=T_P)
    )


def counterfactual_prune_checks(
    backend: GrowthBackend[_S], ctx: Context, state: _S, measured: Measured
) -> tuple[InvariantRecord, ...]:
    """G5 for every head at the check's start, as if it were pruned now (nothing is removed): the change a
    removal would make to ``A_res``, its spectral norm and λ_max's move against ``G_h``, and, where
    hysteresis holds, no growth after it (:func:`reference.invariants.pruning.check_g5`), so pruning safety
    is audited at every check, not only at the prunes a run happens to make. Each head's checks carry the
    hypotheses that failed for it (hysteresis fails for a head too strong to prune; only the no-growth
    check needs it)."""
    if not ctx.train_cfg.check_invariants:
        return ()
    Ms = head_operators(backend.host_params(state))
    ids = sorted(Ms)
    operators = [Ms[i] for i in ids]
    records: tuple[InvariantRecord, ...] = ()
    for h, hid in enumerate(ids):
        inputs: dict[str, Any] = {
            "C": measured.C,
            "head_operators": operators,
            "h": h,
            "Q_cap": state.growth.Q_cap,
            "theta": ctx.growth_cfg.theta,
        }
        records += watched(check_g5(**inputs), step=state.step, event=EVENT_CHECK, head_id=hid, **inputs)
    return records


def check_record(
    ctx: Context,
    measured: Measured,
    *,
    step: int,
    rank: int,
    gaps: tuple[float, float, float, float],
    mass: dict[int, float],
    events: Sequence[GrowthEvent],
) -> CheckRecord:
    """The one :class:`CheckRecord` of a check: the statistics measured before its decisions, the
    trackers' gaps, the masses the prototype rule read and the counts of its events. ``capped``: the
    rule would have grown (``λ_max > θ``) but ``|𝓗| = max_heads``."""
    return CheckRecord(
        step=step,
        lam_max=measured.lam_max,
        lam_min=measured.lam_min,
        fro=measured.fro,
        spectrum=measured.spectrum,
        theta=ctx.growth_cfg.theta,
        phi_g=ctx.growth_cfg.phi_g,
        rank=rank,
        n_heads=measured.n_heads,
        n_prototypes=measured.n_prototypes,
        head_strength=measured.head_strength,
        tau=measured.tau,
        mass=mass,
        oja_lam_gap=gaps[0],
        oja_cos=gaps[1],
        exin_lam_gap=gaps[2],
        exin_cos=gaps[3],
        capped=ctx.at_head_cap(measured.n_heads) and measured.lam_max > ctx.growth_cfg.theta,
        births=count_kind(events, EventKind.BIRTH),
        head_prunes=count_kind(events, EventKind.HEAD_PRUNE),
        prototype_prunes=count_kind(events, EventKind.PROTOTYPE_PRUNE),
        collapse_T_c=measured.collapse.T_c_free_energy,
        collapse_margin=measured.collapse.margin_free_energy,
        **measured.coupling,
    )


# --------------------------------------------------------------------------------------------------
# The reference engine's backend: NumPy, float64, on the host
# --------------------------------------------------------------------------------------------------


class ReferenceBackend:
    """:class:`GrowthBackend` of the reference engine on a :class:`TrainerState`: the statistics by
    :mod:`reference.growth_statistics` and the exact oracle, surgery by :mod:`reference.surgery`."""

    def measure(self, ctx: Context, state: TrainerState, probe: Probe) -> Measured:
        params = state.params
        C = probe_second_moment(params, probe)
        A_res = residual_for(params, C, state.growth.Q_cap)
        ext = exact_extremes(A_res)
        cache = forward(params, ctx.layer_cfg, probe.x, probe.labels)
        coupling = coupling_statistics(params.P, cache.Q, {h: hc.A for h, hc in cache.heads.items()})
        return Measured(
            probe=probe,
            C=C,
            A_res=A_res,
            lam_max=ext.lam_max,
            lam_min=ext.lam_min,
            u_max=ext.u_max,
            fro=frobenius(A_res),
            spectrum=tuple(eigenvalues_desc(A_res).tolist()),
            head_strength={h: head_strength(C, M) for h, M in sorted(head_operators(params).items())},
            tau={h: params.heads[h].tau for h in sorted(params.heads)},
            n_heads=len(params.heads),
            n_prototypes=params.P.shape[1],
            tokens=cache.tokens(),
            collapse=collapse_status(cache.tokens(), ctx.layer_cfg.T_P),
            coupling=coupling,
        )

    def track(self, ctx: Context, state: TrainerState, measured: Measured) -> Tracked[TrainerState]:
        return track_on(ctx, state, measured.A_res)

    def head_ids(self, state: TrainerState) -> list[int]:
        return list(state.params.heads)

    def prototype_ids(self, state: TrainerState) -> tuple[int, ...]:
        return tuple(state.params.prototype_ids)

    def next_head_id(self, state: TrainerState) -> int:
        return state.params.next_head_id

    def head_statistics(
        self, ctx: Context, state: TrainerState, measured: Measured
    ) -> tuple[dict[int, float], Callable[[tuple[int, ...]], float]]:
        return prune_statistics(state.growth, measured.C, head_operators(state.params))

    def masses(self, ctx: Context, state: TrainerState, measured: Measured) -> F64Array:
        return prototype_masses(state.params, ctx.layer_cfg, measured.probe, state.growth)

    def probe_tokens(self, ctx: Context, state: TrainerState, measured: Measured) -> F64Array:
        return forward(state.params, ctx.layer_cfg, measured.probe.x, measured.probe.labels).tokens()

    def host_params(self, state: TrainerState) -> ModelParams:
        return state.params

    def add_head(
        self, ctx: Context, state: TrainerState, head: HeadParams, rng: np.random.Generator
    ) -> tuple[TrainerState, int]:
        params, hid = add_head(state.params, ctx.layer_cfg, rng=rng, head=head)
        return replace(state, params=params), hid

    def remove_head(self, state: TrainerState, head_id: int) -> TrainerState:
        names = head_param_names(head_id)
        return replace(state, params=remove_head(state.params, head_id), opt_state=state.opt_state.without(names))

    def remove_prototype(self, state: TrainerState, prototype_id: int) -> tuple[TrainerState, int]:
        j = prototype_column(state.params, prototype_id)
        params = remove_prototype_column(state.params, prototype_id)
        return replace(state, params=params, opt_state=state.opt_state.without_column("P", j)), j

    def with_growth(self, state: TrainerState, growth: GrowthState, ranks: tuple[int, ...]) -> TrainerState:
        return replace(state, growth=growth, ranks=ranks)

    def tracker_vectors(self, state: TrainerState) -> tuple[F64Array, F64Array]:
        return state.w_top, state.w_bottom

    def with_trackers(self, state: TrainerState, w_top: F64Array, w_bottom: F64Array) -> TrainerState:
        return replace(state, w_top=arr(np.array(w_top, dtype=np.float64)), w_bottom=arr(np.array(w_bottom)))

    def author_track(self, ctx: Context, state: TrainerState, measured: Measured) -> TrainerState:
        scale = author_scale(measured)
        spectrum = arr(scale * np.asarray(measured.spectrum, dtype=np.float64))
        u_plus, u_minus = author_track(author_operator(measured.A_res, scale), state.w_top, state.w_bottom, spectrum)
        return replace(state, w_top=u_plus, w_bottom=u_minus)


REFERENCE_BACKEND = ReferenceBackend()


def growth_check(
    ctx: Context, state: TrainerState, probe: Probe
) -> tuple[TrainerState, CheckRecord, tuple[GrowthEvent, ...], tuple[InvariantRecord, ...]]:
    """One check of SPEC §3 on the reference engine: :func:`run_check` with :class:`ReferenceBackend`."""
    return run_check(REFERENCE_BACKEND, ctx, state, probe)


def track_on(ctx: Context, state: TrainerState, A_res: Float64[np.ndarray, "d d"]) -> Tracked[TrainerState]:
    """The reference's trackers on ``A_res`` (:meth:`ReferenceBackend.track`)."""
    n = ctx.train_cfg.tracker_steps
    Q_cap = state.growth.Q_cap
    oja = oja_track(A_res, warm_start(state.w_top, Q_cap), certified_step(A_res), n)
    w_b = warm_start(state.w_bottom, Q_cap)
    exin = mca_exin_track(A_res, w_b, certified_step(A_res, f64(w_b @ w_b)), n)
    gaps = (*tracker_gap(A_res, oja), *tracker_gap(A_res, exin))
    new = replace(state, w_top=unit_vector(oja.w), w_bottom=unit_vector(exin.w))
    return Tracked(new, gaps, lambda: (oja, exin))


def measured_removal(P_before: F64Array, P_after: F64Array) -> Callable[[F64Array, int], F64Array]:
    """A ``remove_prototype`` for D5 that returns what the trainer actually kept (so the measured ``ΔF``
    is the trainer's); it refuses to be applied to any other ``P``."""

    def removed(P: F64Array, j: int) -> F64Array:
        if P is not P_before:
            raise ValueError("remove_prototype: this measured removal applies only to the P it was taken from")
        return P_after

    return removed


def coupling_statistics(
    P: Float64[np.ndarray, "d K"], Q: Float64[np.ndarray, "n K"], attention: Mapping[int, F64Array]
) -> dict[str, Any]:
    """The coupling statistics of a check (:mod:`reference.coupling_statistics`) as CheckRecord fields:
    separation and its minimum with the masses ``n_j/n`` of ``Q``, ``‖∇_P V‖_F``, and the attention
    entropy of each head (``attention[h]`` its B×T×T attention on the probe). Both engines call this."""
    S, S_min = prototype_separation(P, arr(Q.mean(axis=0)))
    return {
        "separation": S,
        "min_separation": S_min,
        "grad_V_norm": variance_gradient_norm(P, Q),
        "attention_entropy": {h: attention_entropy(A) for h, A in sorted(attention.items())},
    }


def count_kind(events: Sequence[GrowthEvent], kind: EventKind) -> int:
    return sum(1 for e in events if e.kind is kind)


__all__ = [
    "D3_LIVE_ETA",
    "REFERENCE_BACKEND",
    "CheckState",
    "Context",
    "GrowthBackend",
    "Measured",
    "PhaseResult",
    "ReferenceBackend",
    "Tracked",
    "TrainerState",
    "add_newborn",
    "apply_event",
    "author_estimates",
    "author_g6_runs",
    "author_grow",
    "author_scale",
    "author_track_phase",
    "birth_rng",
    "calibrate",
    "check_record",
    "count_kind",
    "counterfactual_prune_checks",
    "coupling_statistics",
    "draw_newborn",
    "grow_phase",
    "growth_check",
    "growth_config_for",
    "is_author_code",
    "measured_removal",
    "newborn_growth_state",
    "newborn_head",
    "newborn_write_checks",
    "prototype_checks",
    "prototype_prune_phase",
    "prune_phase",
    "run_check",
    "static_operator_checks",
    "track_on",
    "track_phase",
    "unit_vector",
    "warm_start",
]
