"""The optimisers (``reference.optim``) against an independent scalar transcription of Kingma & Ba.

``_adam_scalar`` is written from the paper's Algorithm 1 in plain Python floats, one coordinate at a
time; ``reference.optim.Adam`` vectorises it with per-group rates and per-parameter step counts.
Several steps are compared, since the first step alone cannot tell β₁ from β₂ in the moment updates
(``m_0 = v_0 = 0``) and hides bias-correction errors that only grow later.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from reference.optim import SGD, Adam, AdamState, LearningRates, SGDState
from reference.tolerances import CheckKind, tolerance

VALUE_TOL = tolerance("float64", CheckKind.VALUE)
RATES = LearningRates(rest=0.01, prototypes=0.1, temperatures=0.003)


def _adam_scalar(
    p: float, grads: list[float], lr: float, beta1: float, beta2: float, eps: float
) -> tuple[float, float, float]:
    """Algorithm 1 of Kingma & Ba (2015) for one coordinate; returns ``(p, m, v)`` after the steps."""
    m = v = 0.0
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1.0 - beta1) * g
        v = beta2 * v + (1.0 - beta2) * g * g
        m_hat = m / (1.0 - beta1**t)
        v_hat = v / (1.0 - beta2**t)
        p = p - lr * m_hat / (math.sqrt(v_hat) + eps)
    return p, m, v


def _grad_sequence(rng: np.random.Generator, steps: int) -> list[dict[str, np.ndarray]]:
    # Gradients of very different sizes (down to 1e-5, where ε matters) and signs.
    return [
        {
            "P": rng.normal(size=(2, 3)) * np.array([[1.0, 1e-3, 1e-5]]),
            "W_in": rng.normal(size=(3, 2)),
        }
        for _ in range(steps)
    ]


@pytest.mark.parametrize(("beta1", "beta2", "eps"), [(0.9, 0.999, 1e-8), (0.5, 0.9, 1e-3)])
def test_adam_matches_the_paper_over_several_steps(beta1: float, beta2: float, eps: float) -> None:
    # Kills mutants adam-m-decay-beta2 (β₂ in the first-moment update: equal at step 1 only),
    # adam-v-bias-off-by-one (v̂ = v/(1 − β₂^(t+1))) and adam-eps-inside-sqrt (m̂/√(v̂ + ε)).
    rng = np.random.default_rng(5)
    params = {"P": rng.normal(size=(2, 3)), "W_in": rng.normal(size=(3, 2))}
    grads = _grad_sequence(rng, 4)
    opt = Adam(RATES, beta1=beta1, beta2=beta2, eps=eps)
    state = opt.init_state()
    current = dict(params)
    for g in grads:
        current, state = opt.step(state, current, g)
    assert isinstance(state, AdamState)
    for name, p0 in params.items():
        lr = RATES.for_name(name)
        for idx in np.ndindex(p0.shape):
            p, m, v = _adam_scalar(float(p0[idx]), [float(g[name][idx]) for g in grads], lr, beta1, beta2, eps)
            assert current[name][idx] == pytest.approx(p, rel=VALUE_TOL.rtol, abs=VALUE_TOL.atol), (name, idx)
            assert state.moments[name].m[idx] == pytest.approx(m, rel=VALUE_TOL.rtol, abs=1e-300)
            assert state.moments[name].v[idx] == pytest.approx(v, rel=VALUE_TOL.rtol, abs=1e-300)
        assert state.moments[name].t == len(grads)


def test_pruning_a_prototype_removes_that_column_of_both_moments() -> None:
    # Kills mutant adam-prune-v-wrong-column: m and v must both lose column j (not the last one).
    rng = np.random.default_rng(6)
    params = {"P": rng.normal(size=(2, 4)), "W_in": rng.normal(size=(3, 2))}
    opt = Adam(RATES)
    state = opt.init_state()
    for _ in range(2):
        params, state = opt.step(state, params, {"P": rng.normal(size=(2, 4)), "W_in": rng.normal(size=(3, 2))})
    j = 1
    resized = state.without_column("P", j)
    keep = [0, 2, 3]
    np.testing.assert_array_equal(resized.moments["P"].m, state.moments["P"].m[:, keep])
    np.testing.assert_array_equal(resized.moments["P"].v, state.moments["P"].v[:, keep])
    np.testing.assert_array_equal(resized.moments["W_in"].v, state.moments["W_in"].v)
    assert resized.moments["P"].t == state.moments["P"].t


@pytest.mark.parametrize("name", ["beta1", "beta2"])
def test_adam_betas_exclude_one_and_admit_zero(name: str) -> None:
    # Kills mutant adam-beta-boundary: β ∈ [0, 1); β₁ = 1 would divide by 1 − β₁ᵗ = 0.
    with pytest.raises(ValueError, match=rf"Adam\.{name}"):
        Adam(RATES, **{name: 1.0})
    Adam(RATES, **{name: 0.0})


# ---- issue 10 (hostile inputs): optimisers and their state ----------------------------------------


def test_a_step_that_overflows_is_refused_naming_the_parameter() -> None:
    """Finite parameters and gradients can still overflow to ±inf; the step says so instead of going on."""
    from reference.optim import SGD, LearningRates

    params = {"W_in": np.array([[1.0, 2.0]])}
    grads = {"W_in": np.array([[1e308, 0.0]])}
    with pytest.raises(FloatingPointError, match="SGD: parameter 'W_in' became non-finite"):
        SGD(lr=LearningRates.uniform(10.0)).step(SGD(lr=LearningRates.uniform(10.0)).init_state(), params, grads)
    ok, _ = SGD(lr=LearningRates.uniform(1e-10)).step(SGD(lr=LearningRates.uniform(1e-10)).init_state(), params, grads)
    assert np.all(np.isfinite(ok["W_in"]))


def test_adam_overflowing_moments_are_refused() -> None:
    from reference.optim import Adam, LearningRates

    adam = Adam(lr=LearningRates.uniform(1e-3))
    params = {"W_in": np.array([[1.0]])}
    with pytest.raises(FloatingPointError, match="Adam: the moments of 'W_in' overflowed"):
        adam.step(adam.init_state(), params, {"W_in": np.array([[1e200]])})  # g² overflows in v


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"t": 1.5}, TypeError, r"AdamMoments\.t|parameter 't'"),  # ours, or the run-time type check's
        ({"t": -1}, ValueError, "AdamMoments.t"),
        ({"v": np.array([-1e-3])}, ValueError, "AdamMoments.v: second moments must be >= 0"),
        ({"m": np.array([np.nan])}, ValueError, "AdamMoments.m"),
    ],
)
def test_adam_moments_refuse_ill_formed_state(kwargs: dict[str, object], error: type, match: str) -> None:
    from reference.optim import AdamMoments

    args: dict[str, object] = {"m": np.zeros(1), "v": np.zeros(1), "t": 1, **kwargs}
    with pytest.raises((error, TypeError), match=match):
        AdamMoments(**args)  # type: ignore[arg-type]


# ---- one state interface: callers never ask which optimiser they hold ---------------------------------


def test_both_states_answer_the_same_questions() -> None:
    """kind, moments, counts / count_error and named_values, for SGD (no moments, one run-wide count)
    and Adam (moments and a count per parameter)."""
    rng = np.random.default_rng(7)
    params = {"P": rng.normal(size=(2, 3)), "W_in": rng.normal(size=(3, 2))}
    grads = {k: rng.normal(size=v.shape) for k, v in params.items()}
    sgd, adam = SGD(RATES), Adam(RATES)
    s, a = sgd.init_state(), adam.init_state()
    for _ in range(2):
        _, s = sgd.step(s, params, grads)
        _, a = adam.step(a, params, grads)
    assert (s.kind, a.kind) == ("sgd", "adam")
    assert dict(s.moments) == {}
    assert set(a.moments) == {"P", "W_in"}
    assert s.counts() == {"steps": 2}
    assert a.counts() == {"t": {"P": 2, "W_in": 2}}
    assert s.count_error(2) is None
    assert a.count_error(2) is None
    assert a.count_error(5) is None
    assert s.count_error(3) == ("steps", "expected the step 3, got 2")
    assert a.count_error(1) == ("t.P", "a step count lies in [0, 1], got 2")
    assert s.named_values() == {"steps": 2}
    values = a.named_values()
    assert list(values) == ["P.m", "P.v", "P.t", "W_in.m", "W_in.v", "W_in.t"]
    np.testing.assert_array_equal(values["P.v"], a.moments["P"].v)
    assert values["W_in.t"] == 2
    assert s.without({"P"}) is s
    assert s.without_column("P", 0) is s


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_an_optimiser_refuses_the_other_optimisers_state(optimizer: str) -> None:
    params = {"W_in": np.ones((3, 2))}
    opt, other = (SGD(RATES), AdamState()) if optimizer == "sgd" else (Adam(RATES), SGDState())
    want = "SGDState" if optimizer == "sgd" else "AdamState"
    with pytest.raises(TypeError, match=rf"state: {type(opt).__name__} needs {want}, got {type(other).__name__}"):
        opt.step(other, params, params)
