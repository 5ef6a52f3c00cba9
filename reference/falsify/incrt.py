"""Falsifiers for the INCRT claims (SPEC §0: each hypothesis of a proved claim matters).

Each function drops exactly one hypothesis, builds inputs that violate it (and only it), runs the
reference, and reports what it *computed*: ``conclusion_fails`` is the outcome of a check, never a
constant. All inputs are deterministic (fixed seeds).
"""

from __future__ import annotations

import math

import numpy as np

from reference._arrays import F64Array, arr, f64
from reference.claims.records import Counterexample
from reference.data import planted_operator
from reference.incrt.capture import _capture_loop, greedy_capture_tracked
from reference.incrt.controller import GrowthConfig, GrowthState, HeadRecord, grow_check, prune_check
from reference.incrt.operators import (
    eigenvalues_desc,
    eigh_error_bound,
    exact_extremes,
    head_strength,
    residual_operator,
)
from reference.incrt.trackers import angle, mca_exin_track, oja_step_limit, oja_track, rayleigh, tracker_gap
from reference.invariants.incrt import check_g1


def falsify_g1_theta_nonpositive() -> Counterexample:
    """G1 without ``θ > 0``: with ``θ = −1/2`` the rule keeps "growing" along a captured direction.

    ``A`` has spectrum ``{1, −1, −1}``. After capturing ``v_1``, ``A_res`` has spectrum ``{0, −1, −1}``
    and its top eigenvector for ``0 > θ`` is ``v_1`` itself, *inside* ``Q_cap``: appending it (the rule
    of SPEC §3.2 verbatim) breaks orthonormality, leaves the rank unchanged, and ``Π⊥ = I − QQᵀ`` is
    no longer a projector, so the loop never stops (capped at ``2d`` events here).
    """
    theta = -0.5
    A = planted_operator([1.0, -1.0, -1.0], rng=np.random.default_rng(11))
    d = A.shape[0]
    run = _capture_loop(A, theta, max_events=2 * d, reorthogonalize=False)
    results = check_g1(Q_cap=run.Q_cap, ranks=run.ranks, theta=theta)
    failed = [r for r in results if not r.holds]
    gram = f64(np.max(np.abs(run.Q_cap.T @ run.Q_cap - np.eye(run.m))))
    observed = (
        f"θ={theta}, spectrum {{1, −1, −1}}: {run.m} growth events (> d={d}), ranks {list(run.ranks)}, "
        f"births {[round(b, 6) for b in run.lam_births]}, max|Q_capᵀQ_cap − I| = {gram:.3g}; "
        f"G1 checks violated: {[r.check for r in failed]}"
    )
    return Counterexample(
        claim_id="G1",
        hypothesis_dropped="theta_positive",
        inputs={"A": A, "theta": theta},
        observed=observed,
        conclusion_fails=bool(failed),
    )


def theta_zero_float_failures(n_trials: int = 200, d: int = 4, seed: int = 0) -> tuple[int, int]:
    """``θ = 0``: in reals G1 still holds (growth needs ``λ_max > 0``, so ``u₊ ⟂ Q_cap``); in floats the
    captured directions' eigenvalue 0 is computed as ``±O(u‖A‖)`` and a positive rounding error
    triggers growth along a direction in the captured subspace. Returns ``(runs with spurious growth,
    runs with more than d events)`` over random ``A`` with spectrum ``{1, −1, …}`` (``m* = 1``).
    """
    spurious = runaway = 0
    for t in range(n_trials):
        A = planted_operator([1.0] + [-1.0] * (d - 2) + [-2.0], rng=np.random.default_rng(seed + t))
        run = _capture_loop(A, 0.0, max_events=3 * d, reorthogonalize=False)
        spurious += int(run.m > 1)
        runaway += int(run.m > d)
    return spurious, runaway


