"""Falsifiers and conclusion predicates of the INCRT claims G1–G6 (SPEC §0: each hypothesis of a proved
claim matters, or the registry says why it cannot be shown to).

Each falsifier drops exactly one hypothesis, builds inputs that violate it (and only it), runs the
reference, and reports what it *computed*; ``conclusion_fails`` is ``not`` the claim's conclusion
predicate on those inputs, never a constant. All inputs are deterministic (fixed seeds).

Conclusion predicates (``g1_conclusion`` … ``g6_conclusion``): on the inputs the reference accepts (a
symmetric operator, ``θ > 0``), the claim's invariant — the code the trainer calls — plus, where the
invariant is silent outside a hypothesis, the part of the conclusion it does not check (G4: directions
equal up to sign without a certificate; G5: no growth at the next check; G6: convergence of a run the
invariant gives no bound for). The reference refuses a non-symmetric operator and ``θ ≤ 0`` by raising;
there the predicate evaluates the statement directly with a general eigensolver (``numpy.linalg.eig``),
reading "``λ_max``" as the largest real part and requiring the eigenvalues the statement names to be
real (it raises where they are not: the statement is then undefined).

The hypothesis predicates ``*_any_operator`` extend G5's and G6's predicates to non-symmetric inputs
(the reference's raise there), so that a falsifier dropping symmetry can show the other hypotheses hold.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from reference._arrays import F64Array, arr, f64
from reference.claims.records import Counterexample, conclusion_from_invariant
from reference.incrt.capture import CaptureResult, _capture_loop, greedy_capture_tracked, numerical_rank
from reference.incrt.controller import (
    EventKind,
    GrowthConfig,
    GrowthState,
    HeadRecord,
    grow_check,
    prune_check,
)
from reference.incrt.operators import (
    eigenvalues_desc,
    eigh_error_bound,
    exact_extremes,
    fix_sign,
    frobenius,
    head_strength,
    is_near_tie,
    is_symmetric,
    planted_operator,
    residual_operator,
)
from reference.incrt.trackers import (
    TrackerKind,
    TrackerResult,
    angle,
    certified_step,
    mca_exin_track,
    oja_step_limit,
    oja_track,
    rayleigh,
    tracker_gap,
)
from reference.invariants import incrt as inv
from reference.invariants import pruning as prune

# Direct evaluations outside the reference's domain: relative tolerance on eigen-residuals and
# eigenvalues (general eig on the 2×2 and 3×3 inputs used here is accurate to ~1e-15), the angle below
# which a direction counts as "equal up to sign" where no Davis–Kahan certificate exists, and how far a
# tracker run is continued to decide whether it converges (every convergent run used here contracts by
# q ≤ 0.99 per step, so 5,000 steps reach 1e-6 from any start).
_GENERAL_RTOL = 1e-9
DIRECTION_TOL = 1e-6
CONTINUE_STEPS = 5000


# --------------------------------------------------------------------------------------------------
# General (non-symmetric) operators: the rule of SPEC §3.2 with a general eigensolver
# --------------------------------------------------------------------------------------------------


def _tol(A: F64Array) -> float:
    return _GENERAL_RTOL * max(1.0, frobenius(A))


def real_spectrum(A: F64Array) -> F64Array:
    """Eigenvalues of a square ``A`` in non-increasing order (``eigvalsh`` when symmetric, ``eig`` otherwise);
    raises when some eigenvalue is not real (the statements of G2–G4 and G6 then mean nothing)."""
    if is_symmetric(A):
        return eigenvalues_desc(A)
    lam = np.linalg.eigvals(A)
    if f64(np.max(np.abs(lam.imag))) > _tol(A):
        raise ValueError(f"A has non-real eigenvalues {lam.tolist()}: λ_max and the ordering are undefined")
    return arr(np.sort(lam.real)[::-1].copy())


def _top_pair(B: F64Array) -> tuple[float, F64Array]:
    """The eigenvalue of largest real part of ``B`` and a unit eigenvector (real; raises if complex)."""
    lam, V = np.linalg.eig(B)
    k = int(np.argmax(lam.real))
    if abs(f64(lam[k].imag)) > _tol(B):
        raise ValueError(f"the top eigenvalue {lam[k]} is not real: the growth statistic is undefined")
    u = V[:, k].real
    return f64(lam[k].real), fix_sign(arr(u / np.sqrt(u @ u)))


def _lambda_max_general(B: F64Array) -> float:
    """``λ_max`` of a (possibly non-symmetric) matrix, read as the largest real part of its spectrum."""
    return f64(np.max(np.linalg.eigvals(B).real))


def _deflate_general(A: F64Array, Q: F64Array) -> F64Array:
    Pi = np.eye(A.shape[0]) - Q @ Q.T
    return arr(Pi @ A @ Pi)


def greedy_capture_general(A: F64Array, theta: float, *, max_events: int) -> CaptureResult:
    """SPEC §3.2's rule verbatim on any square ``A`` and any θ: while ``λ_max(Π⊥AΠ⊥) > θ`` append its top
    eigenvector (``numpy.linalg.eig``), without re-orthogonalisation; at most ``max_events`` births.
    ``method_errors`` are ``inf``: nothing is certified for such an operator."""
    d = A.shape[0]
    Q = np.zeros((d, 0))
    births: list[float] = []
    ranks = [0]
    while True:
        lam, u = _top_pair(_deflate_general(A, arr(Q)))
        if not (lam > theta) or len(births) >= max_events:
            break
        births.append(lam)
        Q = np.column_stack([Q, u])
        ranks.append(numerical_rank(arr(Q)))
    m = len(births)
    return CaptureResult(arr(Q), tuple(births), lam, tuple(ranks), (math.inf,) * m, (), "eig")


def _residual_spec(C: F64Array, M_a: F64Array, Q_cap: F64Array) -> F64Array:
    """``A_res = Π⊥ ½(C M_a + (C M_a)ᵀ) Π⊥`` by SPEC §1's definition, for any ``C`` and ``M_a`` (the
    reference's :func:`reference.incrt.operators.residual_operator` requires ``C = Cᵀ``, ``M_a = −M_aᵀ``)."""
    G = C @ M_a
    Pi = np.eye(C.shape[0]) - Q_cap @ Q_cap.T
    R = Pi @ (0.5 * (G + G.T)) @ Pi
    return arr(0.5 * (R + R.T))  # symmetric in exact arithmetic: a computed quantity


