"""Deliberately broken adapters: each is the reference with ONE bug of a kind a porter makes, written
the way a port would write that operation. The kit must catch each by a named check
(:data:`EXPECTED_CATCH`; tests/test_conformance.py asserts it, and that each failure's repro snippet
reproduces it on its own). They are importable by ``package.module:factory`` like any port."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from ddcl_incrt.conformance import operations
from ddcl_incrt.conformance.adapter import F64, I64, TrajectoryInputs, TrajectoryOutputs
from ddcl_incrt.conformance.adapters.reference import ReferenceAdapter
from ddcl_incrt.conformance.trajectory import run_trajectory
from reference import ddcl
from reference.backward import loss_and_gradients
from reference.growth_phases import Context, Measured, ReferenceBackend, TrainerState, run_check
from reference.growth_statistics import Probe, head_operators
from reference.incrt.controller import GrowthConfig, GrowthEvent, GrowthState, HeadRecord, PrototypeRecord
from reference.incrt.operators import residual_operator
from reference.log import CheckRecord, InvariantRecord
from reference.model import LayerConfig, ModelParams, layer_input
from reference.optim import Adam, AdamMoments, AdamState, LearningRates
from reference.surgery import flatten, unflatten
from training.trainer import ReferenceEngine


def _softmax_rows(S: F64) -> F64:
    E = np.exp(S - S.max(axis=1, keepdims=True))
    return np.asarray(E / E.sum(axis=1, keepdims=True), dtype=np.float64)


def _append(Q: F64, u: F64) -> F64:
    u = u - Q @ (Q.T @ u)
    return np.asarray(np.column_stack([Q, u / np.linalg.norm(u)]), dtype=np.float64)


class SignFlipAssignments(ReferenceAdapter):
    """A sign: ``q_t = softmax(+D_t/T_P)`` — tokens go to their FARTHEST prototype."""

    name = "broken: sign of the assignment logits"

    def soft_assignments(self, D: F64, T_P: float) -> F64:
        return _softmax_rows(D / T_P)


class TemperatureScalingFreeEnergy(ReferenceAdapter):
    """A temperature scaling: ``F = −(1/n) Σ log Σ exp(−D/T_P)``, the leading ``T_P`` dropped
    (identical at ``T_P = 1``, so only the cases at other temperatures see it)."""

    name = "broken: free energy without its T_P factor"

    def free_energy(self, Y: F64, P: F64, T_P: float) -> float:
        D = ddcl.squared_distances(Y, P)
        Dmin = D.min(axis=1)
        lse = np.log(np.exp(-(D - Dmin[:, None]) / T_P).sum(axis=1))
        return float(np.mean(Dmin / T_P - lse, dtype=np.float64))


class NormalisationVariance(ReferenceAdapter):
    """A normalisation: ``V`` averaged over tokens AND prototypes (``1/(nK)`` instead of ``1/n``)."""

    name = "broken: V normalised by n·K"

    def prototype_variance(self, P: F64, Q: F64) -> float:
        return ddcl.prototype_variance(P, Q) / int(Q.shape[1])


class MissingGradientTerm(ReferenceAdapter):
    """A missing term in a gradient: ``∇L_q`` through softmax assignments computed with ``Q`` held
    fixed (the ``∂Q/∂D`` term dropped)."""

    name = "broken: L_q gradient without the term through Q"

    def grad_quantisation_full(self, Y: F64, P: F64, T_P: float) -> tuple[F64, F64]:
        return ddcl.grad_quantisation_fixed_Q(Y, P, ddcl.assignments(Y, P, T_P))


class _GrowRule(ReferenceAdapter):
    """SPEC §3.2 written out as a port would, with the comparisons as parameters."""

    grows: Callable[[float, float], bool] = staticmethod(lambda lam, theta: lam > theta)
    dwell_passed: Callable[[int, int], bool] = staticmethod(lambda since, T_d: since >= T_d)
    capture_guard = True  # no birth once m = d directions are captured

    def append(self, Q: F64, u: F64) -> F64:
        """``Q_cap`` with the newborn's direction: ``u`` projected off ``Q`` and normalised."""
        return _append(Q, u)

    def grow_decision(
        self, state: GrowthState, config: GrowthConfig, lam_max: float, u_plus: F64, step: int, new_head_id: int
    ) -> GrowthState:
        since = step - state.last_growth_step
        room = state.m < state.d or not self.capture_guard
        if self.grows(lam_max, config.theta) and self.dwell_passed(since, config.T_d) and room:
            return replace(
                state,
                Q_cap=self.append(state.Q_cap, u_plus),
                last_growth_step=step,
                heads=(*state.heads, HeadRecord(new_head_id, step)),
            )
        return state


