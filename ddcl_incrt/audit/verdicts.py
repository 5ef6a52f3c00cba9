"""The verdict table: each claim of the papers' abstracts, the registry claims that formalise it, what is
proved and under which hypotheses, what this run measured (with its hypotheses' status) and what the
studies found, with one line of verdict.

The sentences, the claim ids, the proofs' hypotheses and the studies' findings are fixed text (the
studies' findings are quoted from their documents in ``docs/studies/``, which report every seed); what
this run measured and the verdict are derived from the run's claim rows and record.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from training.record import RunRecord

if TYPE_CHECKING:  # the summary builds the table from its claim rows (and imports this module)
    from ddcl_incrt.audit.summary import ClaimRow

Coupling = Mapping[str, Any]  # ddcl_incrt.audit.summary.coupling_measurements of the run


@dataclass(frozen=True)
class VerdictRow:
    """One claim of an abstract and what this audit says about it."""

    sentence: str
    claims: tuple[str, ...]
    proved: str
    this_run: str
    studies: str
    verdict: str


def claim_brief(row: ClaimRow) -> str:
    """One claim's line in the table: its status and the counts behind it."""
    if row.checks == 0:
        return f"{row.claim_id} {row.status}"
    text = (
        f"{row.claim_id} {row.status} ({row.checks} checks: {row.certified} certified, {row.uncertified} "
        f"uncertified, {row.violations} violated"
    )
    if row.unpromised:
        text += (
            f"; {row.unpromised} not promised, {', '.join(row.failed_hypotheses)} failing from step "
            f"{row.first_unpromised_step}, {row.failed_unpromised} of them failed anyway"
        )
    return text + ")"


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.2f}"


# Below this many points a Pearson correlation says nothing: any two distinct points lie on a line, so
# r = ±1 whatever the data (and a 95% interval by Fisher's z needs n ≥ 4).
MIN_CORRELATION_N = 3
TWO_POINTS = "two points always correlate ±1, so this says nothing"


def regime_text(g: Mapping[str, Any]) -> str:
    """A regime's correlation in a verdict, ``"-0.95 (n = 5)"``, with the caveat where n is below
    :data:`MIN_CORRELATION_N`."""
    if g["r"] is not None and g["n"] < MIN_CORRELATION_N:
        return f"{_fmt(g['r'])} (n = {g['n']}: {TWO_POINTS})"
    return f"{_fmt(g['r'])} (n = {g['n']})"


# A tracker is reported "far from the exact eigensolver" where |λ̂ − λ| reached this fraction of θ (an
# estimate that far off can sit on the wrong side of θ for an eigenvalue that close to it) or |cos∠|
# fell to this (about 26°)...
TRACKER_FAR_GAP = 0.1
TRACKER_FAR_COS = 0.9
# ...and a G6 direction bound above this many radians (57°: it allows |cos| down to 0.54) says little
# about where the tracker points, even though it is below the vacuous π/2.
LOOSE_ANGLE_RAD = 1.0


@dataclass(frozen=True)
class TrackerGap:
    """The worst distance of one eigen-tracker from the exact eigensolver over a run's checks:
    ``|λ̂ − λ|`` (absolute and over that check's θ) and ``|cos∠(û, u)|``, each with its check's step."""

    name: str
    lam_gap: float
    lam_gap_theta: float
    lam_step: int
    cos: float
    cos_step: int

    @property
    def far(self) -> bool:
        return self.lam_gap_theta >= TRACKER_FAR_GAP or self.cos <= TRACKER_FAR_COS


def tracker_gaps(record: RunRecord) -> list[TrackerGap]:
    """Oja's (top eigenpair) and MCA-EXIN's (bottom) worst gaps to the exact eigensolver (the checks'
    ``oja_lam_gap``/``oja_cos`` and ``exin_*``); empty without a check with finite gaps."""
    out = []
    for name, gap, cos in (("Oja", "oja_lam_gap", "oja_cos"), ("MCA-EXIN", "exin_lam_gap", "exin_cos")):
        rows = [
            (float(getattr(c, gap)), abs(float(getattr(c, cos))), c.theta, c.step)
            for c in record.checks
            if math.isfinite(getattr(c, gap)) and math.isfinite(getattr(c, cos)) and c.theta > 0.0
        ]
        if not rows:
            continue
        g = max(rows, key=lambda r: r[0] / r[2])
        k = min(rows, key=lambda r: r[1])
        out.append(TrackerGap(name, g[0], g[0] / g[2], g[3], k[1], k[3]))
    return out


@dataclass(frozen=True)
class LooseBounds:
    """G6's certified direction checks and those whose bound was above :data:`LOOSE_ANGLE_RAD`, per
    tracker kind (``details``' ``kind=``: ``oja``, ``mca_exin``), with the largest such bound."""

    certified: int
    loose: int
    loose_by_kind: Mapping[str, int]
    widest: float