def _spec_inputs_valid(C: F64Array, head_operators: Sequence[F64Array]) -> bool:
    return is_symmetric(C) and all(is_symmetric(M, sign=-1.0) for M in head_operators)


# --------------------------------------------------------------------------------------------------
# Hypothesis predicates on any operator (G5, G6)
# --------------------------------------------------------------------------------------------------


def hysteresis_any_operator(
    *, C: F64Array, head_operators: Sequence[F64Array], h: int, Q_cap: F64Array, theta: float, **_: Any
) -> bool:
    """G5's hysteresis ``λ_max(A_res) + G_h ≤ θ``: :func:`reference.invariants.pruning.hysteresis` when ``C``
    is symmetric and every ``M_a^h`` antisymmetric; otherwise the same inequality with ``A_res`` by SPEC
    §1's definition and ``G_h = ‖C M_a^h‖_F``."""
    if _spec_inputs_valid(C, head_operators):
        return prune.hysteresis(C=C, head_operators=head_operators, h=h, Q_cap=Q_cap, theta=theta)
    A = _residual_spec(C, arr(np.sum(np.stack(list(head_operators)), axis=0)), Q_cap)
    return bool(f64(np.linalg.eigvalsh(A)[-1]) + frobenius(arr(C @ head_operators[h])) <= theta)


def _tracked_eigvec(A: F64Array, kind: TrackerKind) -> tuple[float, F64Array]:
    if is_symmetric(A):
        ext = exact_extremes(A)
        return (ext.lam_max, ext.u_max) if kind is TrackerKind.OJA else (ext.lam_min, ext.u_min)
    if kind is not TrackerKind.OJA:
        raise ValueError("MCA-EXIN on a non-symmetric operator is not evaluated here")
    return _top_pair(A)


def step_size_any_operator(*, A: F64Array, tracker: TrackerResult, **_: Any) -> bool:
    """G6's step size ``α_t(λ_max − λ_min) < 2``: :func:`reference.invariants.incrt.step_size` for a symmetric
    ``A``; otherwise on ``A``'s real spectrum (``False`` if it is not real)."""
    if is_symmetric(A):
        return inv.step_size(A=A, tracker=tracker)
    try:
        lam = real_spectrum(A)
    except ValueError:
        return False
    return bool(tracker.alphas.shape[0] == 0 or f64(tracker.alphas.max()) * f64(lam[0] - lam[-1]) < 2.0)


def tracked_gap_any_operator(*, A: F64Array, tracker: TrackerResult, **_: Any) -> bool:
    """G6's simple tracked eigenvalue: :func:`reference.invariants.incrt.tracked_gap` for a symmetric ``A``;
    otherwise a gap above ``3E(A)`` at the tracked end of ``A``'s real spectrum."""
    if is_symmetric(A):
        return inv.tracked_gap(A=A, tracker=tracker)
    try:
        lam = real_spectrum(A)
    except ValueError:
        return False
    gap = f64(lam[0] - lam[1]) if tracker.kind is TrackerKind.OJA else f64(lam[-2] - lam[-1])
    return bool(gap > 3.0 * eigh_error_bound(A))


def start_not_orthogonal_any_operator(*, A: F64Array, tracker: TrackerResult, **_: Any) -> bool:
    """G6's ``vᵀw_0 ≠ 0``: :func:`reference.invariants.incrt.start_not_orthogonal` for a symmetric ``A``;
    otherwise with ``v`` the eigenvector of the real top eigenvalue by ``eig``."""
    if is_symmetric(A):
        return inv.start_not_orthogonal(A=A, tracker=tracker)
    try:
        v = _tracked_eigvec(A, tracker.kind)[1]
    except ValueError:
        return False
    return abs(f64(v @ tracker.w0)) > 0.0


# --------------------------------------------------------------------------------------------------
# Conclusion predicates
# --------------------------------------------------------------------------------------------------

g1_conclusion = conclusion_from_invariant(inv.check_g1)
"""G1 holds: every check of :func:`reference.invariants.incrt.check_g1` (it accepts any θ)."""

# "Every check of the invariant holds" (the code the trainer and the tests call), where the reference
# accepts the inputs; the predicates below start from these.
_G2_HOLDS = conclusion_from_invariant(inv.check_g2)
_G3_HOLDS = conclusion_from_invariant(inv.check_g3)
_G4_HOLDS = conclusion_from_invariant(inv.check_g4)
_G5_HOLDS = conclusion_from_invariant(prune.check_g5)


def _births_follow_spectrum(A: F64Array, capture: CaptureResult) -> bool:
    """G2 directly: births non-increasing, birth k at ``λ_k(A)``, each along an eigenvector of ``A``."""
    lam = real_spectrum(A)
    b = capture.lam_births
    if capture.m > lam.shape[0]:
        return False
    tol = _tol(A)
    ok = all(b[k + 1] <= b[k] + tol for k in range(capture.m - 1))
    ok &= all(abs(b[k] - f64(lam[k])) <= tol for k in range(capture.m))
    Q = capture.Q_cap
    ok &= all(f64(np.linalg.norm(A @ Q[:, k] - b[k] * Q[:, k])) <= tol for k in range(capture.m))
    return bool(ok)