class ThresholdGreaterEqual(_GrowRule):
    """A threshold comparison: grow when ``λ_max ≥ θ`` (SPEC §3.2 says ``>``)."""

    name = "broken: grow at λ_max >= θ"
    grows = staticmethod(lambda lam, theta: lam >= theta)


class DwellOffByOne(_GrowRule):
    """An off-by-one in the dwell time: grow only when MORE than ``T_d`` steps passed."""

    name = "broken: dwell time off by one"
    dwell_passed = staticmethod(lambda since, T_d: since > T_d)


class StaleCapturedBasis(ReferenceAdapter):
    """A stale captured basis: the deflation ``Π⊥`` is rebuilt from the basis as it was BEFORE the
    latest birth (updated one round late), so the newest direction is found again."""

    name = "broken: Π⊥ one birth stale"

    def static_growth(self, A: F64, theta: float) -> tuple[F64, F64]:
        d = A.shape[0]
        Q = np.zeros((d, 0))
        Pi = np.eye(d)
        births: list[float] = []
        while len(births) < d:
            R = Pi @ A @ Pi
            lam, V = np.linalg.eigh(0.5 * (R + R.T))
            if not lam[-1] > theta:
                break
            Pi = np.eye(d) - Q @ Q.T  # the bug: the projector of the basis before this birth's append
            Q = np.column_stack([Q, V[:, -1]])
            births.append(float(lam[-1]))
        return np.asarray(Q, dtype=np.float64), np.array(births, dtype=np.float64)


class OptimiserStateAfterBirth(ReferenceAdapter):
    """An optimiser-state bug after a birth: a new head's Adam moments start at zero but with the
    step count of the run (the largest count of any parameter), not its own count 0, so its first
    update is under-corrected."""

    name = "broken: new head's Adam step count shared"

    def train_step(
        self, cfg: LayerConfig, params: ModelParams, adam: AdamState, x: F64, labels: I64, lr: LearningRates
    ) -> tuple[ModelParams, AdamState]:
        _, grads = loss_and_gradients(params, cfg, x, labels)
        flat = flatten(params)
        t_run = max((m.t for m in adam.moments.values()), default=0)
        moments = dict(adam.moments)
        for name, p in flat.items():
            if name not in moments:
                moments[name] = AdamMoments(m=np.zeros_like(p), v=np.zeros_like(p), t=t_run)
        new, state = Adam(lr=lr).step(AdamState(moments=moments), flat, grads)
        return unflatten(new, like=params), state


class HeadTemperatureIgnored(ReferenceAdapter):
    """A temperature scaling in the layer: ``M_h = W_Q W_Kᵀ/√d_k`` without the head's ``τ_h``
    (right only where every ``s_h = 0``)."""

    name = "broken: head temperature ignored"

    def layer_forward(self, cfg: LayerConfig, params: ModelParams, x: F64, labels: I64) -> dict[str, F64]:
        heads = {h: replace(hp, s=0.0) for h, hp in params.heads.items()}
        return dict(operations.layer_forward(cfg, replace(params, heads=heads), x, labels))


def _exponent(D: F64, T_P: float, shift: bool) -> F64:
    """``−(D − min_j D)/T_P`` row by row (SPEC §2's stable form), or ``−D/T_P`` without the shift."""
    return np.asarray(-(D - D.min(axis=1, keepdims=True)) / T_P if shift else -D / T_P, dtype=np.float64)


