"""Property mode: the hypothesis property tests of the ``proved`` claims, run on a port's operations.

The invariants of :mod:`reference.invariants` take their operations as arguments; here they are fed
the port's: the DDCL claims (D1–D6) through a :class:`reference.invariants.ddcl.DDCLOps` table whose
entries are the adapter's operations (its primitives, Hessians, prototype step and DCL; the
reference's where the kit defines no operation, e.g. ``Σ_q``, and the property says so), G1–G3
through the port's ``static_growth`` (its result read as a :class:`reference.incrt.capture.CaptureResult`),
G4 through two runs of its ``tracked_growth`` from different starts and the exact capture, G5's
operator half through its ``growth_statistics`` on the layer before and after removing a head, G6
through its ``oja_track`` and ``mca_exin_track`` (read as :class:`reference.incrt.trackers.TrackerResult`),
and the layer's backward (steps BP.*) as its gradients against central differences of its own loss.
Every proved claim has a property (:data:`NOT_COVERED` is empty); one whose operations a port does not
implement is reported as not covered, naming them.

The invariants' bounds are a-priori rounding bounds in the precision the port declares (its
``tolerances``' dtype): each property runs under :func:`reference.tolerances.rounding_precision`, so a
float32 port is held to float32 bounds (docs/tolerances.md). Each property runs under an explicit
hypothesis seed, and a failure carries a repro (:func:`reproduce_property`). Property mode complements
the differential checks (:mod:`ddcl_incrt.conformance.runner`); it does not replace them.
Requires ``hypothesis`` (the ``dev`` extra).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import example as explicit_example
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import FlakyFailure, HypothesisException

from ddcl_incrt.conformance.adapter import Adapter
from ddcl_incrt.conformance.cases import SMALL_LAYER, TRACKED_STEPS
from ddcl_incrt.conformance.compare import PropertyFailure, PropertyResult, PropertyStatus
from ddcl_incrt.conformance.operations import check_adapter, port_code
from ddcl_incrt.strategies.ddcl import DDCLProblem, dcl_problems, moderate_ddcl_problems, row_stochastic
from ddcl_incrt.strategies.incrt import PlantedOperator, planted_operators
from reference._arrays import check_count
from reference.claims.records import Label
from reference.claims.registry import REGISTRY
from reference.gradcheck import central_difference, gradient_bound
from reference.incrt.capture import CaptureResult, greedy_capture, numerical_rank
from reference.incrt.operators import deflate, eigenvalues_desc, eigh_error_bound, frobenius
from reference.incrt.trackers import (
    TrackerKind,
    TrackerResult,
    certified_step,
    mca_exin_step_limit,
    oja_step_limit,
    tracker_tan_bound,
)
from reference.invariants.ddcl import (
    REFERENCE_OPS,
    DDCLOps,
    d1_decomposition,
    d2_free_energy_gradients,
    d3_lyapunov,
    d4_anti_collapse,
    d5_prototype_pruning,
    d6_dual_vanilla,
)
from reference.invariants.incrt import check_g1, check_g2, check_g3, check_g4, check_g6
from reference.invariants.result import InvariantResult
from reference.model import init_params
from reference.surgery import add_head, flatten, remove_head, unflatten
from reference.tolerances import rounding_precision


def ddcl_ops(adapter: object) -> DDCLOps:
    """The reference's :class:`DDCLOps` with every entry the adapter implements replaced by its own."""
    caps: frozenset[str] = getattr(adapter, "capabilities", frozenset())
    return replace(REFERENCE_OPS, **{f: getattr(adapter, f) for f in DDCLOps.__dataclass_fields__ if f in caps})


def _fail_unless_hold(results: tuple[InvariantResult, ...]) -> None:
    bad = [r for r in results if not r.holds]
    if bad:
        raise AssertionError("; ".join(f"{r.claim_id} {r.check}: {r.value!r} > bound {r.bound!r}" for r in bad))


def _problem_with_Q(draw: st.DrawFn) -> tuple[DDCLProblem, np.ndarray]:
    prob = draw(moderate_ddcl_problems())
    return prob, draw(row_stochastic(prob.Y.shape[0], prob.K))


