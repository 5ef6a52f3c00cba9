"""The growth rule as its author coded it, seen by the conformance kit.

:mod:`reference.incrt.author_code` transcribes the method author's growth code (``nimzoexin59/
incrt-geo-proteins``, notebook cells cited there) as the growth variant ``author_code``. The kit sees
it in two ways:

* **Each difference as a port of SPEC's rule** (:data:`AUTHOR_DIFFERENCES`): the reference with ONE
  element of the author's code, written in the operation where a port would write it, and the kit's
  check that catches it (tests/test_conformance_author_rule.py runs each). Several elements sit in the
  same decision, so, unlike the bug classes of :data:`ddcl_incrt.conformance.broken.PLANTED`, two
  differences may be caught by one check. Elements that no single operation's inputs can express (the
  adaptive growth dwell needs the spectrum, which ``grow_decision`` is not given; the coupled,
  re-drawn trackers act only across checks) are listed with the reason and seen only by the whole rule's
  trajectories.
* **The whole rule as a port** (:class:`AuthorCodePort`): the author's decisions in every operation
  whose case inputs determine them, and :func:`decision_differences`, the kit's decision cases whose
  decision changes under the author's rule (docs/porting.md, "The method author's code as a port").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ddcl_incrt.conformance import operations
from ddcl_incrt.conformance.adapter import F64, TrajectoryInputs, TrajectoryOutputs
from ddcl_incrt.conformance.adapters.reference import ReferenceAdapter
from ddcl_incrt.conformance.broken import _GrowRule, _PruneRule
from ddcl_incrt.conformance.cases import Case
from ddcl_incrt.conformance.runner import golden
from ddcl_incrt.conformance.trajectory import run_trajectory
from reference.incrt.author_code import (
    PHI_W_FACTOR,
    T_PRUNE,
    author_mca_exin_step,
    author_prune_decision,
    author_prune_dwell,
    author_steps,
    project_out,
)
from reference.incrt.controller import GrowthConfig, GrowthState
from reference.model import ModelParams
from training.trainer import ReferenceEngine

# ==================================================================================================
# The whole rule's pieces, written as a port of them would be (NumPy only)
# ==================================================================================================


def gated_capture(A: F64, theta: float) -> tuple[F64, F64]:
    """Greedy capture on a static ``A`` under the author's growth condition with converged trackers:
    a birth needs ``λ_max(Π⊥AΠ⊥) > θ`` **and** ``λ_min(Π⊥AΠ⊥) < θ/2`` (cell 5 ``try_grow_head``,
    ``φ_w = θ_w/2``); the top eigenvector is appended."""
    d = A.shape[0]
    Q = np.zeros((d, 0))
    births: list[float] = []
    while Q.shape[1] < d:
        Pi = np.eye(d) - Q @ Q.T
        R = Pi @ A @ Pi
        lam, V = np.linalg.eigh(0.5 * (R + R.T))
        if not (lam[-1] > theta and lam[0] < PHI_W_FACTOR * theta):
            break
        u = V[:, -1] - Q @ (Q.T @ V[:, -1])
        Q = np.column_stack([Q, u / np.linalg.norm(u)])
        births.append(float(lam[-1]))
    return np.asarray(Q, dtype=np.float64), np.array(births, dtype=np.float64)


def author_mca_exin_track(A: F64, w0: F64, eta: float, n_steps: int) -> tuple[F64, F64, float]:
    """``n_steps`` of the author's MCA-EXIN step on a static ``A`` without a partner tracker (no coupling):
    ``u ← normalize(u − (ηy/‖u‖²)(Au − (y/‖u‖²)u))``, ``y = uᵀAu`` (cell 5 ``mca_exin_step``: the extra
    factor ``y``, and the normalisation). ``alphas`` are the steps ``η/‖u_t‖²`` as the kit defines them."""
    w = np.asarray(w0, dtype=np.float64)
    none = np.zeros_like(w)  # no partner: the coupling term and the orthogonalisation vanish
    alphas = np.empty(n_steps)
    for t in range(n_steps):
        alphas[t] = eta / float(w @ w)
        w = author_mca_exin_step(w, none, A, eta, 1.0)
    return w, alphas, float(w @ A @ w) / float(w @ w)


# ==================================================================================================
# Each difference as a port of SPEC's rule
# ==================================================================================================


class OperatorUnnormalised(ReferenceAdapter):
    """The data scale (cell 5 ``compute_Ares``): the operator on ``XᵀX``, not the second moment
    ``XᵀX/N``, so ``C``, ``A_res``, its spectrum and ``G_h`` are ``N`` times SPEC's (``N`` probe tokens)."""

    name = "author's code: the operator on XᵀX instead of XᵀX/N"

    def growth_statistics(self, params: ModelParams, probe_x: F64, Q_cap: F64) -> dict[str, F64]:
        out = operations.growth_statistics(params, probe_x, Q_cap)
        N = int(probe_x.shape[0] * probe_x.shape[1])
        return {k: np.asarray(v if k == "M_a" else N * v, dtype=np.float64) for k, v in out.items()}