def _softmax(D: F64, T_P: float, shift: bool) -> F64:
    with np.errstate(all="ignore"):  # the unshifted form's 0/0 is the bug, not an error of the kit
        E = np.exp(_exponent(D, T_P, shift))
        return np.asarray(E / E.sum(axis=1, keepdims=True), dtype=np.float64)


class _SoftmaxRule(ReferenceAdapter):
    """The temperature primitives written out as a port would; ``shift`` says whether each row's
    exponent is shifted by its smallest distance first (SPEC §2's stable softmax and log-sum-exp)."""

    shift = True

    def soft_assignments(self, D: F64, T_P: float) -> F64:
        return _softmax(D, T_P, self.shift)

    def free_energy(self, Y: F64, P: F64, T_P: float) -> float:
        D = ddcl.squared_distances(Y, P)
        offset = D.min(axis=1) if self.shift else np.zeros(D.shape[0])
        with np.errstate(all="ignore"):
            lse = np.log(np.exp(_exponent(D, T_P, self.shift)).sum(axis=1))
            return float(np.mean(offset - T_P * lse, dtype=np.float64))


class _PruneRule(ReferenceAdapter):
    """SPEC §3.3 written out as a port would (NumPy only), with the details a port can get wrong as
    switches; with the defaults it is the reference's rule."""

    recompute_after_removal = True  # λ_max(A_res) of the heads still present, at each prune
    reset_on_recovery = True  # a head at or above φ_g restarts its count from 0
    count_while_young = True  # a head younger than T_d counts its weak checks too
    respect_min_heads = True
    newborn_in_residual = True  # a head born at this step is in A_res
    hysteresis = True  # a prune needs λ_max(A_res without the head) + G_h ≤ θ
    reset_while_young = False  # a head younger than the dwell is not measured: its count is reset to 0
    old_enough: Callable[[int, int], bool] = staticmethod(lambda age, T_d: age >= T_d)

    def patience(self, config: GrowthConfig) -> int:
        """Consecutive weak checks that make a head eligible (SPEC: ``T_prune``)."""
        return config.T_prune

    def dwell(self, config: GrowthConfig, d: int) -> int:
        """The age in steps below which a head is not pruned (SPEC: ``T_d``)."""
        return config.T_d

    def prune_decision(
        self, state: GrowthState, config: GrowthConfig, C: F64, M_a: Mapping[int, F64], step: int
    ) -> GrowthState:
        d = C.shape[0]
        Pi = np.eye(d) - state.Q_cap @ state.Q_cap.T

        def lam_max(heads: list[HeadRecord]) -> float:
            M = np.zeros((d, d))
            for r in heads:
                if self.newborn_in_residual or r.birth_step != step:
                    M = M + M_a[r.head_id]
            CM = C @ M
            R = Pi @ (0.5 * (CM + CM.T)) @ Pi
            return float(np.linalg.eigvalsh(0.5 * (R + R.T))[-1])

        G = {h: float(np.linalg.norm(C @ M)) for h, M in M_a.items()}
        T_d = self.dwell(config, d)
        heads: list[HeadRecord] = []
        for r in state.heads:
            young = step - r.birth_step < T_d
            if young and self.reset_while_young:
                count = 0
            elif G[r.head_id] < config.phi_g:
                count = r.below_count + 1 if self.count_while_young or not young else r.below_count
            else:
                count = 0 if self.reset_on_recovery else r.below_count
            heads.append(replace(r, below_count=count))
        eligible = sorted(
            (r for r in heads if r.below_count >= self.patience(config) and self.old_enough(step - r.birth_step, T_d)),
            key=lambda r: (G[r.head_id], r.head_id),
        )
        lam_at_start = lam_max(heads)
        for r in eligible:
            if self.respect_min_heads and len(heads) <= config.min_heads:
                break
            lam = lam_max(heads) if self.recompute_after_removal else lam_at_start
            if not self.hysteresis or lam + G[r.head_id] <= config.theta:
                heads = [x for x in heads if x.head_id != r.head_id]
        return replace(state, heads=tuple(heads))


