"""INCRT claims G1–G6 (SPEC §4, static operator ``A``): one record per claim.

The hypotheses' predicates live beside their invariants (:mod:`reference.invariants.incrt` for G1–G4
and G6, :mod:`reference.invariants.pruning` for G5). Every predicate takes the keyword inputs of its
claim's invariant and ignores any others, so ``claim.hypotheses_hold(**inputs)`` accepts an
invariant's inputs as well as a falsifier's (which may carry extra keys, e.g. ``seeds``). G5's
hysteresis and G6's step, gap and start predicates are the ``*_any_operator`` forms of
:mod:`reference.falsify.incrt`: the same predicates for symmetric inputs, also defined on the
non-symmetric ones that the falsifiers dropping symmetry build (where the reference's raise).

Each claim's ``conclusion`` predicate is in :mod:`reference.falsify.incrt` beside its falsifiers.
"""

from __future__ import annotations

from reference.claims.records import Claim, Falsifier, Hypothesis, Label
from reference.falsify import incrt as fz
from reference.invariants import incrt as inv
from reference.invariants import pruning as prune
from reference.log import EVENT_BIRTH, EVENT_CHECK, EVENT_HEAD_PRUNE

_SYM = Hypothesis(name="operator_symmetric", statement="A is symmetric", predicate=inv.operator_symmetric)
_THETA = Hypothesis(name="theta_positive", statement="θ > 0", predicate=inv.theta_positive)

# Why G4 without symmetry has no falsifier (Claim.no_falsifier); tests/test_falsify.py checks the claim.
_G4_SYMMETRIC = (
    "None can exist for the exact-oracle rule: symmetry only makes the statement defined. For a non-symmetric "
    "A, λ_max(Π⊥AΠ⊥) and 'its top eigenvector' need a real top eigenvalue (a complex pair has none: "
    "undefined). With a real spectrum the greedy rule is Schur deflation: the first direction is a unit "
    "eigenvector u_1 for λ_1; in a real Schur form A = UTUᵀ with Ue_1 = u_1, Π⊥AΠ⊥ = U diag(0, T_22)Uᵀ has "
    "spectrum {0, λ_2, …, λ_d}, and its eigenvector for λ_2 ≠ 0 lies in range(Π⊥); by induction the births "
    "are λ_1 ≥ … ≥ λ_{m*} (θ > 0 beats the zeros), the count is m* = #{λ_i > θ}, each direction is unique up "
    "to sign when λ_1..λ_{m*} are simple, and the span is the top-m* invariant subspace. What symmetry buys "
    "is elsewhere: directions along eigenvectors (G2's falsifier), minimality (G3's), tracker convergence "
    "(G6's — trackers on a non-symmetric A need not reach the oracle, which is G6's hypothesis, not G4's) "
    "and the floating-point certificates, which rest on eigh (checked on a non-symmetric A with a real, "
    "simple spectrum by tests/test_falsify.py)."
)

