"""Property mode covers every proved claim, and each new check can fail.

The operations added for D3, D4 (the Hessians, the prototype step), D6 (the dual competitive layer), G4
(tracked capture) and G6 (the trackers) are each caught, on their own cases, by a port with one bug
of the kind a port makes; each new property fails for a planted bug too. A float32 port is checked
against float32 bounds (reference.tolerances.rounding_precision): the accelerated float32 adapter
passes, and a float32-only bug (an unshifted softmax, whose exp underflows in float32 where float64's
does not) fails while the same code in float64 passes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ddcl_incrt.conformance.adapters.accelerated import AcceleratedAdapter
from ddcl_incrt.conformance.adapters.reference import ReferenceAdapter
from ddcl_incrt.conformance.compare import TolerancePolicy
from ddcl_incrt.conformance.operations import tracked_growth as reference_tracked_growth
from ddcl_incrt.conformance.properties import (
    NOT_COVERED,
    PROPERTIES,
    float32_underflow_band,
    port_dtype,
    run_properties,
)
from ddcl_incrt.conformance.runner import run_adapter
from reference import dcl, ddcl
from reference.claims.records import Label
from reference.claims.registry import REGISTRY
from reference.incrt import trackers
from reference.tolerances import accumulation_bound, current_rounding_dtype, gamma, rounding_precision

NEW_PROPERTIES = ("D3", "D4", "D6", "G4", "G6")


def _property(claim: str) -> object:
    return next(p for p in PROPERTIES if p.claim == claim)


# --------------------------------------------------------------------------------------------------
# Ports with one bug in one of the new operations
# --------------------------------------------------------------------------------------------------


class HessianMissingFactor(ReferenceAdapter):
    """``∇²L_q`` taken as ``∇²F`` (the L_q Hessian's extra terms through the weights dropped)."""

    name = "broken: ∇²L_q = ∇²F"

    def hessian_quantisation(self, Y: np.ndarray, P: np.ndarray, T_P: float) -> np.ndarray:
        return ddcl.hessian_free_energy(Y, P, T_P)


class HessianRowMajor(ReferenceAdapter):
    """``∇²F`` indexed ``i·K + j`` for ``P[i, j]`` (row-major) instead of ``j·d + i``."""

    name = "broken: Hessian in row-major order"

    def hessian_free_energy(self, Y: np.ndarray, P: np.ndarray, T_P: float) -> np.ndarray:
        d, K = P.shape
        H = ddcl.hessian_free_energy(Y, P, T_P).reshape(K, d, K, d)
        return np.asarray(H.transpose(1, 0, 3, 2).reshape(d * K, d * K))


class AscentStep(ReferenceAdapter):
    """``P⁺ = P + η∇F``: a sign."""

    name = "broken: prototype step ascends"

    def prototype_step(self, Y: np.ndarray, P: np.ndarray, T_P: float, eta: float) -> np.ndarray:
        return np.asarray(P + eta * ddcl.grad_free_energy(Y, P, T_P)[1])


class DCLWithoutBias(ReferenceAdapter):
    """The DCL's prototypes without the ``1bᵀ`` term, and a step that leaves ``b`` alone."""

    name = "broken: DCL bias ignored"

    def dcl_prototypes(self, Y_b: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.asarray(Y_b.T @ W)

    def dcl_step(
        self, Y_b: np.ndarray, W: np.ndarray, b: np.ndarray, grad_P: np.ndarray, eta: float
    ) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(W - eta * Y_b @ grad_P), b


class OjaUnnormalised(ReferenceAdapter):
    """Oja's rule without the renormalisation of ``w`` (nor of ``w0``)."""

    name = "broken: Oja without renormalisation"

    def oja_track(self, A: np.ndarray, w0: np.ndarray, eta: float, n_steps: int) -> tuple[np.ndarray, float]:
        w = np.array(w0, dtype=np.float64)
        for _ in range(n_steps):
            Aw = A @ w
            w = w + eta * (Aw - (w @ Aw) * w)
        return w, float(w @ A @ w / (w @ w))


class ExinFixedStep(ReferenceAdapter):
    """MCA-EXIN with the step ``η`` itself instead of ``η/‖w_t‖²``."""

    name = "broken: MCA-EXIN without the 1/‖w‖² step"

    def mca_exin_track(
        self, A: np.ndarray, w0: np.ndarray, eta: float, n_steps: int
    ) -> tuple[np.ndarray, np.ndarray, float]:
        w = np.array(w0, dtype=np.float64)
        for _ in range(n_steps):
            Aw = A @ w
            w = w - eta * (Aw - (w @ Aw) / (w @ w) * w)
        return w, np.full(n_steps, eta), float(w @ A @ w / (w @ w))


class ExinAscends(ReferenceAdapter):
    """MCA-EXIN with the sign of the update flipped: it climbs to the top eigenvector, not the minor one."""

    name = "broken: MCA-EXIN ascends"

    def mca_exin_track(
        self, A: np.ndarray, w0: np.ndarray, eta: float, n_steps: int
    ) -> tuple[np.ndarray, np.ndarray, float]:
        w = np.array(w0, dtype=np.float64)
        alphas = np.empty(n_steps)
        for t in range(n_steps):
            alphas[t] = eta / (w @ w)
            Aw = A @ w
            w = w + alphas[t] * (Aw - (w @ Aw) / (w @ w) * w)
        return w, alphas, float(w @ A @ w / (w @ w))


class TrackedStartsNotProjected(ReferenceAdapter):
    """Tracked capture whose rounds start from the raw start, not projected off the captured directions
    (then deflated ``Π⊥AΠ⊥`` keeps the start's captured component: with few steps the tracker is still
    partly inside ``span(Q_cap)`` and the re-orthogonalised direction is off)."""

    name = "broken: tracked capture starts not projected"

    def tracked_growth(
        self, A: np.ndarray, theta: float, starts: np.ndarray, n_steps: int, eta: float
    ) -> tuple[np.ndarray, np.ndarray]:
        d = A.shape[0]
        Q = np.zeros((d, 0))
        births: list[float] = []
        for k in range(d + 1):
            Pi = np.eye(d) - Q @ Q.T
            R = Pi @ A @ Pi
            R = 0.5 * (R + R.T)
            res = trackers.oja_track(R, starts[k], eta, n_steps // 50)  # the bug: raw start (and few steps)
            if not res.estimate > theta or Q.shape[1] >= d:
                break
            u = res.w - Q @ (Q.T @ res.w)
            Q = np.column_stack([Q, u / np.linalg.norm(u)])
            births.append(res.estimate)
        return Q, np.array(births)


@pytest.mark.parametrize(
    ("port", "check"),
    [
        (HessianMissingFactor(), "hessian_quantisation/basic"),
        (HessianRowMajor(), "hessian_free_energy/basic"),
        (AscentStep(), "prototype_step/basic"),
        (DCLWithoutBias(), "dcl_prototypes/basic"),
        (DCLWithoutBias(), "dcl_step/basic"),
        (OjaUnnormalised(), "oja_track/basic"),
        (ExinFixedStep(), "mca_exin_track/basic"),
        (TrackedStartsNotProjected(), "tracked_growth/clear_gaps"),
    ],
)
def test_each_new_operation_is_caught_by_its_cases(port: ReferenceAdapter, check: str) -> None:
    op = check.split("/")[0]
    report = run_adapter(port, only=[f"{op}/*"])
    failed = {r.check for r in report.failures}
    assert check in failed, report.to_markdown()
    assert {r.operation for r in report.failures} == {op}
    assert run_adapter(ReferenceAdapter(), only=[f"{op}/*"]).exit_code == 0


@pytest.mark.parametrize(
    ("port", "claim"),
    [
        (HessianMissingFactor(), "D4"),
        (AscentStep(), "D3"),
        (DCLWithoutBias(), "D6"),
        (OjaUnnormalised(), "G6"),
        (ExinAscends(), "G6"),
        (TrackedStartsNotProjected(), "G4"),
    ],
)
def test_each_new_property_fails_for_a_planted_bug(port: ReferenceAdapter, claim: str) -> None:
    """(A port whose steps differ from the rule but which reports the steps it took, e.g. MCA-EXIN with a
    fixed step, still satisfies G6 with its own steps: the differential check mca_exin_track/basic
    catches that one.)"""
    (result,) = run_properties(port, max_examples=10, shrink=False, only=[_property(claim)])  # type: ignore[list-item]
    assert result.status == "fail", result
    assert result.falsifying_example


def test_property_mode_covers_every_proved_claim() -> None:
    """No proved claim is left 'not covered' on a port that implements every operation, and the new
    properties pass on the reference."""
    assert NOT_COVERED == {}
    proved = {c.id for c in REGISTRY.values() if c.label is Label.PROVED}
    covered = {c for p in PROPERTIES for c in p.claim.replace("G1-G3", "G1,G2,G3").split(",")}
    assert proved <= covered, proved - covered
    results = run_properties(
        ReferenceAdapter(),
        max_examples=3,
        shrink=False,
        only=[_property(c) for c in NEW_PROPERTIES],  # type: ignore[misc]
    )
    assert [(r.claim, r.status) for r in results] == [(c, "pass") for c in NEW_PROPERTIES]


# --------------------------------------------------------------------------------------------------
# Float32 ports: float32 bounds
# --------------------------------------------------------------------------------------------------


def test_rounding_precision_sets_the_default_dtype_of_the_bounds_and_restores_it() -> None:
    assert current_rounding_dtype() == "float64"
    b64 = accumulation_bound(10, 1.0)
    with rounding_precision("float32"):
        assert current_rounding_dtype() == "float32"
        assert gamma(10) == gamma(10, "float32")
        assert accumulation_bound(10, 1.0) == accumulation_bound(10, 1.0, "float32") > b64
        assert accumulation_bound(10, 1.0, "float64") == b64  # an explicit dtype wins
    assert current_rounding_dtype() == "float64"
    with pytest.raises(RuntimeError), rounding_precision("float32"):
        raise RuntimeError("inside")
    assert current_rounding_dtype() == "float64"
    with pytest.raises(ValueError, match="rounding_precision"), rounding_precision("float16"):
        pass


class _UnshiftedSoftmax(AcceleratedAdapter):
    """A port whose softmax skips SPEC §2's row shift: ``exp(−D/T_P)/Σ exp(−D/T_P)``. In float64 it is right
    until ``D/T_P > 745``; in float32 it is 0/0 once every ``D/T_P > 103``."""

    def soft_assignments(self, D: np.ndarray, T_P: float) -> np.ndarray:
        E = torch.exp(-self._t(D) / T_P)
        return self._h(E / E.sum(dim=1, keepdim=True))


def test_the_float32_port_passes_property_mode_against_float32_bounds() -> None:
    port = AcceleratedAdapter(torch.float32)
    assert port_dtype(port) == "float32"
    props = [p for p in PROPERTIES if p.claim != "BP"]  # BP: minutes of central differences (the slow test)
    results = run_properties(port, max_examples=3, shrink=False, only=props)
    assert {r.claim: r.status for r in results} == {p.claim: "pass" for p in props}, results
    # held to float64 bounds the same port fails: the float32 bounds are what it passes by
    port.tolerances = TolerancePolicy()
    (d1,) = run_properties(port, max_examples=3, shrink=False, only=[_property("D1")])  # type: ignore[list-item]
    assert d1.status == "fail"
    assert "> bound" in d1.message


def test_a_float32_only_bug_fails_in_float32_and_passes_in_float64() -> None:
    prob = float32_underflow_band()
    D = ddcl.squared_distances(prob.Y, prob.P)
    assert np.all(np.exp(np.float32(-D / prob.T_P)) == 0.0)  # every weight underflows in float32
    assert np.all(np.exp(-D / prob.T_P) > 0.0)  # none in float64
    (f32,) = run_properties(_UnshiftedSoftmax(torch.float32), max_examples=3, only=[_property("D2")])  # type: ignore[list-item]
    assert f32.status == "fail"
    assert "NaN" in f32.message
    assert "explicit example" in f32.falsifying_example
    (f64,) = run_properties(_UnshiftedSoftmax(torch.float64), max_examples=3, only=[_property("D2")])  # type: ignore[list-item]
    assert f64.status == "pass", f64.message


def test_the_reference_implementations_of_the_new_operations_are_the_projects() -> None:
    """The records' references are the project's functions (or thin readers of them): the golden vectors
    are the reference's outputs, not the kit's rewrite."""
    A = np.diag([3.0, 1.0, -1.0])
    starts = np.eye(3)[[0, 1, 2, 0]] + 0.1
    Q, births = reference_tracked_growth(A, 2.0, starts, 300, trackers.certified_step(A))
    assert Q.shape == (3, 1)
    assert abs(births[0] - 3.0) < 1e-6
    assert dcl.dcl_prototypes(np.eye(2), np.ones((2, 1)), np.zeros(1)).shape == (2, 1)