class SingleSequenceProbe(ReferenceAdapter):
    """The probe (cell 10 ``train_v8_pretrain``): the statistics of one sequence, not of the fixed probe
    of ``probe_size`` sequences (the author's is the current batch's first sequence; here the probe's)."""

    name = "author's code: a one-sequence probe"

    def trajectory(self, inputs: TrajectoryInputs) -> TrajectoryOutputs:
        one = replace(inputs, probe_x=inputs.probe_x[:1], probe_labels=inputs.probe_labels[:1])
        return run_trajectory(ReferenceEngine(), one)[0]


class LambdaMinGate(ReferenceAdapter):
    """The growth condition (cell 5 ``try_grow_head``): a birth also needs ``λ_min < θ/2``."""

    name = "author's code: a birth also needs λ_min < θ/2"

    def static_growth(self, A: F64, theta: float) -> tuple[F64, F64]:
        return gated_capture(A, theta)


class OneStepTrackers(ReferenceAdapter):
    """Tracker-estimated decisions (cell 5 ``try_grow_head``, ``INCRTConfig``): each round's birth decided
    by the Rayleigh quotient after ONE Oja step at the fixed ``η₊ = 1/(10d)``, whatever step count and
    step size the case asks for."""

    name = "author's code: births decided after one tracker step at η₊ = 1/(10d)"

    def tracked_growth(self, A: F64, theta: float, starts: F64, n_steps: int, eta: float) -> tuple[F64, F64]:
        return operations.tracked_growth(A, theta, starts, 1, author_steps(A.shape[0])[0])


class McaExinExtraFactor(ReferenceAdapter):
    """The minor-direction tracker (cell 5 ``mca_exin_step``): the update carries the extra factor
    ``y = uᵀAu`` and the vector is normalised after each step."""

    name = "author's code: MCA-EXIN with the extra factor y"

    def mca_exin_track(self, A: F64, w0: F64, eta: float, n_steps: int) -> tuple[F64, F64, float]:
        return author_mca_exin_track(A, w0, eta, n_steps)


class NoCaptureGuard(_GrowRule):
    """No ``m < d`` test (cell 5 ``try_grow_head``): with every direction captured, the tracker's ``u₊``
    is still projected out of ``Q_cap`` (``project_out``: a zero vector) and appended, with a new head."""

    name = "author's code: no m < d test at a birth"
    capture_guard = False

    def append(self, Q: F64, u: F64) -> F64:
        return np.column_stack([Q, project_out(np.asarray(u, dtype=np.float64), Q)])


class NoHysteresis(_PruneRule):
    """No hysteresis (cell 5 ``try_prune_heads``): a head weak for the patience is pruned whatever
    ``λ_max(A_res without it) + G_h`` is."""

    name = "author's code: pruning without hysteresis"
    hysteresis = False


class PatienceHundred(_PruneRule):
    """The patience (cell 5 ``INCRTConfig.T_prune = 100``): 100 consecutive weak checks, not ``T_prune``."""

    name = "author's code: a patience of 100 checks"

    def patience(self, config: GrowthConfig) -> int:
        return T_PRUNE


