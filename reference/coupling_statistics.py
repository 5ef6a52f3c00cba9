"""The statistics of the coupling claims R1, R2, R4 (SPEC §4), defined once, on arrays.

These are *measurements*, not invariants: the claims they serve are labelled ``paper-claim`` or
``measured`` and nothing here can fail a run. Definitions (docs/theory.md, "Coupling statistics"):

* **Prototype separation** (R1, R4) of the active prototypes ``p_j`` (columns of ``P``) with masses
  ``w_j = n_j/n`` on the probe: ``S = Σ_{j<k} w_j w_k ‖p_j − p_k‖ / Σ_{j<k} w_j w_k`` (mass-weighted
  mean pairwise distance: idle prototypes count little) and ``S_min = min_{j<k} ‖p_j − p_k‖``. With
  one prototype there is no pair and both are undefined (``None``).
* **Variance-gradient force** (R4): ``‖∇_P V‖_F`` with ``Q`` held fixed, ``∇_P V = 2PΣ_q`` (claim D2,
  step D2.4), on the probe's assignments.
* **Attention entropy** (R2) of a head: the mean over query rows of ``−Σ_s a_ts log a_ts`` on the
  probe (0 for a one-hot row, ``log T`` for a uniform one: low is local/hard, high global/soft).
* **Temperature divergence** (R2): ``Var(log τ_h)`` over the active heads (population variance).
* **Pearson correlation** of two series of equal length ≥ 2 (``None`` when either is constant).

:func:`fixed_assignment_centroids` and :func:`squared_pair_distances` are the objects of the R1(a)
lemma (``reference.invariants.coupling``): with a fixed assignment, the centroids' squared pairwise
distances split over mutually orthogonal subspaces of the tokens.

**Stability criteria** (R3, the two-time-scales study, ``docs/studies/time-scales.md``): six pure
functions of a run record, each a :class:`StabilityCriterion` (value, bound, holds), defined there
before the study ran; :func:`stability_criteria` reads them all from a
:class:`training.record.RunRecord`. A run is stable iff every one holds. They judge a *study's*
runs, never a training run's exit code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float64

from reference._arrays import arr, check_array, check_count, check_dim, check_positive, f64
from reference.ddcl import grad_variance_fixed_Q
from reference.log import RunTrace


def prototype_separation(
    P: Float64[np.ndarray, "d K"], mass: Float64[np.ndarray, " K"]
) -> tuple[float | None, float | None]:
    """``(S, S_min)``: the mass-weighted mean pairwise distance of the prototypes and the smallest one."""
    P_ = check_array("P", P, 2)
    w = check_array("mass", mass, 1)
    check_dim("mass", w, 0, P_.shape[1], "P's prototype count K")
    if np.any(w < 0.0):
        raise ValueError("mass: prototype masses must be >= 0")
    K = P_.shape[1]
    if K < 2:
        return None, None
    diff = P_[:, :, None] - P_[:, None, :]
    dist = np.sqrt(np.sum(diff * diff, axis=0))
    iu = np.triu_indices(K, 1)
    pair_w = (w[:, None] * w[None, :])[iu]
    d = dist[iu]
    total = f64(pair_w.sum())
    S = f64(np.sum(pair_w * d) / total) if total > 0.0 else f64(d.mean())
    return S, f64(d.min())


def fixed_assignment_centroids(
    Y: Float64[np.ndarray, "n d"], Q: Float64[np.ndarray, "n K"]
) -> Float64[np.ndarray, "d K"]:
    """``P = YᵀQ N⁻¹``, ``N = diag(n_j)``, ``n_j = Σ_t q_tj``: the prototypes that minimise ``L_q`` for a
    fixed assignment ``Q`` (each ``p_j`` the ``q_·j``-weighted mean of the tokens; claim R1(a)).
    Every column sum must be positive (a prototype with no mass has no centroid)."""
    Y_ = check_array("Y", Y, 2)
    Q_ = check_array("Q", Q, 2)
    check_dim("Q", Q_, 0, Y_.shape[0], "Y's token count n")
    n_j = Q_.sum(axis=0)
    if not np.all(n_j > 0.0):
        raise ValueError(f"Q: every column must carry positive mass (column sums {n_j.tolist()})")
    return arr((Y_.T @ Q_) / n_j[None, :])


def squared_pair_distances(P: Float64[np.ndarray, "d K"]) -> Float64[np.ndarray, " pairs"]:
    """``‖p_j − p_k‖²`` for ``j < k`` in ``numpy.triu_indices`` order (the terms of claim R1(a))."""
    P_ = check_array("P", P, 2)
    iu = np.triu_indices(P_.shape[1], 1)
    diff = P_[:, iu[0]] - P_[:, iu[1]]
    return arr(np.sum(diff * diff, axis=0))


def variance_gradient_norm(P: Float64[np.ndarray, "d K"], Q: Float64[np.ndarray, "n K"]) -> float:
    """``‖∇_P V‖_F`` with ``Q`` fixed (``2PΣ_q``, :func:`reference.ddcl.grad_variance_fixed_Q`)."""
    return f64(np.linalg.norm(grad_variance_fixed_Q(P, Q)))


def attention_entropy(A: Float64[np.ndarray, "B T T"]) -> float:
    """Mean over rows of ``−Σ a log a`` (``0·log 0 = 0``) of a stack of row-stochastic attention matrices."""
    A_ = check_array("A", A, 3)
    logs = np.log(np.where(A_ > 0.0, A_, 1.0))
    return f64(-np.sum(A_ * logs, axis=-1).mean())


def log_temperature_variance(tau: Mapping[int, float]) -> float | None:
    """``Var(log τ_h)`` over the heads (population variance); ``None`` for no head."""
    if not tau:
        return None
    vals = [math.log(check_positive_tau(h, t)) for h, t in tau.items()]
    return f64(np.var(np.asarray(vals)))


def check_positive_tau(head_id: int, tau: float) -> float:
    if not (isinstance(tau, float | int) and tau > 0.0 and math.isfinite(tau)):
        raise ValueError(f"tau[{head_id}]: a head temperature must be a finite positive number, got {tau!r}")
    return float(tau)


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """The Pearson correlation of two equal-length series (``None`` if shorter than 2 or constant)."""
    if len(x) != len(y):
        raise ValueError(f"y: length {len(y)} differs from x's {len(x)}")
    if len(x) < 2:
        return None
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("x, y: the series must be finite")
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(f64(a @ a) * f64(b @ b))
    return None if den == 0.0 else f64(a @ b / den)


# --------------------------------------------------------------------------------------------------
# Stability of joint training (R3's study): criteria read from a run record
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StabilityBounds:
    """The study settings of the R3 stability criteria (``docs/studies/time-scales.md``, fixed before
    the study ran). They are a study's definitions, not floating-point tolerances."""

    windows: int = 10  # the per-step series are cut into this many consecutive windows of equal length
    max_free_energy_rise: float = 0.25  # rise_F / drop_F
    max_separation_growth: float = 100.0  # max_t S_t / S_1
    min_separation_fraction: float = 0.01  # S_min(last check) / S_1
    min_effective_prototypes: float = 1.5  # exp(entropy of the masses) at the last check
    max_task_loss_ratio: float = 1.0  # last window's mean L_task / first window's

    def __post_init__(self) -> None:
        p = "StabilityBounds."
        check_count(p + "windows", self.windows, 2)
        for name in (
            "max_free_energy_rise",
            "max_separation_growth",
            "min_separation_fraction",
            "min_effective_prototypes",
            "max_task_loss_ratio",
        ):
            check_positive(p + name, getattr(self, name))