def _capture(A: np.ndarray, theta: float, Q: np.ndarray, births: np.ndarray) -> CaptureResult:
    """The port's greedy capture read as a :class:`CaptureResult` (ranks and the final statistic measured
    here, ``eigh``'s a-priori error as each round's method error)."""
    d, m = Q.shape
    ranks = tuple(numerical_rank(np.ascontiguousarray(Q[:, :k])) if k else 0 for k in range(m + 1))
    Pi = np.eye(d) - Q @ Q.T
    R = Pi @ A @ Pi
    final = float(np.linalg.eigvalsh(0.5 * (R + R.T))[-1])
    E = eigh_error_bound(A)
    # the stop measured here by eigh: its error certifies where the port's directions left λ_max
    return CaptureResult(Q, tuple(float(b) for b in births), final, ranks, (E,) * m, (), "port", eigh_error_bound(R))


@dataclass(frozen=True)
class Property:
    """One property: the claim it tests, what it says, the port's operations it needs, the reference's it
    uses, hypothesis's strategy and the check of one example; ``examples`` are tried first, always."""

    claim: str
    name: str
    needs: tuple[str, ...]
    reference_ops: tuple[str, ...]
    strategy: st.SearchStrategy[Any]
    check: Callable[[Any, Any], None]
    examples: tuple[Any, ...] = ()


def float32_underflow_band() -> DDCLProblem:
    """A problem whose every exponent ``D_tj/T_P`` lies in ``(104, 745)``: ``exp(−D/T_P)`` is 0 in float32
    (below its smallest subnormal, ``e^-103.3``) and a normal float64 number, so a float32 port that skips
    SPEC §2's row shift gets 0/0 here while the same code passes in float64; the stable forms are finite
    in both. The moderate problems of the strategies never reach it (``D/T_P`` of order 1–100), so D2,
    D3 and D5 try it first, in every precision."""
    rng = np.random.default_rng([14, 0])
    P = rng.standard_normal((3, 3))
    Y = P.mean(axis=1)[None, :] + 6.0 + 0.3 * rng.standard_normal((6, 3))
    prob = DDCLProblem(Y=Y, P=P, T_P=0.5)
    exponents = ((Y[:, :, None] - P[None, :, :]) ** 2).sum(axis=1) / prob.T_P
    if not (float(exponents.min()) > 104.0 and float(exponents.max()) < 745.0):  # pragma: no cover - fixed data
        raise RuntimeError(f"float32_underflow_band: exponents in [{exponents.min()}, {exponents.max()}]")
    return prob


def _d1(a: Any, ex: tuple[DDCLProblem, np.ndarray]) -> None:
    prob, Q = ex
    _fail_unless_hold(d1_decomposition(Y=prob.Y, P=prob.P, Q=Q, ops=ddcl_ops(a)))


def _d2(a: Any, prob: DDCLProblem) -> None:
    _fail_unless_hold(d2_free_energy_gradients(Y=prob.Y, P=prob.P, T_P=prob.T_P, ops=ddcl_ops(a)))


def _d5(a: Any, ex: tuple[DDCLProblem, int]) -> None:
    prob, j = ex
    _fail_unless_hold(d5_prototype_pruning(Y=prob.Y, P=prob.P, T_P=prob.T_P, j=j % prob.K, ops=ddcl_ops(a)))


def _d3(a: Any, ex: tuple[DDCLProblem, float]) -> None:
    prob, eta = ex
    _fail_unless_hold(d3_lyapunov(Y=prob.Y, P=prob.P, T_P=prob.T_P, eta=eta, ops=ddcl_ops(a)))


def _d4(a: Any, prob: DDCLProblem) -> None:
    _fail_unless_hold(d4_anti_collapse(Y=prob.Y, K=prob.K, T_P=prob.T_P, ops=ddcl_ops(a)))


def _d6(a: Any, ex: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]) -> None:
    Y_b, W, b, G, eta = ex
    _fail_unless_hold(d6_dual_vanilla(Y_b=Y_b, W=W, b=b, grad_P=G, eta=eta, ops=ddcl_ops(a)))