def falsify_g4_repeated_eigenvalue() -> Counterexample:
    """G4 without a spectral gap: spectrum ``{2, 2, 0.5, −1}``, ``θ = 1``: two tracker runs (seeds 1, 2)
    both capture ``m* = 2`` directions at eigenvalue 2, each a genuine eigenvector, yet their first
    directions differ by a rotation inside the 2-d eigenspace. What stays unique: the count, the birth
    eigenvalues and the captured *span* (the top eigenspace).
    """
    theta = 1.0
    A = planted_operator([2.0, 2.0, 0.5, -1.0], rng=np.random.default_rng(5))
    runs = [greedy_capture_tracked(A, theta, rng=np.random.default_rng(s), n_steps=400) for s in (1, 2)]
    a, b = runs
    residuals = [
        f64(np.linalg.norm(A @ r.Q_cap[:, k] - r.lam_births[k] * r.Q_cap[:, k])) for r in runs for k in range(r.m)
    ]
    # Valid runs: each captured direction is an eigenvector as accurately as eigh itself would give.
    both_valid = a.m == b.m == 2 and max(residuals) <= eigh_error_bound(A)
    sin_first = math.sin(angle(arr(a.Q_cap[:, 0]), arr(b.Q_cap[:, 0])))
    span_gap = f64(np.linalg.norm(a.Q_cap @ a.Q_cap.T - b.Q_cap @ b.Q_cap.T, 2))
    observed = (
        f"spectrum {{2, 2, 0.5, −1}}, θ=1: both runs capture m={a.m}, {b.m} directions, births "
        f"{[round(x, 12) for x in a.lam_births]} / {[round(x, 12) for x in b.lam_births]}, max eigen-residual "
        f"{max(residuals):.2e}; sin∠ between the runs' first directions = {sin_first:.4f}; the captured spans "
        f"agree (‖Π_a − Π_b‖_2 = {span_gap:.2e})"
    )
    # "Unique up to sign" would force sin∠ = 0; 1/2 is far outside any rounding or tracker error here.
    fails = both_valid and sin_first > 0.5
    return Counterexample(
        claim_id="G4",
        hypothesis_dropped="spectral_gap",
        inputs={"A": A, "theta": theta, "seeds": (1, 2)},
        observed=observed,
        conclusion_fails=fails,
    )


def g5_oscillation_case() -> tuple[F64Array, list[F64Array], float, float]:
    """``(C, [M_a^0, M_a^1], θ, φ_g)`` with ``λ_max(A_res) = 0.998θ`` and a weak head 1 (``G_1 < φ_g``)
    whose removal lifts ``λ_max`` above θ. In d = 2, ``½[diag(c_1, c_2), aJ] = ½a(c_1 − c_2)σ_x``."""
    theta, phi_g = 1.0, 0.01
    c1, c2 = 1.0, 0.1
    J = np.array([[0.0, 1.0], [-1.0, 0.0]])
    b = -0.0099  # G_1 = |b|·‖C J‖_F = 0.0099·√1.01 ≈ 0.00995 < φ_g
    a = 0.998 * theta / (0.5 * (c1 - c2)) - b  # λ_max with both heads = ½(a + b)(c_1 − c_2) = 0.998θ
    return arr(np.diag([c1, c2])), [arr(a * J), arr(b * J)], theta, phi_g


def falsify_g5_no_hysteresis() -> Counterexample:
    """G5 without hysteresis: a prune re-triggers growth at the very next check on the same probe.

    Two heads, the second weak (``G_1 < φ_g``) but pulling ``λ_max(A_res)`` down by ``0.45|b|``. The
    controller with ``hysteresis=False`` prunes it; ``λ_max`` then exceeds θ and a head is born at
    the next check: a prune/grow oscillation. With hysteresis (``λ_max + G_1 > θ``) the prune is held.
    """
    C, Ms, theta, phi_g = g5_oscillation_case()
    d = C.shape[0]
    state = GrowthState(arr(np.zeros((d, 0))), 0, (HeadRecord(0, 0), HeadRecord(1, 0)), ())
    ops = {0: Ms[0], 1: Ms[1]}
    lam_before = exact_extremes(residual_operator(C, arr(Ms[0] + Ms[1]), state.Q_cap)).lam_max
    G1 = head_strength(C, Ms[1])
    outcomes: dict[bool, tuple[int, int]] = {}
    lam_after = lam_before
    for hysteresis in (False, True):
        cfg = GrowthConfig(theta=theta, phi_g=phi_g, T_d=0, T_prune=1, eps_K=0.0, hysteresis=hysteresis)
        s1, pruned = prune_check(state, cfg, C, ops, step=10)
        M_a = arr(np.sum(np.stack([ops[h] for h in s1.head_ids]), axis=0))
        A_res = residual_operator(C, M_a, s1.Q_cap)
        if not hysteresis:
            lam_after = exact_extremes(A_res).lam_max
        _, born = grow_check(s1, cfg, A_res, step=20, new_head_id=1 + max(state.head_ids))
        outcomes[hysteresis] = (
            sum(e.kind.value == "head_prune" for e in pruned),
            sum(e.kind.value == "birth" for e in born),
        )
    delta = -residual_operator(C, Ms[1], state.Q_cap)
    observed = (
        f"θ={theta}, φ_g={phi_g}, G_1={G1:.5f}, λ_max before={lam_before:.5f}, after removing head 1="
        f"{lam_after:.5f} (‖Δ‖_2={f64(np.linalg.norm(delta, 2)):.5f}); without hysteresis: "
        f"{outcomes[False][0]} prune then {outcomes[False][1]} birth at the next check; with hysteresis: "
        f"{outcomes[True][0]} prune, {outcomes[True][1]} birth"
    )
    fails = outcomes[False] == (1, 1)
    inputs = {"C": C, "head_operators": Ms, "h": 1, "Q_cap": state.Q_cap, "theta": theta, "phi_g": phi_g}
    return Counterexample(
        claim_id="G5", hypothesis_dropped="hysteresis", inputs=inputs, observed=observed, conclusion_fails=fails
    )


