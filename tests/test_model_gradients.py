"""The layer's hand-derived backward against central finite differences; optimisers; bad input.

Every parameter (W_in, E_pos, each head's W_Q, W_K, W_V, W_O, s, P, W_c, b_c) is checked entrywise
by central differences in float64 with the GRADIENT tolerance of ``reference.tolerances``, over
hypothesis-drawn shapes and active-head sets (1–3 heads, reached through add_head/remove_head), and
after prototype prunes. A planted wrong gradient shows the check can fail.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace

import jaxtyping
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ddcl_incrt.strategies._caps import MAX_BATCH, MAX_HEADS, MAX_PROTOTYPES, MAX_SEQ, MAX_TOKENS, MAX_WIDTH
from ddcl_incrt.strategies.model import ModelCase, ModelSpec, model_specs
from proofs_check import backprop_steps
from reference import backward as backward_module
from reference._arrays import F64Array, arr
from reference.backward import backward
from reference.gradcheck import central_difference, gradient_atol
from reference.model import (
    ForwardCache,
    HeadParams,
    LayerConfig,
    ModelParams,
    check_batch,
    check_params,
    forward,
    head_output,
    init_params,
    softmax_rows,
)
from reference.optim import SGD, Adam, AdamState, LearningRates
from reference.surgery import (
    HEAD_PARAM_NAMES,
    add_head,
    flatten,
    head_param_name,
    param_group,
    remove_head,
    remove_prototype_column,
    unflatten,
)
from reference.tolerances import CheckKind, tolerance

GRAD_TOL = tolerance("float64", CheckKind.GRADIENT)
VALUE_TOL = tolerance("float64", CheckKind.VALUE)


# --------------------------------------------------------------------------------------------------
# The gradient check
# --------------------------------------------------------------------------------------------------


@contextmanager
def _runtime_shape_checks_off() -> Iterator[None]:
    """Switch off jaxtyping's per-call checks (on under pytest) for the perturbed evaluations.

    They are the same code on the same shapes as the checked forward/backward under test, and the
    checks make them ~9x slower (hundreds of forwards per case). Restored even on error.
    """
    previous = jaxtyping.config.jaxtyping_disable
    jaxtyping.config.update("jaxtyping_disable", True)
    try:
        yield
    finally:
        jaxtyping.config.update("jaxtyping_disable", previous)


def numerical_gradients(case: ModelCase) -> dict[str, F64Array]:
    """Central differences of ``forward(...).L`` in every entry of every parameter."""
    with _runtime_shape_checks_off():
        return _numerical_gradients(case)


def _numerical_gradients(case: ModelCase) -> dict[str, F64Array]:
    flat = flatten(case.params)

    def loss_at(name: str) -> Callable[[F64Array], float]:
        return lambda value: (
            forward(unflatten({**flat, name: value}, like=case.params), case.cfg, case.x, case.labels).L
        )

    return {name: central_difference(loss_at(name), value) for name, value in flat.items()}


@dataclass(frozen=True)
class GradientCheck:
    """Per parameter: ``‖g − g_fd‖_∞`` vs ``atol·max(1, |L|) + rtol·‖g_fd‖_∞`` (GRADIENT row)."""

    name: str
    error: float
    scale: float
    atol: float

    @property
    def bound(self) -> float:
        return self.atol + GRAD_TOL.rtol * self.scale

    @property
    def relative_error(self) -> float:
        """``‖g − g_fd‖_∞ / ‖g_fd‖_∞``, the denominator floored where the atol takes over."""
        return self.error / max(self.scale, self.atol / GRAD_TOL.rtol)

    @property
    def holds(self) -> bool:
        return self.error <= self.bound


def gradient_checks(
    analytic: Mapping[str, F64Array], numeric: Mapping[str, F64Array], loss: float
) -> list[GradientCheck]:
    assert sorted(analytic) == sorted(numeric), f"gradient names differ: {sorted(analytic)} vs {sorted(numeric)}"
    checks = []
    for name, fd in numeric.items():
        g = analytic[name]
        assert g.shape == fd.shape, f"{name}: analytic gradient has shape {g.shape}, parameter {fd.shape}"
        scale = float(np.max(np.abs(fd)))
        error = float(np.max(np.abs(g - fd)))
        checks.append(GradientCheck(name, error, scale, gradient_atol(loss)))  # atol in units of |L|
    return checks


def assert_gradients_match(case: ModelCase, analytic: Mapping[str, F64Array] | None = None) -> list[GradientCheck]:
    cache = forward(case.params, case.cfg, case.x, case.labels)
    if analytic is None:
        analytic = backward(case.params, case.cfg, cache)
    checks = gradient_checks(analytic, numerical_gradients(case), cache.L)
    failed = [c for c in checks if not c.holds]
    if failed:
        lines = "\n  ".join(
            f"{c.name}: max |g − g_fd| = {c.error:.3e} > bound {c.bound:.3e} (‖g_fd‖_∞ = {c.scale:.3e})" for c in failed
        )
        raise AssertionError(f"backward disagrees with central differences:\n  {lines}\nrepro: {case.repro()}")
    return checks


# --------------------------------------------------------------------------------------------------
# Strategies produce only valid inputs (and respect the caps)
# --------------------------------------------------------------------------------------------------


@given(model_specs())
def test_model_specs_build_valid_capped_cases(spec: ModelSpec) -> None:
    case = spec.build()
    cfg, params = case.cfg, case.params
    check_params(params, cfg)
    check_batch(cfg, case.x, case.labels)
    assert max(cfg.d_in, cfg.d, cfg.d_k, cfg.d_v, cfg.n_classes) <= MAX_WIDTH
    assert cfg.seq_len <= MAX_SEQ
    assert cfg.K_max <= MAX_PROTOTYPES
    assert case.x.shape[0] <= MAX_BATCH
    assert case.x.shape[0] * cfg.seq_len <= MAX_TOKENS
    assert 1 <= len(params.heads) <= MAX_HEADS
    assert all(0 <= hid < params.next_head_id for hid in params.heads)
    assert params.next_head_id == 1 + sum(op == "add" for op, _ in spec.head_ops)
    assert params.P.shape[1] == cfg.K_max - len(spec.removed_prototypes) >= 1
    assert not set(params.prototype_ids) & set(spec.removed_prototypes)
    assert [params.heads[h].s for h in sorted(params.heads)] == list(spec.log_temperatures)
    # The repro line rebuilds the same case.
    rebuilt = eval(case.repro(), {"ModelSpec": ModelSpec, "LayerConfig": LayerConfig})
    for name, value in flatten(rebuilt.params).items():
        np.testing.assert_array_equal(value, flatten(params)[name])


@given(st.data())
def test_min_heads_is_reached(data: st.DataObject) -> None:
    spec = data.draw(model_specs(min_heads=MAX_HEADS, max_removed_prototypes=0))
    assert len(spec.build().params.heads) == MAX_HEADS


# --------------------------------------------------------------------------------------------------
# Gradients vs finite differences
# --------------------------------------------------------------------------------------------------


@given(model_specs())
def test_backward_matches_finite_differences(spec: ModelSpec) -> None:
    case = spec.build()
    checks = assert_gradients_match(case)
    expected = {"W_in", "E_pos", "P", "W_c", "b_c"} | {
        head_param_name(h, f) for h in case.params.heads for f in HEAD_PARAM_NAMES
    }
    assert {c.name for c in checks} == expected


@given(model_specs(max_removed_prototypes=0), st.data())
def test_backward_after_pruning_a_prototype(spec: ModelSpec, data: st.DataObject) -> None:
    assume(spec.cfg.K_max >= 2)
    case = spec.build()
    proto_id = data.draw(st.sampled_from(case.params.prototype_ids), label="pruned prototype id")
    pruned = remove_prototype_column(case.params, proto_id)
    assert_gradients_match(replace(case, params=pruned))


def _deterministic_case(lambda_q: float = 0.7) -> ModelCase:
    cfg = LayerConfig(d_in=3, d=4, d_k=2, d_v=3, seq_len=3, K_max=4, n_classes=3, T_P=1.0, lambda_q=lambda_q)
    return ModelSpec(
        cfg=cfg,
        seed=7,
        head_ops=(("add", 0), ("add", 0), ("remove", 0), ("add", 0)),
        removed_prototypes=(2,),
        log_temperatures=(0.3, -0.2, 0.5),
        batch=2,
    ).build()


def test_backward_with_grown_and_pruned_heads() -> None:
    case = _deterministic_case()
    assert sorted(case.params.heads) == [1, 2, 3]  # head 0 pruned, its id not reused
    assert case.params.prototype_ids == (0, 1, 3)
    assert_gradients_match(case)


# --------------------------------------------------------------------------------------------------
# The check can fail (planted violations)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["W_in", "E_pos", "heads.1.W_Q", "heads.2.W_K", "heads.3.s", "P", "W_c", "b_c"])
def test_gradient_check_fires_on_a_wrong_gradient(name: str) -> None:
    case = _deterministic_case()
    cache = forward(case.params, case.cfg, case.x, case.labels)
    grads = backward(case.params, case.cfg, cache)
    wrong = grads[name].copy()
    # One entry off by 100x the bound the check allows for this parameter.
    wrong.flat[0] += 100.0 * (GRAD_TOL.rtol * float(np.max(np.abs(wrong))) + gradient_atol(cache.L))
    with pytest.raises(AssertionError, match=re.escape(name) + ": max"):
        assert_gradients_match(case, {**grads, name: arr(wrong)})


def test_gradient_check_fires_when_the_assignment_path_of_z_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Holding ``Q`` fixed in ``Z = Y + Q Pᵀ`` (a plausible derivation slip) must be caught."""

    def q_fixed(Y: F64Array, P: F64Array, Q: F64Array, T_P: float, dZ: F64Array) -> tuple[F64Array, F64Array]:
        return dZ, arr(dZ.T @ Q)

    case = _deterministic_case(lambda_q=0.0)  # so only the Z path carries ∂Q
    monkeypatch.setattr(backward_module, "_ddcl_block_backward", q_fixed)  # what the layer backward calls
    with pytest.raises(AssertionError, match=r"\bP: max"):
        assert_gradients_match(case)