def _tracked_capture(
    op: PlantedOperator, starts: np.ndarray, eta: float, Q: np.ndarray, births: np.ndarray
) -> CaptureResult:
    """The port's tracked capture read as a :class:`CaptureResult`: each round's certified error is the
    reference's (``(2Δ + 2‖Â_k‖_F)τ_k``, :func:`reference.incrt.capture.greedy_capture_tracked`) for the
    round the port ran: ``Â_k`` deflated by the port's first ``k`` directions, its start ``starts[k]``
    projected off them, :data:`TRACKED_STEPS` steps of ``eta`` (a-priori: it needs nothing else of the port)."""
    m = Q.shape[1]
    errs: list[float] = []
    for k in range(m):
        Qk = np.ascontiguousarray(Q[:, :k])
        R = deflate(op.A, Qk)
        w0 = starts[k] - Qk @ (Qk.T @ starts[k])
        run = TrackerResult(TrackerKind.OJA, w0, np.array(Q[:, k]), eta, np.full(TRACKED_STEPS, eta), float(births[k]))
        lam = eigenvalues_desc(R)
        errs.append((2.0 * float(lam[0] - lam[-1]) + 2.0 * frobenius(R)) * tracker_tan_bound(R, run))
    ranks = tuple(numerical_rank(np.ascontiguousarray(Q[:, :k])) if k else 0 for k in range(m + 1))
    R_stop = deflate(op.A, Q)
    final = float(eigenvalues_desc(R_stop)[0])  # the stop measured here by eigh, with eigh's error
    return CaptureResult(
        Q, tuple(float(b) for b in births), final, ranks, tuple(errs), (), "port oja", eigh_error_bound(R_stop)
    )


def _g4(a: Any, ex: tuple[PlantedOperator, int, int]) -> None:
    """G4: two tracked runs of the port from different starts and the exact capture agree on the count,
    the births and (each eigenvalue simple) the directions up to sign, within their certified errors."""
    op, seed_a, seed_b = ex
    eta = certified_step(op.A)
    runs = [greedy_capture(op.A, op.theta)]
    for seed in (seed_a, seed_b):
        starts = np.random.default_rng(seed).standard_normal((op.d + 1, op.d))
        Q, births = a.tracked_growth(op.A, op.theta, starts, TRACKED_STEPS, eta)
        Q = np.asarray(Q, dtype=np.float64).reshape(op.d, -1)
        births = np.asarray(births, dtype=np.float64).reshape(-1)
        if births.shape[0] != Q.shape[1]:
            raise AssertionError(f"tracked_growth: {Q.shape[1]} directions but {births.shape[0]} births")
        runs.append(_tracked_capture(op, starts, eta, Q, births))
    _fail_unless_hold(check_g4(A=op.A, theta=op.theta, captures=runs))


def _g6(a: Any, ex: tuple[PlantedOperator, float, int, int]) -> None:
    """G6: after ``steps`` steps each tracker's direction and eigenvalue are within the derived bounds (the
    run read as a :class:`TrackerResult`: Oja's steps are all ``eta``, MCA-EXIN's the ones the port reports)."""
    op, frac, seed, steps = ex
    w0 = np.random.default_rng(seed).standard_normal(op.d)
    eta = frac * oja_step_limit(op.A)
    w, est = a.oja_track(op.A, w0, eta, steps)
    oja = TrackerResult(TrackerKind.OJA, w0, np.asarray(w, dtype=np.float64), eta, np.full(steps, eta), float(est))
    eta = frac * mca_exin_step_limit(op.A, w0)
    w, alphas, est = a.mca_exin_track(op.A, w0, eta, steps)
    alphas = np.asarray(alphas, dtype=np.float64).reshape(-1)
    if alphas.shape != (steps,):
        raise AssertionError(f"mca_exin_track: {alphas.shape[0]} effective steps for n_steps = {steps}")
    exin = TrackerResult(TrackerKind.MCA_EXIN, w0, np.asarray(w, dtype=np.float64), eta, alphas, float(est))
    _fail_unless_hold(check_g6(A=op.A, tracker=oja) + check_g6(A=op.A, tracker=exin))