class ConstantPruneDwell(_PruneRule):
    """The prune dwell (cell 5 ``try_prune_heads``): a head younger than the constant ``T_d(η₊, Δ = 0.1)``
    (:func:`reference.incrt.author_code.author_prune_dwell`, 23 966 at d = 4; ages in checks, one check
    per step here) is not pruned."""

    name = "author's code: the constant prune dwell T_d(η₊, 0.1)"

    def dwell(self, config: GrowthConfig, d: int) -> int:
        return author_prune_dwell(d)


class CounterResetWhileYoung(_PruneRule):
    """The young head's counter (cell 5 ``try_prune_heads``): a head younger than the dwell is not measured
    and its count is reset to 0 (SPEC: it counts its weak checks from birth)."""

    name = "author's code: a young head's count reset to 0"
    reset_while_young = True


@dataclass(frozen=True)
class AuthorDifference:
    """One element of the author's code: what it is (with its notebook cell), the factory of the port
    of SPEC's rule that has it (``package.module:factory``, or empty where no single operation can
    express it), and the check that catches it (or the reason none can)."""

    element: str
    factory: str
    check: str
    reason: str = ""  # why no single operation expresses it (factory and check empty)


_HERE = "ddcl_incrt.conformance.author_rule"

AUTHOR_DIFFERENCES: tuple[AuthorDifference, ...] = (
    AuthorDifference(
        "data scale: the operator on `XᵀX`, not `XᵀX/N` (cell 5 `compute_Ares`)",
        f"{_HERE}:operator_unnormalised",
        "growth_statistics/one_head_m0",
    ),
    AuthorDifference("a one-sequence probe (cell 10)", f"{_HERE}:single_sequence_probe", "trajectory/short_run"),
    AuthorDifference(
        "births decided by the trackers after one step at `η₊ = 1/(10d)` (cell 5 `try_grow_head`)",
        f"{_HERE}:one_step_trackers",
        "tracked_growth/clear_gaps",
    ),
    AuthorDifference(
        "a `λ_min < θ/2` gate on births (cell 5 `try_grow_head`)",
        f"{_HERE}:lambda_min_gate",
        "static_growth/everything_above",
    ),
    AuthorDifference(
        "MCA-EXIN with the extra factor `y = uᵀAu` (cell 5 `mca_exin_step`)",
        f"{_HERE}:mca_exin_extra_factor",
        "mca_exin_track/basic",
    ),
    AuthorDifference(
        "an adaptive growth dwell `⌈κ_T ln(1/ε)/(η₊Δ₊²)⌉` checks, the first birth undelayed (cell 5 `min_dwell_time`)",
        "",
        "",
        "`grow_decision` is given `λ_max` and `u₊`, not the spectrum the dwell needs: seen in the whole "
        "rule's trajectories",
    ),
    AuthorDifference(
        "coupled trackers re-drawn at random after each birth (cell 5 `oja_step`, `try_grow_head`)",
        "",
        "",
        "acts across checks, on tracker state no single operation carries: seen in the whole rule's trajectories",
    ),
    AuthorDifference(
        "no `m < d` test at a birth (cell 5 `try_grow_head`)", f"{_HERE}:no_capture_guard", "grow_decision/full_capture"
    ),
    AuthorDifference(
        "a patience of 100 checks (cell 5 `INCRTConfig`)",
        f"{_HERE}:patience_hundred",
        "prune_decision/weak_head_pruned",
    ),
    AuthorDifference(
        "a constant prune dwell `T_d(η₊, 0.1)` (cell 5 `try_prune_heads`)",
        f"{_HERE}:constant_prune_dwell",
        "prune_decision/weak_head_pruned",
    ),
    AuthorDifference(
        "a young head's count reset to 0 (cell 5 `try_prune_heads`)",
        f"{_HERE}:counter_reset_while_young",
        "prune_decision/too_young",
    ),
    AuthorDifference(
        "no hysteresis at a prune (cell 5 `try_prune_heads`)",
        f"{_HERE}:no_hysteresis",
        "prune_decision/hysteresis_blocks",
    ),
    AuthorDifference(
        "no minimum head count (cell 5 `try_prune_heads`)",
        "ddcl_incrt.conformance.broken:min_heads_ignored",
        "prune_decision/last_head_kept",
    ),
)