STABILITY_BOUNDS = StabilityBounds()


@dataclass(frozen=True)
class StabilityCriterion:
    """One criterion on one run: ``holds`` iff ``value ≤ bound`` (``upper``) or ``value ≥ bound``
    (not ``upper``); a NaN value never holds."""

    name: str
    value: float
    bound: float
    upper: bool

    @property
    def holds(self) -> bool:
        return self.value <= self.bound if self.upper else self.value >= self.bound


# The criteria in the order stability_criteria returns them (the study's tables use this order).
STABILITY_CRITERIA: tuple[str, ...] = (
    "free_energy_descent",
    "separation_bounded",
    "prototypes_distinct",
    "mass_spread",
    "finite_losses",
    "task_loss_bounded",
)


def windowed_means(series: Sequence[float], windows: int) -> tuple[float, ...]:
    """Means of ``windows`` consecutive, (nearly) equal-length pieces (``numpy.array_split``)."""
    check_count("windows", windows, 1)
    if len(series) < windows:
        raise ValueError(f"series: needs at least windows={windows} values, got {len(series)}")
    return tuple(f64(np.mean(w)) for w in np.array_split(np.asarray(series, dtype=np.float64), windows))


def free_energy_descent(
    F: Sequence[float],
    *,
    windows: int = STABILITY_BOUNDS.windows,
    max_rise: float = STABILITY_BOUNDS.max_free_energy_rise,
) -> StabilityCriterion:
    """``rise_F / drop_F`` over the windowed means ``m_i`` of ``F`` (D3's Lyapunov function):
    ``rise_F = max_{i<j}(m_j − m_i)``, ``drop_F = m_1 − min_i m_i``; ∞ when ``F`` rose but never fell
    below its start, 0 when it neither rose nor fell."""
    m = np.asarray(windowed_means(F, windows))
    rise = f64(np.max(m[1:] - np.minimum.accumulate(m)[:-1]))  # best later-minus-earlier difference
    drop = f64(m[0] - np.min(m))
    if not (math.isfinite(rise) and math.isfinite(drop)):
        value = math.nan
    elif drop > 0.0:
        value = max(rise, 0.0) / drop
    else:
        value = math.inf if rise > 0.0 else 0.0
    return StabilityCriterion("free_energy_descent", value, max_rise, upper=True)