# --------------------------------------------------------------------------------------------------
# Forward: decomposition, purity, exported pieces
# --------------------------------------------------------------------------------------------------


def _close(a: float, b: float) -> bool:
    return VALUE_TOL.allows(a, b)


def test_forward_loss_decomposition() -> None:
    case = _deterministic_case()
    c = forward(case.params, case.cfg, case.x, case.labels)
    assert c.L_task + case.cfg.lambda_q * c.L_q == c.L
    assert _close(c.L_OLS + c.V, c.L_q)  # claim D1
    assert _close(c.F + case.cfg.T_P * c.H_bar, c.L_q)  # claim D2
    np.testing.assert_array_equal(c.Y, c.X + c.U)
    np.testing.assert_array_equal(c.U, sum(hc.out for hc in c.heads.values()))


def test_forward_is_pure_and_params_are_read_only() -> None:
    case = _deterministic_case()
    x_before = case.x.copy()
    flat_before = {k: v.copy() for k, v in flatten(case.params).items()}
    c1 = forward(case.params, case.cfg, case.x, case.labels)
    backward(case.params, case.cfg, c1)
    c2 = forward(case.params, case.cfg, case.x, case.labels)
    assert c1.L == c2.L
    np.testing.assert_array_equal(case.x, x_before)
    for k, v in flatten(case.params).items():
        np.testing.assert_array_equal(v, flat_before[k])
    with pytest.raises(ValueError, match="read-only"):
        case.params.P[0, 0] = 1.0


