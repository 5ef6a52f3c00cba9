"""What an audit concluded, computed from the run record and the claim registry only.

:func:`claim_rows` is the claim table (one row per claim of the registry: label, hypotheses, checks
certified / uncertified / violated, the tightest certified check as the fraction of its bound used);
:func:`event_rows` the derived architecture's history with the reason recorded at each event;
:func:`findings` the places where the run disagrees with what the papers claim, in plain words;
:func:`exit_code` is non-zero exactly when a ``proved`` claim was violated (``measured`` and
``paper-claim`` results never change it). :func:`audit_summary` gathers them into the
``summary.json`` document, which the report renders and a test compares with the registry.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from scipy import stats

from ddcl_incrt.audit.verdicts import (
    LOOSE_ANGLE_RAD,
    MIN_CORRELATION_N,
    TWO_POINTS,
    decided_by_trackers,
    g6_loose_bounds,
    tracker_gaps,
    verdict_rows,
)
from ddcl_incrt.claim_checks import FalsifierResult, StepResult
from ddcl_incrt.exit_codes import FAILED_CHECK, OK
from reference.claims.records import Claim, Label
from reference.claims.registry import REGISTRY
from reference.coupling_statistics import log_temperature_variance, pearson
from reference.incrt.author_code import PHI_W_FACTOR, T_PRUNE, author_prune_dwell, author_steps, min_dwell_time
from reference.incrt.controller import EventKind
from training.record import RunRecord

SCHEMA = "ddcl-incrt audit summary v1"


@dataclass(frozen=True)
class ClaimRow:
    """One claim of the registry as this run saw it.

    ``checks`` counts every check recorded for the claim (:class:`training.record.ClaimSummary`). Where the
    claim's hypotheses held on the live state: ``certified`` held with a bound that could have failed,
    ``uncertified`` held with one that could not (infinite or vacuous: not evidence), ``violations``
    failed. ``unpromised``: checks where a hypothesis failed (``failed_hypotheses``, first at
    ``first_unpromised_step``), so nothing was promised; ``failed_unpromised`` of them failed anyway.
    ``unwatched``: checks whose hypotheses the record did not evaluate (an older record). ``tightest``
    is the largest fraction of its bound a certified, promised check used (``value / bound``),
    ``tightest_check`` its name.

    ``status``: ``violated`` (a check failed where the hypotheses held), ``held`` (at least one certified
    check where they held, none failed), ``not promised`` (every check was made where a hypothesis
    failed), ``nothing certified`` (checked, but every bound was vacuous or infinite), ``not checked
    in this run`` (checked by the trainer at its event, but no such event happened in this run, e.g. G5
    without a head prune), ``not checked live`` (implemented, but no training event checks it: the
    registry's ``Claim.live`` is empty), ``study: run ...`` (measured by a study of many runs: the
    registry's ``Claim.study``), or ``not implemented``."""

    claim_id: str
    title: str
    label: str
    hypotheses: tuple[str, ...]
    checks: int
    certified: int
    uncertified: int
    violations: int
    tightest: float | None
    tightest_check: str
    status: str
    unpromised: int = 0
    failed_unpromised: int = 0
    failed_hypotheses: tuple[str, ...] = ()
    first_unpromised_step: int | None = None
    unwatched: int = 0


# The status of a `measured` claim (R2, R4): its statistics are reported, never judged.
MEASURED_STATUS = "measured (see the coupling measurements)"


def claim_rows(record: RunRecord) -> list[ClaimRow]:
    summary = record.summary()
    rows = []
    for cid, claim in REGISTRY.items():
        s = summary.get(cid)
        if s is not None:
            status = (
                "violated"
                if s.violations
                else "held"
                if s.certified
                else "not promised"
                if s.unpromised == s.count
                else "nothing certified"
            )
        elif not claim.implemented:
            status = "not implemented"
        elif claim.study:
            status = f"study: run `{claim.study}`"
        elif claim.label is Label.MEASURED:
            status = MEASURED_STATUS
        elif not claim.live:
            status = "not checked live"
        else:
            status = "not checked in this run"
        rows.append(
            ClaimRow(
                claim_id=cid,
                title=claim.title,
                label=claim.label.value,
                hypotheses=tuple(h.name for h in claim.hypotheses),
                checks=0 if s is None else s.count,
                certified=0 if s is None else s.certified,
                uncertified=0 if s is None else s.uncertified,
                violations=0 if s is None else s.violations,
                tightest=None if s is None else s.tightest,
                tightest_check="" if s is None else s.tightest_check,
                status=status,
                unpromised=0 if s is None else s.unpromised,
                failed_unpromised=0 if s is None else s.failed_unpromised,
                failed_hypotheses=() if s is None else s.failed_hypotheses,
                first_unpromised_step=None if s is None else s.first_unpromised_step,
                unwatched=0 if s is None else s.unwatched,
            )
        )
    return rows


def checked_elsewhere(steps: Sequence[StepResult], falsifiers: Sequence[FalsifierResult]) -> list[dict[str, Any]]:
    """Per claim of the registry with a sympy step or a falsifier row: the steps proved of those run (and
    the ids that failed), and the counterexamples that hold up (and the hypotheses whose did not), with
    the hypotheses for which the registry states why none can exist."""
    out = []
    for cid in REGISTRY:
        mine = [s for s in steps if s.claim == cid]
        rows = [f for f in falsifiers if f.claim == cid]
        if not mine and not rows:
            continue
        ces = [f for f in rows if not f.reason]
        out.append(
            {
                "claim_id": cid,
                "steps": len(mine),
                "proved": sum(1 for s in mine if s.proved),
                "failed_steps": [s.step for s in mine if not s.proved],
                "counterexamples": len(ces),
                "hold_up": sum(1 for f in ces if f.holds_up),
                "failed_falsifiers": [f.hypothesis for f in ces if not f.holds_up],
                "no_falsifier": [f.hypothesis for f in rows if f.reason],
            }
        )
    return out


def elsewhere_findings(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """A finding for every sympy step that failed and every counterexample that did not hold up."""
    out = []
    for r in rows:
        if r["failed_steps"]:
            out.append(f"Claim {r['claim_id']}: the sympy steps {', '.join(r['failed_steps'])} of its proof failed.")
        if r["failed_falsifiers"]:
            out.append(
                f"Claim {r['claim_id']}: the counterexamples dropping {', '.join(r['failed_falsifiers'])} did not "
                "hold up (the conclusion held, or other hypotheses failed too)."
            )
    return out


def configuration(record: RunRecord) -> dict[str, dict[str, Any]]:
    """Every setting of the run: the layer, the training (learning rates by group) and the growth rule
    (θ and φ_g as calibrated)."""
    return {
        "layer": asdict(record.layer_config),
        "training": asdict(record.train_config),
        "growth": asdict(record.growth_config),
    }


def claim_statements(registry: Mapping[str, Claim] = REGISTRY) -> list[dict[str, Any]]:
    """Every claim's statement and its hypotheses' statements, from the registry."""
    return [
        {
            "claim_id": cid,
            "title": c.title,
            "label": c.label.value,
            "statement": c.statement,
            "hypotheses": [{"name": h.name, "statement": h.statement} for h in c.hypotheses],
        }
        for cid, c in registry.items()
    ]


def not_live_lines(registry: Mapping[str, Claim] = REGISTRY) -> list[str]:
    """Why each implemented claim that no training event checks is not checked live (``Claim.not_live``)."""
    return [f"{cid}: {c.not_live}" for cid, c in registry.items() if c.not_live]


def checks_outside_registry(record: RunRecord, registry: Mapping[str, Claim] = REGISTRY) -> list[str]:
    """Where a run and the registry disagree on what is checked live: an invariant recorded at an event
    its claim's ``live`` does not name (or for a claim the registry lacks). Empty when they agree; the
    audit's "not checked live" statuses are read from ``live``, so a disagreement would mislabel a claim."""
    out = []
    for key in sorted({(r.result.claim_id, r.event) for r in record.invariants}):
        cid, event = key
        claim = registry.get(cid)
        if claim is None:
            out.append(f"{cid}: recorded at {event}, but the registry has no such claim")
        elif event not in claim.live:
            out.append(f"{cid}: recorded at {event}, but its registry entry lists live={list(claim.live)}")
    return out


@dataclass(frozen=True)
class EventRow:
    """One event of the architecture's history and the comparison that decided it."""

    step: int
    kind: str
    unit: str  # "head 3", "prototype 7", or "" for near-ties without one
    reason: str


def event_rows(record: RunRecord) -> list[EventRow]:
    out = []
    author = "author_code" in record.growth_config.variants
    for e in record.events:
        unit = f"head {e.head_id}" if e.head_id is not None else ""
        unit = f"prototype {e.prototype_id}" if e.prototype_id is not None else unit
        if e.kind is EventKind.BIRTH and author:
            reason = (
                f"the trackers' λ̂_max = {e.statistic:.4g} > θ = {e.threshold:.4g} (margin {e.margin:+.3g}), "
                "λ̂_min < θ/2 and the adaptive dwell had passed (author_code)"
            )
        elif e.kind is EventKind.HEAD_PRUNE and author:
            reason = (
                f"G_h = {e.statistic:.4g} < φ_g = {e.threshold:.4g} for {T_PRUNE} checks (author_code: no hysteresis)"
            )
        elif e.kind is EventKind.BIRTH:
            reason = (
                f"λ_max(A_res) = {e.statistic:.4g} > θ = {e.threshold:.4g} (margin {e.margin:+.3g}) "
                "and the dwell had passed"
            )
        elif e.kind is EventKind.HEAD_PRUNE:
            reason = (
                f"G_h = {e.statistic:.4g} < φ_g = {e.threshold:.4g} for T_prune checks; hysteresis "
                f"λ_max + G_h = {(e.lam_max or 0.0) + e.statistic:.4g} ≤ θ"
            )
        elif e.kind is EventKind.PROTOTYPE_PRUNE:
            reason = f"mass n_j/n = {e.statistic:.4g} < ε_K = {e.threshold:.4g} for T_prune checks"
        else:
            reason = (
                f"near-tie in the {e.decision} decision: {e.statistic:.6g} vs {e.threshold:.6g} "
                f"(margin {e.margin:+.2g})"
            )
        out.append(EventRow(e.step, e.kind.value, unit, reason))
    return out


@dataclass(frozen=True)
class AuthorPacing:
    """What paced births under the growth variant ``author_code`` in one run, from its record: the checks,
    those with the exact ``λ_max(A_res) > θ``, those with both of the author's gates open (``λ̂_max > θ``
    and ``λ̂_min < θ/2``; the trackers' estimates are ``λ̂_max = λ_max − gap`` and ``λ̂_min = λ_min + gap``,
    since a Rayleigh quotient lies inside the spectrum), each check's adaptive growth dwell
    ``⌈κ_T ln(1/ε)/(η₊Δ₊²)⌉`` from its recorded spectrum on the author's scale ``N = probe_size · seq_len``,
    ``λ̂_max/λ_max`` at each birth, and the constant prune dwell."""

    checks: int
    exact_above: int
    gates_open: int
    dwells: tuple[int, ...]
    birth_ratios: tuple[float, ...]
    prune_dwell: int

    @property
    def median_dwell(self) -> float | None:
        return float(statistics.median(self.dwells)) if self.dwells else None


def author_code_pacing(record: RunRecord) -> AuthorPacing:
    """:class:`AuthorPacing` of a run under ``author_code`` (any run: the statistics are the record's)."""
    checks = record.checks
    theta = record.growth_config.theta
    d = record.layer_config.d
    N = record.train_config.probe_size * record.layer_config.seq_len
    eta_plus = author_steps(d)[0]
    by_step = {c.step: c for c in checks}
    births = [e for e in record.events if e.kind is EventKind.BIRTH and e.step in by_step]
    return AuthorPacing(
        checks=len(checks),
        exact_above=sum(1 for c in checks if c.lam_max > theta),
        gates_open=sum(
            1 for c in checks if c.lam_max - c.oja_lam_gap > theta and c.lam_min + c.exin_lam_gap < PHI_W_FACTOR * theta
        ),
        dwells=tuple(
            min_dwell_time(eta_plus, max(N * (c.spectrum[0] - c.spectrum[1]), 1e-8))
            for c in checks
            if len(c.spectrum) > 1
        ),
        birth_ratios=tuple(e.statistic / by_step[e.step].lam_max for e in births if by_step[e.step].lam_max),
        prune_dwell=author_prune_dwell(d),
    )


def author_code_findings(record: RunRecord) -> list[str]:
    """What paced births and pruning under the growth variant ``author_code`` (:func:`author_code_pacing`)."""
    if not record.checks:
        return []
    p = author_code_pacing(record)
    births = sum(1 for e in record.events if e.kind is EventKind.BIRTH)
    r = p.birth_ratios
    dw = sorted(p.dwells)
    return [
        f"Growth variant author_code: births are decided by the trackers' one-step Rayleigh quotients, not by the "
        f"exact λ_max. The exact λ_max(A_res) was above θ at {p.exact_above} of {p.checks} checks; both of the "
        f"author's gates (λ̂_max > θ and λ̂_min < θ/2) were open at {p.gates_open}; {births} births"
        + (f", at λ̂_max/λ_max = {min(r):.2f}–{max(r):.2f}" if r else "")
        + ". The adaptive growth dwell from each check's gap was "
        + (f"{dw[0]}–{dw[-1]} checks (median {p.median_dwell:g})" if dw else "not computable")
        + f", against {p.checks} checks in the run.",
        f"Growth variant author_code: its prune dwell is {p.prune_dwell} checks at d = {record.layer_config.d} (a "
        f"constant, T_d(η₊, Δ = 0.1)); the run had {p.checks} checks, so no head could be pruned, whatever its G_h.",
    ]


def findings(record: RunRecord) -> list[str]:
    """Plain-words statements where the run disagrees with the papers' claims or their spirit."""
    out: list[str] = []
    arch = record.architecture
    births = [e for e in record.events if e.kind is EventKind.BIRTH]
    chance = 1.0 / record.layer_config.n_classes
    if record.test_accuracy <= chance:
        out.append(
            f"Test accuracy {record.test_accuracy:.3f} is at or below chance (1/{record.layer_config.n_classes} = "
            f"{chance:.3f} for uniform guessing): the run learned nothing the test set rewards."
        )
    planted = record.dataset_meta.get("planted_heads")
    if isinstance(planted, int) and arch.n_heads != planted:
        out.append(
            f"The task was planted to be solved with {planted} heads; the run ended with {arch.n_heads} "
            f"({arch.births} births, {arch.head_prunes} head prunes), so the derived architecture did not find "
            "the planted count."
        )
    if arch.births > 0 and arch.head_prunes == 0:
        out.append(
            f"The head count only ratcheted up: {arch.births} births and no head was pruned, so the final "
            f"{arch.n_heads} heads are the number of threshold crossings, not a count the rule settled on."
        )
    T_d = record.train_config.T_d
    g = record.train_config.check_every
    if "author_code" in record.growth_config.variants:
        out.extend(author_code_findings(record))
    elif len(births) > 1:
        # the first check at or after the dwell: the smallest multiple of g that is ≥ previous birth + T_d
        at_dwell = sum(1 for prev, e in itertools.pairwise(births) if e.step == -(-(prev.step + T_d) // g) * g)
        if at_dwell >= (len(births) - 1) / 2:
            out.append(
                f"{at_dwell} of the {len(births) - 1} later births came at the first check the dwell "
                f"T_d = {T_d} allowed: growth was paced by the dwell timer, not by the residual signal."
            )
    phi = record.growth_config.phi_g
    strengths = [g for c in record.checks for g in c.head_strength.values()]
    if strengths and min(strengths) >= phi and "author_code" not in record.growth_config.variants:
        out.append(
            f"No head was ever weak enough to prune: the smallest G_h seen was {min(strengths):.3g}, "
            f"above φ_g = {phi:.3g}; pruning could not fire in this run."
        )
    if record.checks:
        last = record.checks[-1]
        if last.lam_max > record.growth_config.theta:
            out.append(
                f"At the last check λ_max(A_res)/θ = {last.lam_max / record.growth_config.theta:.2f} > 1: the run "
                "ended with residual directional information above the threshold (growth had not terminated)."
            )
    r4_all = coupling_measurements(record)["R4"]
    r4, regimes = r4_all["corr_separation_grad_V"], r4_all["by_regime"]
    weak = [g for g in regimes if g["r"] is not None and g["n"] >= 4 and g["r"] > -0.5]
    if (r4 is not None and r4 > -0.5) or weak:
        split = "; ".join(f"{g['regime']}: {correlation_text(g)}" for g in regimes)
        out.append(
            f"R4 (negative feedback): the correlation of prototype separation with ‖∇_P V‖ over the "
            f"{r4_all['n_checks']} checks is {'n/a' if r4 is None else f'{r4:+.2f}'}; the DDCL paper reports −0.98."
            + (f" By regime, {split}." if regimes else "")
        )
    for r in claim_rows(record):
        if r.violations:
            out.append(
                f"Claim {r.claim_id} ({r.label}) was violated in {r.violations} of {r.checks} checks, each made "
                "where its hypotheses held."
            )
        if r.unpromised:
            anyway = (
                f"the conclusion failed anyway in {r.failed_unpromised} of them"
                if r.failed_unpromised
                else "its checks held anyway"
            )
            steps = sorted(
                {x.step for x in record.invariants if x.result.claim_id == r.claim_id and x.promised is False}
            )
            out.append(
                f"Claim {r.claim_id}: at {r.unpromised} of its {r.checks} checks (made at {_steps(steps)}) the "
                f"hypothesis {', '.join(r.failed_hypotheses)} failed on the live state, so the claim promised "
                f"nothing there; {anyway}."
            )
    collapse = collapse_finding(record)
    if collapse:
        out.append(collapse)
    trackers = tracker_finding(record)
    if trackers:
        out.append(trackers)
    return out


# The tracker kinds that G6's checks name in their details (``kind=oja``), as the report names them.
_TRACKER_NAMES = {"oja": "Oja", "mca_exin": "MCA-EXIN", "exin": "MCA-EXIN"}


def _g6_status_clause(record: RunRecord) -> str:
    """What G6's own checks said, for the tracker finding: the gaps it reports are allowed by G6's bounds
    only where G6 held."""
    row = next((r for r in claim_rows(record) if r.claim_id == "G6"), None)
    if row is None:
        return "G6 was not checked in this run"
    if row.status == "held":
        return "G6 held (no violated check): its bounds allow these gaps"
    if row.status == "violated":
        return f"G6 was violated at {row.violations} of its {row.checks} checks (see its row and finding)"
    return f"G6's status here is '{row.status}': its checks certify nothing about these gaps"


def tracker_finding(record: RunRecord) -> str:
    """How far the G6 eigen-trackers were from the exact eigensolver, where one was far
    (:data:`~ddcl_incrt.audit.verdicts.TRACKER_FAR_GAP`, :data:`~ddcl_incrt.audit.verdicts.TRACKER_FAR_COS`)
    or G6 certified direction bounds wider than :data:`~ddcl_incrt.audit.verdicts.LOOSE_ANGLE_RAD`: the
    worst eigenvalue gap and cosine with their steps, how many bounds say little, and whether any
    decision used the trackers (births and prunes use the exact eigensolver and ``G_h``, except under
    ``author_code``). Empty when the trackers stayed close and every certified bound was tight."""
    gaps = tracker_gaps(record)
    loose = g6_loose_bounds(record)
    if not (any(g.far for g in gaps) or loose.loose):
        return ""
    births = {e.step for e in record.events if e.kind is EventKind.BIRTH}
    parts = []
    for g in gaps:
        pair = "top" if g.name == "Oja" else "bottom"
        if not g.far:
            parts.append(
                f"{g.name} ({pair} eigenpair) stayed close (|λ̂ − λ| ≤ {g.lam_gap_theta:.2g} θ, "
                f"1 − |cos∠(û, u)| ≤ {1.0 - g.cos:.2g})"
            )
            continue
        at_birth = ", the check of a birth" if g.cos_step in births else ""
        parts.append(
            f"{g.name} ({pair} eigenpair) |λ̂ − λ| up to {g.lam_gap:.3g} = {g.lam_gap_theta:.2g} θ (step "
            f"{g.lam_step}), direction |cos∠(û, u)| down to {g.cos:.3f} (step {g.cos_step}{at_birth})"
        )
    text = "The eigen-trackers of G6 against the exact eigensolver (eigh of A_res) at the checks: " + "; ".join(parts)
    text += ". " + _g6_status_clause(record)
    if loose.loose:
        by_kind = ", ".join(f"{n} {_TRACKER_NAMES.get(k, k)}" for k, n in sorted(loose.loose_by_kind.items()))
        text += (
            f"; but {loose.loose} of its {loose.certified} certified direction checks ({by_kind}) had bounds "
            f"above {LOOSE_ANGLE_RAD:g} rad (up to {loose.widest:.3g} rad; such a bound allows |cos∠| down to "
            f"{math.cos(LOOSE_ANGLE_RAD):.2f}), so they say little about where the tracker pointed"
        )
    if decided_by_trackers(record):
        text += (
            ". Under the growth variant author_code births are decided on the trackers' estimates, so these "
            "gaps entered the run's decisions."
        )
    else:
        text += (
            ". Births are decided on the exact eigensolver (λ_max(A_res) and its eigenvector) and prunes on "
            "G_h and the prototype masses, never on the trackers, so no decision of this run was affected."
        )
    return text


def collapse_finding(record: RunRecord) -> str:
    """Why the prototype dictionary ended small, read from the record: the prototype prunes made while
    ``T_P < T_c`` (D4: collapse unstable, so the mass floor ``ε_K`` removed prototypes the dynamics had
    not kept apart) and those from the first check where D4's hypothesis ``T_P < T_c`` failed on the
    probe's tokens (collapse is then what the theory predicts), with how many prototypes still had mass
    there. Empty when the dictionary did not shrink to at most ``max(2, K_max/8)`` prototypes."""
    k0, k = record.layer_config.K_max, record.architecture.n_prototypes
    if k > max(2, k0 // 8):
        return ""
    T_P, eps = record.layer_config.T_P, record.growth_config.eps_K
    prunes = [e.step for e in record.events if e.kind is EventKind.PROTOTYPE_PRUNE]
    above = next((c for c in record.checks if not c.collapse_margin > 0.0), None)
    start = f"The prototype dictionary went from {k0} to {k} prototypes"
    if above is None:
        lowest = min((c.collapse_margin for c in record.checks), default=math.nan)
        return (
            f"{start} although T_P = {T_P:.4g} stayed below the collapse temperature T_c at every check "
            f"(smallest T_c − T_P = {lowest:.3g}), where D4 says the collapsed configuration is unstable: the "
            f"mass floor ε_K = {eps:.3g} removed {_pruned(prunes)}, so the dictionary shrank by the pruning "
            "rule, not by collapse."
        )
    before = [s for s in prunes if s < above.step]
    after = [s for s in prunes if s >= above.step]
    alive = sum(1 for m in above.mass.values() if m >= eps)
    failing = [c.step for c in record.checks if not c.collapse_margin > 0.0]
    text = start + ". "
    if before:
        text += (
            f"While T_P < T_c (collapse unstable by D4), the mass floor ε_K = {eps:.3g} removed "
            f"{_pruned(before)}: prototypes the dynamics had not kept apart. "
        )
    text += (
        f"At the check of step {above.step}, T_P = {T_P:.4g} was not below the collapse temperature "
        f"T_c = 2λ_max(Cov Y) = {above.collapse_T_c:.4g} of the probe's tokens (D4's hypothesis "
        f"temperature_below_critical failed; it failed at {len(failing)} of the {len(record.checks)} checks: "
        f"{_steps(failing)}), so collapse is what the theory predicts there, and only {alive} of "
        f"{above.n_prototypes} prototypes had mass ≥ ε_K at that check"
    )
    text += f"; ε_K then removed {_pruned(after)}, which had no mass left" if after else ""
    later = [c for c in record.checks if c.step > failing[-1]]
    # "again" only where an earlier check had T_c above T_P (the first failure need not be the first check)
    again = " again" if any(c.collapse_margin > 0.0 for c in record.checks if c.step < above.step) else ""
    if later and later[0].n_prototypes < 2:
        # D4 is a claim about K ≥ 2 prototypes: with one left there is nothing to split
        text += (
            f". From step {later[0].step} on T_c was above T_P{again}, with one prototype left, where D4 says "
            "nothing (its hypothesis K ≥ 2 fails)"
        )
    elif later:
        held = sum(1 for m in later[0].mass.values() if m >= eps)
        text += (
            f". From step {later[0].step} on T_c was above T_P{again} (collapse unstable by D4), but only "
            f"{held} prototype{'s' if held != 1 else ''} held mass ≥ ε_K there: the prototypes without mass never "
            "regained it"
        )
    return text + "."


def _steps(steps: list[int]) -> str:
    """``"step 50"``, ``"steps 50, 100, 150"``, ``"steps 50, 100, …, 400 (8)"``."""
    if len(steps) == 1:
        return f"step {steps[0]}"
    if len(steps) <= 4:
        return "steps " + ", ".join(map(str, steps))
    return f"steps {steps[0]}, {steps[1]}, …, {steps[-1]} ({len(steps)})"


def _pruned(steps: list[int]) -> str:
    if not steps:
        return "no prototype"
    where = f"step {steps[0]}" if steps[0] == steps[-1] else f"steps {steps[0]}–{steps[-1]}"
    return f"{len(steps)} prototype{'s' if len(steps) > 1 else ''} ({where})"


def coupling_measurements(record: RunRecord) -> dict[str, Any]:
    """The R1(b), R2 and R4 measurements of the run, from its checks (definitions in docs/theory.md,
    "Coupling statistics"; computed by :mod:`reference.coupling_statistics` at every check).

    * R1(b): the separation ``S_t`` at every check; ``corr(S_t, λ_max(A_res)_t)``; for each birth, ``S``
      at the birth's check and at the last check before the next birth (or the end): "after
      re-convergence" is read as "as late as the architecture stays the same".
    * R2: per head in birth order, its birth step, ``λ_birth``, and ``τ_h`` and attention entropy at the
      last check it was alive; ``Var(log τ_h)`` at the first and the last check.
    * R4: ``corr(S_t, ‖∇_P V‖_t)`` (the DDCL paper reports −0.98).
    """
    checks = [c for c in record.checks if c.separation is not None and c.grad_V_norm is not None]
    S = [float(c.separation) for c in checks if c.separation is not None]
    lam = [c.lam_max for c in checks]
    gv = [float(c.grad_V_norm) for c in checks if c.grad_V_norm is not None]
    births = [e for e in record.events if e.kind is EventKind.BIRTH]
    around = []
    for i, e in enumerate(births):
        end = births[i + 1].step if i + 1 < len(births) else math.inf
        at = [c for c in checks if c.step == e.step]
        later = [c for c in checks if e.step < c.step < end]
        around.append(
            {
                "birth_step": e.step,
                "head_id": e.head_id,
                "S_at_birth": at[0].separation if at else None,
                "S_before_next_birth": later[-1].separation if later else None,
            }
        )
    born = {e.head_id: e for e in births}
    heads: dict[int, dict[str, Any]] = {}
    for c in record.checks:
        for h, tau in c.tau.items():
            heads[h] = {
                "head_id": h,
                "birth_step": born[h].step if h in born else 0,
                "lam_birth": born[h].lam_birth if h in born else None,
                "tau_last": tau,
                "attention_entropy_last": c.attention_entropy.get(h),
                "last_check": c.step,
            }
    var_log_tau = [log_temperature_variance(dict(c.tau)) for c in record.checks]
    for row in heads.values():
        row["age"] = row["last_check"] - row["birth_step"]
    by_birth = sorted(heads.values(), key=lambda r: (r["birth_step"], r["head_id"]))
    aged = [h for h in by_birth if h["attention_entropy_last"] is not None]
    return {
        "R1": {
            "separation": [[c.step, c.separation, c.min_separation] for c in record.checks],
            "corr_separation_lam_max": pearson(S, lam),
            "around_births": around,
        },
        "R2": {
            "heads_by_birth_order": by_birth,
            "var_log_tau_first": var_log_tau[0] if var_log_tau else None,
            "var_log_tau_last": var_log_tau[-1] if var_log_tau else None,
            # birth order is a rank; age (steps alive at the head's last check) is the time it had to learn
            "tau_vs_age": correlation([float(h["age"]) for h in by_birth], [h["tau_last"] for h in by_birth]),
            "entropy_vs_age": correlation(
                [float(h["age"]) for h in aged], [float(h["attention_entropy_last"]) for h in aged]
            ),
        },
        "R4": {
            "corr_separation_grad_V": pearson(S, gv),
            "paper": -0.98,
            "n_checks": len(checks),
            "by_regime": r4_by_regime(record),
        },
    }


def correlation(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    """Pearson's r of two series with its n and, from n = 4 on, a 95% confidence interval (Fisher's z, by
    :func:`scipy.stats.pearsonr`); r and the interval are None where undefined (n < 2 or a constant series)."""
    r = pearson(x, y)
    ci = None
    if r is not None and len(x) >= 4 and abs(r) < 1.0:
        low, high = stats.pearsonr(x, y).confidence_interval(0.95)
        ci = [float(low), float(high)]
    return {"n": len(x), "r": r, "ci95": ci}


def correlation_text(c: Mapping[str, Any]) -> str:
    """``"-0.95 (n = 5, 95% CI [-1.00, -0.45])"`` for a :func:`correlation`; below
    :data:`~ddcl_incrt.audit.verdicts.MIN_CORRELATION_N` points it says that two points always correlate
    ±1, and at n = 3 that no interval is given."""
    if c["r"] is None:
        return f"undefined (n = {c['n']})"
    if c["n"] < MIN_CORRELATION_N:
        return f"{c['r']:+.2f} (n = {c['n']}: {TWO_POINTS})"
    if c["ci95"] is None and c["n"] < 4:
        return f"{c['r']:+.2f} (n = {c['n']}, too few points for a 95% CI)"
    ci = "" if c["ci95"] is None else f", 95% CI [{c['ci95'][0]:+.2f}, {c['ci95'][1]:+.2f}]"
    return f"{c['r']:+.2f} (n = {c['n']}{ci})"


def r4_by_regime(record: RunRecord) -> list[dict[str, Any]]:
    """R4's correlation of separation with ``‖∇_P V‖`` in the two regimes of a run whose dictionary was
    pruned: the checks up to the last prototype prune, and the checks after it (a correlation over the
    whole run mixes the collapse transient with the settled dictionary)."""
    checks = [c for c in record.checks if c.separation is not None and c.grad_V_norm is not None]
    prunes = [e.step for e in record.events if e.kind is EventKind.PROTOTYPE_PRUNE]
    if not prunes:
        return []
    last = prunes[-1]
    out = []
    for name, part in (
        (f"up to the last prototype prune (step {last})", [c for c in checks if c.step <= last]),
        (
            f"after it (steps {last + 1}–{record.checks[-1].step if record.checks else last})",
            [c for c in checks if c.step > last],
        ),
    ):
        xs = [float(c.separation) for c in part if c.separation is not None]
        ys = [float(c.grad_V_norm) for c in part if c.grad_V_norm is not None]
        out.append({"regime": name, **correlation(xs, ys)})
    return out


def exit_code(record: RunRecord) -> int:
    """:data:`~ddcl_incrt.exit_codes.FAILED_CHECK` when a ``proved`` claim was violated where its hypotheses
    held, else :data:`~ddcl_incrt.exit_codes.OK`."""
    violated = any(r.violations and r.label == Label.PROVED.value for r in claim_rows(record))
    return FAILED_CHECK if violated else OK


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x


def audit_summary(record: RunRecord, *, engine: str, wall_time_s: float) -> dict[str, Any]:
    """The ``summary.json`` document."""
    arch = record.architecture
    rows = claim_rows(record)
    coupling = coupling_measurements(record)
    claims = []
    for r in rows:
        row = asdict(r)
        row["hypotheses"] = list(r.hypotheses)
        row["failed_hypotheses"] = list(r.failed_hypotheses)
        row["tightest"] = _finite(r.tightest)
        claims.append(row)
    return {
        "schema": SCHEMA,
        "dataset": record.dataset,
        "engine": engine,
        "steps": len(record.losses.L),
        "seed": record.train_config.seed,
        "wall_time_s": wall_time_s,
        "train_accuracy": record.train_accuracy,
        "test_accuracy": record.test_accuracy,
        "theta": record.growth_config.theta,
        "phi_g": record.growth_config.phi_g,
        "architecture": asdict(arch),
        "claims": claims,
        "events": [asdict(e) for e in event_rows(record)],
        "findings": findings(record),
        "not_live": not_live_lines(),
        "statements": claim_statements(),
        "configuration": configuration(record),
        "provenance": record.meta.get("provenance"),
        "coupling": coupling,
        "verdicts": [{**asdict(v), "claims": list(v.claims)} for v in verdict_rows(record, rows, coupling)],
        "violations": len(record.violations()),
        "exit_code": exit_code(record),
    }


__all__ = [
    "MEASURED_STATUS",
    "SCHEMA",
    "AuthorPacing",
    "ClaimRow",
    "EventRow",
    "audit_summary",
    "author_code_findings",
    "author_code_pacing",
    "checked_elsewhere",
    "checks_outside_registry",
    "claim_rows",
    "claim_statements",
    "collapse_finding",
    "configuration",
    "correlation",
    "correlation_text",
    "coupling_measurements",
    "elsewhere_findings",
    "event_rows",
    "exit_code",
    "findings",
    "not_live_lines",
    "r4_by_regime",
    "tracker_finding",
]