def g2_conclusion(*, A: F64Array, theta: float, capture: CaptureResult, **_: Any) -> bool:
    """G2 holds: :func:`reference.invariants.incrt.check_g2` for symmetric ``A`` and ``θ > 0`` (the inputs it
    accepts); otherwise the statement directly (births at ``λ_1 ≥ λ_2 ≥ …`` along eigenvectors)."""
    if is_symmetric(A) and inv.theta_positive(theta=theta):
        return _G2_HOLDS(A=A, theta=theta, capture=capture)
    return _births_follow_spectrum(A, capture)


def _min_residual_general(A: F64Array, m: int) -> tuple[float, F64Array]:
    """``min λ_max(Π⊥AΠ⊥)`` over orthonormal d×m sets: every subset of ``A``'s eigenvectors (orthonormalised)
    and 256 Haar-random sets (seed 0) — the search of :func:`reference.invariants.incrt.brute_force_min_residual`
    for any square ``A``."""
    d = A.shape[0]
    if m == 0:
        return _lambda_max_general(A), arr(np.zeros((d, 0)))
    rng = np.random.default_rng(0)
    _, V = np.linalg.eig(A)
    cands = [np.linalg.qr(V.real[:, list(c)])[0] for c in itertools.combinations(range(d), m)]
    cands += [np.linalg.qr(rng.standard_normal((d, m)))[0] for _ in range(256)]
    vals = [_lambda_max_general(_deflate_general(A, arr(Q))) for Q in cands]
    k = int(np.argmin(vals))
    return vals[k], arr(cands[k])


def _g3_statement(A: F64Array, theta: float, capture: CaptureResult) -> bool:
    """G3 directly: the greedy count is ``m* = #{λ_i > θ}``, its set is sufficient, and no orthonormal set of
    fewer than ``m*`` directions makes ``λ_max(Π⊥AΠ⊥) ≤ θ`` (searched as in :func:`_min_residual_general`)."""
    lam = real_spectrum(A)
    m_star = int(np.count_nonzero(lam > theta))
    tol = _tol(A)
    if capture.m != m_star:
        return False
    if _lambda_max_general(_deflate_general(A, capture.Q_cap)) > theta + tol:
        return False
    return all(_min_residual_general(A, m)[0] > theta - tol for m in range(m_star))


def g3_conclusion(*, A: F64Array, theta: float, capture: CaptureResult, **_: Any) -> bool:
    """G3 holds: :func:`reference.invariants.incrt.check_g3` with its brute-force search (seed 0, fixed here so
    that the predicate is deterministic) for symmetric ``A`` and ``θ > 0``; otherwise :func:`_g3_statement`."""
    if is_symmetric(A) and inv.theta_positive(theta=theta):
        return _G3_HOLDS(A=A, theta=theta, capture=capture, rng=np.random.default_rng(0))
    return _g3_statement(A, theta, capture)


def _directions_agree(A: F64Array, captures: Sequence[CaptureResult], sins: Sequence[Sequence[float]]) -> bool:
    """Every pair of runs has the same directions up to sign: ``sin∠(û^a_k, û^b_k)`` within the certified
    bound of check_g4 where it certifies (``< 1``), within :data:`DIRECTION_TOL` where nothing is certified."""
    for (i, a), (j, b) in itertools.combinations(enumerate(captures), 2):
        for k in range(min(a.m, b.m)):
            sa, sb = sins[i][k], sins[j][k]
            bound = math.sin(min(math.pi / 2.0, math.asin(sa) + math.asin(sb)))
            limit = bound if bound < 1.0 else DIRECTION_TOL
            if math.sin(angle(arr(a.Q_cap[:, k]), arr(b.Q_cap[:, k]))) > limit:
                return False
    return True


def _g4_statement(A: F64Array, theta: float, captures: Sequence[CaptureResult]) -> bool:
    """G4 directly: every run captures ``m* = #{λ_i > θ}`` directions at ``λ_1..λ_{m*}``, the same directions up
    to sign (within :data:`DIRECTION_TOL`), spanning the top-``m*`` invariant subspace of ``A``."""
    lam = real_spectrum(A)
    m_star = int(np.count_nonzero(lam > theta))
    tol = _tol(A)
    for c in captures:
        if c.m != m_star or any(abs(c.lam_births[k] - f64(lam[k])) > tol for k in range(c.m)):
            return False
        Q = c.Q_cap
        if f64(np.max(np.abs((np.eye(A.shape[0]) - Q @ Q.T) @ A @ Q), initial=0.0)) > tol:  # A-invariant span
            return False
    ones = [[1.0] * c.m for c in captures]
    return _directions_agree(A, captures, ones)


def g4_conclusion(*, A: F64Array, theta: float, captures: Sequence[CaptureResult], **_: Any) -> bool:
    """G4 holds: :func:`reference.invariants.incrt.check_g4` and "directions unique up to sign" — which
    check_g4 certifies only with a spectral gap (its bound is the vacuous 1 without one), so where nothing is
    certified the directions must agree within :data:`DIRECTION_TOL`. For a non-symmetric ``A`` or ``θ ≤ 0``
    (refused by the reference): :func:`_g4_statement`."""
    if not (is_symmetric(A) and inv.theta_positive(theta=theta)):
        return _g4_statement(A, theta, captures)
    if not _G4_HOLDS(A=A, theta=theta, captures=captures):
        return False
    return _directions_agree(A, captures, [inv.direction_sin_bounds(A, c) for c in captures])


def _no_growth_at_next_check(A_after: F64Array, Q_cap: F64Array, theta: float) -> bool:
    """The growth test on the operator after the prune, with the dwell switched off: no birth (a DECISION
    near-tie may fire, SPEC §6) — :func:`reference.incrt.controller.grow_check`, as
    :func:`reference.invariants.pruning.check_no_retrigger` uses it in training."""
    lam = f64(np.linalg.eigvalsh(A_after)[-1])
    if not inv.theta_positive(theta=theta):
        return lam <= theta
    state = GrowthState(Q_cap, 0, (HeadRecord(0, 0),), ())
    cfg = GrowthConfig(theta=theta, phi_g=0.0, T_d=0, T_prune=1, eps_K=0.0)
    _, events = grow_check(state, cfg, A_after, 1, new_head_id=1)
    births = sum(1 for e in events if e.kind is EventKind.BIRTH)
    return births <= (1 if is_near_tie(lam, theta) else 0)