# ==================================================================================================
# The whole rule as a port
# ==================================================================================================

NOT_DECIDABLE: Mapping[str, str] = {
    "grow_decision": "the author's birth needs the trackers' λ̂_min and the spectrum's gap Δ₊ (its dwell), "
    "which the case does not give",
    "tracked_growth": "the author's trackers are a coupled pair stepped once per training check, not one "
    "tracker run to convergence per round",
}


class AuthorCodePort(ReferenceAdapter):
    """The author's rule (:mod:`reference.incrt.author_code`) as a port, in every operation whose case
    inputs determine it: ``static_growth`` with the ``λ_min`` gate (trackers taken as converged),
    ``prune_decision`` by :func:`reference.incrt.author_code.author_prune_decision` (one check per step),
    ``mca_exin_track`` with the extra factor, and ``trajectory`` through the reference trainer under the
    variant ``author_code``. Everything else (the DDCL block, the layer, the statistics on SPEC's scale,
    prototype pruning) is the project's, as in the variant; :data:`NOT_DECIDABLE` is left out."""

    name = "the author's growth rule (variant author_code)"

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(operations.operation_names()) - set(NOT_DECIDABLE)

    def static_growth(self, A: F64, theta: float) -> tuple[F64, F64]:
        return gated_capture(A, theta)

    def prune_decision(
        self, state: GrowthState, config: GrowthConfig, C: F64, M_a: Mapping[int, F64], step: int
    ) -> GrowthState:
        strengths = {h: float(np.linalg.norm(C @ M_a[h])) for h in state.head_ids}
        return author_prune_decision(state, config, strengths, step, d=C.shape[0], check_every=1)[0]

    def mca_exin_track(self, A: F64, w0: F64, eta: float, n_steps: int) -> tuple[F64, F64, float]:
        return author_mca_exin_track(A, w0, eta, n_steps)

    def trajectory(self, inputs: TrajectoryInputs) -> TrajectoryOutputs:
        return run_trajectory(ReferenceEngine(), inputs, ("author_code",))[0]


# ==================================================================================================
# Which decision cases change
# ==================================================================================================

DECISION_OPERATIONS: tuple[str, ...] = (
    "static_growth",
    "grow_decision",
    "prune_decision",
    "prototype_prune_decision",
    "trajectory",
)


@dataclass(frozen=True)
class DecisionRow:
    """One decision case: SPEC's decision, the author's rule's on the same inputs, and whether they differ."""

    check: str
    note: str
    spec: str
    author: str

    @property
    def changed(self) -> bool:
        return self.author != self.spec and self.operation not in NOT_DECIDABLE

    @property
    def operation(self) -> str:
        return self.check.split("/")[0]


def decision_summary(operation: str, outputs: Mapping[str, np.ndarray]) -> str:
    """A decision in words, from an operation's encoded outputs: the births (and their statistics to 4
    digits) of a capture; the heads (id:count) or prototypes (id:count) after a check; a trajectory's
    events as ``birth h@step``, ``prune h@step``, ``prototype p@step``."""
    if operation == "static_growth":
        lam = np.asarray(outputs["lam_births"]).tolist()
        return f"{len(lam)} births" + (" at " + ", ".join(f"{x:.4g}" for x in lam) if lam else "")
    if operation in ("grow_decision", "prune_decision", "prototype_prune_decision"):
        heads = " ".join(f"{h}:{c}" for h, _, c in np.asarray(outputs["state.heads"]).tolist())
        protos = " ".join(f"{p}:{c}" for p, c in np.asarray(outputs["state.prototypes"]).tolist())
        m = np.asarray(outputs["state.Q_cap"]).shape[1]
        return f"m={m}; heads {heads}; prototypes {protos}"
    if operation == "trajectory":
        words = {1: "birth h{h}", 2: "prune h{h}", 3: "prototype p{p}"}
        rows = np.asarray(outputs["events"]).reshape(-1, 4).tolist()
        return ", ".join(words[k].format(h=h, p=p) + f"@{s}" for s, k, h, p in rows) or "no events"
    raise ValueError(f"operation: {operation!r} is not a decision operation {DECISION_OPERATIONS}")


