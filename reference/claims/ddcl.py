"""DDCL claims D1–D6 (SPEC §4): statements, hypotheses, invariants, sympy steps, falsifiers."""

from __future__ import annotations

from reference.claims.records import Claim, Falsifier, Hypothesis, Label
from reference.falsify import ddcl as falsify
from reference.invariants import ddcl as inv
from reference.log import EVENT_CHECK, EVENT_PROTOTYPE_PRUNE, EVENT_TRAIN_STEP

_T_POSITIVE = Hypothesis(name="temperature_positive", statement="T_P > 0", predicate=inv.temperature_positive)

# Reasons why a hypothesis has no falsifier (Claim.no_falsifier); tests/test_falsify.py checks each claim.
_D2_T_POSITIVE = (
    "None can exist: T_P > 0 only makes the statement defined. At T_P = 0, softmax(−D/T_P) and F divide by "
    "zero (the limit T_P → 0⁺ is hard assignment, where F = mean_t min_j D_tj is not differentiable at ties). "
    "For every T_P ≠ 0 each identity is algebraic in T_P: log q_tj = −D_tj/T_P − log Z_t gives L_q = F + "
    "T_P·H̄; ∂F/∂D = Q/n (softmax is the gradient of log-sum-exp) gives ∇_P F = ∇_P L_q|_Q = (2/n)(P "
    "diag(Qᵀ1) − YᵀQ); the full gradient through Q is the same algebra; ∇_P V = 2PΣ_q, Σ_q ⪰ 0 and Σ_q1 = 0 "
    "hold for every row-stochastic Q, which softmax(−D/T_P) is for T_P < 0 too. So D2 holds for T_P < 0 "
    "(checked at T_P = −1 by d2_statement_any_temperature): the hypothesis could read T_P ≠ 0."
)
_D5_SOLE_OWNER = (
    "None can exist: in exact arithmetic this hypothesis is K ≥ 2 alone, and K ≥ 2 only makes the statement "
    "defined. For K ≥ 2 softmax is strictly positive, so q_tj < 1 always; with K = 1 removing the only "
    "prototype leaves no free energy (F' = +∞; the reference refuses; in the extended reals ΔF = +∞ = "
    "−(T_P/n)Σ log 0 lies in [0, ∞]). The floating-point part (q_tj < 1 as computed) is about evaluating the "
    "formula: when e^{−(D_tk − D_tj)/T_P} underflows for every k ≠ j, q_tj rounds to 1, log(1 − q_tj) and "
    "q_tj/(1 − q_tj) evaluate to ∓∞ and the invariant's bound is infinite (uncertified), while the true ΔF is "
    "finite and satisfies the statement with log(1 − q_tj) = lse_{k≠j}(−D_tk/T_P) − lse_k(−D_tk/T_P) "
    "(d5_statement_any_temperature, checked on such a token)."
)
_D6_ETA_POSITIVE = (
    "None can exist, and the hypothesis is not needed at all: every part of D6 holds for every real η. ΔP = "
    "−η(Y_bᵀY_b + 11ᵀ)∇_P L is linear in η (P is linear in (W, b)), so it lies in range(Y_bᵀY_b + 11ᵀ) = "
    "span(rows Y_b) + span(1_d) for any η; positive semidefiniteness and the stationary-point equivalence do "
    "not involve η. η > 0 only makes the step a descent step, which D6 does not claim (the reference's "
    "dcl_step refuses η ≤ 0; the statement is checked directly at η = 0 and η = −1/2)."
)