def test_head_output_is_what_pruning_the_head_removes() -> None:
    case = _deterministic_case()
    c = forward(case.params, case.cfg, case.x, case.labels)
    c_pruned = forward(remove_head(case.params, 2), case.cfg, case.x, case.labels)
    head = case.params.heads[2]
    term = head_output(c.heads[2].A, c.X, head.W_V, head.W_O)
    np.testing.assert_allclose(c.Y - c_pruned.Y, term, rtol=VALUE_TOL.rtol, atol=VALUE_TOL.atol)


def test_flatten_unflatten_round_trip_and_groups() -> None:
    params = _deterministic_case().params
    flat = flatten(params)
    assert list(flat)[:2] == ["W_in", "E_pos"]
    assert list(flat)[-3:] == ["P", "W_c", "b_c"]
    again = flatten(unflatten(flat, like=params))
    assert list(again) == list(flat)
    for k in flat:
        np.testing.assert_array_equal(again[k], flat[k])
    groups = {k: param_group(k) for k in flat}
    assert groups["P"] == "prototypes"
    assert {k for k, g in groups.items() if g == "temperatures"} == {f"heads.{h}.s" for h in params.heads}
    assert all(g == "rest" for k, g in groups.items() if k != "P" and not k.endswith(".s"))


def test_head_ids_are_never_reused() -> None:
    cfg = _deterministic_case().cfg
    rng = np.random.default_rng(0)
    params, first = add_head(init_params(cfg, rng=rng), cfg, rng=rng)
    params = remove_head(params, first)
    params, second = add_head(params, cfg, rng=rng)
    assert (first, second) == (1, 2)
    assert sorted(params.heads) == [0, 2]


