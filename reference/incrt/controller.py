"""The growth controller (SPEC §3.2–§3.5): threshold calibration, frozen config and state, pure decisions.

Everything here works on arrays, never on a model object: the trainer's growth phases glue this module
to the model. Decisions (grow, prune) are pure functions of a frozen :class:`GrowthConfig` and a frozen
:class:`GrowthState`; they return the new state and the :class:`GrowthEvent` records. Decisions whose
margin to the threshold is within ``tolerance(float64, DECISION)`` are *also* reported as near-ties
(SPEC §6); the reference still decides them by the exact comparison of SPEC §3.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal, TypeAlias, get_args

import numpy as np
from jaxtyping import Float64

from reference._arrays import F64Array, arr, check_array, check_count, check_dim, check_positive, check_real, f64
from reference.incrt.capture import append_direction
from reference.incrt.operators import (
    check_symmetric,
    check_theta,
    check_theta_resolvable,
    exact_extremes,
    frobenius,
    head_strength,
    is_near_tie,
    residual_operator,
)
from reference.tolerances import CheckKind, tolerance


def calibrate_thresholds(operators: Sequence[Float64[np.ndarray, "d d"]], c_theta: float = 0.1) -> tuple[float, float]:
    """``(θ, φ_g) = (c_θ · median_i ‖A_res^{(i)}‖_F, 0.01 θ)`` over calibration probes' residual operators."""
    if len(operators) == 0:
        raise ValueError("operators: expected at least one calibration operator A_res, got none")
    c = check_positive("c_theta", c_theta)
    norms = [frobenius(check_symmetric(f"operators[{i}]", A)) for i, A in enumerate(operators)]
    theta = calibrated_theta(norms, c)
    if not theta > 0.0:
        raise ValueError("operators: the median ‖A_res‖_F is 0, so θ would be 0 (G1 needs θ > 0); give θ explicitly")
    return theta, 0.01 * theta


def calibrated_theta(norms: Sequence[float], c_theta: float) -> float:
    """``θ = c_θ · median_i ‖A_res^{(i)}‖_F`` from the calibration norms (the one formula: the
    calibration and the record loader's check of it both use this)."""
    return c_theta * f64(np.median(np.asarray(norms, dtype=np.float64)))


# Named variants of the growth rule (docs/studies/planted-heads.md §2.2); none of them is the paper's rule,
# which is the empty tuple. Each changes one thing:
#   birth_along_u_plus  a newborn's queries read only the captured direction u₊ (the birth, growth_phases)
#   prune_at_theta      φ_g = θ instead of 0.01 θ (the calibration, growth_phases.calibrate)
#   newborn_margin      grow only when λ_max(A_res) > θ + Σ G_h^birth of the heads born so far (growth_threshold)
#   author_code         the rule as its author coded it (reference.incrt.author_code; §2.6): births decided by
#                       one coupled Oja / MCA-EXIN step per check, adaptive dwell, the author's pruning. Alone only.
GrowthVariant: TypeAlias = Literal["birth_along_u_plus", "prune_at_theta", "newborn_margin", "author_code"]
GROWTH_VARIANTS: tuple[GrowthVariant, ...] = get_args(GrowthVariant)


def check_growth_variants(name: str, variants: object) -> tuple[GrowthVariant, ...]:
    """Raise unless ``variants`` is a tuple of distinct names from :data:`GROWTH_VARIANTS`."""
    if not isinstance(variants, tuple):
        raise TypeError(
            f"{name}: expected a tuple of variant names {list(GROWTH_VARIANTS)}, got {type(variants).__name__}"
        )
    unknown = [v for v in variants if v not in GROWTH_VARIANTS]
    if unknown:
        raise ValueError(f"{name}: unknown growth variant(s) {unknown}; the variants are {list(GROWTH_VARIANTS)}")
    if len(set(variants)) != len(variants):
        raise ValueError(f"{name}: each variant at most once, got {list(variants)}")
    if "author_code" in variants and len(variants) > 1:
        raise ValueError(
            f"{name}: 'author_code' replaces the whole rule (trackers, condition, dwell, pruning) and combines "
            f"with no other variant, got {list(variants)}"
        )
    return variants