def decision_differences(entries: Sequence[tuple[Case, Mapping[str, np.ndarray]]] | None = None) -> list[DecisionRow]:
    """Every decision case of the kit with SPEC's decision (the golden outputs) and the author's rule's
    (:class:`AuthorCodePort` on the same inputs); ``entries`` defaults to the golden vectors."""
    if entries is None:
        entries = [(e.case, e.outputs) for e in golden() if e.outputs is not None]
    port = AuthorCodePort()
    rows: list[DecisionRow] = []
    for case, spec_outputs in entries:
        op = case.operation
        if op not in DECISION_OPERATIONS:
            continue
        spec = decision_summary(op, spec_outputs)
        if op in NOT_DECIDABLE:
            author = "not decidable from the case: " + NOT_DECIDABLE[op]
        else:
            author = decision_summary(op, operations.call_port(port, case))
        rows.append(DecisionRow(case.check, case.note, spec, author))
    return rows


def difference_table() -> str:
    """docs/porting.md's table of the author's code's elements as ports of SPEC's rule."""
    rows = ["| element of the author's code | port of SPEC's rule with it | caught by |", "|---|---|---|"]
    for d in AUTHOR_DIFFERENCES:
        if d.factory:
            rows.append(f"| {d.element} | `{d.factory.split(':')[1]}` | `{d.check}` |")
        else:
            rows.append(f"| {d.element} | — | {d.reason} |")
    return "\n".join(rows) + "\n"


def decision_table(rows: Sequence[DecisionRow]) -> str:
    """docs/porting.md's table of the kit's decision cases whose decision changes under the author's rule."""
    out = ["| decision case | SPEC's rule | the author's rule |", "|---|---|---|"]
    out += [f"| `{r.check}` | {r.spec} | {r.author} |" for r in rows if r.changed]
    return "\n".join(out) + "\n"


def operator_unnormalised() -> OperatorUnnormalised:
    return OperatorUnnormalised()


def single_sequence_probe() -> SingleSequenceProbe:
    return SingleSequenceProbe()


def lambda_min_gate() -> LambdaMinGate:
    return LambdaMinGate()


def one_step_trackers() -> OneStepTrackers:
    return OneStepTrackers()


def mca_exin_extra_factor() -> McaExinExtraFactor:
    return McaExinExtraFactor()


def no_capture_guard() -> NoCaptureGuard:
    return NoCaptureGuard()


def no_hysteresis() -> NoHysteresis:
    return NoHysteresis()


def patience_hundred() -> PatienceHundred:
    return PatienceHundred()


def constant_prune_dwell() -> ConstantPruneDwell:
    return ConstantPruneDwell()


def counter_reset_while_young() -> CounterResetWhileYoung:
    return CounterResetWhileYoung()


def author_code_port() -> AuthorCodePort:
    return AuthorCodePort()


__all__ = [
    "AUTHOR_DIFFERENCES",
    "DECISION_OPERATIONS",
    "NOT_DECIDABLE",
    "AuthorCodePort",
    "AuthorDifference",
    "ConstantPruneDwell",
    "CounterResetWhileYoung",
    "DecisionRow",
    "LambdaMinGate",
    "McaExinExtraFactor",
    "NoCaptureGuard",
    "NoHysteresis",
    "OneStepTrackers",
    "OperatorUnnormalised",
    "PatienceHundred",
    "SingleSequenceProbe",
    "author_code_port",
    "author_mca_exin_track",
    "constant_prune_dwell",
    "counter_reset_while_young",
    "decision_differences",
    "decision_summary",
    "decision_table",
    "difference_table",
    "gated_capture",
    "lambda_min_gate",
    "mca_exin_extra_factor",
    "no_capture_guard",
    "no_hysteresis",
    "one_step_trackers",
    "operator_unnormalised",
    "patience_hundred",
    "single_sequence_probe",
]