def _g5_statement(C: F64Array, Ms: Sequence[F64Array], h: int, Q: F64Array, theta: float) -> bool:
    """G5's operator part directly, with ``A_res`` by SPEC §1's definition for any ``C`` and ``M_a^h``: the
    change is ``−Π⊥½[C, M_a^h]Π⊥``, of norm ``≤ G_h = ‖C M_a^h‖_F``, ``λ_max`` moves by ``≤ G_h``, and under
    hysteresis ``λ_max(after) ≤ θ``."""
    M_tot = arr(np.sum(np.stack(list(Ms)), axis=0))
    before = _residual_spec(C, M_tot, Q)
    after = _residual_spec(C, arr(M_tot - Ms[h]), Q)
    Pi = np.eye(C.shape[0]) - Q @ Q.T
    formula = -Pi @ (0.5 * (C @ Ms[h] - Ms[h] @ C)) @ Pi
    G_h = frobenius(arr(C @ Ms[h]))
    tol = _GENERAL_RTOL * max(1.0, frobenius(C) * frobenius(M_tot) * (1.0 + frobenius(Q)) ** 4)
    lam_b, lam_a = f64(np.linalg.eigvalsh(before)[-1]), f64(np.linalg.eigvalsh(after)[-1])
    ok = f64(np.max(np.abs(after - before - formula))) <= tol
    ok &= f64(np.linalg.norm(formula, 2)) <= G_h + tol
    ok &= abs(lam_a - lam_b) <= G_h + tol
    if lam_b + G_h <= theta:
        ok &= lam_a <= theta + tol
    return bool(ok)


def g5_conclusion(
    *, C: F64Array, head_operators: Sequence[F64Array], h: int, Q_cap: F64Array, theta: float, **_: Any
) -> bool:
    """G5 holds (operator part): :func:`reference.invariants.pruning.check_g5` when ``C`` is symmetric and the
    heads antisymmetric (:func:`_g5_statement` otherwise, where the reference refuses), and no growth at the
    next check on the same probe (:func:`_no_growth_at_next_check`) — check_g5 emits that check only under
    hysteresis, so without hysteresis it would be silent exactly where the conclusion fails."""
    Ms = list(head_operators)
    M_rest = arr(np.sum(np.stack(Ms), axis=0) - Ms[h])
    if _spec_inputs_valid(C, Ms):
        held = _G5_HOLDS(C=C, head_operators=Ms, h=h, Q_cap=Q_cap, theta=theta)
        A_after = residual_operator(C, M_rest, Q_cap)
    else:
        held = _g5_statement(C, Ms, h, Q_cap, theta)
        A_after = _residual_spec(C, M_rest, Q_cap)
    return held and _no_growth_at_next_check(A_after, Q_cap, theta)


def _oja_general(A: F64Array, w0: F64Array, eta: float, n_steps: int) -> TrackerResult:
    """Normalised Oja ``w⁺ = (w + η(Aw − (wᵀAw)w))/‖·‖`` on any square ``A`` (the reference's :func:`oja_track`
    requires a symmetric one)."""
    w = w0 / np.sqrt(w0 @ w0)
    for _ in range(n_steps):
        Aw = A @ w
        v = w + eta * (Aw - (w @ Aw) * w)
        w = v / np.sqrt(v @ v)
    return TrackerResult(TrackerKind.OJA, arr(w0.copy()), arr(w), eta, arr(np.full(n_steps, eta)), rayleigh(A, arr(w)))


def tracker_limit(A: F64Array, tracker: TrackerResult, n_steps: int = CONTINUE_STEPS) -> tuple[float, float]:
    """Continue a tracker run by ``n_steps`` (same rule and ``η``) and return ``(∠(w, v), |ρ(w) − λ|)`` against
    the oracle: ``eigh``'s tracked eigenpair for a symmetric ``A``, the real top eigenpair of ``eig``
    otherwise."""
    lam, v = _tracked_eigvec(A, tracker.kind)
    if tracker.kind is TrackerKind.MCA_EXIN:
        res = mca_exin_track(A, tracker.w, tracker.eta, n_steps)
    elif is_symmetric(A):
        res = oja_track(A, tracker.w, tracker.eta, n_steps)
    else:
        res = _oja_general(A, tracker.w, tracker.eta, n_steps)
    return angle(v, res.w), abs(res.estimate - lam)


def g6_conclusion(*, A: F64Array, tracker: TrackerResult, **_: Any) -> bool:
    """G6 holds: the run converges to the exact oracle's eigenpair (up to sign).

    Where :func:`reference.invariants.incrt.check_g6` bounds its checks (symmetric ``A``, certified gap and
    step, finite certificate), every one holds. Where it does not — outside its hypotheses its bounds are
    infinite, and a non-symmetric ``A`` it refuses — the limit is evaluated directly: the run continued by
    :data:`CONTINUE_STEPS` steps ends within :data:`DIRECTION_TOL` of the oracle's eigenvector and its
    Rayleigh quotient within ``DIRECTION_TOL·max(1, λ_max − λ_min)`` of the eigenvalue.
    """
    if is_symmetric(A):
        results = inv.check_g6(A=A, tracker=tracker)
        if results and all(math.isfinite(r.bound) for r in results):
            return all(r.holds for r in results)
    lam = real_spectrum(A)
    ang, err = tracker_limit(A, tracker)
    return ang <= DIRECTION_TOL and err <= DIRECTION_TOL * max(1.0, f64(lam[0] - lam[-1]))