def _g123(a: Any, op: PlantedOperator) -> None:
    Q, births = a.static_growth(op.A, op.theta)
    Q, births = np.asarray(Q, dtype=np.float64).reshape(op.d, -1), np.asarray(births, dtype=np.float64).reshape(-1)
    if births.shape[0] != Q.shape[1]:
        raise AssertionError(f"static_growth: {Q.shape[1]} directions but {births.shape[0]} births")
    cap = _capture(op.A, op.theta, Q, births)
    res = check_g1(Q_cap=Q, ranks=cap.ranks, theta=op.theta)
    res += check_g2(A=op.A, theta=op.theta, capture=cap)
    res += check_g3(A=op.A, theta=op.theta, capture=cap, rng=np.random.default_rng(0), n_random=8)
    _fail_unless_hold(res)


def _layer_case(seed: int, n_heads: int, m: int) -> tuple[Any, Any, np.ndarray, np.ndarray, np.ndarray]:
    cfg = SMALL_LAYER
    rng = np.random.default_rng(seed)
    params = init_params(cfg, rng=rng)
    for _ in range(n_heads - 1):
        params, _ = add_head(params, cfg, rng=rng)
    x = rng.standard_normal((2, cfg.seq_len, cfg.d_in))
    labels = rng.integers(0, cfg.n_classes, size=2).astype(np.int64)
    Q_cap = np.linalg.qr(rng.standard_normal((cfg.d, cfg.d)))[0][:, :m]
    return cfg, params, x, labels, np.ascontiguousarray(Q_cap)


def _g5(a: Any, ex: tuple[int, int, int]) -> None:
    """G5's operator half: removing head ``h`` moves ``λ_max(A_res)`` by at most ``G_h`` (Weyl), with the
    port's statistics before and after the removal."""
    seed, m, which = ex
    _, params, x, _, Q_cap = _layer_case(seed, 3, m)
    before = a.growth_statistics(params, x, Q_cap)
    ids = sorted(params.heads)
    h = ids[which % len(ids)]
    after = a.growth_statistics(remove_head(params, h), x, Q_cap)
    G_h = float(np.asarray(before["G_h"])[ids.index(h)])
    lam0 = float(np.asarray(before["spectrum"])[0])
    lam1 = float(np.asarray(after["spectrum"])[0])
    slack = eigh_error_bound(np.asarray(before["A_res"])) + eigh_error_bound(np.asarray(after["A_res"]))
    if abs(lam0 - lam1) > G_h + slack:
        raise AssertionError(f"G5: |Δλ_max| = {abs(lam0 - lam1)!r} > G_h = {G_h!r} (+ eigh error {slack:.2e})")


def _backward(a: Any, ex: tuple[int, int]) -> None:
    """BP: the port's ``∂L/∂θ`` equals central differences of the port's own ``L`` (GRADIENT row)."""
    seed, n_heads = ex
    cfg, params, x, labels, _ = _layer_case(seed, n_heads, 0)
    grads = a.layer_gradients(cfg, params, x, labels)
    flat = dict(flatten(params))
    # one parameter of each kind of path through the layer: the prototypes (DDCL block), the newest
    # head's query weights and log-temperature (attention); entry-wise central differences cost two
    # forward passes per entry, so the rest are left to the differential checks
    for name in ("P", f"heads.{max(params.heads)}.W_Q", f"heads.{max(params.heads)}.s"):

        def L(v: np.ndarray, name: str = name) -> float:
            return float(a.layer_forward(cfg, unflatten({**flat, name: v}, like=params), x, labels)["L"])

        numeric = central_difference(L, np.array(flat[name], dtype=np.float64))
        analytic = np.asarray(grads[name], dtype=np.float64)
        value = abs(L(np.array(flat[name], dtype=np.float64)))
        if analytic.shape != numeric.shape or np.abs(analytic - numeric).max() > gradient_bound(
            numeric, value_scale=value
        ):
            raise AssertionError(f"∂L/∂{name} differs from central differences of layer_forward's L")