def g6_loose_bounds(record: RunRecord) -> LooseBounds:
    """:class:`LooseBounds` of the run's G6 direction checks (the checks named ``direction…``)."""
    cert = [
        x.result
        for x in record.invariants
        if x.result.claim_id == "G6" and x.result.check.startswith("direction") and x.result.certified
    ]
    loose = [r for r in cert if r.bound > LOOSE_ANGLE_RAD]
    by_kind: dict[str, int] = {}
    for r in loose:
        m = re.search(r"kind=(\w+)", r.details)
        kind = m.group(1) if m else "?"
        by_kind[kind] = by_kind.get(kind, 0) + 1
    return LooseBounds(len(cert), len(loose), by_kind, max((r.bound for r in loose), default=math.nan))


def decided_by_trackers(record: RunRecord) -> bool:
    """Whether the run's growth rule decides births on the trackers' estimates (``author_code``); the
    paper's rule and its other variants decide on the exact eigensolver."""
    return "author_code" in record.growth_config.variants


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _spread_apart(rows: Mapping[str, ClaimRow], record: RunRecord, coupling: Coupling) -> str:
    d4 = rows["D4"]
    k0, k = record.layer_config.K_max, record.architecture.n_prototypes
    r4 = coupling["R4"]["corr_separation_grad_V"]
    if d4.violations:
        return f"Violated: D4 failed where its hypotheses held ({d4.violations} checks)."
    if d4.unpromised:
        failing = [c.step for c in record.checks if not c.collapse_margin > 0.0]
        where = f"step {failing[0]}" if len(failing) == 1 else f"steps {failing[0]}–{failing[-1]}"
        regimes = "; ".join(f"{g['regime']} {regime_text(g)}" for g in coupling["R4"]["by_regime"])
        held_before = any(c.collapse_margin > 0.0 for c in record.checks if c.step < failing[0])
        later = [c.step for c in record.checks if c.step > failing[-1]]
        return (
            f"Not shown by this run: at {len(failing)} of {len(record.checks)} checks ({where}) T_P was not below "
            f"T_c, outside D4's hypothesis, and the dictionary went from {k0} to {k} prototypes"
            + (
                (
                    ", where it stayed although the hypothesis held again later"
                    if held_before
                    else f", where it stayed although the hypothesis held from step {later[0]} on"
                )
                if later
                else ""
            )
            + f". R4 correlation {_fmt(r4)} over the run (paper −0.98)"
            + (f"; {regimes}." if regimes else ".")
        )
    if d4.certified:
        return f"Consistent: T_P < T_c at every check, collapse unstable as D4 proves; {k} of {k0} prototypes kept."
    return "Not tested: D4 was not checked in this run."


def _amplifies(rows: Mapping[str, ClaimRow], record: RunRecord, coupling: Coupling) -> str:
    r1 = rows["R1"]
    corr = coupling["R1"]["corr_separation_lam_max"]
    if r1.checks == 0:
        return f"Not tested: no birth in this run. R1(b) correlation of S with λ_max {_fmt(corr)}."
    if r1.unpromised == r1.checks:
        return (
            f"Not established: the lemma's orthogonality hypothesis failed at every birth ({r1.checks // 2}), so "
            f"it promised nothing (its split failed anyway in {r1.failed_unpromised} checks); R1(b) correlation "
            f"of separation with λ_max over the checks {_fmt(corr)}, a measurement, not a test of causation."
        )
    return (
        f"Partly: the lemma held where promised ({r1.certified} certified); R1(b) correlation {_fmt(corr)}, "
        "a measurement only."
    )


def _hierarchy(rows: Mapping[str, ClaimRow], record: RunRecord, coupling: Coupling) -> str:
    r2 = coupling["R2"]
    return (
        f"Not tested: R2 is a measurement (Var(log τ_h) {_num(r2['var_log_tau_first'])} at the first check → "
        f"{_num(r2['var_log_tau_last'])} at the last); nothing in the run orders heads by granularity."
    )


def _minimal(rows: Mapping[str, ClaimRow], record: RunRecord, coupling: Coupling) -> str:
    g3, g4 = rows["G3"], rows["G4"]
    arch = record.architecture
    static = (
        "held on the static operator at every birth"
        if not (g3.violations or g4.violations) and g3.certified
        else f"G3 {g3.status}, G4 {g4.status}"
    )
    ratchet = (
        f"; but the count only ratcheted ({arch.births} births, no head prune): it counts threshold crossings"
        if arch.births and not arch.head_prunes
        else ""
    )
    return (
        f"Proved for the greedy rule on a fixed operator ({static}){ratchet}. Contradicted for training by the "
        "planted-heads study."
    )


