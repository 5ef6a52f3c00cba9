"""The accelerated layer (PyTorch) against the reference (NumPy): one generic differential harness.

For hypothesis-generated cases (configurations, parameters reached by growth and prune events, head
temperatures, pruned prototypes, batches — :mod:`ddcl_incrt.strategies.model`): every forward
intermediate, every loss term (D1's decomposition included) and every gradient (autograd against the
reference's hand-derived backward: the third of the three backprop checks) agree. float64 uses the
VALUE row of the tolerance table; ``accelerated/model.py`` mirrors ``reference/model.py`` name for
name and in order. The harness is ``tests/_accelerated_harness.py``; the planted bugs it must find are
in ``tests/test_accelerated_mutants.py``. The whole module skips where torch is not installed.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from _accelerated_harness import compare_growth, compare_model, max_rel  # noqa: E402

from accelerated import backward as acc_backward  # noqa: E402
from accelerated import model as acc  # noqa: E402
from ddcl_incrt.strategies.model import ModelCase, ModelSpec, model_specs  # noqa: E402
from reference.tolerances import CheckKind, tolerance  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Names only the accelerated engine has, and why: the stacked storage and evaluation of all heads.
ACCELERATED_ONLY = {"HeadStack", "stacked_score_operators", "heads_forward"}


@given(spec=model_specs())
def test_float64_forward_losses_and_gradients_agree_with_the_reference(spec: ModelSpec) -> None:
    case = spec.build()
    tol = tolerance("float64", CheckKind.VALUE)
    err = compare_model(case, torch.float64)
    bad = {k: v for k, v in err.items() if v > tol.rtol}
    assert not bad, f"{bad} exceed {tol.rtol:g}; repro: {case.repro()}"


@given(spec=model_specs())
def test_float32_forward_losses_and_gradients_agree_with_the_reference(spec: ModelSpec) -> None:
    """float32 against the float64 reference, within the table's float32 VALUE row (an order-of-magnitude
    bound for O(1)-scaled quantities after O(10²) float32 operations; docs/tolerances.md)."""
    case = spec.build()
    tol = tolerance("float32", CheckKind.VALUE)
    err = compare_model(case, torch.float32)
    bad = {k: v for k, v in err.items() if v > tol.rtol}
    assert not bad, f"{bad} exceed {tol.rtol:g}; repro: {case.repro()}"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@given(spec=model_specs())
def test_the_step_agrees_with_the_reference_through_the_fused_attention_kernel_too(dtype: str, spec: ModelSpec) -> None:
    """The step writes the attention out for short sequences and calls the fused kernel for long ones
    (``accelerated.step.attention``); the cases generated here are short, so the harness above runs the
    written-out form, and this runs the same comparison of the step with the fused kernel forced."""
    from unittest import mock

    from _accelerated_harness import compare_step

    from accelerated import step as acc_step
    from reference.backward import loss_and_gradients

    case = spec.build()
    tol = tolerance(dtype, CheckKind.VALUE)
    ref_cache, ref_grads = loss_and_gradients(case.params, case.cfg, case.x, case.labels)
    with mock.patch.object(acc_step, "EXPLICIT_ATTENTION_MAX_T", -1):
        err = compare_step(case, getattr(torch, dtype), ref_cache, ref_grads)
    bad = {k: v for k, v in err.items() if v > tol.rtol}
    assert not bad, f"{bad} exceed {tol.rtol:g}; repro: {case.repro()}"


def test_the_attention_forms_differ_only_by_rounding() -> None:
    """Written out and fused, on the same q, k, v (float64, T on either side of the threshold): equal to
    the float64 VALUE row, and the threshold picks the form by the sequence length (seen by whether the
    fused kernel is called: two computations of a product are not compared bit for bit)."""
    from unittest import mock

    from accelerated import step as acc_step

    fused_kernel = torch.nn.functional.scaled_dot_product_attention
    atol = tolerance("float64", CheckKind.VALUE).rtol
    gen = torch.Generator().manual_seed(0)
    for T in (acc_step.EXPLICIT_ATTENTION_MAX_T, acc_step.EXPLICIT_ATTENTION_MAX_T + 1):
        q, k, v = (torch.randn(3, 2, T, 5, generator=gen, dtype=torch.float64) for _ in range(3))
        written = torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v
        fused = fused_kernel(q, k, v, scale=1.0)
        assert torch.allclose(written, fused, rtol=0.0, atol=atol)
        for threshold, calls_the_kernel in (
            (acc_step.EXPLICIT_ATTENTION_MAX_T, T > acc_step.EXPLICIT_ATTENTION_MAX_T),
            (-1, True),
        ):
            with (
                mock.patch.object(acc_step, "EXPLICIT_ATTENTION_MAX_T", threshold),
                mock.patch.object(torch.nn.functional, "scaled_dot_product_attention", wraps=fused_kernel) as kernel,
            ):
                out = acc_step.attention(q, k, v)
            assert kernel.called is calls_the_kernel
            assert torch.allclose(out, fused, rtol=0.0, atol=atol)


def _public_functions_in_order(path: Path) -> list[str]:
    names = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
            names.append(node.name)
    return names


def test_accelerated_model_mirrors_the_reference_name_for_name_and_in_order() -> None:
    ref_names = _public_functions_in_order(ROOT / "reference" / "model.py")
    acc_names = [n for n in _public_functions_in_order(ROOT / "accelerated" / "model.py") if n not in ACCELERATED_ONLY]
    ref_names = [n for n in ref_names if n != "LayerConfig"]  # the configuration object is shared, re-exported
    assert acc.LayerConfig is __import__("reference.model", fromlist=["LayerConfig"]).LayerConfig
    assert acc_names == ref_names
    ref_cache_fields = [f.name for f in dataclasses.fields(__import__("reference.model", fromlist=["x"]).ForwardCache)]
    assert [f.name for f in dataclasses.fields(acc.ForwardCache)] == ref_cache_fields


def _two_heads_after_a_removal() -> ModelCase:
    """Heads 0 and 2 (head 1 born and removed), each with its own temperature: rows and ids differ."""
    return ModelSpec(
        cfg=acc.LayerConfig(d_in=3, d=5, d_k=2, d_v=3, seq_len=4, K_max=3, n_classes=3, T_P=0.7, lambda_q=0.2),
        seed=5,
        head_ops=(("add", 0), ("add", 0), ("remove", 1)),
        removed_prototypes=(),
        log_temperatures=(0.1, -0.2),
        batch=3,
    ).build()


def test_stacked_heads_equal_one_head_at_a_time() -> None:
    """:func:`accelerated.model.heads_forward` (all heads in one batched matmul) is the per-head mirror."""
    case = _two_heads_after_a_removal()
    params = acc_backward.from_reference(case.params, dtype=torch.float64)
    X = acc.layer_input(params, torch.tensor(case.x))
    stacked = acc.heads_forward(params, X)
    assert list(stacked) == sorted(params.heads)
    tol = tolerance("float64", CheckKind.VALUE)
    for hid, head in params.heads.items():
        one = acc.head_forward(head, X)
        for field in ("M", "A", "values", "out"):
            a, b = getattr(stacked[hid], field).detach().numpy(), getattr(one, field).detach().numpy()
            assert max_rel(a, b) <= tol.rtol, (hid, field)


# --------------------------------------------------------------------------------------------------
# Growth statistics on the device (C, M_a^h, A_res, G_h, the spectrum) against the reference
# --------------------------------------------------------------------------------------------------


@given(spec=model_specs(), data=st.data())
def test_float64_growth_statistics_agree_with_the_reference(spec: ModelSpec, data: st.DataObject) -> None:
    case = spec.build()
    err = compare_growth(case, data.draw(st.integers(0, case.cfg.d - 1), label="m"))
    bad = {k: v for k, v in err.items() if v > tolerance("float64", CheckKind.VALUE).rtol}
    assert not bad, f"{bad}; repro: {case.repro()}"


def test_compiled_step_equals_eager_and_does_not_recompile_as_heads_and_prototypes_change() -> None:
    """``torch.compile`` of the step's loss with ``H`` and ``K`` marked dynamic: the same values and
    gradients as eager (VALUE row), and a bounded number of graphs over 1 → 2 → 3 → 2 heads and a pruned
    prototype (dynamic shapes specialise size 1, so one head and several heads are two graphs; nothing
    more: a birth, a prune or a prototype's removal compiles nothing new)."""
    from accelerated.step import StepFunction, compile_count

    compiled, eager = StepFunction(compile=True), StepFunction()
    tol = tolerance("float64", CheckKind.VALUE).rtol
    start = compile_count()
    specs = [
        ((), ()),
        ((("add", 0),), ()),
        ((("add", 0), ("add", 0)), ()),
        ((("add", 0), ("add", 0), ("remove", 1)), (0,)),
    ]
    for head_ops, removed in specs:
        n_heads = 1 + sum(1 if op == "add" else -1 for op, _ in head_ops)
        case = ModelSpec(
            cfg=acc.LayerConfig(d_in=3, d=6, d_k=2, d_v=3, seq_len=4, K_max=5, n_classes=3, T_P=0.8, lambda_q=0.3),
            seed=7,
            head_ops=head_ops,
            removed_prototypes=removed,
            log_temperatures=tuple(0.1 * i for i in range(n_heads)),
            batch=3,
        ).build()
        params = acc_backward.from_reference(case.params, dtype=torch.float64)
        flat = list(acc_backward.leaves(params).values())
        x, labels = torch.tensor(case.x), torch.tensor(case.labels)
        out_c = compiled(params, x, labels, case.cfg.T_P, case.cfg.lambda_q)
        out_e = eager(params, x, labels, case.cfg.T_P, case.cfg.lambda_q)
        assert compiled.error is None, f"compilation failed: {compiled.error!r}"
        for a, b in zip(out_c, out_e, strict=True):
            assert max_rel(a.detach().numpy(), b.detach().numpy()) <= tol
        for a, b in zip(torch.autograd.grad(out_c[0], flat), torch.autograd.grad(out_e[0], flat), strict=True):
            assert max_rel(a.numpy(), b.numpy()) <= tol
    assert compile_count() - start <= 2, f"{compile_count() - start} graphs for 4 architectures"


def test_the_step_takes_the_stored_stacked_head_tensors_and_their_gradients_as_they_are() -> None:
    """The hot path's arguments are the stored tensors themselves (nothing stacked per step), and autograd's
    gradients of a step are one per stacked head tensor (nothing unbound per head); split by rows they
    are the reference naming's per-head gradients."""
    from accelerated.step import StepFunction, flat_args

    case = _two_heads_after_a_removal()
    params = acc_backward.from_reference(case.params, dtype=torch.float64)
    stored = acc_backward.leaves(params)
    assert all(a is b for a, b in zip(flat_args(params), stored.values(), strict=True))
    assert all(t.is_leaf for t in stored.values())
    assert params.heads.ids == (0, 2)
    assert tuple(stored["heads.W_Q"].shape) == (2, 5, 2)
    L = StepFunction()(params, torch.tensor(case.x), torch.tensor(case.labels), case.cfg.T_P, case.cfg.lambda_q)[0]
    grads = dict(zip(stored, torch.autograd.grad(L, list(stored.values())), strict=True))
    _, per_head = acc_backward.loss_and_gradients(params, case.cfg, torch.tensor(case.x), torch.tensor(case.labels))
    split = acc_backward.flat_from_leaves(params.heads.ids, grads)
    assert list(split) == list(per_head)
    tol = tolerance("float64", CheckKind.VALUE).rtol
    for name, g in per_head.items():
        assert max_rel(split[name].numpy(), g.numpy()) <= tol, name