def test_add_head_is_seeded() -> None:
    cfg = _deterministic_case().cfg
    base = init_params(cfg, rng=np.random.default_rng(1))
    a, _ = add_head(base, cfg, rng=np.random.default_rng(5))
    b, _ = add_head(base, cfg, rng=np.random.default_rng(5))
    for k, v in flatten(a).items():
        np.testing.assert_array_equal(v, flatten(b)[k])


# --------------------------------------------------------------------------------------------------
# Optimisers
# --------------------------------------------------------------------------------------------------

RATES = LearningRates(rest=0.01, prototypes=0.1, temperatures=0.003)


def _grads(case: ModelCase) -> dict[str, F64Array]:
    return backward(case.params, case.cfg, forward(case.params, case.cfg, case.x, case.labels))


def test_sgd_step_is_p_minus_lr_g_per_group() -> None:
    case = _deterministic_case()
    params, grads = flatten(case.params), _grads(case)
    new, state = SGD(RATES).step(SGD(RATES).init_state(), params, grads)
    assert state.steps == 1
    for name, p in params.items():
        lr = {"rest": RATES.rest, "prototypes": RATES.prototypes, "temperatures": RATES.temperatures}[param_group(name)]
        np.testing.assert_array_equal(new[name], p - lr * grads[name])
    # The stepped flat view is a valid parameter set again.
    unflatten(new, like=case.params)


def test_adam_first_step_has_the_group_rate() -> None:
    case = _deterministic_case()
    params, grads = flatten(case.params), _grads(case)
    new, _ = Adam(RATES).step(Adam(RATES).init_state(), params, grads)
    for name, p in params.items():
        # t = 1: m̂ = g, v̂ = g², so the step is lr·g/(|g| + ε): the group's rate times sign(g), up to ε.
        lr = RATES.for_name(name)
        g = grads[name]
        expected = p - lr * g / (np.sqrt(g * g) + Adam(RATES).eps)
        # Not bitwise: Adam forms m̂ = (1 − β₁)g / (1 − β₁), equal to g only up to rounding.
        np.testing.assert_allclose(new[name], expected, rtol=VALUE_TOL.rtol, atol=VALUE_TOL.atol)