def check_growth_settings(
    prefix: str, *, phi_g: object, T_d: object, T_prune: object, eps_K: object
) -> tuple[float, int, int, float]:
    """Validate the growth rule's settings other than θ; the one check shared by :class:`GrowthConfig`
    and the trainer's configuration (``prefix`` names the owner in the messages)."""
    phi = check_real(prefix + "phi_g", phi_g)
    if phi < 0.0:
        raise ValueError(f"{prefix}phi_g: must be >= 0, got {phi!r}")
    eps = check_real(prefix + "eps_K", eps_K)
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"{prefix}eps_K: must lie in [0, 1), got {eps!r}")
    return phi, check_count(prefix + "T_d", T_d, 0), check_count(prefix + "T_prune", T_prune, 1), eps


@dataclass(frozen=True)
class GrowthConfig:
    """Thresholds of the growth rule (SPEC §3). Build it with :func:`calibrate_thresholds` for the
    default calibration of SPEC §3.4, or give every threshold explicitly."""

    theta: float  # growth threshold θ > 0 (hypothesis of G1–G4): grow when λ_max(A_res) > θ
    phi_g: float  # pruning threshold φ_g ≥ 0: a head is weak while G_h = ‖C M_a^h‖_F < φ_g
    T_d: int  # dwell time (steps) ≥ 0: no birth sooner after the last one; no prune of a younger head
    T_prune: int  # patience (checks) ≥ 1: consecutive weak / low-mass checks before a prune
    eps_K: float  # prototype mass floor ε_K ∈ [0, 1): a prototype is idle while n_j/n < ε_K
    min_heads: int = 1  # heads never pruned below this count
    min_prototypes: int = 1  # prototypes never pruned below this count
    # False drops the prune condition λ_max(A_res) + G_h ≤ θ; it exists only so that the G5 falsifier
    # can show what goes wrong without it.
    hysteresis: bool = True
    variants: tuple[GrowthVariant, ...] = ()  # named variants of the rule; () is the paper's rule

    def __post_init__(self) -> None:
        p = "GrowthConfig."
        check_growth_variants(p + "variants", self.variants)
        check_theta(p + "theta", self.theta)
        check_growth_settings(p, phi_g=self.phi_g, T_d=self.T_d, T_prune=self.T_prune, eps_K=self.eps_K)
        check_count(p + "min_heads", self.min_heads, 0)
        check_count(p + "min_prototypes", self.min_prototypes, 1)
        if not isinstance(self.hysteresis, bool):
            raise TypeError(f"{p}hysteresis: expected a bool, got {type(self.hysteresis).__name__}")


@dataclass(frozen=True)
class HeadRecord:
    """An active head: id, the step it was born at, consecutive checks with ``G_h < φ_g``, and (only
    under the ``newborn_margin`` variant, else 0) ``G_h^birth``, its strength at birth."""

    head_id: int
    birth_step: int
    below_count: int = 0
    newborn_strength: float = 0.0


@dataclass(frozen=True)
class PrototypeRecord:
    """An active prototype: id and consecutive checks with mass ``n_j/n < ε_K``."""

    prototype_id: int
    low_mass_count: int = 0


@dataclass(frozen=True, eq=False)
class GrowthState:
    """Everything the controller remembers between checks. ``Q_cap`` is d×m, orthonormal (G1)."""

    Q_cap: Float64[np.ndarray, "d m"]
    last_growth_step: int
    heads: tuple[HeadRecord, ...]
    prototypes: tuple[PrototypeRecord, ...]

    def __post_init__(self) -> None:
        Q = check_array("Q_cap", self.Q_cap, 2, allow_empty=True)
        if Q.shape[1] > Q.shape[0]:
            raise ValueError(f"Q_cap: at most d = {Q.shape[0]} directions, got {Q.shape[1]}")
        ids = [h.head_id for h in self.heads]
        if len(set(ids)) != len(ids):
            raise ValueError(f"heads: ids must be distinct, got {ids}")
        pids = [p.prototype_id for p in self.prototypes]
        if len(set(pids)) != len(pids):
            raise ValueError(f"prototypes: ids must be distinct, got {pids}")

    @property
    def d(self) -> int:
        return int(self.Q_cap.shape[0])

    @property
    def m(self) -> int:
        return int(self.Q_cap.shape[1])

    @property
    def head_ids(self) -> tuple[int, ...]:
        return tuple(h.head_id for h in self.heads)

    @property
    def prototype_ids(self) -> tuple[int, ...]:
        return tuple(p.prototype_id for p in self.prototypes)