def separation_bounded(
    separations: Sequence[float | None], *, max_growth: float = STABILITY_BOUNDS.max_separation_growth
) -> StabilityCriterion:
    """``max_t S_t / S_1`` over the checks (``None``: one prototype, no pair, skipped); ∞ when ``S_1``
    is undefined or 0, NaN when some ``S_t`` is not finite."""
    if not separations:
        raise ValueError("separations: needs at least one check")
    first = separations[0]
    defined = [s for s in separations if s is not None]
    if any(not math.isfinite(s) for s in defined):
        value = math.nan
    elif first is None or first <= 0.0:
        value = math.inf
    else:
        value = max(defined) / first
    return StabilityCriterion("separation_bounded", value, max_growth, upper=True)


def prototypes_distinct(
    first_separation: float | None,
    last_min_separation: float | None,
    *,
    min_fraction: float = STABILITY_BOUNDS.min_separation_fraction,
) -> StabilityCriterion:
    """``S_min / S_1`` at the last check: 0 when fewer than two prototypes are left (``None``), NaN when
    ``S_1`` is undefined, 0 or not finite."""
    if first_separation is None or not (math.isfinite(first_separation) and first_separation > 0.0):
        value = math.nan
    elif last_min_separation is None:
        value = 0.0
    else:
        value = last_min_separation / first_separation
    return StabilityCriterion("prototypes_distinct", value, min_fraction, upper=False)


def effective_prototype_count(mass: Mapping[int, float]) -> float:
    """``exp(−Σ_j w_j log w_j)`` of the prototype masses ``w_j = n_j/n`` (``0 log 0 = 0``): 1 when every
    token sits on one prototype, ``K`` when the masses are uniform."""
    w = np.asarray(list(mass.values()), dtype=np.float64)
    if w.size == 0:
        raise ValueError("mass: needs at least one prototype")
    if not (np.all(np.isfinite(w)) and np.all(w >= 0.0)):
        raise ValueError(f"mass: prototype masses must be finite and >= 0, got {w.tolist()}")
    nz = w[w > 0.0]
    return f64(np.exp(-np.sum(nz * np.log(nz))))


def mass_spread(
    mass: Mapping[int, float], *, min_effective: float = STABILITY_BOUNDS.min_effective_prototypes
) -> StabilityCriterion:
    """:func:`effective_prototype_count` of the last check's masses, against ``min_effective``."""
    return StabilityCriterion("mass_spread", effective_prototype_count(mass), min_effective, upper=False)


def finite_losses(L: Sequence[float], L_task: Sequence[float]) -> StabilityCriterion:
    """The number of non-finite values of ``L`` and ``L_task`` over the steps (must be 0)."""
    bad = int(np.sum(~np.isfinite(np.asarray(L, dtype=np.float64))))
    bad += int(np.sum(~np.isfinite(np.asarray(L_task, dtype=np.float64))))
    return StabilityCriterion("finite_losses", float(bad), 0.0, upper=True)


def task_loss_bounded(
    L_task: Sequence[float],
    *,
    windows: int = STABILITY_BOUNDS.windows,
    max_ratio: float = STABILITY_BOUNDS.max_task_loss_ratio,
) -> StabilityCriterion:
    """``m_W(L_task) / m_1(L_task)``: the last window's mean task loss over the first's (NaN if either
    is not finite or the first is 0)."""
    m = windowed_means(L_task, windows)
    first, last = m[0], m[-1]
    ok = math.isfinite(first) and math.isfinite(last) and first > 0.0
    return StabilityCriterion("task_loss_bounded", last / first if ok else math.nan, max_ratio, upper=True)


def stability_criteria(record: RunTrace, bounds: StabilityBounds = STABILITY_BOUNDS) -> tuple[StabilityCriterion, ...]:
    """The six criteria of :data:`STABILITY_CRITERIA` on ``record`` (its per-step losses and its checks);
    the run is stable iff every one holds."""
    if not record.checks:
        raise ValueError("record: has no growth check; the separation criteria need at least one")
    first, last = record.checks[0], record.checks[-1]
    losses = record.losses
    return (
        free_energy_descent(losses.F, windows=bounds.windows, max_rise=bounds.max_free_energy_rise),
        separation_bounded([c.separation for c in record.checks], max_growth=bounds.max_separation_growth),
        prototypes_distinct(first.separation, last.min_separation, min_fraction=bounds.min_separation_fraction),
        mass_spread(last.mass, min_effective=bounds.min_effective_prototypes),
        finite_losses(losses.L, losses.L_task),
        task_loss_bounded(losses.L_task, windows=bounds.windows, max_ratio=bounds.max_task_loss_ratio),
    )


__all__ = [
    "STABILITY_BOUNDS",
    "STABILITY_CRITERIA",
    "StabilityBounds",
    "StabilityCriterion",
    "attention_entropy",
    "check_positive_tau",
    "effective_prototype_count",
    "finite_losses",
    "fixed_assignment_centroids",
    "free_energy_descent",
    "log_temperature_variance",
    "mass_spread",
    "pearson",
    "prototype_separation",
    "prototypes_distinct",
    "separation_bounded",
    "squared_pair_distances",
    "stability_criteria",
    "task_loss_bounded",
    "variance_gradient_norm",
    "windowed_means",
]