def test_adam_growth_leaves_existing_state_untouched() -> None:
    case = _deterministic_case()
    opt = Adam(RATES)
    rng = np.random.default_rng(3)
    params = flatten(case.params)
    state = opt.init_state()
    for _ in range(3):
        params, state = opt.step(state, params, {k: arr(rng.standard_normal(v.shape)) for k, v in params.items()})
    grown, new_id = add_head(unflatten(params, like=case.params), case.cfg, rng=rng)
    grown_flat = flatten(grown)
    grads = {k: arr(rng.standard_normal(v.shape)) for k, v in grown_flat.items()}
    new_names = {head_param_name(new_id, f) for f in HEAD_PARAM_NAMES}
    assert set(grown_flat) - set(params) == new_names
    # Reference: the same step on the old parameter set alone.
    old_only, old_state = opt.step(state, params, {k: grads[k] for k in params})
    stepped, grown_state = opt.step(state, grown_flat, grads)
    for k in params:
        np.testing.assert_array_equal(stepped[k], old_only[k])
        np.testing.assert_array_equal(grown_state.moments[k].m, old_state.moments[k].m)
        np.testing.assert_array_equal(grown_state.moments[k].v, old_state.moments[k].v)
        assert grown_state.moments[k].t == 4
    for k in new_names:
        assert grown_state.moments[k].t == 1  # a fresh start, with its own bias correction
    # Pruning drops exactly that head's state.
    pruned = flatten(remove_head(unflatten(stepped, like=grown), new_id))
    _, pruned_state = opt.step(grown_state, pruned, {k: grads[k] for k in pruned})
    assert set(pruned_state.moments) == set(params)


def test_adam_prototype_prune_keeps_other_columns() -> None:
    case = _deterministic_case()
    opt = Adam(RATES)
    params, state = opt.step(opt.init_state(), flatten(case.params), _grads(case))
    assert isinstance(state, AdamState)
    j = 1
    resized = state.without_column("P", j)
    np.testing.assert_array_equal(resized.moments["P"].m, np.delete(state.moments["P"].m, j, axis=1))
    np.testing.assert_array_equal(resized.moments["W_in"].m, state.moments["W_in"].m)
    pruned = remove_prototype_column(unflatten(params, like=case.params), case.params.prototype_ids[j])
    flat = flatten(pruned)
    zero = {k: np.zeros_like(v) for k, v in flat.items()}
    opt.step(resized, flat, zero)  # shapes agree again
    with pytest.raises(ValueError, match="without_column"):
        opt.step(state, flat, zero)


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: LearningRates(rest=0.0, prototypes=0.1, temperatures=0.1), "LearningRates.rest"),
        (lambda: LearningRates(rest=0.1, prototypes=float("nan"), temperatures=0.1), "LearningRates.prototypes"),
        (lambda: Adam(RATES, beta1=1.0), "Adam.beta1"),
        (lambda: Adam(RATES, eps=-1.0), "Adam.eps"),
    ],
)
def test_optimiser_configs_validate(build: Callable[[], object], argument: str) -> None:
    with pytest.raises((TypeError, ValueError), match=_names(argument)):
        build()


def test_optimiser_step_rejects_mismatched_grads() -> None:
    params = flatten(_deterministic_case().params)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    with pytest.raises(ValueError, match=_names("grads")):
        SGD(RATES).step(SGD(RATES).init_state(), params, {k: v for k, v in grads.items() if k != "P"})
    with pytest.raises(ValueError, match=_names("grads['P']")):
        SGD(RATES).step(SGD(RATES).init_state(), params, {**grads, "P": np.zeros((1, 1))})


# --------------------------------------------------------------------------------------------------
# Bad input: each error names the argument
# --------------------------------------------------------------------------------------------------


def _names(argument: str) -> str:
    """Our messages start ``argument: ...``; jaxtyping's runtime check (on under pytest) says
    ``parameter 'argument'``. Either names it."""
    a = re.escape(argument)
    return rf"(^|\s){a}: |parameter '{a}'"


_CFG = LayerConfig(d_in=3, d=4, d_k=2, d_v=3, seq_len=3, K_max=4, n_classes=3, T_P=1.0, lambda_q=0.5)
_PARAMS = init_params(_CFG, rng=np.random.default_rng(0))
_X = np.random.default_rng(1).standard_normal((2, 3, 3))
_Y = np.array([0, 2])


def _with_nan() -> F64Array:
    x = _X.copy()
    x[0, 1, 2] = np.nan
    return x