def initial_state(d: int, K_max: int, step: int = 0) -> GrowthState:
    """One head (id 0, born at ``step``), nothing captured, prototypes ``0..K_max−1``.

    The initial head counts as a growth for the dwell timer (``last_growth_step = step``).
    """
    d_ = check_count("d", d, 1)
    K = check_count("K_max", K_max, 1)
    s = check_count("step", step, 0)
    return GrowthState(
        Q_cap=arr(np.zeros((d_, 0))),
        last_growth_step=s,
        heads=(HeadRecord(0, s),),
        prototypes=tuple(PrototypeRecord(j) for j in range(K)),
    )


class EventKind(StrEnum):
    BIRTH = "birth"
    HEAD_PRUNE = "head_prune"
    PROTOTYPE_PRUNE = "prototype_prune"
    NEAR_TIE = "near_tie"


@dataclass(frozen=True, eq=False)
class GrowthEvent:
    """One record of the architecture's history.

    ``statistic`` vs ``threshold`` is the comparison that decided (``λ_max`` vs ``θ`` for births,
    ``G_h`` vs ``φ_g`` for head prunes, ``n_j/n`` vs ``ε_K`` for prototype prunes); ``margin`` is
    signed so that positive means "decided with room" (``λ_max − θ``, ``φ_g − G_h``, ``ε_K − n_j/n``).
    ``decision`` names the comparison (for near-ties: ``grow``, ``head_prune``, ``hysteresis``,
    ``prototype_prune``). Births carry ``u_plus`` and ``lam_birth``; head prunes carry ``lam_max``
    (the hysteresis statistic ``λ_max(A_res)`` before removal).
    """

    step: int
    kind: EventKind
    statistic: float
    threshold: float
    margin: float
    decision: str
    head_id: int | None = None
    prototype_id: int | None = None
    u_plus: Float64[np.ndarray, " d"] | None = None
    lam_birth: float | None = None
    lam_max: float | None = None


def _near_tie_event(
    step: int,
    decision: str,
    statistic: float,
    threshold: float,
    margin: float,
    *,
    head_id: int | None = None,
    prototype_id: int | None = None,
) -> GrowthEvent:
    return GrowthEvent(
        step, EventKind.NEAR_TIE, statistic, threshold, margin, decision, head_id=head_id, prototype_id=prototype_id
    )


def _check_top(top: object, d: int) -> tuple[float, F64Array]:
    """Validate a tracker-supplied top eigenpair ``top = (λ̂, û)`` for :func:`grow_check`."""
    if not isinstance(top, tuple) or len(top) != 2:
        raise TypeError(f"top: expected a pair (λ̂, û), got {type(top).__name__}")
    lam_hat, u_hat = top
    if isinstance(lam_hat, bool) or not isinstance(lam_hat, (int, float, np.floating, np.integer)):
        raise TypeError(f"top: λ̂ = top[0] must be a real number, got {type(lam_hat).__name__}")
    lam = float(lam_hat)
    if not math.isfinite(lam):
        raise ValueError(
            f"top: λ̂ = top[0] must be finite, got {lam!r} (a NaN/inf eigenvalue estimate is a "
            "tracker failure, not a decision)"
        )
    try:
        u = check_array("top[1]", u_hat, 1)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"top: û = top[1] is invalid: {exc}") from None
    check_dim("top[1]", u, 0, d, "the model width d (state.Q_cap)")
    if frobenius(u) == 0.0:
        raise ValueError("top: û = top[1] must be non-zero")
    return lam, u