# --------------------------------------------------------------------------------------------------
# Falsifiers
# --------------------------------------------------------------------------------------------------


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
    results = inv.check_g1(Q_cap=run.Q_cap, ranks=run.ranks, theta=theta)
    failed = [r for r in results if not r.holds]
    gram = f64(np.max(np.abs(run.Q_cap.T @ run.Q_cap - np.eye(run.m))))
    observed = (
        f"θ={theta}, spectrum {{1, −1, −1}}: {run.m} growth events (> d={d}), ranks {list(run.ranks)}, "
        f"births {[round(b, 6) for b in run.lam_births]}, max|Q_capᵀQ_cap − I| = {gram:.3g}; "
        f"G1 checks violated: {[r.check for r in failed]}"
    )
    inputs: dict[str, Any] = {"A": A, "theta": theta, "Q_cap": run.Q_cap, "ranks": run.ranks}
    return Counterexample(
        claim_id="G1",
        hypothesis_dropped="theta_positive",
        inputs=inputs,
        observed=observed,
        conclusion_fails=not g1_conclusion(**inputs),
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


def falsify_g2_not_symmetric() -> Counterexample:
    """G2 without symmetry: ``A = [[1, 10], [0, 2]]`` (eigenvalues 2, 1; eigenvectors ``(10, 1)`` and ``e₁``,
    not orthogonal), θ = 1/2. The rule (general eigensolver) captures ``u_1 = (10, 1)/√101`` at 2, then
    the top eigenvector of ``Π⊥AΠ⊥``, ``u_2 = (1, −10)/√101`` at 1: the births are the eigenvalues in order
    (``Π⊥AΠ⊥`` is a Schur deflation), but ``u_2`` is not an eigenvector of ``A`` (``‖Au_2 − u_2‖ = 10``):
    deflation preserves eigenvectors only when they are orthogonal."""
    A = np.array([[1.0, 10.0], [0.0, 2.0]])
    theta = 0.5
    capture = greedy_capture_general(A, theta, max_events=A.shape[0])
    Q = capture.Q_cap
    res = [f64(np.linalg.norm(A @ Q[:, k] - capture.lam_births[k] * Q[:, k])) for k in range(capture.m)]
    inputs: dict[str, Any] = {"A": A, "theta": theta, "capture": capture}
    observed = (
        f"A = [[1, 10], [0, 2]], θ={theta}: births {[round(b, 12) for b in capture.lam_births]} (the eigenvalues, "
        f"in order), eigen-residuals ‖Aû_k − λ̂_kû_k‖ = {[round(r, 6) for r in res]}: the second direction "
        f"{[round(f64(x), 4) for x in Q[:, 1]]} is at {angle(arr(Q[:, 1]), arr(np.array([1.0, 0.0]))):.4f} rad "
        "from A's eigenvector e₁ for that eigenvalue"
    )
    return Counterexample(
        claim_id="G2",
        hypothesis_dropped="operator_symmetric",
        inputs=inputs,
        observed=observed,
        conclusion_fails=not g2_conclusion(**inputs),
    )


def falsify_g2_theta_nonpositive() -> Counterexample:
    """G2 without ``θ > 0``: spectrum ``{1, −1, −1}``, θ = −1/2. After ``v_1`` the deflated operator has
    spectrum ``{0, −1, −1}``, and ``0 > θ``: the second birth is at 0 (along the captured ``v_1``), not at
    ``λ_2(A) = −1``."""
    theta = -0.5
    A = planted_operator([1.0, -1.0, -1.0], rng=np.random.default_rng(11))
    capture = _capture_loop(A, theta, max_events=A.shape[0], reorthogonalize=False)
    v1 = exact_extremes(A).u_max
    inputs: dict[str, Any] = {"A": A, "theta": theta, "capture": capture}
    observed = (
        f"spectrum {{1, −1, −1}}, θ={theta}: births {[round(b, 6) for b in capture.lam_births]} vs "
        f"λ(A) = {[round(f64(x), 6) for x in eigenvalues_desc(A)]}; ∠(û_2, v_1) = "
        f"{angle(arr(capture.Q_cap[:, 1]), v1):.2e} rad (the second birth re-captures v_1 at eigenvalue 0)"
    )
    return Counterexample(
        claim_id="G2",
        hypothesis_dropped="theta_positive",
        inputs=inputs,
        observed=observed,
        conclusion_fails=not g2_conclusion(**inputs),
    )


def falsify_g3_not_symmetric() -> Counterexample:
    """G3 without symmetry: ``A = [[1, 10], [0, 0.9]]`` (eigenvalues 1, 0.9 > θ = 1/2, so ``m* = 2``). The
    single direction ``q = (1, 1)/√2`` already makes ``Π⊥AΠ⊥ = (wᵀAw) wwᵀ`` with ``w = (1, −1)/√2`` and
    ``wᵀAw = −4.05``: ``λ_max = 0 ≤ θ``, sufficient with 1 < m* directions. Interlacing needs symmetry (the
    Rayleigh quotient of a non-symmetric ``A`` ranges over its numerical range, not its spectrum)."""
    A = np.array([[1.0, 10.0], [0.0, 0.9]])
    theta = 0.5
    capture = greedy_capture_general(A, theta, max_events=A.shape[0])
    q = arr(np.array([[1.0], [1.0]]) / math.sqrt(2.0))
    witness = _lambda_max_general(_deflate_general(A, q))
    best, _ = _min_residual_general(A, 1)
    inputs: dict[str, Any] = {"A": A, "theta": theta, "capture": capture}
    observed = (
        f"A = [[1, 10], [0, 0.9]], θ={theta}: m* = 2 and the greedy captures {capture.m}; but one direction "
        f"q = (1, 1)/√2 gives λ_max(Π⊥AΠ⊥) = {witness:.4g} ≤ θ (search minimum {best:.4g}): 1 head fewer suffices"
    )
    return Counterexample(
        claim_id="G3",
        hypothesis_dropped="operator_symmetric",
        inputs=inputs,
        observed=observed,
        conclusion_fails=not g3_conclusion(**inputs),
    )


def falsify_g3_theta_nonpositive() -> Counterexample:
    """G3 without ``θ > 0``: spectrum ``{1, −1, −1}``, θ = −1/2, ``m* = #{λ_i > θ} = 1``. Every captured
    direction is an eigenvector of ``Π⊥AΠ⊥`` for 0 > θ, so no non-empty set is ever sufficient: with the
    best single direction ``v_1`` the residual's top is 0, and the greedy rule does not stop at ``m*``
    (capped at d events here)."""
    theta = -0.5
    A = planted_operator([1.0, -1.0, -1.0], rng=np.random.default_rng(11))
    capture = _capture_loop(A, theta, max_events=A.shape[0], reorthogonalize=False)
    v1 = exact_extremes(A).u_max
    top_v1 = inv.residual_top(A, arr(v1[:, None]))
    inputs: dict[str, Any] = {"A": A, "theta": theta, "capture": capture}
    observed = (
        f"spectrum {{1, −1, −1}}, θ={theta}: m* = 1, but λ_max(Π⊥AΠ⊥) with Q = v_1 is {top_v1:.2e} > θ "
        f"(insufficient); the greedy makes {capture.m} births (cap d = {A.shape[0]}), not m*"
    )
    return Counterexample(
        claim_id="G3",
        hypothesis_dropped="theta_positive",
        inputs=inputs,
        observed=observed,
        conclusion_fails=not g3_conclusion(**inputs),
    )


def falsify_g4_theta_nonpositive() -> Counterexample:
    """G4 without ``θ > 0``: spectrum ``{2, 0.5, −1}``, θ = −1/2 (eigenvalues above θ simple, none equal to
    it): ``m* = 2``, but after ``v_1, v_2`` the deflated top eigenvalue is the captured directions' 0 > θ,
    so every run makes a third birth (capped at d): the count is not the spectral invariant ``m*``."""
    theta = -0.5
    A = planted_operator([2.0, 0.5, -1.0], rng=np.random.default_rng(5))
    captures = (_capture_loop(A, theta, max_events=A.shape[0], reorthogonalize=False),)
    inputs: dict[str, Any] = {"A": A, "theta": theta, "captures": captures}
    observed = (
        f"spectrum {{2, 0.5, −1}}, θ={theta}: m* = #{{λ_i > θ}} = 2, the run makes {captures[0].m} births at "
        f"{[round(b, 6) for b in captures[0].lam_births]} (the last at a captured direction's eigenvalue 0)"
    )
    return Counterexample(
        claim_id="G4",
        hypothesis_dropped="theta_positive",
        inputs=inputs,
        observed=observed,
        conclusion_fails=not g4_conclusion(**inputs),
    )


def falsify_g4_repeated_eigenvalue() -> Counterexample:
    """G4 without a spectral gap: spectrum ``{2, 2, 0.5, −1}``, ``θ = 1``: two tracker runs (seeds 1, 2)
    both capture ``m* = 2`` directions at eigenvalue 2, each a genuine eigenvector, yet their first
    directions differ by a rotation inside the 2-d eigenspace. What stays unique: the count, the birth
    eigenvalues and the captured *span* (the top eigenspace).
    """
    theta = 1.0
    A = planted_operator([2.0, 2.0, 0.5, -1.0], rng=np.random.default_rng(5))
    runs = tuple(greedy_capture_tracked(A, theta, rng=np.random.default_rng(s), n_steps=400) for s in (1, 2))
    a, b = runs
    residuals = [
        f64(np.linalg.norm(A @ r.Q_cap[:, k] - r.lam_births[k] * r.Q_cap[:, k])) for r in runs for k in range(r.m)
    ]
    sin_first = math.sin(angle(arr(a.Q_cap[:, 0]), arr(b.Q_cap[:, 0])))
    span_gap = f64(np.linalg.norm(a.Q_cap @ a.Q_cap.T - b.Q_cap @ b.Q_cap.T, 2))
    observed = (
        f"spectrum {{2, 2, 0.5, −1}}, θ=1: both runs capture m={a.m}, {b.m} directions, births "
        f"{[round(x, 12) for x in a.lam_births]} / {[round(x, 12) for x in b.lam_births]}, max eigen-residual "
        f"{max(residuals):.2e} (≤ eigh's own bound {eigh_error_bound(A):.1e}: valid runs); sin∠ between the runs' "
        f"first directions = {sin_first:.4f}; the captured spans agree (‖Π_a − Π_b‖_2 = {span_gap:.2e})"
    )
    inputs: dict[str, Any] = {"A": A, "theta": theta, "captures": runs, "seeds": (1, 2)}
    return Counterexample(
        claim_id="G4",
        hypothesis_dropped="spectral_gap",
        inputs=inputs,
        observed=observed,
        conclusion_fails=not g4_conclusion(**inputs),
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
    inputs: dict[str, Any] = {
        "C": C,
        "head_operators": Ms,
        "h": 1,
        "Q_cap": state.Q_cap,
        "theta": theta,
        "phi_g": phi_g,
    }
    return Counterexample(
        claim_id="G5",
        hypothesis_dropped="hysteresis",
        inputs=inputs,
        observed=observed,
        conclusion_fails=not g5_conclusion(**inputs),
    )


_J = np.array([[0.0, 1.0], [-1.0, 0.0]])


def _g5_removal_report(C: F64Array, Ms: Sequence[F64Array], h: int, Q: F64Array) -> str:
    M_tot = arr(np.sum(np.stack(list(Ms)), axis=0))
    change = _residual_spec(C, arr(M_tot - Ms[h]), Q) - _residual_spec(C, M_tot, Q)
    Pi = np.eye(C.shape[0]) - Q @ Q.T
    formula = -Pi @ (0.5 * (C @ Ms[h] - Ms[h] @ C)) @ Pi
    lam = [f64(np.linalg.eigvalsh(_residual_spec(C, M, Q))[-1]) for M in (M_tot, arr(M_tot - Ms[h]))]
    return (
        f"change of A_res {np.round(change, 4).tolist()} vs claimed −Π⊥½[C, M_a^h]Π⊥ "
        f"{np.round(formula, 4).tolist()}; ‖claimed‖_2 = {f64(np.linalg.norm(formula, 2)):.4g}, "
        f"λ_max {lam[0]:.4g} → {lam[1]:.4g}, G_h = ‖C M_a^h‖_F = {frobenius(arr(C @ Ms[h])):.4g}"
    )


def falsify_g5_second_moment_not_symmetric() -> Counterexample:
    """G5 without ``C = Cᵀ``: with ``A_res`` by its definition ``Π⊥½(CM_a + (CM_a)ᵀ)Π⊥``, removing head h
    changes it by ``−Π⊥½(CM_a^h − M_a^hCᵀ)Π⊥``, which is ``−Π⊥½[C, M_a^h]Π⊥`` only when ``Cᵀ = C``
    (step G5.1 uses ``(CM)ᵀ = −MC``). ``C = [[1, 1], [0, 1]]``, ``M_a^h = J``: the actual change is
    ``diag(1, 0)``, the claimed one ``diag(½, −½)``. (In training ``C = XᵀX/n`` is symmetric by
    construction; the statement is about the operators.)"""
    C = np.array([[1.0, 1.0], [0.0, 1.0]])
    Ms = [arr(2.0 * _J), arr(_J.copy())]
    Q = arr(np.zeros((2, 0)))
    inputs: dict[str, Any] = {"C": C, "head_operators": Ms, "h": 1, "Q_cap": Q, "theta": 10.0}
    return Counterexample(
        claim_id="G5",
        hypothesis_dropped="second_moment_symmetric",
        inputs=inputs,
        observed="C = [[1, 1], [0, 1]], M_a^h = J, θ = 10: " + _g5_removal_report(C, Ms, 1, Q),
        conclusion_fails=not g5_conclusion(**inputs),
    )


def falsify_g5_heads_not_antisymmetric() -> Counterexample:
    """G5 without ``M_a^h = −M_a^hᵀ``: ``½(CM + (CM)ᵀ) = ½(CM + MᵀC)`` equals ``½[C, M]`` only for an
    antisymmetric ``M``. ``C = diag(1, 0.1)``, ``M_a^h = σ_x`` (symmetric): the actual change of ``A_res``
    is symmetric (``−0.55σ_x``), the claimed ``−½[C, σ_x] = −0.45J`` antisymmetric. (In training
    ``M_a^h = (M_h − M_hᵀ)/2`` is antisymmetric by construction.)"""
    C = np.diag([1.0, 0.1])
    Ms = [arr(2.0 * _J), arr(np.array([[0.0, 1.0], [1.0, 0.0]]))]
    Q = arr(np.zeros((2, 0)))
    inputs: dict[str, Any] = {"C": C, "head_operators": Ms, "h": 1, "Q_cap": Q, "theta": 10.0}
    return Counterexample(
        claim_id="G5",
        hypothesis_dropped="heads_antisymmetric",
        inputs=inputs,
        observed="C = diag(1, 0.1), M_a^h = σ_x, θ = 10: " + _g5_removal_report(C, Ms, 1, Q),
        conclusion_fails=not g5_conclusion(**inputs),
    )


def falsify_g5_capture_not_orthonormal() -> Counterexample:
    """G5 without an orthonormal ``Q_cap``: ``Π⊥ = I − QQᵀ`` is then not a projector and can expand
    (``‖Π⊥BΠ⊥‖_2 ≤ ‖B‖_2`` fails). ``Q_cap = 2e₁``: ``Π⊥ = diag(−3, 1)``, and with ``C = diag(1, 0.1)``,
    ``M_a^h = J``, the change ``−Π⊥½[C, J]Π⊥ = 1.35σ_x`` has norm 1.35 > ``G_h = √1.01``: ``λ_max`` moves by
    more than ``G_h`` (Weyl's bound fails). Hysteresis holds (θ = 4)."""
    C = np.diag([1.0, 0.1])
    Ms = [arr(_J.copy()), arr(_J.copy())]
    Q = arr(np.array([[2.0], [0.0]]))
    inputs: dict[str, Any] = {"C": C, "head_operators": Ms, "h": 1, "Q_cap": Q, "theta": 4.0}
    failed = [r.check for r in prune.check_g5(C=C, head_operators=Ms, h=1, Q_cap=Q, theta=4.0) if not r.holds]
    return Counterexample(
        claim_id="G5",
        hypothesis_dropped="captured_orthonormal",
        inputs=inputs,
        observed=f"Q_cap = 2e₁ (Q_capᵀQ_cap = 4), θ = 4: {_g5_removal_report(C, Ms, 1, Q)}; G5 checks violated: "
        f"{failed}",
        conclusion_fails=not g5_conclusion(**inputs),
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
    the 2000-step run ended and reports the range of the angle there; ``conclusion_fails`` is the
    conclusion predicate's verdict (the run continued further does not reach ``v_1``).

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
    inputs: dict[str, Any] = {"A": A, "tracker": res, "spectrum": eigenvalues_desc(A)}
    return Counterexample(
        claim_id="G6",
        hypothesis_dropped="step_size",
        inputs=inputs,
        observed=observed,
        conclusion_fails=not g6_conclusion(**inputs),
    )


def falsify_g6_not_symmetric() -> Counterexample:
    """G6 without symmetry: ``A = [[1, 5], [0, 0]]`` (real spectrum ``{1, 0}``, ``Δ = 1``), normalised Oja with
    ``η = 1`` (``ηΔ = 1 < 2``: the step-size condition holds), start from seed 2. The iterate does not
    converge to the top eigenvector ``e₁``: it is captured by an attracting period-3 orbit of lines on
    which the Rayleigh quotient cycles through ≈ {3.04, −1.38, −1.64}. The contraction argument needs
    ``ρ = wᵀAw ∈ [λ_min, λ_max]``; for a non-normal ``A``, ``ρ`` ranges over the numerical range
    ``[(1 − √26)/2, (1 + √26)/2]``, far outside the spectrum."""
    A = np.array([[1.0, 5.0], [0.0, 0.0]])
    eta = 1.0
    w0 = np.random.default_rng(2).standard_normal(2)
    res = _oja_general(A, arr(w0), eta, 2000)
    w = res.w
    rhos: list[float] = []
    for _ in range(6):
        w = _oja_general(A, w, eta, 1).w
        rhos.append(rayleigh(A, w))
    ang, err = tracker_limit(A, res)
    inputs: dict[str, Any] = {"A": A, "tracker": res}
    observed = (
        f"A = [[1, 5], [0, 0]], η = {eta} (ηΔ = 1): after 2000 steps and {CONTINUE_STEPS} more, ∠(w, e₁) = "
        f"{ang:.4f} rad, |ρ − λ_max| = {err:.4f}; Rayleigh quotients of 6 further steps "
        f"{[round(r, 4) for r in rhos]} (a period-3 cycle of lines, never at λ_max = 1)"
    )
    return Counterexample(
        claim_id="G6",
        hypothesis_dropped="operator_symmetric",
        inputs=inputs,
        observed=observed,
        conclusion_fails=not g6_conclusion(**inputs),
    )


def falsify_g6_repeated_top_eigenvalue() -> Counterexample:
    """G6 without a simple tracked eigenvalue: spectrum ``{1, 1, −1}``, Oja with the certified step. Each step
    multiplies both top coordinates by the same factor, so their ratio never changes: the iterate converges
    to the normalised projection of ``w_0`` on the top eigenspace — an eigenvector, and ``ρ → λ_max`` — but
    a ``w_0``-dependent one, at a fixed angle from the oracle's ``u₊`` (what training reports as the gap to
    the exact oracle). "The exact eigenvector" is not defined; agreement with the oracle fails."""
    A = planted_operator([1.0, 1.0, -1.0], rng=np.random.default_rng(3))
    w0 = np.random.default_rng(7).standard_normal(3)
    res = oja_track(A, arr(w0), certified_step(A), 2000)
    lam_asc, V = np.linalg.eigh(A)
    top = V[:, lam_asc > 0.0]
    proj = arr(top @ (top.T @ w0))
    ang, err = tracker_limit(A, res)
    inputs: dict[str, Any] = {"A": A, "tracker": res}
    observed = (
        f"spectrum {{1, 1, −1}}: after 2000 steps ∠(w, projection of w_0 on the top eigenspace) = "
        f"{angle(proj, res.w):.1e}; after {CONTINUE_STEPS} more |ρ − λ_max| = {err:.1e} (the eigenvalue converges) "
        f"but ∠(w, oracle u₊) = {ang:.4f} rad: the limit depends on w_0, not only on A"
    )
    return Counterexample(
        claim_id="G6",
        hypothesis_dropped="tracked_gap",
        inputs=inputs,
        observed=observed,
        conclusion_fails=not g6_conclusion(**inputs),
    )


def falsify_g6_start_orthogonal() -> Counterexample:
    """G6 with a start exactly orthogonal to ``v_1``: ``A = diag(1, 0, −1)``, ``w_0 = (0, 0.6, 0.8)``. The
    ``v_1``-coordinate is multiplied by ``1 + η(λ_1 − ρ)`` and stays exactly 0 (in floats too: every
    product with the zero coordinate is exact), so Oja converges to ``v_2 = e₂``, the top eigenvector of
    the complement, with ``ρ → 0`` instead of ``λ_max = 1``. (For a rotated ``A`` rounding errors would
    seed a ``v_1`` component that then grows: in floats the hypothesis is met with probability 1.)"""
    A = np.diag([1.0, 0.0, -1.0])
    w0 = np.array([0.0, 0.6, 0.8])
    res = oja_track(A, w0, certified_step(A), 2000)
    ang, err = tracker_limit(A, res)
    inputs: dict[str, Any] = {"A": A, "tracker": res}
    observed = (
        f"A = diag(1, 0, −1), w_0 = (0, 0.6, 0.8): after 2000 + {CONTINUE_STEPS} steps w = "
        f"{[round(f64(x), 6) for x in res.w]}, ρ = {res.estimate:.3g}; ∠(w, v_1) = {ang:.4f} rad, "
        f"|ρ − λ_max| = {err:.3g}"
    )
    return Counterexample(
        claim_id="G6",
        hypothesis_dropped="start_not_orthogonal",
        inputs=inputs,
        observed=observed,
        conclusion_fails=not g6_conclusion(**inputs),
    )


__all__ = [
    "CONTINUE_STEPS",
    "DIRECTION_TOL",
    "falsify_g1_theta_nonpositive",
    "falsify_g2_not_symmetric",
    "falsify_g2_theta_nonpositive",
    "falsify_g3_not_symmetric",
    "falsify_g3_theta_nonpositive",
    "falsify_g4_repeated_eigenvalue",
    "falsify_g4_theta_nonpositive",
    "falsify_g5_capture_not_orthonormal",
    "falsify_g5_heads_not_antisymmetric",
    "falsify_g5_no_hysteresis",
    "falsify_g5_second_moment_not_symmetric",
    "falsify_g6_not_symmetric",
    "falsify_g6_repeated_top_eigenvalue",
    "falsify_g6_start_orthogonal",
    "falsify_g6_step_too_large",
    "g1_conclusion",
    "g2_conclusion",
    "g3_conclusion",
    "g4_conclusion",
    "g5_conclusion",
    "g5_oscillation_case",
    "g6_conclusion",
    "greedy_capture_general",
    "hysteresis_any_operator",
    "real_spectrum",
    "start_not_orthogonal_any_operator",
    "step_size_any_operator",
    "theta_zero_float_failures",
    "tracked_gap_any_operator",
    "tracker_limit",
]