def _other_cache() -> ForwardCache:
    grown, _ = add_head(_PARAMS, _CFG, rng=np.random.default_rng(2))
    return forward(grown, _CFG, _X, _Y)


BAD_INPUTS: list[tuple[str, Callable[[], object], str]] = [
    ("x wrong width", lambda: forward(_PARAMS, _CFG, _X[:, :, :2], _Y), "x"),
    ("x wrong length", lambda: forward(_PARAMS, _CFG, _X[:, :2, :], _Y), "x"),
    ("x float32", lambda: forward(_PARAMS, _CFG, _X.astype(np.float32), _Y), "x"),
    ("x NaN", lambda: forward(_PARAMS, _CFG, _with_nan(), _Y), "x"),
    ("empty batch", lambda: forward(_PARAMS, _CFG, _X[:0], _Y[:0]), "x"),
    ("labels float", lambda: forward(_PARAMS, _CFG, _X, _Y.astype(np.float64)), "labels"),
    ("labels out of range", lambda: forward(_PARAMS, _CFG, _X, np.array([0, 3])), "labels"),
    ("labels negative", lambda: forward(_PARAMS, _CFG, _X, np.array([-1, 0])), "labels"),
    ("labels wrong count", lambda: forward(_PARAMS, _CFG, _X, np.array([0, 1, 2])), "labels"),
    ("check_batch labels float", lambda: check_batch(_CFG, _X, _Y.astype(np.float64)), "labels"),
    ("check_batch labels list", lambda: check_batch(_CFG, _X, [0, 1]), "labels"),
    ("check_batch labels count", lambda: check_batch(_CFG, _X, np.array([0])), "labels"),
    ("check_batch x float32", lambda: check_batch(_CFG, _X.astype(np.float32), _Y), "x"),
    ("check_batch x 2-d", lambda: check_batch(_CFG, _X[0], _Y), "x"),
    ("params for another cfg", lambda: forward(_PARAMS, replace(_CFG, d_in=2), _X[:, :, :2], _Y), "params.W_in"),
    ("too many prototypes", lambda: check_params(_PARAMS, replace(_CFG, K_max=3)), "params.P"),
    ("cache from other params", lambda: backward(_PARAMS, _CFG, _other_cache()), "cache"),
    ("config d = 0", lambda: replace(_CFG, d=0), "LayerConfig.d"),
    ("config T_P < 0", lambda: replace(_CFG, T_P=-1.0), "LayerConfig.T_P"),
    ("config lambda_q < 0", lambda: replace(_CFG, lambda_q=-0.1), "LayerConfig.lambda_q"),
    ("config one class", lambda: replace(_CFG, n_classes=1), "LayerConfig.n_classes"),
    (
        "W_K shape",
        lambda: HeadParams(
            W_Q=np.zeros((4, 2)), W_K=np.zeros((4, 3)), W_V=np.zeros((4, 3)), W_O=np.zeros((3, 4)), s=0.0
        ),
        "W_K",
    ),
    ("W_O width", lambda: replace(_PARAMS.heads[0], W_O=np.zeros((3, 5))), "W_O"),
    ("s NaN", lambda: replace(_PARAMS.heads[0], s=float("nan")), "s"),
    ("P width", lambda: replace(_PARAMS, P=np.zeros((5, 4))), "P"),
    ("prototype ids count", lambda: replace(_PARAMS, prototype_ids=(0, 1)), "prototype_ids"),
    ("no heads", lambda: replace(_PARAMS, heads={}), "heads"),
    ("head id reused", lambda: replace(_PARAMS, next_head_id=0), "next_head_id"),
    ("remove last head", lambda: remove_head(_PARAMS, 0), "head_id"),
    (
        "remove unknown head",
        lambda: remove_head(add_head(_PARAMS, _CFG, rng=np.random.default_rng(0))[0], 7),
        "head_id",
    ),
    ("remove unknown prototype", lambda: remove_prototype_column(_PARAMS, 9), "proto_id"),
    ("rng not a Generator", lambda: init_params(_CFG, rng=0), "rng"),  # type: ignore[arg-type]
    ("unflatten missing name", lambda: unflatten({"W_in": _PARAMS.W_in}, like=_PARAMS), "flat"),
    ("unknown parameter name", lambda: param_group("heads.0.W_X"), "name"),
]