def grow_check(
    state: GrowthState,
    config: GrowthConfig,
    A_res: Float64[np.ndarray, "d d"],
    step: int,
    *,
    new_head_id: int,
    top: tuple[float, Float64[np.ndarray, " d"]] | None = None,
) -> tuple[GrowthState, tuple[GrowthEvent, ...]]:
    """SPEC §3.2 on an operator: :func:`grow_decision` on the top eigenpair of ``A_res``.

    ``top = (λ̂, û)`` lets a tracker supply the top eigenpair instead; by default the exact oracle is
    used."""
    A = check_symmetric("A_res", A_res)
    check_dim("A_res", A, 0, state.d, "state.Q_cap's width d")
    check_theta_resolvable("config.theta", config.theta, A)  # θ the oracle cannot resolve: refused
    if top is None:
        ext = exact_extremes(A)
        top = (ext.lam_max, ext.u_max)
    return grow_decision(state, config, top, step, new_head_id=new_head_id)


def growth_threshold(state: GrowthState, config: GrowthConfig) -> float:
    """The threshold a birth must exceed: ``θ`` (the paper's rule), or under ``newborn_margin``
    ``θ + Σ_h G_h^birth`` over the active heads (each born head's strength ``‖C M_a^h‖_F`` at its
    birth; head 0 contributes 0). By Weyl and G5's bound, removing those initial terms from ``M_a``
    would move ``λ_max(A_res)`` by at most that sum, so a crossing of the raised threshold is not
    explained by the newborns' random initial operators alone (on the birth checks' ``C``)."""
    if "newborn_margin" not in config.variants:
        return config.theta
    return config.theta + math.fsum(h.newborn_strength for h in state.heads)


def record_newborn_strength(state: GrowthState, head_id: int, strength: float) -> GrowthState:
    """``state`` with head ``head_id``'s ``G_h^birth = strength`` (``newborn_margin``; set once, at its birth)."""
    g = check_real("strength", strength)
    if g < 0.0:
        raise ValueError(f"strength: G_h = ‖C M_a^h‖_F is a norm, >= 0, got {g!r}")
    if head_id not in state.head_ids:
        raise ValueError(f"head_id: {head_id} is not an active head {state.head_ids}")
    heads = tuple(replace(h, newborn_strength=g) if h.head_id == head_id else h for h in state.heads)
    return replace(state, heads=heads)


def grow_decision(
    state: GrowthState,
    config: GrowthConfig,
    top: tuple[float, Float64[np.ndarray, " d"]],
    step: int,
    *,
    new_head_id: int,
) -> tuple[GrowthState, tuple[GrowthEvent, ...]]:
    """SPEC §3.2's rule as a pure function of the statistic ``top = (λ_max(A_res), u₊)``: grow when
    ``λ_max > θ`` and ``step − last_growth_step ≥ T_d`` (and fewer than ``d`` directions are captured).

    Both engines decide through this one function (the accelerated engine computes ``top`` on its
    device). ``new_head_id`` is the id the model will give the new head (the model is the one
    allocator of head ids, e.g. ``ModelParams.next_head_id``); it must not name an active head.
    ``λ_max`` must be a finite real and ``u₊`` a finite, non-zero float64 vector of length d (anything
    else raises, since a NaN ``λ_max`` would silently mean "no growth").
    On growth ``u₊`` is appended to ``Q_cap`` (:func:`append_direction`) and a birth event naming
    ``new_head_id`` is returned. At most one birth per check.
    """
    lam, u = _check_top(top, state.d)
    s = check_count("step", step, 0)
    hid = check_count("new_head_id", new_head_id, 0)
    if hid in state.head_ids:
        raise ValueError(f"new_head_id: {hid} names an active head {state.head_ids}")
    if s < state.last_growth_step:
        raise ValueError(f"step: {s} is before the last growth at {state.last_growth_step}")
    events: list[GrowthEvent] = []
    theta = growth_threshold(state, config)
    margin = lam - theta
    if is_near_tie(lam, theta):
        events.append(_near_tie_event(s, "grow", lam, theta, margin))
    if lam > theta and s - state.last_growth_step >= config.T_d and state.m < state.d:
        Q = append_direction(state.Q_cap, u)
        u_new = arr(Q[:, -1].copy())
        events.append(
            GrowthEvent(s, EventKind.BIRTH, lam, theta, margin, "grow", head_id=hid, u_plus=u_new, lam_birth=lam)
        )
        state = replace(
            state,
            Q_cap=Q,
            last_growth_step=s,
            heads=(*state.heads, HeadRecord(hid, s)),
        )
    return state, tuple(events)


