"""INCRT claims G1–G6 (SPEC §4, static operator ``A``): records, hypotheses as named predicates.

Every predicate takes the keyword inputs of its claim's invariant and ignores any others, so
``claim.hypotheses_hold(**inputs)`` accepts an invariant's inputs as well as a falsifier's (which may
carry extra keys, e.g. ``seeds``; those inputs are not all accepted by the invariant itself).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from reference._arrays import F64Array, f64
from reference.claims.records import Claim, Falsifier, Hypothesis, Label
from reference.falsify.incrt import (
    falsify_g1_theta_nonpositive,
    falsify_g4_repeated_eigenvalue,
    falsify_g5_no_hysteresis,
    falsify_g6_step_too_large,
)
from reference.incrt import (
    TrackerKind,
    TrackerResult,
    check_symmetric,
    eigenvalues_desc,
    eigh_error_bound,
    exact_extremes,
    head_strength,
    is_near_tie,
    residual_operator,
    step_size_certified,
    tracked_gap_certified,
)
from reference.invariants.incrt import (
    check_g1,
    check_g2,
    check_g3,
    check_g4,
    check_g5,
    check_g6,
    orthonormality_bound,
)

# --------------------------------------------------------------------------------------------------
# Hypotheses
# --------------------------------------------------------------------------------------------------


def theta_positive(*, theta: float, **_: Any) -> bool:
    """``θ > 0`` (finite)."""
    return bool(math.isfinite(theta) and theta > 0.0)


def _is_symmetric(A: object, sign: float = 1.0) -> bool:
    try:
        check_symmetric("A", A, sign=sign)
    except (TypeError, ValueError):
        return False
    return True


def operator_symmetric(*, A: F64Array, **_: Any) -> bool:
    """``A = Aᵀ`` (the static operator is symmetric, as every ``A_res`` is)."""
    return _is_symmetric(A)


def spectral_gap(*, A: F64Array, theta: float, **_: Any) -> bool:
    """The eigenvalues above θ are simple and none equals θ (all separated by more than ``2E(A)``,
    and no eigenvalue is a DECISION near-tie with θ)."""
    lam = eigenvalues_desc(A)
    E = eigh_error_bound(A)
    if any(is_near_tie(x, theta) or abs(x - theta) <= E for x in lam.tolist()):
        return False
    above = lam[lam > theta]
    return bool(np.all(np.abs(np.diff(lam[: above.shape[0] + 1])) > 2.0 * E)) if above.shape[0] else True


def second_moment_symmetric(*, C: F64Array, **_: Any) -> bool:
    """``C = Cᵀ``."""
    return _is_symmetric(C)


def heads_antisymmetric(*, head_operators: Sequence[F64Array], **_: Any) -> bool:
    """Every ``M_a^h = −M_a^hᵀ``."""
    return all(_is_symmetric(M, sign=-1.0) for M in head_operators)


def captured_orthonormal(*, Q_cap: F64Array, **_: Any) -> bool:
    """``Q_capᵀQ_cap = I`` within the G1 orthonormality bound (so ``Π⊥`` is a projector)."""
    d, m = Q_cap.shape
    return m == 0 or f64(np.max(np.abs(Q_cap.T @ Q_cap - np.eye(m)))) <= orthonormality_bound(d, m)


def hysteresis(
    *, C: F64Array, head_operators: Sequence[F64Array], h: int, Q_cap: F64Array, theta: float, **_: Any
) -> bool:
    """The prune of head ``h`` happens only if ``λ_max(A_res) + G_h ≤ θ`` (SPEC §3.3)."""
    M_a = np.sum(np.stack(list(head_operators)), axis=0)
    lam = exact_extremes(residual_operator(C, M_a, Q_cap)).lam_max
    return bool(lam + head_strength(C, head_operators[h]) <= theta)


def step_size(*, A: F64Array, tracker: TrackerResult, **_: Any) -> bool:
    """``α_t (λ_max − λ_min) < 2`` for every step (Oja: ``α = η``; EXIN: ``α_t = η/‖w_t‖²``), certified in
    floats with the spread raised by ``3E`` (:func:`reference.incrt.step_size_certified`)."""
    return step_size_certified(A, tracker.alphas)


def tracked_gap(*, A: F64Array, tracker: TrackerResult, **_: Any) -> bool:
    """The tracked eigenvalue is simple, certified in floats: ``λ̂_1 − λ̂_2 > 3E`` (Oja) or
    ``λ̂_{d−1} − λ̂_d > 3E`` (EXIN) (:func:`reference.incrt.tracked_gap_certified`)."""
    return tracked_gap_certified(A, tracker.kind)


def start_not_orthogonal(*, A: F64Array, tracker: TrackerResult, **_: Any) -> bool:
    """``v ᵀ w_0 ≠ 0`` for the tracked eigenvector ``v`` (true with probability 1 for random ``w_0``)."""
    ext = exact_extremes(A)
    v = ext.u_max if tracker.kind is TrackerKind.OJA else ext.u_min
    w0 = tracker.w0 / np.sqrt(tracker.w0 @ tracker.w0)
    return abs(f64(v @ w0)) > 0.0


_SYM = Hypothesis("operator_symmetric", "A is symmetric", operator_symmetric)
_THETA = Hypothesis("theta_positive", "θ > 0", theta_positive)

INCRT_CLAIMS: tuple[Claim, ...] = (
    Claim(
        "G1",
        "Finite termination",
        Label.PROVED,
        "With θ > 0, Q_cap stays orthonormal and every growth raises its rank by one, so there are at most "
        "d growth events for any sequence of operators.",
        hypotheses=(_THETA,),
        invariant=check_g1,
        sympy_steps=("G1.1", "G1.2", "G1.3"),
        falsifiers=(
            Falsifier(
                "theta_positive",
                "θ = −1/2: the top eigenvector of A_res (eigenvalue 0) lies in span(Q_cap); "
                "orthonormality breaks and growth never stops",
                falsify_g1_theta_nonpositive,
            ),
        ),
        code=(
            "reference.incrt.residual_operator",
            "reference.incrt.append_direction",
            "reference.incrt.grow_check",
            "reference.incrt.greedy_capture",
        ),
        implemented=True,
        notes="In reals θ ≥ 0 suffices; in floats θ must exceed the eigensolver error (θ = 0 fails in about half "
        "of random cases, see theta_zero_float_failures).",
        tests=(
            "test_g1_property",
            "test_g1_controller_any_operator_sequence",
            "test_g1_fires_on_planted_violation",
            "test_falsifiers_find_counterexamples",
        ),
    ),
    Claim(
        "G2",
        "Spectral ordering",
        Label.PROVED,
        "For a static symmetric A, successive births occur at A's eigenvalues λ_1 ≥ λ_2 ≥ … in non-increasing "
        "order, along its eigenvectors.",
        hypotheses=(_SYM, _THETA),
        invariant=check_g2,
        sympy_steps=("G2.1", "G2.2"),
        code=("reference.incrt.deflate", "reference.incrt.greedy_capture", "reference.incrt.exact_extremes"),
        implemented=True,
        tests=("test_g2_property", "test_g2_fires_on_planted_violation"),
    ),
    Claim(
        "G3",
        "Minimality",
        Label.PROVED,
        "With m* = #{i : λ_i(A) > θ}, no orthonormal set of fewer than m* directions makes λ_max(Π⊥ A Π⊥) ≤ θ "
        "(Cauchy interlacing); the greedy rule stops with exactly m*, so 1 + m* heads are minimal.",
        hypotheses=(_SYM, _THETA),
        invariant=check_g3,
        sympy_steps=("G3.1", "G3.2"),
        code=(
            "reference.incrt.greedy_capture",
            "reference.incrt.count_above",
            "reference.invariants.incrt.brute_force_min_residual",
        ),
        implemented=True,
        tests=(
            "test_g3_property",
            "test_g3_fires_on_planted_violation",
            "test_g3_brute_force_checks_fire_on_planted_violation",
        ),
    ),
    Claim(
        "G4",
        "Uniqueness",
        Label.PROVED,
        "m* and the birth eigenvalues are spectral invariants (same for every seed, initialisation and tracker "
        "history); with simple eigenvalues above θ and none equal to θ, the captured directions are unique up "
        "to sign. The greedy span is always the top-m* eigenspace; a sufficient m*-subspace in general is not "
        "unique.",
        hypotheses=(
            _SYM,
            _THETA,
            Hypothesis("spectral_gap", "eigenvalues above θ simple, none equal to θ", spectral_gap),
        ),
        invariant=check_g4,
        sympy_steps=("G4.1", "G4.2"),
        falsifiers=(
            Falsifier(
                "spectral_gap",
                "repeated eigenvalue 2 above θ: two valid tracker runs capture directions that "
                "differ by a rotation in the eigenspace",
                falsify_g4_repeated_eigenvalue,
            ),
        ),
        code=("reference.incrt.greedy_capture", "reference.incrt.greedy_capture_tracked"),
        implemented=True,
        tests=("test_g4_property", "test_g4_fires_on_planted_violation"),
    ),
    Claim(
        "G5",
        "Pruning safety",
        Label.PROVED,
        "Removing head h changes A_res by exactly −Π⊥ ½[C, M_a^h] Π⊥, of spectral norm ≤ G_h = ‖C M_a^h‖_F, so "
        "λ_max(A_res) moves by ≤ G_h (Weyl); with hysteresis a prune never re-triggers growth at the next check "
        "on the same probe. The output changes by exactly ΔY = A_h X W_V^h W_O^h, of row norm ≤ max_s‖x_s W_V W_O‖, "
        "and |ΔL_task| ≤ √2‖W_c‖_2 (1 + diam(P)²/(2T_P)) mean_{b,t}‖Δy_{b,t}‖.",
        hypotheses=(
            Hypothesis("second_moment_symmetric", "C is symmetric", second_moment_symmetric),
            Hypothesis("heads_antisymmetric", "every M_a^h is antisymmetric", heads_antisymmetric),
            Hypothesis("captured_orthonormal", "Q_cap is orthonormal", captured_orthonormal),
            Hypothesis("hysteresis", "prune only if λ_max(A_res) + G_h ≤ θ", hysteresis),
        ),
        invariant=check_g5,
        sympy_steps=("G5.1", "G5.2", "G5.3", "G5.4", "G5.5", "G5.6", "G5.7"),
        falsifiers=(
            Falsifier(
                "hysteresis",
                "without hysteresis a weak head is pruned and growth fires at the next check",
                falsify_g5_no_hysteresis,
            ),
        ),
        code=(
            "reference.incrt.prune_check",
            "reference.incrt.head_strength",
            "reference.incrt.commutator_form",
            "reference.incrt.head_output",
            "reference.incrt.task_loss_change_bound",
        ),
        implemented=True,
        tests=(
            "test_g5_property",
            "test_g5_output_bounds",
            "test_g5_loss_bound_is_attained_up_to_a_small_factor_on_a_one_dimensional_case",
            "test_g5_fires_on_planted_violation",
            "test_g5_norm_bound_fires_on_planted_violation",
            "test_g5_weyl_and_hysteresis_fire_on_planted_violation",
        ),
    ),
    Claim(
        "G6",
        "Tracker agreement",
        Label.PROVED,
        "For static A with a simple tracked eigenvalue and a start not orthogonal to it, normalised Oja with "
        "η(λ_max − λ_min) < 2 and MCA-EXIN with η(λ_max − λ_min) < 2‖w_0‖² converge linearly to the exact "
        "λ_max / λ_min and eigenvectors (up to sign): tan∠_t ≤ Π q(α_k) tan∠_0. During training the gap to the "
        "exact oracle is measured and reported at every check.",
        hypotheses=(
            _SYM,
            Hypothesis("step_size", "α_t (λ_max − λ_min) < 2 for every step", step_size),
            Hypothesis("tracked_gap", "the tracked eigenvalue is simple", tracked_gap),
            Hypothesis("start_not_orthogonal", "v ᵀ w_0 ≠ 0", start_not_orthogonal),
        ),
        invariant=check_g6,
        sympy_steps=("G6.1", "G6.2", "G6.3", "G6.4"),
        falsifiers=(
            Falsifier(
                "step_size",
                "normalised Oja with ηΔ = 3 on spectrum {1, 0, −1}: the top eigenvector "
                "is a repelling fixed point; the iterate does not converge to v_1 but "
                "settles on a 2-cycle at a constant angle atan(1/√5) ≈ 0.4205 rad from "
                "it (Rayleigh quotient 2/3 instead of 1)",
                falsify_g6_step_too_large,
            ),
        ),
        code=(
            "reference.incrt.oja_step",
            "reference.incrt.mca_exin_step",
            "reference.incrt.tracker_tan_bound",
            "reference.incrt.eigenvector_sin_bound",
            "reference.incrt.tracked_gap_certified",
            "reference.incrt.step_size_certified",
            "reference.incrt.tracker_gap",
            "reference.incrt.oja_step_limit",
            "reference.incrt.mca_exin_step_limit",
        ),
        implemented=True,
        notes="The label is proved for static A; on training runs the same statistic is measured.",
        tests=(
            "test_g6_property",
            "test_g6_emits_nothing_outside_its_hypotheses",
            "test_eigenvector_sin_bound_needs_a_gap_of_more_than_three_e",
            "test_g6_trackers_converge_to_the_exact_oracle",
            "test_g6_fires_on_planted_violation",
        ),
    ),
)