@pytest.mark.parametrize(("build", "argument"), [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_names_the_argument(build: Callable[[], object], argument: str) -> None:
    with pytest.raises((TypeError, ValueError), match=_names(argument)):
        build()


def test_last_prototype_cannot_be_removed() -> None:
    cfg = replace(_CFG, K_max=1)
    params = init_params(cfg, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=_names("P")):
        remove_prototype_column(params, 0)


def test_model_params_type_checks_heads() -> None:
    # Our message names heads[0]; jaxtyping's beartype check (on under pytest) names `heads`.
    with pytest.raises(TypeError, match=_names("heads[0]") + "|" + _names("heads")):
        ModelParams(
            W_in=_PARAMS.W_in,
            E_pos=_PARAMS.E_pos,
            heads={0: "not a head"},  # type: ignore[dict-item]
            next_head_id=1,
            P=_PARAMS.P,
            prototype_ids=_PARAMS.prototype_ids,
            W_c=_PARAMS.W_c,
            b_c=_PARAMS.b_c,
        )


# --------------------------------------------------------------------------------------------------
# The symbolic steps of the backward (proofs_check, claim group "BP") prove, and can fail
# --------------------------------------------------------------------------------------------------


def test_backprop_step_fails_on_a_planted_temperature_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = backward_module.score_operator_backward

    def wrong_sign(head: HeadParams, dM: F64Array) -> tuple[F64Array, F64Array, float]:
        dW_Q, dW_K, ds = real(head, dM)
        return dW_Q, dW_K, -ds  # forgets that ∂M/∂s = −M

    monkeypatch.setattr(backward_module, "score_operator_backward", wrong_sign)
    (step,) = [s for s in backprop_steps.STEPS if s.id == "BP.3"]
    outcome = step.run()
    assert outcome.symbolic_ok
    assert not outcome.proved, outcome.detail


def test_attention_is_stable_for_large_scores() -> None:
    """Scores of order 1e3 (a sharp, low-temperature head): the softmax must subtract the row maximum,
    else ``exp`` overflows to inf and the rows become NaN. [model-attention-unstabilised]"""
    S = np.array([[[800.0, 800.0 - np.log(3.0), -5.0], [1000.0, 1000.0, 1000.0]]])
    A = softmax_rows(S)
    assert np.all(np.isfinite(A))
    # exact answers: weights ∝ (1, 1/3, e^{−805}) → (3/4, 1/4, ~0); equal scores → 1/3 each
    np.testing.assert_allclose(A[0, 0], [0.75, 0.25, 0.0], rtol=0, atol=VALUE_TOL.atol)
    np.testing.assert_allclose(A[0, 1], [1 / 3, 1 / 3, 1 / 3], rtol=0, atol=VALUE_TOL.atol)


# ---- issue 10 (hostile inputs): labels of the task loss -------------------------------------------


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.array([0, -1]), r"labels: class ids must lie in \[0, 3\)"),  # used to wrap to the last class
        (np.array([0, 3]), r"labels: class ids must lie in \[0, 3\)"),
        # used to average only the first row (refused by the run-time shape check under pytest, or ours)
        (np.array([0]), "labels"),
        (np.array([0.0, 1.0]), "labels"),
    ],
)
def test_cross_entropy_refuses_labels_that_indexing_would_silently_accept(labels: np.ndarray, match: str) -> None:
    from reference.model import cross_entropy

    log_probs = np.log(np.full((2, 3), 1.0 / 3.0))
    with pytest.raises((ValueError, TypeError), match=match):
        cross_entropy(log_probs, labels)
    # both sides go through np.log, whose kernel depends on the CPU: the VALUE row, not one machine's ulps
    assert cross_entropy(log_probs, np.array([0, 2])) == pytest.approx(np.log(3.0), rel=VALUE_TOL.rtol)