_SIGMA_Q = ("assignment_covariance",)
PROPERTIES: tuple[Property, ...] = (
    Property(
        "D1",
        "L_q = L_OLS + V, V ≥ 0 for any row-stochastic Q",
        ("quantisation_loss", "ols_loss", "prototype_variance"),
        (),
        st.composite(_problem_with_Q)(),
        _d1,
    ),
    Property(
        "D2",
        "L_q = F + T_P·H̄ and the gradients of F, L_q, V",
        (
            "squared_distances",
            "soft_assignments",
            "quantisation_loss",
            "free_energy",
            "mean_entropy",
            "grad_free_energy",
            "grad_quantisation_fixed_Q",
            "grad_variance_fixed_Q",
        ),
        _SIGMA_Q,
        moderate_ddcl_problems(),
        _d2,
        (float32_underflow_band(),),
    ),
    Property(
        "D5",
        "removing a prototype changes F within the D5 bound",
        ("squared_distances", "soft_assignments", "free_energy"),
        ("remove_prototype",),
        st.tuples(moderate_ddcl_problems(min_K=2), st.integers(0, 64)),
        _d5,
        ((float32_underflow_band(), 0),),
    ),
    Property(
        "D3",
        "∇²F ⪯ (2/n)diag(n_j)⊗I; a step P − η∇F descends by η(1−η)‖∇F‖², a convex combination for η ≤ ½",
        (
            "squared_distances",
            "soft_assignments",
            "free_energy",
            "grad_free_energy",
            "hessian_free_energy",
            "prototype_step",
        ),
        _SIGMA_Q,
        st.tuples(moderate_ddcl_problems(), st.floats(0.01, 0.99)),
        _d3,
        ((float32_underflow_band(), 0.5),),
    ),
    Property(
        "D4",
        "the collapsed prototypes are stationary; λ_min of ∇²F, ∇²L_q there is (2/K)(1 − T_c/T_P), (2/K)(1 − 2T_c/T_P)",
        (
            "squared_distances",
            "soft_assignments",
            "grad_free_energy",
            "grad_quantisation_full",
            "hessian_free_energy",
            "hessian_quantisation",
        ),
        ("collapse_critical_temperatures",),
        moderate_ddcl_problems(),
        _d4,
    ),
    Property(
        "D6",
        "a DCL step moves P by −η(Y_bᵀY_b + 11ᵀ)∇_P L (PSD, in span(Y_b) + span(1)), ‖∇_W‖² + ‖∇_b‖² = tr(GᵀMG)",
        ("dcl_prototypes", "dcl_step"),
        ("dcl_preconditioner",),
        dcl_problems(),
        _d6,
    ),
    Property(
        "G1-G3",
        "greedy capture: Q_cap orthonormal, births at the eigenvalues in order, count m*",
        ("static_growth",),
        (),
        planted_operators(min_d=1, max_d=6),
        _g123,
    ),
    Property(
        "G5",
        "pruning head h moves λ_max(A_res) by at most G_h",
        ("growth_statistics",),
        (),
        st.tuples(st.integers(0, 2**16), st.integers(0, 3), st.integers(0, 2)),
        _g5,
    ),
    Property(
        "G4",
        "tracked capture from two starts and the exact capture: same count, births, directions up to sign",
        ("tracked_growth",),
        ("greedy_capture",),
        st.tuples(planted_operators(simple=True, min_m_star=1), st.integers(0, 999), st.integers(0, 999)),
        _g4,
    ),
    Property(
        "G6",
        "Oja and MCA-EXIN trackers within the derived direction and eigenvalue bounds after t steps",
        ("oja_track", "mca_exin_track"),
        (),
        st.tuples(
            planted_operators(min_d=2, simple=True), st.floats(0.05, 0.95), st.integers(0, 999), st.integers(0, 400)
        ),
        _g6,
    ),
    Property(
        "BP",
        "layer gradients equal central differences of the layer's loss",
        ("layer_forward", "layer_gradients"),
        (),
        st.tuples(st.integers(0, 2**16), st.integers(1, 3)),
        _backward,
    ),
)

# proved claims property mode does not cover, and why (none today: every proved claim has a property)
NOT_COVERED: dict[str, str] = {}