def _stability(rows: Mapping[str, ClaimRow], record: RunRecord, coupling: Coupling) -> str:
    ids = ("D3", "D5", "G5", "G6")
    violated = [c for c in ids if rows[c].violations]
    if violated:
        return f"Violated: {', '.join(violated)} failed where their hypotheses held."
    unchecked = [c for c in ids if rows[c].checks == 0]
    certified = [c for c in ids if rows[c].certified]
    text = f"Held where promised in this run ({', '.join(certified)} certified)"
    if unchecked:
        text += f"; not checked: {', '.join(unchecked)}"
    caveats = []
    if rows["G5"].certified and not record.architecture.head_prunes:
        caveats.append(
            "G5's pruning safety only for hypothetical removals (each head as if pruned, at every check): "
            "no head was pruned, so no actual prune was checked"
        )
    gaps = [g for g in tracker_gaps(record) if g.far]
    loose = g6_loose_bounds(record)
    if rows["G6"].certified and (gaps or loose.loose):
        parts = [
            f"{g.name} reached |λ̂ − λ| = {g.lam_gap_theta:.2g} θ and |cos∠| = {g.cos:.3f} against the exact eigensolver"
            for g in gaps
        ]
        if loose.loose:
            parts.append(
                f"{loose.loose} of its {loose.certified} certified direction bounds were above {LOOSE_ANGLE_RAD:g} rad"
            )
        uses = (
            "births under author_code are decided on these estimates"
            if decided_by_trackers(record)
            else "no decision used the trackers"
        )
        caveats.append(f"G6's bounds held, but {'; '.join(parts)} ({uses}; see the findings)")
    if caveats:
        text += "; " + "; ".join(caveats)
    return text + ". Joint training's stability (R3) is not shown by one run: see the time-scales study."


@dataclass(frozen=True)
class _AbstractClaim:
    sentence: str
    claims: tuple[str, ...]
    proved: str
    studies: str
    verdict: Callable[[Mapping[str, ClaimRow], RunRecord, Coupling], str]


ABSTRACT_CLAIMS: tuple[_AbstractClaim, ...] = (
    _AbstractClaim(
        "prototypes spread apart automatically, without explicit regularisation",
        ("D1", "D2", "D4", "R4"),
        "D4 (proved): the collapsed configuration is unstable for F iff T_P < T_c = 2λ_max(Cov Y), with K ≥ 2; "
        "D1/D2 (proved): the variance term V ≥ 0 and its gradient 2PΣ_q are part of L_q. R4 is measured.",
        "docs/studies/cluster.md: dropping V changes clustering by less than the seed spread except on blobs, "
        "where it helps; DDCL is below k-means on digits.",
        _spread_apart,
    ),
    _AbstractClaim(
        "each new head amplifies prototype separation, which in turn raises the signal triggering the next addition",
        ("R1",),
        "R1(a) (proved lemma): if the new head's write is orthogonal to the tokens, squared centroid distances "
        "split and none decreases. The feedback loop itself (R1(b)) is a paper-claim, measured only.",
        "No study isolates it.",
        _amplifies,
    ),
    _AbstractClaim(
        "a hierarchy of heads ordered by representational granularity",
        ("R2",),
        "Nothing is proved; R2 is a measurement (τ_h, attention entropy, λ at birth per head).",
        "No study isolates it.",
        _hierarchy,
    ),
    _AbstractClaim(
        "unique and minimal, the smallest architecture sufficient for the task",
        ("G3", "G4"),
        "G3/G4 (proved): on a fixed symmetric operator with a spectral gap at θ, the greedy rule adds exactly "
        "m* = #{λ_i > θ} heads (sufficient and minimal) and two runs agree up to sign.",
        "docs/studies/planted-heads.md: the paper's rule does not recover the planted count m on any task; it "
        "grows to its cap on 35 of 40 runs, also with labels that carry nothing.",
        _minimal,
    ),
    _AbstractClaim(
        "stability, convergence, and pruning safety",
        ("D3", "D5", "G5", "G6"),
        "D3 (proved): F is a Lyapunov function of a frozen-encoder prototype step with 0 < η < 1; G6 (proved): "
        "the trackers converge under a step-size bound and a gap; G5, D5 (proved): a prune changes A_res, the "
        "output and F within stated bounds (G5's no-regrowth under hysteresis).",
        "docs/studies/time-scales.md (R3, joint training): stable only near η_enc/η_P = 1 (arm A: 1 and 3.16; "
        "every ratio ≤ 0.316 and ≥ 10 unstable), not wherever the prototypes learn faster than the encoder.",
        _stability,
    ),
)


def verdict_rows(record: RunRecord, claims: list[ClaimRow], coupling: Coupling) -> list[VerdictRow]:
    """The table for a run, from its claim rows and coupling measurements."""
    rows = {r.claim_id: r for r in claims}
    return [
        VerdictRow(
            sentence=a.sentence,
            claims=a.claims,
            proved=a.proved,
            this_run="; ".join(claim_brief(rows[c]) for c in a.claims),
            studies=a.studies,
            verdict=a.verdict(rows, record, coupling),
        )
        for a in ABSTRACT_CLAIMS
    ]


__all__ = [
    "ABSTRACT_CLAIMS",
    "LOOSE_ANGLE_RAD",
    "MIN_CORRELATION_N",
    "TRACKER_FAR_COS",
    "TRACKER_FAR_GAP",
    "TWO_POINTS",
    "Coupling",
    "LooseBounds",
    "TrackerGap",
    "VerdictRow",
    "claim_brief",
    "decided_by_trackers",
    "g6_loose_bounds",
    "regime_text",
    "tracker_gaps",
    "verdict_rows",
]
