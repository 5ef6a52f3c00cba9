"""Coupling claims R1–R4 (SPEC §4): the paper's main finding, labelled as the paper supports them.

R1's lemma (a) is proved and carried here as R1's invariant (hypotheses, sympy step R1.1, the check in
:mod:`reference.invariants.coupling`); R1(b), R2 and R4 are measurements: their statistics are defined
in :mod:`reference.coupling_statistics` (``code``), recorded at every growth check and reported by the
audit, never judged pass/fail. R3 is a study (``docs/studies/time-scales.md``): its stability criteria
are pure functions of a run record in :mod:`reference.coupling_statistics` (``code``); the sweep that
applies them is ``ddcl_incrt.studies.time_scales``.
"""

from __future__ import annotations

from reference.claims.records import Claim, Hypothesis, Label
from reference.invariants import coupling as inv
from reference.log import EVENT_BIRTH

COUPLING_CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="R1",
        title="Mutual reinforcement",
        label=Label.PAPER_CLAIM,
        statement=(
            "(a) proved lemma: with mutually orthogonal head write-subspaces, squared prototype distances "
            "split into per-subspace terms; (b) measured: prototype separation before vs after each growth "
            "event."
        ),
        hypotheses=(
            Hypothesis(
                name="rows_orthogonal",
                statement="every token row of Y is orthogonal to every row of U (the new head's subspace)",
                predicate=inv.rows_orthogonal,
            ),
            Hypothesis(
                name="assignment_has_mass",
                statement="Q row-stochastic, every column with positive mass",
                predicate=inv.assignment_has_mass,
            ),
        ),
        invariant=inv.r1a_orthogonal_split,
        live=(EVENT_BIRTH,),
        sympy_steps=("R1.1",),
        code=(
            "reference.coupling_statistics.fixed_assignment_centroids",
            "reference.coupling_statistics.squared_pair_distances",
            "reference.coupling_statistics.prototype_separation",
            "reference.coupling_statistics.pearson",
        ),
        implemented=True,
        notes=(
            "(a) is checked at every birth on the probe (the tokens before it, the newborn's write, their fixed "
            "assignments), promised only where the write is orthogonal to the tokens, and by tests and `prove`; "
            "(b) is measured at every growth check and reported by the audit."
        ),
    ),
    Claim(
        id="R2",
        title="Granularity hierarchy",
        label=Label.MEASURED,
        statement=("Per head by birth order: τ_h, attention entropy, birth eigenvalue; spread Var(log τ_h) over time."),
        code=(
            "reference.coupling_statistics.attention_entropy",
            "reference.coupling_statistics.log_temperature_variance",
        ),
        implemented=True,
    ),
    Claim(
        id="R3",
        title="Two time scales",
        label=Label.PAPER_CLAIM,
        study="python -m ddcl_incrt.studies.time_scales --out DIR",
        statement=(
            "Joint training is stable when prototypes learn faster than the encoder; measured against η_enc/η_P."
        ),
        code=(
            "reference.coupling_statistics.stability_criteria",
            "reference.coupling_statistics.free_energy_descent",
            "reference.coupling_statistics.separation_bounded",
            "reference.coupling_statistics.prototypes_distinct",
            "reference.coupling_statistics.mass_spread",
            "reference.coupling_statistics.finite_losses",
            "reference.coupling_statistics.task_loss_bounded",
        ),
        implemented=True,
        notes=(
            "A study (docs/studies/time-scales.md): the sweep over η_enc/η_P is "
            "`python -m ddcl_incrt.studies.time_scales`; the criteria judge the study's runs, never a training run."
        ),
    ),
    Claim(
        id="R4",
        title="Negative feedback",
        label=Label.MEASURED,
        statement=(
            "Correlation between prototype separation and the variance-gradient force over training (paper: −0.98)."
        ),
        code=(
            "reference.coupling_statistics.prototype_separation",
            "reference.coupling_statistics.variance_gradient_norm",
            "reference.coupling_statistics.pearson",
        ),
        implemented=True,
    ),
)


__all__ = [
    "COUPLING_CLAIMS",
]