INCRT_CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="G1",
        title="Finite termination",
        label=Label.PROVED,
        live=(EVENT_BIRTH,),
        statement=(
            "With θ > 0, Q_cap stays orthonormal and every growth raises its rank by one, so there are at "
            "most d growth events for any sequence of operators."
        ),
        hypotheses=(_THETA,),
        invariant=inv.check_g1,
        sympy_steps=("G1.1", "G1.2", "G1.3"),
        falsifiers=(
            Falsifier(
                hypothesis="theta_positive",
                description=(
                    "θ = −1/2: the top eigenvector of A_res (eigenvalue 0) lies in span(Q_cap); "
                    "orthonormality breaks and growth never stops"
                ),
                run=fz.falsify_g1_theta_nonpositive,
            ),
        ),
        code=(
            "reference.incrt.operators.residual_operator",
            "reference.incrt.capture.append_direction",
            "reference.incrt.controller.grow_check",
            "reference.incrt.capture.greedy_capture",
        ),
        implemented=True,
        conclusion=fz.g1_conclusion,
        notes=(
            "In reals θ ≥ 0 suffices; in floats θ must exceed the eigensolver error (θ = 0 fails in about half "
            "of random cases, see theta_zero_float_failures)."
        ),
    ),
    Claim(
        id="G2",
        title="Spectral ordering",
        label=Label.PROVED,
        live=(EVENT_BIRTH,),
        statement=(
            "For a static symmetric A, successive births occur at A's eigenvalues λ_1 ≥ λ_2 ≥ … in "
            "non-increasing order, along its eigenvectors."
        ),
        hypotheses=(_SYM, _THETA),
        invariant=inv.check_g2,
        sympy_steps=("G2.1", "G2.2"),
        falsifiers=(
            Falsifier(
                hypothesis="operator_symmetric",
                description=(
                    "A = [[1, 10], [0, 2]]: births at the eigenvalues 2, 1 in order, but the second direction "
                    "is not an eigenvector (eigenvectors of a non-symmetric A are not orthogonal)"
                ),
                run=fz.falsify_g2_not_symmetric,
            ),
            Falsifier(
                hypothesis="theta_positive",
                description="θ = −1/2: the second birth is at a captured direction's eigenvalue 0, not at λ_2",
                run=fz.falsify_g2_theta_nonpositive,
            ),
        ),
        code=(
            "reference.incrt.operators.deflate",
            "reference.incrt.capture.greedy_capture",
            "reference.incrt.operators.exact_extremes",
            "reference.invariants.incrt.capture_bounds",
        ),
        implemented=True,
        conclusion=fz.g2_conclusion,
    ),
    Claim(
        id="G3",
        title="Minimality",
        label=Label.PROVED,
        live=(EVENT_BIRTH,),
        statement=(
            "With m* = #{i : λ_i(A) > θ}, no orthonormal set of fewer than m* directions makes λ_max(Π⊥ A "
            "Π⊥) ≤ θ (Cauchy interlacing); the greedy rule stops with exactly m*, so 1 + m* heads are "
            "minimal."
        ),
        hypotheses=(_SYM, _THETA),
        invariant=inv.check_g3,
        sympy_steps=("G3.1", "G3.2"),
        falsifiers=(
            Falsifier(
                hypothesis="operator_symmetric",
                description="A = [[1, 10], [0, 0.9]], θ = 1/2: m* = 2, yet one direction makes λ_max(Π⊥AΠ⊥) = 0",
                run=fz.falsify_g3_not_symmetric,
            ),
            Falsifier(
                hypothesis="theta_positive",
                description="θ = −1/2: captured directions' eigenvalue 0 > θ, so no set is ever sufficient",
                run=fz.falsify_g3_theta_nonpositive,
            ),
        ),
        code=(
            "reference.incrt.capture.greedy_capture",
            "reference.incrt.operators.count_above",
            "reference.invariants.incrt.brute_force_min_residual",
        ),
        implemented=True,
        conclusion=fz.g3_conclusion,
        notes=(
            "G3 speaks of the greedy rule with the fixed threshold θ. Under the growth variant newborn_margin the"
            " trainer's threshold rises after each birth (θ + Σ G_h^birth), so the trainer stops at m' ≤ m* direc"
            "tions, sufficient only at its final threshold; the interlacing half (no fewer than m* directions suf"
            "fice at θ) is unchanged, and the birth-time check still runs the θ rule (docs/theory.md, growth-rule"
            " variants)."
        ),
    ),
    Claim(
        id="G4",
        title="Uniqueness",
        label=Label.PROVED,
        live=(EVENT_BIRTH,),
        statement=(
            "m* and the birth eigenvalues are spectral invariants (same for every seed, initialisation and "
            "tracker history); with simple eigenvalues above θ and none equal to θ, the captured directions"
            " are unique up to sign. The greedy span is always the top-m* eigenspace; a sufficient "
            "m*-subspace in general is not unique."
        ),
        hypotheses=(
            _SYM,
            _THETA,
            Hypothesis(
                name="spectral_gap", statement="eigenvalues above θ simple, none equal to θ", predicate=inv.spectral_gap
            ),
        ),
        invariant=inv.check_g4,
        sympy_steps=("G4.1", "G4.2"),
        falsifiers=(
            Falsifier(
                hypothesis="spectral_gap",
                description=(
                    "repeated eigenvalue 2 above θ: two valid tracker runs capture directions that differ"
                    " by a rotation in the eigenspace"
                ),
                run=fz.falsify_g4_repeated_eigenvalue,
            ),
            Falsifier(
                hypothesis="theta_positive",
                description="θ = −1/2: every run makes a birth at a captured direction's eigenvalue 0: count ≠ m*",
                run=fz.falsify_g4_theta_nonpositive,
            ),
        ),
        code=(
            "reference.incrt.capture.greedy_capture",
            "reference.incrt.capture.greedy_capture_tracked",
            "reference.invariants.incrt.direction_sin_bounds",
        ),
        implemented=True,
        conclusion=fz.g4_conclusion,
        notes=(
            "Under the growth variant newborn_margin the trainer's count depends on the newborns' random strength"
            "s G_h^birth, so it is not a spectral invariant: G4 describes the fixed-θ greedy rule the birth-time "
            "check runs, not that variant's count (docs/theory.md, growth-rule variants)."
        ),
        no_falsifier={"operator_symmetric": _G4_SYMMETRIC},
    ),
    Claim(
        id="G5",
        title="Pruning safety",
        label=Label.PROVED,
        live=(EVENT_CHECK, EVENT_HEAD_PRUNE),
        statement=(
            "Removing head h changes A_res by exactly −Π⊥ ½[C, M_a^h] Π⊥, of spectral norm ≤ G_h = ‖C "
            "M_a^h‖_F, so λ_max(A_res) moves by ≤ G_h (Weyl); with hysteresis a prune never re-triggers "
            "growth at the next check on the same probe. The output changes by exactly ΔY = A_h X W_V^h "
            "W_O^h, of row norm ≤ max_s‖X_s W_V W_O‖, and |ΔL_task| ≤ √2‖W_c‖_2 (1 + diam(P)²/(2T_P)) "
            "mean_{b,t}‖Δy_{b,t}‖."
        ),
        hypotheses=(
            Hypothesis(
                name="second_moment_symmetric", statement="C is symmetric", predicate=prune.second_moment_symmetric
            ),
            Hypothesis(
                name="heads_antisymmetric",
                statement="every M_a^h is antisymmetric",
                predicate=prune.heads_antisymmetric,
            ),
            Hypothesis(
                name="captured_orthonormal", statement="Q_cap is orthonormal", predicate=prune.captured_orthonormal
            ),
            Hypothesis(
                name="hysteresis",
                statement="prune only if λ_max(A_res) + G_h ≤ θ",
                predicate=fz.hysteresis_any_operator,
                only_for=(prune.HYSTERESIS_CHECK, prune.NO_RETRIGGER_CHECK),
            ),
        ),
        invariant=prune.check_g5,
        sympy_steps=("G5.1", "G5.2", "G5.3", "G5.4", "G5.5", "G5.6", "G5.7"),
        falsifiers=(
            Falsifier(
                hypothesis="hysteresis",
                description="without hysteresis a weak head is pruned and growth fires at the next check",
                run=fz.falsify_g5_no_hysteresis,
            ),
            Falsifier(
                hypothesis="second_moment_symmetric",
                description="C = [[1, 1], [0, 1]]: the change of A_res is −Π⊥½(CM − MCᵀ)Π⊥, not −Π⊥½[C, M]Π⊥",
                run=fz.falsify_g5_second_moment_not_symmetric,
            ),
            Falsifier(
                hypothesis="heads_antisymmetric",
                description="a symmetric M_a^h: the change of A_res is symmetric, the claimed −Π⊥½[C, M]Π⊥ is not",
                run=fz.falsify_g5_heads_not_antisymmetric,
            ),
            Falsifier(
                hypothesis="captured_orthonormal",
                description="Q_cap = 2e₁: Π⊥ = diag(−3, 1) expands, λ_max moves by 1.35 > G_h ≈ 1.005",
                run=fz.falsify_g5_capture_not_orthonormal,
            ),
        ),
        code=(
            "reference.incrt.controller.prune_check",
            "reference.incrt.operators.head_strength",
            "reference.incrt.operators.commutator_form",
            "reference.model.head_output",
            "reference.invariants.pruning.task_loss_change_bound",
            "reference.invariants.pruning.head_output_bound",
            "reference.invariants.pruning.prototype_lipschitz",
            "reference.invariants.pruning.readout_lipschitz",
        ),
        implemented=True,
        conclusion=fz.g5_conclusion,
    ),
    Claim(
        id="G6",
        title="Tracker agreement",
        label=Label.PROVED,
        live=(EVENT_CHECK,),
        statement=(
            "For static A with a simple tracked eigenvalue and a start not orthogonal to it, normalised Oja"
            " with η(λ_max − λ_min) < 2 and MCA-EXIN with η(λ_max − λ_min) < 2‖w_0‖² converge linearly to "
            "the exact λ_max / λ_min and eigenvectors (up to sign): tan∠_t ≤ Π q(α_k) tan∠_0. During "
            "training the gap to the exact oracle is measured and reported at every check."
        ),
        hypotheses=(
            _SYM,
            Hypothesis(
                name="step_size",
                statement="α_t (λ_max − λ_min) < 2 for every step",
                predicate=fz.step_size_any_operator,
            ),
            Hypothesis(
                name="tracked_gap", statement="the tracked eigenvalue is simple", predicate=fz.tracked_gap_any_operator
            ),
            Hypothesis(
                name="start_not_orthogonal", statement="v ᵀ w_0 ≠ 0", predicate=fz.start_not_orthogonal_any_operator
            ),
        ),
        invariant=inv.check_g6,
        sympy_steps=("G6.1", "G6.2", "G6.3", "G6.4"),
        falsifiers=(
            Falsifier(
                hypothesis="step_size",
                description=(
                    "normalised Oja with ηΔ = 3 on spectrum {1, 0, −1}: the top eigenvector is a "
                    "repelling fixed point; the iterate does not converge to v_1 but settles on a 2-cycle"
                    " at a constant angle atan(1/√5) ≈ 0.4205 rad from it (Rayleigh quotient 2/3 instead "
                    "of 1)"
                ),
                run=fz.falsify_g6_step_too_large,
            ),
            Falsifier(
                hypothesis="operator_symmetric",
                description=(
                    "A = [[1, 5], [0, 0]], η = 1 (ηΔ = 1 < 2): Oja is caught by an attracting period-3 cycle; "
                    "the Rayleigh quotient of a non-normal A leaves [λ_min, λ_max]"
                ),
                run=fz.falsify_g6_not_symmetric,
            ),
            Falsifier(
                hypothesis="tracked_gap",
                description=(
                    "spectrum {1, 1, −1}: Oja converges to the projection of w_0 on the top eigenspace, at a "
                    "fixed angle from the oracle's eigenvector"
                ),
                run=fz.falsify_g6_repeated_top_eigenvalue,
            ),
            Falsifier(
                hypothesis="start_not_orthogonal",
                description="A = diag(1, 0, −1), w_0 ⟂ e₁: the e₁-coordinate stays exactly 0, Oja converges to e₂",
                run=fz.falsify_g6_start_orthogonal,
            ),
        ),
        code=(
            "reference.incrt.trackers.oja_step",
            "reference.incrt.trackers.mca_exin_step",
            "reference.incrt.trackers.tracker_tan_bound",
            "reference.incrt.trackers.eigenvector_sin_bound",
            "reference.incrt.trackers.tracked_gap_certified",
            "reference.incrt.trackers.step_size_certified",
            "reference.incrt.trackers.tracker_gap",
            "reference.incrt.trackers.oja_step_limit",
            "reference.incrt.trackers.mca_exin_step_limit",
            "reference.incrt.trackers.oja_track",
            "reference.incrt.trackers.mca_exin_track",
            "reference.incrt.trackers.certified_step",
        ),
        implemented=True,
        conclusion=fz.g6_conclusion,
        notes="The label is proved for static A; on training runs the same statistic is measured.",
    ),
)


__all__ = [
    "INCRT_CLAIMS",
]