class _PrototypePruneRule(ReferenceAdapter):
    """SPEC §3.5 written out as a port would; ``order`` is the order in which eligible prototypes are
    removed (``mass``: the reference's ``(mass, id)``; ``position``, ``id``, ``mass_then_position``)."""

    order = "mass"
    respect_min_prototypes = True

    def prototype_prune_decision(self, state: GrowthState, config: GrowthConfig, mass: F64, step: int) -> GrowthState:
        protos = [
            replace(r, low_mass_count=r.low_mass_count + 1 if m < config.eps_K else 0)
            for r, m in zip(state.prototypes, mass.tolist(), strict=True)
        ]
        pairs = enumerate(zip(state.prototypes, mass.tolist(), strict=True))
        of = {r.prototype_id: (float(m), i) for i, (r, m) in pairs}
        keys: dict[str, Callable[[PrototypeRecord], tuple[float, ...]]] = {
            "mass": lambda r: (of[r.prototype_id][0], r.prototype_id),
            "position": lambda r: (of[r.prototype_id][1],),
            "id": lambda r: (r.prototype_id,),
            "mass_then_position": lambda r: of[r.prototype_id],
        }
        eligible = sorted((r for r in protos if r.low_mass_count >= config.T_prune), key=keys[self.order])
        for r in eligible:
            if self.respect_min_prototypes and len(protos) <= config.min_prototypes:
                break
            protos = [x for x in protos if x.prototype_id != r.prototype_id]
        return replace(state, prototypes=tuple(protos))


class UnstabilisedSoftmax(ReferenceAdapter):
    """An unstabilised softmax: ``q_t = exp(−D_t/T_P)/Σ exp(−D_t/T_P)`` without shifting the row by its
    smallest distance; right wherever ``D/T_P`` stays below ~745, 0/0 where every entry underflows."""

    name = "broken: assignment softmax without the row shift"

    def soft_assignments(self, D: F64, T_P: float) -> F64:
        return _softmax(D, T_P, shift=False)


class StaleHysteresisStatistic(_PruneRule):
    """A stale hysteresis statistic: ``λ_max(A_res)`` computed once at the start of the prune phase and
    used for every prune, so a second prune's test still counts the head pruned first."""

    name = "broken: λ_max of the hysteresis not re-formed after a prune"
    recompute_after_removal = False


class CounterNeverReset(_PruneRule):
    """A patience counter that is never reset: ``below_count`` counts every weak check, not the
    consecutive ones, so a head that recovered above ``φ_g`` keeps its old count."""

    name = "broken: below-threshold count not reset on recovery"
    reset_on_recovery = False


class MinHeadsIgnored(_PruneRule):
    """``min_heads`` ignored: every eligible head that passes the hysteresis goes, the last one too."""

    name = "broken: min_heads ignored"
    respect_min_heads = False


class PrototypesByPosition(_PrototypePruneRule):
    """Idle prototypes removed in ``state.prototypes`` order instead of smallest mass first (the same
    result unless ``min_prototypes`` binds)."""

    name = "broken: idle prototypes removed by position"
    order = "position"


class _PortBackend(ReferenceBackend):
    """The reference's growth backend with a port's own measurement: ``second_moment`` and
    ``top_eigenvector`` are the two steps of ``measure`` a port writes itself (defaults: the reference's)."""

    def second_moment(self, X: F64) -> F64:
        return np.asarray(X.T @ X / X.shape[0], dtype=np.float64)

    def top_eigenvector(self, V: F64) -> F64:
        return np.asarray(V[:, -1], dtype=np.float64)

    def measure(self, ctx: Context, state: TrainerState, probe: Probe) -> Measured:
        ref = super().measure(ctx, state, probe)
        X = layer_input(state.params, probe.x)
        C = self.second_moment(X.reshape(-1, X.shape[-1]))
        Ms = head_operators(state.params)
        A = residual_operator(C, np.sum([Ms[h] for h in sorted(Ms)], axis=0), state.growth.Q_cap)
        lam, V = np.linalg.eigh(0.5 * (A + A.T))
        return replace(
            ref,
            C=C,
            A_res=A,
            lam_max=float(lam[-1]),
            u_max=self.top_eigenvector(V),
            spectrum=tuple(lam[::-1].tolist()),
            head_strength={h: float(np.linalg.norm(C @ Ms[h])) for h in sorted(Ms)},
        )


