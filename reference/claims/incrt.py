"""INCRT claims G1–G6 (SPEC §4, static operator). Records only until the INCRT reference lands."""

from __future__ import annotations

from reference.claims.records import Claim, Label

INCRT_CLAIMS: tuple[Claim, ...] = (
    Claim(
        "G1",
        "Finite termination",
        Label.PROVED,
        "With θ > 0, Q_cap stays orthonormal, every growth raises its rank by one, so there are at most "
        "d growth events for any sequence of operators.",
    ),
    Claim(
        "G2",
        "Spectral ordering",
        Label.PROVED,
        "For a static symmetric A, successive births occur at A's eigenvalues in non-increasing order "
        "along its eigenvectors.",
    ),
    Claim(
        "G3",
        "Minimality",
        Label.PROVED,
        "With m* = #{i : λ_i(A) > θ}, no orthonormal set of fewer than m* directions makes "
        "λ_max(Π⊥ A Π⊥) ≤ θ; the greedy rule stops with exactly m*.",
    ),
    Claim(
        "G4",
        "Uniqueness",
        Label.PROVED,
        "m* is a spectral invariant; with simple eigenvalues above θ and none equal to θ, the captured "
        "directions are unique up to sign.",
    ),
    Claim(
        "G5",
        "Pruning safety",
        Label.PROVED,
        "Removing head h changes A_res by −Π⊥ ½[C, M_a^h] Π⊥ of spectral norm ≤ G_h = ‖C M_a^h‖_F; with "
        "hysteresis a prune never re-triggers growth at the next check on the same probe.",
    ),
    Claim(
        "G6",
        "Tracker agreement",
        Label.PROVED,
        "For static A under a step-size condition, Oja/MCA estimates converge to the exact λ_max, λ_min "
        "and eigenvectors (up to sign); measured during training.",
    ),
)