def falsify_g6_step_too_large() -> Counterexample:
    """G6 without the step-size condition: normalised Oja with ``η(λ_max − λ_min) = 3 > 2`` on spectrum
    ``{1, 0, −1}`` does not converge to ``v_1``.

    At ``w = v_1`` the ``v_3``-coordinate is multiplied by ``1 + η(λ_3 − λ_1) = −2``, so the dominant
    eigenvector is a *repelling* fixed point. What the iterate does instead (η = 3/2): it settles on a
    period-2 orbit ``(c_1, 0, ±c_3)`` in eigen-coordinates on which both coordinates change by factors
    of equal magnitude, ``1 + η(1 − ρ) = −(1 + η(−1 − ρ))``, i.e. ``ρ = 1/η = 2/3``, so
    ``c_1² = 5/6``, ``c_3² = 1/6``: the angle to ``v_1`` converges to ``atan(1/√5) ≈ 0.4205`` rad and
    the Rayleigh quotient to ``2/3`` instead of ``λ_max = 1``. The run continues 200 steps from where
    the 2000-step run ended and reports the range of the angle there; ``conclusion_fails`` is whether
    that angle stays bounded away from 0 (the conclusion "∠(w_t, v_1) → 0" fails).

    MCA-EXIN, by contrast, self-stabilises on a static ``A`` (its effective step ``η/‖w‖²`` shrinks as
    ``‖w‖`` grows), so the step-size hypothesis is sufficient but not necessary for it; reported too.
    """
    A = planted_operator([1.0, 0.0, -1.0], rng=np.random.default_rng(3))
    eta = 1.5 * oja_step_limit(A)  # η·Δ = 3
    w0 = np.random.default_rng(7).standard_normal(3)
    res = oja_track(A, arr(w0), eta, 2000)
    v = exact_extremes(A).u_max
    angles: list[float] = []
    w = res.w
    for _ in range(200):  # continue from where the run ended, recording the angle at every step
        w = oja_track(A, w, eta, 1).w
        angles.append(angle(v, w))
    gap_lam, cos = tracker_gap(A, res)
    exin = mca_exin_track(A, arr(w0), eta * f64(w0 @ w0) * 100.0, 2000)
    exin_gap, exin_cos = tracker_gap(A, exin)
    predicted = math.atan(1.0 / math.sqrt(5.0))
    observed = (
        f"spectrum {{1, 0, −1}}, η={eta:.3f} (ηΔ = 3 > 2): after 2000 Oja steps |λ̂ − λ_max| = {gap_lam:.4f}, "
        f"|cos∠(w, v_1)| = {cos:.4f}; over 200 further steps (continuing) ∠(w, v_1) ∈ "
        f"[{min(angles):.4f}, {max(angles):.4f}] rad, Rayleigh quotient {rayleigh(A, w):.4f} (predicted 2-cycle: "
        f"angle atan(1/√5) = {predicted:.4f}, ρ = 1/η = {1.0 / eta:.4f}): it does not converge to v_1. "
        f"MCA-EXIN with a 100x larger η: |λ̂ − λ_min| = {exin_gap:.2e}, |cos| = {exin_cos:.12f} "
        f"(effective step {f64(exin.alphas[0]):.3g} → {f64(exin.alphas[-1]):.3g})"
    )
    # "Converges to v_1" means ∠ → 0; an angle that stays above a tenth of a radian (with the eigenvalue
    # estimate off by more than a tenth of the spread) over 200 continued steps refutes it.
    lam = eigenvalues_desc(A)
    fails = min(angles) > 0.1 and gap_lam > 0.1 * f64(lam[0] - lam[-1])
    return Counterexample(
        claim_id="G6",
        hypothesis_dropped="step_size",
        inputs={"A": A, "tracker": res, "spectrum": lam},
        observed=observed,
        conclusion_fails=fails,
    )


__all__ = [
    "falsify_g1_theta_nonpositive",
    "falsify_g4_repeated_eigenvalue",
    "falsify_g5_no_hysteresis",
    "falsify_g6_step_too_large",
    "g5_oscillation_case",
    "theta_zero_float_failures",
]