class _PortEngine(ReferenceEngine):
    """The reference engine whose growth checks measure through a :class:`_PortBackend`: a port's
    training loop that shares the port's statistics bug."""

    def __init__(self, backend: _PortBackend) -> None:
        self.backend = backend

    def check(
        self, ctx: Context, es: TrainerState, probe: Probe
    ) -> tuple[TrainerState, CheckRecord, tuple[GrowthEvent, ...], tuple[InvariantRecord, ...]]:
        return run_check(self.backend, ctx, es, probe)


class _UnbiasedBackend(_PortBackend):
    def second_moment(self, X: F64) -> F64:
        return np.asarray(X.T @ X / (X.shape[0] - 1), dtype=np.float64)


class _RowEigenvectorBackend(_PortBackend):
    def top_eigenvector(self, V: F64) -> F64:
        return np.asarray(V[-1, :], dtype=np.float64)


class SecondMomentUnbiased(ReferenceAdapter):
    """A normalisation: the probe's second moment ``C = XᵀX/(n − 1)`` (a covariance habit) instead of
    ``XᵀX/n``; ``A_res`` and every ``G_h`` scale with it."""

    name = "broken: C normalised by n − 1"

    def growth_statistics(self, params: ModelParams, probe_x: F64, Q_cap: F64) -> Mapping[str, F64]:
        X = layer_input(params, probe_x)
        X = X.reshape(-1, X.shape[-1])
        C = np.asarray(X.T @ X / (X.shape[0] - 1), dtype=np.float64)
        Ms = head_operators(params)
        ids = sorted(Ms)
        A = residual_operator(C, np.sum([Ms[h] for h in ids], axis=0), Q_cap)
        return {
            "C": C,
            "M_a": np.stack([Ms[h] for h in ids]),
            "A_res": A,
            "spectrum": np.linalg.eigvalsh(A)[::-1].copy(),
            "G_h": np.array([np.linalg.norm(C @ Ms[h]) for h in ids], dtype=np.float64),
        }

    def trajectory(self, inputs: TrajectoryInputs) -> TrajectoryOutputs:
        """The port's training run measures its checks with the same ``C``: every ``λ_max`` and ``G_h``
        scales by ``n/(n − 1)`` while no decision need flip."""
        return run_trajectory(_PortEngine(_UnbiasedBackend()), inputs)[0]


class TopEigenvectorAsRow(ReferenceAdapter):
    """An axis convention: the top eigenvector read as the last ROW of ``eigh``'s matrix
    (``V[-1, :]``) instead of its last column (``V[:, -1]``); a unit vector, so nothing looks wrong."""

    name = "broken: top eigenvector read as a row of eigh's matrix"

    def static_growth(self, A: F64, theta: float) -> tuple[F64, F64]:
        d = A.shape[0]
        Q = np.zeros((d, 0))
        births: list[float] = []
        while len(births) < d:
            Pi = np.eye(d) - Q @ Q.T
            R = Pi @ A @ Pi
            lam, V = np.linalg.eigh(0.5 * (R + R.T))
            if not lam[-1] > theta:
                break
            Q = _append(Q, V[-1, :])  # the bug: a row, not the eigenvector
            births.append(float(lam[-1]))
        return np.asarray(Q, dtype=np.float64), np.array(births, dtype=np.float64)

    def trajectory(self, inputs: TrajectoryInputs) -> TrajectoryOutputs:
        """The port's growth checks capture ``u₊`` the same way: a wrong captured direction, and the
        residual operator of every later check deflated by it."""
        return run_trajectory(_PortEngine(_RowEigenvectorBackend()), inputs)[0]