def _hypothesis_test(port: Any, prop: Property, max_examples: int, shrink: bool, seed: int) -> Callable[[], None]:
    # no explain phase: its notes name lines of the kit's own checks, which is not news to a port author
    phases = (Phase.explicit, Phase.reuse, Phase.generate) + ((Phase.shrink,) if shrink else ())

    def test(example: Any) -> None:
        with port_code():  # a port that exits fails the property (a PortExited), never ends the run
            prop.check(port, example)

    wrapped = given(prop.strategy)(test)
    for ex in reversed(prop.examples):  # tried first (Phase.explicit), in order
        wrapped = explicit_example(ex)(wrapped)
    configured = settings(
        phases=phases,
        max_examples=max_examples,
        deadline=None,
        database=None,  # nothing remembered between runs: the seed alone decides the examples
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )(wrapped)
    return cast(Callable[[], None], hypothesis_seed(seed)(configured))


def _leaves(exc: BaseException) -> list[BaseException]:
    """The failures inside ``exc``: itself, or every leaf of an exception group (hypothesis raises an
    ``ExceptionGroup`` when it finds several distinct failures, a ``FlakyFailure`` when a failure did not
    repeat), depth first."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def failure_parts(exc: BaseException) -> tuple[PropertyFailure, ...]:
    """Each distinct failure inside ``exc`` (:func:`_leaves`) with its own exception text and hypothesis's
    falsifying example for it."""
    parts: list[PropertyFailure] = []
    for leaf in _leaves(exc):
        notes = "\n".join(str(n) for n in getattr(leaf, "__notes__", ()))
        text = f"{type(leaf).__name__}: {leaf}".rstrip(": ").strip()
        parts.append(PropertyFailure(text, notes.strip() or "(hypothesis gave no example)"))
    return tuple(parts)


def failure_text(exc: BaseException) -> tuple[str, str]:
    """``(message, falsifying_example)`` of a falsified property: each distinct failure's exception and
    hypothesis's notes on it (its falsifying example), never a bare exception group."""
    leaves = _leaves(exc)
    messages: list[str] = []
    examples: list[str] = []
    for i, leaf in enumerate(leaves, 1):
        head = f"failure {i} of {len(leaves)}: " if len(leaves) > 1 else ""
        messages.append(f"{head}{type(leaf).__name__}: {leaf}".rstrip(": ").strip())
        notes = "\n".join(str(n) for n in getattr(leaf, "__notes__", ()))
        examples.append(f"{head}{notes}".strip() if notes else f"{head}(hypothesis gave no example)")
    if isinstance(exc, FlakyFailure):
        messages.insert(0, "flaky: the failure did not repeat on the same example (is the port deterministic?)")
    elif len(leaves) > 1:
        messages.insert(0, f"hypothesis found {len(leaves)} distinct failures")
    return "; ".join(messages), "\n".join(examples)


def port_dtype(port: object) -> str:
    """The precision a port declares (its ``tolerances``' dtype: ``float64`` or ``float32``), float64 by
    default; property mode checks its operations against that precision's a-priori bounds."""
    policy = getattr(port, "tolerances", None)
    return str(getattr(policy, "dtype", "float64"))


def select_properties(claims: Sequence[str], name: str = "--only-property") -> list[Property]:
    """The properties of the named claims (``D2``, ``G1-G3``, ``BP``: the report's claim column), in
    :data:`PROPERTIES` order; an unknown name is a ``ValueError`` naming the argument ``name`` and listing
    the known ones."""
    known = [p.claim for p in PROPERTIES]
    unknown = [c for c in claims if c not in known]
    if unknown:
        raise ValueError(f"{name}: no property {unknown}; known: {known}")
    return [p for p in PROPERTIES if p.claim in claims]


def property_repro(claim: str, spec: str | None, examples: int, seed: int) -> str:
    """The copy-paste reproduction of one property's run: the Python call, and the same as a command line."""
    adapter = spec or "<package.module:factory of your adapter>"
    return (
        "from ddcl_incrt.conformance.properties import reproduce_property\n"
        f"reproduce_property(claim={claim!r}, adapter={adapter!r}, examples={examples}, seed={seed})\n"
        f"# or: ddcl-incrt conformance --adapter {adapter} --properties --only-property {claim} "
        f"--property-examples {examples} --property-seed {seed}"
    )