DDCL_CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="D1",
        title="Decomposition",
        label=Label.PROVED,
        live=(EVENT_TRAIN_STEP,),
        statement=(
            "For any Y, P and row-stochastic Q: L_q = L_OLS + V exactly and V ≥ 0; V = 0 iff every q_t is "
            "one-hot or the prototypes it weights coincide (per token E_q‖y − p‖² = ‖y − E_q p‖² + "
            "Var_q(p))."
        ),
        hypotheses=(
            Hypothesis(name="q_row_stochastic", statement="Q ≥ 0 with unit row sums", predicate=inv.q_row_stochastic),
        ),
        invariant=inv.d1_decomposition,
        sympy_steps=("D1.1", "D1.2"),
        falsifiers=(
            Falsifier(
                hypothesis="q_row_stochastic",
                description="rows of Q summing to 2: L_q − L_OLS − V = (s − 1)(‖y‖² − ‖Pq‖²) per token ≠ 0",
                run=falsify.d1_rows_not_stochastic,
            ),
        ),
        code=("reference.ddcl.quantisation_loss", "reference.ddcl.ols_loss", "reference.ddcl.prototype_variance"),
        implemented=True,
        conclusion=falsify.d1_conclusion,
    ),
    Claim(
        id="D2",
        title="Free energy and gradients",
        label=Label.PROVED,
        live=(EVENT_CHECK,),
        statement=(
            "With softmax assignments L_q = F + T_P·H̄; ∇_P V|_Q = 2PΣ_q with Σ_q ⪰ 0, Σ_q 1 = 0, Σ_q = 0 "
            "iff hard; ∇_P F = ∇_P L_q|_Q = (2/n)(P diag(Qᵀ1) − YᵀQ); the full gradient of L_q through Q is"
            " derived too."
        ),
        hypotheses=(_T_POSITIVE,),
        invariant=inv.d2_free_energy_gradients,
        sympy_steps=("D2.1", "D2.2", "D2.3", "D2.4", "D2.5", "D2.6"),
        conclusion=falsify.d2_conclusion,
        no_falsifier={"temperature_positive": _D2_T_POSITIVE},
        code=(
            "reference.ddcl.free_energy",
            "reference.ddcl.mean_entropy",
            "reference.ddcl.assignment_covariance",
            "reference.ddcl.grad_free_energy",
            "reference.ddcl.grad_quantisation_fixed_Q",
            "reference.ddcl.grad_variance_fixed_Q",
            "reference.ddcl.grad_quantisation_full",
            "reference.ddcl.pullback_distances",
        ),
        implemented=True,
    ),
    Claim(
        id="D3",
        title="Lyapunov stability, frozen encoder",
        label=Label.PROVED,
        live=(EVENT_CHECK,),
        statement=(
            "∇²F ⪯ (2/n)diag(n_j)⊗I ⪯ 2I, so P ← P − η∇_P F with 0 < η < 1 gives F(P⁺) ≤ F(P) − "
            "η(1−η)‖∇F‖²: F is a Lyapunov function and Σ‖∇F_t‖² < ∞; for η ≤ 1/2 every prototype stays in "
            "the convex hull of the data and its initial position."
        ),
        hypotheses=(
            _T_POSITIVE,
            Hypothesis(
                name="step_size_in_unit_interval", statement="0 < η < 1", predicate=inv.step_size_in_unit_interval
            ),
        ),
        invariant=inv.d3_lyapunov,
        sympy_steps=("D3.1", "D3.2", "D3.3"),
        falsifiers=(
            Falsifier(
                hypothesis="step_size_in_unit_interval",
                description="η = 1.5 with one prototype: F increases",
                run=falsify.d3_step_size_too_large,
            ),
            Falsifier(
                hypothesis="temperature_positive",
                description=(
                    "T_P = −1/4: F is a soft maximum of the distances, not 2-smooth, and a step with η = 1/2 "
                    "increases it"
                ),
                run=falsify.d3_negative_temperature,
            ),
        ),
        code=("reference.ddcl.hessian_free_energy", "reference.ddcl.prototype_step"),
        implemented=True,
        conclusion=falsify.d3_conclusion,
        notes=(
            "The convex-hull part needs the stronger 0 < η ≤ 1/2 (predicate step_size_at_most_half); the "
            "invariant checks it only then."
        ),
    ),
    Claim(
        id="D4",
        title="Anti-collapse",
        label=Label.PROVED,
        live=(EVENT_CHECK,),
        statement=(
            "The collapsed configuration (all prototypes at ȳ) is stationary for F and L_q. With K ≥ 2 it "
            "is unstable for F iff T_P < T_c = 2λ_max(Cov Y), and for L_q iff T_P < 4λ_max(Cov Y) = 2T_c."
        ),
        hypotheses=(
            _T_POSITIVE,
            Hypothesis(name="at_least_two_prototypes", statement="K ≥ 2", predicate=inv.at_least_two_prototypes),
            Hypothesis(
                name="temperature_below_critical",
                statement="T_P < T_c = 2λ_max(Cov Y)",
                predicate=inv.temperature_below_critical,
            ),
        ),
        invariant=inv.d4_anti_collapse,
        sympy_steps=("D4.1", "D4.2", "D4.3", "D4.4"),
        falsifiers=(
            Falsifier(
                hypothesis="temperature_below_critical",
                description="T_P = 2T_c: collapse is a strict local minimum",
                run=falsify.d4_temperature_above_critical,
            ),
            Falsifier(
                hypothesis="at_least_two_prototypes",
                description="K = 1: collapse is the unique minimum at any T_P",
                run=falsify.d4_single_prototype,
            ),
            Falsifier(
                hypothesis="temperature_positive",
                description="T_P = −1 < T_c: every Hessian eigenvalue at collapse is ≥ 2/K, collapse is stable",
                run=falsify.d4_negative_temperature,
            ),
        ),
        code=(
            "reference.ddcl.collapse_critical_temperatures",
            "reference.ddcl.hessian_quantisation",
            "reference.invariants.ddcl.collapse_status",
            "reference.ddcl.hessian_free_energy",
        ),
        implemented=True,
        conclusion=falsify.d4_conclusion,
        notes=(
            "The invariant checks the stationarity and the exact smallest Hessian eigenvalues, which hold at "
            "every temperature; 'unstable iff T_P < T_c' follows from their sign and is reported by "
            "collapse_status."
        ),
    ),
    Claim(
        id="D5",
        title="Prototype pruning safety",
        label=Label.PROVED,
        live=(EVENT_PROTOTYPE_PRUNE,),
        statement=(
            "Removing prototype j changes F by ΔF = −(T_P/n)Σ_t log(1 − q_tj) ∈ [0, (T_P/n)Σ_t q_tj/(1 − q_tj)]."
        ),
        hypotheses=(
            _T_POSITIVE,
            Hypothesis(
                name="prototype_not_sole_owner",
                statement="K ≥ 2 and q_tj < 1 for all t",
                predicate=falsify.not_sole_owner,
            ),
        ),
        invariant=inv.d5_prototype_pruning,
        sympy_steps=("D5.1", "D5.2"),
        falsifiers=(
            Falsifier(
                hypothesis="temperature_positive",
                description="T_P = −1: ΔF = −(T_P/n)Σ log(1 − q_tj) still holds but is negative",
                run=falsify.d5_negative_temperature,
            ),
        ),
        code=("reference.ddcl.remove_prototype", "reference.ddcl.removal_free_energy_change"),
        implemented=True,
        conclusion=falsify.d5_conclusion,
        no_falsifier={"prototype_not_sole_owner": _D5_SOLE_OWNER},
    ),
    Claim(
        id="D6",
        title="Dual–vanilla equivalence",
        label=Label.PROVED,
        not_live=(
            "the layer trains free prototypes P (SPEC §2); D6 is about the dual competitive layer, P = Y_bᵀW + "
            "1bᵀ, which only the cluster study's dcl settings train. There it is checked by the tests and "
            "`ddcl-incrt prove`, not yet at the study's steps."
        ),
        statement=(
            "A DCL gradient step on (W, b) moves the prototypes by ΔP = −η(Y_bᵀY_b + 1_d1_dᵀ)∇_P L (the "
            "vanilla step preconditioned by a PSD matrix); prototypes move only inside span(rows Y_b) + "
            "span(1_d); when that matrix is nonsingular both layers have the same stationary points."
        ),
        hypotheses=(
            Hypothesis(name="eta_positive", statement="η > 0", predicate=inv.eta_positive),
            Hypothesis(
                name="dcl_preconditioner_nonsingular",
                statement="Y_bᵀY_b + 11ᵀ nonsingular (stationary-point part)",
                predicate=inv.dcl_preconditioner_nonsingular,
            ),
            Hypothesis(
                name="gradient_step",
                statement=(
                    "the update of (W, b) is the gradient step −η(∇_W L, ∇_b L), not Adam's (ΔP = −ηM∇_P L part only)"
                ),
                predicate=inv.gradient_step,
                only_for=("max|ΔP + η",),
            ),
        ),
        invariant=inv.d6_dual_vanilla,
        sympy_steps=("D6.1", "D6.2"),
        falsifiers=(
            Falsifier(
                hypothesis="dcl_preconditioner_nonsingular",
                description=(
                    "one feature row in R³: ∇_P F in the kernel of Y_bᵀY_b + 11ᵀ, so the DCL is stationary "
                    "where the vanilla layer is not"
                ),
                run=falsify.d6_singular_preconditioner,
            ),
            Falsifier(
                hypothesis="gradient_step",
                description=(
                    "one Adam step (the optimiser the study and the co-author's code train with): ΔP = −η(2, 3) "
                    "while −ηM∇_P L = −η(3, 6); no rate makes them equal (relative residual 0.124 at the best)"
                ),
                run=falsify.d6_adam_step,
            ),
        ),
        code=(
            "reference.dcl.dcl_prototypes",
            "reference.dcl.dcl_gradients",
            "reference.dcl.dcl_preconditioner",
            "reference.dcl.dcl_step",
            "reference.invariants.ddcl.d6_any_update",
        ),
        implemented=True,
        conclusion=falsify.d6_conclusion,
        no_falsifier={"eta_positive": _D6_ETA_POSITIVE},
        notes=(
            "Under Adam (or any other update of (W, b)) two parts still hold, and only they: ΔP lies in "
            "span(rows Y_b) + span(1_d), since P is linear in (W, b) (proved, the same algebra; checked for "
            "Adam steps by reference.invariants.ddcl.d6_any_update); and the stationary points are the "
            "loss's, not the optimiser's: ‖∇_W‖² + ‖∇_b‖² = tr(∇_Pᵀ M ∇_P) (proved), so Adam, which rests from "
            "zero moments iff (∇_W, ∇_b) = 0, rests exactly where the vanilla layer is stationary when M is "
            "nonsingular (a stated consequence). ΔP = −ηM∇_P L does not hold under Adam (falsifier "
            "d6_adam_step; residual 0.12–0.28 reported on the co-author's Adam-trained code, not measured here)."
        ),
    ),
)


__all__ = [
    "DDCL_CLAIMS",
]