class PrototypesOrientationSniffed(ReferenceAdapter):
    """An orientation read from the shape: the port keeps prototypes as rows (K×d) and converts the
    kit's ``P`` by ``P if P.shape[0] == K else P.T``, right for every d ≠ K and silently transposed
    when ``P`` is square (d = K)."""

    name = "broken: P's orientation guessed from its shape"

    def layer_forward(self, cfg: LayerConfig, params: ModelParams, x: F64, labels: I64) -> dict[str, F64]:
        K = len(params.prototype_ids)
        rows = params.P if params.P.shape[0] == K else params.P.T  # the bug: a d×K P with d = K passes as rows
        return dict(operations.layer_forward(cfg, replace(params, P=np.array(rows.T)), x, labels))


class PrimitivesOnly(ReferenceAdapter):
    """A correct port of the DDCL primitives only: the report must say that nothing else was covered."""

    name = "partial: primitives only"
    capabilities = frozenset(operations.groups()["primitives"])


def sign_flip_assignments() -> SignFlipAssignments:
    return SignFlipAssignments()


def temperature_scaling_free_energy() -> TemperatureScalingFreeEnergy:
    return TemperatureScalingFreeEnergy()


def normalisation_variance() -> NormalisationVariance:
    return NormalisationVariance()


def missing_gradient_term() -> MissingGradientTerm:
    return MissingGradientTerm()


def threshold_greater_equal() -> ThresholdGreaterEqual:
    return ThresholdGreaterEqual()


def dwell_off_by_one() -> DwellOffByOne:
    return DwellOffByOne()


def stale_captured_basis() -> StaleCapturedBasis:
    return StaleCapturedBasis()


def optimiser_state_after_birth() -> OptimiserStateAfterBirth:
    return OptimiserStateAfterBirth()


def head_temperature_ignored() -> HeadTemperatureIgnored:
    return HeadTemperatureIgnored()


def unstabilised_softmax() -> UnstabilisedSoftmax:
    return UnstabilisedSoftmax()


def stale_hysteresis_statistic() -> StaleHysteresisStatistic:
    return StaleHysteresisStatistic()


def counter_never_reset() -> CounterNeverReset:
    return CounterNeverReset()


def min_heads_ignored() -> MinHeadsIgnored:
    return MinHeadsIgnored()


def prototypes_by_position() -> PrototypesByPosition:
    return PrototypesByPosition()


def second_moment_unbiased() -> SecondMomentUnbiased:
    return SecondMomentUnbiased()


def top_eigenvector_as_row() -> TopEigenvectorAsRow:
    return TopEigenvectorAsRow()


def prototypes_orientation_sniffed() -> PrototypesOrientationSniffed:
    return PrototypesOrientationSniffed()


def primitives_only() -> PrimitivesOnly:
    return PrimitivesOnly()


@dataclass(frozen=True)
class PlantedBug:
    """One class of port bug: the factory of its broken adapter (in this module), what the bug is, and
    the check that must catch it (the kit's answer to "where does my port differ")."""

    factory: str
    bug_class: str
    check: str
    also: tuple[str, ...] = ()  # other checks that must fail too (the same bug in the port's training run)