def prune_check(
    state: GrowthState,
    config: GrowthConfig,
    C: Float64[np.ndarray, "d d"],
    head_operators: Mapping[int, Float64[np.ndarray, "d d"]],
    step: int,
) -> tuple[GrowthState, tuple[GrowthEvent, ...]]:
    """SPEC §3.3 on operators: :func:`prune_decision` on :func:`prune_statistics`."""
    strengths, lam_max_of = prune_statistics(state, C, head_operators)
    return prune_decision(state, config, strengths, lam_max_of, step)


def prune_statistics(
    state: GrowthState, C: Float64[np.ndarray, "d d"], head_operators: Mapping[int, Float64[np.ndarray, "d d"]]
) -> tuple[dict[int, float], Callable[[tuple[int, ...]], float]]:
    """What :func:`prune_decision` reads, by the exact oracle: ``G_h = ‖C M_a^h‖_F`` of every active
    head and ``λ_max(A_res)`` of a set of heads (on ``state.Q_cap``).

    ``head_operators`` maps every active head id to its ``M_a^h``."""
    C_ = check_symmetric("C", C)
    check_dim("C", C_, 0, state.d, "state.Q_cap's width d")
    if set(head_operators) != set(state.head_ids):
        raise ValueError(
            f"head_operators: keys must be the active head ids {sorted(state.head_ids)}, got {sorted(head_operators)}"
        )
    Ms = {h: check_symmetric(f"head_operators[{h}]", M, sign=-1.0) for h, M in head_operators.items()}
    for h, M in Ms.items():
        check_dim(f"head_operators[{h}]", M, 0, state.d, "the model width d")

    def lam_max_of(heads: Sequence[int]) -> float:
        M_a = arr(np.sum(np.stack([Ms[h] for h in heads]), axis=0))
        return exact_extremes(residual_operator(C_, M_a, state.Q_cap)).lam_max

    strengths = {h: head_strength(C_, M) for h, M in Ms.items()}
    return strengths, lam_max_of


def prune_decision(
    state: GrowthState,
    config: GrowthConfig,
    strengths: Mapping[int, float],
    lam_max_of: Callable[[tuple[int, ...]], float],
    step: int,
) -> tuple[GrowthState, tuple[GrowthEvent, ...]]:
    """SPEC §3.3's rule as a pure function of the statistics: prune head ``h`` after ``T_prune``
    consecutive checks with ``G_h < φ_g`` (``strengths[h] = G_h = ‖C M_a^h‖_F``).

    A head is eligible once it is at least ``T_d`` steps old; eligible heads are tried smallest ``G_h``
    first, and each is removed only if ``λ_max(A_res) + G_h ≤ θ``, where ``lam_max_of(heads)`` is
    ``λ_max`` of ``A_res`` formed from the heads still present (hysteresis; so by G5 the next check on
    the same probe cannot grow). ``Q_cap`` is unchanged. At least ``config.min_heads`` heads remain.
    Both engines decide through this one function.
    """
    s = check_count("step", step, 0)
    if set(strengths) != set(state.head_ids):
        raise ValueError(
            f"strengths: keys must be the active head ids {sorted(state.head_ids)}, got {sorted(strengths)}"
        )
    G = {h: check_real(f"strengths[{h}]", g) for h, g in strengths.items()}
    events: list[GrowthEvent] = []
    heads: list[HeadRecord] = []
    for rec in state.heads:
        g = G[rec.head_id]
        if is_near_tie(g, config.phi_g):
            events.append(_near_tie_event(s, "head_prune", g, config.phi_g, config.phi_g - g, head_id=rec.head_id))
        heads.append(replace(rec, below_count=rec.below_count + 1 if g < config.phi_g else 0))
    eligible = sorted(
        (r for r in heads if r.below_count >= config.T_prune and s - r.birth_step >= config.T_d),
        key=lambda r: (G[r.head_id], r.head_id),
    )
    for rec in eligible:
        if len(heads) <= config.min_heads:
            break
        g = G[rec.head_id]
        lam = check_real("lam_max_of(...)", lam_max_of(tuple(r.head_id for r in heads)))
        if config.hysteresis:
            if is_near_tie(lam + g, config.theta):
                events.append(
                    _near_tie_event(s, "hysteresis", lam + g, config.theta, config.theta - lam - g, head_id=rec.head_id)
                )
            if not lam + g <= config.theta:
                continue
        heads = [r for r in heads if r.head_id != rec.head_id]
        events.append(
            GrowthEvent(
                s,
                EventKind.HEAD_PRUNE,
                g,
                config.phi_g,
                config.phi_g - g,
                "head_prune",
                head_id=rec.head_id,
                lam_max=lam,
            )
        )
    return replace(state, heads=tuple(heads)), tuple(events)


