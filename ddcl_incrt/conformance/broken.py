"""Deliberately broken adapters: each is the reference with ONE bug of a kind a porter makes, written
the way a port would write that operation. The kit must catch each by a named check
(:data:`EXPECTED_CATCH`; tests/test_conformance.py asserts it, and that each failure's repro snippet
reproduces it on its own). They are importable by ``package.module:factory`` like any port."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np

from ddcl_incrt.conformance import operations
from ddcl_incrt.conformance.adapter import F64, I64
from ddcl_incrt.conformance.adapters.reference import ReferenceAdapter
from reference import ddcl
from reference.backward import loss_and_gradients
from reference.incrt.controller import GrowthConfig, GrowthState, HeadRecord, PrototypeRecord
from reference.model import LayerConfig, ModelParams
from reference.optim import Adam, AdamMoments, AdamState, LearningRates
from reference.surgery import flatten, unflatten


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

    def grow_decision(
        self, state: GrowthState, config: GrowthConfig, lam_max: float, u_plus: F64, step: int, new_head_id: int
    ) -> GrowthState:
        since = step - state.last_growth_step
        if self.grows(lam_max, config.theta) and self.dwell_passed(since, config.T_d) and state.m < state.d:
            return replace(
                state,
                Q_cap=_append(state.Q_cap, u_plus),
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


class _SoftmaxRule(ReferenceAdapter):
    """The temperature primitives written out as a port would; ``shift`` says whether each row's
    exponent is shifted by its smallest distance first (SPEC §2's stable softmax and log-sum-exp)."""

    shift = True

    def _exponent(self, D: F64, T_P: float) -> F64:
        return np.asarray(-(D - D.min(axis=1, keepdims=True)) / T_P if self.shift else -D / T_P, dtype=np.float64)

    def soft_assignments(self, D: F64, T_P: float) -> F64:
        with np.errstate(all="ignore"):
            E = np.exp(self._exponent(D, T_P))
            return np.asarray(E / E.sum(axis=1, keepdims=True), dtype=np.float64)

    def free_energy(self, Y: F64, P: F64, T_P: float) -> float:
        D = ddcl.squared_distances(Y, P)
        offset = D.min(axis=1) if self.shift else np.zeros(D.shape[0])
        with np.errstate(all="ignore"):
            lse = np.log(np.exp(self._exponent(D, T_P)).sum(axis=1))
            return float(np.mean(offset - T_P * lse, dtype=np.float64))


class _PruneRule(ReferenceAdapter):
    """SPEC §3.3 written out as a port would (NumPy only), with the details a port can get wrong as
    switches; with the defaults it is the reference's rule."""

    recompute_after_removal = True  # λ_max(A_res) of the heads still present, at each prune
    reset_on_recovery = True  # a head at or above φ_g restarts its count from 0
    count_while_young = True  # a head younger than T_d counts its weak checks too
    respect_min_heads = True
    newborn_in_residual = True  # a head born at this step is in A_res
    old_enough: Callable[[int, int], bool] = staticmethod(lambda age, T_d: age >= T_d)

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
        heads: list[HeadRecord] = []
        for r in state.heads:
            young = step - r.birth_step < config.T_d
            if G[r.head_id] < config.phi_g:
                count = r.below_count + 1 if self.count_while_young or not young else r.below_count
            else:
                count = 0 if self.reset_on_recovery else r.below_count
            heads.append(replace(r, below_count=count))
        eligible = sorted(
            (r for r in heads if r.below_count >= config.T_prune and self.old_enough(step - r.birth_step, config.T_d)),
            key=lambda r: (G[r.head_id], r.head_id),
        )
        lam_at_start = lam_max(heads)
        for r in eligible:
            if self.respect_min_heads and len(heads) <= config.min_heads:
                break
            lam = lam_max(heads) if self.recompute_after_removal else lam_at_start
            if lam + G[r.head_id] <= config.theta:
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


def primitives_only() -> PrimitivesOnly:
    return PrimitivesOnly()


# factory -> the check that must catch it (each a distinct kind of porting bug)
EXPECTED_CATCH: dict[str, str] = {
    "sign_flip_assignments": "soft_assignments/basic",
    "temperature_scaling_free_energy": "free_energy/cold",
    "normalisation_variance": "prototype_variance/basic",
    "missing_gradient_term": "grad_quantisation_full/basic",
    "threshold_greater_equal": "grow_decision/at_threshold_tie",
    "dwell_off_by_one": "grow_decision/dwell_boundary",
    "stale_captured_basis": "static_growth/clear_gaps",
    "optimiser_state_after_birth": "train_step/adam_after_birth",
    "head_temperature_ignored": "layer_forward/three_heads",
}


__all__ = [
    "EXPECTED_CATCH",
    "DwellOffByOne",
    "HeadTemperatureIgnored",
    "MissingGradientTerm",
    "NormalisationVariance",
    "OptimiserStateAfterBirth",
    "PrimitivesOnly",
    "SignFlipAssignments",
    "StaleCapturedBasis",
    "TemperatureScalingFreeEnergy",
    "ThresholdGreaterEqual",
    "dwell_off_by_one",
    "head_temperature_ignored",
    "missing_gradient_term",
    "normalisation_variance",
    "optimiser_state_after_birth",
    "primitives_only",
    "sign_flip_assignments",
    "stale_captured_basis",
    "temperature_scaling_free_energy",
    "threshold_greater_equal",
]