# every broken adapter of this module, the class of bug it plants and the check that catches it; docs/porting.md's
# table of port-bug classes is bug_table(), and tests/test_conformance.py runs each against its check
PLANTED: tuple[PlantedBug, ...] = (
    PlantedBug("sign_flip_assignments", "a sign: assignment logits `+D/T_P`", "soft_assignments/basic"),
    PlantedBug("unstabilised_softmax", "an unstabilised softmax: no row shift before `exp`", "soft_assignments/frozen"),
    PlantedBug("temperature_scaling_free_energy", "a temperature factor: `F` without `T_P`", "free_energy/cold"),
    PlantedBug("normalisation_variance", "a normalisation: `V` averaged over `n·K`", "prototype_variance/basic"),
    PlantedBug(
        "missing_gradient_term", "a missing gradient term: `∇L_q` with `Q` held fixed", "grad_quantisation_full/basic"
    ),
    PlantedBug(
        "head_temperature_ignored", "a temperature in the layer: head `τ_h` ignored", "layer_forward/three_heads"
    ),
    PlantedBug(
        "prototypes_orientation_sniffed",
        "an orientation guessed from the shape: `P` transposed when d = K",
        "layer_forward/square_d_K",
    ),
    PlantedBug(
        "second_moment_unbiased",
        "a normalisation: `C = XᵀX/(n − 1)`",
        "growth_statistics/one_head_m0",
        ("trajectory/short_run", "trajectory/near_tie"),
    ),
    PlantedBug("stale_captured_basis", "a stale captured basis: `Π⊥` one birth late", "static_growth/clear_gaps"),
    PlantedBug(
        "top_eigenvector_as_row",
        "an axis convention: the top eigenvector as a row of `eigh`'s matrix",
        "static_growth/repeated_eigenvalue",
        ("trajectory/short_run", "trajectory/near_tie"),
    ),
    PlantedBug(
        "threshold_greater_equal", "a threshold comparison: grow at `λ_max ≥ θ`", "grow_decision/at_threshold_tie"
    ),
    PlantedBug(
        "dwell_off_by_one", "an off-by-one: the dwell needs more than `T_d` steps", "grow_decision/dwell_boundary"
    ),
    PlantedBug(
        "stale_hysteresis_statistic",
        "a stale statistic: the hysteresis `λ_max` not re-formed after a prune",
        "prune_decision/two_prunes_recomputed",
    ),
    PlantedBug(
        "counter_never_reset", "a patience counter never reset on recovery", "prune_decision/counter_resets_on_recovery"
    ),
    PlantedBug("min_heads_ignored", "a floor ignored: `min_heads`", "prune_decision/last_head_kept"),
    PlantedBug(
        "prototypes_by_position",
        "an order: idle prototypes removed by position",
        "prototype_prune_decision/floor_by_mass",
    ),
    PlantedBug(
        "optimiser_state_after_birth",
        "optimiser state after a birth: the run's step count",
        "train_step/adam_after_birth",
    ),
)

# factory -> the check that must catch it (each a distinct kind of porting bug)
EXPECTED_CATCH: dict[str, str] = {b.factory: b.check for b in PLANTED}


def bug_table() -> str:
    """docs/porting.md's table of port-bug classes: every broken adapter and the check that catches it."""
    rows = ["| class of port bug | broken adapter (`ddcl_incrt.conformance.broken:…`) | caught by |", "|---|---|---|"]
    rows += [
        f"| {b.bug_class} | `{b.factory}` | `{b.check}`" + "".join(f", `{c}`" for c in b.also) + " |" for b in PLANTED
    ]
    return "\n".join(rows) + "\n"


__all__ = [
    "EXPECTED_CATCH",
    "PLANTED",
    "CounterNeverReset",
    "DwellOffByOne",
    "HeadTemperatureIgnored",
    "MinHeadsIgnored",
    "MissingGradientTerm",
    "NormalisationVariance",
    "OptimiserStateAfterBirth",
    "PlantedBug",
    "PrimitivesOnly",
    "PrototypesByPosition",
    "PrototypesOrientationSniffed",
    "SecondMomentUnbiased",
    "SignFlipAssignments",
    "StaleCapturedBasis",
    "StaleHysteresisStatistic",
    "TemperatureScalingFreeEnergy",
    "ThresholdGreaterEqual",
    "TopEigenvectorAsRow",
    "UnstabilisedSoftmax",
    "bug_table",
    "counter_never_reset",
    "dwell_off_by_one",
    "head_temperature_ignored",
    "min_heads_ignored",
    "missing_gradient_term",
    "normalisation_variance",
    "optimiser_state_after_birth",
    "primitives_only",
    "prototypes_by_position",
    "prototypes_orientation_sniffed",
    "second_moment_unbiased",
    "sign_flip_assignments",
    "stale_captured_basis",
    "stale_hysteresis_statistic",
    "temperature_scaling_free_energy",
    "threshold_greater_equal",
    "top_eigenvector_as_row",
    "unstabilised_softmax",
]