def _failed(prop: Property, exc: BaseException, seed: int, examples: int, repro: str) -> PropertyResult:
    message, example = failure_text(exc)
    return PropertyResult(
        prop.claim,
        prop.name,
        "fail",
        message,
        prop.reference_ops,
        example,
        failure_parts(exc),
        seed=seed,
        examples=examples,
        repro=repro,
    )


def run_properties(
    adapter: Adapter,
    *,
    max_examples: int = 10,
    shrink: bool = True,
    only: Sequence[Property] | None = None,
    seed: int = 0,
    spec: str | None = None,
) -> list[PropertyResult]:
    """Every property on ``adapter``; a property needing an operation it lacks is not covered.

    ``shrink=False`` reports the first falsifying example instead of hypothesis's minimal one (faster);
    ``only`` runs those properties alone (and lists no uncovered claims); ``seed`` is hypothesis's seed
    for every property (the same seed, examples and port give the same examples, whatever else runs);
    ``spec`` (``package.module:factory``) is named in each failure's repro."""
    check_count("max_examples", max_examples, 1)  # hypothesis needs one example; a seed is a natural number
    check_count("seed", seed, 0)
    port = check_adapter(adapter)
    dtype = port_dtype(port)
    out: list[PropertyResult] = []
    for prop in PROPERTIES if only is None else only:
        missing = [op for op in prop.needs if op not in port.capabilities]
        if missing:
            out.append(PropertyResult(prop.claim, prop.name, "not covered", f"the port lacks {missing}"))
            continue
        repro = property_repro(prop.claim, spec, max_examples, seed)
        try:
            with rounding_precision(dtype):  # the invariants' a-priori bounds in the port's precision
                _hypothesis_test(port, prop, max_examples, shrink, seed)()
        except HypothesisException as exc:
            if not isinstance(exc, FlakyFailure):
                raise  # a fault of the kit's own test, not of the port
            out.append(_failed(prop, exc, seed, max_examples, repro))
        except Exception as exc:  # the falsified property (an ExceptionGroup for several distinct failures)
            out.append(_failed(prop, exc, seed, max_examples, repro))
        else:
            out.append(
                PropertyResult(prop.claim, prop.name, "pass", "", prop.reference_ops, seed=seed, examples=max_examples)
            )
    if only is not None:
        return out
    proved = [c.id for c in REGISTRY.values() if c.label is Label.PROVED]
    for cid in proved:
        if cid in NOT_COVERED:
            out.append(PropertyResult(cid, "—", "not covered", NOT_COVERED[cid]))
    return out


def reproduce_property(
    *, claim: str, adapter: str | Adapter, examples: int = 10, seed: int = 0, shrink: bool = True
) -> PropertyResult:
    """Run one property (its claim, e.g. ``D2``) on ``adapter`` (a port or its ``package.module:factory``)
    with ``examples`` examples and hypothesis's ``seed``; raise ``AssertionError`` with every distinct
    failure and its falsifying example if it does not pass."""
    from ddcl_incrt.conformance.operations import load_adapter

    if not isinstance(claim, str):
        raise TypeError(f"claim: expected a claim id such as 'D2', got {type(claim).__name__} {claim!r}")
    only = select_properties([claim], "claim")
    check_count("examples", examples, 1)
    check_count("seed", seed, 0)
    port = load_adapter(adapter) if isinstance(adapter, str) else adapter
    spec = adapter if isinstance(adapter, str) else None
    (result,) = run_properties(port, max_examples=examples, shrink=shrink, only=only, seed=seed, spec=spec)
    if result.status != "pass":
        blocks = [f"{f.message}\n{f.falsifying_example}" for f in result.failures] or [result.message]
        raise AssertionError(f"property {claim}: {result.status}: " + "\n".join(blocks))
    return result


__all__ = [
    "NOT_COVERED",
    "PROPERTIES",
    "Property",
    "PropertyResult",
    "PropertyStatus",
    "ddcl_ops",
    "failure_parts",
    "failure_text",
    "float32_underflow_band",
    "port_dtype",
    "property_repro",
    "reproduce_property",
    "run_properties",
    "select_properties",
]