def mass_slack(K: int) -> float:
    """How far outside ``[0, 1]`` a mass ``n_j/n`` of ``K`` prototypes may lie by rounding alone: each is a
    mean of softmax entries, each in ``[0, 1]`` up to the softmax's own rounding, which the STOCHASTIC
    tolerance (per unit of ``K``) bounds."""
    return tolerance("float64", CheckKind.STOCHASTIC).atol * K


def prototype_prune_check(
    state: GrowthState, config: GrowthConfig, mass: Float64[np.ndarray, " K"], step: int
) -> tuple[GrowthState, tuple[GrowthEvent, ...]]:
    """SPEC §3.5: remove a prototype whose mass ``n_j/n`` stayed below ``ε_K`` for ``T_prune`` checks.

    ``mass[i]`` belongs to ``state.prototypes[i]``. Smallest mass first; at least
    ``config.min_prototypes`` remain (claim D5 bounds the effect of each removal on ``F``).
    """
    m_ = check_array("mass", mass, 1)
    K = len(state.prototypes)
    check_dim("mass", m_, 0, K, "the number of active prototypes")
    # within the rounding slack a mass is used as given (never clipped); beyond it the input is wrong
    slack = mass_slack(K)
    lo, hi = f64(m_.min()), f64(m_.max())
    if lo < -slack or hi > 1.0 + slack:
        raise ValueError(
            f"mass: entries n_j/n must lie in [0, 1] (within {slack:.1e}, the STOCHASTIC tolerance for "
            f"K = {K}), got min {lo!r}, max {hi!r}"
        )
    s = check_count("step", step, 0)
    events: list[GrowthEvent] = []
    protos: list[PrototypeRecord] = []
    masses: dict[int, float] = {}
    for rec, mj in zip(state.prototypes, m_.tolist(), strict=True):
        masses[rec.prototype_id] = mj
        if is_near_tie(mj, config.eps_K):
            events.append(
                _near_tie_event(
                    s, "prototype_prune", mj, config.eps_K, config.eps_K - mj, prototype_id=rec.prototype_id
                )
            )
        protos.append(replace(rec, low_mass_count=rec.low_mass_count + 1 if mj < config.eps_K else 0))
    eligible = sorted(
        (r for r in protos if r.low_mass_count >= config.T_prune),
        key=lambda r: (masses[r.prototype_id], r.prototype_id),
    )
    for rec in eligible:
        if len(protos) <= config.min_prototypes:
            break
        mj = masses[rec.prototype_id]
        protos = [r for r in protos if r.prototype_id != rec.prototype_id]
        events.append(
            GrowthEvent(
                s,
                EventKind.PROTOTYPE_PRUNE,
                mj,
                config.eps_K,
                config.eps_K - mj,
                "prototype_prune",
                prototype_id=rec.prototype_id,
            )
        )
    return replace(state, prototypes=tuple(protos)), tuple(events)


__all__ = [
    "GROWTH_VARIANTS",
    "EventKind",
    "GrowthConfig",
    "GrowthEvent",
    "GrowthState",
    "GrowthVariant",
    "HeadRecord",
    "PrototypeRecord",
    "calibrate_thresholds",
    "calibrated_theta",
    "check_growth_settings",
    "check_growth_variants",
    "grow_check",
    "grow_decision",
    "growth_threshold",
    "initial_state",
    "mass_slack",
    "prototype_prune_check",
    "prune_check",
    "prune_decision",
    "prune_statistics",
    "record_newborn_strength",
]
