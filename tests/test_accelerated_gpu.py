"""The differential suite on CUDA (marked ``gpu``; skipped cleanly where there is no GPU, as in CI).

The same harness as on the CPU (``tests/_accelerated_harness.py``), with TF32 switched off so that
float32 matmuls are float32: the layer (forward, losses, gradients, the step's hot path) on fixed
cases in float64 and float32, and whole trajectories in float64 and float32 against the reference.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from _accelerated_harness import compare_model, compare_trajectories, run_with, trajectory_runs  # noqa: E402

from ddcl_incrt.strategies.model import ModelSpec  # noqa: E402
from reference.model import LayerConfig  # noqa: E402
from reference.tolerances import CheckKind, tolerance  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (CI has none)"),
]

CASES = [
    ModelSpec(
        cfg=LayerConfig(d_in=3, d=6, d_k=2, d_v=3, seq_len=4, K_max=5, n_classes=3, T_P=0.8, lambda_q=0.3),
        seed=seed,
        head_ops=head_ops,
        removed_prototypes=removed,
        log_temperatures=temps,
        batch=4,
    )
    for seed, head_ops, removed, temps in [
        (0, (), (), (0.0,)),
        (1, (("add", 0), ("add", 0)), (), (0.2, -0.3, 0.1)),
        (2, (("add", 0), ("add", 0), ("remove", 1)), (1,), (0.0, 0.4)),
    ]
]


@pytest.fixture(autouse=True)
def _no_tf32() -> object:
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


@pytest.mark.parametrize("dtype_name", ["float64", "float32"])
@pytest.mark.parametrize("spec", CASES, ids=lambda s: f"seed{s.seed}")
def test_layer_on_cuda_agrees_with_the_reference(spec: ModelSpec, dtype_name: str) -> None:
    case = spec.build()
    tol = tolerance(dtype_name, CheckKind.VALUE).rtol
    err = compare_model(case, getattr(torch, dtype_name), device="cuda")
    bad = {k: v for k, v in err.items() if v > tol}
    assert not bad, f"{bad}; repro: {case.repro()}"


@pytest.mark.parametrize("dtype_name", ["float64", "float32"])
def test_trajectory_on_cuda_agrees_with_the_reference(dtype_name: str) -> None:
    ref, acc = trajectory_runs(run_with(), dtype=getattr(torch, dtype_name), device="cuda")
    cmp = compare_trajectories(ref, acc, tolerance(dtype_name, CheckKind.VALUE).rtol, band=dtype_name)
    assert cmp.stopped_at is None, f"near-tie at step {cmp.stopped_at}"
    assert cmp.differences == ()
    assert acc.violations() == ()
