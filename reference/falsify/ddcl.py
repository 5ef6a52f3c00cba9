"""Falsifiers of the DDCL claims: D3 without ``η < 1``; D4 without ``T_P < T_c`` and without ``K ≥ 2``."""

from __future__ import annotations

import numpy as np

from reference import ddcl
from reference._arrays import f64
from reference.claims.records import Counterexample
from reference.invariants.ddcl import collapsed_prototypes, d3_lyapunov


def _line_tokens() -> np.ndarray:
    """Six tokens in R² spread along the first axis (Cov has λ_max = 35/12 on e₁, 0 on e₂)."""
    return np.array([[float(t), 0.0] for t in range(-2, 4)])  # ȳ = (0.5, 0)


def d3_step_size_too_large() -> Counterexample:
    """Drop ``0 < η < 1``: with one prototype ``F = mean‖y − p‖²`` and ``p⁺ − ȳ = (1 − 2η)(p − ȳ)``, so
    ``F`` increases whenever ``|1 − 2η| > 1``, i.e. ``η > 1``. We take ``η = 1.5`` (factor −2)."""
    Y = _line_tokens()
    P = np.array([[3.0], [1.0]])
    T_P, eta = 1.0, 1.5
    F0 = ddcl.free_energy(Y, P, T_P)
    F1 = ddcl.free_energy(Y, ddcl.prototype_step(Y, P, T_P, eta), T_P)
    results = d3_lyapunov(Y=Y, P=P, T_P=T_P, eta=eta)
    lyapunov = next(r for r in results if "Lyapunov" in r.check)
    return Counterexample(
        claim_id="D3",
        hypothesis_dropped="step_size_in_unit_interval",
        inputs={"Y": Y, "P": P, "T_P": T_P, "eta": eta},
        observed=f"F went from {F0:.6g} to {F1:.6g} (increase {F1 - F0:.6g}); "
        f"Lyapunov check margin {lyapunov.margin:.3g} "
        "(the descent-lemma bound itself is tight here: F is exactly quadratic with Hessian 2I)",
        conclusion_fails=F1 > F0 and not lyapunov.holds,
    )


def _collapse_is_local_minimum(Y: np.ndarray, K: int, T_P: float) -> tuple[float, float]:
    """Smallest Hessian eigenvalue of ``F`` at collapse, and the prototypes' spread after 200 gradient steps
    (η = 1/2) from a 1e-3 split: a positive eigenvalue and a shrinking spread mean collapse is stable."""
    P0 = collapsed_prototypes(Y, K)
    lam = f64(np.linalg.eigvalsh(ddcl.hessian_free_energy(Y, P0, T_P))[0])
    rng = np.random.default_rng(0)
    P = P0 + 1e-3 * rng.standard_normal(P0.shape)
    for _ in range(200):
        P = ddcl.prototype_step(Y, P, T_P, 0.5)
    spread = f64(np.abs(P - P.mean(axis=1, keepdims=True)).max())
    return lam, spread


def d4_temperature_above_critical() -> Counterexample:
    """Drop ``T_P < T_c``: at ``T_P = 2T_c`` every Hessian eigenvalue at collapse is ≥ (2/K)(1 − 1/2) > 0,
    so collapse is a strict local minimum: a small split of the prototypes decays back to collapse."""
    Y = _line_tokens()
    K = 3
    T_c = ddcl.collapse_critical_temperatures(Y)[0]
    T_P = 2.0 * T_c
    lam, spread = _collapse_is_local_minimum(Y, K, T_P)
    return Counterexample(
        claim_id="D4",
        hypothesis_dropped="temperature_below_critical",
        inputs={"Y": Y, "K": K, "T_P": T_P},
        observed=f"T_c={T_c:.6g}, T_P={T_P:.6g}: λ_min(∇²F) at collapse = {lam:.6g} > 0; "
        f"after 200 steps from a 1e-3 split the prototype spread is {spread:.3g} (collapsed again)",
        conclusion_fails=lam > 0.0 and spread < 1e-3,
    )


def d4_single_prototype() -> Counterexample:
    """Drop ``K ≥ 2``: with one prototype the Hessian at collapse is ``2I`` at every temperature, so even far
    below ``T_c`` collapse (``p = ȳ``, the unique minimiser) is stable."""
    Y = _line_tokens()
    K = 1
    T_P = 1e-3 * ddcl.collapse_critical_temperatures(Y)[0]
    lam, spread = _collapse_is_local_minimum(Y, K, T_P)
    return Counterexample(
        claim_id="D4",
        hypothesis_dropped="at_least_two_prototypes",
        inputs={"Y": Y, "K": K, "T_P": T_P},
        observed=f"T_P={T_P:.3g} ≪ T_c: λ_min(∇²F) at collapse = {lam:.6g} (= 2), spread after descent {spread:.3g}",
        conclusion_fails=lam > 0.0 and spread < 1e-3,
    )


__all__ = [
    "d3_step_size_too_large",
    "d4_single_prototype",
    "d4_temperature_above_critical",
]
